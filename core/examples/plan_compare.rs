//! The planner against carbon-aware-sdk's window search on recorded forecasts.
//!
//! `cargo run --release -p carbon-core --example plan_compare -- DIR` reads every UK Carbon
//! Intensity API `fw48h` answer in DIR (`{"data":[{"from","to","intensity":{"forecast"}}]}`,
//! named by the time it was fetched, e.g. `2023-03-14T0331Z.json`) and, for several job lengths
//! and deadlines, compares the mean intensity of the window each search picks:
//! - exact: [`carbon_core::plan::best_window`] from the fetch time;
//! - SDK: starts on the forecast's own grid from its first point (the SDK's default
//!   `dataStartAt`), which may lie before the fetch time; such a job really starts at the fetch
//!   time, so that is the window it gets;
//! - SDK from now: the SDK given `dataStartAt` = the fetch time (its grid from there).
//!
//! It prints the figures; nothing is asserted.

use carbon_core::plan::{best_window, grid_search, mean_over, normalise, Ask, Profile, Step};
use std::path::Path;

fn uk_time(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%MZ").ok().map(|d| d.and_utc().timestamp())
}

fn load(path: &Path) -> Option<(i64, Vec<Step>)> {
    let name = path.file_stem()?.to_str()?;
    // 2023-03-14T0331Z
    let now = chrono::NaiveDateTime::parse_from_str(name, "%Y-%m-%dT%H%MZ").ok()?.and_utc().timestamp();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let steps: Vec<Step> = v["data"]
        .as_array()?
        .iter()
        .filter_map(|p| {
            Some(Step {
                start: uk_time(p["from"].as_str()?)?,
                end: uk_time(p["to"].as_str()?)?,
                g_per_kwh: p["intensity"]["forecast"].as_f64()?,
            })
        })
        .collect();
    Some((now, normalise(&steps)))
}

