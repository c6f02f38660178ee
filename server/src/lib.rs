//! carbon-dash's server: the axum router (pages, JSON API, assets) over a shared catalog.

pub mod cli;
pub mod demo;

use app::api::Shared;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use carbon_core::catalog::Catalog;
use carbon_core::model::{FileReport, Run, RunDetail, Summary};
use carbon_core::query::RunQuery;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub catalog: Shared,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> LeptosOptions {
        s.leptos.clone()
    }
}

impl AppState {
    pub fn new(catalog: Catalog, site_root: &str, addr: std::net::SocketAddr) -> AppState {
        let leptos = LeptosOptions::builder()
            .output_name(app::OUTPUT_NAME)
            .site_root(site_root)
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .build();
        AppState { leptos, catalog: Arc::new(RwLock::new(catalog)) }
    }
}

/// An API error the client can act on: status and a JSON `{"error": …}` body.
#[derive(Debug)]
pub struct AppError(StatusCode, String);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn read<T>(s: &AppState, f: impl FnOnce(&Catalog) -> T) -> Result<T, AppError> {
    let cat =
        s.catalog.read().map_err(|_| AppError(StatusCode::INTERNAL_SERVER_ERROR, "catalog unavailable".into()))?;
    Ok(f(&cat))
}

async fn api_summary(State(s): State<AppState>) -> Result<Json<Summary>, AppError> {
    read(&s, |c| Json(c.summary().clone()))
}

/// Runs, filtered and sorted by the same parameters as the Runs page.
async fn api_runs(
    State(s): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Run>>, AppError> {
    let q = RunQuery::from_params(|k| params.get(k).cloned());
    read(&s, |c| Json(q.apply(c.runs()).into_iter().cloned().collect()))
}

async fn api_run(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<RunDetail>, AppError> {
    match read(&s, |c| c.run_detail(&id))? {
        Ok(Some(d)) => Ok(Json(d)),
        Ok(None) => Err(AppError(StatusCode::NOT_FOUND, format!("no run with id '{id}'"))),
        Err(e) => Err(AppError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn api_files(State(s): State<AppState>) -> Result<Json<Vec<FileReport>>, AppError> {
    read(&s, |c| Json(c.files().to_vec()))
}

async fn api_not_found() -> AppError {
    AppError(StatusCode::NOT_FOUND, "no such API endpoint; see /api/v1/summary, /api/v1/runs, /api/v1/files".into())
}

/// The whole application: pages (server-rendered, hydrated), server functions, JSON API, assets.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let catalog = state.catalog.clone();
    Router::new()
        .route("/api/v1/summary", get(api_summary))
        .route("/api/v1/runs", get(api_runs))
        .route("/api/v1/runs/{run_id}", get(api_run))
        .route("/api/v1/files", get(api_files))
        .route("/api/v1/{*rest}", get(api_not_found))
        .leptos_routes_with_context(&state, routes, move || provide_context(catalog.clone()), {
            let options = state.leptos.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .with_state(state)
}
