//! Rendered pages and JSON answers, kept until the logs change: they are the same for every
//! visitor without an upload session, so producing them once per catalog version is enough. The
//! browser bundle is kept for the life of the process.
//!
//! Each is kept as sent and gzipped once, so a hit costs a copy of a pointer, never a render or a
//! compression. When many clients ask for the same missing entry at once, one produces it and
//! the others wait for it (no stampede).

use crate::AppState;
use axum::body::HttpBody as _;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::sync::OnceCell;

/// Entries held at most; the cache starts over when full (a query string cannot grow it
/// without bound).
const MAX_ENTRIES: usize = 512;
/// Bytes held at most, bodies and their gzipped copies together.
const MAX_BYTES: usize = 128 * 1024 * 1024;
/// No page comes near this; a larger one is a fault, answered 500.
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;
/// JSON answers larger than this (every run, unpaginated) are sent as they are, not kept.
const MAX_KEPT_JSON: u64 = 16 * 1024 * 1024;

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The body gzipped, when that makes it smaller.
    gzip: Option<Bytes>,
    /// The body as brotli, for the browser bundle when the build wrote it (`./x build --release`).
    br: Option<Bytes>,
}

impl Page {
    fn size(&self) -> usize {
        self.body.len() + self.gzip.as_ref().map_or(0, Bytes::len) + self.br.as_ref().map_or(0, Bytes::len)
    }
}

/// An entry being produced or produced: `None` when the answer was not one to keep.
type Slot = Arc<OnceCell<Option<Arc<Page>>>>;

struct Inner {
    pages: HashMap<String, Slot>,
    bytes: usize,
    /// Tells when the watched logs changed the catalog: then every entry is forgotten.
    changes: broadcast::Receiver<u64>,
}

#[derive(Clone)]
pub struct PageCache(Arc<Mutex<Inner>>);

impl PageCache {
    pub fn new(changes: &broadcast::Sender<u64>) -> PageCache {
        PageCache(Arc::new(Mutex::new(Inner { pages: HashMap::new(), bytes: 0, changes: changes.subscribe() })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Any change (or missed changes) since the last look: start over. Entries being produced
        // meanwhile still reach the clients waiting for them, but are not kept.
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = inner.changes.try_recv() {
            // The browser assets do not depend on the logs: they stay.
            inner.pages.retain(|k, _| is_asset(k));
            inner.bytes = inner.pages.values().filter_map(|s| s.get().cloned().flatten()).map(|p| p.size()).sum();
        }
        f(&mut inner)
    }

    /// Entries kept (answers that could not be kept do not count).
    pub fn len(&self) -> usize {
        self.with(|i| i.pages.values().filter(|s| s.get().is_some_and(Option::is_some)).count())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The browser bundle (wasm, JS, CSS): the same for everyone, compressed once at the best level.
fn is_asset(path: &str) -> bool {
    path.starts_with("/pkg/")
}

/// Pages, the JSON API and the browser bundle (not uploads, the event stream or health), only for
/// visitors without an upload session: their pages differ.
fn cacheable(req: &Request) -> bool {
    let path = req.uri().path();
    // Conditional and partial requests are answered by the handlers themselves (304, 206).
    let conditional = [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE, header::RANGE, header::IF_RANGE]
        .iter()
        .any(|h| req.headers().contains_key(h));
    // A signed-in person's pages are theirs (their teams, their name): kept for nobody else.
    // The browser bundle is the same for all.
    let scoped = req.extensions().get::<crate::auth::Who>().is_some() && !is_asset(path);
    req.method() == Method::GET
        && !scoped
        && !conditional
        && !req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|c| c.contains(crate::upload::COOKIE)))
        && !["/upload", "/sessions/", "/healthz", "/api/v1/events", "/signin", "/signout", "/metrics", "/api/v1/budgets"].iter().any(|p| path.starts_with(p))
        // The planner's answers change with the clock and the live grid, not with the logs.
        && !["/plan", "/api/v1/plan"].iter().any(|p| path.starts_with(p))
        && (!path.starts_with("/api/") || path.starts_with("/api/v1/"))
}

/// Whether the client takes `coding` (`Accept-Encoding`, a zero weight refusing it).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    // (name, refused) for each listed coding; the coding's own entry wins over `*`.
    let items: Vec<(String, bool)> = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts
                .any(|p| p.trim().strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)));
            (name, refused)
        })
        .collect();
    match items.iter().find(|(n, _)| n == coding) {
        Some((_, refused)) => !refused,
        None => items.iter().any(|(n, refused)| n == "*" && !refused),
    }
}
fn response(page: &Page, headers: &HeaderMap) -> Response {
    let (body, coding) = match (&page.br, &page.gzip) {
        (Some(b), _) if accepts(headers, "br") => (b.clone(), Some("br")),
        (_, Some(z)) if accepts(headers, "gzip") => (z.clone(), Some("gzip")),
        _ => (page.body.clone(), None),
    };
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = page.status;
    *res.headers_mut() = page.headers.clone();
    if let Some(c) = coding {
        res.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(c));
    }
    res.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    res
}

