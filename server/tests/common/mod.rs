//! What the route tests share: the demo catalog, router builds and the one runtime serving them.
#![allow(clippy::unwrap_used, dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use carbon_core::catalog::Catalog;
use carbon_dash::{demo, router, AppState};
use http_body_util::BodyExt;
use std::sync::OnceLock;
use tower::ServiceExt;

/// A path of every route the server has (pages, API, events, uploads, assets, session links).
pub const EVERY_ROUTE: &[&str] = &[
    "/",
    "/runs",
    "/files",
    "/data",
    "/map",
    "/regions",
    "/teams",
    "/upload",
    "/upload/save",
    "/upload/leave",
    "/healthz",
    "/api/v1/summary",
    "/api/v1/runs",
    "/api/v1/files",
    "/api/v1/regions",
    "/api/v1/whatif",
    "/api/v1/teams",
    "/api/v1/timeseries",
    "/api/v1/datasets",
    "/api/v1/equivalents",
    "/api/v1/events",
    "/pkg/carbon-dash.css",
    "/sessions/0123456789abcdef0123456789abcdef",
];

/// The demo catalog, built once, outside the async runtime (as `main` does).
pub fn catalog() -> Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| std::thread::spawn(|| demo::catalog().unwrap()).join().unwrap()).clone()
}

/// What the test site's stylesheet holds, and a file beside (outside) the site root.
pub const ASSET_TEXT: &str = "/* carbon-dash test stylesheet */";
pub const OUTSIDE_TEXT: &str = "outside the site root: never served";
pub const BUNDLE_TEXT: &str = "console.log('carbon-dash test bundle');\n";
pub const BUNDLE_BROTLI: &str = "(the brotli copy of the test bundle)";

/// A site root holding one asset, `pkg/carbon-dash.css`, with `secret.txt` in the folder above.
pub fn site_root() -> &'static str {
    static SITE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &SITE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let site = dir.path().join("site");
            std::fs::create_dir_all(site.join("pkg")).unwrap();
            std::fs::write(site.join("pkg/carbon-dash.css"), ASSET_TEXT).unwrap();
            // A bundle file with the brotli copy a release build writes beside it.
            std::fs::write(site.join("pkg/bundle.js"), BUNDLE_TEXT.repeat(100)).unwrap();
            std::fs::write(site.join("pkg/bundle.js.br"), BUNDLE_BROTLI).unwrap();
            std::fs::write(dir.path().join("secret.txt"), OUTSIDE_TEXT).unwrap();
            let site = site.to_str().unwrap().to_string();
            (dir, site)
        })
        .1
}

/// The state `main` builds for a catalog, before its flags are applied.
pub fn state(cat: Catalog) -> AppState {
    AppState::new(cat, site_root(), "127.0.0.1:0".parse().unwrap())
}

/// Builds a router as `main` does, on the runtime that serves it.
pub fn build(state: AppState) -> axum::Router {
    let _rt = server_runtime().enter();
    router(state)
}

/// One long-lived runtime serves every request: the tests' own runtimes come and go in
/// parallel, and a page render must not be woken on a runtime that has already ended.
pub fn server_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// Sends one request through `app` on the server runtime: status, headers, body as text.
pub async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let app = app.clone();
    server_runtime()
        .spawn(async move {
            let res = app.oneshot(req).await.unwrap();
            let (status, headers) = (res.status(), res.headers().clone());
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status, headers, String::from_utf8_lossy(&body).to_string())
        })
        .await
        .unwrap()
}

/// A new, empty database on the PostgreSQL server `./x test` starts (`CARBON_DASH_TEST_PG`), or
/// `None` without one (required under CI).
pub async fn fresh_postgres() -> Option<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let Ok(admin) = std::env::var("CARBON_DASH_TEST_PG") else {
        assert!(std::env::var_os("CI").is_none(), "CARBON_DASH_TEST_PG is not set: run ./x test");
        eprintln!("CARBON_DASH_TEST_PG not set: PostgreSQL not tested here");
        return None;
    };
    let name = format!("common{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    Some(carbon_store::Store::create_postgres_database(&admin, &name).await.unwrap())
}
