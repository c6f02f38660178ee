//! Browser upload: files are read in memory into a private session (an unguessable id in a cookie,
//! expiring after a set time) and shown in the same views as the logs; in local `serve` mode the
//! visitor may then save them under `DIR/uploads/`, atomically and never over an existing file.

use crate::conn::{Client, ClientKey};
use crate::AppState;
use app::api::{Active, Shared};
use app::under;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use carbon_core::catalog::{is_log_file, Catalog};
use carbon_core::ingest::{ingest_source, ParsedFile, Source};
use carbon_core::metrics::MetricsFormat;
use carbon_core::pages::{UploadSession, UploadState, UploadedFile};
use carbon_core::units::{count, human_bytes};
use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie holding the session id.
pub const COOKIE: &str = "carbon_dash_session";

/// What uploads may do on this server.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// `None`: upload is on; otherwise why it is off.
    pub disabled_reason: Option<String>,
    /// The logs folder: "save to logs" writes under its `uploads/`; `None` when saving is off.
    pub save_root: Option<PathBuf>,
    pub max_file_bytes: usize,
    /// Largest request, and most a session holds.
    pub max_request_bytes: usize,
    pub ttl: Duration,
    pub max_sessions: usize,
    /// Sessions one client address (an IPv6 /64) holds at most: its new one replaces its
    /// oldest idle one (0: no share per address, as behind a proxy that is every client's).
    pub max_sessions_per_client: usize,
}

impl UploadPolicy {
    /// Upload (and so save and session links) needs the names this server answers to: a server
    /// that answers to any name can be reached by a web page through a name of its own (DNS
    /// rebinding), which the same-origin check cannot tell from this site.
    pub fn needing_names(mut self, allowed_hosts: Option<&[String]>, addr: std::net::SocketAddr) -> UploadPolicy {
        if allowed_hosts.is_none() && self.disabled_reason.is_none() {
            self.disabled_reason = Some(format!(
                "Upload is off: this server listens on {addr} and answers to any host name, so a web page could \
                 reach it through a name of its own (DNS rebinding). Start it with --allow-host NAME (the names \
                 its users type) to turn upload on."
            ));
            self.save_root = None;
        }
        self
    }
}

impl Default for UploadPolicy {
    fn default() -> Self {
        UploadPolicy {
            disabled_reason: None,
            save_root: None,
            max_file_bytes: 50_000_000,
            max_request_bytes: 200_000_000,
            ttl: Duration::from_secs(3600),
            max_sessions: 64,
            max_sessions_per_client: 8,
        }
    }
}

struct Session {
    /// One upload or save at a time per session: a second tab's waits for the first, so names
    /// stay unique, the byte budget holds and each file is saved once.
    turn: Arc<tokio::sync::Mutex<()>>,
    catalog: Shared,
    /// Accepted files as given, byte for byte, by session name (for "save to logs").
    originals: HashMap<String, Bytes>,
    files: Vec<UploadedFile>,
    bytes: usize,
    expires: Instant,
    /// The address that opened it (`None` when the request had none, as in tests).
    client: Option<ClientKey>,
    /// Its last upload or save: under pressure, the session idle longest goes first.
    used: Instant,
}

impl Session {
    fn is_open(&self) -> bool {
        self.expires > Instant::now()
    }

    /// A session with no file yet: it holds its slot while its first upload is read.
    fn reserved(catalog: Shared, ttl: Duration, client: Option<ClientKey>) -> Session {
        Session {
            turn: Arc::default(),
            catalog,
            originals: HashMap::new(),
            files: Vec::new(),
            bytes: 0,
            expires: Instant::now() + ttl,
            client,
            used: Instant::now(),
        }
    }

    /// No upload or save of it is under way.
    fn is_idle(&self) -> bool {
        self.turn.try_lock().is_ok()
    }
}

/// Forgets a session reserved for an upload that then failed (it holds no file).
struct Reservation {
    sessions: Sessions,
    id: String,
    armed: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.armed {
            let mut map = self.sessions.lock();
            if map.get(&self.id).is_some_and(|s| s.files.is_empty()) {
                map.remove(&self.id);
            }
        }
    }
}

/// Files one upload request may carry at most.
pub const MAX_FILES_PER_REQUEST: usize = 1000;

