//! The catalog at scale: incremental merges agree with a full build, the parse cache gives back
//! what parsing gives, snapshots stay whole while a writer works.
#![allow(clippy::unwrap_used)]

use carbon_core::catalog::{changes_on_disk, load_dir, load_dir_cached, Catalog, SharedCatalog};
use carbon_core::ingest::ingest_path;
use carbon_core::model::{DatasetMode, Run};
use std::path::{Path, PathBuf};

const L: DatasetMode = DatasetMode::Latest;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A logs folder with runs in several files: a checkpoint run copied into a `.bak`, a task
/// file, the v1 layout, a team mapping by folder.
fn logs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("checkpoints.csv", "vision/emissions.csv"),
        ("checkpoints.csv_1.bak", "vision/emissions.csv_1.bak"),
        ("task_file.csv", "speech/tasks.csv"),
        ("v1_12_columns.csv", "nlp/old/emissions.csv"),
        ("missing_run_id.csv", "nlp/emissions.csv"),
        ("extra_user_columns.csv", "nlp/tags.csv"),
    ] {
        let to = dir.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixture(from), to).unwrap();
    }
    dir
}

fn runs(cat: &Catalog, mode: DatasetMode) -> Vec<Run> {
    cat.runs(mode).iter().map(|r| (**r).clone()).collect()
}

#[test]
fn files_added_one_by_one_give_the_runs_of_a_full_build() {
    let dir = logs();
    let full = load_dir(dir.path()).unwrap();
    assert!(full.runs(L).len() >= 6, "{}", full.runs(L).len());
    let mut paths: Vec<PathBuf> = carbon_core::catalog::find_log_files(dir.path());
    // Reverse order: merging must not depend on the order files arrive in.
    paths.reverse();
    let mut one_by_one = Catalog::default();
    for p in &paths {
        let display = p.strip_prefix(dir.path()).unwrap().to_string_lossy().to_string();
        one_by_one.upsert(ingest_path(p, &display).unwrap()).unwrap();
    }
    for mode in [DatasetMode::Latest, DatasetMode::Codecarbon] {
        assert_eq!(runs(&one_by_one, mode), runs(&full, mode), "{mode:?}");
        assert_eq!(one_by_one.summary(mode), full.summary(mode));
    }
    // Removing the copy keeps the run, with one file fewer and the same checkpoints.
    let r1 = full.run("r1", L).unwrap().clone();
    one_by_one.remove("vision/emissions.csv_1.bak").unwrap();
    let after = one_by_one.run("r1", L).unwrap();
    assert_eq!(after.checkpoints, r1.checkpoints);
    assert_eq!(after.source_files.len() + 1, r1.source_files.len());
    assert_eq!(after.energy_kwh, r1.energy_kwh);
    // And the run's rows are read back from its files.
    let detail = full.run_detail("r1", L).unwrap().unwrap();
    assert_eq!(detail.checkpoints.len(), r1.checkpoints);
    assert!(detail.checkpoints.windows(2).all(|w| w[0].duration_s <= w[1].duration_s));
    // A source file gone from disk (renamed, deleted) before the watcher says so: the page
    // still shows the rows of the others.
    std::fs::remove_file(dir.path().join("vision/emissions.csv_1.bak")).unwrap();
    let detail = full.run_detail("r1", L).unwrap().unwrap();
    assert_eq!(detail.checkpoints.len(), r1.checkpoints, "the .bak held copies only");
}

