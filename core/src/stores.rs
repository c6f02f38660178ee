//! Tracking tools' stores beside the logs, each read as a results table (a row per run or trial,
//! its metrics, hyper-parameters and names) and joined to CodeCarbon's runs like any other
//! table (see [`crate::results`]):
//!
//! - MLflow's database (`mlflow.db`, SQLite): active runs of active experiments, their tags,
//!   params and final metrics (`latest_metrics`);
//! - Optuna's storage, SQLite (`optuna.db`) or journal (a JSON-lines operation log): complete
//!   trials, their objective values (named as the study names them), params and user attributes;
//! - W&B's run file (`run-<id>.wandb`, what offline runs write): its config, history and summary;
//! - an MLflow tracking server's runs, as its REST API answers them (fetched by the server).
//!
//! Stores are read, never written: SQLite files are opened read-only (a short read that never
//! holds a lock a writer would wait long for), with a time limit and row limits, whatever their
//! size.

use crate::results::{Cell, ColumnKind, Table};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Which store a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Mlflow,
    Optuna,
    OptunaJournal,
    Wandb,
}

/// A store's table: rows are runs (or trials), with what the store says of the metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Read {
    pub table: Table,
    /// Metric name → whether higher is better, where the store says (Optuna's directions).
    pub directions: Vec<(String, bool)>,
    /// What was left out, and why (a corrupt block, rows over the limit).
    pub notes: Vec<String>,
}

/// Longest a SQLite store is read for; a larger one is read in part, and says so.
pub const SQLITE_TIME_LIMIT: Duration = Duration::from_secs(10);

/// Largest journal or W&B run file read.
pub const MAX_LOG_BYTES: u64 = 512 << 20;

/// What a file's name says it may be; its content decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// `.db`, `.sqlite`, `.sqlite3`: MLflow's or Optuna's, once open.
    Sqlite,
    /// A name holding `journal` (not SQLite's own `-journal`): Optuna's when it starts with one.
    Journal,
    /// `.wandb`.
    Wandb,
}

/// Which store a file of this name may be.
pub fn candidate(name: &str) -> Option<Candidate> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".db") || lower.ends_with(".sqlite") || lower.ends_with(".sqlite3") {
        return Some(Candidate::Sqlite);
    }
    if lower.ends_with(".wandb") {
        return Some(Candidate::Wandb);
    }
    let ext_ok = ["", "log", "jsonl", "txt"].contains(&lower.rsplit_once('.').map_or("", |(_, e)| e));
    (lower.contains("journal") && ext_ok).then_some(Candidate::Journal)
}

/// Reads the store at `path`: `Ok(None)` when it is not one (another SQLite database, a file
/// that only has the name), the reason when it cannot be read.
pub fn read(path: &Path, candidate: Candidate) -> Result<Option<(Store, Read)>, String> {
    match candidate {
        Candidate::Sqlite => read_sqlite(path),
        Candidate::Journal => Ok(read_journal(path)?.map(|r| (Store::OptunaJournal, r))),
        Candidate::Wandb => Ok(Some((Store::Wandb, read_wandb(path)?))),
    }
}

/// The store at `path`, opened as logs are (no link, no pipe); "gone" when it is not there.
fn open(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), String> {
    crate::ingest::open_store(path).map_err(|e| match e {
        crate::ingest::NotRead::Gone => "gone".to_string(),
        crate::ingest::NotRead::Because(why) => why,
    })
}

fn row(cells: &mut Vec<(String, ColumnKind, Cell)>, name: &str, kind: ColumnKind, cell: Cell) {
    if !matches!(cell, Cell::Empty) {
        cells.push((reserved(name.to_string(), kind), kind, cell));
    }
}

/// The columns stores name their runs by: a parameter or value of the same name is renamed, so
/// it does not take their place.
const KEY_COLUMNS: [&str; 8] =
    ["MLflow run", "run name", "experiment", "study", "trial", "W&B run", "W&B project", "group"];

fn reserved(name: String, kind: ColumnKind) -> String {
    match kind {
        ColumnKind::Key => name,
        ColumnKind::Param if KEY_COLUMNS.contains(&name.as_str()) => format!("{name} (parameter)"),
        _ if KEY_COLUMNS.contains(&name.as_str()) => format!("{name} (value)"),
        _ => name,
    }
}

/// A number as a cell, its text as Rust writes it (shortest round trip).
fn number(x: f64) -> Cell {
    if x.is_finite() {
        Cell::Number(x, x.to_string().into())
    } else {
        Cell::Empty
    }
}

/// A value kept as JSON text (`"abc"`, `5.5e-07`) as a cell.
fn json_cell(text: &str) -> Cell {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => Cell::of_json(&v),
        Err(_) => Cell::of(text),
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite: MLflow and Optuna.

fn read_sqlite(path: &Path) -> Result<Option<(Store, Read)>, String> {
    use rusqlite::OpenFlags;
    // A regular file that starts as SQLite files do (not a FIFO or a link: nothing blocks).
    let mut head = [0u8; 100];
    {
        use std::io::Read as _;
        let (mut f, _) = open(path)?;
        if f.read_exact(&mut head).is_err() || &head[..16] != b"SQLite format 3\0" {
            return Ok(None);
        }
    }
    // SQLite opens the database's journal, WAL and shared-memory files by their names: each must
    // be a regular file if there (a pipe named mlflow.db-journal would block the read forever).
    let sibling = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::fs::symlink_metadata(std::path::PathBuf::from(name))
    };
    for suffix in ["-journal", "-wal", "-shm"] {
        if let Ok(m) = sibling(suffix) {
            if !m.file_type().is_file() {
                return Err(format!("its {suffix} file is not a regular file: not read"));
            }
        }
    }
    // In WAL mode (header bytes 18 and 19), a reader without the -wal and -shm files of an open
    // writer would create them: read it as of its last checkpoint instead, writing nothing.
    let wal = head[18] == 2 && head[19] == 2;
    let immutable = wal && !(sibling("-wal").is_ok() && sibling("-shm").is_ok());
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let open = || -> rusqlite::Result<rusqlite::Connection> {
        let uri = format!("file:{}?mode=ro{}", uri_path(path), if immutable { "&immutable=1" } else { "" });
        let c = rusqlite::Connection::open_with_flags(uri, flags)?;
        c.busy_timeout(Duration::from_secs(2))?;
        // A file from anywhere: no value over 1 MB, no function its schema names runs.
        c.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 1 << 20)?;
        c.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        c.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
        // Little memory whatever the file's size.
        c.execute_batch("PRAGMA cache_size = -4096; PRAGMA mmap_size = 0;")?;
        c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(c)
    };
    let mut conn = open().map_err(|e| format!("cannot be opened as SQLite: {e}"))?;
    let started = Instant::now();
    conn.progress_handler(10_000, Some(move || started.elapsed() > SQLITE_TIME_LIMIT))
        .map_err(|e| format!("cannot be read as SQLite: {e}"))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
        .map_err(|e| format!("cannot be read as SQLite: {e}"))?;
    let has = |t: &str| tables.iter().any(|x| x == t);
    let timed_out = |e: rusqlite::Error| -> String {
        if started.elapsed() > SQLITE_TIME_LIMIT {
            format!("took over {} s to read: not read", SQLITE_TIME_LIMIT.as_secs())
        } else {
            format!("cannot be read: {e}")
        }
    };
    let (store, mut read) =
        if has("runs") && has("latest_metrics") && has("experiments") && has("params") && has("tags") {
            (Store::Mlflow, mlflow(&conn).map_err(timed_out)?)
        } else if has("trials") && has("trial_values") && has("studies") && has("trial_params") {
            (Store::Optuna, optuna(&conn).map_err(timed_out)?)
        } else {
            return Ok(None);
        };
    if immutable {
        read.notes.push("in WAL mode with no writer open: read as of its last checkpoint".into());
    }
    Ok(Some((store, read)))
}

