//! The embedded grid dataset (data/grid/, built by data/build_dataset.py) and the CO2 engine:
//! resolve a run's location to a grid intensity, recompute its CO2 with a range, and explain
//! the gap to what the CSV reported.

use crate::model::{Assessment, DatasetMode, DeltaKind, DeltaReason, Equivalent, LocationResolution, Run, Source};
use crate::records::records;

fn is_blank(fields: &[String]) -> bool {
    fields.len() == 1 && fields[0].trim().is_empty()
}
use std::collections::HashMap;
use std::sync::OnceLock;

const INTENSITY_CSV: &str = include_str!("../../data/grid/intensity.csv");
const REGIONS_CSV: &str = include_str!("../../data/grid/cloud_regions.csv");
const COUNTRIES_CSV: &str = include_str!("../../data/grid/countries.csv");
const SOURCES_CSV: &str = include_str!("../../data/grid/sources.csv");
const PUE_CSV: &str = include_str!("../../data/grid/pue.csv");
const EQUIVALENTS_CSV: &str = include_str!("../../data/grid/equivalents.csv");

/// Version of the embedded dataset, shown on the Data page.
pub const DATASET_VERSION: &str = "2026.11-1";

/// Relative differences below this are agreement (rounding in CSVs, float noise).
pub const AGREEMENT: f64 = 0.005;

/// Minimum half-width of an intensity range: an annual average hides at least this much of
/// the seasonal and hourly variation of a grid.
pub const INTENSITY_MIN_SPREAD: f64 = 0.10;

/// The datasets of `intensity.csv`. `CodecarbonOld` only explains gaps to reported figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Set {
    Codecarbon,
    Latest,
    CodecarbonOld,
}

#[derive(Debug, Clone)]
struct Figure {
    g_per_kwh: f64,
    name: String,
    source: String,
    year: u16,
}

/// A cloud region and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudRegion {
    pub provider: String,
    pub region: String,
    pub name: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    pub country_iso3: String,
    pub subdivision: String,
    pub continent: String,
    pub google_cfe_pct: Option<f64>,
}

#[derive(Debug, Clone)]
struct Factor {
    id: String,
    label: String,
    value: f64,
    unit: String,
    source: String,
    note: String,
}

/// The whole embedded dataset, parsed once.
#[derive(Debug)]
pub struct Grid {
    figures: HashMap<(Set, String), Figure>,
    /// Upper-cased ISO3, ISO2, names and variants → ISO3.
    countries: HashMap<String, String>,
    country_names: HashMap<String, String>,
    iso2: HashMap<String, String>,
    regions: Vec<CloudRegion>,
    pue: HashMap<String, (f64, String)>,
    sources: Vec<Source>,
    factors: Vec<Factor>,
    /// 10th–90th percentile of national intensities (latest): the range when the place is unknown.
    world_range: (f64, f64),
}

/// Where a run ran, as its CSV says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Location<'a> {
    pub cloud_provider: Option<&'a str>,
    pub cloud_region: Option<&'a str>,
    pub country_iso_code: Option<&'a str>,
    pub country_name: Option<&'a str>,
    pub region: Option<&'a str>,
}

impl<'a> Location<'a> {
    pub fn of(run: &'a Run) -> Location<'a> {
        Location {
            cloud_provider: run.cloud_provider.as_deref(),
            cloud_region: run.cloud_region.as_deref(),
            country_iso_code: run.country_iso_code.as_deref(),
            country_name: run.country_name.as_deref(),
            region: run.region.as_deref(),
        }
    }
}

/// What assessing a run needs of where it ran: see [`Grid::place`].
#[derive(Debug, Clone)]
pub struct Place {
    pub resolved: Resolved,
    /// Figures that could explain a gap to the CSV: value, kind, explanation.
    explanations: Vec<(f64, DeltaKind, String)>,
    codecarbon_g_per_kwh: f64,
}

/// The intensity chosen for a location, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub g_per_kwh: f64,
    pub low: f64,
    pub high: f64,
    pub source: String,
    pub year: u16,
    pub resolution: LocationResolution,
    pub label: String,
}

fn table(text: &str) -> Vec<HashMap<String, String>> {
    let mut recs = records(text).collect_owned().into_iter().map(|(_, f)| f).filter(|f| !is_blank(f));
    let header = recs.next().unwrap_or_default();
    recs.map(|r| header.iter().cloned().zip(r).collect()).collect()
}

