//! Metrics files beside the logs, joined to runs on small trees of each format: exact joins by
//! run id, guesses by folder (flagged), conflicts, and files that cannot be joined, with why.
#![allow(clippy::unwrap_used)]

use carbon_core::catalog::load_dir;
use carbon_core::model::DatasetMode;
use carbon_core::pareto::{Direction, ParetoQuery};
use std::path::Path;

const HEADER: &str =
    "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,\
ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,country_name,country_iso_code,region,\
cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,\
latitude,ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,ram_utilization_percent,\
ram_used_gb,on_cloud,pue,wue";

/// An emissions.csv of runs `(run_id, energy kWh)`, all in France, experiment `exp`.
fn log(runs: &[(&str, f64)], exp: &str) -> String {
    let mut s = format!("{HEADER}\n");
    for (i, (id, kwh)) in runs.iter().enumerate() {
        s.push_str(&format!(
            "2026-05-18T1{i}:00:00,proj,{id},{exp},3600,{},0.0,10,100,5,{},{},{},{kwh},0,France,FRA,,,,Linux,3.11,3.2.6,8,\
             Xeon,1,1 x NVIDIA A100,2.35,48.85,64,machine,20,90,30,19,N,1.0,0.0\n",
            kwh * 0.05,
            kwh * 0.25,
            kwh * 0.5,
            kwh * 0.25
        ));
    }
    s
}

