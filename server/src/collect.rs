//! The collection API: what CodeCarbon 3.3.2's tracker sends with `output_methods=["api"]`
//! (`POST /runs`, then `POST /emissions` at each upload), checked, stored durably, then shown on
//! every page like a log file's runs. Answers as CodeCarbon's own server does: 201 once stored,
//! 403 with a reason for an unknown token, experiment or run, 422 naming the field that cannot
//! be taken; beyond it, 429 when one token posts faster than `--collect-rate`, and 503 when the
//! writer's queue is full.
//!
//! Views follow commits: each committed run is read back from the store and put into the
//! catalog (at most every [`REFRESH`]); with PostgreSQL, other replicas hear of it through
//! `LISTEN/NOTIFY` and do the same.

use crate::watch::Announcer;
use crate::AppState;
use app::api::Shared;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use carbon_core::collect::{EmissionIn, FieldError, RunIn};
use carbon_store::{Store, StoreError};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest body of one post: a tracker's is under 1 KiB.
pub const MAX_POST_BYTES: usize = 64 * 1024;
/// How often, at most, committed runs are read back into the catalog.
pub const REFRESH: Duration = Duration::from_millis(250);
/// Tokens whose rate is remembered at once; beyond it the idle ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

/// What the collection routes share.
#[derive(Clone)]
pub struct Collector {
    pub store: Store,
    /// Whether trackers may post (`--collect`); without it the store is only read.
    pub accepting: bool,
    limiter: Arc<Limiter>,
}

impl Collector {
    /// `rate`: posts a second one token may make (a burst of twice as many first); 0: no limit.
    pub fn new(store: Store, accepting: bool, rate: u32) -> Collector {
        Collector { store, accepting, limiter: Arc::new(Limiter { rate: f64::from(rate), buckets: Mutex::default() }) }
    }
}

/// A token bucket per token.
struct Limiter {
    rate: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    /// Takes one post from `token`'s bucket; `Err(seconds)` until the next one is allowed.
    fn take(&self, token: &str) -> Result<(), f64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let burst = (2.0 * self.rate).max(1.0);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(token) {
            buckets.retain(|_, (level, at)| *level + now.duration_since(*at).as_secs_f64() * self.rate < burst);
        }
        let (level, at) = buckets.entry(token.to_string()).or_insert((burst, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * self.rate).min(burst);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *level) / self.rate)
        }
    }
}

/// A refused post: the answer to send (boxed: it is large, and the usual case is success).
pub struct Refusal(Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Refusal {
    fn from(r: Response) -> Refusal {
        Refusal(Box::new(r))
    }
}

/// An answer in the shape CodeCarbon's server uses (`detail`), with `error` as the rest of
/// this API has it.
fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    (status, Json(json!({ "detail": message, "error": message }))).into_response()
}

fn invalid(e: FieldError) -> Response {
    let body = json!({
        "detail": [{ "loc": ["body", e.field], "msg": e.message, "type": "value_error" }],
        "error": e.to_string(),
    });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

fn store_failure(e: StoreError) -> Response {
    match e {
        StoreError::Busy => {
            let mut res = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many records are waiting to be written: send again in a second",
            );
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            res
        }
        StoreError::Refused(why) => refusal(StatusCode::UNPROCESSABLE_ENTITY, why),
        e => crate::AppError::internal(e).into_response(),
    }
}

const NOT_ALLOWED: &str = "Not allowed to perform this action";

/// The project the request's `x-api-token` writes to, or the refusal to answer.
async fn project_of(c: &Collector, headers: &HeaderMap) -> Result<String, Refusal> {
    let Some(token) = headers.get("x-api-token").and_then(|v| v.to_str().ok()).map(str::trim) else {
        return Err(refusal(StatusCode::FORBIDDEN, format!("{NOT_ALLOWED}. Missing project token (api_key)")).into());
    };
    if token.is_empty() || token.len() > 200 {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            format!("{NOT_ALLOWED}: the api_key is not a token of this server"),
        )
        .into());
    }
    if let Err(wait) = c.limiter.take(token) {
        let mut res = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            format!("this token posts faster than the server takes ({} a second): slow down", c.limiter.rate),
        );
        let secs = wait.ceil().max(1.0) as u64;
        res.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        return Err(res.into());
    }
    match c.store.token_project(token).await {
        Ok(Some(project)) => Ok(project),
        Ok(None) => Err(refusal(
            StatusCode::FORBIDDEN,
            format!("{NOT_ALLOWED}: the api_key is unknown or revoked (carbon-dash token add gives a new one)"),
        )
        .into()),
        Err(e) => Err(store_failure(e).into()),
    }
}

fn collector(s: &AppState) -> Result<&Collector, Refusal> {
    s.collector.as_ref().filter(|c| c.accepting).ok_or_else(|| {
        refusal(
            StatusCode::NOT_FOUND,
            "this server does not collect runs: start it with --collect to take CodeCarbon's API output",
        )
        .into()
    })
}

