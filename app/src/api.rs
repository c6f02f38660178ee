//! Server functions: the pages' only data source. They read the shared catalog on the server.

use carbon_core::model::{DatasetInfo, DatasetMode, RegionRow};
use carbon_core::pages::{
    ExperimentPage, FilesPage, MapPage, OverviewPage, RunPageData, RunsPage, TeamPage, TeamSummary, UploadState,
};
use carbon_core::query::{RunQuery, ViewFilter, WhatIfQuery};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// What a page's data can fail with, as the page shows it: only what the reader can act on. A
/// server fault is logged on the server with its cause; the page says only that it happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum PageError {
    /// The server could not answer; its log says why.
    Server,
    /// The call did not get through or back (network, encoding), in the words of the call.
    Call(String),
}

impl PageError {
    /// A server fault: `cause` is logged, not sent.
    #[cfg(feature = "ssr")]
    pub fn server(cause: impl std::fmt::Display) -> PageError {
        tracing::error!(%cause, "a page's data could not be read");
        PageError::Server
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Server => f.write_str("the server could not answer (the cause is in its log)"),
            PageError::Call(why) => write!(f, "the request failed: {why}"),
        }
    }
}

impl leptos::server_fn::error::FromServerFnError for PageError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(e: leptos::server_fn::error::ServerFnErrorErr) -> PageError {
        PageError::Call(e.to_string())
    }
}

/// The catalog shared by every request on the server.
#[cfg(feature = "ssr")]
pub type Shared = carbon_core::catalog::SharedCatalog;

/// What one request reads, put in its extensions by the server: the visitor's private upload
/// session when it has one, the logs otherwise; and what it may do with uploads.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct Active {
    pub catalog: Shared,
    pub upload: UploadState,
    /// The person signed in, when the server signs people in.
    pub person: Option<SignedIn>,
}

#[cfg(feature = "ssr")]
fn active() -> Option<Active> {
    use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<Active>().cloned())
}

#[cfg(feature = "ssr")]
fn with_catalog<T>(f: impl FnOnce(&carbon_core::catalog::Catalog) -> T) -> Result<T, PageError> {
    let shared = active()
        .map(|a| a.catalog)
        .or_else(use_context::<Shared>)
        .ok_or_else(|| PageError::server("no catalog in the request's context"))?;
    Ok(f(&shared.current()))
}

/// A run with its checkpoints (thinned or all, see [`carbon_core::catalog::Catalog::detail`])
/// and how many it has.
#[cfg(feature = "ssr")]
async fn run_detail(
    run_id: &str,
    mode: DatasetMode,
    thinned: bool,
) -> Result<Option<(carbon_core::model::RunDetail, usize)>, PageError> {
    let shared = active()
        .map(|a| a.catalog)
        .or_else(use_context::<Shared>)
        .ok_or_else(|| PageError::server("no catalog in the request's context"))?;
    let catalog = shared.current();
    catalog.detail(run_id, mode, thinned).await.map_err(PageError::server)
}

/// Whether this visitor may upload (and save), the limits, and its session's files.
/// The person a page is shown to, on a server that signs people in.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SignedIn {
    pub user: String,
    /// Signed in here (OpenID Connect), so signing out is here too (a proxy's people sign out
    /// at the proxy).
    pub can_sign_out: bool,
}

#[server]
pub async fn get_signed_in() -> Result<Option<SignedIn>, PageError> {
    Ok(active().and_then(|a| a.person))
}

#[server]
pub async fn get_upload_state() -> Result<UploadState, PageError> {
    Ok(active().map(|a| a.upload).unwrap_or_default())
}

