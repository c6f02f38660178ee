//! carbon-dash's server: the axum router (pages, JSON API, assets) over a shared catalog.

pub mod auth;
pub mod budgets;
pub mod cache;
pub mod cli;
pub mod collect;
pub mod conn;
pub mod demo;
pub mod manage;
pub mod metrics;
pub mod mlflow;
pub mod oidc;
pub mod report;
pub mod upload;
pub mod watch;

use app::api::{Active, Shared};
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use carbon_core::catalog::Catalog;
use carbon_core::grid::Grid;
use carbon_core::model::{DatasetInfo, DatasetMode, Equivalent, FileReport, RegionRow, Run, Summary, WhatIf};
use carbon_core::query::{RunQuery, WhatIfQuery};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::collections::HashMap;

/// Largest request body accepted (server-function arguments are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request (body included) must be answered within this time by default; uploads get
/// [`UPLOAD_TIME_FACTOR`] times as long.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
pub const UPLOAD_TIME_FACTOR: u32 = 20;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub catalog: Shared,
    /// Hosted mode: nothing is written (no saving of uploads; upload itself per `upload`).
    pub read_only: bool,
    pub upload: upload::UploadPolicy,
    pub sessions: upload::Sessions,
    /// Longest a request may take, body included (a slow client gets 408).
    pub request_timeout: std::time::Duration,
    /// The path everything is served under behind a reverse proxy (`/carbon`); empty at the root.
    pub base_path: String,
    /// Rendered pages until the logs change.
    pub pages: cache::PageCache,
    /// Bumped whenever the watched logs change the catalog; `/api/v1/events` forwards it.
    pub changes: tokio::sync::broadcast::Sender<u64>,
    /// Tells open pages (and the page cache) that the catalog changed.
    pub announcer: watch::Announcer,
    /// Set once when the server is to stop: event streams end, connections finish their request.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Open event streams at most (each holds a connection for as long as a page is open).
    pub streams: std::sync::Arc<tokio::sync::Semaphore>,
    /// The names (`Host` header, without the port) this server answers to; `None`: any.
    pub allowed_hosts: Option<Vec<String>>,
    /// TLS ends in front of this server: the session cookie is `Secure`.
    pub behind_tls: bool,
    /// Runs collected from CodeCarbon trackers (`--db`, `--collect`); `None`: no store.
    pub collector: Option<collect::Collector>,
    /// Live grid data (offline unless configured).
    pub live: std::sync::Arc<carbon_live::Live>,
    /// Open connections by client address (counted by [`serve`], shown by `/healthz`).
    pub connections: conn::Connections,
    /// Open live-update streams by client address, and how many one address may hold (0: no
    /// limit of its own).
    pub stream_clients: conn::Connections,
    pub streams_per_client: usize,
    /// How people are signed in, and the catalog each set of teams sees.
    pub auth: std::sync::Arc<auth::Auth>,
    pub scoped: auth::Scoped,
    /// Budgets in force (see [`budgets`]).
    pub budgets: carbon_core::budget::Book,
    /// What `/metrics` counts as the server runs.
    pub metrics: std::sync::Arc<metrics::Counters>,
}

/// The names a server listening on `addr` answers to: on a loopback address (a laptop's
/// `serve`), only the loopback names and `extra`, so a web page cannot reach it through a DNS
/// name of its own (DNS rebinding); elsewhere any name, unless `extra` lists them.
pub fn allowed_hosts(addr: std::net::SocketAddr, extra: &[String]) -> Option<Vec<String>> {
    let mut names: Vec<String> = extra.iter().map(|h| h.to_ascii_lowercase()).collect();
    if addr.ip().is_loopback() {
        names.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
    } else if names.is_empty() {
        return None;
    } else if !addr.ip().is_unspecified() {
        names.push(match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        });
    }
    Some(names)
}

/// Refuses a request for a name this server does not answer to (see [`allowed_hosts`]).
async fn host_check(State(s): State<AppState>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let Some(allowed) = &s.allowed_hosts else { return next.run(req).await };
    let host = req.headers().get(axum::http::header::HOST).and_then(|v| v.to_str().ok()).map(str::to_string);
    let host = host.or_else(|| req.uri().authority().map(|a| a.to_string()));
    let Some(host) = host else { return next.run(req).await };
    // Without the port: `localhost:3000`, `[::1]:3000`.
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() => name,
        _ => host.as_str(),
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        return next.run(req).await;
    }
    AppError::client(
        StatusCode::MISDIRECTED_REQUEST,
        format!(
            "this server answers to {} only, not to '{name}': to reach it by that name, start it with --allow-host {name}",
            allowed.join(", ")
        ),
    )
    .into_response()
}

/// The request's path for the logs, with session ids left out (whoever reads the logs must not
/// be able to open a visitor's upload).
fn logged_uri(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    // A sign-in's callback carries its code and state: the path only.
    if path.ends_with("/signin/callback") {
        return path.to_string();
    }
    match path.find("/sessions/") {
        Some(i) => format!("{}/sessions/…", &path[..i]),
        None => uri.to_string(),
    }
}

/// Event streams open at once, at most; more get 503 and the page works without live updates.
pub const MAX_EVENT_STREAMS: usize = 1000;

/// How long a stopping server waits for requests in flight.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

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
        let (changes, _) = tokio::sync::broadcast::channel(64);
        AppState {
            leptos,
            catalog: Shared::new(catalog),
            read_only: false,
            upload: upload::UploadPolicy::default(),
            sessions: upload::Sessions::default(),
            request_timeout: REQUEST_TIMEOUT,
            base_path: String::new(),
            pages: cache::PageCache::new(&changes),
            announcer: watch::Announcer::new(changes.clone()),
            changes,
            stopping: tokio::sync::watch::channel(false).0,
            streams: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_EVENT_STREAMS)),
            allowed_hosts: None,
            behind_tls: false,
            collector: None,
            live: std::sync::Arc::new(carbon_live::Live::new(carbon_live::Config::default())),
            connections: conn::Connections::default(),
            stream_clients: conn::Connections::default(),
            streams_per_client: conn::MAX_STREAMS_PER_CLIENT,
            auth: std::sync::Arc::default(),
            scoped: auth::Scoped::default(),
            budgets: carbon_core::budget::Book::default(),
            metrics: std::sync::Arc::default(),
        }
    }
}

