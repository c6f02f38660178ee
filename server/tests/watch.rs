//! Live watching on a temp folder: append, partial line, truncation, rotation, deletion.
#![allow(clippy::unwrap_used)]

use carbon_core::catalog::{load_dir, Catalog, SharedCatalog};
use carbon_core::model::DatasetMode;
use carbon_dash::watch::{check, watch, Announcer};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const HEADER: &str = "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n";

fn row(run: &str, secs: u32) -> String {
    format!(
        "2026-10-01T10:{:02}:{:02},p,{run},{secs},{},{},FRA\n",
        secs / 60,
        secs % 60,
        secs as f64 * 1e-5,
        secs as f64 * 2e-4
    )
}

/// Waits (up to 10 s) until the catalog satisfies `cond`.
fn eventually(cat: &SharedCatalog, what: &str, cond: impl Fn(&Catalog) -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if cond(&cat.current()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not seen within 10 s: {what}");
}

fn energy(cat: &Catalog, run: &str) -> Option<f64> {
    cat.run(run, DatasetMode::Latest).and_then(|r| r.energy_kwh)
}

#[test]
fn appends_partial_lines_truncation_rotation_and_deletion_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("team");
    std::fs::create_dir_all(&team).unwrap();
    let file = team.join("emissions.csv");
    std::fs::write(&file, format!("{HEADER}{}", row("r1", 10))).unwrap();
    let cat = SharedCatalog::new(load_dir(dir.path()).unwrap());
    let (tx, mut rx) = tokio::sync::broadcast::channel(16);
    let _watcher = watch(dir.path().to_path_buf(), cat.clone(), Announcer::new(tx)).unwrap();
    let append =
        |p: &Path, s: &str| std::fs::OpenOptions::new().append(true).open(p).unwrap().write_all(s.as_bytes()).unwrap();

    // A checkpoint appended by a running tracker.
    append(&file, &row("r1", 20));
    eventually(&cat, "the new checkpoint", |c| energy(c, "r1") == Some(20.0 * 2e-4));
    assert!(rx.try_recv().is_ok(), "pages are told");

    // Half a line: held back until its newline arrives.
    let next = row("r1", 30);
    let (head, tail) = next.split_at(20);
    append(&file, head);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(energy(&cat.current(), "r1"), Some(20.0 * 2e-4), "partial line not read");
    assert_eq!(cat.current().files()[0].rows_rejected, 0);
    append(&file, tail);
    eventually(&cat, "the completed line", |c| energy(c, "r1") == Some(30.0 * 2e-4));

    // A new file appears; the first is truncated and rewritten.
    std::fs::write(team.join("other.csv"), format!("{HEADER}{}", row("r2", 5))).unwrap();
    eventually(&cat, "a new file", |c| c.run("r2", DatasetMode::Latest).is_some());
    std::fs::write(&file, format!("{HEADER}{}", row("r3", 7))).unwrap();
    eventually(&cat, "truncation", |c| {
        c.run("r1", DatasetMode::Latest).is_none() && c.run("r3", DatasetMode::Latest).is_some()
    });

    // Rotation: CodeCarbon renames the file to .bak; the runs stay, under the new name.
    let bak = team.join("emissions.csv_1.bak");
    std::fs::rename(&file, &bak).unwrap();
    eventually(&cat, "rotation", |c| {
        c.files().iter().any(|f| f.path == "team/emissions.csv_1.bak")
            && !c.files().iter().any(|f| f.path == "team/emissions.csv")
    });
    assert!(cat.current().run("r3", DatasetMode::Latest).is_some());

    // Deletion.
    std::fs::remove_file(&bak).unwrap();
    eventually(&cat, "deletion", |c| c.run("r3", DatasetMode::Latest).is_none());
    assert_eq!(cat.current().files().len(), 1);
}