#[test]
fn a_restart_takes_the_catalog_from_the_cache_and_then_catches_up_with_changed_files() {
    let dir = logs();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = carbon_core::parse_cache::cache_file(cache_dir.path(), dir.path());
    let (first, loaded) = load_dir_cached(dir.path(), Some(&cache)).unwrap();
    assert_eq!((loaded.reused, loaded.parsed), (0, 6));
    assert_eq!(loaded.cache_problem.as_deref(), Some("no cache yet"));
    assert!(changes_on_disk(dir.path(), &first).is_empty(), "read as it is");
    first.write_parse_cache(&cache).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(cache_dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");

    let (again, loaded) = load_dir_cached(dir.path(), Some(&cache)).unwrap();
    assert_eq!((loaded.reused, loaded.parsed), (6, 0));
    assert!(loaded.from_cache() && !loaded.cache_stale());
    for mode in [DatasetMode::Latest, DatasetMode::Codecarbon] {
        assert_eq!(runs(&again, mode), runs(&first, mode), "{mode:?}");
    }
    assert_eq!(again.files(), first.files(), "reports with every problem");
    assert_eq!(again.run_detail("r1", L).unwrap(), first.run_detail("r1", L).unwrap());
    assert!(changes_on_disk(dir.path(), &again).is_empty(), "stamps kept in the cache");

    // One appended checkpoint: the restart shows the cache, and the check finds that file alone.
    let csv = dir.path().join("vision/emissions.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let last = text.lines().find(|l| l.contains(",r1,exp-1,300,")).unwrap().replace(",300,", ",900,");
    std::fs::write(&csv, format!("{text}{last}\n")).unwrap();
    let (mut changed, loaded) = load_dir_cached(dir.path(), Some(&cache)).unwrap();
    assert!(loaded.from_cache());
    assert_eq!(changed.run("r1", L).unwrap().duration_s, first.run("r1", L).unwrap().duration_s);
    let diff = changes_on_disk(dir.path(), &changed);
    assert_eq!(diff.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["vision/emissions.csv"]);
    assert_eq!(changed.apply(diff), 1);
    assert_eq!(changed.run("r1", L).unwrap().duration_s, Some(900.0));
    assert_eq!(changed.run("r1", L).unwrap().checkpoints, first.run("r1", L).unwrap().checkpoints + 1);

    // A file the watcher re-read between the check and its result keeps the watcher's version.
    let (mut raced, _) = load_dir_cached(dir.path(), Some(&cache)).unwrap();
    let diff = changes_on_disk(dir.path(), &raced);
    raced.upsert(carbon_core::ingest::ingest_path(&csv, "vision/emissions.csv").unwrap()).unwrap();
    assert_eq!(raced.apply(diff), 0, "the check's result is older than the watcher's");
    assert_eq!(raced.run("r1", L).unwrap().duration_s, Some(900.0));

    // A damaged cache is ignored, said, and everything is parsed.
    std::fs::write(&cache, b"ARROW1\0\0 not really").unwrap();
    let (damaged, loaded) = load_dir_cached(dir.path(), Some(&cache)).unwrap();
    assert_eq!((loaded.reused, loaded.parsed), (0, 6));
    assert!(loaded.cache_problem.is_some() && loaded.cache_stale());
    assert_eq!(runs(&damaged, L), runs(&changed, L));
}

#[test]
fn readers_keep_a_whole_catalog_while_a_writer_replaces_it() {
    let dir = logs();
    let shared = SharedCatalog::new(load_dir(dir.path()).unwrap());
    let before = shared.current();
    let n = before.runs(L).len();
    shared.update(|c| c.remove("nlp/old/emissions.csv").unwrap());
    assert_eq!(before.runs(L).len(), n, "the snapshot held is unchanged");
    assert_eq!(shared.current().runs(L).len(), n - 2, "the v1 file held two runs");
    assert!(before.run("a1", L).is_some() && shared.current().run("a1", L).is_none());
}

#[test]
fn sorted_orders_are_those_of_the_query_and_kept_per_version() {
    use carbon_core::query::{RunQuery, SortKey};
    let cat = load_dir(logs().path()).unwrap();
    for key in SortKey::ALL {
        for desc in [false, true] {
            let q = RunQuery { sort: Some(key), descending: Some(desc), ..RunQuery::default() };
            let direct: Vec<&str> = q.apply(cat.runs(L)).iter().map(|r| r.run_id.as_str()).collect();
            let kept: Vec<&str> = cat.select(&q, L).map(|r| r.run_id.as_str()).collect();
            assert_eq!(kept, direct, "{key:?} {desc}");
            assert!(std::ptr::eq(cat.order(L, key, desc), cat.order(L, key, desc)), "computed once");
        }
    }
    let page = cat.runs_page(&RunQuery::default());
    assert_eq!(page.total, cat.runs(L).len());
    assert!(page.teams.contains(&"vision".to_string()));
}

/// Runs `f` on another thread and fails if it takes longer than `secs` (a read that waits on a
/// pipe would otherwise hang the test).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(secs)).expect("done in time, not waiting on a pipe")
}

#[cfg(unix)]
#[test]
fn a_hostile_logs_folder_is_read_around_and_every_skipped_entry_says_why() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = logs();
    let root = dir.path().to_path_buf();
    let bad = root.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    symlink("/nonexistent/emissions.csv", bad.join("dangling.csv")).unwrap();
    symlink("/dev/zero", bad.join("zero.csv")).unwrap();
    symlink(root.join("vision/emissions.csv"), bad.join("link.csv")).unwrap();
    symlink(root.join("vision"), root.join("linked-folder")).unwrap();
    let fifo = std::ffi::CString::new(bad.join("pipe.csv").to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    // Sparse: over the size cap without using the disk.
    std::fs::File::create(bad.join("huge.csv")).unwrap().set_len(carbon_core::ingest::MAX_FILE_BYTES + 1).unwrap();
    let one_run = |id: &str| {
        format!(
            "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n\
             2026-10-01T10:00:10,p,{id},10,0.0001,0.002,FRA\n"
        )
    };
    let locked = bad.join("locked.csv");
    std::fs::write(&locked, one_run("locked-run")).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // A folder named like a log is a folder; the team mapping is not a log.
    std::fs::create_dir_all(root.join("odd.csv")).unwrap();
    std::fs::write(root.join("odd.csv/emissions.csv"), one_run("odd-run")).unwrap();
    std::fs::write(root.join("teams.csv"), "path_prefix,team\nnlp/old/,legacy\n").unwrap();

    let cat = within(60, move || load_dir(&root).unwrap());
    let report = |p: &str| cat.files().iter().find(|f| f.path == p).cloned();
    let why = |p: &str| report(p).map(|f| f.problems[0].reason.clone()).unwrap_or_else(|| format!("{p}: no report"));
    assert!(why("bad/dangling.csv").contains("symbolic link"), "{}", why("bad/dangling.csv"));
    assert!(why("bad/zero.csv").contains("symbolic link"));
    assert!(why("bad/link.csv").contains("symbolic link"));
    assert!(why("linked-folder/").contains("symbolic link to a folder"));
    assert!(why("bad/pipe.csv").contains("named pipe"));
    assert!(why("bad/huge.csv").contains("larger than"), "{}", why("bad/huge.csv"));
    for p in ["bad/dangling.csv", "bad/pipe.csv", "bad/huge.csv"] {
        let f = report(p).unwrap();
        assert_eq!((f.schema.as_str(), f.rows_read, f.runs), ("not read", 0, 0), "{p}");
    }
    // Permissions do not bind root: then the file is read like any other.
    let locked = report("bad/locked.csv").unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root {
        assert!(locked.runs > 0, "read as root");
    } else {
        assert!(locked.problems[0].reason.starts_with("cannot be read"), "{:?}", locked.problems);
    }
    assert!(report("odd.csv/emissions.csv").is_some_and(|f| f.runs > 0));
    assert!(report("teams.csv").is_none(), "the team mapping is not listed as a log");
    assert_eq!(cat.run("a1", L).unwrap().team.as_deref(), Some("legacy"), "but it maps teams");
    // The runs of the real files are all there, each once.
    let plain = load_dir(logs().path()).unwrap();
    assert_eq!(
        cat.runs(L).len(),
        plain.runs(L).len() + 1 + usize::from(is_root),
        "odd.csv's run (and the locked one as root)"
    );

    // A check finds nothing new in what was skipped (the reasons are stamped), then sees a
    // pipe come and a skipped file turn into a real one.
    let dir_path = dir.path().to_path_buf();
    let cat2 = cat.clone();
    assert!(within(60, move || changes_on_disk(&dir_path, &cat2)).is_empty());
    std::fs::remove_file(dir.path().join("bad/huge.csv")).unwrap();
    std::fs::copy(fixture("task_file.csv"), dir.path().join("bad/huge.csv")).unwrap();
    let fifo2 = std::ffi::CString::new(dir.path().join("bad/pipe2.csv").to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo2.as_ptr(), 0o644) }, 0);
    let dir_path = dir.path().to_path_buf();
    let cat2 = cat.clone();
    let mut changes: Vec<String> =
        within(60, move || changes_on_disk(&dir_path, &cat2)).into_iter().map(|c| c.path).collect();
    changes.sort();
    assert_eq!(changes, ["bad/huge.csv", "bad/pipe2.csv"]);
}