/// An API error, answered as its status and a JSON `{"error": …}` body that says only what the
/// client can act on (see the README's error policy).
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    message: String,
}

impl AppError {
    /// Something the client can change: the message says what.
    pub fn client(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError { status, message: message.into() }
    }

    /// A fault of the server: `cause` is logged (it may name paths on the server), not sent.
    pub fn internal(cause: impl std::fmt::Display) -> AppError {
        tracing::error!(%cause, "request failed");
        AppError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the server could not answer; the cause is in its log".into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

fn read<T>(s: &Shared, f: impl FnOnce(&Catalog) -> T) -> Result<T, AppError> {
    Ok(f(&s.current()))
}

type Params = Query<HashMap<String, String>>;
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// `?dataset=latest|codecarbon` (default latest); anything else is a 400 the client can fix.
fn dataset(params: &HashMap<String, String>) -> Result<DatasetMode, AppError> {
    match params.get("dataset") {
        None => Ok(DatasetMode::Latest),
        Some(d) => DatasetMode::parse(d).ok_or_else(|| {
            AppError::client(StatusCode::BAD_REQUEST, format!("unknown dataset '{d}': use latest or codecarbon"))
        }),
    }
}

async fn api_summary(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    Query(params): Params,
) -> Result<Json<Summary>, AppError> {
    let mode = dataset(&params)?;
    read(&s, |c| Json(c.summary(mode).view(params.get("project").map(String::as_str))))
}

/// Runs, filtered and sorted by the same parameters as the Runs page.
/// Runs an answer holds unless `limit` asks otherwise (`limit=all` streams every match).
pub const RUNS_PER_ANSWER: usize = 1000;

/// Runs matching the query, a page at a time: `X-Total-Count` says how many match, `Link`
/// (`rel="next"`) where the next page is. `limit=all` streams them all, a thousand at a time,
/// from the catalog as it was when asked.
async fn api_runs(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(params): Params,
) -> Result<Response, AppError> {
    let mode = dataset(&params)?;
    let q = RunQuery::from_params(|k| params.get(k).cloned());
    let offset = count_param(&params, "offset")?.unwrap_or(0);
    let all = params.get("limit").is_some_and(|l| l == "all");
    let limit = if all { usize::MAX } else { count_param(&params, "limit")?.unwrap_or(RUNS_PER_ANSWER) };
    let cat = s.current();
    let total = cat.select(&q, mode).count();
    let mut headers =
        if all { axum::http::HeaderMap::new() } else { page_headers(&uri, &params, offset, limit, total) };
    headers.insert("x-total-count", total.into());
    if all {
        return Ok((
            headers,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            stream_runs(cat, q, mode, offset),
        )
            .into_response());
    }
    let mut page: Vec<u8> = vec![b'['];
    for (i, r) in cat.select(&q, mode).skip(offset).take(limit).enumerate() {
        if i > 0 {
            page.push(b',');
        }
        write_run(&mut page, &cat, r).map_err(AppError::internal)?;
    }
    page.push(b']');
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    Ok((headers, page).into_response())
}

/// Adds a run's model metrics to its JSON, when files beside the logs give it some:
/// `metrics` (name → final value), `metrics_join` (name → the file, how it joined, and why it
/// is a guess when it is one) and `params` (hyper-parameter → value as written).
fn with_metrics(v: &mut serde_json::Value, cat: &Catalog, run_id: &str) {
    let Some(o) = v.as_object_mut() else { return };
    if let Some(params) = cat.metrics().params.get(run_id) {
        let params: serde_json::Map<String, serde_json::Value> =
            params.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        o.insert("params".into(), params.into());
    }
    let Some(metrics) = cat.metrics().by_run.get(run_id) else { return };
    let values: serde_json::Map<String, serde_json::Value> =
        metrics.iter().map(|(name, j)| (name.clone(), j.value.into())).collect();
    let joins: serde_json::Map<String, serde_json::Value> = metrics
        .iter()
        .map(|(name, j)| {
            let how = cat.metrics().files.get(&j.file).map(|f| f.note()).unwrap_or_default();
            (
                name.clone(),
                serde_json::json!({ "file": j.file, "format": j.format.label(), "how": how, "guess": j.guess }),
            )
        })
        .collect();
    o.insert("metrics".into(), values.into());
    o.insert("metrics_join".into(), joins.into());
}

/// A run as the API writes it: as it is, or with its metrics when it has some.
fn write_run(out: &mut Vec<u8>, cat: &Catalog, r: &Run) -> Result<(), serde_json::Error> {
    if !cat.metrics().by_run.contains_key(&r.run_id) && !cat.metrics().params.contains_key(&r.run_id) {
        return serde_json::to_writer(out, r);
    }
    let mut v = serde_json::to_value(r)?;
    with_metrics(&mut v, cat, &r.run_id);
    serde_json::to_writer(out, &v)
}

/// Every run of `q` from `offset`, as one JSON array sent a thousand runs at a time: memory
/// holds one chunk, however many runs there are.
fn stream_runs(cat: std::sync::Arc<Catalog>, q: RunQuery, mode: DatasetMode, offset: usize) -> axum::body::Body {
    /// Where the stream is: the next position in the order, matches still to skip, whether
    /// the array is open, whether a run was written.
    struct At {
        next: usize,
        skip: usize,
        opened: bool,
        wrote: bool,
        done: bool,
    }
    let order: std::sync::Arc<[u32]> = cat.order(mode, q.sort_key(), q.is_descending()).into();
    let q = std::sync::Arc::new(q);
    let start = At { next: 0, skip: offset, opened: false, wrote: false, done: false };
    let chunks = futures_util::stream::unfold(start, move |mut at| {
        let (cat, q, order) = (cat.clone(), q.clone(), order.clone());
        async move {
            if at.done {
                return None;
            }
            let runs = cat.runs(mode);
            let mut out: Vec<u8> = Vec::new();
            if !at.opened {
                out.push(b'[');
                at.opened = true;
            }
            let mut n = 0;
            while at.next < order.len() && n < RUNS_PER_ANSWER {
                let r = &runs[order[at.next] as usize];
                at.next += 1;
                if !q.matches(r) {
                    continue;
                }
                if at.skip > 0 {
                    at.skip -= 1;
                    continue;
                }
                if at.wrote {
                    out.push(b',');
                }
                write_run(&mut out, &cat, r).ok()?;
                at.wrote = true;
                n += 1;
            }
            if at.next >= order.len() {
                out.push(b']');
                at.done = true;
            }
            Some((Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(out)), at))
        }
    });
    axum::body::Body::from_stream(chunks)
}

async fn api_run(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, AppError> {
    let mode = dataset(&params)?;
    let cat = s.current();
    match cat.detail(&id, mode, false).await {
        Ok(Some((d, total))) => {
            let mut body = serde_json::to_value(&d).map_err(AppError::internal)?;
            with_metrics(&mut body, &cat, &d.run.run_id);
            let mut res = Json(body).into_response();
            if total > d.checkpoints.len() {
                // A collected run's records can be millions: the chart's share here, all of them
                // a page at a time from the checkpoints endpoint.
                let h = res.headers_mut();
                h.insert("x-checkpoints-total", total.into());
                if let Ok(link) = format!("<{}/checkpoints>; rel=\"checkpoints\"", percent(&id)).parse() {
                    h.insert(axum::http::header::LINK, link);
                }
            }
            Ok(res)
        }
        Ok(None) => Err(AppError::client(StatusCode::NOT_FOUND, format!("no run with id '{id}'"))),
        Err(e) => Err(AppError::internal(e)),
    }
}

/// `GET /api/v1/runs/{id}/checkpoints?after=N&limit=M`: a run's checkpoints (running totals, in
/// time order, numbered from 1) after the N-th, M at most ([`CHECKPOINTS_PER_PAGE`] by default),
/// with `X-Total-Count` and a `Link` to the next page. Collected runs are read from their
/// database a page at a time.
async fn api_checkpoints(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    Path(id): Path<String>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(params): Params,
) -> Result<Response, AppError> {
    let after = count_param(&params, "after")?.unwrap_or(0);
    let limit = count_param(&params, "limit")?.unwrap_or(CHECKPOINTS_PER_PAGE).clamp(1, CHECKPOINTS_PER_PAGE);
    let Some((rows, total)) = s.current().checkpoints_page(&id, after, limit).await.map_err(AppError::internal)? else {
        return Err(AppError::client(StatusCode::NOT_FOUND, format!("no run with id '{id}'")));
    };
    let mut res = Json(&rows).into_response();
    let h = res.headers_mut();
    h.insert("x-total-count", total.into());
    let next = after.saturating_add(rows.len());
    if next < total {
        if let Ok(link) = format!("<{}?after={next}&limit={limit}>; rel=\"next\"", uri.path()).parse() {
            h.insert(axum::http::header::LINK, link);
        }
    }
    Ok(res)
}

/// Checkpoints per answer of the checkpoints endpoint, at most.
pub const CHECKPOINTS_PER_PAGE: usize = 10_000;

/// A path segment with everything but unreserved characters escaped.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every file's report, a page at a time (`offset`, `limit`; [`RUNS_PER_ANSWER`] by default),
/// with `X-Total-Count` and a `Link` to the next page.
async fn api_files(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(params): Params,
) -> Result<Response, AppError> {
    let offset = count_param(&params, "offset")?.unwrap_or(0);
    let limit = count_param(&params, "limit")?.unwrap_or(RUNS_PER_ANSWER);
    let cat = s.current();
    let total = cat.files().len();
    let mut headers = page_headers(&uri, &params, offset, limit, total);
    headers.insert("x-total-count", total.into());
    let page: Vec<FileReport> = cat.files().iter().skip(offset).take(limit).cloned().collect();
    Ok((headers, Json(page)).into_response())
}

/// `Link: <…offset=N>; rel="next"` when a page of `limit` from `offset` leaves some of `total`.
fn page_headers(
    uri: &axum::http::Uri,
    params: &HashMap<String, String>,
    offset: usize,
    limit: usize,
    total: usize,
) -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    // `uri` is the path as the client asked it (under --base-path); no next page of nothing.
    if limit > 0 && offset.saturating_add(limit) < total {
        let mut next: Vec<(String, String)> = params.clone().into_iter().filter(|(k, _)| k != "offset").collect();
        next.sort();
        next.push(("offset".into(), (offset + limit).to_string()));
        let query: Vec<String> =
            next.iter().map(|(k, v)| format!("{}={}", app::format::encode(k), app::format::encode(v))).collect();
        if let Ok(link) = format!("<{}?{}>; rel=\"next\"", uri.path(), query.join("&")).parse() {
            headers.insert(axum::http::header::LINK, link);
        }
    }
    headers
}

/// A count given in the query (`offset`, `limit`); anything else is a 400.
fn count_param(params: &HashMap<String, String>, k: &str) -> Result<Option<usize>, AppError> {
    params
        .get(k)
        .map(|v| v.parse().map_err(|_| AppError::client(StatusCode::BAD_REQUEST, format!("{k}: '{v}' is not a count"))))
        .transpose()
}

/// Everyday equivalents of `co2_kg` (optional range `co2_kg_low`, `co2_kg_high`) and `kwh`.
async fn api_equivalents(Query(params): Params) -> Result<Json<Vec<Equivalent>>, AppError> {
    let num = |k: &str| -> Result<Option<f64>, AppError> {
        params
            .get(k)
            .map(|v| {
                v.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| {
                    AppError::client(StatusCode::BAD_REQUEST, format!("{k}: '{v}' is not a non-negative number"))
                })
            })
            .transpose()
    };
    let (co2, kwh) = (num("co2_kg")?, num("kwh")?);
    if co2.is_none() && kwh.is_none() {
        return Err(AppError::client(StatusCode::BAD_REQUEST, "give co2_kg and/or kwh"));
    }
    let c = co2.unwrap_or(0.0);
    let (lo, hi) = (num("co2_kg_low")?.unwrap_or(c), num("co2_kg_high")?.unwrap_or(c));
    let all = Grid::embedded().equivalents(c, lo.min(c), hi.max(c), kwh.unwrap_or(0.0));
    // Only the equivalents of what was given.
    Ok(Json(
        all.into_iter()
            .filter(|e| if e.factor_unit.starts_with("kWh") { kwh.is_some() } else { co2.is_some() })
            .collect(),
    ))
}