fn gzip(body: &[u8], level: flate2::Compression) -> Option<Bytes> {
    let mut z = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), level);
    z.write_all(body).ok()?;
    let out = z.finish().ok()?;
    (out.len() < body.len()).then(|| Bytes::from(out))
}

/// Produces the answer and turns it into an entry when it is one to keep (200, HTML or JSON, not
/// too large); otherwise hands the answer back.
async fn produce(req: Request, next: Next, site_root: &str) -> Result<Arc<Page>, Response> {
    let path = req.uri().path().to_string();
    let asset = is_asset(&path);
    let res = next.run(req).await;
    let kind = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (html, json) = (kind.starts_with("text/html"), kind.starts_with("application/json"));
    let code = ["application/wasm", "text/javascript", "application/javascript", "text/css"]
        .iter()
        .any(|k| kind.starts_with(k));
    let too_big = json && res.body().size_hint().upper().is_none_or(|n| n > MAX_KEPT_JSON);
    let kind_ok = if asset { code } else { html || json };
    if res.status() != StatusCode::OK || !kind_ok || too_big || res.headers().contains_key(header::CONTENT_ENCODING) {
        return Err(res);
    }
    let (parts, body) = res.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PAGE_BYTES).await {
        Ok(b) => b,
        // The render failed half-way: the client gets an error, not half a page.
        Err(e) => return Err((StatusCode::INTERNAL_SERVER_ERROR, format!("page not rendered: {e}")).into_response()),
    };
    // The build's own compressed copies of the bundle, when it wrote them (only for a path the
    // file handler just served, never one that climbs out of the site root).
    let beside = |ext: &str| -> Option<Bytes> {
        let safe = asset && !path.split('/').any(|seg| seg == "..");
        safe.then(|| std::fs::read(format!("{site_root}{path}.{ext}")).ok()).flatten().map(Bytes::from)
    };
    let br = beside("br");
    let gz = match beside("gz") {
        Some(z) => Some(z),
        None => {
            let body = body.clone();
            let level = if asset { flate2::Compression::best() } else { flate2::Compression::default() };
            tokio::task::spawn_blocking(move || gzip(&body, level)).await.ok().flatten()
        }
    };
    let mut headers = parts.headers;
    headers.remove(header::CONTENT_LENGTH);
    Ok(Arc::new(Page { status: parts.status, headers, body, gzip: gz, br }))
}

