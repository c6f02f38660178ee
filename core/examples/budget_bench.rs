//! Where a budget stands, over many runs: the time `standing` takes (the team page, the API,
//! each alert check and each /metrics scrape work it out per budget).
//!
//!     cargo run --release -p carbon-core --example budget_bench [RUNS]

use carbon_core::budget::{standing, Budget, Period, Quantity, Scope, DEFAULT_THRESHOLDS};
use carbon_core::model::Run;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let start = carbon_core::time::parse_iso("2026-10-01T00:00:00").expect("time");
    // Runs of an hour each, spread over a quarter, in 10 teams.
    let runs: Vec<Run> = (0..n)
        .map(|i| {
            let end = start + chrono::Duration::seconds((i as i64 * 7_919) % (90 * 86_400));
            let mut r = Run {
                team: Some(format!("team{}", i % 10)),
                started_at: Some(end - chrono::Duration::hours(1)),
                ended_at: Some(end),
                energy_kwh: Some(2.0),
                ..Run::default()
            };
            r.assessment.co2_kg = Some(0.5);
            r.assessment.co2_kg_low = Some(0.4);
            r.assessment.co2_kg_high = Some(0.7);
            r
        })
        .collect();
    let now = carbon_core::time::parse_iso("2026-12-20T12:00:00").expect("time");
    for period in [Period::Month, Period::Quarter] {
        let b = Budget {
            scope: Scope::Team("team3".into()),
            quantity: Quantity::Co2Kg,
            amount: 10_000.0,
            period,
            thresholds: DEFAULT_THRESHOLDS.to_vec(),
            source: "bench".into(),
        };
        let t = std::time::Instant::now();
        let rounds = 5;
        let mut spent = 0.0;
        for _ in 0..rounds {
            spent = standing(&b, &runs, now).spent.value;
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
        println!("{n} runs, one team's budget per {}: {ms:.1} ms a standing (spent {spent:.1} kg)", period.name());
    }
}
