//! `--auth proxy`: every route asked by every identity. Nothing of team beta reaches a member of
//! team alpha (pages, JSON, CSV, reports, the event stream); an admin sees both; nobody else
//! gets more than the health check and the assets.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use carbon_dash::auth::{Auth, Proxy};
use common::{build, call, state, EVERY_ROUTE};

const ALPHA_RUN: &str = "a1f0a1f0-0000-4000-8000-00000000a1f0";
const BETA_RUN: &str = "be7abe7a-0000-4000-8000-00000000be7a";
const BETA_EXPERIMENT: &str = "be7a0e0e-0000-4000-8000-0000000000e0";
const BETA_SECRET: &str = "beta-secret-project";

fn log(project: &str, run: &str, experiment: &str) -> String {
    format!(
        "timestamp,project_name,run_id,experiment_id,duration,emissions,energy_consumed,country_iso_code\n\
         2026-10-01T10:00:00,{project},{run},{experiment},600,0.0123456789012,0.0301,FRA\n\
         2026-10-01T10:10:00,{project},{run},{experiment},1200,0.0246913578024,0.0602,FRA\n"
    )
}

fn app() -> axum::Router {
    app_and_state().0
}

/// The app, its state and its logs folder.
fn app_and_state() -> (axum::Router, carbon_dash::AppState, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("alpha/vision/emissions.csv", &log("alpha-project", ALPHA_RUN, "a1f00e0e-0000-4000-8000-0000000000e0"));
    write("beta/nlp/emissions.csv", &log(BETA_SECRET, BETA_RUN, BETA_EXPERIMENT));
    write("beta/nlp/metrics.csv", &format!("run_id,name,value\n{BETA_RUN},accuracy,0.91\n"));
    write("beta/nlp/carbon-dash.toml", "[[results]]\ntable = \"beta-only.csv\"\n");
    // A metrics file in alpha's folder naming beta's run: beta's figure, not alpha's to see.
    write("alpha/vision/metrics.csv", &format!("run_id,name,value\n{BETA_RUN},bleu,31\n"));
    // A file no team holds (at the root), and one that cannot be read as a log.
    write("unowned.csv", "hello,world\n1,2\n");
    let cat = carbon_core::catalog::load_dir(dir.path()).unwrap();
    let root = dir.keep();
    let mut s = state(cat);
    s.auth = std::sync::Arc::new(Auth::Proxy(Proxy {
        user_header: "x-forwarded-email".parse().unwrap(),
        groups_header: "x-forwarded-groups".parse().unwrap(),
        trusted: vec!["10.0.0.0/8".parse().unwrap()],
        admin_group: Some("carbon-admins".into()),
    }));
    (build(s.clone()), s, root)
}

/// A page without what differs between two answers: the script nonce (also in `crossorigin`).
fn normal(body: &str) -> String {
    let mut text = body.to_string();
    for attr in ["nonce=\"", "crossorigin=\""] {
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(attr) {
            out.push_str(&rest[..at]);
            rest = &rest[at + attr.len()..];
            rest = rest.find('"').map_or("", |end| &rest[end + 1..]);
        }
        out.push_str(rest);
        text = out;
    }
    text
}

/// A GET of `path` from `ip`, signed in as `who` (user, groups) when given.
fn get(path: &str, ip: &str, who: Option<(&str, &str)>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some((user, groups)) = who {
        r = r.header("x-forwarded-email", user).header("x-forwarded-groups", groups);
    }
    let mut req = r.body(Body::empty()).unwrap();
    req.extensions_mut().insert(carbon_dash::conn::Client(ip.parse().unwrap()));
    req
}