/// The overview: totals and one page of the project tree (the tree is trimmed; the JSON API
/// has all of it).
#[server(input = Json)]
pub async fn get_overview(dataset: DatasetMode, page: usize) -> Result<OverviewPage, PageError> {
    with_catalog(|c| {
        let mut o = c.summary(dataset).overview_page(page);
        let t = &o.summary.totals;
        o.equivalents = carbon_core::grid::Grid::embedded().equivalents_in_range(
            (t.co2_kg, t.co2_kg_low, t.co2_kg_high),
            (t.energy_kwh, t.energy_kwh_low, t.energy_kwh_high),
        );
        // The trend at a glance: CO2 per month, by team (the largest, the others together).
        use carbon_core::timeseries::{timeseries, Dimension, Period};
        let runs: Vec<&carbon_core::model::Run> = c.runs(dataset).iter().map(|r| &**r).collect();
        if !runs.is_empty() {
            let by_team = timeseries(&runs, Period::Month, Dimension::Team).top(charts::MAX_SERIES - 1);
            o.charts.push(charts::stacked_co2(&by_team, "overview-monthly", "CO₂e per month, by team"));
            let regions = carbon_core::whatif::regions(carbon_core::grid::Grid::embedded());
            let (places, unplaced) = carbon_core::whatif::places_of(&runs, &regions);
            o.map_svg = charts::map::runs_map(&places);
            o.map_note = format!(
                "{} place{}; circles sized by CO₂e, coloured by grid intensity{}",
                places.len(),
                if places.len() == 1 { "" } else { "s" },
                if unplaced > 0 {
                    format!("; {unplaced} runs logged no location and are not drawn")
                } else {
                    String::new()
                }
            );
        }
        o
    })
}

/// Problems sent per file to the Files page (the JSON API has them all).
pub const MAX_PROBLEMS_SHOWN: usize = 50;

/// One page of runs, filtered and sorted on the server so that only the rows shown travel.
#[server(input = Json)]
pub async fn get_runs_page(query: RunQuery) -> Result<RunsPage, PageError> {
    with_catalog(|c| c.runs_page(&query))
}

/// One page of the Files page.
#[server(input = Json)]
pub async fn get_files(page: usize) -> Result<FilesPage, PageError> {
    with_catalog(|c| FilesPage {
        watch_problem: c.watch_problem().map(str::to_string),
        ..FilesPage::of(c.files(), page, MAX_PROBLEMS_SHOWN)
    })
}

