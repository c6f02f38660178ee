//! Filtering and sorting of runs, as the Runs page and `GET /api/v1/runs` ask for them.

use crate::model::{DatasetMode, Run, UNNAMED};
use crate::pages::{RunRow, RunsPage};
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::cmp::Ordering;

/// Columns runs can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Started,
    Project,
    Experiment,
    Country,
    Duration,
    Energy,
    /// Recomputed CO2.
    Co2,
    Co2Reported,
}

impl SortKey {
    pub const ALL: [SortKey; 8] = [
        SortKey::Started,
        SortKey::Project,
        SortKey::Experiment,
        SortKey::Country,
        SortKey::Duration,
        SortKey::Energy,
        SortKey::Co2,
        SortKey::Co2Reported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Started => "started",
            SortKey::Project => "project",
            SortKey::Experiment => "experiment",
            SortKey::Country => "country",
            SortKey::Duration => "duration",
            SortKey::Energy => "energy",
            SortKey::Co2 => "co2",
            SortKey::Co2Reported => "co2_reported",
        }
    }

    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Figures and dates read best largest/newest first, names A→Z.
    pub fn default_descending(self) -> bool {
        !matches!(self, SortKey::Project | SortKey::Experiment | SortKey::Country)
    }
}

/// What to show: every field optional; dates are `YYYY-MM-DD`, inclusive, on the start date.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunQuery {
    pub project: Option<String>,
    pub experiment: Option<String>,
    pub country: Option<String>,
    pub team: Option<String>,
    pub provider: Option<String>,
    /// The tracker that wrote the runs ("CodeCarbon", "carbontracker", …).
    #[serde(default)]
    pub tool: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub sort: Option<SortKey>,
    pub descending: Option<bool>,
    /// 1-based page of [`PAGE_SIZE`] rows.
    pub page: Option<usize>,
    /// Dataset the CO2 is recomputed with (`latest` when absent).
    pub dataset: Option<DatasetMode>,
    /// A model metric shown as a column (joined from the files beside the logs).
    #[serde(default)]
    pub metric: Option<String>,
}

/// Rows per page of the Runs table.
pub const PAGE_SIZE: usize = 100;

impl RunQuery {
    /// Reads the query from URL parameters (`project`, `experiment`, `country`, `from`, `to`,
    /// `sort`, `dir=asc|desc`); empty values mean "any".
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> RunQuery {
        let field = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        RunQuery {
            project: field("project"),
            experiment: field("experiment"),
            country: field("country"),
            team: field("team"),
            provider: field("provider"),
            tool: field("tool"),
            from: field("from"),
            to: field("to"),
            sort: get("sort").as_deref().and_then(SortKey::parse),
            descending: get("dir").and_then(|d| match d.as_str() {
                "asc" => Some(false),
                "desc" => Some(true),
                _ => None,
            }),
            page: get("page").and_then(|p| p.trim().parse().ok()).filter(|&p| p > 1),
            dataset: get("dataset").as_deref().and_then(DatasetMode::parse).filter(|d| *d != DatasetMode::Latest),
            metric: field("metric"),
        }
    }

