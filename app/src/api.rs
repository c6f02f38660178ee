//! Server functions: the pages' only data source. They read the shared catalog on the server.

use carbon_core::model::{FileReport, RunDetail, RunsPage, Summary};
use carbon_core::query::RunQuery;
use leptos::prelude::*;

/// The catalog shared by every request on the server.
#[cfg(feature = "ssr")]
pub type Shared = std::sync::Arc<std::sync::RwLock<carbon_core::catalog::Catalog>>;

#[cfg(feature = "ssr")]
fn with_catalog<T>(f: impl FnOnce(&carbon_core::catalog::Catalog) -> T) -> Result<T, ServerFnError> {
    let shared = use_context::<Shared>().ok_or_else(|| ServerFnError::new("no catalog in context"))?;
    let cat = shared.read().map_err(|_| ServerFnError::new("catalog lock poisoned"))?;
    Ok(f(&cat))
}

#[server]
pub async fn get_summary() -> Result<Summary, ServerFnError> {
    with_catalog(|c| c.summary().clone())
}

/// Problems sent per file to the Files page (the JSON API has them all).
pub const MAX_PROBLEMS_SHOWN: usize = 50;

/// One page of runs, filtered and sorted on the server so that only the rows shown travel.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn get_runs_page(query: RunQuery) -> Result<RunsPage, ServerFnError> {
    with_catalog(|c| query.page_of(c.runs()))
}

#[server]
pub async fn get_run(run_id: String) -> Result<Option<RunDetail>, ServerFnError> {
    with_catalog(|c| c.run_detail(&run_id))?.map_err(|e| ServerFnError::new(e.to_string()))
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