/// A run's page: the run, its checkpoints (thinned), its everyday equivalents and its charts.
#[server(input = Json)]
pub async fn get_run_page(run_id: String, dataset: DatasetMode) -> Result<Option<RunPageData>, PageError> {
    // The charts draw what the table lists: at most MAX_CHECKPOINT_ROWS points, the last kept.
    let Some((d, checkpoints_total)) = run_detail(&run_id, dataset, true).await? else { return Ok(None) };
    let mut charts: Vec<carbon_core::pages::Chart> = charts::energy_split(&d.run).into_iter().collect();
    if d.checkpoints.len() > 1 && d.run.tasks.is_empty() {
        charts.push(charts::run_progress(&d));
        charts.push(charts::power_between(&d));
        charts.extend(charts::utilisation(&d));
    }
    let a = &d.run.assessment;
    let equivalents = match a.co2_kg {
        Some(c) => carbon_core::grid::Grid::embedded().equivalents(
            c,
            a.co2_kg_low.unwrap_or(c),
            a.co2_kg_high.unwrap_or(c),
            d.run.energy_kwh.unwrap_or(0.0),
        ),
        None => Vec::new(),
    };
    let (metrics, params) = with_catalog(|c| {
        let join = c.metrics();
        let metrics = join.by_run.get(&d.run.run_id).map_or(Vec::new(), |m| {
            m.iter()
                .map(|(name, j)| {
                    let how = join.files.get(&j.file).map(|f| f.note()).unwrap_or_default();
                    let from = match &j.guess {
                        Some(why) => format!("{}: by its folder, a guess ({why})", j.file),
                        None => format!("{} ({})", j.file, how),
                    };
                    (name.clone(), j.value, from)
                })
                .collect()
        });
        let params = join
            .params
            .get(&d.run.run_id)
            .map_or(Vec::new(), |p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        (metrics, params)
    })?;
    Ok(Some(RunPageData { detail: d, checkpoints_total, equivalents, charts, metrics, params }))
}

#[server]
pub async fn get_datasets() -> Result<DatasetInfo, PageError> {
    with_catalog(|c| carbon_core::grid::Grid::embedded().info(c.applies_provider_pue()))
}

/// The map and the what-if ranking for a selection.
#[server(input = Json)]
pub async fn get_map(query: WhatIfQuery) -> Result<MapPage, PageError> {
    with_catalog(|c| {
        let mut page = c.map_page(&query);
        let w = &page.whatif;
        let sel = charts::map::Selection { energy_kwh: w.energy_kwh, current_co2_kg: w.current_co2_kg };
        page.svg =
            charts::map::world_svg(carbon_core::grid::Grid::embedded(), &page.shown, sel, query.region.as_deref());
        page
    })
}

#[server]
pub async fn get_regions() -> Result<Vec<RegionRow>, PageError> {
    Ok(carbon_core::whatif::regions(carbon_core::grid::Grid::embedded()))
}

#[server]
pub async fn get_teams(dataset: DatasetMode) -> Result<Vec<TeamSummary>, PageError> {
    with_catalog(|c| carbon_core::timeseries::teams(c.runs(dataset)))
}

/// The organisation page (no team in the filter) or a team's: monthly CO2 stacked by project,
/// the cumulative curve, the trend, the top runs and projects.
#[server(input = Json)]
pub async fn get_team_page(filter: ViewFilter, dataset: DatasetMode) -> Result<TeamPage, PageError> {
    use carbon_core::timeseries::{team_page, timeseries, Dimension, Period};
    with_catalog(|c| {
        let all = c.runs(dataset);
        let runs: Vec<&carbon_core::model::Run> = all.iter().map(|r| &**r).filter(|r| filter.matches(r)).collect();
        let title = filter.team.clone().unwrap_or_else(|| "Organisation".into());
        let mut page = team_page(&title, &runs, all);
        // The largest projects (teams), the others together: as many series as colours, and the
        // page stays small.
        let top = charts::MAX_SERIES - 1;
        let by_project = timeseries(&runs, Period::Month, Dimension::Project).top(top);
        page.charts.push(charts::stacked_co2(&by_project, "monthly-by-project", "CO₂e per month, by project"));
        if filter.team.is_none() {
            let by_team = timeseries(&runs, Period::Month, Dimension::Team).top(top);
            page.charts.push(charts::stacked_co2(&by_team, "monthly-by-team", "CO₂e per month, by team"));
        }
        page.charts.push(charts::cumulative_co2(&by_project, "cumulative", "Cumulative CO₂e"));
        // Budgets of the team and its projects (of every team in view, on the organisation's
        // page), over all their runs whatever the filters: a budget counts its whole period.
        if let Some(book) = use_context::<carbon_core::budget::Book>() {
            use carbon_core::budget::{in_view, standing, Scope};
            let now = carbon_core::budget::logs_now(all);
            let listed = book.get();
            for (i, b) in listed.budgets.iter().enumerate() {
                // A project's page (the team page filtered to a project) shows its budget and
                // its team's.
                let mine = match (&filter.team, &filter.project, &b.scope) {
                    (_, Some(p), Scope::Project(bp)) => p == bp,
                    (Some(t), _, Scope::Team(bt)) => t == bt,
                    (None, Some(p), Scope::Team(bt)) => all.iter().any(|r| {
                        r.project_name.as_deref() == Some(p.as_str()) && r.team.as_deref() == Some(bt.as_str())
                    }),
                    (None, None, _) => true,
                    (Some(t), None, Scope::Project(_)) => {
                        all.iter().any(|r| r.team.as_deref() == Some(t.as_str()) && in_view(b, &[&**r]))
                    }
                };
                if mine && in_view(b, all) {
                    let mut s = standing(b, all, now);
                    s.alerts = listed.alerts_of(&s);
                    let chart = charts::budget_burndown(&s, &format!("budget-{i}"));
                    page.budgets.push(carbon_core::pages::BudgetView { standing: s, chart });
                }
            }
        }
        page
    })
}

#[server(input = Json)]
pub async fn get_experiment(experiment_id: String, dataset: DatasetMode) -> Result<Option<ExperimentPage>, PageError> {
    with_catalog(|c| {
        let runs: Vec<&carbon_core::model::Run> = c
            .runs(dataset)
            .iter()
            .map(|r| &**r)
            .filter(|r| r.experiment_id.as_deref() == Some(experiment_id.as_str()))
            .collect();
        let mut page = ExperimentPage::of(experiment_id, &runs)?;
        let plotted = ExperimentPage::plotted(&runs);
        page.runs_plotted = plotted.len();
        page.charts = vec![charts::duration_vs_co2(&plotted, "duration-co2", "Duration against CO₂e, per run")];
        Some(page)
    })
}

/// The Pareto view of a selection (see [`carbon_core::pareto`]), with its chart when it has points.
#[server(input = Json)]
pub async fn get_pareto(
    query: carbon_core::pareto::ParetoQuery,
) -> Result<(carbon_core::pareto::ParetoView, Option<carbon_core::pages::Chart>), PageError> {
    with_catalog(|c| {
        // The page carries the front and a spread of the beaten runs; the API has them all.
        let v = c.pareto(&query).trimmed(carbon_core::pareto::BEATEN_SHOWN);
        let chart = (!v.points.is_empty()).then(|| charts::pareto(&v, Some(&crate::format::run_href)));
        (v, chart)
    })
}

#[cfg(feature = "ssr")]
fn live() -> Result<std::sync::Arc<carbon_live::Live>, PageError> {
    use_context::<std::sync::Arc<carbon_live::Live>>().ok_or_else(|| PageError::server("no live grid in the context"))
}

/// "When to run": the planner's answer for the query in the page's URL, with its chart.
#[server(input = Json)]
pub async fn get_plan(query: carbon_core::schedule::PlanQuery) -> Result<carbon_core::schedule::PlanView, PageError> {
    use carbon_core::schedule::{PlanView, RunFacts};
    let live = live()?;
    let grid = carbon_core::grid::Grid::embedded();
    let offline = live.offline_advice();
    let facts = match query.run_id.as_deref().filter(|r| !r.is_empty()) {
        Some(id) => match run_detail(id, DatasetMode::Latest, false).await? {
            Some((d, _)) => Some(RunFacts::of(grid, &d)),
            None => return Ok(PlanView { answer: Err(format!("no run '{id}'")), chart: None, offline }),
        },
        None => None,
    };
    let answer = carbon_live::planner::plan(&live, grid, &query, facts.as_ref()).await;
    let chart = answer.as_ref().ok().filter(|a| !a.forecast.is_empty()).map(charts::plan_forecast);
    Ok(PlanView { answer, chart, offline })
}

/// The grid now in each cloud region a live provider covers: the UK API's regions from one call;
/// Electricity Maps' values only as far as they are cached (a list of places must not spend a
/// token's quota).
#[server]
pub async fn get_grid_now() -> Result<carbon_core::schedule::GridNow, PageError> {
    use carbon_core::live::{Target, UkArea};
    let live = live()?;
    let grid = carbon_core::grid::Grid::embedded();
    let mut out =
        carbon_core::schedule::GridNow { offline: live.offline_advice(), at: live.now(), ..Default::default() };
    if live.offline() {
        return Ok(out);
    }
    let uk = live.uk_regions().await;
    out.notes = uk.notes;
    let uk = uk.value.unwrap_or_default();
    for c in grid.cloud_regions() {
        let key = format!("{}/{}", c.provider, c.region);
        let Ok(t) = Target::of_region(grid, &key) else { continue };
        let from_uk = match t.uk {
            Some(UkArea::Region(_)) => {
                let z = t.uk.map(UkArea::zone);
                uk.iter().find(|r| Some(&r.zone) == z.as_ref()).cloned()
            }
            _ => None,
        };
        if let Some(r) = from_uk.or_else(|| live.cached_latest(&t)) {
            out.regions.push((key, r));
        }
    }
    Ok(out)
}

/// A run's CO2 at the hours it ran, where a provider's history covers them. The CSV's times carry
/// no time zone: they are read as Great Britain's clock for runs there (the UK API's history
/// covers years); elsewhere there is no hourly figure.
#[server(input = Json)]
pub async fn get_run_hours(run_id: String) -> Result<carbon_core::schedule::RunHoursView, PageError> {
    let live = live()?;
    if live.offline() {
        return Ok(carbon_core::schedule::RunHoursView { hours: None, note: None });
    }
    let Some((d, _)) = run_detail(&run_id, DatasetMode::Latest, false).await? else {
        return Ok(carbon_core::schedule::RunHoursView { hours: None, note: None });
    };
    Ok(carbon_live::planner::run_hours(&live, carbon_core::grid::Grid::embedded(), &d).await)
}