/// Live sessions by id.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, Session>>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets expired sessions (their memory goes with them).
    pub fn purge(&self) {
        self.lock().retain(|_, s| s.is_open());
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for a new session of `client` in `map`: the client's oldest idle session goes
    /// when it holds its share; when the server holds `max` sessions, the idle session of the
    /// address holding the most goes (the one idle longest among its own). The refusal when
    /// the client's sessions, or all, are busy reading uploads.
    fn make_room(
        map: &mut HashMap<String, Session>,
        client: Option<ClientKey>,
        p: &UploadPolicy,
    ) -> Result<(), (StatusCode, String)> {
        map.retain(|_, s| s.is_open());
        let share = p.max_sessions_per_client;
        if client.is_some() && share > 0 {
            let held = map.values().filter(|s| s.client == client).count();
            if held >= share {
                let oldest = map
                    .iter()
                    .filter(|(_, s)| s.client == client && s.is_idle())
                    .min_by_key(|(_, s)| s.used)
                    .map(|(id, _)| id.clone());
                let Some(id) = oldest else {
                    return Err((
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("your address has {held} uploads under way: wait for them to finish"),
                    ));
                };
                map.remove(&id);
            }
        }
        if map.len() >= p.max_sessions {
            let mut held: HashMap<Option<ClientKey>, usize> = HashMap::new();
            for s in map.values() {
                *held.entry(s.client).or_default() += 1;
            }
            let heaviest = map
                .iter()
                .filter(|(_, s)| s.is_idle())
                .max_by_key(|(_, s)| (held.get(&s.client).copied().unwrap_or(0), std::cmp::Reverse(s.used)))
                .map(|(id, _)| id.clone());
            if let Some(id) = heaviest {
                map.remove(&id);
            }
        }
        if map.len() >= p.max_sessions {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "every upload session on this server is busy reading files: try again in a minute".into(),
            ));
        }
        Ok(())
    }

    fn view(&self, id: &str) -> Option<(Shared, UploadSession)> {
        let map = self.lock();
        let s = map.get(id).filter(|s| s.is_open())?;
        let info = UploadSession {
            id: id.to_string(),
            expires_in_s: s.expires.saturating_duration_since(Instant::now()).as_secs(),
            bytes: s.bytes as u64,
            files: s.files.clone(),
        };
        Some((s.catalog.clone(), info))
    }
}

/// 128 random bits, hex: the session id.
fn new_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn cookie_id(headers: &HeaderMap) -> Option<String> {
    crate::auth::hex_cookie(headers, COOKIE, 32)
}

/// What `new_id` makes: 32 hex digits.
fn is_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The session cookie: `Secure` when the server is behind TLS (`--behind-tls`) or the proxy
/// says the request came over HTTPS.
fn set_cookie(id: &str, max_age: Duration, s: &AppState, headers: &HeaderMap) -> HeaderValue {
    let https =
        headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let secure = if s.behind_tls || https { "; Secure" } else { "" };
    let v = format!(
        "{COOKIE}={id}; Path={}; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        under(&s.base_path, "/"),
        max_age.as_secs()
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Writes come from this site's own pages only: a browser sends `Origin` with a cross-site POST
/// (which must then name this host), and `Sec-Fetch-Site` says where a request comes from.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, h)| h.eq_ignore_ascii_case(&host)),
        (Some(_), None) => false,
        (None, _) => headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v == "same-origin" || v == "none"),
    }
}

/// What the pages and the API of this request read: the visitor's session, or the logs.
pub async fn active_catalog(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let session = cookie_id(req.headers()).and_then(|id| s.sessions.view(&id));
    let mut upload = s.upload_state();
    let catalog = match session {
        Some((catalog, info)) => {
            upload.session = Some(info);
            catalog
        }
        // A person signed in sees their teams' runs; behind sign-in, a request nobody signed
        // (the open paths: assets) sees none.
        None => match (req.extensions().get::<crate::auth::Who>().map(|w| &w.visible), &*s.auth) {
            (Some(crate::auth::Visible::Teams(teams)), _) => s.scoped.view(&s.catalog, teams),
            (None, a) if a.signs_in() => s.scoped.view(&s.catalog, &Default::default()),
            _ => s.catalog.clone(),
        },
    };
    let person = req
        .extensions()
        .get::<crate::auth::Who>()
        .map(|w| app::api::SignedIn { user: w.user.clone(), can_sign_out: w.how == crate::auth::How::Session });
    req.extensions_mut().insert(Active { catalog, upload, person });
    next.run(req).await
}