#[test]
fn an_unreadable_team_mapping_stays_said_after_a_check() {
    let dir = logs();
    // Not UTF-8: the mapping cannot be read, and the Files page says so.
    std::fs::write(dir.path().join("teams.csv"), b"path_prefix,team\nvision/,\xe9quipe\n").unwrap();
    let mut cat = load_dir(dir.path()).unwrap();
    let said = |c: &Catalog| c.files().iter().any(|f| f.path == "teams.csv" && f.schema == "not read");
    assert!(said(&cat));
    let changes = changes_on_disk(dir.path(), &cat);
    assert!(changes.iter().all(|c| c.path != "teams.csv"), "the mapping's report is not a vanished log");
    cat.apply(changes);
    assert!(said(&cat));
}

/// Runs whose CO₂ no embedded figure explains, at one place and one implied intensity: each is
/// explained by the others (an older CodeCarbon figure). A change elsewhere keeps them as they
/// were (the very same runs, not copies); when only one is left, it is unexplained again.
#[test]
fn explanations_by_other_runs_follow_changes_and_unchanged_runs_are_shared() {
    use carbon_core::ingest::ingest_bytes;
    use carbon_core::model::DeltaKind;
    let file = |name: &str, run: &str| {
        let csv = format!(
            "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n\
             2026-10-01T10:00:00,p,{run},60,0.000123456,0.001,FRA\n"
        );
        ingest_bytes(name, csv.as_bytes()).unwrap()
    };
    let kind = |cat: &Catalog, run: &str| cat.run(run, L).unwrap().assessment.delta_reason.as_ref().map(|d| d.kind);
    let shared = SharedCatalog::new(Catalog::from_files(vec![file("a.csv", "a"), file("b.csv", "b")]).unwrap());
    let before = shared.current();
    assert_eq!(kind(&before, "a"), Some(DeltaKind::OlderCodecarbonData));
    assert_eq!(kind(&before, "b"), Some(DeltaKind::OlderCodecarbonData));
    // Another run elsewhere: a and b are the same runs as before, not copies.
    let other = "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n\
                 2026-10-02T10:00:00,q,c,60,0.0001,0.002,DEU\n";
    shared.update(|c| c.upsert(ingest_bytes("c.csv", other.as_bytes()).unwrap()).unwrap());
    let after = shared.current();
    let ptr = |cat: &Catalog, id: &str| {
        let i = cat.runs(L).iter().position(|r| r.run_id == id).unwrap();
        std::sync::Arc::as_ptr(&cat.runs(L)[i])
    };
    assert_eq!(ptr(&before, "a"), ptr(&after, "a"));
    assert_eq!(kind(&after, "a"), Some(DeltaKind::OlderCodecarbonData));
    // b goes: a alone says nothing about older data.
    shared.update(|c| c.remove("b.csv").unwrap());
    assert_eq!(kind(&shared.current(), "a"), Some(DeltaKind::LiveOrUnknown));
    // b back: explained again.
    shared.update(|c| c.upsert(file("b.csv", "b")).unwrap());
    assert_eq!(kind(&shared.current(), "a"), Some(DeltaKind::OlderCodecarbonData));
}

