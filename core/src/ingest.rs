//! Reads one CodeCarbon CSV into a report of every problem found and one [`RunPart`] per run:
//! the run's values and the keys of its rows, never the rows themselves, so memory grows with
//! runs, not rows. A run's rows are read again from the file when its page asks ([`read_rows`]).
//!
//! Columns are bound by (trimmed, lower-cased) header name, so any generation, order, missing or
//! extra column works. A row is rejected only when it cannot be read faithfully (wrong field
//! count, open quote, a fragment with nothing to count); every rejection and every repaired value
//! is a [`Problem`] with its line and column. The file itself is never modified.

use crate::columns::{self as c, Kind};
use crate::metrics::MetricsFormat;
use crate::model::{Checkpoint, FileReport, Problem, Run};
use crate::records::{records, Record};
use chrono::NaiveDateTime;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Widest header read: CodeCarbon's ~40 columns plus room for the user's own.
pub const MAX_COLUMNS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Bytes held in memory, shared with whoever else holds them (an upload session keeps the same
/// bytes for saving).
pub type Shared = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Where a file's bytes can be read again (for a run's checkpoints).
#[derive(Clone)]
pub enum Source {
    /// A file on disk, read again when asked.
    Path(PathBuf),
    /// Bytes held in memory (uploads, the built-in demo).
    Memory(Shared),
    /// Rows kept in the collected runs' database: the catalog holds the run's totals only, and
    /// its checkpoints are read from the database when asked (see
    /// [`crate::catalog::RowStore`]).
    Store,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Path(p) => write!(f, "Path({})", p.display()),
            Source::Memory(b) => write!(f, "Memory({} bytes)", (**b).as_ref().len()),
            Source::Store => f.write_str("Store"),
        }
    }
}

impl Source {
    pub fn bytes(&self) -> Result<Cow<'_, [u8]>, IngestError> {
        match self {
            Source::Path(p) => {
                let io = |source| IngestError::Io { path: p.clone(), source };
                match read_log(p) {
                    Ok((_, bytes)) => Ok(Cow::Owned(bytes)),
                    Err(NotRead::Gone) => Err(io(std::io::ErrorKind::NotFound.into())),
                    Err(NotRead::Because(why)) => Err(io(std::io::Error::other(why))),
                }
            }
            Source::Memory(b) => Ok(Cow::Borrowed((**b).as_ref())),
            Source::Store => Ok(Cow::Borrowed(&[])),
        }
    }
}

/// One file after ingest: its report and what it holds of each run.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub report: FileReport,
    /// One entry per run id among the accepted rows, sorted by run id once in a catalog.
    pub runs: Vec<RunPart>,
    pub source: Source,
    /// Bytes of the source that were read (a line still being written is left for later): a
    /// run's rows are read again from this prefix only, so they agree with its totals.
    pub len: usize,
    /// For a file on disk, what it was when read: compared with the disk to find changed files.
    pub stamp: Option<Stamp>,
    /// A metrics file's values (it holds no runs): see [`crate::metrics`].
    pub metrics: Option<Arc<crate::metrics::MetricsFile>>,
}

/// What identifies a file's content without reading all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    /// FNV-1a of the last 4 KiB (all of a smaller file).
    pub tail: u64,
}

/// Bytes whose hash makes a stamp's `tail`.
const TAIL: u64 = 4096;

impl Stamp {
    /// The stamp of the file at `path`, reading only its last 4 KiB; for a path that is not
    /// read (see [`open_log`]), the stamp of the reason, so an unchanged reason is no change.
    /// `None` when nothing is there any more.
    pub fn of_path(path: &Path) -> Option<Stamp> {
        if path.file_name().is_some_and(|n| n == crate::metrics::MLFLOW_RUN_FILE) {
            return mlflow_stamp(path);
        }
        if let Some(why) = metrics_refusal(path) {
            return Some(Stamp::not_read(&why));
        }
        Stamp::of_path_plain(path)
    }

    /// [`Stamp::of_path`] of the file alone.
    fn of_path_plain(path: &Path) -> Option<Stamp> {
        use std::io::{Read, Seek, SeekFrom};
        let store = path.file_name().is_some_and(|n| crate::stores::candidate(&n.to_string_lossy()).is_some());
        let (mut f, meta) = match if store { open_store(path) } else { open_log(path) } {
            Ok(opened) => opened,
            Err(NotRead::Gone) => return None,
            Err(NotRead::Because(why)) => return Some(Stamp::not_read(&why)),
        };
        let from = meta.len().saturating_sub(TAIL);
        let mut tail = Vec::with_capacity((meta.len() - from) as usize);
        match f.seek(SeekFrom::Start(from)).and_then(|_| f.take(TAIL).read_to_end(&mut tail)) {
            Ok(_) => Some(Stamp::of(&meta, &tail, meta.len())),
            Err(e) => Some(Stamp::not_read(&format!("cannot be read: {e}"))),
        }
    }

    /// The stamp of a path that is not read, for `why`.
    fn not_read(why: &str) -> Stamp {
        let mut s = Stamp { size: u64::MAX, mtime_ns: 0, tail: 0 };
        s.tail = fnv(why.as_bytes());
        s
    }

    /// The stamp of `bytes` read from a file whose metadata (taken before the read) is `meta`.
    /// A file written meanwhile gets a stamp that matches neither version: it is read again.
    pub fn of_bytes(meta: &std::fs::Metadata, bytes: &[u8]) -> Stamp {
        let from = bytes.len().saturating_sub(TAIL as usize);
        Stamp::of(meta, &bytes[from..], bytes.len() as u64)
    }

    fn of(meta: &std::fs::Metadata, tail: &[u8], size: u64) -> Stamp {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        Stamp { size, mtime_ns, tail: fnv(tail) }
    }
}

/// FNV-1a of `bytes`.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Largest log file read: CodeCarbon appends a few hundred bytes a checkpoint, so this is
/// millions of checkpoints; a larger file is something else (or must be split).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Why a path in the logs folder is not read.
#[derive(Debug, Clone, PartialEq)]
pub enum NotRead {
    /// Nothing is there (any more).
    Gone,
    /// Something is there that is not read, and why: on the Files page.
    Because(String),
}

/// Why a path of this type and size is not read as a log file: only regular files, not
/// symbolic links (never followed: see the README), pipes, sockets or devices, and not larger
/// than [`MAX_FILE_BYTES`].
pub fn refusal(meta: &std::fs::Metadata) -> Option<String> {
    kind_refusal(meta).or_else(|| {
        (meta.len() > MAX_FILE_BYTES).then(|| {
            format!("{} bytes, larger than the {} bytes a log file may have: not read", meta.len(), MAX_FILE_BYTES)
        })
    })
}

/// Why a path is not a regular file to read, if so (a link, a pipe, a device, a folder).
fn kind_refusal(meta: &std::fs::Metadata) -> Option<String> {
    let t = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a named pipe (FIFO), not a file: not read".into());
        }
        if t.is_socket() {
            return Some("a socket, not a file: not read".into());
        }
        if t.is_block_device() || t.is_char_device() {
            return Some("a device, not a file: not read".into());
        }
    }
    if t.is_symlink() {
        return Some(
            "a symbolic link: links are not followed (serve the folder it points to, or copy the file)".into(),
        );
    }
    if t.is_dir() {
        return Some("a folder".into());
    }
    (!t.is_file()).then(|| "not a regular file: not read".into())
}

/// Opens a log file for reading if it is one to read (see [`refusal`]), without following a
/// link and without waiting on a pipe (the type is checked before and after opening, so a file
/// swapped for a pipe in between is refused too).
pub fn open_log(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), NotRead> {
    open_checked(path, refusal)
}

/// [`open_log`] for a tracking tool's store, whatever its size: stores are read in bounded
/// passes or by SQLite, never whole into memory.
pub fn open_store(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), NotRead> {
    open_checked(path, kind_refusal)
}

fn open_checked(
    path: &Path,
    refusal: fn(&std::fs::Metadata) -> Option<String>,
) -> Result<(std::fs::File, std::fs::Metadata), NotRead> {
    let gone_or = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => NotRead::Gone,
        _ => NotRead::Because(format!("cannot be read: {e}")),
    };
    let meta = std::fs::symlink_metadata(path).map_err(gone_or)?;
    if let Some(why) = refusal(&meta) {
        return Err(NotRead::Because(why));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = options.open(path).map_err(gone_or)?;
    let meta = file.metadata().map_err(gone_or)?;
    match refusal(&meta) {
        Some(why) => Err(NotRead::Because(why)),
        None => Ok((file, meta)),
    }
}