/// How to answer: JSON for scripts, pages and redirects for plain form posts, under the base path.
struct Reply<'a> {
    json: bool,
    base: &'a str,
}

impl Reply<'_> {
    fn new<'a>(s: &'a AppState, headers: &HeaderMap) -> Reply<'a> {
        Reply { json: wants_json(headers), base: &s.base_path }
    }

    /// A refusal a script (JSON) or a person (a short page with a way back) can read.
    fn error(&self, status: StatusCode, message: String) -> Response {
        if self.json {
            return (status, Json(serde_json::json!({ "error": message }))).into_response();
        }
        let body = format!(
            "<h1>Upload not done</h1><p class=\"error\">{}</p><p><a href=\"{}\">Back to upload</a></p>",
            charts::map::escape_xml(&message),
            under(self.base, "/upload")
        );
        (status, Html(plain_page(self.base, "Upload", &body))).into_response()
    }

    fn redirect(&self, path: &str) -> Redirect {
        Redirect::to(&under(self.base, path))
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"))
}

/// The last component of the browser's file name, limited to safe characters.
pub fn safe_name(given: &str) -> String {
    let base = given.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(120)
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean.is_empty() {
        "upload.csv".into()
    } else {
        clean
    }
}

/// `name`, then `name` with `-2`, `-3`, … before its `.csv…` ending (`emissions-2.csv`): the
/// names to try, in order, until one is free.
fn candidates(name: &str) -> impl Iterator<Item = String> + '_ {
    let lower = name.to_ascii_lowercase();
    let at = lower.find(".csv").or_else(|| lower.rfind('.')).unwrap_or(name.len());
    std::iter::once(name.to_string()).chain((2..).map(move |n| format!("{}-{n}{}", &name[..at], &name[at..])))
}

/// Why a file is refused before it is read, if it is.
fn refuse_reason(name: &str, given: &str, bytes: &[u8], max_file: usize, too_big: bool) -> Option<String> {
    if too_big {
        return Some(format!("{given}: larger than the {} limit for one file: not read", human_bytes(max_file as u64)));
    }
    let store = carbon_core::stores::candidate(name).is_some();
    if !is_log_file(name)
        && !name.to_ascii_lowercase().ends_with(".log")
        && MetricsFormat::of_file_name(name).is_none()
        && !store
        && !carbon_core::results::is_json_table_name(name)
    {
        return Some(format!(
            "{given}: not a CSV file: the name must end in .csv (CodeCarbon's .csv.bak and .csv_N.bak are read too), \
             or be a metrics file (metrics.csv, trainer_state.json, all_results.json, wandb-summary.json), a results \
             table (.json, .jsonl), a tracking tool's store (mlflow.db, optuna.db, an Optuna journal, run-<id>.wandb) \
             or another tracker's log (carbontracker's .log pair; eco2AI's and Zeus's CSVs; experiment-impact-tracker's \
             data.json)"
        ));
    }
    // Stores are binary (SQLite, W&B's record log); everything else is text.
    if let Some(at) = bytes.iter().take(64 * 1024).position(|&b| b == 0).filter(|_| !store) {
        return Some(format!("{given}: not a CSV file: binary content (a zero byte at offset {at})"));
    }
    None
}