/// `path` for a SQLite URI (`%`, `?`, `#` escaped).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Rows read from one table of an Optuna store at most (its values, params, attributes).
const MAX_STORE_ROWS: usize = 2_000_000;

type Rows = Vec<crate::results::NamedRow>;

fn mlflow(conn: &rusqlite::Connection) -> rusqlite::Result<Read> {
    let mut runs: Rows = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    // The newest runs when there are too many to keep.
    let mut stmt = conn.prepare(
        "SELECT r.run_uuid, r.name, e.name FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id \
         WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' \
         ORDER BY r.start_time DESC, r.run_uuid DESC LIMIT ?1",
    )?;
    let mut rows = stmt.query([crate::results::MAX_ROWS as i64 + 1])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let mut cells = Vec::new();
        row(&mut cells, "MLflow run", ColumnKind::Key, Cell::of(&id));
        row(&mut cells, "run name", ColumnKind::Key, Cell::of(&r.get::<_, Option<String>>(1)?.unwrap_or_default()));
        row(&mut cells, "experiment", ColumnKind::Key, Cell::of(&r.get::<_, Option<String>>(2)?.unwrap_or_default()));
        ids.push(id);
        runs.push((0, cells));
    }
    let mut notes = Vec::new();
    if runs.len() > crate::results::MAX_ROWS {
        runs.truncate(crate::results::MAX_ROWS);
        ids.truncate(crate::results::MAX_ROWS);
        notes.push(format!("over {} runs: the newest {} are read", crate::results::MAX_ROWS, crate::results::MAX_ROWS));
    }
    // Oldest first, as the runs were logged.
    runs.reverse();
    ids.reverse();
    for (i, r) in runs.iter_mut().enumerate() {
        r.0 = i + 1;
    }
    let at: HashMap<String, usize> = ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect();
    // Tags, params and metrics share one budget of rows read: what a table keeps at most.
    let mut budget = crate::results::MAX_CELLS;
    let mut add = |sql: &str, kind: ColumnKind, prefix: &str, what: &str| -> rusqlite::Result<()> {
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([budget as i64 + 1])?;
        let mut read = 0usize;
        while let Some(r) = rows.next()? {
            read += 1;
            if read > budget {
                notes.push(format!(
                    "over {} values in all: the {what} after them are not read",
                    crate::results::MAX_CELLS
                ));
                break;
            }
            let key: String = r.get(0)?;
            let run: String = r.get(2)?;
            let Some(cells) = at.get(&run).and_then(|&i| runs.get_mut(i)) else { continue };
            let cell = match r.get_ref(1)? {
                rusqlite::types::ValueRef::Real(x) => number(x),
                rusqlite::types::ValueRef::Integer(x) => number(x as f64),
                rusqlite::types::ValueRef::Text(t) => Cell::of(&String::from_utf8_lossy(t)),
                _ => Cell::Empty,
            };
            row(&mut cells.1, &format!("{prefix}{}", name(&key)), kind, cell);
        }
        budget = budget.saturating_sub(read);
        Ok(())
    };
    // Rows of active runs only; MLflow's own tags (user, source, …) name no run.
    let active = "JOIN runs r ON r.run_uuid = x.run_uuid WHERE r.lifecycle_stage = 'active'";
    add(
        &format!("SELECT x.key, x.value, x.run_uuid FROM tags x {active} AND x.key NOT LIKE 'mlflow.%' LIMIT ?1"),
        ColumnKind::Key,
        "tags.",
        "tags",
    )?;
    add(
        &format!("SELECT x.key, x.value, x.run_uuid FROM params x {active} LIMIT ?1"),
        ColumnKind::Param,
        "",
        "params",
    )?;
    add(
        &format!(
            "SELECT x.key, x.value, x.run_uuid FROM latest_metrics x {active} AND (x.is_nan = 0 OR x.is_nan IS NULL) \
             LIMIT ?1"
        ),
        ColumnKind::Metric,
        "",
        "metrics",
    )?;
    Ok(Read { table: Table::from_rows(runs), directions: Vec::new(), notes })
}

/// A name as a column takes it: at most 200 characters.
fn name(s: &str) -> String {
    s.chars().take(200).collect()
}

/// An Optuna parameter as the user chose it: a categorical's choice, an integer as one. A value
/// that cannot be one (not finite, a choice's index out of range) is no value.
fn optuna_param(value: f64, distribution: &str) -> Cell {
    if !value.is_finite() {
        return Cell::Empty;
    }
    let d: serde_json::Value = serde_json::from_str(distribution).unwrap_or_default();
    match d["name"].as_str() {
        Some("CategoricalDistribution") => {
            let index = (value >= 0.0 && value.fract() == 0.0).then_some(value as usize);
            index.and_then(|i| d["attributes"]["choices"].get(i)).map(Cell::of_json).unwrap_or(Cell::Empty)
        }
        Some("IntDistribution" | "IntUniformDistribution" | "IntLogUniformDistribution") if value.abs() < 9e15 => {
            Cell::Number(value.round(), format!("{}", value.round() as i64).into())
        }
        _ => number(value),
    }
}