/// A path of the logs folder that is not read, as the Files page lists it: its reason is its
/// one problem.
pub fn not_read(display: &str, path: &Path, why: &str) -> ParsedFile {
    ParsedFile { stamp: Some(Stamp::not_read(why)), ..unread(display, why, false, Source::Path(path.to_path_buf())) }
}

/// A file that was not read, for `why` (its one problem; `rejected` when the user gave it and it
/// is refused), held from `source`.
fn unread(display: &str, why: &str, rejected: bool, source: Source) -> ParsedFile {
    let report = FileReport {
        path: display.to_string(),
        schema: "not read".into(),
        schema_detail: why.to_string(),
        problem_count: 1,
        problems: vec![Problem { line: 0, column: None, column_name: None, reason: why.to_string(), rejected }],
        ..FileReport::default()
    };
    ParsedFile { report, runs: Vec::new(), source, len: 0, stamp: None, metrics: None }
}

impl ParsedFile {
    /// Rows read and not rejected.
    pub fn rows_accepted(&self) -> usize {
        self.report.rows_read - self.report.rows_rejected
    }
}

/// What one file holds of one run.
#[derive(Debug, Clone)]
pub struct RunPart {
    /// The run as this file alone tells it: the values of its last checkpoint (largest duration,
    /// the later row on ties), or for task rows the sums of the tasks. `team`, `source_files` and
    /// the assessment are filled in by the catalog.
    pub run: Arc<Run>,
    /// Checkpoint rows: (has a duration, duration, line) of the row the values come from.
    pub best: Option<(bool, f64, usize)>,
    /// Keys of the distinct rows (run id, task, timestamp, duration, energy, emissions), sorted:
    /// the same row in a copy or a `.bak` counts once.
    pub keys: Vec<u64>,
    /// Task rows (`start_task`/`stop_task` files): each task's own delta, to sum across files
    /// without counting a copied task twice.
    pub tasks: Vec<TaskRow>,
}

/// One task row's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskRow {
    pub key: u64,
    pub line: usize,
    pub name: String,
    pub duration_s: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub cpu_energy_kwh: Option<f64>,
    pub gpu_energy_kwh: Option<f64>,
    pub ram_energy_kwh: Option<f64>,
    pub co2_kg: Option<f64>,
    pub water_l: Option<f64>,
    pub start_ms: Option<i64>,
    pub timestamp_ms: Option<i64>,
}

/// Reads `path` from disk, naming it `display` in reports.
/// A path that is not a file to read, or cannot be read, gives a report that says why (see
/// [`not_read`]); `None` when nothing is there any more.
pub fn ingest_path(path: &Path, display: &str) -> Option<ParsedFile> {
    if path.file_name().is_some_and(|n| n == crate::metrics::MLFLOW_RUN_FILE) {
        return mlflow_run(path, display);
    }
    if let Some(candidate) = path.file_name().and_then(|n| crate::stores::candidate(&n.to_string_lossy())) {
        return store_file(path, display, candidate);
    }
    if let Some(why) = metrics_refusal(path) {
        return Some(not_read(display, path, &why));
    }
    match read_log(path) {
        Ok((stamp, bytes)) => {
            let mut file = ingest_source(display, &bytes, Source::Path(path.to_path_buf()));
            // JSON that is not a table (a configuration, a tokenizer) or a `.log` no tracker
            // wrote is not the logs' business.
            if file.report.schema == NOT_A_TABLE || file.report.schema == NOT_A_TOOL_LOG {
                return None;
            }
            file.stamp = Some(stamp);
            Some(file)
        }
        Err(NotRead::Gone) => None,
        Err(NotRead::Because(why)) => Some(not_read(display, path, &why)),
    }
}

/// A log file's bytes (no more than [`MAX_FILE_BYTES`], whatever it has grown to since it was
/// opened) and their stamp, opened as [`open_log`] does.
pub fn read_log(path: &Path) -> Result<(Stamp, Vec<u8>), NotRead> {
    use std::io::Read;
    let (f, meta) = open_log(path)?;
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_FILE_BYTES) as usize);
    f.take(MAX_FILE_BYTES).read_to_end(&mut bytes).map_err(|e| NotRead::Because(format!("cannot be read: {e}")))?;
    Ok((Stamp::of_bytes(&meta, &bytes), bytes))
}

/// Parses bytes held in memory (kept, so a run's rows can be shown later).
pub fn ingest_bytes(display: &str, bytes: &[u8]) -> Result<ParsedFile, IngestError> {
    Ok(ingest_source(display, bytes, Source::Memory(Arc::new(bytes.to_vec()))))
}

/// Parses `bytes`, which `source` can give again. Never fails on content: what cannot be read is
/// reported.
pub fn ingest_source(display: &str, bytes: &[u8], source: Source) -> ParsedFile {
    let name = display.rsplit('/').next().unwrap_or(display);
    if name == crate::declare::FILE {
        return declarations_file(display, bytes, source);
    }
    if let Some(candidate) = crate::stores::candidate(name) {
        return store_in_memory(display, bytes, candidate, source);
    }
    if let Some(format) = crate::metrics::MetricsFormat::of_file_name(name) {
        let (text, encoding) = decode(bytes);
        let mut file = metrics_file(display, format, crate::metrics::read(format, &text), source);
        file.report.encoding = encoding.to_string();
        if format == crate::metrics::MetricsFormat::Csv {
            // The rows read, not the final values they reduce to.
            file.report.rows_read = text.lines().filter(|l| !l.trim().is_empty()).count().saturating_sub(1);
        }
        file.len = bytes.len();
        return file;
    }
    let (text, encoding) = decode(bytes);
    if let Some(format) = crate::trackers::detect(name, &text) {
        return tool_file(display, format, &text, encoding, source, bytes.len());
    }
    if name.to_ascii_lowercase().ends_with(".log") {
        let why = "neither a carbontracker log nor its output log (a log's first line must be carbontracker's \
                   `YYYY-MM-DD HH:MM:SS - carbontracker version …` or `… - CarbonTracker: …`): not read";
        let mut file = unread(display, why, true, source);
        file.report.schema = NOT_A_TOOL_LOG.into();
        return file;
    }
    if crate::results::is_json_table_name(name) {
        let lines = !name.to_ascii_lowercase().ends_with(".json");
        return match crate::results::read_json_table(&text, lines) {
            Some(table) => {
                table_file(display, MetricsFormat::ResultsTable, table, encoding, source, bytes.len(), Vec::new())
            }
            None => {
                let report = FileReport {
                    path: display.to_string(),
                    encoding: encoding.to_string(),
                    schema: NOT_A_TABLE.into(),
                    schema_detail: "JSON without a list of records holding numbers: not a results table".into(),
                    ..FileReport::default()
                };
                ParsedFile { report, runs: Vec::new(), source, len: bytes.len(), stamp: None, metrics: None }
            }
        };
    }
    let mut parts = Parts::default();
    let (report, layout) = scan(display, &text, encoding, true, |_, rec, row| parts.add(rec, row));
    // Not CodeCarbon's, but numbers: a results table, joined by what it holds once the runs
    // are known.
    if layout.is_none() && report.schema == "not CodeCarbon" {
        if let Some(table) = crate::results::read_table(&text) {
            return table_file(display, MetricsFormat::ResultsTable, table, encoding, source, bytes.len(), Vec::new());
        }
    }
    let runs = match layout {
        Some(layout) => parts.finish(&layout, &text, display, &report.schema),
        None => Vec::new(),
    };
    let mut report = report;
    report.runs = runs.len();
    ParsedFile { report, runs, source, len: bytes.len(), stamp: None, metrics: None }
}

/// The schema of a `.log` file that is no tracker's (not held when read from disk).
pub const NOT_A_TOOL_LOG: &str = "not a tracker's log";

/// Another tracker's file (see [`crate::trackers`]) as the catalog holds it.
fn tool_file(
    display: &str,
    format: crate::trackers::Format,
    text: &str,
    encoding: &str,
    source: Source,
    len: usize,
) -> ParsedFile {
    let read = crate::trackers::read(format, display, text, None);
    let version = read.runs.iter().find_map(|(r, _)| r.tool_version.clone());
    let report = FileReport {
        path: display.to_string(),
        encoding: encoding.to_string(),
        schema: match &version {
            Some(v) => format!("{} {v}", format.label()),
            None => format.label().to_string(),
        },
        schema_detail: read.detail,
        rows_read: read.rows_read,
        rows_rejected: read.rows_rejected,
        runs: read.runs.len(),
        problem_count: read.problem_count,
        problems: read.problems,
        ..FileReport::default()
    };
    let runs = read
        .runs
        .into_iter()
        .map(|(mut run, rows)| {
            run.schema = report.schema.clone();
            let line = rows.last_line;
            let mut keys = rows.keys;
            keys.sort_unstable();
            keys.dedup();
            // carbontracker's standard log gives way to its output log when that has the
            // actual totals; otherwise the one with the longer measured duration wins.
            let actual = format != crate::trackers::Format::CarbontrackerLog && run.energy_kwh.is_some();
            let best = (actual, run.duration_s.unwrap_or(0.0), line);
            RunPart { run: Arc::new(run), best: Some(best), keys, tasks: Vec::new() }
        })
        .collect();
    ParsedFile { report, runs, source, len, stamp: None, metrics: None }
}

