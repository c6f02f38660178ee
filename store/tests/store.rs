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
        assert_eq!(s.record_rows().await.expect("rows"), 3);
        assert_eq!(s.run_project(&id).await.expect("q"), s.experiment_project(&exp).await.expect("q"));

        let (files, cursor) = s.runs_after(0).await.expect("files");
        assert!(cursor > 0);
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
        // Nothing changed after the cursor; a new record brings back its run alone.
        assert!(s.runs_after(cursor).await.expect("none").0.is_empty());
        s.add_emission(record(&other, 1, 0.001)).await.expect("record");
        let (changed, next) = s.runs_after(cursor).await.expect("changed");
        assert_eq!(changed.len(), 1);
        assert!(changed[0].report.path.ends_with(&other) && next > cursor);
        assert_eq!(s.runs_after(0).await.expect("all").0.len(), 2);

        let csv = s.export_csv("vision").await.expect("export");
        let lines: Vec<&str> = csv.lines().filter(|l| !l.contains(&other)).collect();
        assert_eq!(lines[0], format!("{},folded_records", carbon_core::collect::CSV_HEADER));
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
        let exported = parsed.runs.iter().find(|p| p.run.run_id == id).expect("the run");
        assert!((exported.run.energy_kwh.expect("kwh") - 0.007).abs() < 1e-12);
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

/// Records in a shuffled order over `runs` runs: (run index, second) pairs.
fn shuffled(n: usize, runs: usize) -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = (0..n).map(|i| (i % runs, i / runs)).collect();
    // A fixed permutation (a multiplicative step coprime with n), so the test is repeatable.
    let step = (1..n).rev().find(|s| gcd(*s, n) == 1 && *s * 3 > n).unwrap_or(1);
    let mut out = Vec::with_capacity(n);
    let mut k = 0;
    for _ in 0..n {
        out.push(v[k]);
        k = (k + step) % n;
    }
    v.clear();
    out
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn timed(run: &str, i: usize, kwh: f64) -> EmissionIn {
    let mut e = record(run, 0, kwh);
    let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("value").and_hms_opt(0, 0, 0).expect("value")
        + chrono::TimeDelta::seconds(120 * i as i64);
    e.timestamp = format!("{}+00:00", t.format("%Y-%m-%dT%H:%M:%S%.6f"));
    e.cpu_power = Some(i as f64);
    e
}