async fn api_datasets(Extension(Active { catalog: s, .. }): Extension<Active>) -> Result<Json<DatasetInfo>, AppError> {
    read(&s, |c| Json(Grid::embedded().info(c.applies_provider_pue())))
}

/// Every cloud region with its grid intensity (latest dataset), source and year.
async fn api_regions() -> Json<Vec<RegionRow>> {
    Json(carbon_core::whatif::regions(Grid::embedded()))
}

/// The what-if as the JSON API gives it: its data, and what the map page says of it.
#[derive(serde::Serialize)]
struct WhatIfAnswer {
    selection: String,
    runs: usize,
    energy_kwh: f64,
    current_co2_kg: f64,
    ran_in: String,
    options: Vec<carbon_core::model::WhatIfOption>,
    recommendation: String,
    already_cleanest: bool,
    advice: carbon_core::model::Advice,
    filters: Vec<String>,
}

impl WhatIfAnswer {
    fn of(w: WhatIf) -> WhatIfAnswer {
        use app::words;
        let (ran_in, recommendation, filters) = (words::ran_in(&w), words::recommendation(&w), words::filters(&w));
        WhatIfAnswer {
            already_cleanest: w.advice == carbon_core::model::Advice::AlreadyCleanest,
            advice: w.advice,
            selection: w.selection,
            runs: w.runs,
            energy_kwh: w.energy_kwh,
            current_co2_kg: w.current_co2_kg,
            ran_in,
            options: w.options,
            recommendation,
            filters,
        }
    }
}