pub async fn cached_pages(State(s): State<AppState>, req: Request, next: Next) -> Response {
    // Team pages with budgets change with the clock (and with `budget set`), not with the logs.
    let budgets = req.uri().path().starts_with("/teams") && !s.budgets.is_empty();
    if budgets || !cacheable(&req) {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let key = req.uri().to_string();
    let slot: Slot = s.pages.with(|i| {
        if i.pages.len() >= MAX_ENTRIES || i.bytes >= MAX_BYTES {
            // Start over, but for the browser bundle (a handful of files, compressed once).
            i.pages.retain(|k, _| is_asset(k));
            i.bytes = i.pages.values().filter_map(|s| s.get().cloned().flatten()).map(|p| p.size()).sum();
        }
        i.pages.entry(key.clone()).or_default().clone()
    });
    // The first request produces the entry while the others wait for it; an answer that is not
    // kept goes to the request that produced it, and the others produce their own.
    let mut own = Some((req, next));
    let mut passed: Option<Response> = None;
    let kept = slot
        .get_or_init(|| async {
            let (req, next) = own.take()?;
            // A page whose body never completes must not hold everyone waiting for it.
            let produced = match tokio::time::timeout(s.request_timeout, produce(req, next, &s.leptos.site_root)).await
            {
                Ok(produced) => produced,
                Err(_) => {
                    let why = "the page was not ready in time: ask again";
                    Err((StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], why).into_response())
                }
            };
            match produced {
                Ok(page) => {
                    s.pages.with(|i| {
                        if i.pages.get(&key).is_some_and(|k| Arc::ptr_eq(k, &slot)) {
                            i.bytes += page.size();
                        }
                    });
                    Some(page)
                }
                Err(res) => {
                    passed = Some(res);
                    None
                }
            }
        })
        .await
        .clone();
    if kept.is_none() {
        // Not one to keep: the next request for it produces its own (a 304 or an error now must
        // not stop the page from being kept later).
        s.pages.with(|i| {
            if i.pages.get(&key).is_some_and(|k| Arc::ptr_eq(k, &slot)) {
                i.pages.remove(&key);
            }
        });
    }
    // A hit: an answer kept that this request did not produce.
    let counter = if own.is_some() && kept.is_some() { &s.metrics.cache_hits } else { &s.metrics.cache_misses };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match (kept, passed, own) {
        (Some(page), _, _) => response(&page, &headers),
        (None, Some(res), _) => res,
        (None, None, Some((req, next))) => next.run(req).await,
        (None, None, None) => (StatusCode::INTERNAL_SERVER_ERROR, "page not rendered").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str, cookie: Option<&str>) -> Request {
        let mut req = Request::get(uri);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        req.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn pages_the_api_and_the_browser_bundle_are_kept_but_not_uploads_events_or_a_sessions_pages() {
        for page in
            ["/", "/runs?project=upload", "/teams/uploads", "/runs/api", "/api/v1/runs?limit=100", "/pkg/x.wasm"]
        {
            assert!(cacheable(&get(page, None)), "{page}");
        }
        for other in ["/api/v1/events", "/upload", "/sessions/0a", "/healthz", "/api/get_runs", "/plan", "/api/v1/plan"]
        {
            assert!(!cacheable(&get(other, None)), "{other}");
        }
        assert!(!cacheable(&get("/runs", Some("carbon_dash_session=0123456789abcdef0123456789abcdef"))));
        let post = Request::post("/runs").body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cacheable(&post));
        let revalidate = Request::get("/pkg/x.wasm").header(header::IF_NONE_MATCH, "\"abc\"");
        assert!(
            !cacheable(&revalidate.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"))),
            "304s are the handler's"
        );
    }

    #[tokio::test]
    async fn many_clients_asking_for_a_missing_page_at_once_make_one_render() {
        use axum::routing::get;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tower::ServiceExt;
        static RENDERS: AtomicUsize = AtomicUsize::new(0);
        async fn slow() -> axum::response::Html<String> {
            RENDERS.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            axum::response::Html("<p>page</p>".repeat(200))
        }
        let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
        let state = AppState::new(carbon_core::catalog::Catalog::default(), "site", addr);
        let app = axum::Router::new()
            .route("/slow", get(slow))
            .layer(axum::middleware::from_fn_with_state(state.clone(), cached_pages))
            .with_state(state.clone());
        let asks = (0..20).map(|i| {
            let mut req = Request::get("/slow");
            if i % 2 == 0 {
                req = req.header(header::ACCEPT_ENCODING, "gzip");
            }
            app.clone().oneshot(req.body(Body::empty()).unwrap_or_else(|e| panic!("{e}")))
        });
        let answers = futures_util::future::join_all(asks).await;
        assert_eq!(RENDERS.load(Ordering::SeqCst), 1, "one render for twenty clients");
        for (i, res) in answers.into_iter().enumerate() {
            let res = res.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(res.status(), StatusCode::OK);
            let gz = res.headers().get(header::CONTENT_ENCODING).is_some_and(|v| v == "gzip");
            assert_eq!(gz, i % 2 == 0, "gzip only for those who take it");
        }
        assert_eq!(state.pages.len(), 1);
        // A change of the logs forgets it: the next ask renders again.
        state.changes.send(1).unwrap_or_else(|e| panic!("{e}"));
        let _ = app.oneshot(get_req("/slow")).await;
        assert_eq!(RENDERS.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn query_strings_cannot_grow_the_cache_without_bound() {
        use axum::routing::get;
        use tower::ServiceExt;
        let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
        let state = AppState::new(carbon_core::catalog::Catalog::default(), "site", addr);
        let app = axum::Router::new()
            .route("/page", get(|| async { axum::response::Html("<p>page</p>") }))
            .layer(axum::middleware::from_fn_with_state(state.clone(), cached_pages))
            .with_state(state.clone());
        for i in 0..(MAX_ENTRIES + 100) {
            let res = app.clone().oneshot(get_req(&format!("/page?x={i}"))).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(res.status(), StatusCode::OK);
        }
        assert!(state.pages.len() <= MAX_ENTRIES, "{} pages kept", state.pages.len());
    }

    fn get_req(uri: &str) -> Request {
        Request::get(uri).body(Body::empty()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_take_it() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")));
            m
        };
        assert!(accepts(&h("gzip, deflate, br"), "gzip"));
        assert!(accepts(&h("br;q=1.0, gzip;q=0.5"), "gzip"));
        assert!(accepts(&h("br;q=1.0, gzip;q=0.5"), "br"));
        assert!(!accepts(&h("gzip;q=0"), "gzip"));
        assert!(!accepts(&h("br"), "gzip"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
        assert!(!accepts(&h("gzip;q=0, *"), "gzip"), "an explicit refusal wins over *");
        assert!(accepts(&h("*"), "br"));
    }
}