#[test]
fn a_cache_of_the_previous_release_is_read_again_from_the_logs_and_replaced() {
    let dir = logs();
    // Text the previous release kept as it came: a right-to-left override in a project name.
    std::fs::create_dir_all(dir.path().join("spoof")).unwrap();
    std::fs::write(
        dir.path().join("spoof/emissions.csv"),
        "timestamp,project_name,run_id,duration,emissions,energy_consumed\n2026-10-01T10:00:00,gpu-\u{202E}fdp.exe,s1,60,0.001,0.01\n",
    )
    .unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = carbon_core::parse_cache::cache_file(cache_dir.path(), dir.path());
    let (first, _) = load_dir_cached(dir.path(), Some(&cache)).unwrap();
    first.write_parse_cache(&cache).unwrap();
    // The same cache as the previous release wrote it: its format marker says 8.
    let bytes = std::fs::read(&cache).unwrap();
    let (new, old) = (b"carbon-dash parse cache 9", b"carbon-dash parse cache 8");
    let marks = bytes.windows(new.len()).filter(|w| w == new).count();
    assert!(marks > 0, "the marker is in the file as written");
    let mut previous = bytes.clone();
    for i in 0..previous.len().saturating_sub(new.len() - 1) {
        if &previous[i..i + new.len()] == new {
            previous[i..i + new.len()].copy_from_slice(old);
        }
    }
    std::fs::write(&cache, &previous).unwrap();
    // Not used: every file is read again from the logs (nothing is lost: they are the source).
    let (again, loaded) = load_dir_cached(dir.path(), Some(&cache)).unwrap();
    assert_eq!(loaded.cache_problem.as_deref(), Some("not a cache of this version of carbon-dash"));
    assert_eq!((loaded.reused, loaded.parsed), (0, 7));
    assert!(loaded.cache_stale(), "so the server writes it anew after its check");
    assert_eq!(runs(&again, L), runs(&first, L));
    assert_eq!(again.run("s1", L).unwrap().project_name.as_deref(), Some("gpu-fdp.exe"));
    // Written anew, it is this release's and is used.
    again.write_parse_cache(&cache).unwrap();
    let (_, loaded) = load_dir_cached(dir.path(), Some(&cache)).unwrap();
    assert_eq!((loaded.reused, loaded.parsed), (7, 0));
}

