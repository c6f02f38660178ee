//! Server functions: the pages' only data source. They read the shared catalog on the server.

use carbon_core::model::{
    Chart, DatasetInfo, DatasetMode, Equivalent, ExperimentPage, FileReport, MapPage, RegionRow, RunDetail, RunsPage,
    Summary, TeamPage, TeamSummary, UploadState,
};
use carbon_core::query::{RunQuery, ViewFilter, WhatIfQuery};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

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
}

#[cfg(feature = "ssr")]
fn active() -> Option<Active> {
    use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<Active>().cloned())
}

#[cfg(feature = "ssr")]
fn with_catalog<T>(f: impl FnOnce(&carbon_core::catalog::Catalog) -> T) -> Result<T, ServerFnError> {
    let shared = active()
        .map(|a| a.catalog)
        .or_else(use_context::<Shared>)
        .ok_or_else(|| ServerFnError::new("no catalog in context"))?;
    Ok(f(&shared.current()))
}

/// Whether this visitor may upload (and save), the limits, and its session's files.
#[server]
pub async fn get_upload_state() -> Result<UploadState, ServerFnError> {
    Ok(active().map(|a| a.upload).unwrap_or_default())
}

#[server(input = Json)]
pub async fn get_summary(dataset: DatasetMode) -> Result<Summary, ServerFnError> {
    with_catalog(|c| c.summary(dataset).clone())
}

/// Problems sent per file to the Files page (the JSON API has them all).
pub const MAX_PROBLEMS_SHOWN: usize = 50;

/// One page of runs, filtered and sorted on the server so that only the rows shown travel.
#[server(input = Json)]
pub async fn get_runs_page(query: RunQuery) -> Result<RunsPage, ServerFnError> {
    with_catalog(|c| c.runs_page(&query))
}

#[server(input = Json)]
pub async fn get_run(run_id: String, dataset: DatasetMode) -> Result<Option<RunDetail>, ServerFnError> {
    with_catalog(|c| c.run_detail(&run_id, dataset))?.map_err(|e| ServerFnError::new(e.to_string()))
}

#[server]
pub async fn get_files() -> Result<Vec<FileReport>, ServerFnError> {
    with_catalog(|c| {
        c.files()
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.problems.truncate(MAX_PROBLEMS_SHOWN);
                f
            })
            .collect()
    })
}

/// Everyday equivalents of a CO2 figure (with its range) and an energy.
#[server(input = Json)]
pub async fn get_equivalents(
    co2_kg: f64,
    co2_kg_low: f64,
    co2_kg_high: f64,
    kwh: f64,
) -> Result<Vec<Equivalent>, ServerFnError> {
    Ok(carbon_core::grid::Grid::embedded().equivalents(co2_kg, co2_kg_low, co2_kg_high, kwh))
}

#[server]
pub async fn get_datasets() -> Result<DatasetInfo, ServerFnError> {
    with_catalog(|c| carbon_core::grid::Grid::embedded().info(c.applies_provider_pue()))
}

/// The map and the what-if ranking for a selection.
#[server(input = Json)]
pub async fn get_map(query: WhatIfQuery) -> Result<MapPage, ServerFnError> {
    with_catalog(|c| c.map_page(&query))
}

#[server]
pub async fn get_regions() -> Result<Vec<RegionRow>, ServerFnError> {
    Ok(carbon_core::whatif::regions(carbon_core::grid::Grid::embedded()))
}

#[server]
pub async fn get_teams() -> Result<Vec<TeamSummary>, ServerFnError> {
    with_catalog(|c| carbon_core::timeseries::teams(c.runs(DatasetMode::Latest)))
}

/// The organisation page (no team in the filter) or a team's: monthly CO2 stacked by project,
/// the cumulative curve, the trend, the top runs and projects.
#[server(input = Json)]
pub async fn get_team_page(filter: ViewFilter) -> Result<TeamPage, ServerFnError> {
    use carbon_core::timeseries::{team_page, timeseries, Dimension, Period};
    with_catalog(|c| {
        let all = c.runs(DatasetMode::Latest);
        let runs: Vec<&carbon_core::model::Run> = all.iter().filter(|r| filter.matches(r)).collect();
        let title = filter.team.clone().unwrap_or_else(|| "Organisation".into());
        let mut page = team_page(&title, &runs, all);
        let by_project = timeseries(&runs, Period::Month, Dimension::Project);
        page.charts.push(charts::stacked_co2(&by_project, "monthly-by-project", "CO₂e per month, by project"));
        if filter.team.is_none() {
            let by_team = timeseries(&runs, Period::Month, Dimension::Team);
            page.charts.push(charts::stacked_co2(&by_team, "monthly-by-team", "CO₂e per month, by team"));
        }
        page.charts.push(charts::cumulative_co2(&by_project, "cumulative", "Cumulative CO₂e"));
        page
    })
}

/// A run's charts: cumulative energy and CO2, power between checkpoints.
#[server(input = Json)]
pub async fn get_run_charts(run_id: String) -> Result<Vec<Chart>, ServerFnError> {
    let detail =
        with_catalog(|c| c.run_detail(&run_id, DatasetMode::Latest))?.map_err(|e| ServerFnError::new(e.to_string()))?;
    let Some(d) = detail else { return Ok(Vec::new()) };
    let mut out: Vec<Chart> = charts::energy_split(&d.run).into_iter().collect();
    if d.checkpoints.len() > 1 && d.run.tasks.is_empty() {
        out.push(charts::run_progress(&d));
        out.push(charts::power_between(&d));
        out.extend(charts::utilisation(&d));
    }
    Ok(out)
}

#[server(input = Json)]
pub async fn get_experiment(
    experiment_id: String,
    dataset: DatasetMode,
) -> Result<Option<ExperimentPage>, ServerFnError> {
    with_catalog(|c| {
        let runs: Vec<&carbon_core::model::Run> =
            c.runs(dataset).iter().filter(|r| r.experiment_id.as_deref() == Some(experiment_id.as_str())).collect();
        if runs.is_empty() {
            return None;
        }
        let by_co2 = |r: &&carbon_core::model::Run| r.assessment.co2_kg.unwrap_or(f64::NAN);
        let best = runs.iter().filter(|r| r.assessment.co2_kg.is_some()).min_by(|a, b| by_co2(a).total_cmp(&by_co2(b)));
        let worst =
            runs.iter().filter(|r| r.assessment.co2_kg.is_some()).max_by(|a, b| by_co2(a).total_cmp(&by_co2(b)));
        Some(ExperimentPage {
            project_name: runs[0].project_name.clone(),
            totals: carbon_core::model::Totals::of(runs.iter().copied()),
            best_run: best.map(|r| r.run_id.clone()),
            worst_run: worst.map(|r| r.run_id.clone()),
            charts: vec![charts::duration_vs_co2(&runs, "duration-co2", "Duration against CO₂e, per run")],
            runs: runs.iter().map(|r| (*r).clone()).collect(),
            experiment_id,
        })
    })
}