/// A study's objective names (`study:metric_names`, else `value`, or `value 0`, `value 1`, …).
fn objective_name(names: &[String], objectives: usize, i: usize) -> String {
    match names.get(i) {
        Some(n) => n.clone(),
        None if objectives <= 1 => "value".to_string(),
        None => format!("value {i}"),
    }
}

fn optuna(conn: &rusqlite::Connection) -> rusqlite::Result<Read> {
    // Studies: name, directions (MAXIMIZE is higher-better), metric names.
    let mut studies: HashMap<i64, (String, Vec<bool>, Vec<String>)> = HashMap::new();
    {
        let mut s = conn.prepare("SELECT study_id, study_name FROM studies LIMIT 100000")?;
        let mut r = s.query([])?;
        while let Some(r) = r.next()? {
            studies.insert(r.get(0)?, (r.get(1)?, Vec::new(), Vec::new()));
        }
        let mut s = conn.prepare("SELECT study_id, direction FROM study_directions ORDER BY study_id, objective")?;
        let mut r = s.query([])?;
        while let Some(r) = r.next()? {
            if let Some(st) = studies.get_mut(&r.get::<_, i64>(0)?) {
                st.1.push(r.get::<_, String>(1)?.eq_ignore_ascii_case("MAXIMIZE"));
            }
        }
        let mut s = conn.prepare(
            "SELECT study_id, value_json FROM study_system_attributes WHERE key = 'study:metric_names' LIMIT 100000",
        )?;
        let mut r = s.query([])?;
        while let Some(r) = r.next()? {
            if let Some(st) = studies.get_mut(&r.get::<_, i64>(0)?) {
                st.2 = serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or_default();
            }
        }
    }
    let mut trials: Rows = Vec::new();
    let mut at: HashMap<i64, (usize, i64)> = HashMap::new();
    {
        let mut s = conn.prepare(
            "SELECT trial_id, number, study_id FROM trials WHERE state = 'COMPLETE' ORDER BY trial_id LIMIT ?1",
        )?;
        let mut r = s.query([crate::results::MAX_ROWS as i64])?;
        while let Some(r) = r.next()? {
            let (id, number, study): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let mut cells = Vec::new();
            let name = studies.get(&study).map(|s| s.0.as_str()).unwrap_or_default();
            row(&mut cells, "study", ColumnKind::Key, Cell::of(name));
            row(&mut cells, "trial", ColumnKind::Key, Cell::Number(number as f64, number.to_string().into()));
            at.insert(id, (trials.len(), study));
            trials.push((trials.len() + 1, cells));
        }
    }
    let mut directions: Vec<(String, bool)> = Vec::new();
    {
        let mut s =
            conn.prepare("SELECT trial_id, objective, value, value_type FROM trial_values ORDER BY trial_id LIMIT ?1")?;
        let mut r = s.query([MAX_STORE_ROWS as i64])?;
        while let Some(r) = r.next()? {
            let Some(&(i, study)) = at.get(&r.get::<_, i64>(0)?) else { continue };
            let objective = r.get::<_, i64>(1)?.max(0) as usize;
            let Some(value) = r.get::<_, Option<f64>>(2)? else { continue };
            let (names, dirs) = studies.get(&study).map(|s| (&s.2[..], &s.1[..])).unwrap_or_default();
            let name = objective_name(names, dirs.len(), objective);
            if let Some(&up) = dirs.get(objective) {
                if !directions.iter().any(|(n, _)| *n == name) {
                    directions.push((name.clone(), up));
                }
            }
            row(&mut trials[i].1, &name, ColumnKind::Metric, number(value));
        }
    }
    {
        let mut s =
            conn.prepare("SELECT trial_id, param_name, param_value, distribution_json FROM trial_params LIMIT ?1")?;
        let mut r = s.query([MAX_STORE_ROWS as i64])?;
        while let Some(r) = r.next()? {
            let Some(&(i, _)) = at.get(&r.get::<_, i64>(0)?) else { continue };
            let name: String = r.get(1)?;
            let cell = optuna_param(r.get(2)?, &r.get::<_, String>(3)?);
            row(&mut trials[i].1, &name, ColumnKind::Param, cell);
        }
    }
    {
        let mut s = conn.prepare("SELECT trial_id, key, value_json FROM trial_user_attributes LIMIT ?1")?;
        let mut r = s.query([MAX_STORE_ROWS as i64])?;
        while let Some(r) = r.next()? {
            let Some(&(i, _)) = at.get(&r.get::<_, i64>(0)?) else { continue };
            let key: String = r.get(1)?;
            let cell = json_cell(&r.get::<_, String>(2)?);
            let kind = if matches!(cell, Cell::Number(..)) { ColumnKind::Any } else { ColumnKind::Key };
            row(&mut trials[i].1, &key, kind, cell);
        }
    }
    Ok(Read { table: Table::from_rows(trials), directions, notes: Vec::new() })
}

// ---------------------------------------------------------------------------------------------
// Optuna's journal: one JSON operation a line.

/// Optuna's journal operations (`JournalOperation`) and trial states (`TrialState`) read here.
const OP_CREATE_STUDY: u64 = 0;
const OP_DELETE_STUDY: u64 = 1;
const OP_SET_STUDY_SYSTEM_ATTR: u64 = 3;
const OP_CREATE_TRIAL: u64 = 4;
const OP_SET_TRIAL_PARAM: u64 = 5;
const OP_SET_TRIAL_STATE_VALUES: u64 = 6;
const OP_SET_TRIAL_USER_ATTR: u64 = 8;
const STATE_RUNNING: u64 = 0;
const STATE_COMPLETE: u64 = 1;
const STATE_WAITING: u64 = 4;

/// Longest journal line read (an operation is a few hundred bytes); longer ones are skipped.
const MAX_LINE: usize = 1 << 20;
/// Objectives a study may have, values a trial may give.
const MAX_OBJECTIVES: usize = 64;
/// Studies and trials a journal may create (trials past this are not read).
const MAX_STUDIES: usize = 100_000;
const MAX_TRIALS: usize = crate::results::MAX_ROWS * 4;

struct JournalStudy {
    name: String,
    /// Higher is better, per objective.
    directions: Vec<bool>,
    metric_names: Vec<String>,
    deleted: bool,
    trials: usize,
}

#[derive(Default)]
struct JournalTrial {
    study: usize,
    number: usize,
    state: u64,
    values: Vec<f64>,
    params: std::collections::BTreeMap<String, Cell>,
    attrs: std::collections::BTreeMap<String, Cell>,
}