/// The selection (`run_id`, `project`, `experiment`; everything without them) in every region
/// passing `provider`, `continent` and `within_km`, lowest CO2 first.
async fn api_whatif(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    Query(params): Params,
) -> Result<Json<WhatIfAnswer>, AppError> {
    let q = WhatIfQuery::from_params(|k| params.get(k).cloned());
    let page = read(&s, |c| {
        let known = q.run_id.as_ref().is_none_or(|id| c.run(id, DatasetMode::Latest).is_some());
        known.then(|| c.map_page(&q))
    })?;
    match page {
        Some(p) if p.whatif.runs > 0 => Ok(Json(WhatIfAnswer::of(p.whatif))),
        _ => Err(AppError::client(StatusCode::NOT_FOUND, format!("no runs match the selection {}", q.label()))),
    }
}

/// `group_by=month|week|day` (month), `by=team|project|experiment|country|provider` (project),
/// the shared view filters (`from`, `to`, `team`, `project`, `experiment`, `place`, `provider`)
/// and `dataset`.
/// "When to run": the best start for a job in a place (and the cleanest places), see
/// [`carbon_live::planner`]. A query the planner cannot read is a 400 that says what to change.
async fn api_plan(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    State(st): State<AppState>,
    Query(q): Query<carbon_core::schedule::PlanQuery>,
) -> Result<Json<carbon_core::schedule::PlanAnswer>, AppError> {
    let grid = carbon_core::grid::Grid::embedded();
    let facts = match q.run_id.as_deref().filter(|r| !r.is_empty()) {
        Some(id) => {
            let d = s.current().detail(id, DatasetMode::Latest, false).await.map_err(AppError::internal)?;
            let (d, _) = d.ok_or_else(|| AppError::client(StatusCode::NOT_FOUND, format!("no run '{id}'")))?;
            Some(carbon_core::schedule::RunFacts::of(grid, &d))
        }
        None => None,
    };
    carbon_live::planner::plan(&st.live, grid, &q, facts.as_ref())
        .await
        .map(Json)
        .map_err(|e| AppError::client(StatusCode::BAD_REQUEST, e))
}

/// The Pareto view of a selection (`project`, `experiment`, `team`, `country`, `provider`) for
/// `metric` (`direction`, `axis=co2|energy`, `scale=linear|log`, `delta`): see
/// [`carbon_core::pareto`]. 400 for a choice it cannot read or a metric no run has; 404 when no
/// run matches.
async fn api_pareto(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    Query(params): Params,
) -> Result<Json<carbon_core::pareto::ParetoView>, AppError> {
    let q = carbon_core::pareto::ParetoQuery::from_params(|k| params.get(k).cloned())
        .map_err(|e| AppError::client(StatusCode::BAD_REQUEST, e))?;
    let v = read(&s, |c| c.pareto(&q))?;
    if v.runs_in_scope == 0 {
        return Err(AppError::client(StatusCode::NOT_FOUND, format!("no runs match {}", q.scope())));
    }
    if let Some(m) = q.metric.as_ref().filter(|m| !v.metrics.iter().any(|x| &x.name == *m)) {
        let have: Vec<&str> = v.metrics.iter().map(|x| x.name.as_str()).collect();
        let have = if have.is_empty() { "none".to_string() } else { have.join(", ") };
        return Err(AppError::client(
            StatusCode::BAD_REQUEST,
            format!("metric '{m}': no run of {} has it (they have: {have})", q.scope()),
        ));
    }
    Ok(Json(v))
}

