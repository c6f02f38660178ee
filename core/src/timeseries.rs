//! Totals over time: runs grouped by the period they ended in and by a dimension (team,
//! project, …), with the filters every team view shares.

use crate::model::{Run, UNNAMED};
use crate::pages::RunRow;
pub use crate::query::ViewFilter;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    Month,
    Week,
    Day,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "month" => Some(Period::Month),
            "week" => Some(Period::Week),
            "day" => Some(Period::Day),
            _ => None,
        }
    }

    /// "2026-10", "2026-W43", "2026-10-27" for a run's end time.
    pub fn key(self, day: NaiveDate) -> String {
        match self {
            Period::Month => day.format("%Y-%m").to_string(),
            Period::Week => {
                let w = day.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Period::Day => day.format("%Y-%m-%d").to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Team,
    #[default]
    Project,
    Experiment,
    Country,
    Provider,
}

impl Dimension {
    pub fn parse(s: &str) -> Option<Dimension> {
        match s {
            "team" => Some(Dimension::Team),
            "project" => Some(Dimension::Project),
            "experiment" => Some(Dimension::Experiment),
            "country" => Some(Dimension::Country),
            "provider" => Some(Dimension::Provider),
            _ => None,
        }
    }

    pub fn of(self, r: &Run) -> String {
        let v = match self {
            Dimension::Team => &r.team,
            Dimension::Project => &r.project_name,
            Dimension::Experiment => &r.experiment_id,
            Dimension::Country => &r.country_name,
            Dimension::Provider => &r.cloud_provider,
        };
        v.clone().unwrap_or_else(|| UNNAMED.to_string())
    }
}

/// One series: a value of the dimension, its figures per period (aligned with `periods`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub key: String,
    pub co2_kg: Vec<f64>,
    pub co2_kg_low: Vec<f64>,
    pub co2_kg_high: Vec<f64>,
    pub energy_kwh: Vec<f64>,
    pub runs: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TimeSeries {
    pub period: Period,
    pub by: Dimension,
    /// Every period from the first to the last, gaps included, oldest first.
    pub periods: Vec<String>,
    /// Largest total first.
    pub series: Vec<Series>,
    /// Runs left out because they carry no end time.
    pub undated_runs: usize,
    /// Whether `periods` lists every period of the span (empty ones as zero); over
    /// [`MAX_SPAN`] periods, only those with runs are listed.
    #[serde(default)]
    pub gaps_filled: bool,
}

/// Periods a series spans at most with its empty periods filled in: beyond, only the periods
/// with runs are listed (a run dated 1600 beside one of 2026 must not cost 150,000 days each).
pub const MAX_SPAN: usize = 1000;

/// Series a time series holds at most: the largest, the others added up into one.
pub const MAX_SERIES: usize = 100;

/// Every period key between two (inclusive), so charts show empty months as zero.
fn span(period: Period, first: &str, last: &str) -> Vec<String> {
    let parse = |k: &str| -> Option<NaiveDate> {
        match period {
            Period::Month => NaiveDate::parse_from_str(&format!("{k}-01"), "%Y-%m-%d").ok(),
            Period::Day => NaiveDate::parse_from_str(k, "%Y-%m-%d").ok(),
            Period::Week => {
                let (y, w) = k.split_once("-W")?;
                NaiveDate::from_isoywd_opt(y.parse().ok()?, w.parse().ok()?, chrono::Weekday::Mon)
            }
        }
    };
    let (Some(mut d), Some(end)) = (parse(first), parse(last)) else { return vec![first.to_string()] };
    let mut out = Vec::new();
    while d <= end && out.len() < 5000 {
        let k = period.key(d);
        if out.last() != Some(&k) {
            out.push(k);
        }
        d = match period {
            Period::Month => d.checked_add_months(chrono::Months::new(1)).unwrap_or(end.succ_opt().unwrap_or(end)),
            Period::Week => d + chrono::Duration::days(7),
            Period::Day => d + chrono::Duration::days(1),
        };
    }
    out
}

/// Runs (already filtered) grouped by period of their end time and by `by`.
impl TimeSeries {
    /// The `n` largest series, the others added up into one "others" series: a chart stays
    /// readable (and small) however many projects there are.
    pub fn top(mut self, n: usize) -> TimeSeries {
        if self.series.len() <= n + 1 {
            return self;
        }
        let rest = self.series.split_off(n);
        let len = self.periods.len();
        let mut other = Series {
            key: format!("{} others", rest.len()),
            co2_kg: vec![0.0; len],
            co2_kg_low: vec![0.0; len],
            co2_kg_high: vec![0.0; len],
            energy_kwh: vec![0.0; len],
            runs: vec![0; len],
        };
        for s in rest {
            for i in 0..len {
                other.co2_kg[i] += s.co2_kg[i];
                other.co2_kg_low[i] += s.co2_kg_low[i];
                other.co2_kg_high[i] += s.co2_kg_high[i];
                other.energy_kwh[i] += s.energy_kwh[i];
                other.runs[i] += s.runs[i];
            }
        }
        self.series.push(other);
        self
    }
}

pub fn timeseries(runs: &[&Run], period: Period, by: Dimension) -> TimeSeries {
    /// One (series, period) cell.
    #[derive(Default, Clone, Copy)]
    struct Cell {
        co2: f64,
        low: f64,
        high: f64,
        energy: f64,
        runs: usize,
    }
    let mut cells: BTreeMap<(String, String), Cell> = BTreeMap::new();
    let mut periods = BTreeSet::new();
    let mut undated = 0;
    for r in runs {
        let Some(p) = r.ended_at.map(|e| period.key(e.date())) else {
            undated += 1;
            continue;
        };
        periods.insert(p.clone());
        let a = &r.assessment;
        let c = cells.entry((by.of(r), p)).or_default();
        c.co2 += a.co2_kg.unwrap_or(0.0);
        c.low += a.co2_kg_low.unwrap_or(0.0);
        c.high += a.co2_kg_high.unwrap_or(0.0);
        c.energy += r.energy_kwh.unwrap_or(0.0);
        c.runs += 1;
    }
    let filled = match (periods.first(), periods.last()) {
        (Some(a), Some(b)) => span(period, a, b),
        _ => Vec::new(),
    };
    let gaps_filled = filled.len() < MAX_SPAN;
    let periods: Vec<String> = if gaps_filled { filled } else { periods.into_iter().collect() };
    // More series than shown: the smallest are added up first, so the cells stay bounded.
    let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
    for ((k, _), c) in &cells {
        *totals.entry(k.as_str()).or_default() += c.co2;
    }
    if totals.len() > MAX_SERIES {
        let mut order: Vec<(&str, f64)> = totals.into_iter().collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let rest: BTreeSet<String> = order[MAX_SERIES - 1..].iter().map(|(k, _)| k.to_string()).collect();
        let others = format!("{} others", rest.len());
        let mut merged: BTreeMap<(String, String), Cell> = BTreeMap::new();
        for ((k, p), c) in cells {
            let key = if rest.contains(&k) { others.clone() } else { k };
            let m = merged.entry((key, p)).or_default();
            m.co2 += c.co2;
            m.low += c.low;
            m.high += c.high;
            m.energy += c.energy;
            m.runs += c.runs;
        }
        cells = merged;
    }
    let keys: BTreeSet<String> = cells.keys().map(|(k, _)| k.clone()).collect();
    let mut series: Vec<Series> = keys
        .into_iter()
        .map(|key| {
            let get = |p: &String| cells.get(&(key.clone(), p.clone())).copied().unwrap_or_default();
            Series {
                co2_kg: periods.iter().map(|p| get(p).co2).collect(),
                co2_kg_low: periods.iter().map(|p| get(p).low).collect(),
                co2_kg_high: periods.iter().map(|p| get(p).high).collect(),
                energy_kwh: periods.iter().map(|p| get(p).energy).collect(),
                runs: periods.iter().map(|p| get(p).runs).collect(),
                key,
            }
        })
        .collect();
    series.sort_by(|a, b| b.co2_kg.iter().sum::<f64>().total_cmp(&a.co2_kg.iter().sum::<f64>()));
    TimeSeries { period, by, periods, series, undated_runs: undated, gaps_filled }
}

/// Teams with their totals, largest CO2 first.
pub fn teams<R: std::borrow::Borrow<Run>>(runs: &[R]) -> Vec<crate::pages::TeamSummary> {
    let mut by: BTreeMap<String, Vec<&Run>> = BTreeMap::new();
    for r in runs.iter().map(|r| r.borrow()) {
        by.entry(Dimension::Team.of(r)).or_default().push(r);
    }
    let mut out: Vec<crate::pages::TeamSummary> = by
        .into_iter()
        .map(|(team, rs)| {
            let projects: BTreeSet<String> = rs.iter().map(|r| Dimension::Project.of(r)).collect();
            crate::pages::TeamSummary {
                team,
                totals: crate::model::Totals::of(rs.iter().copied()),
                projects: projects.into_iter().collect(),
                last_run: rs.iter().filter_map(|r| r.ended_at).max(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.totals.co2_kg.total_cmp(&a.totals.co2_kg));
    out
}

/// The team page's figures (charts are drawn by the caller from [`timeseries`]): totals, the
/// last month with runs against the month before, top runs and projects.
pub fn team_page<R: std::borrow::Borrow<Run>>(title: &str, runs: &[&Run], all: &[R]) -> crate::pages::TeamPage {
    use crate::model::Totals;
    use crate::pages::{ProjectTotal, TeamPage};
    let months: BTreeSet<String> =
        runs.iter().filter_map(|r| r.ended_at.map(|e| Period::Month.key(e.date()))).collect();
    let this = months.last().cloned().unwrap_or_default();
    let previous = NaiveDate::parse_from_str(&format!("{this}-01"), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.checked_sub_months(chrono::Months::new(1)))
        .map(|d| d.format("%Y-%m").to_string())
        .unwrap_or_default();
    let in_month = |m: &str| {
        Totals::of(
            runs.iter().copied().filter(|r| r.ended_at.map(|e| Period::Month.key(e.date())).as_deref() == Some(m)),
        )
    };
    let mut top: Vec<&Run> = runs.to_vec();
    top.sort_by(|a, b| b.assessment.co2_kg.unwrap_or(0.0).total_cmp(&a.assessment.co2_kg.unwrap_or(0.0)));
    let top_runs: Vec<RunRow> = top.into_iter().take(10).map(RunRow::from).collect();
    let mut by_project: BTreeMap<String, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        by_project.entry(Dimension::Project.of(r)).or_default().push(r);
    }
    let mut top_projects: Vec<ProjectTotal> = by_project
        .into_iter()
        .map(|(p, rs)| ProjectTotal { project_name: p, totals: Totals::of(rs.iter().copied()) })
        .collect();
    top_projects.sort_by(|a, b| b.totals.co2_kg.total_cmp(&a.totals.co2_kg));
    let distinct =
        |d: Dimension| all.iter().map(|r| d.of(r.borrow())).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>();
    TeamPage {
        title: title.to_string(),
        totals: Totals::of(runs.iter().copied()),
        this_period_totals: in_month(&this),
        previous_period_totals: in_month(&previous),
        this_period: this,
        previous_period: previous,
        charts: Vec::new(),
        top_runs,
        top_projects,
        teams: distinct(Dimension::Team),
        projects: distinct(Dimension::Project),
        budgets: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Assessment;

    fn run(id: &str, team: &str, project: &str, ended: &str, co2: f64) -> Run {
        Run {
            run_id: id.into(),
            team: Some(team.into()),
            project_name: Some(project.into()),
            ended_at: crate::time::parse_iso(ended),
            energy_kwh: Some(co2 * 2.0),
            assessment: Assessment {
                co2_kg: Some(co2),
                co2_kg_low: Some(co2 * 0.8),
                co2_kg_high: Some(co2 * 1.2),
                ..Assessment::default()
            },
            ..Run::default()
        }
    }

    #[test]
    fn monthly_totals_equal_the_runs_ending_in_each_month_with_gaps_as_zero() {
        let runs = [
            run("a", "t1", "p", "2026-01-31T23:59:00", 1.0),
            run("b", "t1", "q", "2026-01-02T00:00:00", 2.0),
            run("c", "t2", "p", "2026-03-01T00:00:00", 4.0),
        ];
        let refs: Vec<&Run> = runs.iter().collect();
        let ts = timeseries(&refs, Period::Month, Dimension::Project);
        assert_eq!(ts.periods, ["2026-01", "2026-02", "2026-03"]);
        let p = ts.series.iter().find(|s| s.key == "p").map(|s| s.co2_kg.clone());
        assert_eq!(p, Some(vec![1.0, 0.0, 4.0]));
        let total_jan: f64 = ts.series.iter().map(|s| s.co2_kg[0]).sum();
        assert_eq!(total_jan, 3.0);
        assert_eq!(ts.series[0].key, "p", "largest first");
        let by_team = timeseries(&refs, Period::Month, Dimension::Team);
        assert_eq!(by_team.series.iter().map(|s| s.runs.iter().sum::<usize>()).sum::<usize>(), 3);
    }

    fn day(s: &str) -> NaiveDate {
        crate::time::parse_day(s).unwrap_or_default()
    }

    #[test]
    fn a_wide_span_and_many_series_stay_bounded() {
        let mut runs: Vec<Run> = (0..1000)
            .map(|i| run(&format!("r{i}"), "t", &format!("p{i:04}"), "2026-01-10T00:00:00", 1.0 + i as f64))
            .collect();
        runs.push(run("old", "t", "p0000", "1600-01-01T00:00:00", 1.0));
        runs.push(run("future", "t", "p0001", "2100-12-31T00:00:00", 1.0));
        let refs: Vec<&Run> = runs.iter().collect();
        let ts = timeseries(&refs, Period::Day, Dimension::Project);
        assert!(!ts.gaps_filled);
        assert_eq!(ts.periods, ["1600-01-01", "2026-01-10", "2100-12-31"], "only days with runs");
        assert_eq!(ts.series.len(), MAX_SERIES);
        assert!(ts.series.iter().all(|s| s.co2_kg.len() == 3));
        let others = ts.series.iter().find(|s| s.key == "901 others").map(|s| s.runs.iter().sum::<usize>());
        assert_eq!(others, Some(903), "the 901 smallest projects, every run counted once");
        let total: usize = ts.series.iter().map(|s| s.runs.iter().sum::<usize>()).sum();
        assert_eq!(total, 1002);
        // A short span keeps its empty periods.
        let few: Vec<&Run> = runs[..2].iter().collect();
        assert!(timeseries(&few, Period::Month, Dimension::Project).gaps_filled);
    }

    #[test]
    fn weeks_and_days_are_iso() {
        assert_eq!(Period::Week.key(day("2026-01-01")), ("2026-W01"));
        assert_eq!(Period::Week.key(day("2025-12-29")), ("2026-W01"));
        assert_eq!(Period::Day.key(day("2026-01-01")), ("2026-01-01"));
        assert_eq!(span(Period::Week, "2025-W52", "2026-W02"), ["2025-W52", "2026-W01", "2026-W02"]);
    }

    #[test]
    fn a_chart_keeps_the_largest_series_and_adds_up_the_others() {
        let runs: Vec<Run> = (0..6)
            .map(|i| run(&format!("r{i}"), "t", &format!("p{i}"), "2026-01-10T00:00:00", 1.0 + i as f64))
            .collect();
        let refs: Vec<&Run> = runs.iter().collect();
        let all = timeseries(&refs, Period::Month, Dimension::Project);
        let top = all.clone().top(2);
        assert_eq!(top.series.len(), 3);
        assert_eq!(top.series[2].key, "4 others");
        let total = |t: &TimeSeries| t.series.iter().map(|s| s.co2_kg.iter().sum::<f64>()).sum::<f64>();
        assert!((total(&top) - total(&all)).abs() < 1e-9, "nothing is lost");
        assert_eq!(all.clone().top(5).series.len(), 6, "one series is never folded alone");
    }

    #[test]
    fn team_pages_compare_the_last_month_with_the_one_before() {
        let runs = vec![
            run("a", "t1", "p", "2026-01-31T23:59:00", 1.0),
            run("b", "t1", "q", "2026-02-02T00:00:00", 2.0),
            run("c", "t2", "p", "2026-02-10T00:00:00", 4.0),
        ];
        let refs: Vec<&Run> = runs.iter().collect();
        let page = team_page("organisation", &refs, &runs);
        assert_eq!((page.this_period.as_str(), page.previous_period.as_str()), ("2026-02", "2026-01"));
        assert_eq!(page.this_period_totals.co2_kg, 6.0);
        assert_eq!(page.previous_period_totals.co2_kg, 1.0);
        assert_eq!(page.top_runs[0].run_id, "c");
        assert_eq!(page.top_projects[0].project_name, "p");
        assert_eq!(page.top_projects[0].totals.co2_kg, 5.0);
        let t = teams(&runs);
        assert_eq!(t[0].team, "t2");
        assert_eq!(t[1].projects, ["p", "q"]);
    }

    #[test]
    fn view_filters_combine() {
        let r = run("a", "t1", "p", "2026-01-31T23:59:00", 1.0);
        let f = |k: &str, v: &str| ViewFilter::from_params(|q| (q == k).then(|| v.to_string())).matches(&r);
        assert!(f("team", "t1") && !f("team", "t2"));
        assert!(f("from", "2026-01-31") && !f("from", "2026-02-01"));
        assert!(!f("provider", "gcp") && f("provider", UNNAMED));
    }
}