/// A metrics file as the catalog holds it: its values, and a report for the Files page.
fn metrics_file(
    display: &str,
    format: crate::metrics::MetricsFormat,
    m: crate::metrics::Metrics,
    source: Source,
) -> ParsedFile {
    use std::collections::BTreeSet;
    let names: BTreeSet<&str> = m.values.iter().map(|v| v.name.as_str()).collect();
    let runs: BTreeSet<Option<&str>> = m.values.iter().map(|v| v.run_id.as_deref()).collect();
    let named = runs.iter().filter(|r| r.is_some()).count();
    let whose = match (named, runs.contains(&None)) {
        (0, _) => "the folder's run".to_string(),
        (n, false) => format!("{n} run{}", if n == 1 { "" } else { "s" }),
        (n, true) => format!("{n} named run{} and the folder's run", if n == 1 { "" } else { "s" }),
    };
    let report = FileReport {
        path: display.to_string(),
        schema: "metrics".into(),
        schema_detail: format!(
            "{}: {} final value{} of {} metric{} for {whose}",
            format.label(),
            m.values.len(),
            if m.values.len() == 1 { "" } else { "s" },
            names.len(),
            if names.len() == 1 { "" } else { "s" }
        ),
        rows_read: m.values.len(),
        problem_count: m.problems.len(),
        problems: m.problems,
        ..FileReport::default()
    };
    let metrics = Some(Arc::new(crate::metrics::MetricsFile::of(format, m.values)));
    ParsedFile { report, runs: Vec::new(), source, len: 0, stamp: None, metrics }
}

/// `carbon-dash.toml` as the catalog holds it: the joins it declares, or its mistakes.
fn declarations_file(display: &str, bytes: &[u8], source: Source) -> ParsedFile {
    let (text, encoding) = decode(bytes);
    let (declared, problems) = if bytes.len() > crate::declare::MAX_BYTES {
        let why = format!("{} bytes: a {} is a few lines, at most 1 MB", bytes.len(), crate::declare::FILE);
        (Default::default(), vec![Problem { line: 0, column: None, column_name: None, reason: why, rejected: true }])
    } else if display != crate::declare::FILE {
        let why = format!("only the {} at the top of the logs folder is read", crate::declare::FILE);
        (Default::default(), vec![Problem { line: 0, column: None, column_name: None, reason: why, rejected: true }])
    } else {
        match crate::declare::parse(&text) {
            Ok(d) => (d, Vec::new()),
            Err(p) => (Default::default(), p),
        }
    };
    let crate::declare::Declared { results: declarations, metrics: said } = declared;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let report = FileReport {
        path: display.to_string(),
        encoding: encoding.to_string(),
        schema: "declarations".into(),
        schema_detail: format!(
            "{} declared join{} of results tables, {} metric{} described",
            declarations.len(),
            plural(declarations.len()),
            said.len(),
            plural(said.len())
        ),
        rows_read: declarations.len() + said.len(),
        problem_count: problems.len(),
        problems,
        ..FileReport::default()
    };
    let metrics = crate::metrics::MetricsFile {
        declarations: Some(Arc::new(declarations)),
        directions: said.iter().filter_map(|m| m.higher.map(|h| (m.name.clone(), h))).collect(),
        units: said.iter().filter_map(|m| m.unit.clone().map(|u| (m.name.clone(), u))).collect(),
        ..crate::metrics::MetricsFile::of(crate::metrics::MetricsFormat::ResultsTable, Vec::new())
    };
    held_as_metrics(report, source, bytes.len(), metrics)
}

/// The schema of a JSON file that is not a results table (not held when read from disk).
const NOT_A_TABLE: &str = "not a results table";

/// A tracking tool's store (see [`crate::stores`]) as the catalog holds it; `None` when the
/// file is not one (another SQLite database) or is gone.
fn store_file(path: &Path, display: &str, candidate: crate::stores::Candidate) -> Option<ParsedFile> {
    let stamp = Stamp::of_path_plain(path)?;
    let source = Source::Path(path.to_path_buf());
    match crate::stores::read(path, candidate) {
        Ok(Some((store, read))) => {
            let mut file = store_table(display, store_format(store), read, source, stamp.size as usize);
            file.stamp = Some(stamp);
            Some(file)
        }
        Ok(None) => None,
        Err(why) if why == "gone" => None,
        Err(why) => Some(not_read(display, path, &why)),
    }
}

/// A store's table as the catalog holds it: what was left out of it said as notes, the
/// directions its study gives.
fn store_table(
    display: &str,
    format: MetricsFormat,
    read: crate::stores::Read,
    source: Source,
    len: usize,
) -> ParsedFile {
    let notes = read.notes.into_iter().map(|reason| Problem {
        line: 0,
        column: None,
        column_name: None,
        reason,
        rejected: false,
    });
    let mut file = table_file(display, format, read.table, "", source, len, notes.collect());
    if let Some(m) = file.metrics.as_mut().and_then(Arc::get_mut) {
        m.directions = read.directions;
    }
    file
}