#[tokio::test]
async fn checkpoints_from_the_database_equal_the_records_thinned_and_paged() {
    for spec in common::dbs().await.specs {
        let s = Store::open(&spec).await.expect("open");
        let (exp, _) = project_with_experiment(&s, "vision").await;
        let id = s.add_run(run_in(&exp, "2026-11-01T00:00:00+00:00")).await.expect("run");
        const N: usize = 1000;
        // Posted out of order, in concurrent batches.
        let tasks: Vec<_> = shuffled(N, 1)
            .into_iter()
            .map(|(_, i)| {
                let (s, id) = (s.clone(), id.clone());
                tokio::spawn(async move { s.add_emission(timed(&id, i, 0.001 * (1.0 + (i % 7) as f64))).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("stored");
        }
        // Every checkpoint, a page at a time: the running sums of the records in time order.
        let mut all = Vec::new();
        loop {
            let (page, total) = s.checkpoints_page(&id, all.len(), 170).await.expect("page");
            assert_eq!(total, N);
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        assert_eq!(all.len(), N, "{spec}");
        let mut energy = 0.0;
        for (i, c) in all.iter().enumerate() {
            energy += 0.001 * (1.0 + (i % 7) as f64);
            assert_eq!(c.line, i + 1);
            assert_eq!(c.cpu_power_w, Some(i as f64), "record {i} in time order");
            assert!((c.energy_kwh.expect("energy") - energy).abs() < 1e-9, "{i}: {:?} vs {energy}", c.energy_kwh);
            assert!((c.duration_s.expect("duration") - 2.0 * (i + 1) as f64).abs() < 1e-9);
        }
        // Thinned by the database for a chart: at most 400, evenly spaced, the last kept.
        let (thin, total) = s.checkpoints(&id, 400).await.expect("thinned");
        assert_eq!(total, N);
        assert!(thin.len() <= 400 && thin.len() > 300, "{}", thin.len());
        assert_eq!(thin.last(), all.last());
        assert_eq!(thin[0], all[0]);
        // The run's totals (kept on write, no record read) agree with the records.
        let (files, _) = s.runs_after(0).await.expect("runs");
        let run = &files[0].runs[0].run;
        assert_eq!(run.checkpoints, N);
        assert!((run.energy_kwh.expect("energy") - energy).abs() < 1e-9);
        assert_eq!(run.cpu_power_w, Some((N - 1) as f64), "the newest record's mean, whatever the order posted");
        s.close().await;
    }
}

#[tokio::test]
async fn retention_folds_old_records_and_keeps_the_totals_exact() {
    for spec in common::dbs().await.specs {
        let s = Store::open(&spec).await.expect("open");
        let (exp, _) = project_with_experiment(&s, "vision").await;
        let id = s.add_run(run_in(&exp, "2026-11-01T00:00:00+00:00")).await.expect("run");
        // Two days of records, one every 2 minutes.
        const N: usize = 1440;
        for chunk in (0..N).collect::<Vec<_>>().chunks(200) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let (s, id) = (s.clone(), id.clone());
                    tokio::spawn(async move { s.add_emission(timed(&id, i, 0.0001 * (1 + i % 5) as f64)).await })
                })
                .collect();
            for t in tasks {
                t.await.expect("task").expect("stored");
            }
        }
        let before = s.runs_after(0).await.expect("runs").0[0].runs[0].run.clone();
        let last_before = s.checkpoints(&id, 400).await.expect("rows").0.last().cloned();
        // Fold everything before the second day.
        let cutoff = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("value").and_hms_opt(0, 0, 0).expect("value");
        let (runs, rows, left) = s.fold_records(cutoff.and_utc().timestamp_micros()).await.expect("fold");
        assert_eq!((runs, rows), (1, 720), "{spec}");
        assert_eq!(left, 24, "one row an hour");
        assert_eq!(s.record_rows().await.expect("rows"), 720 + 24);
        // The run's totals are the same; so is its last checkpoint, summed from the folded rows.
        let after = s.runs_after(0).await.expect("runs").0[0].runs[0].run.clone();
        assert_eq!(after, before);
        assert_eq!(s.counts().await.expect("counts"), (1, N as i64), "records counted as posted");
        let (rows_now, total) = s.checkpoints(&id, 400).await.expect("rows");
        assert_eq!(total, 744);
        let (a, b) = (last_before.expect("last"), rows_now.last().cloned().expect("last"));
        assert!((a.energy_kwh.expect("value") - b.energy_kwh.expect("value")).abs() < 1e-12);
        assert!((a.duration_s.expect("value") - b.duration_s.expect("value")).abs() < 1e-9);
        assert_eq!(a.timestamp, b.timestamp);
        // Folding again changes nothing; the export says which rows are folded.
        assert_eq!(s.fold_records(cutoff.and_utc().timestamp_micros()).await.expect("again").0, 0);
        let csv = s.export_csv("vision").await.expect("export");
        let folded: Vec<&str> = csv.lines().skip(1).filter(|l| l.ends_with(",30")).collect();
        assert_eq!(folded.len(), 24, "each folded row says it stands for 30 records");
        assert_eq!(csv.lines().skip(1).filter(|l| l.ends_with(',')).count(), 720);
        let parsed = carbon_core::ingest::ingest_bytes("export.csv", csv.as_bytes()).expect("parse");
        assert!((parsed.runs[0].run.energy_kwh.expect("value") - before.energy_kwh.expect("value")).abs() < 1e-12);
        // Late records of the folded day arrive while it is folded again: none is lost or
        // counted twice.
        let late: Vec<_> = (0..60)
            .map(|i| {
                let (s, id) = (s.clone(), id.clone());
                tokio::spawn(async move {
                    let mut e = timed(&id, 12 * i, 0.5);
                    e.timestamp = e.timestamp.replace(".000000+00:00", ".500000+00:00");
                    s.add_emission(e).await
                })
            })
            .collect();
        let folding = {
            let s = s.clone();
            tokio::spawn(async move { s.fold_records(cutoff.and_utc().timestamp_micros()).await })
        };
        for t in late {
            t.await.expect("task").expect("late record");
        }
        folding.await.expect("task").expect("fold");
        s.fold_records(cutoff.and_utc().timestamp_micros()).await.expect("fold again");
        assert_eq!(s.counts().await.expect("counts"), (1, N as i64 + 60));
        let run = s.runs_after(0).await.expect("runs").0[0].runs[0].run.clone();
        let (rows_now, _) = s.checkpoints(&id, 400).await.expect("rows");
        let summed = rows_now.last().and_then(|c| c.energy_kwh).expect("energy");
        assert!((run.energy_kwh.expect("value") - summed).abs() < 1e-9, "{:?} vs {summed}", run.energy_kwh);
        assert!((summed - before.energy_kwh.expect("value") - 30.0).abs() < 1e-9);
        s.close().await;
    }
}

/// Version 1's records table and a run in it, written as the release before this one wrote
/// them, then opened by this version: migrated in place, nothing lost.
#[tokio::test]
async fn a_database_of_the_previous_release_is_upgraded_in_place() {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    for spec in common::dbs().await.specs {
        sqlx::any::install_default_drivers();
        let url = if spec.starts_with("postgres") { spec.clone() } else { format!("sqlite://{spec}?mode=rwc") };
        let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
        let v1 = Migrator::with_migrations(vec![Migration::new(
            1,
            "collected runs".into(),
            MigrationType::Simple,
            sqlx::SqlStr::from_static(carbon_store::schema::V1),
            false,
        )]);
        v1.run(&pool).await.expect("version 1");
        for q in [
            "INSERT INTO projects (id, name, team, created_at) VALUES ('p1', 'vision', 'cv', 1)",
            "INSERT INTO experiments (id, project_id, name, country_iso_code, created_at) VALUES ('e1', 'p1', 'base', 'FRA', 1)",
            "INSERT INTO tokens (hash, prefix, project_id, created_at) VALUES ('h', 'cdt_01234567', 'p1', 1)",
            "INSERT INTO runs (id, body_hash, experiment_id, timestamp, received_at, cpu_model) VALUES ('r1', 'b1', 'e1', '2026-11-29T18:39:22+00:00', 1, 'Xeon')",
            "INSERT INTO runs (id, body_hash, experiment_id, timestamp, received_at) VALUES ('r2', 'b2', 'e1', '2026-11-29T18:39:23+00:00', 1)",
        ] {
            sqlx::query(q).execute(&pool).await.expect(q);
        }
        // r1: three records posted out of order (one with a +01:00 offset, so its wall clock
        // sorts last but its instant first); r2: none.
        for (t, kwh, power, at) in [
            ("2026-11-29T18:40:04+00:00", 0.002, 31.0, 2),
            ("2026-11-29T19:40:02+01:00", 0.001, 30.0, 1),
            ("2026-11-29T18:40:06+00:00", 0.004, 32.0, 3),
        ] {
            sqlx::query(
                "INSERT INTO emissions (run_id, timestamp, body_hash, received_at, duration, emissions_sum,
                    emissions_rate, cpu_power, cpu_energy, energy_consumed) VALUES ('r1', $1, $2, $3, 2, $4, $5, $6, $7, $7)",
            )
            .bind(t)
            .bind(format!("h{at}"))
            .bind(at as i64)
            .bind(kwh * 0.05)
            .bind(kwh * 0.05 / 2.4)
            .bind(power)
            .bind(kwh)
            .execute(&pool)
            .await
            .expect("record");
        }
        pool.close().await;

        let s = Store::open(&spec).await.expect("open and upgrade");
        assert_eq!(s.counts().await.expect("counts"), (2, 3), "{spec}");
        assert_eq!(s.tokens("vision").await.expect("tokens")[0].prefix, "cdt_01234567");
        let (files, cursor) = s.runs_after(0).await.expect("runs");
        assert_eq!(files.len(), 1, "the run with records");
        let run = &files[0].runs[0].run;
        assert_eq!((run.checkpoints, run.cpu_model.as_deref()), (3, Some("Xeon")));
        assert!((run.energy_kwh.expect("value") - 0.007).abs() < 1e-12);
        // The interval from emissions over rate (2.4 s), as version 1 read it back.
        assert!((run.duration_s.expect("value") - 7.2).abs() < 1e-9, "{:?}", run.duration_s);
        assert_eq!(run.cpu_power_w, Some(32.0), "the newest record's");
        let (rows, _) = s.checkpoints("r1", 400).await.expect("rows");
        assert_eq!(rows.iter().map(|c| c.cpu_power_w.expect("value")).collect::<Vec<_>>(), [30.0, 31.0, 32.0]);
        // The old records table is gone; new records go on from the copied sequence.
        let old = s.export_csv("vision").await.expect("export");
        assert_eq!(old.lines().count(), 4);
        let mut e = record("r1", 8, 0.001);
        e.timestamp = "2026-11-29T18:40:08+00:00".into();
        s.add_emission(e).await.expect("new record");
        let (changed, next) = s.runs_after(cursor).await.expect("after");
        assert_eq!((changed.len(), changed[0].runs[0].run.checkpoints), (1, 4));
        assert!(next > cursor);
        s.close().await;
        // Opened again: nothing to upgrade, nothing lost.
        let s = Store::open(&spec).await.expect("reopen");
        assert_eq!(s.counts().await.expect("counts"), (2, 4));
        s.close().await;
    }
}

