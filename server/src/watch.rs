//! Live `serve`: the logs folder is watched; a changed file is re-ingested alone, a deleted or
//! renamed one forgotten, and every change is announced to open pages (server-sent events).
//! While CodeCarbon appends, a last line without its newline is held back until it is complete.
//!
//! Once the watch is set up, the folder is compared with the catalog: a catalog from the parse
//! cache may be older than the folder, and a folder read without the cache may have changed
//! while it was read. Anything changed after that the watcher sees.

use app::api::Shared;
use carbon_core::catalog::{changes_on_disk, is_log_file, is_read_file, is_read_name};
use carbon_core::ingest::{ingest_path, ingest_source, not_read, read_log, NotRead, Source};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Tells open pages that the catalog changed: each call sends a new version.
#[derive(Clone)]
pub struct Announcer {
    changes: broadcast::Sender<u64>,
    version: Arc<AtomicU64>,
}

impl Announcer {
    pub fn new(changes: broadcast::Sender<u64>) -> Announcer {
        Announcer { changes, version: Arc::default() }
    }

    pub fn announce(&self) {
        let v = self.version.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.changes.send(v);
    }
}

/// Bytes up to the end of the last complete line (all of them when the file ends with one).
pub fn complete_lines(bytes: &[u8]) -> &[u8] {
    match bytes.iter().rposition(|&b| b == b'\n' || b == b'\r') {
        Some(i) => &bytes[..=i],
        None => &[],
    }
}

/// The path as the catalog names it: relative to the logs folder, with `/`.
fn display(dir: &Path, path: &Path) -> Option<String> {
    path.strip_prefix(dir).ok().map(|p| p.to_string_lossy().replace('\\', "/"))
}

/// Re-reads or forgets one file; returns whether the catalog changed. The file is read and
/// parsed before the catalog is touched, and the new catalog is built on a copy: readers keep
/// the one they hold meanwhile.
pub fn refresh(dir: &Path, path: &Path, catalog: &Shared) -> bool {
    // A value MLflow logs lands in the run's `metrics/` (a tag in `tags/`): the run is read again
    // through its `meta.yaml`.
    let run_file = mlflow_run_file(path);
    let path = run_file.as_deref().unwrap_or(path);
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let Some(shown) = display(dir, path).filter(|_| is_read_file(path, &name)) else { return false };
    // What the catalog held before this read: the result is applied only if that is still so
    // (another reader, e.g. a save, may have put a newer or whole version in meanwhile).
    let before = catalog.current().stamp_of(&shown);
    // Never a link, a pipe or a device (opening a pipe would wait for a writer): said instead.
    let metrics = !is_log_file(&name) || carbon_core::metrics::MetricsFormat::of_file_name(&name).is_some();
    // A metrics file is read whole (JSON has no lines to leave for later), an MLflow run with its
    // folder; unchanged (by its stamp, which reads no more than the file's end), not at all.
    let parsed = if metrics {
        match carbon_core::ingest::Stamp::of_path(path) {
            Some(stamp) if before == Some(stamp) => return false,
            Some(_) => ingest_path(path, &shown),
            None => None,
        }
    } else {
        match read_log(path) {
            Ok((stamp, bytes)) => {
                // Already read as it is (an event repeated, or a file the server saved itself).
                if before == Some(stamp) {
                    return false;
                }
                let mut file = ingest_source(&shown, complete_lines(&bytes), Source::Path(path.to_path_buf()));
                file.stamp = Some(stamp);
                Some(file)
            }
            Err(NotRead::Gone) => None,
            Err(NotRead::Because(why)) => Some(not_read(&shown, path, &why)),
        }
    };
    if parsed.is_none() && !catalog.current().files().iter().any(|f| f.path == shown) {
        return false;
    }
    let result = catalog.update(|cat| {
        if cat.stamp_of(&shown) != before {
            return Ok(None);
        }
        match parsed {
            Some(p) => cat.upsert(p)?,
            None => cat.remove(&shown)?,
        }
        Ok::<_, carbon_core::ingest::IngestError>(Some(cat.runs(carbon_core::model::DatasetMode::Latest).len()))
    });
    match result {
        Ok(Some(runs)) => {
            tracing::info!(file = %shown, runs, "catalog updated");
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(file = %shown, error = %e, "catalog not updated");
            false
        }
    }
}