/// A store given as bytes (an upload): read from a private temporary file (SQLite reads files),
/// removed at once.
fn store_in_memory(display: &str, bytes: &[u8], candidate: crate::stores::Candidate, source: Source) -> ParsedFile {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!(
        "carbon-dash-store-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&path).and_then(|mut f| f.write_all(bytes));
    let read = match written {
        Ok(()) => crate::stores::read(&path, candidate),
        Err(e) => Err(format!("cannot be held for reading: {e}")),
    };
    let _ = std::fs::remove_file(&path);
    // Given, not found: a store that cannot be read is refused.
    let why = match read {
        Ok(Some((store, read))) => return store_table(display, store_format(store), read, source, bytes.len()),
        Ok(None) => "neither MLflow's, Optuna's nor W&B's: not read".to_string(),
        Err(why) => why,
    };
    ParsedFile { len: bytes.len(), ..unread(display, &why, true, source) }
}

fn store_format(store: crate::stores::Store) -> MetricsFormat {
    use crate::stores::Store;
    match store {
        Store::Mlflow => MetricsFormat::MlflowDb,
        Store::Optuna => MetricsFormat::OptunaDb,
        Store::OptunaJournal => MetricsFormat::OptunaJournal,
        Store::Wandb => MetricsFormat::WandbRun,
    }
}

/// A store read by the server itself (an MLflow tracking server) as the catalog holds it, named
/// `display`: its table, or why it could not be read (said on the Files page).
pub fn held_store(display: &str, format: MetricsFormat, read: Result<crate::stores::Read, String>) -> ParsedFile {
    let source = Source::Memory(Arc::new(Vec::new()));
    match read {
        Ok(read) => store_table(display, format, read, source, 0),
        Err(why) => unread(display, &why, false, source),
    }
}

/// A results table (a CSV, a JSON file or a store) as the catalog holds it (see
/// [`crate::results`]), with `notes` on what was left out.
fn table_file(
    display: &str,
    format: MetricsFormat,
    table: crate::results::Table,
    encoding: &str,
    source: Source,
    len: usize,
    notes: Vec<Problem>,
) -> ParsedFile {
    let numeric = table.numeric_columns();
    let mut problems = notes;
    if table.rows_total > table.rows.len() {
        problems.push(Problem {
            line: 0,
            column: None,
            column_name: None,
            reason: format!(
                "{} data rows: the first {} are joined to runs, the others are not read",
                table.rows_total,
                table.rows.len()
            ),
            rejected: false,
        });
    }
    let report = FileReport {
        path: display.to_string(),
        encoding: encoding.to_string(),
        schema: "results table".into(),
        schema_detail: format!(
            "{}{} columns, {} of numbers ({}{}), {} rows{}: joined to runs by what it holds",
            if format == MetricsFormat::ResultsTable { String::new() } else { format!("{}: ", format.label()) },
            table.columns.len(),
            numeric.len(),
            numeric.iter().take(5).map(|&c| table.columns[c].as_str()).collect::<Vec<_>>().join(", "),
            if numeric.len() > 5 { ", …" } else { "" },
            table.rows_total,
            if table.headerless { ", no header" } else { "" }
        ),
        columns: table.columns.len(),
        rows_read: table.rows_total,
        problem_count: problems.len(),
        problems,
        ..FileReport::default()
    };
    let metrics = crate::metrics::MetricsFile {
        table: Some(Arc::new(table)),
        ..crate::metrics::MetricsFile::of(format, Vec::new())
    };
    held_as_metrics(report, source, len, metrics)
}

/// A file that holds no runs but values the catalog joins to them (not in the parse cache).
fn held_as_metrics(report: FileReport, source: Source, len: usize, m: crate::metrics::MetricsFile) -> ParsedFile {
    ParsedFile { report, runs: Vec::new(), source, len, stamp: None, metrics: Some(Arc::new(m)) }
}

/// Largest metrics CSV read (a million rows or so).
pub const METRICS_MAX_BYTES: u64 = 128 << 20;

/// Largest metrics JSON read: parsed whole into a tree, which costs several times the bytes (a
/// Trainer's state of a long run is a few MB).
pub const METRICS_JSON_MAX_BYTES: u64 = 32 << 20;

/// Why a metrics file is not read for its size, if so.
fn metrics_refusal(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy();
    let max = match crate::metrics::MetricsFormat::of_file_name(&name) {
        Some(crate::metrics::MetricsFormat::Csv) => METRICS_MAX_BYTES,
        Some(_) => METRICS_JSON_MAX_BYTES,
        None if crate::results::is_json_table_name(&name) => METRICS_JSON_MAX_BYTES,
        None => return None,
    };
    let meta = std::fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
    (meta.len() > max).then(|| {
        format!(
            "{} bytes, larger than the {} MiB a metrics file of this kind may have: not read",
            meta.len(),
            max >> 20
        )
    })
}

/// At most this many metric files, and bytes in all, are read for one MLflow run.
const MLFLOW_MAX_FILES: usize = 10_000;
const MLFLOW_MAX_BYTES: u64 = 64 << 20;

/// Whether `p` is a folder itself (not a link to one).
fn is_real_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// At most this many folders are listed under one MLflow run's `metrics/`.
const MLFLOW_MAX_DIRS: usize = 1000;

/// The files of an MLflow run's `metrics/` folder (a key with `/` is a sub-folder), without
/// following links (a link to a folder is not listed; one to a file is refused when read), up to
/// [`MLFLOW_MAX_DIRS`] folders and [`MLFLOW_MAX_FILES`] files: (key, path, size).
fn mlflow_metric_files(run_dir: &Path) -> (Vec<(String, PathBuf, u64)>, bool) {
    let root = run_dir.join("metrics");
    let (mut out, mut dirs, mut listed, mut cut) = (Vec::new(), Vec::new(), 0, false);
    if is_real_dir(&root) {
        dirs.push(root.clone());
    }
    while let Some(d) = dirs.pop() {
        listed += 1;
        if listed > MLFLOW_MAX_DIRS {
            cut = true;
            break;
        }
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(p),
                _ if out.len() >= MLFLOW_MAX_FILES => cut = true,
                _ => {
                    let key = p.strip_prefix(&root).unwrap_or(&p).to_string_lossy().replace('\\', "/");
                    let size = std::fs::symlink_metadata(&p).map_or(0, |m| m.len());
                    out.push((key, p, size));
                }
            }
        }
    }
    out.sort();
    (out, cut)
}

/// The stamp of an MLflow run: its `meta.yaml`'s, mixed with the size and modification time of
/// every metric file and of its `codecarbon.run_id` tag, so a value logged while the run goes on
/// (MLflow appends to the metric's file, not to `meta.yaml`) is a change. Reads metadata only.
pub fn mlflow_stamp(meta_yaml: &Path) -> Option<Stamp> {
    let mut stamp = Stamp::of_path_plain(meta_yaml)?;
    let run_dir = meta_yaml.parent().unwrap_or(Path::new("."));
    let mut mix = Vec::with_capacity(64);
    let mut add = |p: &Path| {
        if let Ok(m) = std::fs::symlink_metadata(p) {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            mix.extend_from_slice(&m.len().to_le_bytes());
            mix.extend_from_slice(&t.to_le_bytes());
            mix.extend_from_slice(p.as_os_str().as_encoded_bytes());
        }
    };
    add(&run_dir.join("tags").join("codecarbon.run_id"));
    for (_, p, _) in mlflow_metric_files(run_dir).0 {
        add(&p);
    }
    stamp.tail ^= fnv(&mix);
    Some(stamp)
}

/// A small text file (an MLflow tag), at most `max` bytes of it, never through a link or a pipe.
fn read_small(path: &Path, max: u64) -> Option<String> {
    use std::io::Read;
    let (f, _) = open_log(path).ok()?;
    let mut bytes = Vec::new();
    f.take(max).read_to_end(&mut bytes).ok()?;
    Some(decode(&bytes).0.into_owned())
}

/// An MLflow file-store run, read through its `meta.yaml`: the `codecarbon.run_id` tag and every
/// file under `metrics/` (see [`mlflow_metric_files`]); the stamp is [`mlflow_stamp`]. A run
/// MLflow marks deleted gives no values. Links, pipes and devices are not read, as for logs.
fn mlflow_run(path: &Path, display: &str) -> Option<ParsedFile> {
    let meta = match read_log(path) {
        Ok((_, meta)) => decode(&meta).0.into_owned(),
        Err(NotRead::Gone) => return None,
        Err(NotRead::Because(why)) => return Some(not_read(display, path, &why)),
    };
    let stamp = mlflow_stamp(path)?;
    let problem = |reason: String| Problem { line: 0, column: None, column_name: None, reason, rejected: true };
    let format = crate::metrics::MetricsFormat::MlflowRun;
    if meta.lines().any(|l| l.trim() == "lifecycle_stage: deleted") {
        let mut m = crate::metrics::Metrics::default();
        m.problems.push(problem("a deleted MLflow run (lifecycle_stage: deleted): its metrics are not used".into()));
        let mut file = metrics_file(display, format, m, Source::Path(path.to_path_buf()));
        file.stamp = Some(stamp);
        return Some(file);
    }
    let run_dir = path.parent().unwrap_or(Path::new("."));
    let tags = run_dir.join("tags");
    let tag = if is_real_dir(&tags) { read_small(&tags.join("codecarbon.run_id"), 4096) } else { None };
    let (listed, cut) = mlflow_metric_files(run_dir);
    let mut files: Vec<(String, String)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut bytes = 0u64;
    for (key, p, size) in listed {
        if bytes + size > MLFLOW_MAX_BYTES {
            skipped
                .push(format!("metrics/{key} and the rest: over the {} MiB read for one run", MLFLOW_MAX_BYTES >> 20));
            break;
        }
        match read_log(&p) {
            Ok((_, b)) => {
                bytes += b.len() as u64;
                files.push((key, decode(&b).0.into_owned()));
            }
            Err(NotRead::Gone) => {}
            Err(NotRead::Because(why)) if skipped.len() < 20 => skipped.push(format!("metrics/{key}: {why}")),
            Err(NotRead::Because(_)) => {}
        }
    }
    if cut {
        skipped.push(format!(
            "more than {MLFLOW_MAX_FILES} metric files or {MLFLOW_MAX_DIRS} folders: the rest are not read"
        ));
    }
    let mut m = crate::metrics::read_mlflow_run(tag.as_deref(), &files);
    m.problems.extend(skipped.into_iter().map(problem));
    let params = mlflow_params(run_dir, m.values.first().and_then(|v| v.run_id.clone()));
    let mut file = metrics_file(display, format, m, Source::Path(path.to_path_buf()));
    if let Some(held) = file.metrics.as_mut().and_then(Arc::get_mut) {
        held.params = params;
    }
    file.stamp = Some(stamp);
    Some(file)
}