/// A report of one run (`run_id`) or a selection (as for the Pareto view) in `format=html|tex|md|
/// yaml|bib`: see [`report`].
async fn api_report(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    Query(params): Params,
) -> Result<Response, AppError> {
    let bad = |e: String| AppError::client(StatusCode::BAD_REQUEST, e);
    let format = report::Format::parse(params.get("format").map(String::as_str).unwrap_or("html")).map_err(bad)?;
    let selection = carbon_core::pareto::ParetoQuery::from_params(|k| params.get(k).cloned()).map_err(bad)?;
    let run_id = params.get("run_id").map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    let scope = carbon_core::report::ReportScope { run_id, selection };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let body = report::render_async(&s.current(), &scope, format, now).await.map_err(|e| match e {
        report::ReportError::NoRuns(why) => AppError::client(StatusCode::NOT_FOUND, why),
        report::ReportError::Bad(why) => AppError::client(StatusCode::BAD_REQUEST, why),
    })?;
    let disposition = match format {
        // The page opens in the browser (and is saved from there); statements download.
        report::Format::Html => format!("inline; filename=\"{}\"", report::file_name(&scope, format)),
        _ => format!("attachment; filename=\"{}\"", report::file_name(&scope, format)),
    };
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static(format.content_type()));
    if let Ok(v) = disposition.parse() {
        headers.insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    if format == report::Format::Html {
        headers
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, axum::http::HeaderValue::from_static(REPORT_POLICY));
    }
    Ok((headers, body).into_response())
}

async fn api_timeseries(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    Query(params): Params,
) -> Result<Json<carbon_core::timeseries::TimeSeries>, AppError> {
    use carbon_core::timeseries::{timeseries, Dimension, Period};
    let mode = dataset(&params)?;
    let bad = |k: &str, v: &str, ok: &str| {
        AppError::client(StatusCode::BAD_REQUEST, format!("{k}: '{v}' is not one of {ok}"))
    };
    let period = match params.get("group_by") {
        None => Period::Month,
        Some(v) => Period::parse(v).ok_or_else(|| bad("group_by", v, "month, week, day"))?,
    };
    let by = match params.get("by") {
        None => Dimension::Project,
        Some(v) => Dimension::parse(v).ok_or_else(|| bad("by", v, "team, project, experiment, country, provider"))?,
    };
    let filter = carbon_core::query::ViewFilter::from_params(|k| params.get(k).cloned());
    read(&s, |c| {
        let runs: Vec<&Run> = c.runs(mode).iter().map(|r| &**r).filter(|r| filter.matches(r)).collect();
        Json(timeseries(&runs, period, by))
    })
}

async fn api_teams(
    Extension(Active { catalog: s, .. }): Extension<Active>,
    Query(params): Params,
) -> Result<Json<Vec<carbon_core::pages::TeamSummary>>, AppError> {
    let mode = dataset(&params)?;
    read(&s, |c| Json(carbon_core::timeseries::teams(c.runs(mode))))
}

/// Where each budget the person may see stands now, and what is wrong with the budgets.
async fn api_budgets(
    State(st): State<AppState>,
    Extension(Active { catalog: s, .. }): Extension<Active>,
    who: Option<Extension<auth::Who>>,
    Query(params): Params,
) -> Result<Json<serde_json::Value>, AppError> {
    use carbon_core::budget::{in_view, standing, Scope};
    let mode = dataset(&params)?;
    let listed = st.budgets.get();
    read(&s, |c| {
        let runs = c.runs(mode);
        let now = carbon_core::budget::logs_now(runs);
        let shown = |b: &carbon_core::budget::Budget| match who.as_ref().map(|w| &w.visible) {
            None | Some(auth::Visible::All) => true,
            Some(auth::Visible::Teams(teams)) => {
                in_view(b, runs) || matches!(&b.scope, Scope::Team(t) if teams.contains(t))
            }
        };
        let standings: Vec<_> = listed
            .budgets
            .iter()
            .filter(|b| shown(b))
            .map(|b| {
                let mut s = standing(b, runs, now);
                s.alerts = listed.alerts_of(&s);
                s
            })
            .collect();
        // What is wrong with the budgets may name other teams': an admin's (or everyone's
        // without sign-in).
        let all = who.as_ref().is_none_or(|w| w.visible == auth::Visible::All);
        Json(serde_json::json!({
            "now": carbon_core::time::iso(&now),
            "budgets": standings,
            "problems": if all { listed.problems.clone() } else { Vec::new() },
        }))
    })
}

