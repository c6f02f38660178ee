//! The store on both engines: the same tests, once on SQLite and once on PostgreSQL.

mod common;

use carbon_core::collect::{EmissionIn, RunIn};
use carbon_core::model::RunSource;
use carbon_store::{NewExperiment, Store, StoreError};

fn run_in(experiment: &str, t: &str) -> RunIn {
    RunIn {
        timestamp: t.into(),
        experiment_id: experiment.into(),
        os: Some("Linux, \"quoted\"".into()),
        codecarbon_version: Some("3.3.2".into()),
        cpu_count: Some(8.0),
        ..Default::default()
    }
}

fn record(run: &str, second: u32, kwh: f64) -> EmissionIn {
    EmissionIn {
        timestamp: format!("2026-11-29T18:40:{second:02}.000001+00:00"),
        run_id: run.into(),
        duration: 2.0,
        emissions_sum: Some(kwh * 0.05),
        cpu_energy: Some(kwh),
        energy_consumed: Some(kwh),
        cpu_power: Some(30.0),
        gpu_utilization_percent: Some(0.0),
        ..Default::default()
    }
}

async fn project_with_experiment(s: &Store, name: &str) -> (String, String) {
    s.add_project(name, Some("vision-team")).await.expect("project");
    let exp = s
        .add_experiment(
            name,
            &NewExperiment { name: "baseline".into(), country_iso_code: Some("fra".into()), ..Default::default() },
        )
        .await
        .expect("experiment");
    assert_eq!(exp.country_iso_code.as_deref(), Some("FRA"));
    let listed = s.experiments(Some(name)).await.expect("list");
    assert_eq!(listed[0].country_name.as_deref(), Some("France"), "named from the grid data");
    let token = s.add_token(name).await.expect("token");
    (exp.id, token)
}

#[tokio::test]
async fn projects_experiments_and_tokens_on_both_engines() {
    for spec in common::dbs().await.specs {
        let s = Store::open(&spec).await.expect("open");
        let (exp, token) = project_with_experiment(&s, "vision").await;
        let project = s.project("vision").await.expect("query").expect("project");
        assert_eq!(s.token_project(&token).await.expect("token"), Some(project.id.clone()), "{spec}");
        assert_eq!(s.experiment_project(&exp).await.expect("exp"), Some(project.id.clone()));
        // Kept hashed: the token itself is nowhere in the listing.
        let listed = s.tokens("vision").await.expect("list");
        assert_eq!(listed.len(), 1);
        assert!(token.starts_with(&listed[0].prefix) && listed[0].prefix.len() == 12);
        // Refusals name what is wrong.
        assert!(matches!(s.add_project("vision", None).await, Err(StoreError::Refused(_))));
        assert!(matches!(s.add_project("a/b", None).await, Err(StoreError::Refused(_))));
        let no_place = NewExperiment { name: "x".into(), ..Default::default() };
        assert!(matches!(s.add_experiment("vision", &no_place).await, Err(StoreError::Refused(_))));
        // Places the grid data does not know are refused, with what it has.
        let place = |iso: Option<&str>, cloud: Option<(&str, &str)>| NewExperiment {
            name: "placed".into(),
            country_iso_code: iso.map(str::to_string),
            cloud_provider: cloud.map(|c| c.0.to_string()),
            cloud_region: cloud.map(|c| c.1.to_string()),
            ..Default::default()
        };
        let e = s.add_experiment("vision", &place(Some("XYZ"), None)).await.expect_err("unknown country");
        assert!(e.to_string().contains("not in the grid data"), "{e}");
        let e = s.add_experiment("vision", &place(None, Some(("gcp", "europe-west99")))).await.expect_err("region");
        assert!(e.to_string().contains("europe-west1"), "names regions it has: {e}");
        let cloud =
            s.add_experiment("vision", &place(None, Some(("GCP", "europe-west1")))).await.expect("known region");
        assert_eq!(
            (cloud.cloud_provider.as_deref(), cloud.cloud_region.as_deref()),
            (Some("gcp"), Some("europe-west1"))
        );
        let e = s.add_experiment("nope", &no_place).await.expect_err("no project");
        assert!(e.to_string().contains("project add nope"), "{e}");
        // Another project's token cannot reach this one's experiment (checked by the server
        // with these two lookups).
        s.add_project("nlp", None).await.expect("second project");
        let other = s.add_token("nlp").await.expect("token");
        assert_ne!(s.token_project(&other).await.expect("token"), Some(project.id.clone()));
        // Revoked: refused at once.
        assert_eq!(s.revoke_token("vision", &listed[0].prefix).await.expect("revoke"), 1);
        assert_eq!(s.token_project(&token).await.expect("token"), None);
        assert!(s.revoke_token("vision", &listed[0].prefix).await.is_err(), "already revoked");
        assert_eq!(s.token_project("cdt_not-a-token").await.expect("token"), None);
        s.close().await;
    }
}