impl JournalTrial {
    /// Optuna changes only a trial that is running or waiting.
    fn updatable(&self) -> bool {
        matches!(self.state, STATE_RUNNING | STATE_WAITING)
    }

    fn set_values(&mut self, op: &serde_json::Value) {
        let values = match (&op["values"], &op["value"]) {
            (serde_json::Value::Array(v), _) => {
                v.iter().take(MAX_OBJECTIVES).map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
            }
            (_, v) if v.is_number() => vec![v.as_f64().unwrap_or(f64::NAN)],
            _ => return,
        };
        self.values = values;
    }

    fn set_param(&mut self, name: &str, internal: f64, distribution: &str) {
        if self.params.len() < MAX_KEYS || self.params.contains_key(name) {
            self.params.insert(self::name(name), optuna_param(internal, distribution));
        }
    }

    fn set_attrs(&mut self, attrs: &serde_json::Value) {
        for (k, v) in attrs.as_object().into_iter().flatten() {
            if self.attrs.len() < MAX_KEYS || self.attrs.contains_key(k) {
                self.attrs.insert(name(k), Cell::of_json(v));
            }
        }
    }
}

/// The lines of `input`, each at most [`MAX_LINE`] bytes (a longer one is skipped whole and
/// given as `None`), with their numbers.
fn bounded_lines(
    mut input: impl std::io::BufRead,
    mut each: impl FnMut(usize, Option<&[u8]>) -> bool,
) -> std::io::Result<()> {
    use std::io::{BufRead as _, Read as _};
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        line += 1;
        let n = (&mut input).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            // Skip the rest of the long line.
            loop {
                buf.clear();
                let m = (&mut input).take(MAX_LINE as u64).read_until(b'\n', &mut buf)?;
                if m == 0 || buf.last() == Some(&b'\n') {
                    break;
                }
            }
            if !each(line, None) {
                return Ok(());
            }
            continue;
        }
        if !each(line, Some(&buf)) {
            return Ok(());
        }
    }
}

/// Replays Optuna's journal as Optuna does (`JournalStorageReplayResult`): a study name taken
/// twice is one study, a trial of a missing study is not created, a finished trial does not
/// change, a trial may be created whole (`add_trial`, `enqueue_trial`).
fn read_journal(path: &Path) -> Result<Option<Read>, String> {
    let (f, meta) = open(path)?;
    let mut studies: Vec<JournalStudy> = Vec::new();
    let mut trials: Vec<JournalTrial> = Vec::new();
    let mut notes = Vec::new();
    let mut first = true;
    let mut not_optuna = false;
    let (mut skipped, mut long) = (0usize, 0usize);
    let input = std::io::BufReader::new(std::io::Read::take(f, MAX_LOG_BYTES));
    bounded_lines(input, |line_no, line| {
        let Some(line) = line else {
            long += 1;
            return true;
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return true;
        }
        let op = serde_json::from_slice::<serde_json::Value>(&crate::results::python_json(line)).ok();
        let code = op.as_ref().and_then(|op| op["op_code"].as_u64());
        let (Some(op), Some(code)) = (op, code) else {
            if first {
                // The first operation is not one: not Optuna's journal.
                not_optuna = true;
                return false;
            }
            // A line being written (the last) or torn.
            skipped += 1;
            let _ = line_no;
            return true;
        };
        first = false;
        let study_id = op["study_id"].as_u64().map(|s| s as usize);
        let live_study =
            |studies: &[JournalStudy], id: Option<usize>| id.filter(|&i| studies.get(i).is_some_and(|s| !s.deleted));
        match code {
            OP_CREATE_STUDY => {
                let name = op["study_name"].as_str().unwrap_or_default();
                if studies.len() < MAX_STUDIES && !studies.iter().any(|s| !s.deleted && s.name == name) {
                    studies.push(JournalStudy {
                        name: self::name(name),
                        directions: op["directions"].as_array().map_or(Vec::new(), |d| {
                            d.iter().take(MAX_OBJECTIVES).map(|x| x.as_u64() == Some(2)).collect()
                        }),
                        metric_names: Vec::new(),
                        deleted: false,
                        trials: 0,
                    });
                }
            }
            OP_DELETE_STUDY => {
                if let Some(i) = live_study(&studies, study_id) {
                    studies[i].deleted = true;
                }
            }
            OP_SET_STUDY_SYSTEM_ATTR => {
                if let (Some(i), Some(names)) =
                    (live_study(&studies, study_id), op["system_attr"]["study:metric_names"].as_array())
                {
                    studies[i].metric_names =
                        names.iter().take(MAX_OBJECTIVES).filter_map(|n| n.as_str().map(self::name)).collect();
                }
            }
            OP_CREATE_TRIAL => {
                let Some(study) = live_study(&studies, study_id) else { return true };
                if trials.len() >= MAX_TRIALS {
                    return true;
                }
                let mut t = JournalTrial {
                    study,
                    number: studies[study].trials,
                    state: op["state"].as_u64().unwrap_or(STATE_RUNNING),
                    ..JournalTrial::default()
                };
                studies[study].trials += 1;
                t.set_values(&op);
                let distributions = &op["distributions"];
                for (k, v) in op["params"].as_object().into_iter().flatten() {
                    t.set_param(k, v.as_f64().unwrap_or(f64::NAN), distributions[k].as_str().unwrap_or_default());
                }
                t.set_attrs(&op["user_attrs"]);
                trials.push(t);
            }
            OP_SET_TRIAL_PARAM | OP_SET_TRIAL_STATE_VALUES | OP_SET_TRIAL_USER_ATTR => {
                let Some(t) = op["trial_id"].as_u64().and_then(|t| trials.get_mut(t as usize)) else { return true };
                if !t.updatable() {
                    return true;
                }
                match code {
                    OP_SET_TRIAL_PARAM => t.set_param(
                        op["param_name"].as_str().unwrap_or_default(),
                        op["param_value_internal"].as_f64().unwrap_or(f64::NAN),
                        op["distribution"].as_str().unwrap_or_default(),
                    ),
                    OP_SET_TRIAL_STATE_VALUES => {
                        t.state = op["state"].as_u64().unwrap_or(t.state);
                        t.set_values(&op);
                    }
                    _ => t.set_attrs(&op["user_attr"]),
                }
            }
            _ => {}
        }
        true
    })
    .map_err(|e| format!("cannot be read: {e}"))?;
    if not_optuna || studies.is_empty() {
        return Ok(None);
    }
    if skipped > 0 {
        notes.push(format!("{skipped} line{} not an operation: skipped", if skipped == 1 { " is" } else { "s are" }));
    }
    if long > 0 {
        notes.push(format!("{long} line{} over {} MB: skipped", if long == 1 { "" } else { "s" }, MAX_LINE >> 20));
    }
    if meta.len() > MAX_LOG_BYTES {
        notes.push(format!("{} bytes: the first {} MB are read", meta.len(), MAX_LOG_BYTES >> 20));
    }
    let mut directions: Vec<(String, bool)> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let rows: Rows = trials
        .into_iter()
        .filter(|t| t.state == STATE_COMPLETE && studies.get(t.study).is_some_and(|s| !s.deleted))
        .enumerate()
        .map(|(i, t)| {
            let study = &studies[t.study];
            let mut cells = Vec::new();
            row(&mut cells, "study", ColumnKind::Key, Cell::of(&study.name));
            row(&mut cells, "trial", ColumnKind::Key, Cell::Number(t.number as f64, t.number.to_string().into()));
            for (o, v) in t.values.iter().enumerate() {
                let metric = objective_name(&study.metric_names, study.directions.len(), o);
                if let Some(&up) = study.directions.get(o) {
                    if seen.insert(metric.clone()) {
                        directions.push((metric.clone(), up));
                    }
                }
                row(&mut cells, &metric, ColumnKind::Metric, number(*v));
            }
            for (k, c) in t.params {
                row(&mut cells, &k, ColumnKind::Param, c);
            }
            for (k, c) in t.attrs {
                let kind = if matches!(c, Cell::Number(..)) { ColumnKind::Any } else { ColumnKind::Key };
                row(&mut cells, &k, kind, c);
            }
            (i + 1, cells)
        })
        .collect();
    Ok(Some(Read { table: Table::from_rows(rows), directions, notes }))
}