/// The result line of a file that was read.
fn read_result(name: &str, size: usize, parsed: &ParsedFile) -> UploadedFile {
    let r = &parsed.report;
    if let Some(m) = &parsed.metrics {
        // A results table's values come with the join, once the runs are known.
        let accepted = !m.values.is_empty() || m.table.is_some();
        let message = match r.problems.first() {
            Some(p) if !accepted => format!("{name}: {}", p.reason),
            _ if !accepted => format!("{name}: no metric value in it"),
            _ => format!("{}; joined to runs as the Files page says", r.schema_detail),
        };
        return UploadedFile {
            name: name.to_string(),
            bytes: size as u64,
            accepted,
            message,
            ..UploadedFile::default()
        };
    }
    let whole = r.problems.iter().find(|p| p.rejected && p.line <= 1 && parsed.rows_accepted() == 0);
    let accepted = whole.is_none();
    // Another tracker's file has no CodeCarbon columns: its kind and what it holds instead.
    let what = if r.columns > 0 {
        format!("{} columns — {}", r.columns, r.schema)
    } else {
        format!("{} — {}", r.schema, r.schema_detail)
    };
    let message = match whole {
        Some(p) => format!("{name}: {}", p.reason),
        None if r.rows_rejected > 0 => format!(
            "{} read, {} rejected (lines and reasons on the Files page); {what}",
            count(r.rows_read, "row"),
            r.rows_rejected,
        ),
        None => format!("{} read; {what}", count(r.rows_read, "row")),
    };
    UploadedFile {
        name: name.to_string(),
        bytes: size as u64,
        accepted,
        message,
        runs: 0,
        rows_read: r.rows_read,
        rows_rejected: r.rows_rejected,
        saved_as: None,
    }
}

/// One file part as received.
struct Given {
    /// As the browser named it.
    given_name: String,
    /// Its safe name in the session, before being made unique.
    name: String,
    /// Empty when over the file limit.
    data: Vec<u8>,
    size: usize,
    too_big: bool,
}

/// Reads every file part, counting bytes as they come: a request (with what the session already
/// holds) over the limit is refused as a whole; a file over the file limit is kept as a refusal.
async fn read_parts(
    multipart: &mut Multipart,
    p: &UploadPolicy,
    held: usize,
) -> Result<Vec<Given>, (StatusCode, String)> {
    let limit = human_bytes(p.max_request_bytes as u64);
    let mut received = 0usize;
    let mut given = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("the upload was cut short or malformed: {e}")))?
    {
        let Some(file_name) = field.file_name().map(str::to_string) else { continue };
        if given.len() == MAX_FILES_PER_REQUEST {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("more than {MAX_FILES_PER_REQUEST} files in one upload: send them in several"),
            ));
        }
        let (mut data, mut size, mut too_big) = (Vec::new(), 0usize, false);
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("the upload of {file_name} was cut short: {e}")))?
        {
            received += chunk.len();
            if received + held > p.max_request_bytes {
                let why = if held > 0 {
                    format!("this session already holds {}; a session holds at most {limit}", human_bytes(held as u64))
                } else {
                    format!("the upload passed the {limit} limit a request while sending {file_name}; send fewer files at a time")
                };
                return Err((StatusCode::PAYLOAD_TOO_LARGE, why));
            }
            size += chunk.len();
            too_big |= size > p.max_file_bytes;
            if too_big {
                data = Vec::new();
            } else {
                data.extend_from_slice(&chunk);
            }
        }
        given.push(Given { name: safe_name(&file_name), given_name: file_name, data, size, too_big });
    }
    Ok(given)
}

/// Each file's result, and the files read, under names unique in the session (`taken`).
fn judge(given: Vec<Given>, taken: Vec<String>, max_file: usize) -> (Vec<UploadedFile>, Vec<(ParsedFile, Bytes)>) {
    let mut results = Vec::new();
    let mut parsed = Vec::new();
    // Unique names in time linear in the files: each name remembers how far its numbering got.
    let mut taken: std::collections::HashSet<String> = taken.into_iter().collect();
    let mut tried: HashMap<String, usize> = HashMap::new();
    for Given { given_name, name, data, size, too_big } in given {
        let from = tried.get(&name).copied().unwrap_or(0);
        let (skipped, unique) =
            candidates(&name).enumerate().skip(from).find(|(_, n)| !taken.contains(n)).unwrap_or((from, name.clone()));
        tried.insert(name, skipped + 1);
        let name = unique;
        taken.insert(name.clone());
        if let Some(why) = refuse_reason(&name, &given_name, &data, max_file, too_big) {
            results.push(UploadedFile {
                name,
                bytes: size as u64,
                accepted: false,
                message: why,
                ..Default::default()
            });
            continue;
        }
        // The session keeps the bytes once: for saving, and for showing a run's rows.
        let data = Bytes::from(data);
        let file = ingest_source(&name, &data, Source::Memory(Arc::new(data.clone())));
        let result = read_result(&name, data.len(), &file);
        if result.accepted {
            parsed.push((file, data));
        }
        results.push(result);
    }
    (results, parsed)
}

