//! The recommender: a selection's energy in every cloud region, ranked, with filters for
//! provider, continent (data residency) and distance, and one sentence saying what to do.

use crate::grid::{Grid, Location};
use crate::model::{Advice, DatasetMode, RegionRow, Run, WhatIf, WhatIfOption};
pub use crate::query::WhatIfFilters;

/// Every cloud region with the intensity it runs on (latest dataset).
pub fn regions(grid: &Grid) -> Vec<RegionRow> {
    grid.cloud_regions()
        .iter()
        .map(|c| {
            let loc =
                Location { cloud_provider: Some(&c.provider), cloud_region: Some(&c.region), ..Location::default() };
            let r = grid.resolve(&loc, DatasetMode::Latest);
            RegionRow {
                provider: c.provider.clone(),
                region: c.region.clone(),
                name: c.name.clone(),
                city: c.city.clone(),
                lat: c.lat,
                lon: c.lon,
                country_iso_code: c.country_iso3.clone(),
                continent: c.continent.clone(),
                intensity_g_per_kwh: r.g_per_kwh,
                intensity_low_g_per_kwh: r.low,
                intensity_high_g_per_kwh: r.high,
                source: r.source,
                year: r.year,
                label: if r.resolution == crate::model::LocationResolution::CloudRegion {
                    // "gcp europe-north1 — Google Cloud, 2024": the region is named beside it already.
                    format!(
                        "the provider's own figure — {}",
                        r.label.split_once(" — ").map(|x| x.1).unwrap_or(&r.label)
                    )
                } else {
                    r.label
                },
                google_cfe_pct: c.google_cfe_pct,
            }
        })
        .collect()
}

/// Great-circle distance, km.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().asin()
}

/// Where a run ran, as coordinates: its own, else its cloud region's.
fn coordinates(run: &Run, regions: &[RegionRow]) -> Option<(f64, f64)> {
    if let (Some(lat), Some(lon)) = (run.latitude, run.longitude) {
        return Some((lat, lon));
    }
    let (p, r) = (run.cloud_provider.as_deref()?, run.cloud_region.as_deref()?);
    regions.iter().find(|x| x.provider == p && x.region == r).map(|x| (x.lat, x.lon))
}

/// The what-if of `runs` (assessed in the latest dataset) over `regions`.
pub fn what_if(selection: &str, runs: &[&Run], regions: &[RegionRow], filters: &WhatIfFilters) -> WhatIf {
    let energy: f64 = runs.iter().filter_map(|r| r.energy_kwh).sum();
    let (lo_e, hi_e): (f64, f64) = runs
        .iter()
        .map(|r| (r.assessment.energy_kwh_low.unwrap_or(0.0), r.assessment.energy_kwh_high.unwrap_or(0.0)))
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let current: f64 = runs.iter().filter_map(|r| r.assessment.co2_kg).sum();
    let mut places: Vec<&str> = runs.iter().map(|r| r.assessment.location_label.as_str()).collect();
    places.sort_unstable();
    places.dedup();
    let origin = runs.iter().find_map(|r| coordinates(r, regions));
    let mut options: Vec<WhatIfOption> = regions
        .iter()
        .map(|r| {
            let co2 = energy * r.intensity_g_per_kwh / 1000.0;
            WhatIfOption {
                provider: r.provider.clone(),
                region: r.region.clone(),
                name: r.name.clone(),
                country_iso_code: r.country_iso_code.clone(),
                continent: r.continent.clone(),
                intensity_g_per_kwh: r.intensity_g_per_kwh,
                co2_kg: co2,
                co2_kg_low: lo_e * r.intensity_low_g_per_kwh / 1000.0,
                co2_kg_high: hi_e * r.intensity_high_g_per_kwh / 1000.0,
                saving_kg: current - co2,
                saving_pct: if current > 0.0 { (current - co2) / current * 100.0 } else { 0.0 },
                distance_km: origin.map(|(lat, lon)| haversine_km(lat, lon, r.lat, r.lon)),
            }
        })
        .filter(|o| filters.provider.as_deref().is_none_or(|p| o.provider.eq_ignore_ascii_case(p)))
        .filter(|o| filters.continent.as_deref().is_none_or(|c| o.continent.eq_ignore_ascii_case(c)))
        .filter(|o| match (filters.within_km, o.distance_km) {
            (Some(max), Some(d)) => d <= max,
            _ => true,
        })
        .collect();
    options.sort_by(|a, b| a.co2_kg.total_cmp(&b.co2_kg).then_with(|| a.region.cmp(&b.region)));
    let advice = advise(&options, current, energy);
    WhatIf {
        selection: selection.to_string(),
        runs: runs.len(),
        energy_kwh: energy,
        current_co2_kg: current,
        places: places.len(),
        place: match places.as_slice() {
            [one] => Some(one.to_string()),
            _ => None,
        },
        options,
        advice,
        filters: filters.clone(),
        origin_known: origin.is_some(),
    }
}