fn write(dir: &Path, files: &[(&str, String)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn value(cat: &carbon_core::catalog::Catalog, run: &str, name: &str) -> Option<f64> {
    cat.metrics().by_run.get(run).and_then(|m| m.get(name)).map(|j| j.value)
}

fn note(cat: &carbon_core::catalog::Catalog, path: &str) -> String {
    let f = cat.files().iter().find(|f| f.path == path).unwrap_or_else(|| panic!("{path} not listed"));
    f.join.clone().unwrap_or_else(|| panic!("{path} has no join note"))
}

#[test]
fn each_format_joins_by_run_id_or_by_its_folder_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            // A sweep with a long metrics.csv naming its runs (and one that is not in the logs).
            ("sweep/emissions.csv", log(&[("s1", 0.1), ("s2", 0.2), ("s3", 0.4)], "sweep")),
            (
                "sweep/metrics.csv",
                "run_id,name,value,step\ns1,accuracy,0.80,1\ns1,accuracy,0.85,2\ns2,accuracy,0.90,2\ns3,accuracy,0.91,2\n\
                 gone,accuracy,0.99,2\n"
                    .into(),
            ),
            // A Trainer output folder: one run; the final results beat the state; a checkpoint's
            // state is not read.
            ("hf/run-a/emissions.csv", log(&[("h1", 0.3)], "hf")),
            (
                "hf/run-a/trainer_state.json",
                r#"{"log_history":[{"step":10,"eval_accuracy":0.70},{"step":20,"eval_accuracy":0.75,"eval_loss":0.6}]}"#
                    .into(),
            ),
            ("hf/run-a/all_results.json", r#"{"eval_accuracy":0.77,"epoch":3.0}"#.into()),
            ("hf/run-a/checkpoint-10/trainer_state.json", r#"{"log_history":[{"step":10,"eval_accuracy":0.1}]}"#.into()),
            // A folder with two runs and a results file that names neither.
            ("two/emissions.csv", log(&[("t1", 0.1), ("t2", 0.1)], "two")),
            ("two/all_results.json", r#"{"eval_accuracy":0.5}"#.into()),
            // The same, naming its run: an exact join.
            ("named/emissions.csv", log(&[("n1", 0.1), ("n2", 0.1)], "named")),
            ("named/all_results.json", r#"{"eval_accuracy":0.55,"codecarbon_run_id":"n2"}"#.into()),
            // W&B, naming its run by key.
            ("wb/emissions.csv", log(&[("w1", 0.2), ("w2", 0.2)], "wb")),
            ("wb/wandb/run-20260518_100000-abc/files/wandb-summary.json", r#"{"acc":0.66,"_step":5,"codecarbon_run_id":"w2"}"#.into()),
            // MLflow's file store, tagged; and a deleted run in its trash.
            ("ml/emissions.csv", log(&[("m1", 0.2)], "ml")),
            ("ml/mlruns/0/r9/meta.yaml", "run_id: r9\n".into()),
            ("ml/mlruns/0/r9/tags/codecarbon.run_id", "m1".into()),
            ("ml/mlruns/0/r9/metrics/val/acc", "1700000000000 0.5 1\n1700000001000 0.6 2\n".into()),
            ("ml/mlruns/.trash/r8/meta.yaml", "run_id: r8\n".into()),
            ("ml/mlruns/.trash/r8/metrics/acc", "1700000000000 0.1 1\n".into()),
            // A results file with no log anywhere above it.
            ("nowhere/all_results.json", r#"{"eval_accuracy":0.5}"#.into()),
        ],
    );
    let cat = load_dir(dir.path()).unwrap();
    // Exact joins by run id.
    assert_eq!(value(&cat, "s1", "accuracy"), Some(0.85), "the highest step wins");
    assert_eq!(value(&cat, "s3", "accuracy"), Some(0.91));
    let n = note(&cat, "sweep/metrics.csv");
    assert!(n.contains("joined to 3 runs by run_id") && n.contains("gone"), "{n}");
    assert_eq!(value(&cat, "w2", "acc"), Some(0.66));
    assert_eq!(value(&cat, "w1", "acc"), None);
    assert_eq!(value(&cat, "m1", "val/acc"), Some(0.6));
    assert!(note(&cat, "ml/mlruns/0/r9/meta.yaml").contains("joined to 1 run by run_id"));
    assert!(!cat.files().iter().any(|f| f.path.contains(".trash")), "MLflow's trash is not read");
    // The Trainer folder: a guess, flagged; all_results.json wins over the state, which says so.
    let j = &cat.metrics().by_run["h1"]["eval_accuracy"];
    assert_eq!(j.value, 0.77);
    assert!(j.guess.as_deref().is_some_and(|g| g.contains("the only run logged in hf/run-a/")), "{j:?}");
    assert_eq!(value(&cat, "h1", "eval_loss"), Some(0.6), "the state's other metrics still join");
    let n = note(&cat, "hf/run-a/trainer_state.json");
    assert!(n.contains("a guess") && n.contains("0.75 here and 0.77 in hf/run-a/all_results.json (used)"), "{n}");
    assert!(!cat.files().iter().any(|f| f.path.contains("checkpoint-10")), "checkpoint states are not read");
    // Files that cannot be joined are listed with the reason.
    let two = cat.files().iter().find(|f| f.path == "two/all_results.json").unwrap();
    assert!(two.join_failed);
    let two = note(&cat, "two/all_results.json");
    assert!(two.contains("two/ logs 2 runs") && two.contains("give each run its own output_dir"), "{two}");
    assert_eq!(value(&cat, "n2", "eval_accuracy"), Some(0.55));
    assert!(note(&cat, "named/all_results.json").contains("joined to 1 run by run_id"));
    assert!(note(&cat, "nowhere/all_results.json").contains("no CodeCarbon log in nowhere/"));
    // Metrics files hold no runs: the run count is the logs' alone.
    assert_eq!(cat.runs(DatasetMode::Latest).len(), 11);
}

#[test]
fn a_sweep_shows_its_front_knee_and_the_co2_of_beaten_runs() {
    let dir = tempfile::tempdir().unwrap();
    // (run, kWh, accuracy): a concave sweep with beaten runs.
    let sweep = [
        ("r01", 0.1, 0.80),
        ("r02", 0.2, 0.87),
        ("r03", 0.4, 0.909),
        ("r04", 1.0, 0.910),
        ("r05", 2.1, 0.912),
        ("r06", 1.5, 0.90),
        ("r07", 0.3, 0.85),
        ("r08", 0.8, 0.88),
    ];
    let runs: Vec<(&str, f64)> = sweep.iter().map(|(r, e, _)| (*r, *e)).collect();
    let mut metrics = String::from("run_id,accuracy,loss\n");
    for (r, _, a) in &sweep {
        metrics.push_str(&format!("{r},{a},{}\n", 1.0 - a));
    }
    write(dir.path(), &[("p/emissions.csv", log(&runs, "sweep")), ("p/metrics.csv", metrics)]);
    let cat = load_dir(dir.path()).unwrap();
    let v = cat.pareto(&ParetoQuery { experiment: Some("sweep".into()), ..ParetoQuery::default() });
    assert_eq!(v.metric.as_deref(), Some("accuracy"), "{:?}", v.metrics);
    assert_eq!(v.direction, Some(Direction::Higher));
    assert_eq!(v.points.len(), 8);
    assert_eq!(v.front, ["r01", "r02", "r03", "r04", "r05"]);
    assert_eq!(v.knee_run_id.as_deref(), Some("r03"));
    // Within 1 point of 0.912: r03 (0.909).
    assert_eq!(v.within_delta_run_id.as_deref(), Some("r03"));
    assert_eq!(v.dominated_runs, 3);
    let beaten: f64 = ["r06", "r07", "r08"]
        .iter()
        .map(|id| cat.run(id, DatasetMode::Latest).unwrap().assessment.co2_kg.unwrap())
        .sum();
    assert!((v.dominated_co2_kg - beaten).abs() < 1e-12, "{} vs {beaten}", v.dominated_co2_kg);
    assert!(v.dominated_co2_kg_low <= v.dominated_co2_kg && v.dominated_co2_kg <= v.dominated_co2_kg_high);
    assert!(
        v.findings.iter().any(|f| f.contains("that another run matched or beat for no more CO₂e")),
        "{:?}",
        v.findings
    );
    // The loss goes down: its front is the same runs, read the other way.
    let l = cat.pareto(&ParetoQuery { metric: Some("loss".into()), ..ParetoQuery::default() });
    assert_eq!(l.direction, Some(Direction::Lower));
    assert_eq!(l.front, v.front);
    // Asked to go the other way, the cheapest run alone is best.
    let up = cat.pareto(&ParetoQuery {
        metric: Some("loss".into()),
        direction: Some(Direction::Higher),
        ..ParetoQuery::default()
    });
    assert_eq!(up.front, ["r01"]);
    // A selection without metrics says how to add them.
    let none = cat.pareto(&ParetoQuery { project: Some("other".into()), ..ParetoQuery::default() });
    assert!(none.points.is_empty() && none.findings[0].contains("metrics.csv"), "{:?}", none.findings);
}

#[test]
fn an_oversized_metrics_file_is_not_read_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("a/emissions.csv", log(&[("a1", 0.1)], "a"))]);
    // Sparse: large on paper, nothing on disk. JSON is parsed whole, so its limit is lower.
    for (name, size, says) in [("trainer_state.json", 33u64 << 20, "32 MiB"), ("metrics.csv", 129 << 20, "128 MiB")] {
        std::fs::File::create(dir.path().join("a").join(name)).unwrap().set_len(size).unwrap();
        let cat = load_dir(dir.path()).unwrap();
        let r = cat.files().iter().find(|f| f.path == format!("a/{name}")).unwrap();
        assert_eq!(r.schema, "not read");
        assert!(
            r.problems[0].reason.contains(&format!("larger than the {says} a metrics file of this kind may have")),
            "{:?}",
            r.problems
        );
        assert!(cat.metrics().by_run.is_empty());
        // Still too large is no change at the next check.
        assert!(carbon_core::catalog::changes_on_disk(dir.path(), &cat).is_empty(), "{name}");
        std::fs::remove_file(dir.path().join("a").join(name)).unwrap();
    }
}

#[test]
fn mlflow_runs_join_by_tag_only_follow_no_link_and_change_when_a_value_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("emissions.csv", log(&[("only", 0.1)], "e")),
            // Tagged; untagged (no guess, even with one run above); deleted.
            ("mlruns/0/a/meta.yaml", "run_id: a\nlifecycle_stage: active\n".into()),
            ("mlruns/0/a/tags/codecarbon.run_id", "only\n".into()),
            ("mlruns/0/a/metrics/acc", "1700000000000 0.5 1\n".into()),
            ("mlruns/0/b/meta.yaml", "run_id: b\n".into()),
            ("mlruns/0/b/metrics/acc", "1700000000000 0.9 1\n".into()),
            ("mlruns/0/c/meta.yaml", "run_id: c\nlifecycle_stage: deleted\n".into()),
            ("mlruns/0/c/tags/codecarbon.run_id", "only".into()),
            ("mlruns/0/c/metrics/acc", "1700000000000 0.1 1\n".into()),
            // A wide file with too many columns, and a run id that is not one.
            ("wide/emissions.csv", log(&[("w", 0.1)], "e")),
            (
                "wide/metrics.csv",
                format!(
                    "run_id,{}\nw,{}\n",
                    (0..1001).map(|i| format!("m{i}")).collect::<Vec<_>>().join(","),
                    vec!["1"; 1001].join(",")
                ),
            ),
            ("long/emissions.csv", log(&[("l", 0.1)], "e")),
            ("long/metrics.csv", format!("run_id,name,value\n{},acc,0.5\n", "x".repeat(300))),
            // A results file one folder below the run's: no climbing.
            ("hf/emissions.csv", log(&[("h", 0.1)], "e")),
            ("hf/eval/all_results.json", r#"{"eval_accuracy": 0.8}"#.into()),
            // W&B: the folder holding wandb/ is the run's.
            ("wb/emissions.csv", log(&[("wb1", 0.1)], "e")),
            ("wb/wandb/run-1/files/wandb-summary.json", r#"{"acc": 0.7}"#.into()),
        ],
    );
    // An MLflow run whose metrics folder is a link elsewhere: not followed.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "1700000000000 42 1\n").unwrap();
    std::fs::create_dir_all(dir.path().join("mlruns/0/d")).unwrap();
    std::fs::write(dir.path().join("mlruns/0/d/meta.yaml"), "run_id: d\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("mlruns/0/d/metrics")).unwrap();
    let cat = load_dir(dir.path()).unwrap();
    assert_eq!(value(&cat, "only", "acc"), Some(0.5), "the tagged run; the deleted one gives nothing");
    assert!(note(&cat, "mlruns/0/b/meta.yaml").contains("not joined: the MLflow run has no codecarbon.run_id tag"));
    let c = cat.files().iter().find(|f| f.path == "mlruns/0/c/meta.yaml").unwrap();
    assert!(c.problems.iter().any(|p| p.reason.contains("a deleted MLflow run")));
    assert!(!cat.files().iter().any(|f| f.path == "mlruns/0/d/meta.yaml"), "a linked metrics folder is no MLflow run");
    assert!(!cat.metrics().by_run.values().any(|m| m.values().any(|j| j.value == 42.0)));
    let wide = cat.files().iter().find(|f| f.path == "wide/metrics.csv").unwrap();
    assert!(wide.problems[0].reason.contains("1002 columns, more than the 1000"), "{:?}", wide.problems);
    let long = cat.files().iter().find(|f| f.path == "long/metrics.csv").unwrap();
    assert!(long.problems[0].reason.contains("a run_id of 300 bytes"), "{:?}", long.problems);
    assert!(note(&cat, "hf/eval/all_results.json").contains("no CodeCarbon log in hf/eval/"));
    assert!(cat.metrics().by_run["wb1"]["acc"].guess.as_deref().is_some_and(|g| g.contains("wb/")));

    // MLflow appends a value to the metric's file, not to meta.yaml: the check sees it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let acc = dir.path().join("mlruns/0/a/metrics/acc");
    std::fs::write(&acc, "1700000000000 0.5 1\n1700000001000 0.75 2\n").unwrap();
    let mut cat = cat;
    let changes = carbon_core::catalog::changes_on_disk(dir.path(), &cat);
    assert!(
        changes.iter().any(|c| c.path == "mlruns/0/a/meta.yaml"),
        "{:?}",
        changes.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
    cat.apply(changes);
    assert_eq!(value(&cat, "only", "acc"), Some(0.75));
    assert!(carbon_core::catalog::changes_on_disk(dir.path(), &cat).is_empty(), "and then nothing more");
}

#[test]
fn an_appended_checkpoint_keeps_the_join_and_a_new_run_redoes_it() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("p/emissions.csv", log(&[("a", 0.1)], "e")), ("p/all_results.json", r#"{"acc": 0.5}"#.into())],
    );
    let mut cat = load_dir(dir.path()).unwrap();
    let before = cat.clone();
    assert_eq!(value(&cat, "a", "acc"), Some(0.5), "the folder's only run");
    // A later checkpoint of the same run: the same inputs, the same join.
    let more = log(&[("a", 0.2)], "e");
    let row = more.lines().nth(1).unwrap();
    std::fs::write(dir.path().join("p/emissions.csv"), format!("{}{row}\n", log(&[("a", 0.1)], "e"))).unwrap();
    assert_eq!(cat.apply(carbon_core::catalog::changes_on_disk(dir.path(), &cat)), 1);
    assert!(std::ptr::eq(before.metrics(), cat.metrics()), "not joined again");
    // A second run in the folder: the guess no longer holds, and the file says so.
    std::fs::write(dir.path().join("p/emissions.csv"), log(&[("a", 0.1), ("b", 0.1)], "e")).unwrap();
    cat.apply(carbon_core::catalog::changes_on_disk(dir.path(), &cat));
    assert_eq!(value(&cat, "a", "acc"), None);
    assert!(note(&cat, "p/all_results.json").contains("p/ logs 2 runs"));
}