#[test]
fn a_catalog_from_the_parse_cache_catches_up_with_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = carbon_core::parse_cache::cache_file(cache_dir.path(), dir.path());
    let (a, b, c) = (dir.path().join("a.csv"), dir.path().join("b.csv"), dir.path().join("c.csv"));
    std::fs::write(&a, format!("{HEADER}{}", row("ra", 10))).unwrap();
    std::fs::write(&b, format!("{HEADER}{}", row("rb", 10))).unwrap();
    let (tx, mut rx) = tokio::sync::broadcast::channel(16);
    let announcer = Announcer::new(tx);

    // First start: no cache yet, the folder is read; the check writes the cache.
    let (first, loaded) = carbon_core::catalog::load_dir_cached(dir.path(), Some(&cache)).unwrap();
    assert!(!loaded.from_cache() && loaded.cache_stale());
    let shared = SharedCatalog::new(first);
    assert_eq!(check(dir.path(), &shared, &announcer, Some(&cache), loaded.cache_stale()), 0);
    assert!(cache.exists() && rx.try_recv().is_err(), "nothing changed, nothing announced");

    // While the server is stopped: one file grows, one goes, one comes.
    std::fs::write(&a, format!("{HEADER}{}{}", row("ra", 10), row("ra", 40))).unwrap();
    std::fs::remove_file(&b).unwrap();
    std::fs::write(&c, format!("{HEADER}{}", row("rc", 5))).unwrap();

    // The restart serves the cache as it was, then the check brings it up to date.
    let (again, loaded) = carbon_core::catalog::load_dir_cached(dir.path(), Some(&cache)).unwrap();
    assert!(loaded.from_cache() && !loaded.cache_stale());
    assert_eq!(energy(&again, "ra"), Some(10.0 * 2e-4), "the cache as written");
    assert!(again.run("rb", DatasetMode::Latest).is_some());
    let shared = SharedCatalog::new(again);
    assert_eq!(check(dir.path(), &shared, &announcer, Some(&cache), false), 3);
    let now = shared.current();
    assert_eq!(energy(&now, "ra"), Some(40.0 * 2e-4));
    assert!(now.run("rb", DatasetMode::Latest).is_none() && now.run("rc", DatasetMode::Latest).is_some());
    assert_eq!(rx.try_recv().unwrap(), 1, "open pages are told");

    // The cache was written again: the next restart starts from the folder as it is.
    let (third, loaded) = carbon_core::catalog::load_dir_cached(dir.path(), Some(&cache)).unwrap();
    assert!(loaded.from_cache());
    assert_eq!(energy(&third, "ra"), Some(40.0 * 2e-4));
    assert_eq!(third.files().len(), 2);
    assert_eq!(check(dir.path(), &SharedCatalog::new(third), &announcer, Some(&cache), false), 0);
}

#[cfg(unix)]
#[test]
fn the_watcher_says_why_it_skips_a_pipe_or_a_link_and_follows_folders_moved_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), format!("{HEADER}{}", row("ra", 10))).unwrap();
    let cat = SharedCatalog::new(load_dir(dir.path()).unwrap());
    let (tx, _rx) = tokio::sync::broadcast::channel(16);
    let _watcher = watch(dir.path().to_path_buf(), cat.clone(), Announcer::new(tx)).unwrap();
    let reason = |c: &Catalog, p: &str| c.files().iter().find(|f| f.path == p).map(|f| f.problems[0].reason.clone());

    // A pipe with a log's name: listed as not read, and the watcher does not wait on it.
    let fifo = std::ffi::CString::new(dir.path().join("pipe.csv").to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    eventually(&cat, "the pipe listed", |c| reason(c, "pipe.csv").is_some_and(|r| r.contains("named pipe")));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.csv")).unwrap();
    eventually(&cat, "the link listed", |c| reason(c, "zero.csv").is_some_and(|r| r.contains("symbolic link")));
    std::fs::write(dir.path().join("a.csv"), format!("{HEADER}{}{}", row("ra", 10), row("ra", 20))).unwrap();
    eventually(&cat, "later changes still followed", |c| energy(c, "ra") == Some(20.0 * 2e-4));

    // A folder written elsewhere and moved in: its files arrive though no event names them.
    let team = outside.path().join("team-b");
    std::fs::create_dir_all(team.join("deep")).unwrap();
    std::fs::write(team.join("deep/emissions.csv"), format!("{HEADER}{}", row("rb", 5))).unwrap();
    std::fs::rename(&team, dir.path().join("team-b")).unwrap();
    eventually(&cat, "a folder moved in", |c| c.run("rb", DatasetMode::Latest).is_some());
    assert_eq!(cat.current().run("rb", DatasetMode::Latest).unwrap().team.as_deref(), Some("team-b"));
    // Moved out again: its runs go.
    std::fs::rename(dir.path().join("team-b"), outside.path().join("team-b")).unwrap();
    eventually(&cat, "a folder moved out", |c| c.run("rb", DatasetMode::Latest).is_none());
    assert!(cat.current().files().iter().all(|f| !f.path.starts_with("team-b/")));
}

