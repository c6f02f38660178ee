//! Server functions: the pages' only data source. They read the shared catalog on the server.

use carbon_core::model::{
    DatasetInfo, DatasetMode, Equivalent, FileReport, MapPage, RegionRow, RunDetail, RunsPage, Summary,
};
use carbon_core::query::{RunQuery, WhatIfQuery};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// The catalog shared by every request on the server.
#[cfg(feature = "ssr")]
pub type Shared = std::sync::Arc<std::sync::RwLock<carbon_core::catalog::Catalog>>;

#[cfg(feature = "ssr")]
fn with_catalog<T>(f: impl FnOnce(&carbon_core::catalog::Catalog) -> T) -> Result<T, ServerFnError> {
    let shared = use_context::<Shared>().ok_or_else(|| ServerFnError::new("no catalog in context"))?;
    let cat = shared.read().map_err(|_| ServerFnError::new("catalog lock poisoned"))?;
    Ok(f(&cat))
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
    with_catalog(|c| query.page_of(c.runs(query.mode())))
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