fn num(row: &HashMap<String, String>, k: &str) -> f64 {
    row.get(k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

fn text(row: &HashMap<String, String>, k: &str) -> String {
    row.get(k).cloned().unwrap_or_default()
}

/// CodeCarbon's Chinese province matching: lower case, single spaces, administrative suffix dropped.
fn china_province(region: &str) -> String {
    let s = region.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    for suffix in [" autonomous region", " municipality", " province", " sheng", " shi", " zizhiqu"] {
        if let Some(stripped) = s.strip_suffix(suffix) {
            return stripped.to_string();
        }
    }
    s
}

const NORDIC: &[(&str, &[&str])] =
    &[("SWE", &["SE1", "SE2", "SE3", "SE4"]), ("NOR", &["NO1", "NO2", "NO3", "NO4", "NO5"]), ("FIN", &["FI"])];

impl Grid {
    /// The dataset compiled into the binary.
    pub fn embedded() -> &'static Grid {
        static GRID: OnceLock<Grid> = OnceLock::new();
        GRID.get_or_init(|| {
            Grid::parse(INTENSITY_CSV, REGIONS_CSV, COUNTRIES_CSV, SOURCES_CSV, PUE_CSV, EQUIVALENTS_CSV)
        })
    }

    fn parse(intensity: &str, regions: &str, countries: &str, sources: &str, pue: &str, equivalents: &str) -> Grid {
        let mut figures = HashMap::new();
        let mut national = Vec::new();
        for r in table(intensity) {
            let set = match r.get("dataset").map(String::as_str) {
                Some("codecarbon") => Set::Codecarbon,
                Some("latest") => Set::Latest,
                _ => Set::CodecarbonOld,
            };
            let level = text(&r, "level");
            let key = format!("{level}:{}", text(&r, "key"));
            let fig = Figure {
                g_per_kwh: num(&r, "g_per_kwh"),
                name: text(&r, "name"),
                source: text(&r, "source"),
                year: num(&r, "year") as u16,
            };
            if set == Set::Latest && level == "country" {
                national.push(fig.g_per_kwh);
            }
            figures.insert((set, key), fig);
        }
        national.sort_by(f64::total_cmp);
        let pct = |p: f64| national.get(((national.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
        let mut alias = HashMap::new();
        let mut country_names = HashMap::new();
        let mut iso2 = HashMap::new();
        for r in table(countries) {
            let iso3 = text(&r, "iso3");
            let i2 = text(&r, "iso2");
            for a in [iso3.clone(), i2.clone(), text(&r, "name")]
                .into_iter()
                .chain(text(&r, "aliases").split('|').map(String::from))
            {
                if !a.is_empty() {
                    alias.entry(a.to_uppercase()).or_insert_with(|| iso3.clone());
                }
            }
            country_names.insert(iso3.clone(), text(&r, "name"));
            iso2.insert(iso3, i2);
        }
        let regions = table(regions)
            .into_iter()
            .map(|r| CloudRegion {
                provider: text(&r, "provider"),
                region: text(&r, "region"),
                name: text(&r, "name"),
                city: text(&r, "city"),
                lat: num(&r, "lat"),
                lon: num(&r, "lon"),
                country_iso3: text(&r, "country_iso3"),
                subdivision: text(&r, "subdivision"),
                continent: text(&r, "continent"),
                google_cfe_pct: r.get("google_cfe_pct").and_then(|v| v.parse().ok()),
            })
            .collect();
        let sources = table(sources)
            .into_iter()
            .map(|r| Source {
                id: text(&r, "id"),
                title: text(&r, "title"),
                publisher: text(&r, "publisher"),
                url: text(&r, "url"),
                licence: text(&r, "licence"),
                year: num(&r, "year") as u16,
            })
            .collect();
        let pue =
            table(pue).into_iter().map(|r| (text(&r, "provider"), (num(&r, "pue"), text(&r, "source")))).collect();
        let factors = table(equivalents)
            .into_iter()
            .map(|r| Factor {
                id: text(&r, "id"),
                label: text(&r, "label"),
                value: num(&r, "value"),
                unit: text(&r, "unit"),
                source: text(&r, "source"),
                note: text(&r, "note"),
            })
            .collect();
        Grid {
            figures,
            countries: alias,
            country_names,
            iso2,
            regions,
            pue,
            sources,
            factors,
            world_range: (pct(0.1), pct(0.9)),
        }
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.id == id)
    }

    pub fn cloud_regions(&self) -> &[CloudRegion] {
        &self.regions
    }

    /// Provider PUE default and its source id.
    pub fn provider_pue(&self, provider: &str) -> Option<(f64, &str)> {
        self.pue.get(&provider.to_lowercase()).map(|(v, s)| (*v, s.as_str()))
    }

    /// Number of figures per dataset (for the Data page).
    pub fn counts(&self) -> (usize, usize) {
        let n = |set| self.figures.keys().filter(|(s, _)| *s == set).count();
        (n(Set::Latest), n(Set::Codecarbon))
    }

    fn get(&self, set: Set, level: &str, key: &str) -> Option<&Figure> {
        self.figures.get(&(set, format!("{level}:{key}")))
    }

    /// ISO3 for an ISO3, ISO2, name or variant ("USA", "US", "United States").
    pub fn iso3(&self, code_or_name: &str) -> Option<&str> {
        self.countries.get(&code_or_name.trim().to_uppercase()).map(String::as_str)
    }

    /// The name of a country known by its ISO3 code ("France" for FRA).
    /// The two-letter code of a country given by its three-letter one.
    pub fn iso2(&self, iso3: &str) -> Option<&str> {
        self.iso2.get(iso3).map(String::as_str).filter(|s| !s.is_empty())
    }

    pub fn country_name(&self, iso3: &str) -> Option<&str> {
        self.country_names.get(iso3).map(String::as_str).filter(|n| !n.is_empty())
    }

    fn country_label(&self, iso3: &str) -> String {
        self.iso2.get(iso3).filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| iso3.to_string())
    }

    fn label(&self, fig: &Figure, what: String) -> String {
        let publisher = self.source(&fig.source).map(|s| s.publisher.as_str()).unwrap_or(fig.source.as_str());
        format!("{what} — {publisher}, {}", fig.year)
    }

    fn resolved(&self, fig: &Figure, resolution: LocationResolution, what: String, spread: &[f64]) -> Resolved {
        let v = fig.g_per_kwh;
        let (low, high) = if resolution == LocationResolution::World {
            (self.world_range.0.min(v), self.world_range.1.max(v))
        } else {
            let lo = spread.iter().copied().fold(v, f64::min);
            let hi = spread.iter().copied().fold(v, f64::max);
            (lo.min(v * (1.0 - INTENSITY_MIN_SPREAD)), hi.max(v * (1.0 + INTENSITY_MIN_SPREAD)))
        };
        Resolved {
            g_per_kwh: v,
            low,
            high,
            source: fig.source.clone(),
            year: fig.year,
            resolution,
            label: self.label(fig, what),
        }
    }

    /// Every figure we hold for a level and key, across datasets and years.
    fn spread(&self, level: &str, key: &str) -> Vec<f64> {
        [Set::Latest, Set::Codecarbon, Set::CodecarbonOld]
            .iter()
            .filter_map(|&s| self.get(s, level, key).map(|f| f.g_per_kwh))
            .collect()
    }

    /// The intensity for a location in a dataset mode (first match wins, see the README).
    pub fn resolve(&self, loc: &Location, mode: DatasetMode) -> Resolved {
        match mode {
            DatasetMode::Codecarbon => self.resolve_codecarbon(loc),
            DatasetMode::Latest => self.resolve_latest(loc),
        }
    }

    /// CodeCarbon 3.3.2's lookup, bug for bug: cloud region (its impact.csv), then regional data
    /// for USA, CAN, CHN and the Nordic zones when a region is given, then the country by the
    /// ISO code as written, then the 475 g/kWh world average.
    fn resolve_codecarbon(&self, loc: &Location) -> Resolved {
        let set = Set::Codecarbon;
        if let (Some(p), Some(r)) = (loc.cloud_provider, loc.cloud_region) {
            let key = format!("{p}/{r}");
            if let Some(f) = self.get(set, "cloud", &key) {
                return self.resolved(
                    f,
                    LocationResolution::CloudRegion,
                    format!("{p} {r}"),
                    &self.spread("cloud", &key),
                );
            }
        }
        let iso = loc.country_iso_code.map(str::to_uppercase);
        let region = loc.region.map(str::to_lowercase);
        if let (Some(iso), Some(region)) = (iso.as_deref(), region.as_deref()) {
            let nordic = NORDIC.iter().find(|(c, _)| *c == iso);
            let key = match (iso, nordic) {
                (_, Some((_, zones))) if zones.contains(&region.to_uppercase().as_str()) => {
                    Some(format!("{iso}/{region}"))
                }
                ("CHN", _) => Some(format!("CHN/{}", china_province(region))),
                ("USA" | "CAN", _) => Some(format!("{iso}/{region}")),
                _ => None,
            };
            if let Some(f) = key.as_deref().and_then(|k| self.get(set, "subnational", k)) {
                let key = key.unwrap_or_default();
                let what = format!("grid of {}, {}", f.name, self.country_label(iso));
                return self.resolved(f, LocationResolution::Subnational, what, &self.spread("subnational", &key));
            }
        }
        if let Some(f) = iso.as_deref().and_then(|i| self.get(set, "country", i)) {
            let iso = iso.unwrap_or_default();
            let what = format!("grid of {}", f.name);
            return self.resolved(f, LocationResolution::National, what, &self.spread("country", &iso));
        }
        self.world(set)
    }

    fn world(&self, set: Set) -> Resolved {
        match self.get(set, "world", "WORLD") {
            Some(f) => self.resolved(f, LocationResolution::World, "world average (location unknown)".into(), &[]),
            None => Resolved {
                g_per_kwh: f64::NAN,
                low: f64::NAN,
                high: f64::NAN,
                source: String::new(),
                year: 0,
                resolution: LocationResolution::World,
                label: "no data".into(),
            },
        }
    }

    /// The newest figure: cloud region (provider figure, else the grid where it is), then
    /// sub-national, then national (codes and names accepted), then the world average.
    fn resolve_latest(&self, loc: &Location) -> Resolved {
        let set = Set::Latest;
        let mut iso3: Option<String> = loc
            .country_iso_code
            .and_then(|c| self.iso3(c))
            .or_else(|| loc.country_name.and_then(|n| self.iso3(n)))
            .map(String::from);
        let mut region: Option<String> = loc.region.map(|r| r.trim().to_lowercase()).filter(|r| !r.is_empty());
        if let (Some(p), Some(r)) = (loc.cloud_provider, loc.cloud_region) {
            let (p, r) = (p.trim().to_lowercase(), r.trim().to_lowercase());
            let key = format!("{p}/{r}");
            if let Some(f) = self.get(set, "cloud", &key) {
                return self.resolved(
                    f,
                    LocationResolution::CloudRegion,
                    format!("{p} {r}"),
                    &self.spread("cloud", &key),
                );
            }
            if let Some(cr) = self.regions.iter().find(|c| c.provider == p && c.region == r) {
                iso3 = Some(cr.country_iso3.clone());
                region = (!cr.subdivision.is_empty()).then(|| cr.subdivision.to_lowercase());
            }
        }
        if let (Some(iso), Some(region)) = (iso3.as_deref(), region.as_deref()) {
            let sub = if iso == "CHN" { china_province(region) } else { region.to_string() };
            let key = format!("{iso}/{sub}");
            if let Some(f) = self.get(set, "subnational", &key) {
                let what = format!("grid of {}, {}", f.name, self.country_label(iso));
                let mut spread = self.spread("subnational", &key);
                spread.extend(self.spread("country", iso));
                return self.resolved(f, LocationResolution::Subnational, what, &spread);
            }
        }
        if let Some(iso) = iso3.as_deref() {
            let f = self.get(set, "country", iso).or_else(|| self.get(Set::Codecarbon, "country", iso));
            if let Some(f) = f {
                let name = self.country_names.get(iso).cloned().unwrap_or_else(|| f.name.clone());
                return self.resolved(
                    f,
                    LocationResolution::National,
                    format!("grid of {name}"),
                    &self.spread("country", iso),
                );
            }
        }
        self.world(set)
    }

    /// A description of the embedded data for the Data page and the API.
    pub fn info(&self, applies_provider_pue: bool) -> crate::model::DatasetInfo {
        let (latest, codecarbon) = self.counts();
        let mut pue: Vec<(String, f64, String)> =
            self.pue.iter().map(|(p, (v, s))| (p.clone(), *v, s.clone())).collect();
        pue.sort_by(|a, b| a.0.cmp(&b.0));
        crate::model::DatasetInfo {
            version: DATASET_VERSION.into(),
            modes: vec!["latest".into(), "codecarbon".into()],
            figures_latest: latest,
            figures_codecarbon: codecarbon,
            cloud_regions: self.regions.len(),
            sources: self.sources.clone(),
            provider_pue: pue,
            energy_errors: vec![
                ("GPU, NVML power reading".into(), GPU_NVML),
                ("CPU, RAPL reading (Linux, measured)".into(), CPU_RAPL),
                ("CPU or GPU, Apple powermetrics reading".into(), APPLE_POWERMETRICS),
                ("CPU, CodeCarbon's TDP/constant or load-model estimate".into(), CPU_ESTIMATE),
                ("RAM, CodeCarbon's W-per-GB model".into(), RAM_MODEL),
                ("total only, no CPU/GPU/RAM split (v1 files)".into(), NO_SPLIT),
            ],
            intensity_min_spread: INTENSITY_MIN_SPREAD,
            world_range_g_per_kwh: self.world_range,
            applies_provider_pue,
        }
    }

    /// Other figures that may explain a reported intensity: (value, kind, description).
    /// What could explain a gap between the CSV and the recomputation at a place (the row's
    /// PUE aside: see [`Grid::assess_at`]), and CodeCarbon's own figure there.
    fn explanations(&self, loc: &Location, used: LocationResolution) -> (Vec<(f64, DeltaKind, String)>, f64) {
        let mut out = Vec::new();
        let cc = self.resolve_codecarbon(loc);
        let kind = match cc.resolution {
            LocationResolution::World => DeltaKind::WorldAverageFallback,
            r if r != used && used != LocationResolution::CloudRegion => DeltaKind::NationalVsSubnational,
            _ => DeltaKind::NewerData,
        };
        out.push((cc.g_per_kwh, kind, format!("CodeCarbon 3.3.2's figure for this place: {}", cc.label)));
        if let Some(w) = self.get(Set::Codecarbon, "world", "WORLD") {
            out.push((
                w.g_per_kwh,
                DeltaKind::WorldAverageFallback,
                "CodeCarbon had no figure for the place and used its world average".into(),
            ));
        }
        let iso = loc.country_iso_code.map(str::to_uppercase);
        let region = loc.region.map(str::to_lowercase);
        if let (Some(iso), Some(region)) = (iso.as_deref(), region.as_deref()) {
            if let Some(f) = self.get(Set::CodecarbonOld, "subnational", &format!("{iso}/{region}")) {
                out.push((
                    f.g_per_kwh,
                    DeltaKind::OlderCodecarbonData,
                    self.label(f, format!("older CodeCarbon data for {}", f.name)),
                ));
            }
        }
        if let (Some(p), Some(r)) = (loc.cloud_provider, loc.cloud_region) {
            if let Some(f) = self.get(Set::CodecarbonOld, "cloud", &format!("{p}/{r}")) {
                out.push((
                    f.g_per_kwh,
                    DeltaKind::OlderCodecarbonData,
                    self.label(f, format!("older CodeCarbon figure for {p} {r}")),
                ));
            }
        }
        // National where sub-national was expected, and the reverse.
        for set in [Set::Codecarbon, Set::Latest] {
            if let Some(iso3) = iso.as_deref().and_then(|i| self.iso3(i)) {
                if let Some(f) = self.get(set, "country", iso3) {
                    out.push((
                        f.g_per_kwh,
                        DeltaKind::NationalVsSubnational,
                        self.label(f, format!("national figure of {}", f.name)),
                    ));
                }
                if let Some(region) = region.as_deref() {
                    if let Some(f) = self.get(set, "subnational", &format!("{iso3}/{region}")) {
                        out.push((
                            f.g_per_kwh,
                            DeltaKind::NationalVsSubnational,
                            self.label(f, format!("sub-national figure of {}", f.name)),
                        ));
                    }
                }
            }
        }
        (out, cc.g_per_kwh)
    }

    /// The intensity at a place in a mode, and what could explain gaps there: what assessing a
    /// run needs of its place, computed once for all the runs there.
    pub fn place(&self, loc: &Location, mode: DatasetMode) -> Place {
        let resolved = self.resolve(loc, mode);
        let (explanations, codecarbon_g_per_kwh) = self.explanations(loc, resolved.resolution);
        Place { resolved, explanations, codecarbon_g_per_kwh }
    }

    /// A run's CO2 recomputed in `mode`, with ranges and the reason for any gap to the CSV.
    /// `apply_provider_pue`: multiply the energy of cloud runs that carry no `pue` by the
    /// provider's published PUE (CodeCarbon's energies already include their own `pue`).
    pub fn assess(&self, run: &Run, mode: DatasetMode, apply_provider_pue: bool) -> Assessment {
        self.assess_at(run, mode, apply_provider_pue, &self.place(&Location::of(run), mode))
    }

    /// [`Grid::assess`] with the run's [`Place`] already worked out: many runs share a place,
    /// and working one out is the costly part.
    pub fn assess_at(&self, run: &Run, mode: DatasetMode, apply_provider_pue: bool, place: &Place) -> Assessment {
        let res = &place.resolved;
        let pue_applied = if apply_provider_pue && run.pue.is_none() {
            run.cloud_provider.as_deref().and_then(|p| self.provider_pue(p)).map(|(v, _)| v)
        } else {
            None
        };
        let (energy, e_low, e_high, method) = energy_range(run);
        let k = pue_applied.unwrap_or(1.0);
        let co2 = |e: Option<f64>, i: f64| e.map(|e| e * k * i / 1000.0);
        let implied = match (run.co2_kg_reported, run.energy_kwh) {
            (Some(c), Some(e)) if e > 0.0 => Some(c / e * 1000.0),
            _ => None,
        };
        let delta_reason = implied.and_then(|imp| {
            let differs = |a: f64, b: f64| (a - b).abs() > AGREEMENT * b.abs().max(f64::MIN_POSITIVE);
            if !differs(imp * k, res.g_per_kwh * k) || !differs(imp, res.g_per_kwh * k) {
                return None;
            }
            if run.tool.is_some() {
                let basis = run.tool_basis.as_deref().unwrap_or("its own intensity, not written in its logs");
                return Some(DeltaReason {
                    kind: DeltaKind::OtherTool,
                    detail: format!(
                        "{} implies {imp:.1} g/kWh, recomputed with {:.1} ({}): {basis}",
                        run.tool_label(),
                        res.g_per_kwh,
                        res.label
                    ),
                });
            }
            let detail_of = |d: String| format!("the CSV implies {:.1} g/kWh, recomputed with {:.1}: {d}", imp, res.g_per_kwh);
            let pue = run.pue.filter(|p| (p - 1.0).abs() > AGREEMENT);
            let found = match place.explanations.iter().find(|(v, _, _)| !differs(imp, *v)) {
                Some((_, kind, d)) => Some((*kind, d.clone())),
                None => pue
                    .filter(|p| !differs(imp, place.codecarbon_g_per_kwh * p))
                    .map(|p| (DeltaKind::Pue, format!("CodeCarbon's figure × the row's PUE {p}"))),
            };
            Some(match found {
                Some((DeltaKind::NewerData, d)) if mode == DatasetMode::Codecarbon => {
                    DeltaReason { kind: DeltaKind::NationalVsSubnational, detail: detail_of(d) }
                }
                Some((kind, d)) => DeltaReason { kind, detail: detail_of(d) },
                None => DeltaReason {
                    kind: DeltaKind::LiveOrUnknown,
                    detail: detail_of("no embedded figure matches: a live Electricity Maps value, a forced intensity or a modified CodeCarbon".into()),
                },
            })
        });
        Assessment {
            dataset: mode,
            co2_kg: co2(energy, res.g_per_kwh),
            // The smallest and largest products, whatever the signs.
            co2_kg_low: co2(e_low, res.low).zip(co2(e_low, res.high)).map(|(a, b)| a.min(b)),
            co2_kg_high: co2(e_high, res.high).zip(co2(e_high, res.low)).map(|(a, b)| a.max(b)),
            energy_kwh_low: e_low.map(|e| e * k),
            energy_kwh_high: e_high.map(|e| e * k),
            energy_method: method,
            intensity_g_per_kwh: res.g_per_kwh,
            intensity_low_g_per_kwh: res.low,
            intensity_high_g_per_kwh: res.high,
            intensity_source: res.source.clone(),
            intensity_year: res.year,
            location_resolution: res.resolution,
            location_label: res.label.clone(),
            implied_intensity_g_per_kwh: implied,
            delta_reason,
            pue_applied,
        }
    }

    /// Everyday equivalents of `co2_kg` (with its range) and `kwh`, each with its source.
    pub fn equivalents(&self, co2_kg: f64, co2_low: f64, co2_high: f64, kwh: f64) -> Vec<Equivalent> {
        self.equivalents_in_range((co2_kg, co2_low, co2_high), (kwh, kwh, kwh))
    }

    /// [`Grid::equivalents`] with the energy's range too, for the energy-based factors:
    /// `(value, low, high)` of CO2 (kg) and of energy (kWh).
    pub fn equivalents_in_range(&self, co2: (f64, f64, f64), kwh: (f64, f64, f64)) -> Vec<Equivalent> {
        let (co2_kg, co2_low, co2_high) = co2;
        self.factors
            .iter()
            .map(|f| {
                // Energy-based factors are per kWh; the others per gram of CO2.
                let by_energy = f.unit.starts_with("kWh");
                let amount = |x: f64| if by_energy { x / f.value } else { x * 1000.0 / f.value };
                let (a, lo, hi) = if by_energy {
                    (amount(kwh.0), amount(kwh.1), amount(kwh.2))
                } else {
                    (amount(co2_kg), amount(co2_low), amount(co2_high))
                };
                Equivalent {
                    id: f.id.clone(),
                    label: f.label.clone(),
                    amount: a,
                    amount_low: lo,
                    amount_high: hi,
                    factor: f.value,
                    factor_unit: f.unit.clone(),
                    source: self.source(&f.source).cloned().unwrap_or_else(|| Source {
                        id: f.source.clone(),
                        title: String::new(),
                        publisher: String::new(),
                        url: String::new(),
                        licence: String::new(),
                        year: 0,
                    }),
                    note: f.note.clone(),
                }
            })
            .collect()
    }
}

/// Relative error of each way CodeCarbon obtains energy (the Data page explains them).
pub const GPU_NVML: f64 = 0.05;
pub const APPLE_POWERMETRICS: f64 = 0.10;
pub const CPU_RAPL: f64 = 0.10;
pub const CPU_ESTIMATE: f64 = 0.40;
pub const RAM_MODEL: f64 = 0.40;
pub const NO_SPLIT: f64 = 0.30;

/// The run's energy and its range, from how each part was most likely obtained (inferred from
/// the row's columns: an Apple chip reads powermetrics, a CPU power that is a multiple of 0.5 W
/// is CodeCarbon's TDP/constant estimate, Linux otherwise reads RAPL; GPUs read NVML; RAM is
/// always CodeCarbon's model).
pub fn energy_range(run: &Run) -> (Option<f64>, Option<f64>, Option<f64>, String) {
    let Some(total) = run.energy_kwh else { return (None, None, None, "no energy in the CSV".into()) };
    // The parts the range is made of: the positive ones (CodeCarbon writes slightly negative
    // deltas at times); the range is scaled from their sum to the total.
    let parts = [run.cpu_energy_kwh, run.gpu_energy_kwh, run.ram_energy_kwh];
    let split: f64 = parts.iter().flatten().filter(|e| **e > 0.0).sum();
    if split <= 0.0 {
        let (a, b) = (total * (1.0 - NO_SPLIT), total * (1.0 + NO_SPLIT));
        return (
            Some(total),
            Some(a.min(b)),
            Some(a.max(b)),
            format!("no CPU/GPU/RAM split in this file layout: ±{:.0} %", NO_SPLIT * 100.0),
        );
    }
    let apple = |m: &Option<String>| m.as_deref().is_some_and(|m| m.contains("Apple"));
    let tdp_estimate = format!("{}'s TDP/constant estimate", run.tool_name());
    let load_estimate = format!("{}'s load-model estimate", run.tool_name());
    // Other trackers read RAPL on Linux (carbontracker, experiment-impact-tracker) or fall back
    // to a share of the TDP (a round figure, as CodeCarbon's).
    let cpu_err = if apple(&run.cpu_model) {
        (APPLE_POWERMETRICS, "powermetrics reading")
    } else if run.cpu_power_w.is_some_and(|p| (p * 2.0).fract() == 0.0) {
        (CPU_ESTIMATE, tdp_estimate.as_str())
    } else if run.tool.is_some() || run.os.as_deref().is_some_and(|o| o.starts_with("Linux")) {
        (CPU_RAPL, "RAPL reading")
    } else {
        (CPU_ESTIMATE, load_estimate.as_str())
    };
    let gpu_err =
        if apple(&run.gpu_model) { (APPLE_POWERMETRICS, "powermetrics reading") } else { (GPU_NVML, "NVML reading") };
    let mut low = 0.0;
    let mut high = 0.0;
    let mut notes = Vec::new();
    for (name, e, (err, how)) in [
        ("CPU", run.cpu_energy_kwh, cpu_err),
        ("GPU", run.gpu_energy_kwh, gpu_err),
        ("RAM", run.ram_energy_kwh, (RAM_MODEL, "CodeCarbon's RAM model")),
    ] {
        if let Some(e) = e.filter(|e| *e > 0.0) {
            low += e * (1.0 - err);
            high += e * (1.0 + err);
            notes.push(format!("{name}: {how} ±{:.0} %", err * 100.0));
        }
    }
    // Scale to the total (it may differ from the parts' sum by rounding or PUE).
    let k = total / split;
    // Ordered whatever the signs (CodeCarbon writes slightly negative deltas at times).
    (Some(total), Some((low * k).min(high * k)), Some((low * k).max(high * k)), notes.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc<'a>(
        cloud: Option<(&'a str, &'a str)>,
        iso: Option<&'a str>,
        name: Option<&'a str>,
        region: Option<&'a str>,
    ) -> Location<'a> {
        Location {
            cloud_provider: cloud.map(|c| c.0),
            cloud_region: cloud.map(|c| c.1),
            country_iso_code: iso,
            country_name: name,
            region,
        }
    }

    #[test]
    fn every_resolution_path_in_both_modes() {
        let g = Grid::embedded();
        // Cloud region with a provider figure: Google 2024 (latest), CodeCarbon's impact.csv.
        let r = g.resolve(&loc(Some(("gcp", "us-central1")), Some("USA"), None, Some("Iowa")), DatasetMode::Latest);
        assert_eq!((r.resolution, r.g_per_kwh, r.year), (LocationResolution::CloudRegion, 412.72, 2024));
        let r = g.resolve(&loc(Some(("gcp", "us-central1")), Some("USA"), None, Some("Iowa")), DatasetMode::Codecarbon);
        assert_eq!((r.resolution, r.g_per_kwh), (LocationResolution::CloudRegion, 430.0));
        // AWS has no published figure: latest uses the grid of Virginia, hand-computed from
        // eGRID2023's 539.6 lbs/MWh… as stored: lbs/MWh × 0.45359237.
        let r = g.resolve(&loc(Some(("aws", "us-east-1")), None, None, None), DatasetMode::Latest);
        assert_eq!(r.resolution, LocationResolution::Subnational);
        assert!(r.label.starts_with("grid of Virginia, US — US EPA, 2023"), "{}", r.label);
        // Sub-national: Quebec is 3.9 g/kWh in CodeCarbon 3.x (mix shares × fossil factors).
        let r = g.resolve(&loc(None, Some("CAN"), None, Some("quebec")), DatasetMode::Codecarbon);
        assert_eq!(r.resolution, LocationResolution::Subnational);
        assert!((r.g_per_kwh - 3.9374).abs() < 1e-4);
        // National, with a name variant in latest mode; exact ISO code in codecarbon mode.
        let r = g.resolve(&loc(None, None, Some("United States"), None), DatasetMode::Latest);
        assert_eq!((r.resolution, r.g_per_kwh, r.year), (LocationResolution::National, 383.55, 2024));
        let r = g.resolve(&loc(None, Some("ID"), None, None), DatasetMode::Latest);
        assert_eq!(r.resolution, LocationResolution::National, "ISO2 accepted in latest mode");
        let r = g.resolve(&loc(None, Some("ID"), None, None), DatasetMode::Codecarbon);
        assert_eq!((r.resolution, r.g_per_kwh), (LocationResolution::World, 475.0), "CodeCarbon wants ISO3");
        // Nothing: world average, flagged, with a wide range.
        let r = g.resolve(&loc(None, None, None, None), DatasetMode::Latest);
        assert_eq!(r.resolution, LocationResolution::World);
        assert!(r.low < r.g_per_kwh / 2.0 && r.high > r.g_per_kwh * 1.3, "{r:?}");
        // Nordic zone and Chinese province with an administrative suffix.
        let r = g.resolve(&loc(None, Some("SWE"), None, Some("se1")), DatasetMode::Codecarbon);
        assert_eq!((r.resolution, r.g_per_kwh), (LocationResolution::Subnational, 25.9));
        let r = g.resolve(&loc(None, Some("CHN"), None, Some("Beijing  Municipality")), DatasetMode::Latest);
        assert_eq!((r.resolution, r.g_per_kwh), (LocationResolution::Subnational, 555.4));
    }

    #[test]
    fn ranges_hold_the_value() {
        let g = Grid::embedded();
        for l in [
            loc(None, Some("FRA"), None, None),
            loc(None, Some("USA"), None, Some("california")),
            loc(None, None, None, None),
        ] {
            for m in [DatasetMode::Latest, DatasetMode::Codecarbon] {
                let r = g.resolve(&l, m);
                assert!(r.low <= r.g_per_kwh && r.g_per_kwh <= r.high, "{r:?}");
                assert!(r.high >= r.g_per_kwh * 1.1 - 1e-9);
            }
        }
    }

    fn run() -> Run {
        Run {
            run_id: "r".into(),
            energy_kwh: Some(2.0),
            cpu_energy_kwh: Some(0.5),
            gpu_energy_kwh: Some(1.0),
            ram_energy_kwh: Some(0.5),
            cpu_power_w: Some(42.5),
            country_iso_code: Some("FRA".into()),
            country_name: Some("France".into()),
            ..Run::default()
        }
    }

    #[test]
    fn co2_is_energy_times_intensity_with_a_range_from_both() {
        let g = Grid::embedded();
        let a = g.assess(&run(), DatasetMode::Codecarbon, false);
        // France in CodeCarbon 3.3.2: 56.039 g/kWh; 2 kWh → 0.112078 kg.
        assert!((a.co2_kg.unwrap_or(0.0) - 2.0 * 56.039 / 1000.0).abs() < 1e-12);
        // Energy: CPU estimate ±40 % (42.5 W is TDP/2), GPU NVML ±5 %, RAM model ±40 %.
        assert!((a.energy_kwh_low.unwrap_or(0.0) - (0.3 + 0.95 + 0.3)).abs() < 1e-12);
        assert!((a.energy_kwh_high.unwrap_or(0.0) - (0.7 + 1.05 + 0.7)).abs() < 1e-12);
        assert!((a.co2_kg_low.unwrap_or(0.0) - 1.55 * a.intensity_low_g_per_kwh / 1000.0).abs() < 1e-12);
        assert!(a.co2_kg_low <= a.co2_kg && a.co2_kg <= a.co2_kg_high);
        assert_eq!(a.delta_reason, None, "nothing reported, nothing to explain");
    }

    #[test]
    fn gaps_to_the_reported_co2_are_classified() {
        let g = Grid::embedded();
        let mut r = run();
        // Reported at the world average: CodeCarbon's fallback.
        r.co2_kg_reported = Some(2.0 * 0.475);
        let a = g.assess(&r, DatasetMode::Codecarbon, false);
        assert_eq!(a.delta_reason.map(|d| d.kind), Some(DeltaKind::WorldAverageFallback));
        // Reported with CodeCarbon's own figure: agrees in codecarbon mode, newer data in latest.
        r.co2_kg_reported = Some(2.0 * 0.056039);
        assert_eq!(g.assess(&r, DatasetMode::Codecarbon, false).delta_reason, None);
        let a = g.assess(&r, DatasetMode::Latest, false);
        assert_eq!(a.delta_reason.map(|d| d.kind), Some(DeltaKind::NewerData));
        // A US state on 2016 data (pre-3.3 CodeCarbon): older CodeCarbon data.
        let mut us = run();
        us.country_iso_code = Some("USA".into());
        us.region = Some("connecticut".into());
        let old = g.get(Set::CodecarbonOld, "subnational", "USA/connecticut").map(|f| f.g_per_kwh).unwrap_or(0.0);
        us.co2_kg_reported = Some(2.0 * old / 1000.0);
        let a = g.assess(&us, DatasetMode::Codecarbon, false);
        assert_eq!(a.delta_reason.map(|d| d.kind), Some(DeltaKind::OlderCodecarbonData));
        // Something no figure explains.
        r.co2_kg_reported = Some(2.0 * 0.2345);
        let a = g.assess(&r, DatasetMode::Codecarbon, false);
        assert_eq!(a.delta_reason.map(|d| d.kind), Some(DeltaKind::LiveOrUnknown));
    }

    #[test]
    fn provider_pue_applies_only_on_request_and_only_without_a_pue_column() {
        let g = Grid::embedded();
        let mut r = run();
        r.cloud_provider = Some("aws".into());
        r.cloud_region = Some("eu-west-3".into());
        let plain = g.assess(&r, DatasetMode::Latest, false);
        let with = g.assess(&r, DatasetMode::Latest, true);
        assert_eq!(with.pue_applied, Some(1.15));
        assert!((with.co2_kg.unwrap_or(0.0) - plain.co2_kg.unwrap_or(0.0) * 1.15).abs() < 1e-12);
        r.pue = Some(1.0);
        assert_eq!(g.assess(&r, DatasetMode::Latest, true).pue_applied, None, "never twice");
    }

    #[test]
    fn equivalents_use_their_factor_and_source() {
        let g = Grid::embedded();
        let eq = g.equivalents(1.066, 1.0, 1.2, 19.8);
        let car = eq.iter().find(|e| e.id == "car_km_eu").map(|e| e.amount).unwrap_or(0.0);
        assert!((car - 10.0).abs() < 1e-9, "1066 g / 106.6 g/km = 10 km");
        let days = eq.iter().find(|e| e.id == "household_days_eu").map(|e| e.amount).unwrap_or(0.0);
        assert!((days - 2.0).abs() < 1e-9, "19.8 kWh / 9.9 kWh a day");
        let phone = eq.iter().find(|e| e.id == "smartphone_charges");
        assert!(phone.is_some_and(|p| (p.amount - 1066.0 / 12.4).abs() < 1e-9 && p.source.publisher == "US EPA"));
        let amount = |id: &str| eq.iter().find(|e| e.id == id).map(|e| e.amount).unwrap_or(f64::NAN);
        assert!((amount("car_km_us") - 1066.0 / 244.0).abs() < 1e-12, "393 g/mile = 244 g/km");
        assert!((amount("flight_pkm") - 1066.0 / 171.0).abs() < 1e-12);
        assert!((amount("flight_paris_london") - 1066.0 / 50_000.0).abs() < 1e-12);
        assert!((amount("flight_ny_sf") - 1066.0 / 570_000.0).abs() < 1e-12);
        let tree = eq.iter().find(|e| e.id == "tree_months").map(|e| e.amount).unwrap_or(0.0);
        assert!((tree - 1066.0 / 5000.0).abs() < 1e-12);
        assert!(eq.iter().all(|e| e.amount_low <= e.amount && e.amount <= e.amount_high && !e.source.url.is_empty()));
    }
}