/// Every route, and the ones naming beta's run, project and experiment.
fn routes() -> Vec<String> {
    let mut all: Vec<String> =
        EVERY_ROUTE.iter().filter(|r| !r.starts_with("/api/v1/events")).map(|r| r.to_string()).collect();
    for r in [
        format!("/runs/{BETA_RUN}"),
        format!("/api/v1/runs/{BETA_RUN}"),
        format!("/api/v1/runs/{BETA_RUN}/checkpoints"),
        format!("/api/v1/runs?project={BETA_SECRET}"),
        "/api/v1/runs?limit=all".into(),
        format!("/experiments/{BETA_EXPERIMENT}"),
        format!("/pareto?project={BETA_SECRET}"),
        format!("/api/v1/pareto?project={BETA_SECRET}"),
        "/api/v1/pareto".into(),
        format!("/api/v1/report?run_id={BETA_RUN}&format=html"),
        "/api/v1/report?format=html".into(),
        "/api/v1/report?format=tex".into(),
        format!("/map?run_id={BETA_RUN}"),
        format!("/api/v1/whatif?run_id={BETA_RUN}"),
        format!("/plan?run_id={BETA_RUN}"),
        format!("/api/v1/plan?run_id={BETA_RUN}"),
        "/api/v1/timeseries?by=team".into(),
        "/teams".into(),
        format!("/api/v1/projects/{BETA_SECRET}/emissions.csv"),
    ] {
        all.push(r);
    }
    all
}