#[test]
fn results_tables_beside_the_logs_join_by_what_they_hold_and_say_how_or_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep");
    std::fs::create_dir_all(&sweep).unwrap();
    let header = "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code";
    std::fs::write(
        sweep.join("emissions.csv"),
        format!(
            "{header}\n2026-10-01T10:00:00,bert-base,a1,600,0.0123456789012345,0.0301,FRA\n\
             2026-10-01T11:00:00,bert-base,a2,600,0.0234567890123456,0.0602,FRA\n\
             2026-10-01T12:00:00,roberta,a3,600,0.0345678901234567,0.0903,FRA\n"
        ),
    )
    .unwrap();
    // What tracker.stop() returned, copied into the results (in g, one digit fewer), and a
    // results row with no run beside it.
    std::fs::write(
        sweep.join("results.csv"),
        "model,co2_g,accuracy,f1\nbert-base,12.345678901234,0.91,0.88\nroberta,34.567890123457,0.93,0.90\n\
         bert-large,99.9,0.95,0.93\n",
    )
    .unwrap();
    // A table naming models only: bert-base is two runs, so it does not join.
    std::fs::write(sweep.join("by_model.csv"), "model,bleu\nbert-base,30.1\nroberta,31.5\n").unwrap();
    let cat = load_dir(dir.path()).unwrap();
    let m = cat.metrics();
    let acc = |run: &str| m.by_run.get(run).and_then(|v| v.get("accuracy")).map(|j| j.value);
    assert_eq!((acc("a1"), acc("a2"), acc("a3")), (Some(0.91), None, Some(0.93)));
    assert!(m.by_run.get("a1").is_some_and(|v| !v.contains_key("co2_g")), "the key column is not a metric");
    let note = |path: &str| cat.files().iter().find(|f| f.path == path).and_then(|f| f.join.clone()).unwrap();
    let results = note("sweep/results.csv");
    assert!(results.contains("joined to 2 runs by the column co2_g equal to each run's emissions (g)"), "{results}");
    assert!(results.contains("1 row name no run"), "{results}");
    let by_model = note("sweep/by_model.csv");
    assert!(by_model.starts_with("not joined: the column model names runs, but not one each"), "{by_model}");
    assert!(cat.files().iter().any(|f| f.path == "sweep/results.csv" && f.schema == "results table"));
}