/// A tracker's clock cannot make PostgreSQL partitions at will: records of months far from now
/// are stored (in the default partition), and only months near now get a partition of their own.
#[tokio::test]
async fn partitions_are_made_only_for_months_near_now() {
    for spec in common::dbs().await.specs.into_iter().filter(|s| s.starts_with("postgres")) {
        let s = Store::open(&spec).await.expect("open");
        let (exp, _) = project_with_experiment(&s, "vision").await;
        let id = s.add_run(run_in(&exp, "2026-11-29T18:39:22+00:00")).await.expect("run");
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
        let now = chrono::DateTime::from_timestamp(secs as i64, 0).expect("now");
        for t in ["1999-01-01T00:00:00+00:00", "2090-06-01T00:00:00+00:00", "1970-01-01T00:00:00Z"]
            .into_iter()
            .map(str::to_string)
            .chain([now.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()])
        {
            let mut e = record(&id, 0, 0.001);
            e.timestamp = t;
            s.add_emission(e).await.expect("stored");
        }
        assert_eq!(s.counts().await.expect("counts"), (1, 4));
        let pool = sqlx::AnyPool::connect(&spec).await.expect("connect");
        let names: Vec<String> = sqlx::query(
            "SELECT CAST(c.relname AS TEXT) AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'emissions' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .expect("partitions")
        .iter()
        .map(|r| sqlx::Row::try_get(r, "name").expect("name"))
        .collect();
        let this_month = now.format("emissions_y%Ym%m").to_string();
        assert_eq!(names, ["emissions_default".to_string(), this_month], "{spec}");
        pool.close().await;
        s.close().await;
    }
}

/// A database the previous release wrote (versions 1 and 2) gets the tables of who may see what
/// in place: its projects, tokens and runs stay, and members, read tokens, sessions and sign-ins
/// work on both engines.
#[tokio::test]
async fn the_previous_releases_database_gets_members_tokens_and_sessions_in_place() {
    use carbon_store::people::{Scope, SignIn};
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use sqlx::SqlSafeStr;
    for spec in common::dbs().await.specs {
        sqlx::any::install_default_drivers();
        let postgres = spec.starts_with("postgres");
        let url = if postgres { spec.clone() } else { format!("sqlite://{spec}?mode=rwc") };
        let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
        let v2 = if postgres { carbon_store::schema::v2_postgres() } else { carbon_store::schema::v2_sqlite() };
        Migrator::with_migrations(vec![
            Migration::new(
                1,
                "collected runs".into(),
                MigrationType::Simple,
                sqlx::SqlStr::from_static(carbon_store::schema::V1),
                false,
            ),
            Migration::new(
                2,
                "run totals, record sequence".into(),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(v2).into_sql_str(),
                false,
            ),
        ])
        .run(&pool)
        .await
        .expect("versions 1 and 2");
        sqlx::query("DROP TABLE emissions_v1").execute(&pool).await.expect("as the release left it");
        for q in [
            "INSERT INTO projects (id, name, team, created_at) VALUES ('p1', 'vision', 'cv', 1)",
            "INSERT INTO tokens (hash, prefix, project_id, created_at) VALUES ('h', 'cdt_01234567', 'p1', 1)",
        ] {
            sqlx::query(q).execute(&pool).await.expect(q);
        }
        pool.close().await;

        let s = Store::open(&spec).await.expect("open and upgrade");
        assert_eq!(s.tokens("vision").await.expect("tokens")[0].prefix, "cdt_01234567", "{spec}");
        assert_eq!(s.projects().await.expect("projects")[0].team.as_deref(), Some("cv"));
        // Members, matched without regard to case.
        assert!(s.add_member("cv", "Ada@Example.org").await.expect("add"));
        assert!(!s.add_member("cv", "ada@example.org").await.expect("again"), "once");
        assert_eq!(s.teams_of("ADA@example.org").await.expect("teams"), ["cv"]);
        assert!(s.add_member("a/b", "ada@example.org").await.is_err(), "a team name is a folder's");
        // Read tokens: kept hashed, scoped, revocable.
        let team = s.add_read_token(Some("cv")).await.expect("token");
        let all = s.add_read_token(None).await.expect("token");
        assert_eq!(s.read_token_scope(&team).await.expect("scope"), Some(Scope::Team("cv".into())));
        assert_eq!(s.read_token_scope(&all).await.expect("scope"), Some(Scope::All));
        let last = if all.ends_with('0') { '1' } else { '0' };
        assert_eq!(s.read_token_scope(&format!("{}{last}", &all[..67])).await.expect("scope"), None, "one digit off");
        assert_eq!(s.revoke_read_token(&team[..12]).await.expect("revoke"), 1);
        assert_eq!(s.read_token_scope(&team).await.expect("scope"), None, "refused at once");
        assert!(s.read_tokens().await.expect("list").iter().all(|t| !t.prefix.is_empty() && t.prefix.len() == 12));
        // A sign-in is taken once; a session ends when it expires or is ended.
        let pending =
            SignIn { browser_hash: "b".into(), nonce: "n".into(), verifier: "v".into(), next: "/runs".into() };
        s.add_sign_in("state-1", &pending).await.expect("sign-in");
        assert_eq!(s.take_sign_in("state-1", "other").await.expect("take"), None, "another browser");
        assert_eq!(s.take_sign_in("state-1", "b").await.expect("take"), Some(pending));
        assert_eq!(s.take_sign_in("state-1", "b").await.expect("again"), None, "a replayed state");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_micros() as i64;
        let live = s.add_session("ada@example.org", &["cv".into()], now + 60_000_000).await.expect("session");
        let gone = s.add_session("ada@example.org", &[], now - 1).await.expect("session");
        assert_eq!(s.session(&live).await.expect("session").map(|x| x.groups), Some(vec!["cv".to_string()]));
        assert_eq!(s.session(&gone).await.expect("expired"), None);
        assert_eq!(s.sessions().await.expect("list").len(), 1);
        assert!(s.end_session(&live).await.expect("end"));
        assert_eq!(s.session(&live).await.expect("ended"), None);
        let again = s.add_session("ada@example.org", &[], now + 60_000_000).await.expect("session");
        assert_eq!(s.end_sessions_of("Ada@Example.org").await.expect("end all"), 1);
        assert_eq!(s.session(&again).await.expect("ended"), None);
        s.close().await;
        // Opened again: nothing to upgrade, nothing lost.
        let s = Store::open(&spec).await.expect("reopen");
        assert_eq!(s.members(None).await.expect("members").len(), 1);
        assert_eq!(s.read_tokens().await.expect("tokens").len(), 2);
        s.close().await;
    }
}

/// Budgets are set, replaced, listed and removed; an alert is claimed by one of two processes on
/// the same store, once, and retried until it is delivered.
#[tokio::test]
async fn budgets_and_alerts_claimed_once_across_two_processes_on_both_engines() {
    use carbon_core::budget::{Budget, Period, Quantity, Scope};
    for spec in common::dbs().await.specs {
        let (a, b) = (Store::open(&spec).await.expect("open"), Store::open(&spec).await.expect("second process"));
        let mut budget = Budget {
            scope: Scope::Team("nlp".into()),
            quantity: Quantity::Co2Kg,
            amount: 500.0,
            period: Period::Month,
            thresholds: vec![80.0, 100.0],
            source: String::new(),
        };
        a.set_budget(&budget).await.expect("set");
        budget.amount = 400.0;
        a.set_budget(&budget).await.expect("replace");
        budget.period = Period::Quarter;
        b.set_budget(&budget).await.expect("a quarter too");
        let listed = b.budgets().await.expect("list");
        assert_eq!(listed.len(), 2, "{spec}");
        assert_eq!(
            (listed[0].amount, listed[0].period, listed[0].thresholds.clone()),
            (400.0, Period::Month, vec![80.0, 100.0])
        );
        assert!(a.set_budget(&Budget { amount: -1.0, ..budget.clone() }).await.is_err());
        let alert = |period: &str| carbon_store::budgets::Pending {
            budget_key: listed[0].key(),
            period_start: period.into(),
            threshold: 80.0,
            target: "hook-1".into(),
            crossed: "spent".into(),
            attempts: 0,
            attempted_at: 0,
            body: "{}".into(),
        };
        // Both processes see the threshold crossed at once: one sends.
        let november = alert("2026-11-01");
        let (x, y) = tokio::join!(a.claim_alert(&november), b.claim_alert(&november));
        assert_eq!([x.expect("claim"), y.expect("claim")].iter().filter(|c| **c).count(), 1, "{spec}");
        assert!(!a.claim_alert(&alert("2026-11-01")).await.expect("again"));
        assert!(a.claim_alert(&alert("2026-12-01")).await.expect("next period"));
        let hooks = ["hook-1".to_string()];
        assert!(a.undelivered_alerts(&["another".into()]).await.expect("none").is_empty(), "only known webhooks'");
        let pending = a.undelivered_alerts(&hooks).await.expect("pending");
        assert_eq!(pending.len(), 2);
        // One attempt at a time: the second process's lease on the same reading fails.
        let at = 1_000_000;
        let (x, y) = tokio::join!(a.lease_alert(&pending[0], at), b.lease_alert(&pending[0], at));
        let (x, y) = (x.expect("lease"), y.expect("lease"));
        assert_eq!(x.is_some() as u8 + y.is_some() as u8, 1);
        let lease = x.or(y).expect("one lease");
        // A process without the lease records nothing; the holder records its failure.
        b.alert_attempt(&pending[0], "not-the-lease", Some("late")).await.expect("late");
        assert_eq!(b.undelivered_alerts(&hooks).await.expect("pending")[0].attempts, 0);
        a.alert_attempt(&pending[0], &lease, Some("503 from the receiver")).await.expect("failed");
        let again = b.undelivered_alerts(&hooks).await.expect("pending");
        assert_eq!(again[0].attempts, 1);
        assert!(again[0].attempted_at > 0);
        let retry = b.lease_alert(&again[0], at + 1).await.expect("retry").expect("leased");
        b.alert_attempt(&again[0], &retry, None).await.expect("delivered");
        assert_eq!(a.undelivered_alerts(&hooks).await.expect("pending").len(), 1);
        assert_eq!(a.alerts(10).await.expect("listed").iter().filter(|s| s.sent_at.is_some()).count(), 1);
        assert_eq!(b.remove_budget(&Scope::Team("nlp".into()), Some(Period::Quarter)).await.expect("remove"), 1);
        assert!(b.remove_budget(&Scope::Team("nope".into()), None).await.is_err());
        a.close().await;
        b.close().await;
    }
}