/// The `meta.yaml` of the MLflow run whose `metrics/` or `tags/` holds `path`, if any.
fn mlflow_run_file(path: &Path) -> Option<std::path::PathBuf> {
    path.ancestors().skip(1).find_map(|a| {
        let name = a.file_name()?;
        if name != "metrics" && name != "tags" {
            return None;
        }
        let meta = a.parent()?.join(carbon_core::metrics::MLFLOW_RUN_FILE);
        meta.is_file().then_some(meta)
    })
}

/// Watches `dir` recursively; each change is announced. Keep the returned watcher alive for as
/// long as watching should go on.
pub fn watch(dir: PathBuf, catalog: Shared, announcer: Announcer) -> notify::Result<notify::RecommendedWatcher> {
    let root = dir.canonicalize().unwrap_or(dir);
    let watched = root.clone();
    let config = notify::Config::default().with_follow_symlinks(false);
    let (folder_root, folder_catalog, folder_announcer) = (root.clone(), catalog.clone(), announcer.clone());
    let mut watcher = notify::RecommendedWatcher::new(
        move |res: notify::Result<notify::Event>| {
            let event = match res {
                Ok(event) => event,
                Err(e) => {
                    // Say it where people look (the Files page, /healthz), not only in the log.
                    tracing::warn!(error = %e, "watching failed");
                    catalog.update(|c| c.set_watch_problem(Some(format!("{e}: restart to see new runs"))));
                    announcer.announce();
                    return;
                }
            };
            // Events were lost (the kernel's queue overflowed): look at the whole tree, unless the
            // overflow is a check's own doing (see [`own_overflow`]).
            if event.need_rescan() {
                if !own_overflow() {
                    check(&folder_root, &folder_catalog, &folder_announcer, None, false);
                }
                return;
            }
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            let mut changed = false;
            let mut folders = false;
            for path in &event.paths {
                if path == &root.join(carbon_core::catalog::TEAMS_FILE) {
                    // The team mapping, not a log: every run gets its team again.
                    catalog.update(|c| c.reload_teams(&root));
                    changed = true;
                } else if is_folder(&root, path, &catalog) {
                    folders = true;
                } else if is_store(path) {
                    refresh_store_soon(&root, path, &catalog, &announcer);
                } else {
                    changed |= refresh(&root, path, &catalog);
                }
            }
            if changed {
                announcer.announce();
            }
            // A folder moved in or out brings or takes files no event names: look at the tree.
            if folders {
                check(&folder_root, &folder_catalog, &folder_announcer, None, false);
            }
        },
        config,
    )?;
    watcher.watch(&watched, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// How long a tracking tool's store is left to settle after a write before it is read again: a
/// training script writes its database or record log many times a second, and each read is the
/// whole store.
pub const STORE_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Stores waiting for their read.
static STORES_DUE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn is_store(path: &Path) -> bool {
    path.file_name().is_some_and(|n| carbon_core::stores::candidate(&n.to_string_lossy()).is_some())
}

/// Reads the store at `path` again in [`STORE_SETTLE`], once for all the writes until then.
fn refresh_store_soon(dir: &Path, path: &Path, catalog: &Shared, announcer: &Announcer) {
    {
        let mut due = STORES_DUE.lock().unwrap_or_else(|e| e.into_inner());
        if due.iter().any(|p| p == path) {
            return;
        }
        due.push(path.to_path_buf());
    }
    let (dir, path, catalog, announcer) = (dir.to_path_buf(), path.to_path_buf(), catalog.clone(), announcer.clone());
    std::thread::spawn(move || {
        std::thread::sleep(STORE_SETTLE);
        STORES_DUE.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| p != &path);
        if refresh(&dir, &path, &catalog) {
            announcer.announce();
        }
    });
}

/// Whether `path` is (or was, by the catalog's files under it) a folder of the logs tree.
fn is_folder(dir: &Path, path: &Path, catalog: &Shared) -> bool {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return true;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    if is_read_name(&name) {
        return false;
    }
    let Some(shown) = display(dir, path) else { return false };
    let under = format!("{shown}/");
    catalog.current().files().iter().any(|f| f.path.starts_with(&under))
}

/// Brings the catalog up to date with the folder (see the module's comment) and announces what
/// changed; writes the parse cache to `cache` when the catalog differs from it (`stale`: it
/// already did before the check). Returns how many files changed.
pub fn check(dir: &Path, catalog: &Shared, announcer: &Announcer, cache: Option<&Path>, stale: bool) -> usize {
    let started = std::time::Instant::now();
    CHECKING.fetch_add(1, Ordering::AcqRel);
    CHECKS.fetch_add(1, Ordering::Relaxed);
    let changes = changes_on_disk(dir, &catalog.current());
    *CHECKED.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    CHECKING.fetch_sub(1, Ordering::AcqRel);
    let changed = catalog.update(|cat| cat.apply(changes));
    println!(
        "checked {} against what was read: {} changed ({:.2} s)",
        dir.display(),
        carbon_core::units::count(changed, "file"),
        started.elapsed().as_secs_f64()
    );
    if changed > 0 {
        announcer.announce();
    }
    if let (Some(file), true) = (cache, stale || changed > 0) {
        match catalog.current().write_parse_cache(file) {
            Ok(()) => tracing::info!(file = %file.display(), "parse cache written"),
            Err(e) => tracing::warn!(file = %file.display(), error = %e, "parse cache not written"),
        }
    }
    changed
}

/// Checks running now, and when the last one finished reading the folder; checks started.
static CHECKING: AtomicU64 = AtomicU64::new(0);
static CHECKS: AtomicU64 = AtomicU64::new(0);

/// How many times this process has [`check`]ed a folder.
pub fn checks() -> u64 {
    CHECKS.load(Ordering::Relaxed)
}
static CHECKED: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
/// After a check, an overflow within this long is the check's own.
const OWN_OVERFLOW: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether an overflow of the kernel's event queue comes from a check's own reading: the watch
/// sees every file and folder opened, so reading a tree of more than ~16 k entries (the kernel's
/// default `max_queued_events`) overflows it. Looking again for such an overflow would read the
/// tree again, overflow again, and never end (at 160 k files, a check every 2 s for good). A
/// change whose event was lost to it is seen at the file's next change (CodeCarbon appends every
/// few seconds) or at the next start.
fn own_overflow() -> bool {
    let recent = CHECKED.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|t| t.elapsed() < OWN_OVERFLOW);
    CHECKING.load(Ordering::Acquire) > 0 || recent
}

/// Live `serve` of `dir`, for the life of the process: watches it, then [`check`]s it.
pub fn keep_up_to_date(dir: PathBuf, catalog: Shared, announcer: Announcer, cache: Option<PathBuf>, stale: bool) {
    let watcher = match watch(dir.clone(), catalog.clone(), announcer.clone()) {
        Ok(w) => {
            println!("watching {} for changes", dir.display());
            Some(w)
        }
        Err(e) => {
            println!("note: not watching {} ({e}): restart to see new runs", dir.display());
            catalog.update(|c| {
                c.set_watch_problem(Some(format!("not watching the folder ({e}): restart to see new runs")))
            });
            announcer.announce();
            None
        }
    };
    check(&dir, &catalog, &announcer, cache.as_deref(), stale);
    if watcher.is_some() {
        loop {
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_last_line_waits_for_its_newline() {
        assert_eq!(complete_lines(b"h\n1,2\n3,"), b"h\n1,2\n");
        assert_eq!(complete_lines(b"h\r\n1,2\r\n"), b"h\r\n1,2\r\n");
        assert_eq!(complete_lines(b"partial"), b"");
    }
}
