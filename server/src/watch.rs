//! Live `serve`: the logs folder is watched; a changed file is re-ingested alone, a deleted or
//! renamed one forgotten, and every change is announced to open pages (server-sent events).
//! While CodeCarbon appends, a last line without its newline is held back until it is complete.

use app::api::Shared;
use carbon_core::catalog::is_log_file;
use carbon_core::ingest::{ingest_source, Source};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use tokio::sync::broadcast;

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
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let Some(shown) = display(dir, path).filter(|_| is_log_file(&name)) else { return false };
    let parsed = match std::fs::read(path) {
        Ok(bytes) => Some(ingest_source(&shown, complete_lines(&bytes), Source::Path(path.to_path_buf()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(file = %shown, error = %e, "cannot read");
            return false;
        }
    };
    if parsed.is_none() && !catalog.current().files().iter().any(|f| f.path == shown) {
        return false;
    }
    let result = catalog.update(|cat| {
        match parsed {
            Some(p) => cat.upsert(p)?,
            None => cat.remove(&shown)?,
        }
        Ok::<_, carbon_core::ingest::IngestError>(cat.runs(carbon_core::model::DatasetMode::Latest).len())
    });
    match result {
        Ok(runs) => {
            tracing::info!(file = %shown, runs, "catalog updated");
            true
        }
        Err(e) => {
            tracing::warn!(file = %shown, error = %e, "catalog not updated");
            false
        }
    }
}

/// Watches `dir` recursively; each change bumps the version sent on `changes`. Keep the
/// returned watcher alive for as long as watching should go on.
pub fn watch(
    dir: PathBuf,
    catalog: Shared,
    changes: broadcast::Sender<u64>,
) -> notify::Result<notify::RecommendedWatcher> {
    let root = dir.canonicalize().unwrap_or(dir);
    let watched = root.clone();
    let mut version = 0u64;
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        let mut changed = false;
        for path in &event.paths {
            changed |= refresh(&root, path, &catalog);
        }
        if changed {
            version += 1;
            let _ = changes.send(version);
        }
    })?;
    watcher.watch(&watched, RecursiveMode::Recursive)?;
    Ok(watcher)
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