/// `POST /upload`: multipart, one or more `file` fields. Answers JSON (`Accept: application/json`)
/// with the result of each file, or sends a plain form post to `/upload`, which lists them.
pub async fn upload(
    State(s): State<AppState>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let reply = Reply::new(&s, &headers);
    let p = &s.upload;
    if let Some(why) = &p.disabled_reason {
        return reply.error(StatusCode::FORBIDDEN, why.clone());
    }
    if !same_origin(&headers) {
        return reply.error(StatusCode::FORBIDDEN, "uploads are accepted from this site's own pages only".into());
    }
    let limit = human_bytes(p.max_request_bytes as u64);
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > p.max_request_bytes as u64) {
        return reply.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload is {}: the limit is {limit} a request; send fewer files at a time",
                human_bytes(declared.unwrap_or(0))
            ),
        );
    }
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => return reply.error(StatusCode::BAD_REQUEST, format!("not a file upload (multipart/form-data): {e}")),
    };
    // The visitor's open session, or a new one that holds its slot (and the count of sessions)
    // while its first files are read. One upload at a time per session: its turn is taken
    // before the body is read, so the bytes it holds and its file names are current.
    let existing = cookie_id(&headers).and_then(|id| {
        let map = s.sessions.lock();
        map.get(&id).filter(|x| x.is_open()).map(|x| (id.clone(), x.turn.clone(), x.catalog.clone()))
    });
    let (id, _turn, catalog, mut reservation) = match existing {
        Some((id, turn, catalog)) => (id, turn.lock_owned().await, catalog, None),
        None => {
            let client = client.map(|Extension(c)| c.key());
            let id = match new_id() {
                Ok(id) => id,
                Err(e) => return reply.error(StatusCode::INTERNAL_SERVER_ERROR, format!("no session id: {e}")),
            };
            let mut c = Catalog::default();
            c.set_apply_provider_pue(s.catalog.current().applies_provider_pue());
            let session = Session::reserved(Shared::new(c), p.ttl, client);
            // Busy from the start: room is never made by ending a session being filled.
            let Ok(turn) = session.turn.clone().try_lock_owned() else {
                return reply.error(StatusCode::INTERNAL_SERVER_ERROR, "a new session was busy".into());
            };
            let catalog = session.catalog.clone();
            {
                let mut map = s.sessions.lock();
                if let Err((status, why)) = Sessions::make_room(&mut map, client, p) {
                    return reply.error(status, why);
                }
                map.insert(id.clone(), session);
            }
            let reservation = Reservation { sessions: s.sessions.clone(), id: id.clone(), armed: true };
            (id, turn, catalog, Some(reservation))
        }
    };
    let (held, taken) = {
        let map = s.sessions.lock();
        match map.get(&id).filter(|x| x.is_open()) {
            Some(x) => (x.bytes, x.files.iter().map(|f| f.name.clone()).collect::<Vec<_>>()),
            None => {
                return reply.error(
                    StatusCode::NOT_FOUND,
                    "the upload session ended while this upload waited: upload again".into(),
                )
            }
        }
    };

    let given = match read_parts(&mut multipart, p, held).await {
        Ok(given) => given,
        Err((status, why)) => return reply.error(status, why),
    };
    if given.is_empty() {
        return reply
            .error(StatusCode::BAD_REQUEST, "no file in the upload: choose one or more CodeCarbon CSV files".into());
    }

    let max_file = p.max_file_bytes;
    let work = tokio::task::spawn_blocking(move || judge(given, taken, max_file));
    let (mut results, parsed) = match work.await {
        Ok(x) => x,
        Err(e) => return reply.error(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the upload failed: {e}")),
    };

    // A new session none of whose files could be read ends at once (its slot is free again):
    // the answer says why each file was refused.
    if parsed.is_empty() && reservation.is_some() {
        if reply.json {
            let body = serde_json::json!({ "session": null, "expires_in_s": 0, "files": results });
            return Json(body).into_response();
        }
        let why: Vec<String> = results.iter().map(|f| format!("{}: {}", f.name, f.message)).collect();
        return reply.error(StatusCode::UNPROCESSABLE_ENTITY, format!("no file could be read. {}", why.join("; ")));
    }
    // Into the session's catalog (a new session starts from nothing: only the visitor's files).
    let originals: Vec<(String, Bytes)> = parsed.iter().map(|(f, b)| (f.report.path.clone(), b.clone())).collect();
    let files: Vec<ParsedFile> = parsed.into_iter().map(|(f, _)| f).collect();
    let names: Vec<String> = files.iter().map(|f| f.report.path.clone()).collect();
    let cat = catalog.clone();
    let merged = tokio::task::spawn_blocking(move || {
        cat.update(|c| c.upsert_all(files)).map_err(|e| e.to_string())?;
        let c = cat.current();
        Ok::<_, String>(
            c.files().iter().filter(|f| names.contains(&f.path)).map(|f| (f.path.clone(), f.runs)).collect::<Vec<_>>(),
        )
    })
    .await;
    let runs = match merged {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return reply.error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => return reply.error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    for r in results.iter_mut() {
        if let Some((_, n)) = runs.iter().find(|(p, _)| *p == r.name) {
            r.runs = *n;
            r.message = format!("{} — {}", count(*n, "run"), r.message);
        }
    }
    {
        let mut map = s.sessions.lock();
        // Left (or expired) while this upload was read: it stays ended.
        let Some(session) = map.get_mut(&id) else {
            drop(map);
            return reply.error(
                StatusCode::NOT_FOUND,
                "the upload session ended while this upload was read: upload the files again".into(),
            );
        };
        session.bytes += originals.iter().map(|(_, b)| b.len()).sum::<usize>();
        session.originals.extend(originals);
        session.files.extend(results.iter().cloned());
        session.expires = Instant::now() + p.ttl;
        session.used = Instant::now();
    }
    if let Some(r) = reservation.as_mut() {
        r.armed = false;
    }
    let cookie = set_cookie(&id, p.ttl, &s, &headers);
    if reply.json {
        let body = serde_json::json!({ "session": id, "expires_in_s": p.ttl.as_secs(), "files": results });
        ([(header::SET_COOKIE, cookie)], Json(body)).into_response()
    } else {
        ([(header::SET_COOKIE, cookie)], reply.redirect("/upload")).into_response()
    }
}

/// Writes `data` as a new file in `dir` named `name` (or `name-2`, `name-3`, …): written to a
/// hidden temporary file first, then linked into place, which fails rather than replace a file.
pub fn save_new(dir: &FsPath, name: &str, data: &[u8]) -> std::io::Result<String> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}.part", new_id().map_err(std::io::Error::other)?));
    {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    let result = candidates(name)
        .take(10_000)
        .find_map(|candidate| match std::fs::hard_link(&tmp, dir.join(&candidate)) {
            Ok(()) => Some(Ok(candidate)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
            Err(e) => Some(Err(e)),
        })
        .unwrap_or_else(|| Err(std::io::Error::other(format!("no free name for {name}"))));
    let _ = std::fs::remove_file(&tmp);
    result
}

/// `POST /upload/save`: the session's accepted files into `DIR/uploads/` (local serve mode only).
pub async fn save(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let reply = Reply::new(&s, &headers);
    // Behind sign-in, saved files would belong to no one's team: uploads stay private.
    if s.auth.signs_in() {
        let why = "behind sign-in, uploads stay in your private session: put files in your team's folder to keep them";
        return reply.error(StatusCode::FORBIDDEN, why.into());
    }
    let Some(root) = s.upload.save_root.clone() else {
        let why = if let Some(off) = &s.upload.disabled_reason {
            off.as_str()
        } else if s.read_only {
            "this server is read-only: nothing is saved (uploads stay in your private session)"
        } else {
            "there is no logs folder to save to (the demo runs from built-in logs): start carbon-dash serve DIR"
        };
        return reply.error(StatusCode::FORBIDDEN, why.into());
    };
    if !same_origin(&headers) {
        return reply.error(StatusCode::FORBIDDEN, "saving is accepted from this site's own pages only".into());
    }
    let id = cookie_id(&headers).unwrap_or_default();
    // One save (or upload) at a time per session: two clicks save each file once.
    let turn = s.sessions.lock().get(&id).map(|x| x.turn.clone());
    let turn = match turn {
        Some(t) => Some(t.lock_owned().await),
        None => None,
    };
    let todo: Vec<(String, Bytes)> = {
        let map = s.sessions.lock();
        let Some(session) = map.get(&id).filter(|x| x.is_open()) else {
            return reply.error(
                StatusCode::NOT_FOUND,
                "no upload session (it may have expired): upload the files again".into(),
            );
        };
        session
            .files
            .iter()
            .filter(|f| f.accepted && f.saved_as.is_none())
            .filter_map(|f| session.originals.get(&f.name).map(|b| (f.name.clone(), b.clone())))
            .collect()
    };
    let dir = root.join("uploads");
    let logs = root.clone();
    let (catalog, sessions, session_id) = (s.catalog.clone(), s.sessions.clone(), id.clone());
    // The writing, and the note of where each file went, finish together even if the request
    // is dropped meanwhile; the session's turn is held until then, so a file is saved once.
    let saving = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let written: Vec<(String, std::io::Result<String>)> = todo
            .into_iter()
            .map(|(name, data)| (name.clone(), save_new(&dir, &name, &data).map(|n| format!("uploads/{n}"))))
            .collect();
        // In the logs at once, read whole: these files are complete, so a last line without
        // its newline is a line (the watcher holds such a line back only while a file grows;
        // it finds these already read).
        let files: Vec<_> = written
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .filter_map(|rel| carbon_core::ingest::ingest_path(&logs.join(rel), rel))
            .collect();
        if let Some(session) = sessions.lock().get_mut(&session_id) {
            session.used = Instant::now();
            for (name, result) in &written {
                if let (Ok(path), Some(f)) = (result, session.files.iter_mut().find(|f| &f.name == name)) {
                    f.saved_as = Some(path.clone());
                }
            }
        }
        if !files.is_empty() {
            catalog.update(|c| c.upsert_all(files)).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(written)
    })
    .await;
    let written = match saving {
        Ok(Ok(written)) => written,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "saved uploads not read into the catalog");
            return reply.error(StatusCode::INTERNAL_SERVER_ERROR, "saved, but not read: see the server's log".into());
        }
        Err(e) => {
            tracing::error!(error = %e, "saving uploads failed");
            return reply.error(StatusCode::INTERNAL_SERVER_ERROR, "not saved: the server's log says why".into());
        }
    };
    if written.iter().any(|(_, r)| r.is_ok()) {
        s.announcer.announce();
    }
    let failures: Vec<String> =
        written.iter().filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}"))).collect();
    if !failures.is_empty() {
        return reply.error(StatusCode::INTERNAL_SERVER_ERROR, format!("not saved: {}", failures.join("; ")));
    }
    if reply.json {
        let saved: Vec<_> = written
            .iter()
            .filter_map(|(n, r)| r.as_ref().ok().map(|p| serde_json::json!({ "name": n, "saved_as": p })))
            .collect();
        Json(serde_json::json!({ "saved": saved })).into_response()
    } else {
        reply.redirect("/upload").into_response()
    }
}

