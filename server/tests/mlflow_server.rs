//! `--mlflow-url`: a local server answering as MLflow's tracking server does (its REST API, page
//! tokens, a deleted run, a NaN metric, an error), polled into the catalog and joined.
#![allow(clippy::unwrap_used)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Json;
use carbon_core::catalog::{Catalog, SharedCatalog};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// A request the fake server took: its endpoint, body and Authorization header.
type Asked = (String, Value, Option<String>);

#[derive(Clone, Default)]
struct Seen {
    bodies: Arc<Mutex<Vec<Asked>>>,
    fail: Arc<Mutex<bool>>,
}

fn run(id: &str, name: &str, exp: &str, stage: &str, metrics: Value, params: Value, tags: Value) -> Value {
    json!({
        "info": { "run_id": id, "run_uuid": id, "run_name": name, "experiment_id": exp, "status": "FINISHED",
                  "start_time": 1796460543210u64, "end_time": 1796460544689u64, "lifecycle_stage": stage,
                  "artifact_uri": "mlflow-artifacts:/1/x/artifacts" },
        "data": { "metrics": metrics, "params": params, "tags": tags },
        "inputs": {}
    })
}

async fn experiments(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let auth = headers.get("authorization").map(|h| h.to_str().unwrap().to_string());
    seen.bodies.lock().unwrap().push(("experiments".into(), body.clone(), auth));
    if *seen.fail.lock().unwrap() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "down for upgrade"})),
        );
    }
    // Two pages, as a server with many experiments answers.
    let answer = if body.get("page_token").is_none() {
        json!({ "experiments": [{"experiment_id": "0", "name": "Default", "lifecycle_stage": "active"}], "next_page_token": "p2" })
    } else {
        json!({ "experiments": [{"experiment_id": "1", "name": "resnet-sweep", "lifecycle_stage": "active"}] })
    };
    (StatusCode::OK, Json(answer))
}

async fn runs(State(seen): State<Seen>, Json(body): Json<Value>) -> Json<Value> {
    seen.bodies.lock().unwrap().push(("runs".into(), body.clone(), None));
    let m = |k: &str, v: Value| json!({"key": k, "value": v, "timestamp": 1796460544677u64, "step": 2});
    let kv = |k: &str, v: &str| json!({"key": k, "value": v});
    if body.get("page_token").is_none() {
        Json(json!({
            "runs": [
                run("aa01", "resnet-a", "1", "active", json!([m("accuracy", json!(0.71)), m("loss", json!("NaN"))]),
                    json!([kv("lr", "0.1")]), json!([kv("codecarbon.run_id", "r1"), kv("mlflow.user", "root")])),
                run("aa02", "deleted-one", "1", "deleted", json!([m("accuracy", json!(0.99))]), json!([]), json!([])),
            ],
            "next_page_token": "next"
        }))
    } else {
        Json(json!({ "runs": [
            run("aa03", "resnet-b", "1", "active", json!([m("accuracy", json!(0.83))]), json!([kv("lr", "0.01")]), json!([])),
        ]}))
    }
}

const LOG: &str = "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n\
                   2026-10-01T10:00:00,resnet-a,r1,600,0.0123,0.0301,FRA\n\
                   2026-10-01T11:00:00,resnet-b,r2,600,0.0234,0.0602,FRA\n";

#[tokio::test]
async fn an_mlflow_tracking_servers_runs_are_polled_and_joined() {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/prefix/api/2.0/mlflow/experiments/search", post(experiments))
        .route("/prefix/api/2.0/mlflow/runs/search", post(runs))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/prefix/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("emissions.csv"), LOG).unwrap();
    let catalog = SharedCatalog::new(carbon_core::catalog::load_dir(dir.path()).unwrap());
    let auth = carbon_live::mlflow::Auth { token: Some("t0ken".into()), user: None };
    let server = carbon_live::mlflow::MlflowServer::new(&base, auth, std::time::Duration::from_secs(5)).unwrap();
    let mut poller = carbon_dash::mlflow::Poller::new(server);
    assert_eq!(poller.poll(&catalog).await, Ok(true));
    let cat: Arc<Catalog> = catalog.current();
    let value = |run: &str, name: &str| cat.metrics().by_run.get(run).and_then(|m| m.get(name)).map(|j| j.value);
    // r1 by its codecarbon.run_id tag, r2 by its run name (the project_name): the rows left by one rule join by another.
    assert_eq!(
        (value("r1", "accuracy"), value("r2", "accuracy")),
        (Some(0.71), Some(0.83)),
        "{:#?}",
        cat.metrics().files
    );
    assert_eq!(value("r1", "loss"), None, "NaN is no value");
    assert_eq!(cat.metrics().params.get("r2").and_then(|p| p.get("lr")).map(String::as_str), Some("0.01"));
    assert!(!cat.metrics().by_run.values().any(|m| m.get("accuracy").is_some_and(|j| j.value == 0.99)), "deleted");
    let file = cat.files().iter().find(|f| f.path.starts_with("@mlflow/")).expect("listed on the Files page");
    assert!(file.join.as_deref().unwrap_or_default().contains("joined to 2 runs"), "{:?}", file.join);
    // Politely: active runs only, pages of a thousand, every page followed, signed in.
    let bodies = seen.bodies.lock().unwrap().clone();
    let runs_asked: Vec<&Value> = bodies.iter().filter(|(k, _, _)| k == "runs").map(|(_, b, _)| b).collect();
    assert_eq!(runs_asked.len(), 2, "both pages of runs");
    assert_eq!(runs_asked[1]["page_token"], "next");
    assert_eq!(runs_asked[0]["run_view_type"], "ACTIVE_ONLY");
    assert_eq!(runs_asked[0]["max_results"], 1000);
    let mut ids: Vec<&str> =
        runs_asked[0]["experiment_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["0", "1"], "experiments from both pages");
    assert!(bodies.iter().any(|(k, _, a)| k == "experiments" && a.as_deref() == Some("Bearer t0ken")));
    // The same answer again changes nothing; a failing server is said on the Files page, and the
    // runs it last gave stay.
    assert_eq!(poller.poll(&catalog).await, Ok(false));
    *seen.fail.lock().unwrap() = true;
    let why = poller.poll(&catalog).await.unwrap_err();
    assert!(why.contains("503") && why.contains("down for upgrade"), "{why}");
    let cat = catalog.current();
    let file = cat.files().iter().find(|f| f.path.starts_with("@mlflow/")).unwrap();
    assert!(
        file.problems.iter().any(|p| p.reason.contains("did not answer") && p.reason.contains("down for upgrade")),
        "{:?}",
        file.problems
    );
    assert_eq!(cat.metrics().by_run.get("r2").and_then(|m| m.get("accuracy")).map(|j| j.value), Some(0.83));
    // A server that never answered: its reason alone.
    let dead = carbon_live::mlflow::MlflowServer::new(
        "http://127.0.0.1:9/",
        Default::default(),
        std::time::Duration::from_secs(2),
    )
    .unwrap();
    let mut poller = carbon_dash::mlflow::Poller::new(dead);
    assert!(poller.poll(&catalog).await.is_err());
    let cat = catalog.current();
    let file = cat.files().iter().find(|f| f.path == "@mlflow/127.0.0.1:9").unwrap();
    assert_eq!(file.schema, "not read");
}