/// Server-sent events: `event: catalog` with a version number each time the logs change.
/// At most [`MAX_EVENT_STREAMS`] at once (503 beyond: pages then work without live updates);
/// every stream ends when the server stops.
async fn events(
    State(s): State<AppState>,
    client: Option<Extension<conn::Client>>,
    who: Option<Extension<auth::Who>>,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let mine = match client {
        Some(Extension(c)) => match s.stream_clients.open(c.key(), s.streams_per_client) {
            Some(counted) => Some(counted),
            None => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "30")],
                    "too many of your open pages follow live updates: close some",
                )
                    .into_response()
            }
        },
        None => None,
    };
    let Ok(permit) = s.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "30")],
            "too many open pages follow live updates: reload later",
        )
            .into_response();
    };
    // A person who sees some teams hears of a change only when their view changed: another
    // team's logs changing is not theirs to know.
    let scope = who.and_then(|Extension(w)| match w.visible {
        auth::Visible::Teams(t) => Some((s.clone(), t)),
        auth::Visible::All => None,
    });
    let seen = scope.as_ref().map(|(s, t)| view_fingerprint(&s.scoped.view(&s.catalog, t).current()));
    let state = (s.changes.subscribe(), s.stopping.subscribe(), (permit, mine, scope, seen));
    let stream = futures_util::stream::unfold(state, |(mut rx, mut stop, mut held)| async move {
        loop {
            if *stop.borrow() {
                return None;
            }
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(mut v) => {
                        if let Some((s, teams)) = &held.2 {
                            let now = view_fingerprint(&s.scoped.view(&s.catalog, teams).current());
                            if held.3 == Some(now) {
                                continue;
                            }
                            held.3 = Some(now);
                            // Their view's own version: the server's count of changes would
                            // tell them how often other teams' logs change.
                            v = now;
                        }
                        return Some((Ok::<_, std::convert::Infallible>(Event::default().event("catalog").data(v.to_string())), (rx, stop, held)));
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                },
                _ = stop.changed() => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// What a person's view shows, in one number: its totals, files and rows, and joined metrics.
fn view_fingerprint(c: &Catalog) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    serde_json::to_string(c.summary(DatasetMode::Latest)).unwrap_or_default().hash(&mut h);
    for f in c.files() {
        (&f.path, f.rows_read, f.rows_rejected, &f.join).hash(&mut h);
    }
    let mut values: Vec<(&String, &String, u64)> = c
        .metrics()
        .by_run
        .iter()
        .flat_map(|(run, m)| m.iter().map(move |(name, j)| (run, name, j.value.to_bits())))
        .collect();
    values.sort();
    values.hash(&mut h);
    h.finish()
}

/// Liveness and a glance at what is loaded, for container health checks.
async fn healthz(
    State(s): State<AppState>,
    who: Option<Extension<auth::Who>>,
) -> Result<Json<serde_json::Value>, AppError> {
    // Behind sign-in, the figures of all teams are an admin's.
    if s.auth.signs_in() && !who.is_some_and(|w| w.visible == auth::Visible::All) {
        return Ok(Json(serde_json::json!({ "status": "ok" })));
    }
    let (files, runs, watch) = read(&s.catalog, |c| {
        (c.files().len(), c.runs(DatasetMode::Latest).len(), c.watch_problem().map(str::to_string))
    })?;
    let (open, most) = s.connections.counts();
    Ok(Json(serde_json::json!({
        "status": "ok", "files": files, "runs": runs, "read_only": s.read_only, "watch_problem": watch,
        "connections": { "open": open, "most_from_one_address": most }
    })))
}

async fn api_not_found() -> AppError {
    AppError::client(StatusCode::NOT_FOUND,
        "no such API endpoint; see /api/v1/summary, /api/v1/runs, /api/v1/files, /api/v1/equivalents, /api/v1/datasets, /api/v1/regions, /api/v1/whatif, /api/v1/timeseries, /api/v1/teams",
    )
}

/// Answers 408 with a reason when the request (its body included) is not done within `limit`:
/// a slow client holds only its own connection, never a worker. The answer then has
/// [`ANSWER_TIME_FACTOR`] times `limit` to be sent (an event stream, which lasts as long as its
/// page, has no limit).
async fn deadline(limit: std::time::Duration, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => {
            let streaming = res
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            if streaming {
                return res;
            }
            res.map(|body| conn::TimedBody::wrap(body, limit * ANSWER_TIME_FACTOR))
        }
        Err(_) => AppError::client(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request was not complete after {} s: send it again on a faster connection",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

/// An answer must be sent within this many request timeouts (10 minutes by default: a full
/// export on a slow link), however slowly its client reads.
pub const ANSWER_TIME_FACTOR: u32 = 20;

/// The Content-Security-Policy of a self-contained report: its own inline CSS and inline SVG,
/// no script and no request at all (its data is JSON no script reads).
pub const REPORT_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The Content-Security-Policy of every answer that sets none of its own (JSON, assets, plain
/// pages): nothing runs, styles and images from this site only.
pub const DEFAULT_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// HSTS behind TLS: a year, this host only (the proxy's other names are not ours to pin).
pub const HSTS: &str = "max-age=31536000";

/// The headers every answer carries: no content sniffing, no framing (CSP `frame-ancestors` and
/// `X-Frame-Options` for older browsers), the referrer only to this site, a
/// Content-Security-Policy (pages and reports set their own), and HSTS behind TLS.
async fn security_headers(behind_tls: bool, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::{header, HeaderValue};
    let mut res = next.run(req).await;
    if !res.headers().contains_key(header::CONTENT_SECURITY_POLICY) {
        res = page_policy_from_body(res).await;
    }
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_POLICY));
    }
    if behind_tls {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    res
}

/// A page whose shell set no policy (it does so as it renders): the policy for the nonce its
/// scripts carry, read from the start of its body (the document's head), which is sent on as it
/// came. Anything else is left as it is.
async fn page_policy_from_body(res: Response) -> Response {
    use axum::body::HttpBody as _;
    use axum::http::header;
    let html = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !html || res.headers().contains_key(header::CONTENT_ENCODING) {
        return res;
    }
    let (mut parts, mut body) = res.into_parts();
    let first = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
    let first = match first {
        Some(Ok(frame)) => frame.into_data().ok(),
        _ => None,
    };
    if let Some(bytes) = &first {
        let nonce = bytes
            .windows(7)
            .position(|w| w == b"nonce=\"")
            .and_then(|at| bytes[at + 7..].split(|b| *b == b'"').next())
            .filter(|n| !n.is_empty() && n.iter().all(|b| b.is_ascii_alphanumeric() || b"-_+/=".contains(b)))
            .and_then(|n| std::str::from_utf8(n).ok());
        if let Some(v) = nonce.and_then(|n| axum::http::HeaderValue::from_str(&app::page_policy(n)).ok()) {
            parts.headers.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    let head = futures_util::stream::iter(first.map(Ok::<_, axum::Error>));
    let rest = futures_util::stream::unfold(body, |mut body| async move {
        loop {
            match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await? {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => return Some((Ok(data), body)),
                    Err(_) => continue,
                },
                Err(e) => return Some((Err(e), body)),
            }
        }
    });
    Response::from_parts(parts, axum::body::Body::from_stream(futures_util::StreamExt::chain(head, rest)))
}

/// The whole application: pages (server-rendered, hydrated), server functions, JSON API, assets,
/// and the upload routes.
pub fn router(state: AppState) -> Router {
    let routes = route_list();
    let catalog = state.catalog.clone();
    let base = app::BasePath(state.base_path.clone());
    let live = state.live.clone();
    let book = state.budgets.clone();
    let context = move || {
        provide_context(catalog.clone());
        provide_context(base.clone());
        provide_context(live.clone());
        provide_context(book.clone());
    };
    let timeout = state.request_timeout;
    let upload_timeout = timeout * UPLOAD_TIME_FACTOR;
    // Uploads count their own bytes against the upload limits (per file, per request).
    let uploads = Router::new()
        .route("/upload", post(upload::upload))
        .route("/upload/save", post(upload::save))
        .route("/upload/leave", post(upload::leave))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(move |req, next| deadline(upload_timeout, req, next)));
    // CodeCarbon's trackers post here: a small body, and whatever the page settings (a read-only
    // team page still takes its trackers' records when started with --collect).
    let collection = Router::new()
        .route("/runs", post(collect::post_run))
        .route("/emissions", post(collect::post_emission))
        .route("/api/runs", post(collect::post_run))
        .route("/api/emissions", post(collect::post_emission))
        .layer(DefaultBodyLimit::max(collect::MAX_POST_BYTES))
        // The tracker gives up after 2 s: a post still unanswered after this is not waited for.
        .layer(axum::middleware::from_fn(|req, next| deadline(collect::POST_DEADLINE, req, next)))
        // Every answer counted, those the deadline gave too.
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count_posts));
    let app = Router::new()
        .route("/api/v1/summary", get(api_summary))
        .route("/api/v1/projects/{project}/emissions.csv", get(collect::export))
        .route("/api/v1/runs", get(api_runs))
        .route("/api/v1/runs/{run_id}", get(api_run))
        .route("/api/v1/runs/{run_id}/checkpoints", get(api_checkpoints))
        .route("/api/v1/files", get(api_files))
        .route("/api/v1/equivalents", get(api_equivalents))
        .route("/api/v1/datasets", get(api_datasets))
        .route("/api/v1/regions", get(api_regions))
        .route("/api/v1/whatif", get(api_whatif))
        .route("/api/v1/plan", get(api_plan))
        .route("/api/v1/pareto", get(api_pareto))
        .route("/api/v1/report", get(api_report))
        .route("/api/v1/timeseries", get(api_timeseries))
        .route("/api/v1/teams", get(api_teams))
        .route("/api/v1/budgets", get(api_budgets))
        .route("/api/v1/{*rest}", get(api_not_found))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/events", get(events))
        .route("/sessions/{id}", get(upload::confirm_open).post(upload::open))
        .route("/signin", get(oidc::sign_in_page))
        .route("/signin/start", get(oidc::start))
        .route("/signin/callback", get(oidc::callback))
        .route("/signout", post(oidc::sign_out))
        .merge(
            Router::new()
                .leptos_routes_with_context(&state, routes, context.clone(), {
                    let options = state.leptos.clone();
                    move || app::shell(options.clone())
                })
                .layer(axum::middleware::from_fn(full_page_path)),
        )
        .fallback(assets_or_not_found(context))
        // No other route takes a body larger than a server function's arguments; a client too
        // slow to finish its request in time gets 408 instead of holding a worker.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(move |req, next| deadline(timeout, req, next)))
        .merge(uploads)
        .merge(collection)
        .layer(axum::middleware::from_fn_with_state(state.clone(), cache::cached_pages))
        .layer(axum::middleware::from_fn_with_state(state.clone(), upload::active_catalog))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate))
        // gzip for clients that ask (the wasm bundle shrinks to about a quarter); never for the
        // event stream, which must flush each event.
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(state.clone(), host_check))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::timed))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!("request", method = %req.method(), uri = %logged_uri(req.uri()))
                })
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state.clone());
    let app = if state.base_path.is_empty() {
        app
    } else {
        // Behind a reverse proxy: everything under the base path; `/` and `{base}/` lead to it.
        let base = state.base_path.clone();
        let to_base = get(move || async move { Redirect::to(&base) });
        Router::new()
            .nest(&state.base_path, app)
            .route("/", to_base.clone())
            .route(&format!("{}/", state.base_path), to_base)
    };
    // A tracker whose api_endpoint ends in '/' asks for `//runs`: repeated slashes are one.
    let tls = state.behind_tls;
    Router::new()
        .fallback_service(tower::ServiceBuilder::new().map_request(one_slash).service(app))
        .layer(axum::middleware::from_fn(move |req, next| security_headers(tls, req, next)))
}