// ---------------------------------------------------------------------------------------------
// W&B's run file: a 7-byte header, then LevelDB's log format (32 KiB blocks of checksummed
// pieces) holding protobuf `Record`s. Only the fields read here are declared; the others are
// skipped by the decoder.

mod wandb_proto {
    /// A record, for writing them in tests: history 2, summary 3, config 5, run 17.
    #[cfg(test)]
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Record {
        #[prost(message, optional, tag = "2")]
        pub history: Option<Items>,
        #[prost(message, optional, tag = "3")]
        pub summary: Option<Items>,
        #[prost(message, optional, tag = "5")]
        pub config: Option<Items>,
    }

    /// HistoryRecord (items: 1), SummaryRecord and ConfigRecord (update: 1).
    #[cfg(test)]
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Items {
        #[prost(message, repeated, tag = "1")]
        pub items: Vec<Item>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Item {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, repeated, tag = "2")]
        pub nested_key: Vec<String>,
        #[prost(sint64, optional, tag = "5")]
        pub integer: Option<i64>,
        #[prost(double, optional, tag = "6")]
        pub number: Option<f64>,
        #[prost(string, optional, tag = "7")]
        pub text: Option<String>,
        #[prost(string, tag = "16")]
        pub value_json: String,
    }

    /// RunRecord's names (its config 4 and summary 5 are walked as items).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Run {
        #[prost(string, tag = "1")]
        pub run_id: String,
        #[prost(string, tag = "3")]
        pub project: String,
        #[prost(string, tag = "6")]
        pub run_group: String,
        #[prost(string, tag = "8")]
        pub display_name: String,
    }
}

/// The length-delimited fields of a protobuf message, each given as (field number, bytes); the
/// others skipped. `false` when the message is malformed (then what came before was given).
fn message_fields(mut buf: &[u8], mut each: impl FnMut(u32, &[u8])) -> bool {
    use prost::encoding::decode_varint;
    while !buf.is_empty() {
        let Ok(key) = decode_varint(&mut buf) else { return false };
        let (field, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => {
                if decode_varint(&mut buf).is_err() {
                    return false;
                }
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if buf.len() < n {
                    return false;
                }
                buf = &buf[n..];
            }
            2 => {
                let Ok(len) = decode_varint(&mut buf) else { return false };
                let Some(body) = usize::try_from(len).ok().and_then(|l| buf.get(..l)) else { return false };
                each(field, body);
                buf = &buf[body.len()..];
            }
            _ => return false,
        }
    }
    true
}

/// Largest record read (W&B's are a few KB; a history row of a thousand values, some hundred).
const MAX_RECORD: usize = 16 << 20;

/// Items a record gives at most (a history row of W&B has tens).
const MAX_ITEMS: usize = 10_000;

/// W&B's file header: `:W&B`, a magic number, a version.
const WANDB_HEADER: &[u8; 6] = b":W&B\xe1\xbe";
const BLOCK: usize = 32 * 1024;
/// Most distinct keys kept from a run's config and metrics.
const MAX_KEYS: usize = crate::results::MAX_COLUMNS;

/// An item's name (`key`, or its nested keys joined by `.`); `None` for W&B's own (`_…`).
fn item_name(item: &wandb_proto::Item) -> Option<String> {
    let name = if item.key.is_empty() { item.nested_key.join(".") } else { item.key.clone() };
    (!name.is_empty() && !name.starts_with('_')).then_some(name)
}

fn item_cell(item: &wandb_proto::Item) -> Cell {
    if let Some(x) = item.number {
        return number(x);
    }
    if let Some(x) = item.integer {
        return Cell::Number(x as f64, x.to_string().into());
    }
    if let Some(t) = &item.text {
        return Cell::of(t);
    }
    json_cell(&item.value_json)
}

