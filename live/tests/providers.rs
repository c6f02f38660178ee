//! The providers against a local server answering in their formats (`fake/`): parsing, the
//! odd cases, caching, back-off, time limits, and the planner on a recorded forecast.

mod fake;

use carbon_core::grid::Grid;
use carbon_core::live::{Basis, Target};
use carbon_core::plan::mean_over;
use carbon_core::schedule::PlanQuery;
use carbon_live::{Config, Live};
use fake::{Fake, FIXTURE_NOW};
use std::sync::Arc;
use std::time::Duration;

async fn live_with(fake: &Fake, token: Option<&str>, uk: bool) -> Live {
    let (em, ukurl) = fake.clone().start().await;
    Live::with_clock(
        Config {
            electricitymaps_token: token.map(str::to_string),
            electricitymaps_url: em,
            uk,
            uk_url: ukurl,
            timeout: Duration::from_millis(1500),
        },
        Arc::new(|| FIXTURE_NOW),
    )
}

fn zone(z: &str) -> Target {
    Target::of_zone(Grid::embedded(), z).expect("a zone")
}

#[tokio::test]
async fn the_uk_forecast_is_asked_for_the_period_now_parsed_and_cached() {
    let fake = Fake::default();
    let live = live_with(&fake, None, true).await;
    let out = live.forecast(&zone("GB")).await;
    let s = out.value.expect("a forecast");
    assert_eq!(s.steps.len(), 96);
    // The API names a period by its end: a minute after now is the period now (10:00–10:30),
    // which began before now.
    assert_eq!(fake.requests()[0].path, "/uk/intensity/2026-11-30T10:18Z/fw48h");
    assert!(s.steps[0].start < FIXTURE_NOW && s.steps[0].end > FIXTURE_NOW);
    assert_eq!((s.basis, s.forecast, s.provider.as_str()), (Basis::Direct, true, "UK Carbon Intensity API (NESO)"));
    // Cached: a second ask is not a second request.
    assert!(live.forecast(&zone("GB")).await.value.is_some());
    assert_eq!(fake.count("fw48h"), 1);
    // A region's forecast comes with `data` as an object, not an array.
    let london = live.forecast(&zone("GB-13")).await.value.expect("London's forecast");
    assert_eq!(london.steps.len(), 96);
    assert_eq!(
        fake.requests().last().map(|r| r.path.clone()).as_deref(),
        Some("/uk/regional/intensity/2026-11-30T10:18Z/fw48h/regionid/13")
    );
}

#[tokio::test]
async fn uk_values_now_say_when_they_are_forecasts() {
    let fake = Fake::default();
    let live = live_with(&fake, None, true).await;
    // `actual` is null for the period now: the forecast, said to be one.
    let gb = live.latest(&zone("GB")).await.value.expect("GB now");
    assert_eq!(gb.g_per_kwh, 192.0);
    assert!(gb.forecast && gb.estimated);
    // Every region from one call.
    let all = live.uk_regions().await.value.expect("regions");
    assert_eq!(all.len(), 17, "the 18th entry (GB) is not a region");
    let london = live.latest(&zone("GB-13")).await.value.expect("London now");
    assert_eq!(london.g_per_kwh, 171.0);
    assert_eq!(fake.count("/uk/regional"), 1);
    // History: measured values, and the forecast where `actual` is missing (flagged).
    let from = FIXTURE_NOW - 26 * 3600;
    let h = live.history(&zone("GB"), from, from + 5 * 3600).await.value.expect("history");
    assert_eq!(h.steps.len(), 12);
    assert!(h.estimated && !h.forecast);
    assert_eq!(h.steps[0].g_per_kwh, 98.0);
    assert_eq!(h.steps[5].g_per_kwh, 150.0, "the forecast where actual is null");
}