/// The request with each run of slashes in its path made one.
fn one_slash(mut req: axum::extract::Request) -> axum::extract::Request {
    let uri = req.uri();
    if !uri.path().contains("//") {
        return req;
    }
    let mut path = String::with_capacity(uri.path().len());
    for c in uri.path().chars() {
        if !(c == '/' && path.ends_with('/')) {
            path.push(c);
        }
    }
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(u) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = u;
        }
    }
    req
}

/// Files under the site root, or the app's 404 page: read-only, so only GET and HEAD (the
/// file handler would otherwise answer any method with the file).
fn assets_or_not_found(
    context: impl Fn() + Clone + Send + Sync + 'static,
) -> impl Fn(axum::http::Uri, State<AppState>, axum::extract::Request) -> BoxFuture<'static, Response> + Clone {
    let files = leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, app::shell);
    move |uri, state, req| {
        if matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
            files(uri, state, req)
        } else {
            let refused = AppError::client(StatusCode::METHOD_NOT_ALLOWED, format!("{} is read-only", uri.path()));
            let mut res = refused.into_response();
            res.headers_mut().insert(axum::http::header::ALLOW, axum::http::HeaderValue::from_static("GET, HEAD"));
            Box::pin(std::future::ready(res))
        }
    }
}

/// The app's pages, listed once per process. Listing renders the app with resource loading
/// suspended process-wide, and a resource first polled meanwhile never wakes (leptos issue
/// 4773): a second router built while the first serves must not list them again.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

