//! Budgets as a team lead sets them: `budget set` in the store, `budgets.toml` beside the logs.
//! The API gives where each stands; a mistake in the file is named with its line and column; the
//! store's budget wins over the file's for the same scope; the team page shows the burn-down.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use carbon_dash::cli::{BudgetCommand, DbArg};
use common::{build, call, state};

/// A run of team nlp, project bert, of one second ending now (so in this month), of `kwh` in
/// France.
fn row(kwh: f64, n: usize) -> String {
    let end = carbon_core::budget::now();
    format!("{},bert,00000000-0000-4000-8000-{n:012},1,{},{kwh},FRA\n", carbon_core::time::iso(&end), kwh * 0.05)
}

/// A logs folder under `dir` with three 10 kWh runs of team nlp, project bert, ending now.
fn three_runs(dir: &std::path::Path) -> std::path::PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(logs.join("nlp/bert")).unwrap();
    let mut csv = String::from("timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n");
    for i in 0..3 {
        csv.push_str(&row(10.0, i));
    }
    std::fs::write(logs.join("nlp/bert/emissions.csv"), csv).unwrap();
    logs
}

#[tokio::test]
async fn budgets_from_the_store_and_the_file_stand_where_the_runs_put_them() {
    let dir = tempfile::tempdir().unwrap();
    let logs = three_runs(dir.path());
    let db = dir.path().join("carbon-dash.db").to_string_lossy().to_string();
    // The store: 40 kWh a month for nlp. The file: the same (left out, said so), and bert's CO₂e.
    carbon_dash::manage::budget(BudgetCommand::Set {
        team: Some("nlp".into()),
        project: None,
        co2_kg: None,
        energy_kwh: Some(40.0),
        period: "month".into(),
        thresholds: vec![50.0, 100.0],
        db: DbArg { db: db.clone() },
    })
    .await
    .unwrap();
    std::fs::write(
        logs.join("budgets.toml"),
        "[[budget]]\nteam = \"nlp\"\nenergy_kwh = 1000\n\n[[budget]]\nproject = \"bert\"\nco2_kg = 100\n",
    )
    .unwrap();
    let store = carbon_store::Store::open(&db).await.unwrap();
    let listed = carbon_dash::budgets::read(Some(&store), Some(&logs)).await;
    assert_eq!(listed.budgets.len(), 2, "{listed:?}");
    assert_eq!(listed.problems[0], "budgets.toml: the team nlp budget set in the store is the one in force");
    let cat = carbon_core::catalog::load_dir(&logs).unwrap();
    let s = state(cat);
    s.budgets.set(listed);
    let app = build(s.clone());
    let (status, _, body) = call(&app, Request::get("/api/v1/budgets").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let nlp = &v["budgets"][0];
    assert_eq!(nlp["budget"]["scope"]["name"], "nlp");
    // 30 kWh of 40: 75 %, over the 50 % threshold (spent), and the projection over 100 %.
    assert!((nlp["spent"]["value"].as_f64().unwrap() - 30.0).abs() < 1e-6, "{nlp}");
    assert_eq!(nlp["crossed"][0]["threshold"], 50.0);
    assert_eq!(nlp["crossed"][0]["by"], "spent");
    // The file's name, not where the server keeps it.
    assert_eq!(v["budgets"][1]["budget"]["source"], "budgets.toml");
    // The team page shows both, with their burn-downs.
    let (_, _, page) = call(&app, Request::get("/teams/nlp").body(Body::empty()).unwrap()).await;
    assert!(
        page.contains("Budget of team nlp: 40 kWh per month") && page.contains("Budget of project bert"),
        "budgets on the page"
    );
    // A project's page shows its budget and its team's; another project's, only the team's.
    let (_, _, page) = call(&app, Request::get("/teams/nlp?project=bert").body(Body::empty()).unwrap()).await;
    assert!(page.contains("Budget of team nlp") && page.contains("Budget of project bert"));
    let (_, _, page) = call(&app, Request::get("/teams/nlp?project=gpt").body(Body::empty()).unwrap()).await;
    assert!(page.contains("Budget of team nlp") && !page.contains("Budget of project bert"));
    // A mistake in the file: named with its line and column, the store's budget still in force.
    std::fs::write(logs.join("budgets.toml"), "[[budget]]\nteam = \"nlp\"\nco2_kg = 5\nperiod = \"week\"\n").unwrap();
    let listed = carbon_dash::budgets::read(Some(&store), Some(&logs)).await;
    assert_eq!(listed.budgets.len(), 1);
    assert!(
        listed.problems[0]
            .ends_with("budgets.toml line 4, column 10: period = \"week\": give \"month\" or \"quarter\""),
        "{:?}",
        listed.problems
    );
    // A link in its place is not followed.
    std::fs::remove_file(logs.join("budgets.toml")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", logs.join("budgets.toml")).unwrap();
    let listed = carbon_dash::budgets::read(None, Some(&logs)).await;
    assert!(listed.problems[0].contains("links are not followed"), "{listed:?}");
    // Nor a pipe waited on.
    std::fs::remove_file(logs.join("budgets.toml")).unwrap();
    let fifo = std::ffi::CString::new(logs.join("budgets.toml").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let listed = carbon_dash::budgets::read(None, Some(&logs)).await;
    assert!(listed.problems[0].contains("named pipe"), "{listed:?}");
    store.close().await;
}

/// A webhook receiver on a free port: what it got, and whether it fails (503) for now.
async fn receiver(
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let failing = std::sync::Arc::new(AtomicBool::new(true));
    let (g, f) = (got.clone(), failing.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let (g, f) = (g.clone(), f.clone());
            async move {
                if f.load(Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                g.lock().unwrap().push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    common::server_runtime().spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got, failing)
}

/// A budget crossed at 80 % (spent) and 100 % (projected): each threshold reaches the webhook
/// once, though the receiver fails at first, the server restarts and a second replica checks the
/// same store at the same time (SQLite here, PostgreSQL too under ./x test).
#[tokio::test]
async fn each_threshold_reaches_the_webhook_once_across_failures_restarts_and_replicas() {
    use std::sync::atomic::Ordering;
    let (url, got, failing) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = three_runs(dir.path());
    // 30 kWh of 36: 83 % spent; at the day's rate the projection passes 100 %.
    std::fs::write(logs.join("budgets.toml"), "[[budget]]\nteam = \"nlp\"\nenergy_kwh = 36\n").unwrap();
    let catalog = carbon_core::catalog::load_dir(&logs).unwrap();
    let mut specs = vec![dir.path().join("alerts.db").to_string_lossy().to_string()];
    specs.extend(common::fresh_postgres().await);
    for spec in specs {
        got.lock().unwrap().clear();
        failing.store(true, Ordering::SeqCst);
        let store = carbon_store::Store::open(&spec).await.unwrap();
        let alerts = |store: &carbon_store::Store| carbon_dash::budgets::Alerts {
            store: store.clone(),
            hooks: vec![url.clone()],
            http: reqwest::Client::new(),
            public_url: Some("https://carbon.example.org".into()),
        };
        let listed = carbon_dash::budgets::read(Some(&store), Some(&logs)).await;
        let (now, t0) = (carbon_core::budget::now(), carbon_dash::budgets::now_us());
        let s = 1_000_000;
        // The receiver fails: claimed, attempted, not delivered; the page says why.
        alerts(&store).check(&listed, &catalog, now, t0).await;
        assert!(got.lock().unwrap().is_empty());
        let hook_name = carbon_store::people::hash(&url)[..16].to_string();
        let pending = store.undelivered_alerts(std::slice::from_ref(&hook_name)).await.unwrap();
        assert_eq!(pending.len(), 2, "{spec}: 80 and 100");
        assert!(pending.iter().all(|p| p.attempts == 1));
        let noted = carbon_dash::budgets::read(Some(&store), None).await.alerts;
        assert!(
            noted
                .iter()
                .all(|a| !a.delivered && a.error.as_deref() == Some("the webhook answered 503 Service Unavailable")),
            "{noted:?}"
        );
        // Recovered; 10 s later the back-off (30 s) is not waited out: nothing is sent.
        failing.store(false, Ordering::SeqCst);
        alerts(&store).check(&listed, &catalog, now, t0 + 10 * s).await;
        assert!(got.lock().unwrap().is_empty(), "the back-off is waited out");
        // A minute later two replicas check at once, then one restarts and checks again: each
        // alert arrives once.
        let other = carbon_store::Store::open(&spec).await.unwrap();
        let (one, two) = (alerts(&store), alerts(&other));
        tokio::join!(one.check(&listed, &catalog, now, t0 + 60 * s), two.check(&listed, &catalog, now, t0 + 60 * s));
        let restarted = carbon_store::Store::open(&spec).await.unwrap();
        alerts(&restarted).check(&listed, &catalog, now, t0 + 3600 * s).await;
        let bodies = got.lock().unwrap().clone();
        assert_eq!(bodies.len(), 2, "{spec}: {bodies:?}");
        let texts: Vec<serde_json::Value> = bodies.iter().map(|b| serde_json::from_str(b).unwrap()).collect();
        assert!(texts.iter().any(|t| t["threshold"] == 80.0 && t["crossed"] == "spent"), "{texts:?}");
        assert!(texts.iter().any(|t| t["threshold"] == 100.0 && t["crossed"] == "projected"), "{texts:?}");
        assert!(
            texts[0]["text"].as_str().unwrap().starts_with("Budget of team nlp (36 kWh per month"),
            "{}",
            texts[0]["text"]
        );
        assert!(texts[0]["text"].as_str().unwrap().ends_with("https://carbon.example.org/teams/nlp"));
        let noted = carbon_dash::budgets::read(Some(&store), None).await.alerts;
        assert!(noted.len() == 2 && noted.iter().all(|a| a.delivered), "{noted:?}");
        store.close().await;
        other.close().await;
        restarted.close().await;
    }
}