    /// The URL parameters of this query, empty ones left out.
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (k, v) in [
            ("project", &self.project),
            ("experiment", &self.experiment),
            ("country", &self.country),
            ("team", &self.team),
            ("provider", &self.provider),
            ("tool", &self.tool),
            ("from", &self.from),
            ("to", &self.to),
            ("metric", &self.metric),
        ] {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        }
        if let Some(s) = self.sort {
            out.push(("sort", s.as_str().to_string()));
        }
        if let Some(d) = self.descending {
            out.push(("dir", if d { "desc" } else { "asc" }.to_string()));
        }
        if let Some(p) = self.page {
            out.push(("page", p.to_string()));
        }
        if let Some(d) = self.dataset {
            out.push(("dataset", d.as_str().to_string()));
        }
        out
    }

    pub fn mode(&self) -> DatasetMode {
        self.dataset.unwrap_or_default()
    }

    pub fn sort_key(&self) -> SortKey {
        self.sort.unwrap_or(SortKey::Started)
    }

    pub fn is_descending(&self) -> bool {
        self.descending.unwrap_or_else(|| self.sort_key().default_descending())
    }

    /// The query sorted by `key`: the same key flips direction, a new key starts at its default.
    pub fn toggled(&self, key: SortKey) -> RunQuery {
        let descending = if self.sort_key() == key { !self.is_descending() } else { key.default_descending() };
        RunQuery { sort: Some(key), descending: Some(descending), page: None, ..self.clone() }
    }

    /// The same filters and order on another page.
    pub fn on_page(&self, page: usize) -> RunQuery {
        RunQuery { page: (page > 1).then_some(page), ..self.clone() }
    }

    /// One page of the matching runs, with the values the filters offer.
    pub fn page_of<R: Borrow<Run>>(&self, runs: &[R]) -> RunsPage {
        let order = sort_order(runs, self.sort_key(), self.is_descending());
        self.page_in(runs, &order, &FilterValues::of(runs))
    }

    /// One page of the matching runs, with `order` the runs' order for this query's sort (see
    /// [`sort_order`]): no sort per request, and only the rows shown are copied.
    pub fn page_in<R: Borrow<Run>>(&self, runs: &[R], order: &[u32], values: &FilterValues) -> RunsPage {
        let matched = self.ordered(runs, order).count();
        let pages = matched.div_ceil(PAGE_SIZE).max(1);
        let page = self.page.unwrap_or(1).clamp(1, pages);
        RunsPage {
            rows: self.ordered(runs, order).skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).map(RunRow::from).collect(),
            matched,
            total: runs.len(),
            page,
            pages,
            projects: values.projects.clone(),
            experiments: values.experiments.clone(),
            countries: values.countries.clone(),
            teams: values.teams.clone(),
            providers: values.providers.clone(),
            tools: values.tools.clone(),
            metrics: Vec::new(),
        }
    }

    /// The matching runs in `order`.
    pub fn ordered<'a, R: Borrow<Run>>(
        &'a self,
        runs: &'a [R],
        order: &'a [u32],
    ) -> impl Iterator<Item = &'a Run> + 'a {
        order.iter().map(move |&i| runs[i as usize].borrow()).filter(move |r| self.matches(r))
    }

    pub fn matches(&self, r: &Run) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| match want {
            None => true,
            Some(w) => have.as_deref().unwrap_or(crate::model::UNNAMED) == w,
        };
        let day = r.started_at.map(|t| t.date());
        eq(&self.project, &r.project_name)
            && eq(&self.experiment, &r.experiment_id)
            && eq(&self.country, &r.country_name)
            && eq(&self.team, &r.team)
            && eq(&self.provider, &r.cloud_provider)
            && self.tool.as_deref().is_none_or(|t| r.tool_name() == t)
            && in_days(day, self.from.as_deref(), self.to.as_deref())
    }

    /// The matching runs, sorted; missing values always last.
    pub fn apply<'a, R: Borrow<Run>>(&self, runs: &'a [R]) -> Vec<&'a Run> {
        let order = sort_order(runs, self.sort_key(), self.is_descending());
        order.iter().map(|&i| runs[i as usize].borrow()).filter(|r| self.matches(r)).collect()
    }
}

/// The values the Runs page's filters offer: every project, experiment, country, team and
/// provider among the runs, sorted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilterValues {
    pub projects: Vec<String>,
    pub experiments: Vec<String>,
    pub countries: Vec<String>,
    pub teams: Vec<String>,
    pub providers: Vec<String>,
    pub tools: Vec<String>,
}

impl FilterValues {
    pub fn of<R: Borrow<Run>>(runs: &[R]) -> FilterValues {
        let distinct = |f: fn(&Run) -> Option<&String>| -> Vec<String> {
            let set: std::collections::BTreeSet<&str> =
                runs.iter().map(|r| f(r.borrow()).map_or(UNNAMED, |s| s.as_str())).collect();
            set.into_iter().map(str::to_string).collect()
        };
        FilterValues {
            projects: distinct(|r| r.project_name.as_ref()),
            experiments: distinct(|r| r.experiment_id.as_ref()),
            countries: distinct(|r| r.country_name.as_ref()),
            teams: distinct(|r| r.team.as_ref()),
            providers: distinct(|r| r.cloud_provider.as_ref()),
            tools: runs
                .iter()
                .map(|r| r.borrow().tool_name())
                .collect::<std::collections::BTreeSet<&str>>()
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }
}

/// Positions of `runs` sorted by `key` (missing values last in both directions, ties by run id).
pub fn sort_order<R: Borrow<Run>>(runs: &[R], key: SortKey, desc: bool) -> Vec<u32> {
    let mut order: Vec<u32> = (0..runs.len() as u32).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (runs[i as usize].borrow(), runs[j as usize].borrow());
        let ord = match key {
            SortKey::Started => cmp_opt(&a.started_at, &b.started_at, desc),
            SortKey::Project => cmp_opt(&a.project_name, &b.project_name, desc),
            SortKey::Experiment => cmp_opt(&a.experiment_id, &b.experiment_id, desc),
            SortKey::Country => cmp_opt(&a.country_name, &b.country_name, desc),
            SortKey::Duration => cmp_f(a.duration_s, b.duration_s, desc),
            SortKey::Energy => cmp_f(a.energy_kwh, b.energy_kwh, desc),
            SortKey::Co2 => cmp_f(a.assessment.co2_kg, b.assessment.co2_kg, desc),
            SortKey::Co2Reported => cmp_f(a.co2_kg_reported, b.co2_kg_reported, desc),
        };
        ord.then_with(|| a.run_id.cmp(&b.run_id))
    });
    order
}