/// EU new car, g CO2 per km (the same factor as data/grid/equivalents.csv, car_km_eu).
fn car_km(kg: f64) -> f64 {
    let factor =
        Grid::embedded().equivalents(1.0, 1.0, 1.0, 0.0).into_iter().find(|e| e.id == "car_km_eu").map(|e| e.factor);
    kg * 1000.0 / factor.unwrap_or(f64::NAN)
}

/// What to recommend: the first option (the lowest CO2) unless where it ran is as clean.
fn advise(options: &[WhatIfOption], current: f64, energy: f64) -> Advice {
    let Some(best) = options.first() else { return Advice::NoRegion };
    if energy <= 0.0 {
        return Advice::NoEnergy;
    }
    if best.saving_kg <= current * crate::grid::AGREEMENT {
        return Advice::AlreadyCleanest;
    }
    Advice::Move { car_km: car_km(best.saving_kg) }
}

/// Where `runs` ran, for a map: a cloud run at its region's coordinates, another at the
/// coordinates CodeCarbon logged, grouped by place (rounded to 0.1°); and how many runs have no
/// coordinates.
pub fn places_of(runs: &[&Run], regions: &[RegionRow]) -> (Vec<crate::pages::MapPlace>, usize) {
    use std::collections::HashMap;
    let region = |r: &Run| {
        let (p, c) = (r.cloud_provider.as_deref()?, r.cloud_region.as_deref()?);
        regions.iter().find(|x| x.provider.eq_ignore_ascii_case(p) && x.region.eq_ignore_ascii_case(c))
    };
    let mut places: HashMap<(i32, i32), crate::pages::MapPlace> = HashMap::new();
    let mut unplaced = 0;
    for r in runs {
        let at = match region(r) {
            Some(x) => Some((x.lon, x.lat, format!("{} {} ({})", x.provider, x.region, x.name))),
            None => match (r.longitude, r.latitude) {
                (Some(lon), Some(lat)) if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) => {
                    let place = r.assessment.location_label.split(" — ").next().unwrap_or_default();
                    Some((lon, lat, place.strip_prefix("grid of ").unwrap_or(place).to_string()))
                }
                _ => None,
            },
        };
        let Some((lon, lat, label)) = at else {
            unplaced += 1;
            continue;
        };
        let key = ((lon * 10.0).round() as i32, (lat * 10.0).round() as i32);
        let p = places.entry(key).or_insert_with(|| crate::pages::MapPlace {
            label,
            lon,
            lat,
            g_per_kwh: r.assessment.intensity_g_per_kwh,
            ..Default::default()
        });
        p.runs += 1;
        p.co2_kg += r.assessment.co2_kg.unwrap_or(0.0);
    }
    let mut out: Vec<crate::pages::MapPlace> = places.into_values().collect();
    // The largest drawn first, so smaller circles stay on top.
    out.sort_by(|a, b| b.co2_kg.total_cmp(&a.co2_kg).then_with(|| a.label.cmp(&b.label)));
    (out, unplaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Assessment;

    fn region(provider: &str, name: &str, continent: &str, g: f64, lat: f64, lon: f64) -> RegionRow {
        RegionRow {
            provider: provider.into(),
            region: name.into(),
            name: name.into(),
            city: String::new(),
            lat,
            lon,
            country_iso_code: String::new(),
            continent: continent.into(),
            intensity_g_per_kwh: g,
            intensity_low_g_per_kwh: g * 0.9,
            intensity_high_g_per_kwh: g * 1.1,
            source: String::new(),
            year: 2024,
            label: String::new(),
            google_cfe_pct: None,
        }
    }

    fn run(kwh: f64, co2: f64) -> Run {
        Run {
            run_id: "r".into(),
            energy_kwh: Some(kwh),
            latitude: Some(48.85),
            longitude: Some(2.35),
            assessment: Assessment {
                co2_kg: Some(co2),
                energy_kwh_low: Some(kwh * 0.9),
                energy_kwh_high: Some(kwh * 1.1),
                location_label: "grid of here".into(),
                ..Assessment::default()
            },
            ..Run::default()
        }
    }

    fn fixtures() -> Vec<RegionRow> {
        vec![
            region("gcp", "paris", "Europe", 50.0, 48.85, 2.35),
            region("aws", "stockholm", "Europe", 20.0, 59.33, 18.07),
            region("aws", "virginia", "North America", 300.0, 38.9, -77.0),
            region("azure", "oslo", "Europe", 30.0, 59.91, 10.75),
        ]
    }

    fn car_km_factor() -> f64 {
        let all = Grid::embedded().equivalents(1.0, 1.0, 1.0, 0.0);
        all.iter().find(|e| e.id == "car_km_eu").map_or(f64::NAN, |e| e.factor)
    }

    #[test]
    fn ranks_every_region_by_co2_with_savings() {
        // 10 kWh that emitted 4 kg where they ran (400 g/kWh).
        let r = run(10.0, 4.0);
        let w = what_if("run r", &[&r], &fixtures(), &WhatIfFilters::default());
        let order: Vec<&str> = w.options.iter().map(|o| o.region.as_str()).collect();
        assert_eq!(order, ["stockholm", "oslo", "paris", "virginia"]);
        let best = &w.options[0];
        assert!((best.co2_kg - 0.2).abs() < 1e-12, "10 kWh × 20 g/kWh");
        assert!((best.saving_kg - 3.8).abs() < 1e-12);
        assert!((best.saving_pct - 95.0).abs() < 1e-9);
        assert!((best.co2_kg_low - 9.0 * 18.0 / 1000.0).abs() < 1e-12);
        let Advice::Move { car_km } = w.advice else { panic!("{:?}", w.advice) };
        assert!((car_km - 3.8 / (car_km_factor() / 1000.0)).abs() < 1e-9, "3.8 kg saved: {car_km} km");
        assert!(car_km > 10.0 && car_km < 100.0, "a car emits ~100 g/km: {car_km}");
        assert_eq!(
            (w.places, w.place.as_deref(), w.origin_known),
            (1, Some("grid of here"), true),
            "the run has coordinates"
        );
    }

    #[test]
    fn filters_by_provider_continent_and_distance() {
        let r = run(10.0, 4.0);
        let by = |f: WhatIfFilters| {
            what_if("x", &[&r], &fixtures(), &f).options.into_iter().map(|o| o.region).collect::<Vec<_>>()
        };
        assert_eq!(by(WhatIfFilters { provider: Some("AWS".into()), ..Default::default() }), ["stockholm", "virginia"]);
        assert_eq!(by(WhatIfFilters { continent: Some("north america".into()), ..Default::default() }), ["virginia"]);
        // Paris → Oslo is about 1,340 km, Stockholm about 1,540 km.
        assert_eq!(by(WhatIfFilters { within_km: Some(1400.0), ..Default::default() }), ["oslo", "paris"]);
        let d = haversine_km(48.85, 2.35, 59.91, 10.75);
        assert!((d - 1340.0).abs() < 15.0, "{d}");
    }

    #[test]
    fn the_cleanest_region_already_is_said_plainly() {
        // 10 kWh at 20 g/kWh: nothing cleaner.
        let r = run(10.0, 0.2);
        let w = what_if("run r", &[&r], &fixtures(), &WhatIfFilters::default());
        assert_eq!(w.advice, Advice::AlreadyCleanest);
        let none =
            what_if("run r", &[&r], &fixtures(), &WhatIfFilters { provider: Some("ibm".into()), ..Default::default() });
        assert!(none.options.is_empty() && none.advice == Advice::NoRegion);
        let nothing = what_if("run r", &[&run(0.0, 0.0)], &fixtures(), &WhatIfFilters::default());
        assert_eq!(nothing.advice, Advice::NoEnergy);
    }

    #[test]
    fn every_embedded_region_has_an_intensity_and_a_continent() {
        let rows = regions(Grid::embedded());
        assert_eq!(rows.len(), 117);
        for r in &rows {
            assert!(r.intensity_g_per_kwh.is_finite() && r.intensity_g_per_kwh > 0.0, "{r:?}");
            assert!(!r.continent.is_empty(), "{}", r.region);
            assert!(
                r.intensity_low_g_per_kwh <= r.intensity_g_per_kwh
                    && r.intensity_g_per_kwh <= r.intensity_high_g_per_kwh
            );
        }
        let us_east_1 = rows.iter().find(|r| r.provider == "aws" && r.region == "us-east-1").map(|r| r.label.clone());
        assert!(us_east_1.is_some_and(|l| l.starts_with("grid of Virginia, US")));
    }
}