/// Hyper-parameters an MLflow file-store run keeps under `params/` (a file each, named as the
/// parameter): at most [`MLFLOW_MAX_PARAMS`], each 4 KiB at most; links are not followed.
fn mlflow_params(run_dir: &Path, run_id: Option<String>) -> Vec<crate::metrics::ParamValue> {
    let dir = run_dir.join("params");
    if !is_real_dir(&dir) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<crate::metrics::ParamValue> = entries
        .flatten()
        .take(MLFLOW_MAX_PARAMS)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let value = read_small(&e.path(), 4096)?;
            Some(crate::metrics::ParamValue { run_id: run_id.clone(), name, value: value.trim().to_string() })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Parameters read for one MLflow file-store run at most.
const MLFLOW_MAX_PARAMS: usize = 1000;

/// The accepted rows of `run_id` in a file (for a run's page), in file order.
pub fn read_rows(display: &str, bytes: &[u8], run_id: &str) -> Vec<(u64, Checkpoint)> {
    let (text, encoding) = decode(bytes);
    let name = display.rsplit('/').next().unwrap_or(display);
    if let Some(format) = crate::trackers::detect(name, &text) {
        let read = crate::trackers::read(format, display, &text, Some(run_id));
        return read
            .runs
            .into_iter()
            .filter(|(r, _)| r.run_id == run_id)
            .flat_map(|(_, rows)| rows.keys.into_iter().zip(rows.kept))
            .collect();
    }
    let mut out = Vec::new();
    let mut nums = [None; N_NUM];
    scan(display, &text, encoding, false, |l, rec, row| {
        if row.run_id != run_id {
            return;
        }
        l.numbers(&text, rec, &mut nums, None);
        let n = |name: &str| nums[num_index(name)];
        out.push((
            row.key,
            Checkpoint {
                file: display.to_string(),
                line: row.line,
                timestamp: row.timestamp_ms.and_then(at_ms),
                task_name: row.task.map(str::to_string),
                duration_s: n(c::DURATION),
                energy_kwh: n(c::ENERGY_CONSUMED),
                cpu_energy_kwh: n(c::CPU_ENERGY),
                gpu_energy_kwh: n(c::GPU_ENERGY),
                ram_energy_kwh: n(c::RAM_ENERGY),
                co2_kg_reported: n(c::EMISSIONS),
                cpu_power_w: n(c::CPU_POWER),
                gpu_power_w: n(c::GPU_POWER),
                ram_power_w: n(c::RAM_POWER),
                cpu_utilization_percent: n(c::CPU_UTILIZATION_PERCENT),
                gpu_utilization_percent: n(c::GPU_UTILIZATION_PERCENT),
                ram_utilization_percent: n(c::RAM_UTILIZATION_PERCENT),
            },
        ));
    });
    out
}

/// Naive local time as CodeCarbon wrote it, from milliseconds of a UTC clock.
pub fn at_ms(ms: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.naive_utc())
}

/// Decodes bytes: UTF-8 (BOM stripped) or, when not valid UTF-8, Latin-1.
fn decode(bytes: &[u8]) -> (Cow<'_, str>, &'static str) {
    let (bytes, bom) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    match std::str::from_utf8(bytes) {
        Ok(s) if bom => (Cow::Borrowed(s), "UTF-8 with BOM"),
        Ok(s) => (Cow::Borrowed(s), "UTF-8"),
        Err(_) => {
            (Cow::Owned(bytes.iter().map(|&b| b as char).collect()), "Latin-1 (not valid UTF-8, decoded byte by byte)")
        }
    }
}

/// A field's value, or `None` for empty, space-only, `None`, `nan` and `null` cells.
fn value(raw: &str) -> Option<&str> {
    let v = raw.trim();
    match v.len() {
        0 => None,
        3 | 4 if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("nan") || v.eq_ignore_ascii_case("null") => {
            None
        }
        _ => Some(v),
    }
}