/// The records of a W&B run file, each passed to `each`; the pieces skipped for a bad checksum
/// or framing, counted.
fn wandb_records(mut input: impl std::io::Read, mut each: impl FnMut(&[u8])) -> Result<usize, String> {
    let mut header = [0u8; 7];
    input.read_exact(&mut header).map_err(|_| "too short for a W&B run file".to_string())?;
    if &header[..6] != WANDB_HEADER {
        return Err("not a W&B run file (its first bytes are not :W&B)".into());
    }
    let mut block = vec![0u8; BLOCK];
    // The header takes the first block's first 7 bytes.
    let mut first = true;
    let mut pending: Vec<u8> = Vec::new();
    let mut in_record = false;
    let mut bad = 0usize;
    loop {
        let want = if first { BLOCK - 7 } else { BLOCK };
        let mut got = 0;
        while got < want {
            match input.read(&mut block[got..want]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot be read: {e}")),
            }
        }
        first = false;
        if got == 0 {
            break;
        }
        let data = &block[..got];
        let mut at = 0;
        while at + 7 <= data.len() {
            let crc = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            let len = u16::from_le_bytes([data[at + 4], data[at + 5]]) as usize;
            let kind = data[at + 6];
            if crc == 0 && len == 0 && kind == 0 {
                // Zero padding at a block's end.
                break;
            }
            let Some(body) = data.get(at + 7..at + 7 + len) else {
                // A piece over the block's end: the block is corrupt (or the file is being written),
                // and a record it continued is lost.
                bad += 1;
                pending.clear();
                in_record = false;
                break;
            };
            let mut h = crc32fast::Hasher::new();
            h.update(&[kind]);
            h.update(body);
            at += 7 + len;
            if h.finalize() != crc {
                bad += 1;
                pending.clear();
                in_record = false;
                // The rest of the block cannot be trusted: LevelDB's readers skip to the next.
                break;
            }
            // A record begun and not finished is lost when another begins.
            if in_record && matches!(kind, 1 | 2) {
                bad += 1;
                in_record = false;
            }
            match kind {
                1 => each(body),
                2 => {
                    pending.clear();
                    pending.extend_from_slice(body);
                    in_record = true;
                }
                3 if in_record => pending.extend_from_slice(body),
                4 if in_record => {
                    pending.extend_from_slice(body);
                    each(&pending);
                    pending.clear();
                    in_record = false;
                }
                _ => {
                    bad += 1;
                    in_record = false;
                }
            }
            // A record of many megabytes is not W&B's: dropped rather than held.
            if pending.len() > MAX_RECORD {
                pending = Vec::new();
                in_record = false;
                bad += 1;
            }
        }
        if got < want {
            break;
        }
    }
    Ok(bad)
}

fn read_wandb(path: &Path) -> Result<Read, String> {
    use prost::Message;
    use std::io::Read as _;
    let (f, meta) = open(path)?;
    let mut run = wandb_proto::Run::default();
    // Name → (kind, cell), in first-seen order: history's last values, then the summary's.
    let mut values: Vec<(String, ColumnKind, Cell)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut set = |name: String, kind: ColumnKind, cell: Cell| {
        if matches!(cell, Cell::Empty) {
            return;
        }
        let kind = match (kind, &cell) {
            (ColumnKind::Metric, Cell::Text(_)) => ColumnKind::Key,
            (k, _) => k,
        };
        match index.get(&name) {
            Some(&i) => values[i] = (name, kind, cell),
            None if values.len() < MAX_KEYS => {
                index.insert(name.clone(), values.len());
                values.push((name, kind, cell));
            }
            None => {}
        }
    };
    // The items of a history, summary or config record: at most MAX_ITEMS, each decoded alone.
    let items = |bytes: &[u8], kind: ColumnKind, set: &mut dyn FnMut(String, ColumnKind, Cell)| -> bool {
        let mut n = 0usize;
        message_fields(bytes, |field, item| {
            n += 1;
            if field != 1 || n > MAX_ITEMS {
                return;
            }
            if let Ok(item) = wandb_proto::Item::decode(item) {
                if let Some(name) = item_name(&item) {
                    set(name, kind, item_cell(&item));
                }
            }
        })
    };
    let mut undecodable = 0usize;
    let bad = wandb_records(std::io::BufReader::new(f.take(MAX_LOG_BYTES)), |bytes| {
        let ok = message_fields(bytes, |field, body| {
            let fine = match field {
                2 | 3 => items(body, ColumnKind::Metric, &mut set),
                5 => items(body, ColumnKind::Param, &mut set),
                17 => {
                    if let Ok(r) = wandb_proto::Run::decode(body) {
                        run = r;
                    }
                    // Its config (4) and summary (5).
                    message_fields(body, |f, b| {
                        match f {
                            4 => items(b, ColumnKind::Param, &mut set),
                            5 => items(b, ColumnKind::Metric, &mut set),
                            _ => true,
                        };
                    })
                }
                _ => true,
            };
            if !fine {
                undecodable += 1;
            }
        });
        if !ok {
            undecodable += 1;
        }
    })?;
    let mut cells = Vec::new();
    row(&mut cells, "W&B run", ColumnKind::Key, Cell::of(&run.run_id));
    row(&mut cells, "run name", ColumnKind::Key, Cell::of(&run.display_name));
    row(&mut cells, "W&B project", ColumnKind::Key, Cell::of(&run.project));
    row(&mut cells, "group", ColumnKind::Key, Cell::of(&run.run_group));
    cells.extend(values.into_iter().map(|(n, k, c)| (reserved(n, k), k, c)));
    let mut notes = Vec::new();
    if bad + undecodable > 0 {
        notes.push(format!(
            "{} damaged piece{} of the record log skipped (a bad checksum or framing): the values read may be older \
             than the run's last",
            bad + undecodable,
            if bad + undecodable == 1 { "" } else { "s" }
        ));
    }
    if meta.len() > MAX_LOG_BYTES {
        notes.push(format!(
            "{} bytes: the first {} MB are read, so the values may be older than the run's last",
            meta.len(),
            MAX_LOG_BYTES >> 20
        ));
    }
    Ok(Read { table: Table::from_rows([(1, cells)]), directions: Vec::new(), notes })
}

// ---------------------------------------------------------------------------------------------
// An MLflow tracking server, through its REST API.

