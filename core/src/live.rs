//! Live and forecast grid intensity, as values: what a provider said, on what basis, when; and
//! which provider area a place falls in. The fetching is elsewhere (the `carbon-live` crate);
//! this is what the views and the planner read.

use crate::plan::Step;
use serde::{Deserialize, Serialize};

/// What an intensity counts. Averages of different bases are not compared with each other
/// without saying so, and a marginal signal never mixes with averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// Average, with the emissions of building and fuelling the plants (Electricity Maps' default).
    Lifecycle,
    /// Average, burning fuel only (the UK Carbon Intensity API: generation, imports and losses).
    Direct,
    /// The plant that answers the next kWh (WattTime).
    Marginal,
}

impl Basis {
    /// One word: `lifecycle`, `direct`, `marginal` (as in the JSON).
    pub fn short(self) -> &'static str {
        match self {
            Basis::Lifecycle => "lifecycle",
            Basis::Direct => "direct",
            Basis::Marginal => "marginal",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Basis::Lifecycle => "lifecycle average",
            Basis::Direct => "direct (operational) average",
            Basis::Marginal => "marginal",
        }
    }
}

/// One value of a provider's, as it said it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The area, as carbon-dash names it (`DE`, `GB`, `GB-13`, `gcp/europe-west1`).
    pub zone: String,
    pub g_per_kwh: f64,
    /// "Electricity Maps", "UK Carbon Intensity API (NESO)".
    pub provider: String,
    pub basis: Basis,
    /// The provider estimated it (rather than measured it).
    pub estimated: bool,
    /// A forecast value (not yet measured).
    pub forecast: bool,
    /// The time the value is for, and when carbon-dash fetched it (Unix seconds, UTC).
    pub at: i64,
    pub fetched_at: i64,
}

/// A provider's series for an area: a forecast or history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub zone: String,
    pub provider: String,
    pub basis: Basis,
    pub forecast: bool,
    /// Some values were estimated by the provider.
    pub estimated: bool,
    pub steps: Vec<Step>,
    /// When the provider made it (its `updatedAt`), if it says.
    pub issued_at: Option<i64>,
    pub fetched_at: i64,
}

/// Where to ask Electricity Maps about a place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EmPlace {
    /// A zone key: `DE`, `US-CAL-CISO`, `SE-SE3`.
    Zone(String),
    /// A cloud region, which Electricity Maps maps to its zone (`dataCenterProvider`, `dataCenterRegion`).
    DataCenter { provider: String, region: String },
}

/// Where to ask the UK Carbon Intensity API: Great Britain, or one of its 17 regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UkArea {
    National,
    Region(u8),
}

/// The UK Carbon Intensity API's regions, by id.
pub const UK_REGIONS: [&str; 17] = [
    "North Scotland",
    "South Scotland",
    "North West England",
    "North East England",
    "Yorkshire",
    "North Wales & Merseyside",
    "South Wales",
    "West Midlands",
    "East Midlands",
    "East England",
    "South West England",
    "South England",
    "London",
    "South East England",
    "England",
    "Scotland",
    "Wales",
];

/// A place the providers can be asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// carbon-dash's name for it, in readings and URLs (`GB-13`, `DE`, `gcp/europe-west2`).
    pub zone: String,
    /// For people: "London (UK Carbon Intensity region 13)".
    pub label: String,
    pub em: Option<EmPlace>,
    pub uk: Option<UkArea>,
    pub country_iso3: Option<String>,
}

impl UkArea {
    pub fn zone(self) -> String {
        match self {
            UkArea::National => "GB".into(),
            UkArea::Region(id) => format!("GB-{id}"),
        }
    }

    pub fn label(self) -> String {
        match self {
            UkArea::National => "Great Britain".into(),
            UkArea::Region(id) => {
                format!("{} (UK region {id})", UK_REGIONS.get(usize::from(id).wrapping_sub(1)).unwrap_or(&"?"))
            }
        }
    }
}

/// Countries that Electricity Maps splits into several zones: a cloud region there is asked
/// about as a data centre, so that Electricity Maps picks the zone.
#[cfg(feature = "ingest")]
const SPLIT_COUNTRIES: &[&str] =
    &["USA", "CAN", "AUS", "BRA", "IND", "JPN", "SWE", "NOR", "DNK", "ITA", "RUS", "CHN", "MEX", "CHL", "ARG", "NZL"];

