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

#[tokio::test]
async fn budgets_from_the_store_and_the_file_stand_where_the_runs_put_them() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("nlp/bert")).unwrap();
    let mut csv = String::from("timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n");
    for i in 0..3 {
        csv.push_str(&row(10.0, i));
    }
    std::fs::write(logs.join("nlp/bert/emissions.csv"), csv).unwrap();
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
    assert!(listed.problems[0].contains("the team nlp budget set in the store is the one in force"), "{listed:?}");
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
    assert_eq!(v["budgets"][1]["budget"]["source"].as_str().unwrap(), logs.join("budgets.toml").display().to_string());
    // The team page shows both, with their burn-downs.
    let (_, _, page) = call(&app, Request::get("/teams/nlp").body(Body::empty()).unwrap()).await;
    assert!(
        page.contains("Budget of team nlp: 40 kWh per month") && page.contains("Budget of project bert"),
        "budgets on the page"
    );
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
    assert!(listed.problems[0].contains("not a regular file"), "{listed:?}");
    store.close().await;
}