#[tokio::test]
async fn nothing_of_team_beta_reaches_alpha_on_any_route_and_nobody_else_sees_anything() {
    let app = app();
    let alpha = Some(("ada@example.org", "alpha"));
    let mut table = Vec::new();
    for path in routes() {
        let (status, _, body) = call(&app, get(&path, "10.0.0.5", alpha)).await;
        let named = [BETA_RUN, BETA_SECRET, BETA_EXPERIMENT].iter().find(|s| path.contains(**s));
        match named {
            // A route naming beta's run, project or experiment answers alpha as it answers for one
            // that does not exist (the name asked for aside).
            Some(secret) => {
                let fake = "fa4efa4e-0000-4000-8000-00000000fa4e";
                let (s2, _, other) = call(&app, get(&path.replace(secret, fake), "10.0.0.5", alpha)).await;
                assert_eq!(status, s2, "{path}");
                // The name asked for is echoed (whole, or its first 8 characters as pages show it).
                let (a, b) = (normal(&body.replace(secret, fake).replace(&secret[..8], &fake[..8])), normal(&other));
                if a != b {
                    let at = a.bytes().zip(b.bytes()).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
                    let from = at.saturating_sub(200);
                    panic!(
                        "{path}: differs at {at}:\n{}\n---\n{}",
                        &a[from..(at + 200).min(a.len())],
                        &b[from..(at + 200).min(b.len())]
                    );
                }
            }
            None => {
                for secret in [BETA_RUN, BETA_SECRET, BETA_EXPERIMENT, "beta/nlp", "unowned.csv"] {
                    assert!(
                        !body.contains(secret),
                        "{path} ({status}) shows {secret} to alpha: {}",
                        &body[..body.len().min(400)]
                    );
                }
            }
        }
        // Anonymous, and headers from an address that is not the proxy: the sign-in refusal only.
        let (anon, _, _) = call(&app, get(&path, "10.0.0.5", None)).await;
        let (spoofed, _, body) = call(&app, get(&path, "192.0.2.9", Some(("root@example.org", "carbon-admins")))).await;
        let open = path == "/healthz" || path.starts_with("/pkg/");
        if !open {
            assert_eq!(anon, StatusCode::UNAUTHORIZED, "{path} anonymous");
            assert_eq!(spoofed, StatusCode::UNAUTHORIZED, "{path} from outside the proxy: {body}");
        }
        table.push(format!("{path}: alpha {status}, anonymous {anon}, untrusted {spoofed}"));
    }
    // Beta's run is to alpha what a run that does not exist is.
    let (status, _, _) = call(&app, get(&format!("/api/v1/runs/{BETA_RUN}"), "10.0.0.5", alpha)).await;
    let (none, _, _) = call(&app, get("/api/v1/runs/00000000-0000-4000-8000-000000000000", "10.0.0.5", alpha)).await;
    assert_eq!((status, none), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    // Alpha sees its own run; beta sees its run and its metric; an admin sees both.
    let (_, _, own) = call(&app, get("/api/v1/runs", "10.0.0.5", alpha)).await;
    assert!(own.contains(ALPHA_RUN) && !own.contains(BETA_RUN), "{own}");
    let (_, _, b) =
        call(&app, get(&format!("/api/v1/runs/{BETA_RUN}"), "10.0.0.5", Some(("bo@example.org", "beta")))).await;
    assert!(b.contains("\"accuracy\":0.91"), "{b}");
    let (_, _, all) = call(&app, get("/api/v1/runs", "10.0.0.5", Some(("root@example.org", "carbon-admins")))).await;
    assert!(all.contains(ALPHA_RUN) && all.contains(BETA_RUN), "{all}");
    // Paths that climb out of the open ones, and the health check's figures of every team.
    for sneaky in ["/pkg/../runs", "/pkg/%2e%2e/files", "/pkg/.%2e/api/v1/runs"] {
        let (status, _, body) = call(&app, get(sneaky, "192.0.2.9", None)).await;
        assert!(status == StatusCode::UNAUTHORIZED && !body.contains(ALPHA_RUN), "{sneaky}: {status}");
    }
    let (_, _, health) = call(&app, get("/healthz", "10.0.0.5", alpha)).await;
    assert_eq!(health.trim(), r#"{"status":"ok"}"#);
    let (_, _, health) = call(&app, get("/healthz", "10.0.0.5", Some(("root@example.org", "carbon-admins")))).await;
    assert!(health.contains("\"runs\":2"), "{health}");
    // Saving uploads into the logs folder would give them to no team: refused.
    let mut save = Request::post("/upload/save").header("accept", "application/json").body(Body::empty()).unwrap();
    save.headers_mut().insert("x-forwarded-email", "ada@example.org".parse().unwrap());
    save.extensions_mut().insert(carbon_dash::conn::Client("10.0.0.5".parse().unwrap()));
    assert_eq!(call(&app, save).await.0, StatusCode::FORBIDDEN);
    // The live-update stream is a page's too: refused to anonymous.
    assert_eq!(call(&app, get("/api/v1/events", "10.0.0.5", None)).await.0, StatusCode::UNAUTHORIZED);
    // Two user headers (a spliced request) are refused.
    let mut twice = get("/api/v1/runs", "10.0.0.5", alpha);
    twice.headers_mut().append("x-forwarded-email", "eve@example.org".parse().unwrap());
    assert_eq!(call(&app, twice).await.0, StatusCode::UNAUTHORIZED);
    eprintln!("{}", table.join("\n"));
}

#[tokio::test]
async fn the_live_stream_tells_a_team_of_its_own_changes_only() {
    use tower::ServiceExt;
    let (app, s, root) = app_and_state();
    let res = common::server_runtime()
        .spawn(app.oneshot(get("/api/v1/events", "10.0.0.5", Some(("ada@example.org", "alpha")))))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    // Beta's log grows: alpha hears nothing.
    let change = |path: &str, run: &str, project: &str, experiment: &str| {
        let p = root.join(path);
        let text = log(project, run, experiment)
            + &format!("2026-10-01T10:20:00,{project},{run},{experiment},1800,0.037,0.09,FRA\n");
        std::fs::write(&p, text).unwrap();
        let parsed = carbon_core::ingest::ingest_path(&p, path).unwrap();
        s.catalog.update(|c| c.upsert(parsed)).unwrap();
        s.announcer.announce();
    };
    change("beta/nlp/emissions.csv", BETA_RUN, BETA_SECRET, BETA_EXPERIMENT);
    assert!(!next_event(&mut body).await, "alpha is not told of beta's change");
    change("alpha/vision/emissions.csv", ALPHA_RUN, "alpha-project", "a1f00e0e-0000-4000-8000-0000000000e0");
    assert!(next_event(&mut body).await, "alpha is told of its own");
}

/// Whether an event comes on the stream within 1.5 s.
async fn next_event(body: &mut axum::body::Body) -> bool {
    use http_body_util::BodyExt;
    loop {
        match tokio::time::timeout(std::time::Duration::from_millis(1500), body.frame()).await {
            Ok(Some(Ok(f))) => match f.into_data() {
                Ok(d) if String::from_utf8_lossy(&d).contains("event: catalog") => return true,
                _ => continue,
            },
            _ => return false,
        }
    }
}
