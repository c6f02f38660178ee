//! `GET /metrics` in Prometheus's text format: energy, recomputed CO₂e (with its low and high),
//! runs and duration per team and project, budgets (amount, spent, projected), and the server's
//! own health (rows read and rejected, files, watcher problems, collection posts by status, live
//! streams, page cache hits, request latency). Label values are bounded: the largest teams and
//! projects by CO₂e by name, the rest together as `(other)` (runs without one: `(none)`), so a
//! logs tree of thousands of projects stays a few hundred series a family (each project in one
//! team; 51 × 51 at worst).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Teams, and projects, named in labels at most; the rest are `other`.
pub const MAX_NAMED: usize = 50;

/// Request latency buckets, seconds.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// What the server counts as it runs.
#[derive(Default)]
pub struct Counters {
    /// Collection posts (`/runs`, `/emissions`) by answer status.
    posts: Mutex<BTreeMap<u16, u64>>,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Requests at or under each bucket's bound (not cumulative here), the sum (µs) and count.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

impl Counters {
    pub fn post(&self, status: StatusCode) {
        *self.posts.lock().unwrap_or_else(|e| e.into_inner()).entry(status.as_u16()).or_default() += 1;
    }

    pub fn took(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.latency[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Times every request (the latency histogram).
pub async fn timed(State(s): State<crate::AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    s.metrics.took(started.elapsed());
    res
}

/// Counts collection posts by their answer.
pub async fn count_posts(State(s): State<crate::AppState>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    s.metrics.post(res.status());
    res
}

/// A label value as the text format writes it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The text format, a family at a time.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
        let v = match v {
            v if v.is_nan() => "NaN".to_string(),
            v if v == f64::INFINITY => "+Inf".to_string(),
            v if v == f64::NEG_INFINITY => "-Inf".to_string(),
            v => v.to_string(),
        };
        if l.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Sums {
    energy: f64,
    co2: f64,
    co2_low: f64,
    co2_high: f64,
    runs: f64,
    duration: f64,
}

/// A gauge family: its name, its help, and its value from a row.
type Family<T> = (&'static str, &'static str, fn(&T) -> f64);

/// The names kept (the `max` largest by CO₂e); the others become `other`.
fn keep(totals: &BTreeMap<String, f64>, max: usize) -> std::collections::HashSet<String> {
    let mut by: Vec<(&String, f64)> = totals.iter().map(|(k, v)| (k, *v)).collect();
    by.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    by.into_iter().take(max).map(|(k, _)| k.clone()).collect()
}

/// The whole exposition for `catalog` (all of it: an admin's view).
pub fn render(s: &crate::AppState, c: &carbon_core::catalog::Catalog) -> String {
    use carbon_core::model::DatasetMode;
    let runs = c.runs(DatasetMode::Latest);
    // "(none)" and "(other)" cannot be a folder's or a project's own name by accident.
    let team_of = |r: &carbon_core::model::Run| r.team.clone().unwrap_or_else(|| "(none)".into());
    let project_of = |r: &carbon_core::model::Run| r.project_name.clone().unwrap_or_else(|| "(none)".into());
    let (mut by_team, mut by_project) = (BTreeMap::<String, f64>::new(), BTreeMap::<String, f64>::new());
    for r in runs {
        let co2 = r.assessment.co2_kg.unwrap_or(0.0);
        *by_team.entry(team_of(r)).or_default() += co2;
        *by_project.entry(project_of(r)).or_default() += co2;
    }
    let (teams, projects) = (keep(&by_team, MAX_NAMED), keep(&by_project, MAX_NAMED));
    let mut sums: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for r in runs {
        let t = Some(team_of(r)).filter(|t| teams.contains(t)).unwrap_or_else(|| "(other)".into());
        let p = Some(project_of(r)).filter(|p| projects.contains(p)).unwrap_or_else(|| "(other)".into());
        let e = sums.entry((t, p)).or_default();
        let co2 = r.assessment.co2_kg.unwrap_or(0.0);
        e.energy += r.energy_kwh.unwrap_or(0.0);
        e.co2 += co2;
        e.co2_low += r.assessment.co2_kg_low.unwrap_or(co2);
        e.co2_high += r.assessment.co2_kg_high.unwrap_or(co2);
        e.runs += 1.0;
        e.duration += r.duration_s.unwrap_or(0.0);
    }
    let mut out = Out(String::new());
    let families: [Family<Sums>; 6] = [
        ("carbon_dash_energy_kwh", "Energy of the runs as CodeCarbon measured it (PUE included), kWh.", |s| s.energy),
        ("carbon_dash_co2e_kg", "CO2e of the runs, recomputed with the embedded grid data (latest), kg.", |s| s.co2),
        ("carbon_dash_co2e_low_kg", "The low end of the recomputed CO2e's range, kg.", |s| s.co2_low),
        ("carbon_dash_co2e_high_kg", "The high end of the recomputed CO2e's range, kg.", |s| s.co2_high),
        ("carbon_dash_runs", "Runs.", |s| s.runs),
        ("carbon_dash_run_duration_seconds", "Summed duration of the runs, seconds.", |s| s.duration),
    ];
    for (name, help, f) in families {
        out.family(name, "gauge", help);
        for ((t, p), v) in &sums {
            out.sample(name, &[("team", t), ("project", p)], f(v));
        }
    }
    // Budgets.
    let listed = s.budgets.get();
    let now = carbon_core::budget::logs_now(runs);
    let standings: Vec<_> = listed.budgets.iter().map(|b| carbon_core::budget::standing(b, runs, now)).collect();
    let budget_families: [Family<carbon_core::budget::Standing>; 5] = [
        ("carbon_dash_budget_amount", "A budget's amount for its period (unit: the quantity label).", |s| {
            s.budget.amount
        }),
        ("carbon_dash_budget_spent", "Spent so far in the budget's period.", |s| s.spent.value),
        ("carbon_dash_budget_spent_high", "The high end of what was spent.", |s| s.spent.high),
        ("carbon_dash_budget_projected", "Projected to the period's end at the last days' rate.", |s| {
            s.projected.value
        }),
        ("carbon_dash_budget_projected_high", "The high end of the projection.", |s| s.projected.high),
    ];
    for (name, help, f) in budget_families {
        out.family(name, "gauge", help);
        for st in &standings {
            let (kind, who) = match &st.budget.scope {
                carbon_core::budget::Scope::Team(t) => ("team", t.as_str()),
                carbon_core::budget::Scope::Project(p) => ("project", p.as_str()),
            };
            let q = carbon_store::budgets::quantity_name(st.budget.quantity);
            out.sample(
                name,
                &[("scope", kind), ("name", who), ("quantity", q), ("period", st.budget.period.name())],
                f(st),
            );
        }
    }
    // The server's health.
    let summary = c.summary(DatasetMode::Latest);
    out.family("carbon_dash_files", "gauge", "Log files read.");
    out.sample("carbon_dash_files", &[], summary.files as f64);
    out.family("carbon_dash_rows_read", "gauge", "Rows read from the log files.");
    out.sample("carbon_dash_rows_read", &[], summary.rows_read as f64);
    out.family("carbon_dash_rows_rejected", "gauge", "Rows rejected (each with its reason on /files).");
    out.sample("carbon_dash_rows_rejected", &[], summary.rows_rejected as f64);
    out.family("carbon_dash_watch_problem", "gauge", "1 while watching the logs folder for changes fails.");
    out.sample("carbon_dash_watch_problem", &[], f64::from(u8::from(c.watch_problem().is_some())));
    out.family("carbon_dash_collection_posts_total", "counter", "Posts of CodeCarbon trackers, by answer status.");
    for (status, n) in s.metrics.posts.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        out.sample("carbon_dash_collection_posts_total", &[("status", &status.to_string())], *n as f64);
    }
    out.family("carbon_dash_event_streams", "gauge", "Open live-update streams (pages following changes).");
    out.sample("carbon_dash_event_streams", &[], (crate::MAX_EVENT_STREAMS - s.streams.available_permits()) as f64);
    out.family("carbon_dash_connections", "gauge", "Open connections.");
    out.sample("carbon_dash_connections", &[], s.connections.counts().0 as f64);
    out.family("carbon_dash_page_cache_total", "counter", "Page cache look-ups, by outcome.");
    out.sample(
        "carbon_dash_page_cache_total",
        &[("outcome", "hit")],
        s.metrics.cache_hits.load(Ordering::Relaxed) as f64,
    );
    out.sample(
        "carbon_dash_page_cache_total",
        &[("outcome", "miss")],
        s.metrics.cache_misses.load(Ordering::Relaxed) as f64,
    );
    let name = "carbon_dash_request_duration_seconds";
    out.family(name, "histogram", "Time to answer a request (to its head; streamed bodies go on after), seconds.");
    let mut cumulative = 0;
    for (i, b) in BUCKETS.iter().enumerate() {
        cumulative += s.metrics.latency[i].load(Ordering::Relaxed);
        out.sample(&format!("{name}_bucket"), &[("le", &b.to_string())], cumulative as f64);
    }
    cumulative += s.metrics.latency[BUCKETS.len()].load(Ordering::Relaxed);
    out.sample(&format!("{name}_bucket"), &[("le", "+Inf")], cumulative as f64);
    out.sample(&format!("{name}_sum"), &[], s.metrics.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6);
    out.sample(&format!("{name}_count"), &[], s.metrics.latency_count.load(Ordering::Relaxed) as f64);
    out.0
}

/// `GET /metrics`. Behind sign-in, an admin's (or an every-team read token's, as Prometheus
/// sends it with `authorization: { credentials: cdr_… }`): the figures of every team.
pub async fn metrics(State(s): State<crate::AppState>, who: Option<axum::Extension<crate::auth::Who>>) -> Response {
    if s.auth.signs_in() && !who.is_some_and(|w| w.visible == crate::auth::Visible::All) {
        return (StatusCode::FORBIDDEN, "the metrics of every team are an admin's: use a read token made with --all\n")
            .into_response();
    }
    let text = render(&s, &s.catalog.current());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_the_largest_names_kept() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let totals: BTreeMap<String, f64> = (0..10).map(|i| (format!("p{i}"), i as f64)).collect();
        let kept = keep(&totals, 3);
        assert!(kept.contains("p9") && kept.contains("p7") && !kept.contains("p6"));
    }
}