/// `POST /runs`: a tracker's run, under an experiment of the token's project.
pub async fn post_run(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Refusal> {
    let c = collector(&s)?;
    let project = project_of(c, &headers).await?;
    let run = RunIn::parse(&body).map_err(invalid)?;
    let why = match c.store.experiment_project(&run.experiment_id).await.map_err(store_failure)? {
        Some(p) if p == project => None,
        Some(_) => Some(format!("experiment {} belongs to another project than this token's", run.experiment_id)),
        None => {
            Some(format!("no experiment {} on this server (carbon-dash experiment add creates one)", run.experiment_id))
        }
    };
    if let Some(why) = why {
        return Err(refusal(StatusCode::FORBIDDEN, format!("{NOT_ALLOWED}: {why}")).into());
    }
    let experiment_id = run.experiment_id.clone();
    let id = c.store.add_run(run).await.map_err(store_failure)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "experiment_id": experiment_id }))).into_response())
}

/// `POST /emissions`: one upload of a run of the token's project.
pub async fn post_emission(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Refusal> {
    let c = collector(&s)?;
    let project = project_of(c, &headers).await?;
    let record = EmissionIn::parse(&body).map_err(invalid)?;
    let why = match c.store.run_project(&record.run_id).await.map_err(store_failure)? {
        Some(p) if p == project => None,
        Some(_) => Some(format!("run {} belongs to another project than this token's", record.run_id)),
        None => Some(format!("no run {} on this server", record.run_id)),
    };
    if let Some(why) = why {
        return Err(refusal(StatusCode::FORBIDDEN, format!("{NOT_ALLOWED}: {why}")).into());
    }
    let run_id = record.run_id.clone();
    c.store.add_emission(record).await.map_err(store_failure)?;
    Ok((StatusCode::CREATED, Json(json!(run_id))).into_response())
}

/// `GET /api/v1/projects/{project}/emissions.csv`: every collected run of a project, as
/// CodeCarbon writes its `emissions.csv`.
pub async fn export(State(s): State<AppState>, Path(project): Path<String>) -> Response {
    let Some(c) = &s.collector else {
        return refusal(StatusCode::NOT_FOUND, "this server keeps no collected runs (no --db, no --collect)");
    };
    match c.store.export_csv(&project).await {
        Ok(csv) => {
            let name: String = project
                .chars()
                .map(|ch| if ch.is_ascii_alphanumeric() || "-_.".contains(ch) { ch } else { '_' })
                .collect();
            (
                [
                    (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}-emissions.csv\"")),
                ],
                csv,
            )
                .into_response()
        }
        Err(StoreError::Refused(why)) => refusal(StatusCode::NOT_FOUND, why),
        Err(e) => crate::AppError::internal(e).into_response(),
    }
}

/// Puts the collected runs `ids` (every run when `None`) into the catalog as they are stored now,
/// then tells open pages. Returns how many runs were read.
pub async fn load_into(
    store: &Store,
    catalog: &Shared,
    announcer: &Announcer,
    ids: Option<Vec<String>>,
) -> anyhow::Result<usize> {
    let files = store.run_files(ids.as_deref()).await?;
    let n = files.len();
    if n == 0 {
        return Ok(0);
    }
    let catalog = catalog.clone();
    tokio::task::spawn_blocking(move || catalog.update(|c| c.upsert_all(files))).await??;
    announcer.announce();
    Ok(n)
}

/// Keeps the catalog up to date with the store: runs committed here, and with PostgreSQL runs
/// committed by other replicas (`LISTEN`), read back at most every [`REFRESH`]. A listener that
/// lost its connection reads everything again once it is back (it may have missed news).
pub fn follow(store: Store, catalog: Shared, announcer: Announcer) {
    let dirty: Arc<Mutex<HashSet<String>>> = Arc::default();
    let wake = Arc::new(tokio::sync::Notify::new());
    let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (dirty, wake) = (dirty.clone(), wake.clone());
        let mut committed = store.committed();
        tokio::spawn(async move {
            loop {
                match committed.recv().await {
                    Ok(ids) => dirty.lock().unwrap_or_else(|e| e.into_inner()).extend(ids),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        tracing::warn!("collected runs came faster than they were read back: reading all again");
                        dirty.lock().unwrap_or_else(|e| e.into_inner()).insert(String::new());
                    }
                    Err(_) => return,
                }
                wake.notify_one();
            }
        });
    }
    if store.engine() == carbon_store::Engine::Postgres {
        let (dirty, wake, full, url) = (dirty.clone(), wake.clone(), full.clone(), store.url().to_string());
        tokio::spawn(async move {
            loop {
                match listen(&url, &dirty, &wake).await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "listening for other replicas' runs failed; again in 1 s"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                full.store(true, std::sync::atomic::Ordering::Relaxed);
                wake.notify_one();
            }
        });
    }
    tokio::spawn(async move {
        loop {
            wake.notified().await;
            let ids: Vec<String> =
                std::mem::take(&mut *dirty.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
            let everything = full.swap(false, std::sync::atomic::Ordering::Relaxed) || ids.iter().any(String::is_empty);
            let ids = (!everything).then_some(ids);
            if let Err(e) = load_into(&store, &catalog, &announcer, ids).await {
                tracing::error!(error = %e, "reading collected runs back failed");
            }
            tokio::time::sleep(REFRESH).await;
        }
    });
}

async fn listen(url: &str, dirty: &Mutex<HashSet<String>>, wake: &tokio::sync::Notify) -> anyhow::Result<()> {
    let mut listener = carbon_store::PgListener::connect(url).await?;
    listener.listen(carbon_store::CHANNEL).await?;
    loop {
        let n = listener.recv().await?;
        dirty.lock().unwrap_or_else(|e| e.into_inner()).insert(n.payload().to_string());
        wake.notify_one();
    }
}
