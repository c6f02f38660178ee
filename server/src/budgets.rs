//! Budgets in force: read from the store (`carbon-dash budget set`) and from `budgets.toml` at the
//! logs folder's top, every few seconds, into the [`Book`] the pages and the API read.

use carbon_core::budget::{file, Book, Listed};
use std::path::{Path, PathBuf};

/// How often budgets are read again (a `budget set` shows within this).
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The budgets of `budgets.toml` under `dir` (none when it is not there), or why not, naming
/// the file, line and column.
pub fn from_file(dir: &Path) -> Result<Vec<carbon_core::budget::Budget>, Vec<String>> {
    let path = dir.join(file::FILE);
    let shown = path.display().to_string();
    // A regular file, not followed through a link, of a sane size.
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(vec![format!("{shown}: cannot read: {e}")]),
    };
    if !meta.is_file() {
        return Err(vec![format!("{shown}: not a regular file (links are not followed)")]);
    }
    if meta.len() > file::MAX_BYTES as u64 {
        return Err(vec![format!("{shown}: over {} bytes", file::MAX_BYTES)]);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| vec![format!("{shown}: cannot read: {e}")])?;
    file::parse(&text, &shown).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| format!("{shown} line {}, column {}: {}", p.line, p.column.unwrap_or(1), p.reason))
            .collect()
    })
}

/// Everything in force now: the store's, then the file's (a file's budget for the same scope,
/// quantity and period as the store's is left out, and said so).
pub async fn read(store: Option<&carbon_store::Store>, dir: Option<&Path>) -> Listed {
    let mut listed = Listed::default();
    if let Some(store) = store {
        match store.budgets().await {
            Ok(b) => listed.budgets = b,
            Err(e) => listed.problems.push(format!("the store's budgets: {e}")),
        }
    }
    if let Some(dir) = dir {
        match from_file(dir) {
            Ok(budgets) => {
                for b in budgets {
                    let same = |o: &carbon_core::budget::Budget| {
                        o.scope == b.scope && o.quantity == b.quantity && o.period == b.period
                    };
                    if listed.budgets.iter().any(same) {
                        listed.problems.push(format!(
                            "{}: the {} budget set in the store is the one in force",
                            b.source,
                            b.scope.label()
                        ));
                    } else {
                        listed.budgets.push(b);
                    }
                }
            }
            Err(problems) => listed.problems.extend(problems),
        }
    }
    listed
}

/// Keeps `book` up to date, every [`EVERY`].
pub fn spawn(store: Option<carbon_store::Store>, dir: Option<PathBuf>, book: Book) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        loop {
            every.tick().await;
            let listed = read(store.as_ref(), dir.as_deref()).await;
            for p in &listed.problems {
                if !book.get().problems.contains(p) {
                    tracing::warn!("budgets: {p}");
                }
            }
            book.set(listed);
        }
    });
}