/// `POST /upload/leave`: forgets the session; the pages show the logs again.
pub async fn leave(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return Reply::new(&s, &headers)
            .error(StatusCode::FORBIDDEN, "leaving is accepted from this site's own pages only".into());
    }
    if let Some(id) = cookie_id(&headers) {
        s.sessions.lock().remove(&id);
    }
    let reply = Reply::new(&s, &headers);
    ([(header::SET_COOKIE, set_cookie("", Duration::ZERO, &s, &headers))], reply.redirect("/")).into_response()
}

/// `GET /sessions/{id}`: the link the upload page shows. Opening a session replaces the
/// visitor's own, so this page asks first; its button posts to the same address.
pub async fn confirm_open(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let found = s.sessions.view(&id).filter(|_| is_session_id(&id)).map(|(_, info)| info);
    let reply = Reply { json: false, base: &s.base_path };
    let Some(info) = found else { return expired(&reply) };
    let body = format!(
        "<h1>Open an upload session?</h1><p>Someone shared a private upload with you: {} ({}), for {} more. \
         Opening it shows its runs instead of yours in this browser until you leave it.</p>\
         <form method=\"post\" action=\"{}\"><button type=\"submit\" id=\"open-session\">Open it</button> \
         <a href=\"{}\">No, keep what I see</a></form>",
        carbon_core::units::count(info.files.iter().filter(|f| f.accepted).count(), "file"),
        carbon_core::units::human_bytes(info.bytes),
        carbon_core::units::duration_s(info.expires_in_s as f64),
        under(&s.base_path, &format!("/sessions/{id}")),
        under(&s.base_path, "/")
    );
    Html(plain_page(&s.base_path, "Open an upload", &body)).into_response()
}

