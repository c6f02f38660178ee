//! Sign-in: every route asked by every identity (a proxy's person in a group, a member kept in the
//! store, read tokens, an admin, anonymous, an untrusted address). Nothing of team beta reaches a
//! member of team alpha, nor of alpha a member of beta (pages, JSON, CSV, reports, the event
//! stream); an admin and an every-team token see both; nobody else gets more than the health
//! check, the sign-in routes and the assets.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use carbon_dash::auth::{Auth, Mode, Proxy};
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

/// The app, its state, its logs folder and the store of members and tokens.
async fn app_and_state() -> (axum::Router, carbon_dash::AppState, std::path::PathBuf, carbon_store::Store) {
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
    // Budgets: alpha's team, and beta's secret project (its name must not reach alpha).
    write(
        "budgets.toml",
        &format!(
            "[[budget]]\nteam = \"alpha\"\nco2_kg = 5\n\n[[budget]]\nproject = \"{BETA_SECRET}\"\nenergy_kwh = 9\n"
        ),
    );
    // A file no team holds (at the root), and one that cannot be read as a log.
    write("unowned.csv", "hello,world\n1,2\n");
    let cat = carbon_core::catalog::load_dir(dir.path()).unwrap();
    let root = dir.keep();
    let mut s = state(cat);
    let store = carbon_store::Store::open(&root.join("people.db").to_string_lossy()).await.unwrap();
    s.budgets.set(carbon_dash::budgets::read(Some(&store), Some(&root)).await);
    assert_eq!(s.budgets.get().budgets.len(), 2, "{:?}", s.budgets.get().problems);
    s.auth = std::sync::Arc::new(Auth {
        mode: Mode::Proxy(Proxy {
            user_header: "x-forwarded-email".parse().unwrap(),
            groups_header: "x-forwarded-groups".parse().unwrap(),
            trusted: vec!["10.0.0.0/8".parse().unwrap()],
        }),
        admin_group: Some("carbon-admins".into()),
        store: Some(store.clone()),
    });
    (build(s.clone()), s, root, store)
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

/// A GET of `path` from `ip`, signed in as `who` (user, groups; or a read token, as `Bearer …`).
fn get(path: &str, ip: &str, who: Option<(&str, &str)>) -> Request<Body> {
    let mut r = Request::get(path);
    match who {
        Some((bearer, "")) if bearer.starts_with("Bearer ") => r = r.header("authorization", bearer),
        Some((user, groups)) => r = r.header("x-forwarded-email", user).header("x-forwarded-groups", groups),
        None => {}
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
        "/teams/beta".into(),
        "/teams/alpha".into(),
        "/api/v1/budgets".into(),
        "/metrics".into(),
        "/pareto".into(),
        "/plan".into(),
        "/api/v1/no-such-endpoint".into(),
        "/signin".into(),
        "/signin/start".into(),
        "/signin/callback?state=x&code=y".into(),
        format!("/api/v1/projects/{BETA_SECRET}/emissions.csv"),
    ] {
        all.push(r);
    }
    all
}

#[tokio::test]
async fn nothing_of_team_beta_reaches_alpha_on_any_route_and_nobody_else_sees_anything() {
    let (app, _, _, store) = app_and_state().await;
    // Alpha three ways: a group the proxy names, a member kept in the store (no groups), a read
    // token of team alpha. Beta by its group; every team by the admin group and an --all token.
    store.add_member("alpha", "Carol@Example.org").await.unwrap();
    let alpha_token = format!("Bearer {}", store.add_read_token(Some("alpha")).await.unwrap());
    let all_token = format!("Bearer {}", store.add_read_token(None).await.unwrap());
    let revoked = store.add_read_token(None).await.unwrap();
    store.revoke_read_token(&revoked).await.unwrap();
    let alphas = [("ada@example.org", "alpha"), ("carol@example.org", "nlp-readers"), (alpha_token.as_str(), "")];
    let beta = ("bo@example.org", "beta");
    let admins = [("root@example.org", "carbon-admins"), (all_token.as_str(), "")];
    let alpha = Some(alphas[0]);
    let mut table = vec!["route | alpha (group) | alpha (member) | alpha (token) | beta | admin | all-teams token | anonymous | untrusted address | revoked token".to_string()];
    for path in routes() {
        let mut row = vec![path.clone()];
        for who in alphas {
            let (status, _, body) = call(&app, get(&path, "10.0.0.5", Some(who))).await;
            row.push(status.as_u16().to_string());
            let named = [BETA_RUN, BETA_SECRET, BETA_EXPERIMENT].iter().find(|s| path.contains(**s));
            match named {
                // A route naming beta's run, project or experiment answers alpha as it answers for
                // one that does not exist (the name asked for aside).
                Some(secret) => {
                    let fake = "fa4efa4e-0000-4000-8000-00000000fa4e";
                    let (s2, _, other) = call(&app, get(&path.replace(secret, fake), "10.0.0.5", Some(who))).await;
                    assert_eq!(status, s2, "{path}");
                    // The name asked for is echoed (whole, or its first 8 characters as pages show it).
                    let (a, b) =
                        (normal(&body.replace(secret, fake).replace(&secret[..8], &fake[..8])), normal(&other));
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
                            "{path} ({status}) shows {secret} to {who:?}: {}",
                            &body[..body.len().min(400)]
                        );
                    }
                }
            }
        }
        // Beta sees nothing of alpha where its route names nothing of beta's.
        let (status, _, body) = call(&app, get(&path, "10.0.0.5", Some(beta))).await;
        row.push(status.as_u16().to_string());
        if ![BETA_RUN, BETA_SECRET, BETA_EXPERIMENT].iter().any(|s| path.contains(*s)) {
            for secret in [ALPHA_RUN, "alpha-project", "alpha/vision", "unowned.csv"] {
                assert!(!body.contains(secret), "{path} ({status}) shows {secret} to beta");
            }
        }
        for who in admins {
            row.push(call(&app, get(&path, "10.0.0.5", Some(who))).await.0.as_u16().to_string());
        }
        // Anonymous, headers from an address that is not the proxy, a revoked token: refused.
        let (anon, _, _) = call(&app, get(&path, "10.0.0.5", None)).await;
        let (spoofed, _, body) = call(&app, get(&path, "192.0.2.9", Some(("root@example.org", "carbon-admins")))).await;
        let gone = format!("Bearer {revoked}");
        let (dead, _, _) = call(&app, get(&path, "10.0.0.5", Some((gone.as_str(), "")))).await;
        // (The sign-in routes answer 404 here: this server signs in by its proxy.)
        let open = path == "/healthz" || path.starts_with("/pkg/") || path.starts_with("/signin");
        if !open {
            assert_eq!(anon, StatusCode::UNAUTHORIZED, "{path} anonymous");
            assert_eq!(spoofed, StatusCode::UNAUTHORIZED, "{path} from outside the proxy: {body}");
            assert_eq!(dead, StatusCode::UNAUTHORIZED, "{path} with a revoked token");
        }
        row.extend([anon, spoofed, dead].map(|s| s.as_u16().to_string()));
        table.push(row.join(" | "));
    }
    // The member and the token see alpha's run; removed, the member sees nothing.
    for who in &alphas[1..] {
        let (_, _, own) = call(&app, get("/api/v1/runs", "10.0.0.5", Some(*who))).await;
        assert!(own.contains(ALPHA_RUN) && !own.contains(BETA_RUN), "{who:?}: {own}");
    }
    let (_, _, all) = call(&app, get("/api/v1/runs", "10.0.0.5", Some(admins[1]))).await;
    assert!(all.contains(ALPHA_RUN) && all.contains(BETA_RUN), "the every-team token: {all}");
    // Metrics are every team's: an admin's or an every-team token's only.
    assert_eq!(call(&app, get("/metrics", "10.0.0.5", alpha)).await.0, StatusCode::FORBIDDEN);
    let (status, _, text) = call(&app, get("/metrics", "10.0.0.5", Some(admins[1]))).await;
    assert!(status == StatusCode::OK && text.contains(BETA_SECRET), "{status}");
    // Budgets: alpha's own, not beta's project's; an admin sees both.
    let (_, _, mine) = call(&app, get("/api/v1/budgets", "10.0.0.5", alpha)).await;
    assert!(mine.contains("\"alpha\"") && !mine.contains(BETA_SECRET), "{mine}");
    let (_, _, all) = call(&app, get("/api/v1/budgets", "10.0.0.5", Some(admins[0]))).await;
    assert!(all.contains("\"alpha\"") && all.contains(BETA_SECRET), "{all}");
    store.remove_member("alpha", "carol@example.org").await.unwrap();
    let (_, _, none) = call(&app, get("/api/v1/runs", "10.0.0.5", Some(alphas[1]))).await;
    assert!(!none.contains(ALPHA_RUN), "a removed member: {none}");
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
    let (app, s, root, _) = app_and_state().await;
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