#[test]
fn a_declaration_in_carbon_dash_toml_joins_what_content_cannot_and_its_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep");
    std::fs::create_dir_all(sweep.join("per_model")).unwrap();
    std::fs::write(
        sweep.join("emissions.csv"),
        "timestamp,project_name,run_id,duration,emissions,energy_consumed,dataset\n\
         2026-10-01T10:00:00,bert-base,a1,600,0.0123,0.0301,sst2\n\
         2026-10-01T11:00:00,bert-base,a2,600,0.0234,0.0602,mnli\n\
         2026-10-01T12:00:00,roberta,a3,600,0.0345,0.0903,sst2\n",
    )
    .unwrap();
    // One file per model, its name the model: nothing inside says which run.
    std::fs::write(sweep.join("per_model/roberta.csv"), "epoch,accuracy\n3,0.93\n").unwrap();
    // A wide table keyed by dataset, which names two runs: a declaration cannot make it one.
    std::fs::write(sweep.join("by_dataset.csv"), "dataset,bleu\nsst2,30.1\nmnli,31.5\n").unwrap();
    let mut cat = load_dir(dir.path()).unwrap();
    let acc = |cat: &Catalog, run: &str| cat.metrics().by_run.get(run).and_then(|v| v.get("accuracy")).map(|j| j.value);
    assert_eq!(acc(&cat, "a3"), None, "not joined by content");
    let note = |cat: &Catalog, path: &str| {
        cat.files().iter().find(|f| f.path == path).and_then(|f| f.join.clone()).unwrap_or_default()
    };
    // It suggests the very block that joins it (below).
    let suggested = note(&cat, "sweep/per_model/roberta.csv");
    assert!(
        suggested.contains(
            r#"declare in carbon-dash.toml: [[results]] table = "sweep/per_model/{key}.csv", run = "project_name" (its name holds 'roberta')"#
        ),
        "{suggested}"
    );

    std::fs::write(
        dir.path().join("carbon-dash.toml"),
        "# how our results name their runs\n[[results]]\ntable = \"sweep/per_model/{key}.csv\"\nrun = \"project_name\"\n\n\
         [[results]]\ntable = \"**/by_dataset.csv\"\nkey = \"dataset\"\nrun = \"tag:dataset\"\n",
    )
    .unwrap();
    cat.apply(changes_on_disk(dir.path(), &cat));
    assert_eq!(acc(&cat, "a3"), Some(0.93));
    let how = note(&cat, "sweep/per_model/roberta.csv");
    assert!(
        how.contains("its declaration (carbon-dash.toml line 2): 'roberta' from its name is each run's project_name"),
        "{how}"
    );
    let why = note(&cat, "sweep/by_dataset.csv");
    assert!(why.contains("carbon-dash.toml line 6: line 2: 'sst2' is the tag dataset of 2 runs (a1, a3"), "{why}");

    // A mistake: named with its line and column, and the tables join by content again.
    std::fs::write(
        dir.path().join("carbon-dash.toml"),
        "[[results]]\ntable = \"x.csv\"\nkey = \"m\"\nrun = \"projet\"\n",
    )
    .unwrap();
    cat.apply(changes_on_disk(dir.path(), &cat));
    let toml = cat.files().iter().find(|f| f.path == "carbon-dash.toml").unwrap();
    assert_eq!((toml.problems[0].line, toml.problems[0].column), (4, Some(7)));
    assert!(toml.problems[0].reason.contains("is not a run field"), "{:?}", toml.problems);
    assert_eq!(acc(&cat, "a3"), None);
}

