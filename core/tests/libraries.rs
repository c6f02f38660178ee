//! The real tracking libraries (MLflow, W&B offline, Optuna) write their stores beside real
//! CodeCarbon 3.3.2 logs (`libraries/write_results.py`, in the test environment `./x test`
//! makes); every run is joined with its final metrics and hyper-parameters, with nothing
//! declared.

use carbon_core::catalog::load_dir;
use std::collections::BTreeMap;

#[derive(serde::Deserialize)]
struct Expected {
    source: String,
    run_id: String,
    metrics: BTreeMap<String, f64>,
    params: BTreeMap<String, String>,
}

/// The python of the environment with CodeCarbon and the libraries (`./x test` makes it).
fn python() -> Option<String> {
    match std::env::var("CARBON_DASH_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "CARBON_DASH_TEST_PYTHON is not set: run ./x test");
            eprintln!("CARBON_DASH_TEST_PYTHON not set: the real libraries are not tested here");
            None
        }
    }
}

#[test]
fn mlflow_wandb_and_optuna_stores_join_their_runs_with_final_values() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/libraries/write_results.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(dir.path())
        .env("HOME", dir.path())
        .env("WANDB_DIR", dir.path())
        .output()
        .expect("run the libraries");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("the script prints what it wrote");
    let expected: Vec<Expected> = serde_json::from_str(last).expect("expected runs");
    assert_eq!(expected.len(), 6 + 3 + 6 + 6 + 7, "runs written: {stdout}");

    let cat = load_dir(dir.path()).expect("load");
    let joined = cat.metrics();
    let mut per_source: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for e in &expected {
        let tally = per_source.entry(e.source.as_str()).or_default();
        tally.1 += 1;
        let metrics = joined.by_run.get(&e.run_id);
        let all = e.metrics.iter().all(|(name, want)| {
            metrics.and_then(|m| m.get(name)).is_some_and(|got| (got.value - want).abs() <= 1e-9 * want.abs().max(1.0))
        });
        assert!(
            all,
            "{} run {}: want {:?}, got {:?}; files: {:#?}",
            e.source,
            e.run_id,
            e.metrics,
            metrics.map(|m| m.iter().map(|(k, v)| (k.clone(), v.value)).collect::<Vec<_>>()),
            joined.files
        );
        let params = joined.params.get(&e.run_id).cloned().unwrap_or_default();
        for (name, want) in &e.params {
            let got = params
                .get(name)
                .unwrap_or_else(|| panic!("{} run {}: no param {name}: {params:?}", e.source, e.run_id));
            let same = match (got.parse::<f64>(), want.parse::<f64>()) {
                (Ok(a), Ok(b)) => (a - b).abs() <= 1e-12 * b.abs(),
                _ => got == want,
            };
            assert!(same, "{} run {}: param {name} is {got}, want {want}", e.source, e.run_id);
        }
        // The emissions a store copied are how it joined, not a metric.
        assert!(metrics.is_none_or(|m| !m.contains_key("co2_kg")), "{}: co2_kg is the join key", e.source);
        tally.0 += 1;
    }
    // Each store says how it joined; the deleted MLflow run is not a result.
    let notes: Vec<String> =
        cat.files().iter().filter_map(|f| f.join.clone().map(|j| format!("{}: {j}", f.path))).collect();
    let mlflow = notes.iter().find(|n| n.starts_with("mlflow/mlflow.db")).expect("mlflow.db listed");
    assert!(mlflow.contains("joined to 6 runs") && mlflow.contains("codecarbon.run_id"), "{mlflow}");
    assert!(!joined.by_run.values().any(|m| m.get("accuracy").is_some_and(|j| j.value == 0.99)), "deleted run");
    let optuna = notes.iter().find(|n| n.starts_with("optuna/optuna.db")).expect("optuna.db listed");
    assert!(optuna.contains("joined to 6 runs"), "{optuna}");
    assert_eq!(joined.directions.get("accuracy"), Some(&true), "the study maximises accuracy");
    assert_eq!(joined.directions.get("latency_ms"), Some(&false));
    for n in &notes {
        eprintln!("{n}");
    }
    for (source, (joined, written)) in &per_source {
        eprintln!("{source}: {joined} of {written} runs joined");
    }
}