/// A page outside the app (answers of plain form posts and the session link), in the site's style.
fn plain_page(base: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · carbon-dash</title>\
         <link rel=\"stylesheet\" href=\"{}\"></head><body><main>{body}</main></body></html>",
        under(base, &format!("/pkg/{}.css", app::OUTPUT_NAME))
    )
}

/// `POST /sessions/{id}`: opens the session in this browser, from this server's own page only
/// (another site cannot put a visitor into a session of its choosing).
pub async fn open(State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let reply = Reply { json: false, base: &s.base_path };
    if let Some(off) = &s.upload.disabled_reason {
        return reply.error(StatusCode::FORBIDDEN, off.clone());
    }
    if !same_origin(&headers) {
        return reply.error(
            StatusCode::FORBIDDEN,
            "a session opens from its link's own page on this server: open the link and confirm there".into(),
        );
    }
    let remaining = s.sessions.view(&id).filter(|_| is_session_id(&id)).map(|(_, info)| info.expires_in_s);
    match remaining {
        Some(secs) => {
            let cookie = set_cookie(&id, Duration::from_secs(secs), &s, &headers);
            ([(header::SET_COOKIE, cookie)], reply.redirect("/")).into_response()
        }
        None => expired(&reply),
    }
}

fn expired(reply: &Reply) -> Response {
    reply
        .error(StatusCode::NOT_FOUND, "this upload session has expired or never existed: upload the files again".into())
}