#[tokio::test]
async fn records_are_kept_once_and_read_back_as_a_run_on_both_engines() {
    for spec in common::dbs().await.specs {
        let s = Store::open(&spec).await.expect("open");
        let (exp, _) = project_with_experiment(&s, "vision").await;
        let id = s.add_run(run_in(&exp, "2026-11-29T18:39:22.172723+00:00")).await.expect("run");
        // The same run posted again (a retry after a lost answer) keeps its id.
        assert_eq!(s.add_run(run_in(&exp, "2026-11-29T18:39:22.172723+00:00")).await.expect("again"), id);
        let other = s.add_run(run_in(&exp, "2026-11-29T18:39:23+00:00")).await.expect("second run");
        assert_ne!(other, id);
        for (i, kwh) in [(4, 0.001), (2, 0.002), (6, 0.004)] {
            s.add_emission(record(&id, i, kwh)).await.expect("record");
        }
        // A retried record lands once; another record at a taken timestamp is refused.
        s.add_emission(record(&id, 6, 0.004)).await.expect("retry");
        let clash = s.add_emission(record(&id, 6, 0.5)).await.expect_err("same timestamp, other figures");
        assert!(matches!(clash, StoreError::Conflict(_)), "{clash}");
        assert_eq!(s.counts().await.expect("counts"), (2, 3), "{spec}");
        assert_eq!(s.run_project(&id).await.expect("q"), s.experiment_project(&exp).await.expect("q"));

        let files = s.run_files(None).await.expect("files");
        let file = files.iter().find(|f| f.report.path.ends_with(&id)).expect("the run's file");
        assert_eq!(file.report.path, format!("collected://vision-team/vision/baseline/{id}"));
        let run = &file.runs[0].run;
        assert_eq!(run.source, RunSource::Collected);
        assert_eq!(run.checkpoints, 3);
        assert!((run.energy_kwh.expect("energy") - 0.007).abs() < 1e-12);
        assert_eq!(run.os.as_deref(), Some("Linux, \"quoted\""), "quoted text survives the CSV");
        // The run without records yet is not shown (it is once its first record lands).
        assert!(!files.iter().any(|f| f.report.path.ends_with(&other)));
        assert_eq!(files.len(), 1);
        // One run asked for alone.
        let one = s.run_files(Some(std::slice::from_ref(&id))).await.expect("one");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].runs[0].run, file.runs[0].run);

        let csv = s.export_csv("vision").await.expect("export");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], carbon_core::collect::CSV_HEADER);
        assert_eq!(lines.len(), 4, "{csv}");
        // Posted at 4, 2, 6 s; rows in time order, the totals running: 0.002, 0.003, 0.007 kWh.
        let energy: Vec<f64> =
            lines[1..].iter().map(|l| l.split(',').nth(13).expect("energy").parse().expect("number")).collect();
        let times: Vec<&str> = lines[1..].iter().map(|l| l.split(',').next().expect("time")).collect();
        assert_eq!(times, ["2026-11-29T18:40:02.000001", "2026-11-29T18:40:04.000001", "2026-11-29T18:40:06.000001"]);
        assert!((energy[0] - 0.002).abs() < 1e-12 && (energy[1] - 0.003).abs() < 1e-12, "{energy:?}");
        // Rows in time order with running totals, readable by the log parser.
        let parsed = carbon_core::ingest::ingest_bytes("export.csv", csv.as_bytes()).expect("parse");
        assert!(parsed.report.problems.is_empty(), "{:?}", parsed.report.problems);
        assert!((parsed.runs[0].run.energy_kwh.expect("kwh") - 0.007).abs() < 1e-12);
        s.close().await;
    }
}

#[tokio::test]
async fn concurrent_writers_share_commits_and_each_write_is_answered() {
    for spec in common::dbs().await.specs {
        let s = Store::open(&spec).await.expect("open");
        let (exp, _) = project_with_experiment(&s, "vision").await;
        let id = s.add_run(run_in(&exp, "2026-11-29T18:39:22+00:00")).await.expect("run");
        let tasks: Vec<_> = (0..400)
            .map(|i| {
                let s = s.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    let mut e = record(&id, 0, 0.001);
                    e.timestamp = format!("2026-11-29T18:{:02}:{:02}+00:00", 40 + i / 60, i % 60);
                    s.add_emission(e).await
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("written");
        }
        assert_eq!(s.counts().await.expect("counts"), (1, 400), "{spec}");
        // Written in fewer transactions than writes: that is what lets one commit serve many.
        assert!(s.commits() < 400, "{} commits for 400 writes ({spec})", s.commits());
        // A bad write in the middle of a batch fails alone: the others of its transaction land.
        let mixed: Vec<_> = (0..101)
            .map(|i| {
                let s = s.clone();
                let mut e = record(if i == 50 { "no-such-run" } else { id.as_str() }, 0, 0.001);
                e.timestamp = format!("2026-11-30T00:{:02}:{:02}+00:00", i / 60, i % 60);
                tokio::spawn(async move { s.add_emission(e).await })
            })
            .collect();
        let mut failed = 0;
        for t in mixed {
            failed += usize::from(t.await.expect("task").is_err());
        }
        assert_eq!(failed, 1, "{spec}");
        assert_eq!(s.counts().await.expect("counts"), (1, 500), "{spec}");
        s.close().await;
    }
}

#[tokio::test]
async fn a_store_reopened_keeps_everything_and_is_not_migrated_twice() {
    for spec in common::dbs().await.specs {
        let s = Store::open(&spec).await.expect("open");
        let (exp, token) = project_with_experiment(&s, "vision").await;
        let id = s.add_run(run_in(&exp, "2026-11-29T18:39:22+00:00")).await.expect("run");
        s.add_emission(record(&id, 1, 0.001)).await.expect("record");
        s.close().await;
        let s = Store::open(&spec).await.expect("reopen");
        assert_eq!(s.counts().await.expect("counts"), (1, 1));
        assert!(s.token_project(&token).await.expect("token").is_some());
        s.close().await;
    }
}