/// The runs an MLflow tracking server's `runs/search` answered (its pages, as JSON), named with
/// `experiments` (id → name): the table [`mlflow`] makes of `mlflow.db`. Runs not active, and
/// metrics that are not numbers (`"NaN"`), are left out.
pub fn mlflow_rest(experiments: &HashMap<String, String>, pages: &[serde_json::Value]) -> Read {
    let mut runs: Rows = Vec::new();
    let mut notes = Vec::new();
    let pairs = |v: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|kv| Some((kv["key"].as_str()?.to_string(), kv["value"].clone())))
            .collect()
    };
    for run in pages.iter().flat_map(|p| p["runs"].as_array().into_iter().flatten()) {
        let info = &run["info"];
        if info["lifecycle_stage"].as_str().is_some_and(|s| s != "active") {
            continue;
        }
        if runs.len() >= crate::results::MAX_ROWS {
            notes.push(format!(
                "over {} runs: the first {} are read",
                crate::results::MAX_ROWS,
                crate::results::MAX_ROWS
            ));
            break;
        }
        let id = info["run_id"].as_str().or_else(|| info["run_uuid"].as_str()).unwrap_or_default();
        let mut cells = Vec::new();
        row(&mut cells, "MLflow run", ColumnKind::Key, Cell::of(id));
        row(&mut cells, "run name", ColumnKind::Key, Cell::of(info["run_name"].as_str().unwrap_or_default()));
        let experiment = info["experiment_id"].as_str().and_then(|e| experiments.get(e)).map_or("", String::as_str);
        row(&mut cells, "experiment", ColumnKind::Key, Cell::of(experiment));
        for (k, v) in pairs(&run["data"]["tags"]) {
            if !k.starts_with("mlflow.") {
                row(&mut cells, &format!("tags.{k}"), ColumnKind::Key, Cell::of(v.as_str().unwrap_or_default()));
            }
        }
        for (k, v) in pairs(&run["data"]["params"]) {
            row(&mut cells, &k, ColumnKind::Param, Cell::of(v.as_str().unwrap_or_default()));
        }
        for (k, v) in pairs(&run["data"]["metrics"]) {
            row(&mut cells, &k, ColumnKind::Metric, v.as_f64().map_or(Cell::Empty, number));
        }
        runs.push((runs.len() + 1, cells));
    }
    Read { table: Table::from_rows(runs), directions: Vec::new(), notes }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A W&B run file framed as W&B writes it, holding `records`.
    fn wandb_file(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b":W&B\xe1\xbe\x00".to_vec();
        for r in records {
            let mut rest: &[u8] = r;
            let mut first = true;
            loop {
                let left = BLOCK - out.len() % BLOCK;
                if left < 7 {
                    out.extend(std::iter::repeat_n(0u8, left));
                    continue;
                }
                let take = rest.len().min(left - 7);
                let last = take == rest.len();
                let kind = match (first, last) {
                    (true, true) => 1u8,
                    (true, false) => 2,
                    (false, false) => 3,
                    (false, true) => 4,
                };
                let mut h = crc32fast::Hasher::new();
                h.update(&[kind]);
                h.update(&rest[..take]);
                out.extend(h.finalize().to_le_bytes());
                out.extend((take as u16).to_le_bytes());
                out.push(kind);
                out.extend(&rest[..take]);
                rest = &rest[take..];
                first = false;
                if last {
                    break;
                }
            }
        }
        out
    }

    fn summary(key: &str, json: &str) -> Vec<u8> {
        use prost::Message;
        let item = wandb_proto::Item { key: key.into(), value_json: json.into(), ..Default::default() };
        wandb_proto::Record { summary: Some(wandb_proto::Items { items: vec![item] }), ..Default::default() }
            .encode_to_vec()
    }

    fn read_bytes(bytes: &[u8]) -> Read {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run-x.wandb");
        std::fs::write(&path, bytes).expect("write");
        read_wandb(&path).expect("read")
    }

    fn value(r: &Read, name: &str) -> Option<f64> {
        let c = r.table.columns.iter().position(|c| c == name)?;
        r.table.rows[0].1[c].number()
    }

    #[test]
    fn a_wandb_record_split_over_blocks_is_read_and_a_corrupt_block_skipped() {
        // A record larger than a block (split FIRST/MIDDLE/LAST), then the final summary.
        let big = summary("notes", &format!("\"{}\"", "x".repeat(70_000)));
        let bytes = wandb_file(&[summary("accuracy", "0.5"), big, summary("accuracy", "0.9")]);
        let r = read_bytes(&bytes);
        assert_eq!(value(&r, "accuracy"), Some(0.9));
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        // One byte changed in the second block: its pieces are skipped, the rest is read.
        let mut broken = bytes.clone();
        broken[BLOCK + 100] ^= 0xff;
        let r = read_bytes(&broken);
        assert_eq!(value(&r, "accuracy"), Some(0.9), "the last record, in the third block, is read");
        assert!(r.notes[0].contains("damaged"), "{:?}", r.notes);
        // A file cut in the middle of a record: what came before is read.
        let r = read_bytes(&bytes[..BLOCK + 10]);
        assert_eq!(value(&r, "accuracy"), Some(0.5));
        // Not a W&B file at all.
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("run-y.wandb"), b"hello").expect("write");
        assert!(read_wandb(&dir.path().join("run-y.wandb")).is_err());
    }

    fn mlflow_schema(c: &rusqlite::Connection) {
        c.execute_batch(include_str!("../tests/fixtures/mlflow_schema.sql")).expect("schema");
    }

    #[test]
    fn an_mlflow_database_over_the_row_limit_keeps_its_newest_runs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mlflow.db");
        let mut c = rusqlite::Connection::open(&path).expect("open");
        mlflow_schema(&c);
        let tx = c.transaction().expect("tx");
        {
            let mut runs = tx.prepare("INSERT INTO runs VALUES (?1, ?2, 'active', 1, ?3)").expect("runs");
            for i in 0..=crate::results::MAX_ROWS {
                runs.execute(rusqlite::params![format!("{i:032x}"), format!("r{i}"), i as i64]).expect("run");
            }
            // Every run has a parameter; the oldest (left out) too.
            tx.execute("INSERT INTO params SELECT 'lr', '0.1', run_uuid FROM runs", []).expect("params");
        }
        tx.commit().expect("commit");
        drop(c);
        let (store, read) = read_sqlite(&path).expect("read").expect("MLflow's");
        assert_eq!(store, Store::Mlflow);
        assert_eq!(read.table.rows.len(), crate::results::MAX_ROWS);
        assert!(read.notes.iter().any(|n| n.contains("the newest 100000 are read")), "{:?}", read.notes);
        let name = read.table.columns.iter().position(|c| c == "run name").expect("names");
        assert_eq!(read.table.rows[0].1[name], Cell::Text("r1".into()), "the oldest run is the one left out");
    }

    #[cfg(unix)]
    #[test]
    fn a_sqlite_file_that_would_block_write_or_swell_is_refused_or_read_as_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mlflow.db");
        let c = rusqlite::Connection::open(&path).expect("open");
        mlflow_schema(&c);
        c.execute("INSERT INTO runs VALUES ('a', 'r', 'active', 1, 0)", []).expect("run");
        // WAL mode, closed: reading it must not leave -wal and -shm files behind.
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        drop(c);
        let (_, read) = read_sqlite(&path).expect("read").expect("MLflow's");
        assert_eq!(read.table.rows.len(), 1);
        assert!(read.notes.iter().any(|n| n.contains("last checkpoint")), "{:?}", read.notes);
        for suffix in ["mlflow.db-wal", "mlflow.db-shm"] {
            assert!(!dir.path().join(suffix).exists(), "{suffix} written");
        }
        // A pipe named as its journal would block SQLite's open forever: refused at once.
        let fifo =
            std::ffi::CString::new(dir.path().join("mlflow.db-journal").as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid, NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let why = read_sqlite(&path).expect_err("refused");
        assert!(why.contains("-journal file is not a regular file"), "{why}");
        std::fs::remove_file(dir.path().join("mlflow.db-journal")).expect("rm");
        // A value generated to 50 MB by the file's own schema is over SQLite's length limit.
        let swell = dir.path().join("swell.db");
        let c = rusqlite::Connection::open(&swell).expect("open");
        mlflow_schema(&c);
        c.execute_batch(
            "DROP TABLE latest_metrics;
             CREATE TABLE latest_metrics (k TEXT, value FLOAT, timestamp BIGINT, step BIGINT, is_nan BOOLEAN,
               run_uuid TEXT, key TEXT GENERATED ALWAYS AS (printf('%.*c', 50000000, 'x')) VIRTUAL);
             INSERT INTO runs VALUES ('a', 'r', 'active', 1, 0);
             INSERT INTO latest_metrics (k, value, timestamp, step, is_nan, run_uuid) VALUES ('acc', 1, 0, 0, 0, 'a');",
        )
        .expect("swell");
        drop(c);
        let why = read_sqlite(&swell).expect_err("too long");
        assert!(why.contains("cannot be read"), "{why}");
    }

    #[test]
    fn a_hostile_optuna_journal_costs_its_size_and_is_replayed_as_optuna_does() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.log");
        let op = |v: serde_json::Value| format!("{v}\n");
        let mut text = op(serde_json::json!({"op_code": 0, "study_name": "s", "directions": [2]}));
        // The same name again (load_if_exists): no new study.
        text += &op(serde_json::json!({"op_code": 0, "study_name": "s", "directions": [1]}));
        // A trial of a study that does not exist: not created, no id taken.
        text += &op(serde_json::json!({"op_code": 4, "study_id": 7}));
        // A trial created whole (add_trial), then a late change that Optuna ignores.
        text += &op(serde_json::json!({"op_code": 4, "study_id": 0, "state": 1, "value": 0.5, "values": null,
            "params": {"x": 1.0}, "distributions": {"x": "{\"name\": \"IntDistribution\", \"attributes\": {}}"},
            "user_attrs": {"codecarbon_run_id": "r0"}}));
        text += &op(serde_json::json!({"op_code": 6, "trial_id": 0, "state": 3, "values": null}));
        // A running trial finished with Python's Infinity.
        text += &op(serde_json::json!({"op_code": 4, "study_id": 0}));
        text += "{\"op_code\": 6, \"trial_id\": 1, \"state\": 1, \"values\": [Infinity]}\n";
        // A million objectives, a line over a megabyte, and many trials of one study.
        text +=
            &format!("{{\"op_code\": 0, \"study_name\": \"wide\", \"directions\": [{}2]}}\n", "2,".repeat(1_000_000));
        text +=
            &format!("{{\"op_code\": 8, \"trial_id\": 1, \"user_attr\": {{\"a\": \"{}\"}}}}\n", "x".repeat(2 << 20));
        for _ in 0..200_000 {
            text += "{\"op_code\":4,\"study_id\":0}\n";
        }
        std::fs::write(&path, &text).expect("write");
        let started = std::time::Instant::now();
        let read = read_journal(&path).expect("read").expect("Optuna's");
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "linear in the file");
        let t = &read.table;
        let col = |n: &str| t.columns.iter().position(|c| c == n).unwrap_or_else(|| panic!("{n}: {:?}", t.columns));
        assert_eq!(t.rows.len(), 2, "the added trial and the finished one; running ones are not results");
        assert_eq!(t.rows[0].1[col("value")], Cell::Number(0.5, "0.5".into()), "a finished trial keeps its value");
        assert_eq!(t.rows[0].1[col("x")], Cell::Number(1.0, "1".into()));
        assert_eq!(
            t.rows[1].1[col("trial")],
            Cell::Number(1.0, "1".into()),
            "the missing study's trial took no number"
        );
        assert_eq!(t.rows[1].1[col("value")], Cell::Empty, "infinity is no value, and the trial is still read");
        assert_eq!(read.directions, [("value".to_string(), true)], "the first study's direction");
        assert!(read.notes.iter().any(|n| n.contains("over 1 MB")), "{:?}", read.notes);
    }

    #[test]
    fn a_wandb_record_of_a_million_empty_items_keeps_ten_thousand() {
        // A summary record of one named item then empty ones: 2 bytes each on the wire.
        use prost::Message;
        let first = wandb_proto::Item { key: "accuracy".into(), value_json: "0.9".into(), ..Default::default() };
        let mut items = wandb_proto::Items { items: vec![first] }.encode_to_vec();
        items.extend(std::iter::repeat_n([0x0a, 0x00], 1_000_000).flatten());
        let mut record = vec![0x1a];
        prost::encoding::encode_varint(items.len() as u64, &mut record);
        record.extend(items);
        let r = read_bytes(&wandb_file(&[record]));
        assert_eq!(value(&r, "accuracy"), Some(0.9));
    }

    #[test]
    fn optuna_params_are_the_choices_made() {
        let cat = r#"{"name": "CategoricalDistribution", "attributes": {"choices": ["adam", "sgd"]}}"#;
        assert_eq!(optuna_param(1.0, cat), Cell::Text("sgd".into()));
        let int = r#"{"name": "IntDistribution", "attributes": {"low": 1, "high": 9}}"#;
        assert_eq!(optuna_param(4.0, int), Cell::Number(4.0, "4".into()));
        assert_eq!(optuna_param(-1.0, cat), Cell::Empty, "no choice has a negative index");
        assert_eq!(optuna_param(f64::NAN, int), Cell::Empty);
        assert_eq!(objective_name(&[], 2, 1), "value 1");
        assert_eq!(objective_name(&["acc".into()], 2, 0), "acc");
        assert_eq!(candidate("optuna_journal.log"), Some(Candidate::Journal));
        assert_eq!(candidate("mlflow.db-journal"), None, "SQLite's rollback journal is not Optuna's");
        assert_eq!(candidate("mlflow.db"), Some(Candidate::Sqlite));
    }
}