#[cfg(feature = "ingest")]
mod places {
    use super::*;
    use crate::grid::Grid;

    /// Why a place cannot be asked about.
    #[derive(Debug, Clone, PartialEq)]
    pub struct UnknownPlace(pub String);

    impl std::fmt::Display for UnknownPlace {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    /// The UK region of a cloud region in Great Britain, by its city.
    fn uk_region_of_city(city: &str) -> Option<u8> {
        match city {
            "London" => Some(13),
            "Cardiff" => Some(7),
            _ => None,
        }
    }

    impl Target {
        /// A zone as a user writes it: an Electricity Maps zone key (`DE`, `US-CAL-CISO`), `GB`
        /// (Great Britain) or `GB-1` … `GB-17` (the UK API's regions). Only shapes a provider
        /// could know pass: two letters of a country the grid data knows, then parts of letters
        /// and digits.
        pub fn of_zone(grid: &Grid, zone: &str) -> Result<Target, UnknownPlace> {
            let z = zone.trim().to_ascii_uppercase();
            let mut parts = z.split('-');
            let country = parts.next().unwrap_or("");
            let rest: Vec<&str> = parts.collect();
            let iso3 = (country.len() == 2).then(|| grid.iso3(country)).flatten().map(str::to_string);
            let well_formed = rest.len() <= 3
                && rest.iter().all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric()));
            let Some(iso3) = iso3.filter(|_| well_formed) else {
                return Err(UnknownPlace(format!(
                    "no zone '{zone}': write an Electricity Maps zone key such as DE, FR or US-CAL-CISO, GB for Great Britain, or GB-1 … GB-17 for the UK API's regions (13 is London)"
                )));
            };
            if z == "GB" {
                return Ok(Target {
                    zone: z.clone(),
                    label: UkArea::National.label(),
                    em: Some(EmPlace::Zone(z)),
                    uk: Some(UkArea::National),
                    country_iso3: Some(iso3),
                });
            }
            if let (Some(rest), "GB") = (rest.first(), country) {
                if rest.bytes().all(|b| b.is_ascii_digit()) {
                    let Ok(id @ 1..=17) = rest.parse::<u8>() else {
                        return Err(UnknownPlace(format!(
                            "no zone '{zone}': the UK API's regions are GB-1 … GB-17 (13 is London)"
                        )));
                    };
                    let area = UkArea::Region(id);
                    return Ok(Target {
                        zone: z,
                        label: area.label(),
                        em: None,
                        uk: Some(area),
                        country_iso3: Some(iso3),
                    });
                }
            }
            let label = grid.country_name(&iso3).map(|n| format!("{z} ({n})")).unwrap_or_else(|| z.clone());
            Ok(Target { zone: z.clone(), label, em: Some(EmPlace::Zone(z)), uk: None, country_iso3: Some(iso3) })
        }

        /// A cloud region as the map names it: `gcp/europe-west2`, or the region alone when only
        /// one provider has that name.
        pub fn of_region(grid: &Grid, name: &str) -> Result<Target, UnknownPlace> {
            let (provider, region) = match name.split_once(['/', ':']) {
                Some((p, r)) => (Some(p.trim()), r.trim()),
                None => (None, name.trim()),
            };
            let found: Vec<_> = grid
                .cloud_regions()
                .iter()
                .filter(|c| c.region.eq_ignore_ascii_case(region))
                .filter(|c| provider.is_none_or(|p| c.provider.eq_ignore_ascii_case(p)))
                .collect();
            let c = match found.as_slice() {
                [one] => *one,
                [] => {
                    return Err(UnknownPlace(format!(
                        "no cloud region '{name}' in the grid data: write it as the map does, e.g. gcp/europe-west2 or aws/eu-west-1"
                    )))
                }
                many => {
                    let names: Vec<String> = many.iter().map(|c| format!("{}/{}", c.provider, c.region)).collect();
                    return Err(UnknownPlace(format!("'{name}' is a region of several providers: {}", names.join(", "))));
                }
            };
            let iso2 = grid.iso2(&c.country_iso3).unwrap_or("").to_string();
            let uk =
                (c.country_iso3 == "GBR").then(|| uk_region_of_city(&c.city).map_or(UkArea::National, UkArea::Region));
            let em = if SPLIT_COUNTRIES.contains(&c.country_iso3.as_str()) || iso2.is_empty() {
                EmPlace::DataCenter { provider: c.provider.clone(), region: c.region.clone() }
            } else {
                EmPlace::Zone(iso2)
            };
            Ok(Target {
                zone: format!("{}/{}", c.provider, c.region),
                label: format!("{}/{} ({}, {})", c.provider, c.region, c.city, c.country_iso3),
                em: Some(em),
                uk,
                country_iso3: Some(c.country_iso3.clone()),
            })
        }

