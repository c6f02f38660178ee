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
/// Longest a post may take, body included (CodeCarbon's client waits 2 s).
pub const POST_DEADLINE: Duration = Duration::from_secs(5);
/// How often, at most, committed runs are read back into the catalog.
pub const REFRESH: Duration = Duration::from_millis(250);

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

/// A token bucket per live token (only tokens the store knows get one, so the table holds at most
/// the tokens made with `token add`).
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
        StoreError::Conflict(why) => refusal(StatusCode::CONFLICT, why),
        StoreError::NotStored(cause) => {
            tracing::error!(%cause, "records not stored");
            let mut res =
                refusal(StatusCode::SERVICE_UNAVAILABLE, "the record could not be stored: send it again shortly");
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            res
        }
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
    match c.store.token_project(token).await {
        Ok(Some(project)) => {
            // Only live tokens have an allowance: made-up ones cannot fill the table.
            if let Err(wait) = c.limiter.take(token) {
                let mut res = refusal(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("this token posts faster than the server takes ({} a second): slow down", c.limiter.rate),
                );
                let secs = wait.ceil().max(1.0) as u64;
                res.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
                return Err(res.into());
            }
            Ok(project)
        }
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
/// committed by other replicas (`LISTEN`), read back at most every [`REFRESH`]. Returns once
/// listening, so a full read made after it misses nothing. A listener whose connection drops
/// listens again, then has everything read again (news may have been missed meanwhile); a
/// read-back that fails is tried again.
pub async fn follow(store: Store, catalog: Shared, announcer: Announcer) -> anyhow::Result<()> {
    let pending = Arc::new(Pending::default());
    {
        let (pending, store) = (pending.clone(), store.clone());
        tokio::spawn(async move {
            loop {
                let ids = store.committed().await;
                pending.add(ids);
            }
        });
    }
    if store.engine() == carbon_store::Engine::Postgres {
        let url = store.url().to_string();
        let mut listener = listen(&url).await?;
        let pending = pending.clone();
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => pending.add(vec![n.payload().to_string()]),
                    // The connection dropped (sqlx would reconnect quietly): listen anew, then
                    // read everything, in that order.
                    Ok(None) | Err(_) => {
                        tracing::warn!("lost the connection that hears other replicas' runs; listening again");
                        listener = loop {
                            match listen(&url).await {
                                Ok(l) => break l,
                                Err(e) => {
                                    tracing::warn!(error = %e, "listening for other replicas' runs failed; again in 1 s");
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                            }
                        };
                        pending.everything();
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        loop {
            let ids = pending.take().await;
            let started = Instant::now();
            let failed = match load_into(&store, &catalog, &announcer, ids.clone()).await {
                Ok(_) => false,
                Err(e) => {
                    tracing::error!(error = %e, "reading collected runs back failed; again shortly");
                    match ids {
                        Some(ids) => pending.add(ids),
                        None => pending.everything(),
                    }
                    true
                }
            };
            // Reading back costs what the changed runs hold: under a flood of records it runs
            // at most a fifth of the time, however often records come.
            let pause = REFRESH.max(started.elapsed() * 4);
            tokio::time::sleep(if failed { pause.max(Duration::from_secs(1)) } else { pause }).await;
        }
    });
    Ok(())
}

/// Runs to read back: their ids, or everything.
#[derive(Default)]
struct Pending {
    ids: Mutex<(HashSet<String>, bool)>,
    wake: tokio::sync::Notify,
}

impl Pending {
    fn add(&self, ids: Vec<String>) {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).0.extend(ids);
        self.wake.notify_one();
    }

    fn everything(&self) {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.wake.notify_one();
    }

    /// Waits for something to read; `None`: everything.
    async fn take(&self) -> Option<Vec<String>> {
        loop {
            let notified = self.wake.notified();
            {
                let mut p = self.ids.lock().unwrap_or_else(|e| e.into_inner());
                let (ids, all) = std::mem::take(&mut *p);
                if all {
                    return None;
                }
                if !ids.is_empty() {
                    return Some(ids.into_iter().collect());
                }
            }
            notified.await;
        }
    }
}

async fn listen(url: &str) -> anyhow::Result<carbon_store::PgListener> {
    let mut listener = carbon_store::PgListener::connect(url).await?;
    listener.listen(carbon_store::CHANNEL).await?;
    Ok(listener)
}