#[tokio::test]
async fn electricity_maps_is_asked_about_an_explicit_zone_with_the_token_in_a_header() {
    let fake = Fake::default();
    let live = live_with(&fake, Some("good"), false).await;
    let de = zone("DE");
    let now = live.latest(&de).await.value.expect("DE now");
    assert_eq!(now.g_per_kwh, 312.44875, "a float, not an int");
    assert!(now.estimated && !now.forecast);
    assert_eq!(now.basis, Basis::Lifecycle);
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/em/v4/carbon-intensity/latest");
    assert_eq!(r.token.as_deref(), Some("good"));
    assert!(r.query.contains("zone=DE") && r.query.contains("disableCallerLookup=true"), "{}", r.query);
    assert!(!r.query.contains("good"), "the token stays out of the URL");
    // History with nulls: holes, not zeros.
    let h = live.history(&de, FIXTURE_NOW - 20 * 3600, FIXTURE_NOW).await.value.expect("history");
    assert!(h.steps.iter().all(|s| s.g_per_kwh > 0.0));
    assert_eq!(carbon_core::plan::gaps(&h.steps).len(), 1);
    // Older than 24 h: not asked.
    let old = live.history(&de, FIXTURE_NOW - 3 * 86_400, FIXTURE_NOW - 2 * 86_400).await;
    assert!(old.value.is_none());
    assert!(old.notes[0].contains("last 24 hours"), "{:?}", old.notes);
    let f = live.forecast(&de).await.value.expect("forecast");
    assert_eq!(f.steps.len(), 49);
    assert_eq!(f.issued_at, carbon_core::time::parse_rfc3339("2026-11-30T09:55:15Z"));
}

#[tokio::test]
async fn refusals_pause_the_question_and_a_refused_token_pauses_the_provider() {
    let fake = Fake::default();
    let live = live_with(&fake, Some("good"), false).await;
    // Outside the plan: said, and not asked again for an hour.
    let fr = live.forecast(&zone("FR")).await;
    assert!(fr.value.is_none());
    assert!(fr.notes[0].contains("Token unauthorized for zoneKey FR"), "{:?}", fr.notes);
    let again = live.forecast(&zone("FR")).await;
    assert!(again.notes[0].contains("resting for another"), "{:?}", again.notes);
    assert_eq!(fake.count("/forecast"), 1);
    // Other zones are still asked.
    assert!(live.latest(&zone("DE")).await.value.is_some());

    let bad = Fake::default();
    let live = live_with(&bad, Some("tok-9f3a"), false).await;
    let out = live.latest(&zone("DE")).await;
    assert!(out.notes[0].contains("Invalid auth-token"), "{:?}", out.notes);
    assert!(!out.notes[0].contains("tok-9f3a"), "the token is never shown");
    let forecast = live.forecast(&zone("DE")).await;
    assert!(forecast.value.is_none());
    assert_eq!(bad.requests().len(), 1, "a refused token pauses the whole provider");
}

#[tokio::test]
async fn an_api_with_only_v3_is_used_after_one_404() {
    let fake = Fake { only_v3: true, ..Fake::default() };
    let live = live_with(&fake, Some("good"), false).await;
    assert!(live.latest(&zone("DE")).await.value.is_some());
    assert!(live.forecast(&zone("DE")).await.value.is_some());
    let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/em/v4/carbon-intensity/latest", "/em/v3/carbon-intensity/latest", "/em/v3/carbon-intensity/forecast"]
    );
    assert!(fake.requests()[1].query.contains("shouldUseFallbackCallerLookup=false"));
}