#[test]
fn an_edit_to_teams_csv_gives_the_runs_their_new_teams() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lab")).unwrap();
    std::fs::write(dir.path().join("lab/a.csv"), format!("{HEADER}{}", row("ra", 10))).unwrap();
    let cat = SharedCatalog::new(load_dir(dir.path()).unwrap());
    let (tx, _rx) = tokio::sync::broadcast::channel(16);
    let _watcher = watch(dir.path().to_path_buf(), cat.clone(), Announcer::new(tx)).unwrap();
    let team = |c: &Catalog| c.run("ra", DatasetMode::Latest).and_then(|r| r.team.clone());
    assert_eq!(team(&cat.current()).as_deref(), Some("lab"), "the folder rule");
    std::fs::write(dir.path().join("teams.csv"), "path_prefix,team\nlab/,vision\n").unwrap();
    eventually(&cat, "the mapping applied", |c| team(c).as_deref() == Some("vision"));
    assert!(cat.current().files().iter().all(|f| f.path != "teams.csv"), "not listed as a log");
    std::fs::remove_file(dir.path().join("teams.csv")).unwrap();
    eventually(&cat, "the mapping gone", |c| team(c).as_deref() == Some("lab"));
}

#[test]
fn metrics_files_written_beside_a_watched_log_join_its_runs_as_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("sweep");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("emissions.csv"), format!("{HEADER}{}{}", row("r1", 10), row("r2", 20))).unwrap();
    let cat = SharedCatalog::new(load_dir(dir.path()).unwrap());
    let (tx, _rx) = tokio::sync::broadcast::channel(16);
    let _watcher = watch(dir.path().to_path_buf(), cat.clone(), Announcer::new(tx)).unwrap();
    let acc = |c: &Catalog, run: &str| c.metrics().by_run.get(run).and_then(|m| m.get("acc")).map(|j| j.value);

    // A metrics file appears, then is rewritten with a later epoch.
    let metrics = run_dir.join("metrics.csv");
    std::fs::write(&metrics, "run_id,name,value,step\nr1,acc,0.5,1\nr2,acc,0.6,1\n").unwrap();
    eventually(&cat, "the metrics joined", |c| acc(c, "r1") == Some(0.5) && acc(c, "r2") == Some(0.6));
    std::fs::write(&metrics, "run_id,name,value,step\nr1,acc,0.5,1\nr2,acc,0.6,1\nr1,acc,0.7,2\n").unwrap();
    eventually(&cat, "the later epoch", |c| acc(c, "r1") == Some(0.7));

    // A Trainer's results without a run id, in a folder of two runs: listed as not joined.
    std::fs::write(run_dir.join("all_results.json"), r#"{"eval_accuracy": 0.9}"#).unwrap();
    eventually(&cat, "the unjoinable file listed", |c| {
        c.files().iter().any(|f| f.path == "sweep/all_results.json" && f.join_failed)
    });
    // The metrics file removed: its values go with it.
    std::fs::remove_file(&metrics).unwrap();
    eventually(&cat, "the metrics gone", |c| acc(c, "r1").is_none());
}

#[test]
fn a_store_written_many_times_a_second_is_read_once_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("emissions.csv"), format!("{HEADER}{}{}", row("r1", 10), row("r2", 20))).unwrap();
    let cat = SharedCatalog::new(load_dir(dir.path()).unwrap());
    let (tx, _rx) = tokio::sync::broadcast::channel(16);
    let _watcher = watch(dir.path().to_path_buf(), cat.clone(), Announcer::new(tx)).unwrap();
    // An Optuna journal growing an operation at a time, as a sweep writes it.
    let journal = dir.path().join("optuna_journal.log");
    let op = |line: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal)
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap()
    };
    op("{\"op_code\":0,\"worker_id\":\"w\",\"study_name\":\"s\",\"directions\":[2]}\n");
    for (t, (run, f1)) in [("r1", 0.8), ("r2", 0.9)].into_iter().enumerate() {
        op("{\"op_code\":4,\"worker_id\":\"w\",\"study_id\":0}\n");
        op(&format!("{{\"op_code\":8,\"worker_id\":\"w\",\"trial_id\":{t},\"user_attr\":{{\"codecarbon_run_id\":\"{run}\"}}}}\n"));
        op(&format!("{{\"op_code\":6,\"worker_id\":\"w\",\"trial_id\":{t},\"state\":1,\"values\":[{f1}]}}\n"));
    }
    let value = |c: &Catalog, run: &str| c.metrics().by_run.get(run).and_then(|m| m.get("value")).map(|j| j.value);
    // Not read while it is being written, then read once with everything written.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(value(&cat.current(), "r2"), None, "read only once it settles");
    eventually(&cat, "both trials joined", |c| value(c, "r1") == Some(0.8) && value(c, "r2") == Some(0.9));
}
