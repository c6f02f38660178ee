//! The pages' sentences, made from the domain's data (the domain holds numbers and kinds, not
//! English). Shared by the pages and the JSON API.

use carbon_core::model::{Advice, WhatIf};
use carbon_core::units;

/// The what-if's filters in words ("provider aws", "in Europe", "within 500 km of where it ran").
pub fn filters(w: &WhatIf) -> Vec<String> {
    let f = &w.filters;
    let mut words = Vec::new();
    if let Some(p) = &f.provider {
        words.push(format!("provider {p}"));
    }
    if let Some(c) = &f.continent {
        words.push(format!("in {c}"));
    }
    if let Some(km) = f.within_km {
        words.push(if w.origin_known {
            format!("within {km:.0} km of where it ran")
        } else {
            format!("within {km:.0} km (ignored: no coordinates for where it ran)")
        });
    }
    words
}

/// Where the selection ran: the one place, or how many.
pub fn ran_in(w: &WhatIf) -> String {
    match (&w.place, w.places) {
        (Some(p), _) => p.clone(),
        (None, 0) => "nowhere known".into(),
        (None, n) => format!("{n} places"),
    }
}

/// The what-if's one recommendation.
pub fn recommendation(w: &WhatIf) -> String {
    let words = filters(w);
    let scope = if words.is_empty() { String::new() } else { format!(" ({})", words.join(", ")) };
    let best = w.options.first();
    match (w.advice, best) {
        (Advice::NoRegion, _) | (_, None) => format!("No cloud region matches the filters{scope}."),
        (Advice::NoEnergy, _) => {
            "The selection has no energy figure, so moving it changes nothing that can be counted.".into()
        }
        (Advice::AlreadyCleanest, Some(b)) => format!(
            "This already ran as clean as the cleanest region{scope}: {} {} would emit {} against {} here.",
            b.provider,
            b.region,
            units::co2_kg(b.co2_kg),
            units::co2_kg(w.current_co2_kg)
        ),
        (Advice::Move { car_km }, Some(b)) => format!(
            "Run it in {} {} ({}){scope}: {} instead of {}, {} less (−{:.0} %), about {} km by a new EU car.",
            b.provider,
            b.region,
            b.name,
            units::co2_kg(b.co2_kg),
            units::co2_kg(w.current_co2_kg),
            units::co2_kg(b.saving_kg),
            b.saving_pct,
            units::sig3(car_km)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbon_core::model::WhatIfOption;
    use carbon_core::query::WhatIfFilters;

    fn option(provider: &str, region: &str, co2: f64, current: f64) -> WhatIfOption {
        WhatIfOption {
            provider: provider.into(),
            region: region.into(),
            name: "Stockholm".into(),
            country_iso_code: "SE".into(),
            continent: "Europe".into(),
            intensity_g_per_kwh: 20.0,
            co2_kg: co2,
            co2_kg_low: co2 * 0.9,
            co2_kg_high: co2 * 1.1,
            saving_kg: current - co2,
            saving_pct: (current - co2) / current * 100.0,
            distance_km: None,
        }
    }

    fn what_if(advice: Advice, filters: WhatIfFilters) -> WhatIf {
        WhatIf {
            selection: "run r".into(),
            runs: 1,
            energy_kwh: 10.0,
            current_co2_kg: 4.0,
            places: 1,
            place: Some("grid of here".into()),
            options: vec![option("aws", "stockholm", 0.2, 4.0)],
            advice,
            filters,
            origin_known: false,
        }
    }

    #[test]
    fn the_recommendation_names_the_region_the_saving_and_the_car_distance() {
        let w = what_if(Advice::Move { car_km: 35.6 }, WhatIfFilters::default());
        let text = recommendation(&w);
        assert!(text.starts_with("Run it in aws stockholm (Stockholm): 200 g"), "{text}");
        assert!(text.contains("−95 %") && text.contains("about 35.6 km by a new EU car"), "{text}");
        assert_eq!(ran_in(&w), "grid of here");
    }

    #[test]
    fn the_cleanest_region_already_and_no_match_are_said_plainly() {
        let w = what_if(Advice::AlreadyCleanest, WhatIfFilters::default());
        assert!(recommendation(&w).starts_with("This already ran as clean as the cleanest region: aws stockholm"));
        let f = WhatIfFilters { provider: Some("ibm".into()), within_km: Some(500.0), ..Default::default() };
        let mut none = what_if(Advice::NoRegion, f);
        none.options.clear();
        assert_eq!(
            recommendation(&none),
            "No cloud region matches the filters (provider ibm, within 500 km (ignored: no coordinates for where it ran))."
        );
        none.places = 3;
        none.place = None;
        assert_eq!(ran_in(&none), "3 places");
    }
}
