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
use std::collections::HashMap;
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
/// CodeCarbon writes its `emissions.csv`, sent as it is read (a project's records can be
/// millions).
pub async fn export(
    State(s): State<AppState>,
    Path(project): Path<String>,
    who: Option<axum::Extension<crate::auth::Who>>,
) -> Response {
    let Some(c) = &s.collector else {
        return refusal(StatusCode::NOT_FOUND, "this server keeps no collected runs (no --db, no --collect)");
    };
    // A project of a team the person does not see does not exist for them.
    let sees = |p: &carbon_store::Project| match who.as_ref().map(|w| &w.visible) {
        None | Some(crate::auth::Visible::All) => true,
        Some(crate::auth::Visible::Teams(t)) => p.team.as_ref().is_some_and(|team| t.contains(team)),
    };
    match c.store.project(&project).await {
        Ok(Some(p)) if sees(&p) => {}
        Ok(Some(_)) => return refusal(StatusCode::NOT_FOUND, format!("no project '{project}'")),
        Ok(None) => return refusal(StatusCode::NOT_FOUND, format!("no project '{project}'")),
        Err(e) => return crate::AppError::internal(e).into_response(),
    }
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let store = c.store.clone();
    let name = project.clone();
    tokio::spawn(async move {
        let _ = done_tx.send(store.export(&name, tx).await);
    });
    let pieces = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (Ok::<_, std::io::Error>(Bytes::from(piece)), rx))
    });
    // An export that fails on the way is cut (the client sees an incomplete body, never a short
    // file that looks whole), and the log says why.
    let end = futures_util::stream::once(async move {
        match done_rx.await {
            Ok(Err(e)) => {
                tracing::error!(error = %e, "export cut short");
                Some(Err(std::io::Error::other(e.to_string())))
            }
            _ => None,
        }
    })
    .filter_map(std::future::ready);
    let body = axum::body::Body::from_stream(pieces.chain(end));
    let name: String =
        project.chars().map(|ch| if ch.is_ascii_alphanumeric() || "-_.".contains(ch) { ch } else { '_' }).collect();
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}-emissions.csv\"")),
        ],
        body,
    )
        .into_response()
}

/// Reads the collected runs changed after `cursor` (all of them for 0) from their totals into
/// the catalog, then tells open pages. Returns the cursor to read from next and how many runs
/// were read.
pub async fn load_after(
    store: &Store,
    catalog: &Shared,
    announcer: &Announcer,
    cursor: i64,
) -> anyhow::Result<(i64, usize)> {
    let (files, next) = store.runs_after(cursor).await?;
    let n = files.len();
    if n == 0 {
        return Ok((next, 0));
    }
    let catalog = catalog.clone();
    tokio::task::spawn_blocking(move || catalog.update(|c| c.upsert_all(files))).await??;
    announcer.announce();
    Ok((next, n))
}

/// Keeps the catalog up to date with the store from `cursor` on: records committed here, and
/// with PostgreSQL those committed by other replicas (`LISTEN`, the payload is the commit's
/// sequence number), read back at most every [`REFRESH`], each time only the runs changed after
/// the cursor (from their totals: one row a run). A listener whose connection drops listens
/// again, then reads from its cursor: what was committed meanwhile is read, nothing twice. A
/// read-back that fails is tried again; every [`POLL`] the store is asked anyway (a process
/// beside this one writing the same SQLite file, a notification lost).
pub async fn follow(store: Store, catalog: Shared, announcer: Announcer, cursor: i64) -> anyhow::Result<()> {
    let wake = Arc::new(tokio::sync::Notify::new());
    // Read once at once: what committed between the caller's read and this listening.
    let newest = Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX));
    let heard = {
        let (wake, newest) = (wake.clone(), newest.clone());
        move |seq: i64| {
            newest.fetch_max(seq, std::sync::atomic::Ordering::AcqRel);
            wake.notify_one();
        }
    };
    {
        let (store, heard) = (store.clone(), heard.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                seen = store.committed(seen).await;
                heard(seen);
            }
        });
    }
    if store.engine() == carbon_store::Engine::Postgres {
        let url = store.url().to_string();
        let mut listener = listen(&url).await?;
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => heard(n.payload().parse().unwrap_or(i64::MAX)),
                    // The connection dropped (sqlx would reconnect quietly): listen anew, then
                    // read from the cursor, in that order.
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
                        heard(i64::MAX);
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut cursor = cursor;
        loop {
            // Something newer than the cursor was heard of, or it is time to look anyway.
            if newest.load(std::sync::atomic::Ordering::Acquire) <= cursor {
                let _ = tokio::time::timeout(POLL, wake.notified()).await;
            }
            let started = Instant::now();
            let failed = match load_after(&store, &catalog, &announcer, cursor).await {
                Ok((next, _)) => {
                    cursor = next;
                    // What was heard of is read (news that came meanwhile left a wake-up).
                    newest.store(cursor, std::sync::atomic::Ordering::Release);
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading collected runs back failed; again shortly");
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

/// Retention: every hour (and at once), folds the records older than `age` (see
/// [`Store::fold_records`]).
pub fn keep_records(store: Store, age: Duration) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let before = now.saturating_sub(age).as_micros() as i64;
            match store.fold_records(before).await {
                Ok((0, _, _)) => {}
                Ok((runs, rows, left)) => {
                    tracing::info!(runs, rows, left, "folded records older than --keep-records")
                }
                Err(e) => tracing::error!(error = %e, "folding old records failed; again in an hour"),
            }
        }
    });
}

/// How often the store is asked for changes without having heard of any.
pub const POLL: Duration = Duration::from_secs(5);

async fn listen(url: &str) -> anyhow::Result<carbon_store::PgListener> {
    let mut listener = carbon_store::PgListener::connect(url).await?;
    listener.listen(carbon_store::CHANNEL).await?;
    Ok(listener)
}