#[test]
fn json_results_tables_join_like_csv_ones_and_declared_metrics_say_their_direction_and_unit() {
    let dir = tempfile::tempdir().unwrap();
    let header = "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code";
    let log = |folder: &str, rows: &[(&str, &str, f64)]| {
        let d = dir.path().join(folder);
        std::fs::create_dir_all(&d).unwrap();
        let mut text = format!("{header}\n");
        for (i, (project, id, kg)) in rows.iter().enumerate() {
            text.push_str(&format!("2026-10-01T1{i}:00:00,{project},{id},600,{kg},0.0301,FRA\n"));
        }
        std::fs::write(d.join("emissions.csv"), text).unwrap();
        d
    };
    // A JSON array of records naming each run's project (nested scores give `scores.wer`).
    let asr = log("asr", &[("whisper-small", "w1", 0.0123456789012345), ("whisper-base", "w2", 0.0234567890123456)]);
    std::fs::write(
        asr.join("results.json"),
        r#"[{"model": "whisper-small", "scores": {"wer": 12.5}}, {"model": "whisper-base", "scores": {"wer": 15.25}}]"#,
    )
    .unwrap();
    // JSON lines copying the emissions in kg, upper-case exponent, and a config that is no table.
    let mt = log("mt", &[("a", "m1", 0.0345678901234567), ("b", "m2", 0.0456789012345678)]);
    std::fs::write(
        mt.join("scores.jsonl"),
        "{\"co2\": 3.45678901234567E-2, \"bleu\": 30.5}\n{\"co2\": 4.56789012345678E-2, \"bleu\": 28}\n",
    )
    .unwrap();
    std::fs::write(mt.join("config.json"), r#"{"hidden_size": 768, "layers": 12}"#).unwrap();
    std::fs::write(mt.join("notes.json"), r#"{"hidden_size": 768, "layers": 12}"#).unwrap();
    // An object of objects, a row per key.
    let cv = log("cv", &[("resnet", "c1", 0.01), ("vit", "c2", 0.02)]);
    std::fs::write(cv.join("summary.json"), r#"{"resnet": {"top1": 76.1}, "vit": {"top1": 81.0}}"#).unwrap();
    std::fs::write(
        dir.path().join("carbon-dash.toml"),
        "[metrics]\n\"scores.wer\" = { better = \"lower\", unit = \"%\" }\ntop1 = { unit = \"%\" }\n",
    )
    .unwrap();
    let cat = load_dir(dir.path()).unwrap();
    let m = cat.metrics();
    let get = |run: &str, name: &str| m.by_run.get(run).and_then(|v| v.get(name)).map(|j| j.value);
    assert_eq!((get("w1", "scores.wer"), get("w2", "scores.wer")), (Some(12.5), Some(15.25)), "{:#?}", m.files);
    assert_eq!((get("m1", "bleu"), get("m2", "bleu")), (Some(30.5), Some(28.0)), "{:#?}", m.files);
    assert_eq!((get("c1", "top1"), get("c2", "top1")), (Some(76.1), Some(81.0)), "{:#?}", m.files);
    assert!(get("m1", "co2").is_none(), "the emissions column is the key");
    assert!(get("m1", "hidden_size").is_none(), "a configuration is not results");
    let listed: Vec<&str> = cat.files().iter().map(|f| f.path.as_str()).collect();
    assert!(!listed.contains(&"mt/config.json") && !listed.contains(&"mt/notes.json"), "{listed:?}");
    assert_eq!(m.directions.get("scores.wer"), Some(&false));
    assert_eq!(m.units.get("top1").map(String::as_str), Some("%"));
    // The Pareto view takes the declared direction, and says where it came from.
    let q = carbon_core::pareto::ParetoQuery { metric: Some("scores.wer".into()), ..Default::default() };
    let view = cat.pareto(&q);
    assert_eq!(view.direction, Some(carbon_core::pareto::Direction::Lower));
    assert!(view.direction_said && view.metric_unit.as_deref() == Some("%"));
}