/// CodeCarbon writes naive local time, `2024-05-18T12:04:08` with optional fraction; spreadsheets
/// may re-save it with a space.
pub fn parse_timestamp(v: &str) -> Option<NaiveDateTime> {
    const FORMATS: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"];
    let v = v.trim();
    // A UTC offset (rare, hand-edited) is dropped: the naive wall-clock time is what CodeCarbon means.
    let v = v.strip_suffix('Z').unwrap_or(v);
    // chrono's %Y takes any digit count: a truncated "2-05-18T…" would become year 2.
    if !(v.len() >= 16 && v.as_bytes()[..4].iter().all(u8::is_ascii_digit) && v.as_bytes()[4] == b'-') {
        return None;
    }
    fast_timestamp(v).or_else(|| FORMATS.iter().find_map(|f| NaiveDateTime::parse_from_str(v, f).ok()))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]`, the form CodeCarbon writes, without chrono's format
/// interpreter (a tenth of the time). Anything else is left to the general formats.
fn fast_timestamp(v: &str) -> Option<NaiveDateTime> {
    crate::time::parse_iso(v)
}

/// Number columns as CodeCarbon names them, in the order of [`c::KNOWN`].
const NUMBER_COLUMNS: [&str; N_NUM] = {
    let mut out = [""; N_NUM];
    let mut i = 0;
    let mut j = 0;
    while i < c::KNOWN.len() {
        if matches!(c::KNOWN[i].1, Kind::Number) {
            out[j] = c::KNOWN[i].0;
            j += 1;
        }
        i += 1;
    }
    out
};
const N_NUM: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < c::KNOWN.len() {
        if matches!(c::KNOWN[i].1, Kind::Number) {
            n += 1;
        }
        i += 1;
    }
    n
};

fn num_index(name: &str) -> usize {
    NUMBER_COLUMNS.iter().position(|n| *n == name).unwrap_or(usize::MAX)
}

/// Where each column CodeCarbon writes sits in this file's header.
struct Layout {
    header: Vec<String>,
    header_raw: Vec<String>,
    num_pos: [Option<usize>; N_NUM],
    extra_pos: Vec<usize>,
    run_pos: Option<usize>,
    /// v1 files have no run_id: their experiment_id is the per-run id.
    v1: bool,
    ts_pos: Option<usize>,
    task_pos: Option<usize>,
    version_pos: Option<usize>,
    rate_in_grams: bool,
}

impl Layout {
    fn pos(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn text<'a>(&self, text: &'a str, rec: &'a Record, name: &str) -> Option<&'a str> {
        // In v1 files experiment_id is the run id, not an experiment.
        if self.v1 && name == c::EXPERIMENT_ID {
            return None;
        }
        self.pos(name).and_then(|p| value(rec.get(text, p)))
    }

    /// Parses every number column into `out`; what is not a number becomes `None` and, when
    /// `warnings` is given, a warning with its line and column.
    fn numbers(
        &self,
        text: &str,
        rec: &Record,
        out: &mut [Option<f64>; N_NUM],
        mut warnings: Option<&mut Vec<Problem>>,
    ) {
        for (slot, pos) in out.iter_mut().zip(&self.num_pos) {
            *slot = None;
            let Some(p) = *pos else { continue };
            let Some(v) = value(rec.get(text, p)) else { continue };
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => *slot = Some(x),
                _ => {
                    if let Some(w) = warnings.as_deref_mut() {
                        w.push(Problem {
                            line: rec.line,
                            column: Some(p + 1),
                            column_name: Some(self.header[p].clone()),
                            reason: format!("'{v}' is not a number: read as missing"),
                            rejected: false,
                        });
                    }
                }
            }
        }
    }

    fn tags(&self, text: &str, rec: &Record) -> Vec<(String, String)> {
        self.extra_pos
            .iter()
            .take(MAX_TAGS)
            .filter_map(|&p| {
                value(rec.get(text, p)).map(|v| {
                    let name = crate::text::shown(&self.header_raw[p]).into_owned();
                    (clip(name, MAX_TAG_CHARS), clip(crate::text::shown(v).into_owned(), MAX_TAG_CHARS))
                })
            })
            .collect()
    }

    /// The run as this row tells it (totals of a checkpoint row).
    fn run(&self, text: &str, rec: &Record, row: &Row, schema: &str) -> Run {
        let mut nums = [None; N_NUM];
        self.numbers(text, rec, &mut nums, None);
        let n = |name: &str| nums[num_index(name)];
        // As shown: control characters spaces, text-direction and invisible characters out.
        let t = |name: &str| self.text(text, rec, name).map(|v| crate::text::shown(v).into_owned());
        let rate_in_grams = self
            .version_pos
            .and_then(|p| value(rec.get(text, p)))
            .and_then(c::version_rate_in_grams)
            .unwrap_or(self.rate_in_grams);
        Run {
            run_id: row.run_id.to_string(),
            run_id_synthetic: row.synthetic,
            project_name: t(c::PROJECT_NAME),
            experiment_id: t(c::EXPERIMENT_ID),
            team: None,
            started_at: row.start_ms().and_then(at_ms),
            ended_at: row.timestamp_ms.and_then(at_ms),
            duration_s: n(c::DURATION),
            energy_kwh: n(c::ENERGY_CONSUMED),
            cpu_energy_kwh: n(c::CPU_ENERGY),
            gpu_energy_kwh: n(c::GPU_ENERGY),
            ram_energy_kwh: n(c::RAM_ENERGY),
            co2_kg_reported: n(c::EMISSIONS),
            emissions_rate_kg_per_s: n(c::EMISSIONS_RATE).map(|r| if rate_in_grams { r / 1000.0 } else { r }),
            cpu_power_w: n(c::CPU_POWER),
            gpu_power_w: n(c::GPU_POWER),
            ram_power_w: n(c::RAM_POWER),
            water_l: n(c::WATER_CONSUMED),
            country_name: t(c::COUNTRY_NAME),
            country_iso_code: t(c::COUNTRY_ISO_CODE),
            region: t(c::REGION),
            cloud_provider: t(c::CLOUD_PROVIDER),
            cloud_region: t(c::CLOUD_REGION),
            on_cloud: t(c::ON_CLOUD),
            os: t(c::OS),
            python_version: t(c::PYTHON_VERSION),
            codecarbon_version: t(c::CODECARBON_VERSION),
            cpu_count: n(c::CPU_COUNT),
            cpu_model: t(c::CPU_MODEL),
            gpu_count: n(c::GPU_COUNT),
            gpu_model: t(c::GPU_MODEL),
            longitude: n(c::LONGITUDE),
            latitude: n(c::LATITUDE),
            ram_total_size_gb: n(c::RAM_TOTAL_SIZE),
            tracking_mode: t(c::TRACKING_MODE),
            cpu_utilization_percent: n(c::CPU_UTILIZATION_PERCENT),
            gpu_utilization_percent: n(c::GPU_UTILIZATION_PERCENT),
            ram_utilization_percent: n(c::RAM_UTILIZATION_PERCENT),
            ram_used_gb: n(c::RAM_USED_GB),
            pue: n(c::PUE),
            checkpoints: 0,
            tasks: Vec::new(),
            schema: schema.to_string(),
            source_files: Vec::new(),
            tags: self.tags(text, rec),
            source: crate::model::RunSource::File,
            tool: None,
            tool_version: None,
            tool_basis: None,
            assessment: Default::default(),
        }
    }
}

/// An accepted row, as the scan hands it on.
struct Row<'a> {
    line: usize,
    run_id: Cow<'a, str>,
    synthetic: bool,
    task: Option<&'a str>,
    timestamp_ms: Option<i64>,
    duration_s: Option<f64>,
    nums: &'a [Option<f64>; N_NUM],
    key: u64,
}

impl Row<'_> {
    fn num(&self, name: &str) -> Option<f64> {
        self.nums[num_index(name)]
    }

    /// End minus duration (a missing duration counts as zero).
    fn start_ms(&self) -> Option<i64> {
        self.timestamp_ms.map(|t| t - (self.duration_s.unwrap_or(0.0) * 1000.0).round() as i64)
    }
}

/// FNV-1a over the parts, each ended by a zero byte: the same parts give the same key in every
/// process (the key identifies a row across files).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(mut self, part: &[u8]) -> Fnv {
        for &b in part.iter().chain(std::iter::once(&0)) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }
    fn num(self, v: Option<f64>) -> Fnv {
        match v {
            Some(x) => self.bytes(&x.to_bits().to_le_bytes()),
            None => self.bytes(b"-"),
        }
    }
}

/// Problems a file keeps: enough to see what is wrong with it, bounded whatever the file (its
/// `problem_count` stays exact; pages say "and N more").
pub const MAX_PROBLEMS_KEPT: usize = 200;

/// Characters of a problem's reason kept (a reason quotes the file's values).
const MAX_REASON_CHARS: usize = 300;

/// Counts a problem, and keeps it while fewer than [`MAX_PROBLEMS_KEPT`] are kept.
fn note(report: &mut FileReport, p: Problem) {
    report.problem_count += 1;
    if report.problems.len() < MAX_PROBLEMS_KEPT {
        // A reason quotes the file: shown without text-direction characters like the rest.
        let reason = clip(crate::text::shown(&p.reason).into_owned(), MAX_REASON_CHARS);
        let column_name = p.column_name.map(|n| clip(crate::text::shown(&n).into_owned(), MAX_TAG_CHARS));
        report.problems.push(Problem { reason, column_name, ..p });
    }
}

/// `s`, cut to `max` characters with an ellipsis.
pub(crate) fn clip(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// CodeCarbon columns a header has at least, for the file to be read as CodeCarbon's.
const MIN_KNOWN_COLUMNS: usize = 3;

/// User columns kept as a run's tags, and characters kept of each name and value: a file's
/// extra columns cost memory per run, so they are bounded (the Files page says what was left).
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_CHARS: usize = 100;

/// Reads the header and every row of `text`, handing each accepted row to `on_row`. With
/// `report_rows`, every problem is reported (the ingest); without, only counts (a run's page).
fn scan(
    display: &str,
    text: &str,
    encoding: &str,
    report_rows: bool,
    mut on_row: impl FnMut(&Layout, &Record, &Row),
) -> (FileReport, Option<Layout>) {
    let mut report = FileReport { path: display.to_string(), encoding: encoding.to_string(), ..FileReport::default() };
    if encoding.starts_with("Latin-1") {
        note(
            &mut report,
            Problem {
                line: 0,
                column: None,
                column_name: None,
                reason: "file is not valid UTF-8: decoded as Latin-1, so accented text may look different".into(),
                rejected: false,
            },
        );
    }
    let mut recs = records(text);
    let mut rec = Record::default();
    let has_header = recs.read_filled(&mut rec);
    // Names as written (trimmed) for user columns; lower-cased for binding CodeCarbon's.
    let header_raw: Vec<String> =
        if has_header { rec.iter(text).map(|h| h.trim().to_string()).collect() } else { Vec::new() };
    let header: Vec<String> = header_raw.iter().map(|h| h.to_ascii_lowercase()).collect();
    let generation = c::detect_generation(&header);
    let is_task = header.first().map(String::as_str) == Some(c::TASK_NAME);
    report.columns = header.len();
    report.schema = if is_task { format!("{} task", generation.label) } else { generation.label.to_string() };
    report.schema_detail = format!(
        "{} columns — CodeCarbon {}{}",
        header.len(),
        generation.versions,
        if is_task { ", task file (start_task/stop_task: one row per task)" } else { "" }
    );
    let known_pos = |name: &str| header.iter().position(|h| h == name);
    let extra: Vec<usize> = (0..header.len()).filter(|&i| c::kind_of(&header[i]).is_none()).collect();
    report.extra_columns = extra
        .iter()
        .take(MAX_TAGS)
        .map(|&i| clip(crate::text::shown(&header_raw[i]).into_owned(), MAX_TAG_CHARS))
        .collect();
    report.missing_columns =
        generation.columns.iter().filter(|col| known_pos(col).is_none()).map(|s| s.to_string()).collect();
    let present_order: Vec<&str> =
        header.iter().map(String::as_str).filter(|h| generation.columns.contains(h)).collect();
    let canonical_order: Vec<&str> =
        generation.columns.iter().copied().filter(|col| present_order.contains(col)).collect();
    report.reordered = present_order != canonical_order;

    // A CSV beside the logs (a metrics table, a power trace, a list of phases) may share a
    // column or two with CodeCarbon's; a CodeCarbon file has its energy or emissions and at
    // least three of its columns.
    let measured = known_pos(c::ENERGY_CONSUMED).is_some() || known_pos(c::EMISSIONS).is_some();
    let known = header.iter().filter(|h| c::kind_of(h).is_some()).count();
    let countable = measured && known >= MIN_KNOWN_COLUMNS;
    let too_wide = header.len() > MAX_COLUMNS;
    if !has_header || !countable || too_wide {
        note(
            &mut report,
            Problem {
                line: if has_header { 1 } else { 0 },
                column: None,
                column_name: None,
                reason: if !has_header {
                    "empty file: no header".into()
                } else if too_wide {
                    format!(
                        "the header has {} columns: CodeCarbon writes at most about 40, so the file is not read \
                     (more than {MAX_COLUMNS} user columns are not kept as tags)",
                        header.len()
                    )
                } else if !measured {
                    format!(
                        "not a CodeCarbon file: the header has neither energy_consumed nor emissions ({} of \
                         CodeCarbon's columns)",
                        known
                    )
                } else {
                    format!(
                        "not a CodeCarbon file: {known} of CodeCarbon's columns, where its files have at least \
                         {MIN_KNOWN_COLUMNS} (timestamp, run_id, duration, …)"
                    )
                },
                rejected: true,
            },
        );
        while recs.read_filled(&mut rec) {
            report.rows_read += 1;
        }
        report.rows_rejected = report.rows_read;
        if has_header && !too_wide {
            report.missing_columns.clear();
            report.extra_columns.clear();
            report.schema = "not CodeCarbon".into();
            report.schema_detail = format!("{} columns, {known} of them CodeCarbon's", header.len());
        }
        return (report, None);
    }
    if extra.len() > MAX_TAGS {
        note(
            &mut report,
            Problem {
                line: 1,
                column: extra.get(MAX_TAGS).map(|i| i + 1),
                column_name: None,
                reason: format!(
                    "{} user columns: the first {MAX_TAGS} are kept as tags (names and values cut to {MAX_TAG_CHARS} \
                     characters), the other {} are not kept",
                    extra.len(),
                    extra.len() - MAX_TAGS
                ),
                rejected: false,
            },
        );
    }

    let (p_run, p_exp) = (known_pos(c::RUN_ID), known_pos(c::EXPERIMENT_ID));
    let layout = Layout {
        num_pos: NUMBER_COLUMNS.map(known_pos),
        extra_pos: (0..header.len()).filter(|&i| c::kind_of(&header[i]).is_none()).collect(),
        run_pos: p_run.or(p_exp),
        v1: p_run.is_none() && p_exp.is_some(),
        ts_pos: known_pos(c::TIMESTAMP),
        task_pos: known_pos(c::TASK_NAME),
        version_pos: known_pos(c::CODECARBON_VERSION),
        rate_in_grams: generation.rate_in_grams,
        header,
        header_raw,
    };
    let parts_idx: [usize; 3] = [num_index(c::CPU_ENERGY), num_index(c::GPU_ENERGY), num_index(c::RAM_ENERGY)];
    let (i_dur, i_energy, i_co2) = (num_index(c::DURATION), num_index(c::ENERGY_CONSUMED), num_index(c::EMISSIONS));
    let mut nums = [None; N_NUM];
    let mut warnings = Vec::new();
    // Rows dated after this are noted (read once a file).
    let latest_ms = (crate::collect::now_utc() + crate::collect::PLAUSIBLE_FUTURE).and_utc().timestamp_millis();
    while recs.read_filled(&mut rec) {
        report.rows_read += 1;
        let line = rec.line;
        // A rejected row is quoted in its report, so nothing the file holds is lost from view.
        let reject = |report: &mut FileReport, rec: &Record, reason: String| {
            report.rows_rejected += 1;
            if report_rows {
                note(
                    report,
                    Problem {
                        line,
                        column: None,
                        column_name: None,
                        reason: format!("{reason} — row: {}", excerpt(rec, text)),
                        rejected: true,
                    },
                );
            }
        };
        if rec.unterminated_quote {
            reject(
                &mut report,
                &rec,
                "a quote opened on this line is never closed: the rest of the file is one broken row".into(),
            );
            continue;
        }
        if rec.len() != layout.header.len() {
            let reason = format!(
                "{} fields where the header has {}: not read, because the values cannot be matched to columns \
                 (CodeCarbon 3.2.9 drops empty fields when appending; concurrent writers leave fragments)",
                rec.len(),
                layout.header.len()
            );
            reject(&mut report, &rec, reason);
            continue;
        }
        if rec.iter(text).zip(&layout.header).all(|(f, h)| f.trim().eq_ignore_ascii_case(h)) {
            if report_rows {
                note(
                    &mut report,
                    Problem {
                        line,
                        column: None,
                        column_name: None,
                        reason: "header repeated inside the file: skipped".into(),
                        rejected: false,
                    },
                );
            }
            report.rows_read -= 1;
            continue;
        }
        warnings.clear();
        layout.numbers(text, &rec, &mut nums, report_rows.then_some(&mut warnings));
        if nums[i_dur].is_none()
            && nums[i_energy].is_none()
            && nums[i_co2].is_none()
            && parts_idx.iter().all(|&i| nums[i].is_none())
        {
            let first = if rec.is_empty() { "" } else { rec.get(text, 0).trim() };
            let reason = format!(
                "fragment row (starts with '{first}'): no duration, energy or emissions — a tail left by \
                 concurrent appends or a truncated line"
            );
            reject(&mut report, &rec, reason);
            continue;
        }
        for w in warnings.drain(..) {
            note(&mut report, w);
        }

        let timestamp = layout.ts_pos.and_then(|p| value(rec.get(text, p)).map(|v| (p, v)));
        let timestamp_ms = match timestamp {
            Some((p, v)) => match parse_timestamp(v) {
                Some(t) => Some(t.and_utc().timestamp_millis()),
                None => {
                    if report_rows {
                        note(
                            &mut report,
                            Problem {
                                line,
                                column: Some(p + 1),
                                column_name: Some(c::TIMESTAMP.into()),
                                reason: format!("timestamp '{v}' is not a date (truncated?): row kept without a time"),
                                rejected: false,
                            },
                        );
                    }
                    None
                }
            },
            None => None,
        };
        if report_rows {
            implausible(&mut report, &layout, line, timestamp.zip(timestamp_ms), latest_ms, &nums);
        }
        let id = layout.run_pos.and_then(|p| value(rec.get(text, p)));
        let (run_id, synthetic) = match id {
            Some(id) => (crate::text::shown(id), false),
            None => {
                let made =
                    format!("row-{:016x}", rec.iter(text).fold(Fnv::new(), |h, f| h.bytes(f.trim().as_bytes())).0);
                if report_rows {
                    note(
                        &mut report,
                        Problem {
                            line,
                            column: layout.run_pos.map(|p| p + 1),
                            column_name: Some(if layout.v1 { c::EXPERIMENT_ID } else { c::RUN_ID }.into()),
                            reason: format!("no run id: the row is counted as a run of its own, '{made}'"),
                            rejected: false,
                        },
                    );
                }
                (Cow::Owned(made), true)
            }
        };
        let task = layout.task_pos.and_then(|p| value(rec.get(text, p)));
        let key = Fnv::new()
            .bytes(run_id.as_bytes())
            .bytes(task.unwrap_or("\u{0}").as_bytes())
            .bytes(&timestamp_ms.map_or(i64::MIN, |t| t).to_le_bytes())
            .num(nums[i_dur])
            .num(nums[i_energy])
            .num(nums[i_co2])
            .0;
        let row = Row { line, run_id, synthetic, task, timestamp_ms, duration_s: nums[i_dur], nums: &nums, key };
        on_row(&layout, &rec, &row);
    }
    (report, Some(layout))
}

/// `x` as written, or in scientific notation when very large or small.
fn short(x: f64) -> String {
    if x != 0.0 && !(1e-3..1e6).contains(&x.abs()) {
        format!("{x:.3e}")
    } else {
        format!("{x}")
    }
}

/// Notes a row whose values no machine can have (see [`crate::collect::MAX_MACHINE_W`]): a time
/// before 1990 or after tomorrow, a duration under a millisecond with energy, a mean power above
/// what one machine draws. The row is kept as written; the note says what to check.
fn implausible(
    report: &mut FileReport,
    layout: &Layout,
    line: usize,
    timestamp: Option<((usize, &str), i64)>,
    latest_ms: i64,
    nums: &[Option<f64>; N_NUM],
) {
    use crate::collect::{MAX_MACHINE_W, MIN_DURATION_S};
    /// 1990-01-01T00:00:00, in ms.
    const EARLIEST_MS: i64 = 631_152_000_000;
    let problem = |column: Option<usize>, name: &str, reason: String| Problem {
        line,
        column: column.map(|p| p + 1),
        column_name: Some(name.into()),
        reason,
        rejected: false,
    };
    if let Some(((p, v), ms)) = timestamp {
        if !(EARLIEST_MS..=latest_ms).contains(&ms) {
            let reason = format!(
                "timestamp '{v}' is before 1990 or after tomorrow: kept as written, but the machine's clock was \
                 probably wrong"
            );
            note(report, problem(Some(p), c::TIMESTAMP, reason));
        }
    }
    let (duration, energy) = (nums[num_index(c::DURATION)], nums[num_index(c::ENERGY_CONSUMED)]);
    if let (Some(d), Some(e)) = (duration, energy) {
        let watts = e * 3.6e6 / d;
        if (d < MIN_DURATION_S && e > 0.0) || watts > MAX_MACHINE_W {
            let mean = if d < MIN_DURATION_S { "no time at all".to_string() } else { crate::units::power_w(watts) };
            let reason = format!(
                "{} kWh in {} s is a mean of {mean}, more than one machine draws ({} kW at most): kept as \
                 written, but check the tracker",
                short(e),
                short(d),
                MAX_MACHINE_W / 1000.0
            );
            note(report, problem(layout.pos(c::ENERGY_CONSUMED), c::ENERGY_CONSUMED, reason));
        }
    }
}

/// The runs of one file as its rows arrive: per run, where its best checkpoint row is, the keys
/// of its rows, and its task rows.
#[derive(Default)]
struct Parts {
    order: Vec<Building>,
    index: HashMap<String, usize>,
    last: Option<usize>,
}

struct Building {
    run_id: String,
    synthetic: bool,
    /// (has a duration, duration, byte offset, line) of the checkpoint row with the largest duration.
    best: Option<(bool, f64, usize, usize)>,
    /// Byte offset and line of the last task row (its other values describe the run).
    last_task: Option<(usize, usize)>,
    keys: Vec<u64>,
    tasks: Vec<TaskRow>,
}

impl Parts {
    fn add(&mut self, rec: &Record, row: &Row) {
        // Rows of a run usually follow each other: look the last one up before hashing.
        let i = match self.last.filter(|&i| self.order[i].run_id == row.run_id) {
            Some(i) => i,
            None => match self.index.get(row.run_id.as_ref()) {
                Some(&i) => i,
                None => {
                    self.index.insert(row.run_id.to_string(), self.order.len());
                    self.order.push(Building {
                        run_id: row.run_id.to_string(),
                        synthetic: row.synthetic,
                        best: None,
                        last_task: None,
                        keys: Vec::new(),
                        tasks: Vec::new(),
                    });
                    self.order.len() - 1
                }
            },
        };
        self.last = Some(i);
        let b = &mut self.order[i];
        match row.task {
            None => {
                // Only checkpoint rows count as checkpoints (task rows are counted as tasks).
                b.keys.push(row.key);
                let cand = (row.duration_s.is_some(), row.duration_s.unwrap_or(0.0));
                // Ties go to the later row.
                if b.best.is_none_or(|(has, d, _, _)| cand >= (has, d)) {
                    b.best = Some((cand.0, cand.1, rec.start, rec.line));
                }
            }
            Some(name) => {
                if b.last_task.is_none_or(|(_, l)| rec.line >= l) {
                    b.last_task = Some((rec.start, rec.line));
                }
                b.tasks.push(TaskRow {
                    key: row.key,
                    line: row.line,
                    name: name.to_string(),
                    duration_s: row.duration_s,
                    energy_kwh: row.num(c::ENERGY_CONSUMED),
                    cpu_energy_kwh: row.num(c::CPU_ENERGY),
                    gpu_energy_kwh: row.num(c::GPU_ENERGY),
                    ram_energy_kwh: row.num(c::RAM_ENERGY),
                    co2_kg: row.num(c::EMISSIONS),
                    water_l: row.num(c::WATER_CONSUMED),
                    start_ms: row.start_ms(),
                    timestamp_ms: row.timestamp_ms,
                });
            }
        }
    }

    /// Reads each run's describing row again (one row per run) and builds its [`RunPart`].
    fn finish(self, layout: &Layout, text: &str, display: &str, schema: &str) -> Vec<RunPart> {
        let mut rec = Record::default();
        let mut reread = |offset: usize, line: usize| -> Option<Record> {
            let mut r = records(&text[offset..]);
            r.read(&mut rec).then(|| {
                let mut out = std::mem::take(&mut rec);
                out.line = line;
                out
            })
        };
        let mut out = Vec::with_capacity(self.order.len());
        for mut b in self.order {
            b.keys.sort_unstable();
            b.keys.dedup();
            let (offset, line) = match (b.best, b.last_task) {
                (Some((_, _, o, l)), _) => (o, l),
                (None, Some((o, l))) => (o, l),
                (None, None) => continue,
            };
            let Some(r) = reread(offset, line) else { continue };
            // Field values come from the text at `offset`: fix the record to read them there.
            let sub = &text[offset..];
            let mut nums = [None; N_NUM];
            layout.numbers(sub, &r, &mut nums, None);
            let ts = layout.ts_pos.and_then(|p| value(r.get(sub, p))).and_then(parse_timestamp);
            let row = Row {
                line,
                run_id: Cow::Borrowed(&b.run_id),
                synthetic: b.synthetic,
                task: None,
                timestamp_ms: ts.map(|t| t.and_utc().timestamp_millis()),
                duration_s: nums[num_index(c::DURATION)],
                nums: &nums,
                key: 0,
            };
            let mut run = layout.run(sub, &r, &row, schema);
            let part = if b.best.is_some() {
                run.checkpoints = b.keys.len();
                run.source_files = vec![display.to_string()];
                RunPart {
                    run: Arc::new(run),
                    best: b.best.map(|(h, d, _, l)| (h, d, l)),
                    keys: b.keys,
                    tasks: Vec::new(),
                }
            } else {
                let mut tasks = b.tasks;
                dedup_tasks(&mut tasks);
                sum_tasks(&mut run, &tasks);
                run.source_files = vec![display.to_string()];
                RunPart { run: Arc::new(run), best: None, keys: b.keys, tasks }
            };
            out.push(part);
        }
        out
    }
}

/// Keeps the first of identical task rows.
pub fn dedup_tasks(tasks: &mut Vec<TaskRow>) {
    let mut seen = std::collections::HashSet::new();
    tasks.retain(|t| seen.insert(t.key));
}

/// A task run's totals: each task row is its own delta, so the run is their sum; it starts with
/// its first task and ends with its last.
pub fn sum_tasks(run: &mut Run, tasks: &[TaskRow]) {
    fn sum(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
        v.flatten().fold(None, |acc, x| Some(acc.unwrap_or(0.0) + x))
    }
    run.duration_s = sum(tasks.iter().map(|t| t.duration_s));
    run.energy_kwh = sum(tasks.iter().map(|t| t.energy_kwh));
    run.cpu_energy_kwh = sum(tasks.iter().map(|t| t.cpu_energy_kwh));
    run.gpu_energy_kwh = sum(tasks.iter().map(|t| t.gpu_energy_kwh));
    run.ram_energy_kwh = sum(tasks.iter().map(|t| t.ram_energy_kwh));
    run.co2_kg_reported = sum(tasks.iter().map(|t| t.co2_kg));
    run.water_l = sum(tasks.iter().map(|t| t.water_l));
    run.started_at = tasks.iter().filter_map(|t| t.start_ms).min().and_then(at_ms);
    run.ended_at = tasks.iter().filter_map(|t| t.timestamp_ms).max().and_then(at_ms);
    run.tasks = tasks.iter().map(|t| t.name.clone()).collect();
    run.checkpoints = tasks.len();
}

/// The row as written, shortened to 120 characters.
fn excerpt(rec: &Record, text: &str) -> String {
    let mut row = String::new();
    for (i, f) in rec.iter(text).enumerate() {
        if i > 0 {
            row.push(',');
        }
        row.push_str(f);
        if row.len() > 480 {
            break;
        }
    }
    match row.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &row[..i]),
        None => row,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_rows_are_kept_with_a_problem_and_text_direction_characters_are_left_out() {
        let csv = "timestamp,project_name,run_id,duration,emissions,energy_consumed,cpu_model\n\
                   2026-10-01T10:00:00,p\u{202E}fdp.exe,ok,10,0.0001,0.001,Xeon\u{200B}\n\
                   0001-01-01T00:00:00,p,old,10,0.0001,0.001,Xeon\n\
                   9999-12-31T00:00:00,p,future,10,0.0001,0.001,Xeon\n\
                   2026-10-01T10:00:00,p,\u{2066}huge,1e-300,1,1e12,Xeon\n";
        let f = ingest_bytes("odd.csv", csv.as_bytes()).expect("parsed");
        assert_eq!((f.report.rows_read, f.report.rows_rejected), (4, 0));
        let lines: Vec<(usize, Option<&str>)> =
            f.report.problems.iter().map(|p| (p.line, p.column_name.as_deref())).collect();
        assert_eq!(lines, [(3, Some("timestamp")), (4, Some("timestamp")), (5, Some("energy_consumed"))]);
        assert!(f.report.problems[2].reason.contains("more than one machine draws"), "{:?}", f.report.problems);
        let ok = f.runs.iter().find(|r| r.run.run_id == "ok").expect("run ok");
        assert_eq!(ok.run.project_name.as_deref(), Some("pfdp.exe"));
        assert_eq!(ok.run.cpu_model.as_deref(), Some("Xeon"));
        assert!(f.runs.iter().any(|r| r.run.run_id == "huge"), "the id without its isolate");
        assert!(f.runs.iter().any(|r| r.run.energy_kwh == Some(1e12)), "values kept as written");
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_the_general_formats() {
        for v in ["2024-05-18T12:04:08", "2024-05-18 12:04:08.123456", "2024-05-18T12:04:08.5", "2021-02-28T00:00:00"] {
            let general = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok());
            assert_eq!(fast_timestamp(v), general, "{v}");
        }
        for v in ["2024-02-30T12:04:08", "2024-05-18T12:04:08+02:00", "2024-05-18T12:04", "2024-05-18T12:04:60"] {
            assert_eq!(fast_timestamp(v), None, "{v}");
        }
        assert!(parse_timestamp("2024-05-18T12:04").is_some());
    }
}