fn cmp_opt<T: Ord>(a: &Option<T>, b: &Option<T>, desc: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) if desc => y.cmp(x),
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn cmp_f(a: Option<f64>, b: Option<f64>, desc: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) if desc => y.total_cmp(&x),
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Filters of a what-if; all optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WhatIfFilters {
    pub provider: Option<String>,
    pub continent: Option<String>,
    /// Only regions within this many km of where the selection ran.
    pub within_km: Option<f64>,
}

/// The map page's state: what is selected (a run, an experiment, a project, or everything),
/// the filters, and the region clicked. Lives in the URL like [`RunQuery`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WhatIfQuery {
    pub run_id: Option<String>,
    pub project: Option<String>,
    pub experiment: Option<String>,
    /// Only the runs of this tracker ("CodeCarbon", "carbontracker", …).
    #[serde(default)]
    pub tool: Option<String>,
    pub filters: WhatIfFilters,
    /// "provider/region" clicked on the map.
    pub region: Option<String>,
}

impl WhatIfQuery {
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> WhatIfQuery {
        let field = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        WhatIfQuery {
            run_id: field("run_id"),
            project: field("project"),
            experiment: field("experiment"),
            tool: field("tool"),
            filters: WhatIfFilters {
                provider: field("provider"),
                continent: field("continent"),
                within_km: field("within_km").and_then(|v| v.parse().ok()).filter(|k: &f64| k.is_finite() && *k > 0.0),
            },
            region: field("region"),
        }
    }

    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (k, v) in [
            ("run_id", &self.run_id),
            ("project", &self.project),
            ("experiment", &self.experiment),
            ("tool", &self.tool),
            ("provider", &self.filters.provider),
            ("continent", &self.filters.continent),
            ("region", &self.region),
        ] {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        }
        if let Some(km) = self.filters.within_km {
            out.push(("within_km", km.to_string()));
        }
        out
    }

    /// Whether a run belongs to the selection (everything when nothing is selected).
    pub fn selects(&self, r: &Run) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| want.as_ref().is_none_or(|w| have.as_ref() == Some(w));
        self.run_id.as_ref().is_none_or(|id| &r.run_id == id)
            && eq(&self.project, &r.project_name)
            && eq(&self.experiment, &r.experiment_id)
            && self.tool.as_deref().is_none_or(|t| r.tool_name() == t)
    }

    /// "run 2c7f0b79", "project p / experiment e", "all runs".
    pub fn label(&self) -> String {
        if let Some(id) = &self.run_id {
            return format!("run {}", id.chars().take(8).collect::<String>());
        }
        let mut parts = Vec::new();
        if let Some(p) = &self.project {
            parts.push(format!("project {p}"));
        }
        if let Some(e) = &self.experiment {
            parts.push(format!("experiment {}", e.chars().take(8).collect::<String>()));
        }
        if let Some(t) = &self.tool {
            parts.push(format!("{t}'s runs"));
        }
        if parts.is_empty() {
            "all runs".into()
        } else {
            parts.join(" / ")
        }
    }
}

/// The filters shared by every view: dates (`YYYY-MM-DD`, inclusive, on the end date), team,
/// project, experiment, country or region, cloud provider.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ViewFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub team: Option<String>,
    pub project: Option<String>,
    pub experiment: Option<String>,
    /// Matches the country name, ISO code or region.
    pub place: Option<String>,
    pub provider: Option<String>,
    /// The tracker that wrote the runs.
    #[serde(default)]
    pub tool: Option<String>,
}

impl ViewFilter {
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> ViewFilter {
        let f = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        ViewFilter {
            from: f("from"),
            to: f("to"),
            team: f("team"),
            project: f("project"),
            experiment: f("experiment"),
            place: f("place"),
            provider: f("provider"),
            tool: f("tool"),
        }
    }