/// A real `mlflow server` (its process group, ended when dropped).
struct RealServer(std::process::Child);

impl Drop for RealServer {
    fn drop(&mut self) {
        // SAFETY: signals the process group this test started.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_real_mlflow_servers_runs_are_joined() {
    let (Ok(mlflow), Ok(python)) = (std::env::var("CARBON_DASH_TEST_MLFLOW"), std::env::var("CARBON_DASH_TEST_PYTHON"))
    else {
        assert!(std::env::var_os("CI").is_none(), "CARBON_DASH_TEST_MLFLOW is not set: run ./x test");
        eprintln!("CARBON_DASH_TEST_MLFLOW not set: the real MLflow server is not tested here");
        return;
    };
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = RealServer(
        std::process::Command::new(mlflow)
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.path().join("server.db").display()))
            .arg("--default-artifact-root")
            .arg(dir.path().join("artifacts"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    while !healthy(&format!("127.0.0.1:{port}")).await {
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "mlflow server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // A training script logging to it with MLflow's client, as researchers do.
    let script = r#"
import mlflow
mlflow.set_experiment("srv-sweep")
for i in range(3):
    with mlflow.start_run(run_name=f"trial-{i}"):
        mlflow.log_param("lr", 0.1 / (i + 1))
        for step in range(3):
            mlflow.log_metric("accuracy", 0.5 + i / 10 + step / 100, step=step)
        if i < 2:
            mlflow.set_tag("codecarbon.run_id", f"cc{i}")
with mlflow.start_run(run_name="gone") as r:
    mlflow.log_metric("accuracy", 0.99)
mlflow.delete_run(r.info.run_id)
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .env("MLFLOW_TRACKING_URI", &base)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(
        logs.path().join("emissions.csv"),
        "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n\
         2026-10-01T10:00:00,p,cc0,600,0.01,0.03,FRA\n2026-10-01T11:00:00,p,cc1,600,0.02,0.06,FRA\n\
         2026-10-01T12:00:00,trial-2,cc2,600,0.03,0.09,FRA\n",
    )
    .unwrap();
    let catalog = SharedCatalog::new(carbon_core::catalog::load_dir(logs.path()).unwrap());
    let server =
        carbon_live::mlflow::MlflowServer::new(&base, Default::default(), std::time::Duration::from_secs(10)).unwrap();
    let mut poller = carbon_dash::mlflow::Poller::new(server);
    assert_eq!(poller.poll(&catalog).await, Ok(true));
    let cat = catalog.current();
    let value = |run: &str| cat.metrics().by_run.get(run).and_then(|m| m.get("accuracy")).map(|j| j.value);
    // Two by their tag, the third by its run name (its project_name); the latest step's value.
    for (run, want) in [("cc0", 0.52), ("cc1", 0.62), ("cc2", 0.72)] {
        let got = value(run).unwrap_or_else(|| panic!("{run}: {:#?}", cat.metrics().files));
        assert!((got - want).abs() < 1e-9, "{run}: {got}");
    }
    assert_eq!(cat.metrics().params.get("cc1").and_then(|p| p.get("lr")).map(String::as_str), Some("0.05"));
    assert!(!cat.metrics().by_run.values().any(|m| m.get("accuracy").is_some_and(|j| j.value == 0.99)), "deleted");
}

/// Whether `GET /health` on `host` answers 200 (the server is up).
async fn healthy(host: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(host).await else { return false };
    let req = format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    answer.starts_with(b"HTTP/1.1 200")
}
