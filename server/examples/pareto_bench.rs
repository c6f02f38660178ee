//! The Pareto view and the report at sweep sizes: prints, for N runs with metrics, the time to
//! read their metrics.csv (10 rows a run: 5 epochs of two metrics), join it to the runs, build
//! the view, draw its chart and render the whole HTML report, with the sizes a page carries.
//!
//! `cargo run --release -p carbon-dash --example pareto_bench [N …]` (default 1000 10000 100000).

use carbon_core::metrics::{self, MetricsFile, MetricsFormat};
use carbon_core::model::{Assessment, Run};
use carbon_core::pareto::{ParetoQuery, BEATEN_SHOWN};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

/// A seeded pseudo-random number in [0, 1) (xorshift).
fn rnd(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

fn runs(n: usize) -> Vec<Run> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|i| {
            let kwh = 0.05 + 3.0 * rnd(&mut s);
            let co2 = kwh * 0.4;
            Run {
                run_id: format!("run-{i:07}"),
                project_name: Some("sweep".into()),
                experiment_id: Some("hpo".into()),
                started_at: carbon_core::time::parse_iso("2026-10-01T00:00:00"),
                ended_at: carbon_core::time::parse_iso("2026-10-02T00:00:00"),
                duration_s: Some(kwh * 10_000.0),
                energy_kwh: Some(kwh),
                gpu_count: Some(4.0),
                gpu_model: Some("4 x NVIDIA L4".into()),
                cloud_provider: Some("gcp".into()),
                cloud_region: Some("us-central1".into()),
                country_name: Some("USA".into()),
                codecarbon_version: Some("3.2.6".into()),
                source_files: vec!["sweep/emissions.csv".into()],
                assessment: Assessment {
                    co2_kg: Some(co2),
                    co2_kg_low: Some(co2 * 0.9),
                    co2_kg_high: Some(co2 * 1.1),
                    energy_kwh_low: Some(kwh * 0.95),
                    energy_kwh_high: Some(kwh * 1.05),
                    intensity_g_per_kwh: 400.0,
                    intensity_low_g_per_kwh: 360.0,
                    intensity_high_g_per_kwh: 440.0,
                    intensity_source: "google2024".into(),
                    intensity_year: 2024,
                    location_label: "gcp us-central1 — Google Cloud, 2024".into(),
                    energy_method: "measured".into(),
                    ..Assessment::default()
                },
                ..Run::default()
            }
        })
        .collect()
}

fn metrics_csv(runs: &[Run]) -> String {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut out = String::from("run_id,name,value,step\n");
    for r in runs {
        let kwh = r.energy_kwh.unwrap_or(0.0);
        let acc = 0.925 - 0.23 * (-kwh / 0.45).exp() + 0.01 * (rnd(&mut s) - 0.5);
        for epoch in 1..=5 {
            let a = acc - f64::from(5 - epoch) * 0.01;
            out.push_str(&format!(
                "{},accuracy,{a:.4},{}\n{},loss,{:.4},{}\n",
                r.run_id,
                epoch * 100,
                r.run_id,
                1.05 - a,
                epoch * 100
            ));
        }
    }
    out
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000, 100_000] } else { sizes };
    println!("| runs | metrics.csv rows / MB | read | join | view | chart (points drawn, SVG KB) | page JSON KB | report HTML (ms, KB) |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let runs = runs(n);
        let text = metrics_csv(&runs);
        let t = Instant::now();
        let m = metrics::read_csv(&text);
        let read = ms(t);
        assert!(m.problems.is_empty());
        let file = MetricsFile::of(MetricsFormat::Csv, m.values);
        let t = Instant::now();
        let ids: HashSet<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
        let folders: HashMap<String, BTreeSet<String>> = HashMap::new();
        let join = metrics::join(&[("sweep/metrics.csv", &file)], &ids, &folders);
        let joined = ms(t);
        let refs: Vec<&Run> = runs.iter().collect();
        let q = ParetoQuery { project: Some("sweep".into()), ..ParetoQuery::default() };
        let t = Instant::now();
        let view = carbon_core::pareto_view::build(&q, &refs, &join);
        let built = ms(t);
        let t = Instant::now();
        let page = view.clone().trimmed(BEATEN_SHOWN);
        let chart = charts::pareto(&page, Some(&|id: &str| format!("/runs/{id}")));
        let drawn = ms(t);
        let json = serde_json::to_string(&(&page, &chart)).map(|s| s.len()).unwrap_or(0);
        let t = Instant::now();
        let report = carbon_core::report::Report::build(
            "Project sweep".into(),
            "project sweep".into(),
            &refs,
            Some(view.clone()),
            0,
        );
        let html = carbon_dash::report::html(&report, std::slice::from_ref(&chart));
        let rendered = ms(t);
        println!(
            "| {n} | {} / {:.1} | {read:.1} ms | {joined:.1} ms | {built:.1} ms | {drawn:.1} ms ({}, {} KB) | {} KB | {rendered:.1} ms, {} KB |",
            n * 10,
            text.len() as f64 / 1e6,
            page.points.len(),
            chart.svg.len() / 1000,
            json / 1000,
            html.len() / 1000
        );
        assert!(view.knee_run_id.is_some(), "the sweep bends");
    }
}