/// The walk above covers every route the router declares (the server's and the app's pages):
/// a route added later without being walked fails here.
#[test]
fn the_walk_covers_every_route_of_the_router() {
    // Collection posts keep their write tokens (tests of their own); the event stream is walked
    // by the test above it.
    let exempt = ["/emissions", "/api/runs", "/api/emissions", "/signout", "/api/v1/events"];
    let walked: Vec<String> = routes().iter().map(|r| r.split('?').next().unwrap().to_string()).collect();
    let matches = |route: &str, path: &str| {
        let (r, p): (Vec<&str>, Vec<&str>) = (route.split('/').collect(), path.split('/').collect());
        if route.contains("{*") {
            return r.iter().zip(&p).take(r.len() - 1).all(|(a, b)| a == b) && p.len() >= r.len();
        }
        r.len() == p.len()
            && r.iter().zip(&p).all(|(a, b)| a == b || ((a.starts_with('{') || a.starts_with(':')) && !b.is_empty()))
    };
    let mut declared = Vec::new();
    for (text, marker) in
        [(include_str!("../src/lib.rs"), ".route(\""), (include_str!("../../app/src/lib.rs"), "path!(\"")]
    {
        declared.extend(text.split(marker).skip(1).map(|piece| piece.split('"').next().unwrap().to_string()));
    }
    assert!(declared.len() > 30, "{declared:?}");
    for route in declared {
        if exempt.contains(&route.as_str()) {
            continue;
        }
        assert!(walked.iter().any(|w| matches(&route, w)), "{route} is declared but not walked");
    }
}