#[tokio::test]
async fn a_provider_that_hangs_is_skipped_within_its_time_limit_and_rested() {
    let fake = Fake::default();
    *fake.delay_ms.lock().expect("delay") = 5000;
    let live = live_with(&fake, None, true).await;
    let t = std::time::Instant::now();
    let out = live.forecast(&zone("GB")).await;
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(out.value.is_none());
    assert!(out.notes[0].contains("no answer within 1.5 s"), "{:?}", out.notes);
    let t = std::time::Instant::now();
    let again = live.latest(&zone("GB")).await;
    assert!(t.elapsed() < Duration::from_millis(200), "a resting provider is not waited for");
    assert!(again.notes[0].contains("resting for another"), "{:?}", again.notes);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn offline_no_one_is_asked_and_the_advice_says_what_would_help() {
    let live = Live::new(Config::default());
    assert!(live.offline());
    let out = live.forecast(&zone("GB")).await;
    assert!(out.value.is_none() && out.notes.is_empty());
    assert!(live.offline_advice().expect("advice").contains("--live"));
    let cfg = Config { electricitymaps_token: Some("secret-token".into()), ..Config::default() };
    assert!(!format!("{cfg:?}").contains("secret-token"));
}

#[tokio::test]
async fn the_planner_answers_with_the_brute_force_optimum_of_the_forecast() {
    let fake = Fake::default();
    let live = live_with(&fake, None, true).await;
    let grid = Grid::embedded();
    let q = PlanQuery {
        zone: Some("GB".into()),
        duration: Some("3h".into()),
        energy_kwh: Some("10".into()),
        ..PlanQuery::default()
    };
    let a = carbon_live::planner::plan(&live, grid, &q, None).await.expect("a plan");
    let series = live.forecast(&zone("GB")).await.value.expect("forecast");
    // Brute force: every minute from now to the last start that fits.
    let w = 3 * 3600;
    let end = series.steps.last().expect("steps").end;
    let (mut best_s, mut best_m) = (0, f64::INFINITY);
    let mut s = FIXTURE_NOW;
    while s + w <= end {
        let m = mean_over(&series.steps, s, s + w);
        if m < best_m - 1e-9 {
            (best_s, best_m) = (s, m);
        }
        s += 60;
    }
    let got = a.best_mean_g_per_kwh.expect("a best mean");
    assert!((got - best_m).abs() < 1e-9, "planner {got} vs brute force {best_m} at {best_s}");
    let now = a.now_mean_g_per_kwh.expect("now");
    assert!((now - mean_over(&series.steps, FIXTURE_NOW, FIXTURE_NOW + w)).abs() < 1e-9);
    assert!((a.saving_kg.expect("kg") - 10.0 * (now - got) / 1000.0).abs() < 1e-12);
    assert!(a.saving_pct.expect("pct") > 10.0);
    assert!(a.live && a.source.starts_with("UK Carbon Intensity API (NESO): forecast"));
    let start = carbon_core::time::parse_rfc3339(a.best_start.as_deref().expect("start")).expect("rfc3339");
    assert!(start >= FIXTURE_NOW);
    // Where and when: the place asked about and the cleanest regions, best first; London's
    // cloud regions come with the UK API's London forecast.
    assert!(a.elsewhere.len() > 2);
    assert!(a.elsewhere.windows(2).all(|x| x[0].mean_g_per_kwh <= x[1].mean_g_per_kwh));
    assert!(a.elsewhere.iter().any(|e| e.zone == "GB" && e.kind == "forecast"));
    let q =
        PlanQuery { region: Some("gcp/europe-west2".into()), duration: Some("1h30m".into()), ..PlanQuery::default() };
    let a = carbon_live::planner::plan(&live, grid, &q, None).await.expect("a plan");
    assert!(a.place.contains("London"), "{}", a.place);
    assert_eq!(a.forecast.len(), 96);
    assert!(a.saving_kg.is_none() && a.notes.iter().any(|n| n.contains("energy_kwh")));
    // Deadlines: finish by 2 h from now leaves starts in the first 30 min only.
    let q = PlanQuery {
        zone: Some("GB".into()),
        duration: Some("90m".into()),
        finish_by: Some(carbon_core::time::rfc3339(FIXTURE_NOW + 7200)),
        ..PlanQuery::default()
    };
    let a = carbon_live::planner::plan(&live, grid, &q, None).await.expect("a plan");
    let start = carbon_core::time::parse_rfc3339(a.best_start.as_deref().expect("start")).expect("rfc3339");
    assert!((FIXTURE_NOW..=FIXTURE_NOW + 1800).contains(&start));
    // A deadline already past is named as such.
    let q = PlanQuery { finish_by: Some(carbon_core::time::rfc3339(FIXTURE_NOW - 3600)), ..q };
    let a = carbon_live::planner::plan(&live, grid, &q, None).await.expect("a plan");
    assert!(a.best_start.is_none());
    assert!(a.notes.iter().any(|n| n.contains("finish by 2026-11-30 09:17 UTC leaves less than")), "{:?}", a.notes);
    // The grid now comes with the plan, under the place's own name, times in RFC 3339.
    let g = a.grid_now.expect("grid now");
    assert_eq!((g.g_per_kwh, g.at.as_str()), (192.0, "2026-11-30T10:00:00Z"));
    // Bad queries are told what to change.
    for (q, says) in [
        (PlanQuery { zone: Some("XX".into()), duration: Some("1h".into()), ..PlanQuery::default() }, "no zone 'XX'"),
        (PlanQuery { zone: Some("GB".into()), ..PlanQuery::default() }, "duration"),
        (PlanQuery { zone: Some("GB".into()), duration: Some("1.5h".into()), ..PlanQuery::default() }, "90m"),
        (
            PlanQuery {
                zone: Some("GB".into()),
                duration: Some("1h".into()),
                start_by: Some("tomorrow".into()),
                ..PlanQuery::default()
            },
            "start_by 'tomorrow'",
        ),
        (PlanQuery { duration: Some("1h".into()), ..PlanQuery::default() }, "say where"),
        (
            PlanQuery {
                zone: Some("GB".into()),
                region: Some("gcp/europe-west2".into()),
                duration: Some("1h".into()),
                ..PlanQuery::default()
            },
            "not both",
        ),
        (
            PlanQuery {
                zone: Some("GB".into()),
                duration: Some("1h".into()),
                provider: Some("foo".into()),
                ..PlanQuery::default()
            },
            "provider 'foo': one of aws, azure, gcp",
        ),
        (PlanQuery { zone: Some("GB-18".into()), duration: Some("1h".into()), ..PlanQuery::default() }, "GB-1 … GB-17"),
    ] {
        let e = carbon_live::planner::plan(&live, grid, &q, None).await.expect_err("refused");
        assert!(e.contains(says), "{e}");
    }
}

#[tokio::test]
async fn a_run_in_great_britain_gets_its_co2_at_the_hours_it_ran() {
    use carbon_core::model::{Checkpoint, Run, RunDetail};
    let fake = Fake::default();
    let live = live_with(&fake, None, true).await;
    let at = |s: &str| carbon_core::time::parse_iso(s);
    // GMT in November: the CSV's wall-clock times are UTC. 08:00–09:30, three checkpoints.
    let run =
        Run { run_id: "r1".into(), country_iso_code: Some("GBR".into()), energy_kwh: Some(6.0), ..Run::default() };
    let cp = |t: &str, d: f64, e: f64| Checkpoint {
        timestamp: at(t),
        duration_s: Some(d),
        energy_kwh: Some(e),
        ..Checkpoint::default()
    };
    let d = RunDetail {
        run,
        checkpoints: vec![
            cp("2026-11-29T08:30:00", 1800.0, 1.0),
            cp("2026-11-29T09:00:00", 3600.0, 3.0),
            cp("2026-11-29T09:30:00", 5400.0, 6.0),
        ],
    };
    let v = carbon_live::planner::run_hours(&live, Grid::embedded(), &d).await;
    let h = v.hours.expect("hours");
    // History: 98, 108, 118 g/kWh for those half hours (measured).
    let want = (1.0 * 98.0 + 2.0 * 108.0 + 3.0 * 118.0) / 1000.0;
    assert!((h.co2_kg - want).abs() < 1e-12, "{} vs {want}", h.co2_kg);
    assert_eq!(h.intervals, 3);
    // A run elsewhere: said why not.
    let mut de = d.clone();
    de.run.country_iso_code = Some("DEU".into());
    let v = carbon_live::planner::run_hours(&live, Grid::embedded(), &de).await;
    assert!(v.hours.is_none() && v.note.expect("a note").contains("time zone"));
}

#[tokio::test]
async fn an_answer_about_another_zone_and_a_redirect_are_not_taken() {
    let fake = Fake::default();
    let live = live_with(&fake, Some("good"), false).await;
    let at = live.latest(&zone("AT")).await;
    assert!(at.value.is_none());
    assert!(at.notes[0].contains("about zone DE, not AT"), "{:?}", at.notes);
    let pl = live.latest(&zone("PL")).await;
    assert!(pl.value.is_none());
    assert!(fake.requests().iter().all(|r| !r.path.contains("leak")), "the token never follows a redirect");
}

#[tokio::test]
async fn a_visitor_cannot_spend_more_than_the_hourly_budget_of_calls() {
    let fake = Fake::default();
    let live = live_with(&fake, Some("good"), false).await;
    // Made-up zones, each a new question: the budget (a burst of 30) stops the calls.
    let mut spent = 0;
    for i in 0..40 {
        let out = live.forecast(&zone(&format!("DE-X{i}"))).await;
        if out.notes.iter().any(|n| n.contains("budget of 120 calls an hour is spent")) {
            spent += 1;
        }
    }
    assert_eq!(fake.requests().len(), 30);
    assert_eq!(spent, 10);
    // The keyless provider has its own budget.
    let uk = Fake::default();
    let live = live_with(&uk, None, true).await;
    assert!(live.forecast(&zone("GB")).await.value.is_some());
}