        /// The embedded annual figure for this place (latest dataset): what offline means.
        pub fn annual(&self, grid: &Grid) -> crate::schedule::Annual {
            use crate::grid::Location;
            let nordic = self.zone.split_once('-').map(|x| x.1).filter(|_| !self.zone.starts_with("GB"));
            let loc = match self.zone.split_once('/') {
                Some((p, r)) => Location { cloud_provider: Some(p), cloud_region: Some(r), ..Location::default() },
                None => {
                    Location { country_iso_code: self.country_iso3.as_deref(), region: nordic, ..Location::default() }
                }
            };
            let r = grid.resolve(&loc, crate::model::DatasetMode::Latest);
            crate::schedule::Annual {
                g_per_kwh: r.g_per_kwh,
                low_g_per_kwh: r.low,
                high_g_per_kwh: r.high,
                source: r.label,
            }
        }

        /// Where a run ran: its cloud region, else its country (and Nordic bidding zone).
        pub fn of_run(grid: &Grid, run: &crate::model::Run) -> Option<Target> {
            if let (Some(p), Some(r)) = (run.cloud_provider.as_deref(), run.cloud_region.as_deref()) {
                if let Ok(t) = Target::of_region(grid, &format!("{p}/{r}")) {
                    return Some(t);
                }
            }
            let iso3 = run.country_iso_code.as_deref().and_then(|c| grid.iso3(c))?.to_string();
            let iso2 = grid.iso2(&iso3)?.to_string();
            let zone = match run.region.as_deref().map(str::to_ascii_uppercase) {
                Some(r) if ["SWE", "NOR"].contains(&iso3.as_str()) && r.len() == 3 && r.starts_with(&iso2) => {
                    format!("{iso2}-{r}")
                }
                _ => iso2,
            };
            Target::of_zone(grid, &zone).ok()
        }
    }
}

#[cfg(feature = "ingest")]
pub use places::UnknownPlace;

#[cfg(all(test, feature = "ingest"))]
mod tests {
    use super::*;
    use crate::grid::Grid;

    #[test]
    fn places_map_to_the_areas_the_providers_know() {
        let g = Grid::embedded();
        let gb = Target::of_zone(g, "gb").expect("GB");
        assert_eq!((gb.uk, gb.em.clone()), (Some(UkArea::National), Some(EmPlace::Zone("GB".into()))));
        let london = Target::of_zone(g, "GB-13").expect("a UK region");
        assert_eq!((london.uk, london.em), (Some(UkArea::Region(13)), None));
        assert!(london.label.starts_with("London"), "{}", london.label);
        assert_eq!(Target::of_zone(g, "US-CAL-CISO").expect("a zone").em, Some(EmPlace::Zone("US-CAL-CISO".into())));
        for bad in ["XX", "DE-", "de-../../x", "", "GERMANY", "GB-18", "GB-0"] {
            assert!(Target::of_zone(g, bad).is_err(), "{bad}");
        }
        let r = Target::of_region(g, "gcp/europe-west2").expect("London");
        assert_eq!((r.uk, r.em), (Some(UkArea::Region(13)), Some(EmPlace::Zone("GB".into()))));
        let us = Target::of_region(g, "aws/us-west-2").expect("Oregon");
        assert_eq!(us.em, Some(EmPlace::DataCenter { provider: "aws".into(), region: "us-west-2".into() }));
        assert_eq!(us.uk, None);
        assert!(Target::of_region(g, "europe-west99").is_err());
    }
}