impl AppState {
    /// The upload settings shown to a visitor without a session.
    pub fn upload_state(&self) -> UploadState {
        let p = &self.upload;
        UploadState {
            enabled: p.disabled_reason.is_none(),
            disabled_reason: p.disabled_reason.clone(),
            save_dir: p.save_root.as_ref().map(|r| r.join("uploads").display().to_string()),
            max_file_bytes: p.max_file_bytes as u64,
            max_request_bytes: p.max_request_bytes as u64,
            ttl_s: p.ttl.as_secs(),
            session: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_names_lose_their_folders_and_unsafe_characters() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\runs\\my run.csv"), "my_run.csv");
        assert_eq!(safe_name("..."), "upload.csv");
        assert_eq!(safe_name("émissions.csv"), "_missions.csv");
        let names: Vec<String> = candidates("emissions.csv_1.bak").take(3).collect();
        assert_eq!(names, ["emissions.csv_1.bak", "emissions-2.csv_1.bak", "emissions-3.csv_1.bak"]);
    }

    #[test]
    fn saving_never_replaces_a_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = save_new(dir.path(), "emissions.csv", b"one").unwrap_or_else(|e| panic!("{e}"));
        let second = save_new(dir.path(), "emissions.csv", b"two").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((first.as_str(), second.as_str()), ("emissions.csv", "emissions-2.csv"));
        let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap_or_default();
        assert_eq!((read("emissions.csv"), read("emissions-2.csv")), (b"one".to_vec(), b"two".to_vec()));
        let names: Vec<_> = std::fs::read_dir(dir.path()).into_iter().flatten().flatten().collect();
        assert_eq!(names.len(), 2, "only the two saved files remain");
    }

    #[test]
    fn session_cookie_is_read_only_when_well_formed() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; carbon_dash_session=0123456789abcdef0123456789abcdef"));
        assert_eq!(cookie_id(&h).as_deref(), Some("0123456789abcdef0123456789abcdef"));
        h.insert(header::COOKIE, HeaderValue::from_static("carbon_dash_session=../../x"));
        assert_eq!(cookie_id(&h), None);
        assert_eq!(new_id().map(|i| i.len()).ok(), Some(32));
    }
}
