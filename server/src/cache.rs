//! Rendered pages, kept until the logs change: a page is the same for every visitor without an
//! upload session, so rendering it once per catalog version is enough.

use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast::{self, error::TryRecvError};

/// Pages held at most (each a few hundred KB at most); the cache starts over when full.
const MAX_PAGES: usize = 256;
/// No page comes near this; a larger one is a fault, answered 500.
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

struct Inner {
    pages: HashMap<String, Arc<Page>>,
    /// Tells when the watched logs changed the catalog: then every page is forgotten.
    changes: broadcast::Receiver<u64>,
    /// Counts those changes: a page rendered across one is not kept.
    generation: u64,
}

#[derive(Clone)]
pub struct PageCache(Arc<Mutex<Inner>>);

impl PageCache {
    pub fn new(changes: &broadcast::Sender<u64>) -> PageCache {
        PageCache(Arc::new(Mutex::new(Inner { pages: HashMap::new(), changes: changes.subscribe(), generation: 0 })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Any change (or missed changes) since the last look: start over.
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = inner.changes.try_recv() {
            inner.pages.clear();
            inner.generation += 1;
        }
        f(&mut inner)
    }

    pub fn len(&self) -> usize {
        self.with(|i| i.pages.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Only pages (not the API, assets, uploads or the event stream), only for visitors without an
/// upload session: theirs differ.
fn cacheable(req: &Request) -> bool {
    let path = req.uri().path();
    req.method() == Method::GET
        && !req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|c| c.contains(crate::upload::COOKIE)))
        && !["/api/", "/pkg/", "/upload", "/sessions/", "/healthz"].iter().any(|p| path.starts_with(p))
}

fn response(page: &Page) -> Response {
    let mut res = Response::new(Body::from(page.body.clone()));
    *res.status_mut() = page.status;
    *res.headers_mut() = page.headers.clone();
    res
}

pub async fn cached_pages(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if !cacheable(&req) {
        return next.run(req).await;
    }
    let key = req.uri().to_string();
    let (kept, generation) = s.pages.with(|i| (i.pages.get(&key).cloned(), i.generation));
    if let Some(page) = kept {
        return response(&page);
    }
    let res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if res.status() != StatusCode::OK || !html {
        return res;
    }
    let (parts, body) = res.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PAGE_BYTES).await {
        Ok(b) => b,
        // The render failed half-way: the client gets an error, not half a page.
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("page not rendered: {e}")).into_response(),
    };
    let page = Arc::new(Page { status: parts.status, headers: parts.headers, body });
    s.pages.with(|i| {
        if i.generation != generation {
            return; // the logs changed while it was rendered
        }
        if i.pages.len() >= MAX_PAGES {
            i.pages.clear();
        }
        i.pages.insert(key, page.clone());
    });
    response(&page)
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
    fn pages_are_kept_but_not_the_api_assets_uploads_or_a_sessions_pages() {
        for page in ["/", "/runs?project=upload", "/teams/uploads", "/runs/api"] {
            assert!(cacheable(&get(page, None)), "{page}");
        }
        for other in ["/api/v1/runs", "/pkg/carbon-dash.css", "/upload", "/sessions/0a", "/healthz"] {
            assert!(!cacheable(&get(other, None)), "{other}");
        }
        assert!(!cacheable(&get("/runs", Some("carbon_dash_session=0123456789abcdef0123456789abcdef"))));
        let post = Request::post("/runs").body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cacheable(&post));
    }
}