/// Pages are matched by the app's router under the base path, so it gets the path as requested
/// (`nest` strips the base for routing); server functions keep the stripped path they are
/// registered under.
async fn full_page_path(mut req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        if let Some(original) = req.extensions().get::<axum::extract::OriginalUri>() {
            *req.uri_mut() = original.0.clone();
        }
    }
    next.run(req).await
}

/// Largest request head (request line and headers): beyond it the answer is 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` within `limits` (see [`conn::Limits`]): a client that has not sent
/// its request head in time, or takes nothing of its answer for a while, is disconnected; one
/// address holds only its share of the connections. Every request carries its [`conn::Client`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: conn::Limits,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    let mut stop = stopping.clone();
    loop {
        // At most max_connections at once: the others wait in the listen queue.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = stop.changed() => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let client = conn::Client(peer.ip());
        let Some(counted) = limits.open.open(client.key(), limits.per_client) else {
            // Over its address's share: told so in one write to a fresh socket (it never
            // blocks), then closed; the slot is free again at once.
            let _ = stream.try_write(conn::OVER_LIMIT);
            tracing::debug!(client = %peer.ip(), "connection refused: the address holds its share");
            continue;
        };
        let with_client = move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(client);
            req
        };
        let service =
            hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(app.clone(), with_client));
        let mut stop = stopping.clone();
        let (header_timeout, write_timeout) = (limits.header_timeout, limits.write_timeout);
        // Finished connections are reaped as new ones come.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            let _slot = (slot, counted);
            // HTTP/1 only: its header timeout runs from the first byte awaited, so a connection
            // that never sends a request gives its slot back (the auto-detecting builder waited
            // for the protocol's first bytes without a limit, and h2c has no header timeout).
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(MAX_HEADER_BYTES);
            let io = TokioIo::new(conn::Guarded::new(stream, write_timeout));
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = async { drop(stop.wait_for(|s| *s).await) } => {
                    // Stopping: the request in flight finishes, then the connection closes.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(open, "stopping: waiting for requests in flight");
    }
    if tokio::time::timeout(STOP_GRACE, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("stopping: requests still in flight after {} s were cut", STOP_GRACE.as_secs());
    }
}

/// Resolves when the process is asked to stop: SIGTERM (`docker stop`, systemd) or Ctrl-C.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: AppError) -> (StatusCode, String) {
        let res = e.into_response();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).to_string())
    }

    #[tokio::test]
    async fn a_page_without_its_policy_gets_the_one_its_scripts_nonce_names_and_its_body_whole() {
        let page = "<!DOCTYPE html><head><script type=\"module\" nonce=\"AbC-12_x\">go()</script></head><body>…";
        let res = ([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
        let res = page_policy_from_body(res).await;
        let policy = res.headers().get(axum::http::header::CONTENT_SECURITY_POLICY).map(|v| v.to_str().unwrap_or(""));
        assert_eq!(policy, Some(app::page_policy("AbC-12_x").as_str()));
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap_or_default();
        assert_eq!(bytes, page.as_bytes());
        // No nonce, or not HTML: nothing set here (the default policy is added after).
        let plain = ([(axum::http::header::CONTENT_TYPE, "text/html")], "<p>saved</p>").into_response();
        assert!(page_policy_from_body(plain)
            .await
            .headers()
            .get(axum::http::header::CONTENT_SECURITY_POLICY)
            .is_none());
    }

    #[test]
    fn session_ids_stay_out_of_the_logs() {
        let uri: axum::http::Uri = "/carbon/sessions/0123456789abcdef0123456789abcdef?x=1".parse().unwrap_or_default();
        assert_eq!(logged_uri(&uri), "/carbon/sessions/…");
        let uri: axum::http::Uri = "/runs?project=a".parse().unwrap_or_default();
        assert_eq!(logged_uri(&uri), "/runs?project=a");
        let uri: axum::http::Uri = "/carbon/signin/callback?code=secret&state=s".parse().unwrap_or_default();
        assert_eq!(logged_uri(&uri), "/carbon/signin/callback");
    }

    #[tokio::test]
    async fn a_server_fault_is_logged_not_told_and_a_client_error_says_what_to_change() {
        let cause = "/srv/logs/secret-team/emissions.csv: cannot read: permission denied";
        let (status, text) = body(AppError::internal(cause)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!text.contains("secret-team") && text.contains("the cause is in its log"), "{text}");
        let (status, text) = body(AppError::client(StatusCode::BAD_REQUEST, "use latest or codecarbon")).await;
        assert_eq!((status, text.as_str()), (StatusCode::BAD_REQUEST, r#"{"error":"use latest or codecarbon"}"#));
    }
}