#[derive(Default)]
struct Tally {
    cases: usize,
    exact: f64,
    sdk: f64,
    sdk_now: f64,
    now: f64,
    better_than_sdk: usize,
    better_than_sdk_now: usize,
    worse: usize,
    sdk_in_past: usize,
    max_gain: f64,
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: plan_compare DIR");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("a folder").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    let forecasts: Vec<(i64, Vec<Step>)> = files.iter().filter_map(|p| load(p)).collect();
    println!("{} recorded forecasts from {dir}", forecasts.len());
    // Job lengths on and off the data's half-hour grid, and "now" at 0, 10 and 20 minutes into
    // the forecast's first period (the same forecast answers for half an hour).
    let durations = [45 * 60, 3600, 75 * 60, 100 * 60, 2 * 3600, 150 * 60, 3 * 3600, 4 * 3600, 320 * 60, 8 * 3600];
    let offsets = [0, 600, 1200];
    // The same forecasts as hourly values (means of the half hours), as Electricity Maps gives.
    let hourly: Vec<(i64, Vec<Step>)> = forecasts
        .iter()
        .map(|(now, steps)| {
            let h: Vec<Step> = steps
                .chunks(2)
                .filter(|c| c.len() == 2 && c[0].end == c[1].start)
                .map(|c| Step { start: c[0].start, end: c[1].end, g_per_kwh: (c[0].g_per_kwh + c[1].g_per_kwh) / 2.0 })
                .collect();
            (*now, h)
        })
        .collect();
    let deadlines: [(&str, Option<i64>); 3] =
        [("whole forecast", None), ("finish within 24 h", Some(24 * 3600)), ("finish within 12 h", Some(12 * 3600))];
    let (mut t_exact, mut t_sdk, mut searches) = (std::time::Duration::ZERO, std::time::Duration::ZERO, 0u32);
    for (series, set) in [("half-hourly (as recorded)", &forecasts), ("hourly (half hours averaged)", &hourly)] {
        for (label, finish) in deadlines {
            let mut t = Tally::default();
            for (fetched, steps) in set.iter() {
                for (w, off) in durations.iter().flat_map(|&w| offsets.iter().map(move |&o| (w, o))) {
                    let now = &(fetched + off);
                    let finish_by = finish.map(|f| now + f);
                    let a = std::time::Instant::now();
                    let exact = best_window(steps, &Profile::flat(w), Ask { now: *now, start_by: None, finish_by });
                    t_exact += a.elapsed();
                    let a = std::time::Instant::now();
                    let sdk = grid_search(steps, w, None, finish_by);
                    t_sdk += a.elapsed();
                    searches += 1;
                    // The SDK given dataStartAt = now: its grid from now.
                    let sdk_now = grid_search(steps, w, Some(*now), finish_by);
                    let (Some((_, e)), Some((s_start, _)), Some((_, sn)), Some(n)) =
                        (exact.best, sdk, sdk_now, exact.now)
                    else {
                        continue;
                    };
                    // A start in the past is a start now.
                    let s_real = if s_start < *now {
                        t.sdk_in_past += 1;
                        mean_over(steps, *now, now + w)
                    } else {
                        mean_over(steps, s_start, s_start + w)
                    };
                    t.cases += 1;
                    t.exact += e;
                    t.sdk += s_real;
                    t.sdk_now += sn;
                    t.now += n;
                    if e < s_real - 0.01 {
                        t.better_than_sdk += 1;
                    }
                    if e < sn - 0.01 {
                        t.better_than_sdk_now += 1;
                    }
                    if e > s_real.min(sn) + 1e-9 {
                        t.worse += 1;
                    }
                    t.max_gain = t.max_gain.max(s_real - e).max(sn - e);
                }
            }
            let n = t.cases.max(1) as f64;
            println!(
                "\n{series}, {label}: {} cases ({} forecasts × {} durations × {} times now)",
                t.cases,
                set.len(),
                durations.len(),
                offsets.len()
            );
            println!("  mean g/kWh of the chosen window: exact {:.1} · SDK default {:.1} · SDK from now {:.1} · starting now {:.1}", t.exact / n, t.sdk / n, t.sdk_now / n, t.now / n);
            println!(
            "  exact lower than SDK default in {} cases ({:.1} % lower on average), than SDK from now in {} ({:.1} %); higher in {}; largest gain {:.1} g/kWh",
            t.better_than_sdk,
            (t.sdk - t.exact) / t.sdk * 100.0,
            t.better_than_sdk_now,
            (t.sdk_now - t.exact) / t.sdk_now * 100.0,
            t.worse,
            t.max_gain
        );
            println!(
                "  SDK default picked a start before now in {} cases; saving of exact against starting now: {:.1} %",
                t.sdk_in_past,
                (t.now - t.exact) / t.now * 100.0
            );
        }
    }
    // A large case: 72 h at 5-minute steps (WattTime's spacing), an 8-hour job with a 48-segment
    // power profile.
    let big: Vec<Step> = (0..864)
        .map(|i: i64| Step {
            start: i * 300,
            end: (i + 1) * 300,
            g_per_kwh: 200.0 + 100.0 * ((i as f64) / 40.0).sin() + (i % 7) as f64,
        })
        .collect();
    let pts: Vec<(f64, f64)> = (1..=48).map(|j| (f64::from(j) * 600.0, f64::from(j * j))).collect();
    let profile = Profile::from_checkpoints(&pts).expect("a profile");
    let a = std::time::Instant::now();
    let runs = 20;
    for _ in 0..runs {
        std::hint::black_box(best_window(&big, &profile, Ask { now: 0, start_by: None, finish_by: None }));
    }
    println!(
        "\n864 five-minute values, an 8 h job with a {}-segment profile: {:.2} ms a search",
        profile.segments(),
        a.elapsed().as_secs_f64() * 1e3 / f64::from(runs)
    );
    println!(
        "\ntime per search: exact {:.1} µs, SDK {:.1} µs ({} searches each)",
        t_exact.as_secs_f64() * 1e6 / f64::from(searches),
        t_sdk.as_secs_f64() * 1e6 / f64::from(searches),
        searches
    );
}