    pub fn matches(&self, r: &Run) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_deref().unwrap_or(UNNAMED) == w)
        };
        let day = r.ended_at.map(|t| t.date());
        eq(&self.team, &r.team)
            && eq(&self.project, &r.project_name)
            && eq(&self.experiment, &r.experiment_id)
            && eq(&self.provider, &r.cloud_provider)
            && self.tool.as_deref().is_none_or(|t| r.tool_name() == t)
            && self.place.as_ref().is_none_or(|p| {
                [&r.country_name, &r.country_iso_code, &r.region]
                    .iter()
                    .any(|v| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(p)))
            })
            && in_days(day, self.from.as_deref(), self.to.as_deref())
    }
}

/// Whether `day` is within `from` and `to` (`YYYY-MM-DD`, both included; a bound that is not a
/// date is no bound). A run without a time is outside any bound.
fn in_days(day: Option<chrono::NaiveDate>, from: Option<&str>, to: Option<&str>) -> bool {
    let from = from.and_then(crate::time::parse_day);
    let to = to.and_then(crate::time::parse_day);
    match day {
        Some(d) => from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t),
        None => from.is_none() && to.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, project: &str, day: &str, kwh: Option<f64>) -> Run {
        Run {
            run_id: id.into(),
            project_name: Some(project.into()),
            started_at: crate::time::parse_iso(&format!("{day}T10:00:00")),
            energy_kwh: kwh,
            ..Run::default()
        }
    }

    #[test]
    fn sorting_by_energy_puts_missing_values_last_in_both_directions() {
        let runs = vec![
            run("a", "p", "2024-01-01", Some(1.0)),
            run("b", "p", "2024-01-02", None),
            run("c", "q", "2024-01-03", Some(3.0)),
        ];
        let q = RunQuery { sort: Some(SortKey::Energy), ..RunQuery::default() };
        let ids: Vec<&str> = q.apply(&runs).iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
        let ids: Vec<&str> = q.toggled(SortKey::Energy).apply(&runs).iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "b"]);
    }

    #[test]
    fn filters_combine_project_and_inclusive_date_range() {
        let runs = vec![
            run("a", "p", "2024-01-01", Some(1.0)),
            run("b", "p", "2024-01-02", None),
            run("c", "q", "2024-01-02", Some(3.0)),
        ];
        let q = RunQuery::from_params(|k| match k {
            "project" => Some("p".to_string()),
            "from" => Some("2024-01-02".to_string()),
            "to" => Some("2024-01-02".to_string()),
            "sort" => Some("bogus".to_string()),
            _ => None,
        });
        let ids: Vec<&str> = q.apply(&runs).iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(q.to_params().len(), 3);
    }

    #[test]
    fn what_if_queries_round_trip_through_the_url_and_select_runs() {
        let q = WhatIfQuery::from_params(|k| match k {
            "project" => Some("p".to_string()),
            "provider" => Some("gcp".to_string()),
            "within_km" => Some("500".to_string()),
            _ => None,
        });
        assert_eq!(q.filters.within_km, Some(500.0));
        let again = WhatIfQuery::from_params(|k| q.to_params().into_iter().find(|(n, _)| *n == k).map(|(_, v)| v));
        assert_eq!(again, q);
        assert!(q.selects(&run("a", "p", "2024-01-01", None)));
        assert!(!q.selects(&run("b", "q", "2024-01-01", None)));
        assert_eq!(q.label(), "project p");
        assert_eq!(WhatIfQuery::default().label(), "all runs");
    }

    #[test]
    fn pages_hold_page_size_rows_and_a_page_past_the_end_shows_the_last() {
        let runs: Vec<Run> = (0..250).map(|i| run(&format!("r{i:03}"), "p", "2024-01-01", Some(i as f64))).collect();
        let q = RunQuery { sort: Some(SortKey::Energy), descending: Some(false), ..RunQuery::default() };
        let p1 = q.page_of(&runs);
        assert_eq!((p1.rows.len(), p1.matched, p1.pages, p1.page), (100, 250, 3, 1));
        assert_eq!(p1.rows[0].run_id, "r000");
        let p3 = q.on_page(9).page_of(&runs);
        assert_eq!((p3.rows.len(), p3.page), (50, 3));
        assert_eq!(p3.rows[0].run_id, "r200");
        assert_eq!(p3.projects, vec!["p"]);
        assert_eq!(q.on_page(2).toggled(SortKey::Co2).page, None, "a new order starts on page 1");
    }
}
