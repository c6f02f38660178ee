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
    let ext_ok = ["", "log", "jsonl", "json", "txt"].contains(&lower.rsplit_once('.').map_or("", |(_, e)| e));
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

fn row(cells: &mut Vec<(String, ColumnKind, Cell)>, name: &str, kind: ColumnKind, cell: Cell) {
    if !matches!(cell, Cell::Empty) {
        cells.push((name.to_string(), kind, cell));
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
    let mut head = [0u8; 16];
    {
        use std::io::Read as _;
        let (mut f, _) = crate::ingest::open_store(path).map_err(|e| match e {
            crate::ingest::NotRead::Gone => "gone".to_string(),
            crate::ingest::NotRead::Because(why) => why,
        })?;
        if f.read_exact(&mut head).is_err() || &head != b"SQLite format 3\0" {
            return Ok(None);
        }
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let open = |immutable: bool| -> rusqlite::Result<rusqlite::Connection> {
        let uri = format!("file:{}?mode=ro{}", uri_path(path), if immutable { "&immutable=1" } else { "" });
        let c = rusqlite::Connection::open_with_flags(uri, flags)?;
        c.busy_timeout(Duration::from_secs(2))?;
        // Little memory whatever the file's size.
        c.execute_batch("PRAGMA cache_size = -4096; PRAGMA mmap_size = 0;")?;
        c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(c)
    };
    // A database in WAL mode in a folder this server may not write opens only as immutable.
    let mut conn = open(false).or_else(|_| open(true)).map_err(|e| format!("cannot be opened as SQLite: {e}"))?;
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
    if has("runs") && has("latest_metrics") && has("experiments") && has("params") && has("tags") {
        return mlflow(&conn).map(|r| Some((Store::Mlflow, r))).map_err(timed_out);
    }
    if has("trials") && has("trial_values") && has("studies") && has("trial_params") {
        return optuna(&conn).map(|r| Some((Store::Optuna, r))).map_err(timed_out);
    }
    Ok(None)
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

/// Rows read from one table of a store at most (its runs, tags, params, metrics).
const MAX_STORE_ROWS: usize = 2_000_000;

type Rows = Vec<crate::results::NamedRow>;

fn mlflow(conn: &rusqlite::Connection) -> rusqlite::Result<Read> {
    let mut runs: Rows = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT r.run_uuid, r.name, e.name FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id \
         WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' \
         ORDER BY r.start_time, r.run_uuid LIMIT ?1",
    )?;
    let mut rows = stmt.query([crate::results::MAX_ROWS as i64 + 1])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let mut cells = Vec::new();
        row(&mut cells, "MLflow run", ColumnKind::Key, Cell::of(&id));
        row(&mut cells, "run name", ColumnKind::Key, Cell::of(&r.get::<_, Option<String>>(1)?.unwrap_or_default()));
        row(&mut cells, "experiment", ColumnKind::Key, Cell::of(&r.get::<_, Option<String>>(2)?.unwrap_or_default()));
        at.insert(id, runs.len());
        runs.push((runs.len() + 1, cells));
    }
    let mut notes = Vec::new();
    if runs.len() > crate::results::MAX_ROWS {
        runs.truncate(crate::results::MAX_ROWS);
        notes.push(format!("over {} runs: the first {} are read", crate::results::MAX_ROWS, crate::results::MAX_ROWS));
    }
    let mut add = |sql: &str, kind: ColumnKind, prefix: &str| -> rusqlite::Result<()> {
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([MAX_STORE_ROWS as i64])?;
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let run: String = r.get(2)?;
            let Some(&i) = at.get(&run) else { continue };
            let cell = match r.get_ref(1)? {
                rusqlite::types::ValueRef::Real(x) => number(x),
                rusqlite::types::ValueRef::Integer(x) => number(x as f64),
                rusqlite::types::ValueRef::Text(t) => Cell::of(&String::from_utf8_lossy(t)),
                _ => Cell::Empty,
            };
            row(&mut runs[i].1, &format!("{prefix}{key}"), kind, cell);
        }
        Ok(())
    };
    // MLflow's own tags (user, source, …) name no run.
    add("SELECT key, value, run_uuid FROM tags WHERE key NOT LIKE 'mlflow.%' LIMIT ?1", ColumnKind::Key, "tags.")?;
    add("SELECT key, value, run_uuid FROM params LIMIT ?1", ColumnKind::Param, "")?;
    add(
        "SELECT key, value, run_uuid FROM latest_metrics WHERE is_nan = 0 OR is_nan IS NULL LIMIT ?1",
        ColumnKind::Metric,
        "",
    )?;
    Ok(Read { table: Table::from_rows(runs), directions: Vec::new(), notes })
}

/// An Optuna parameter as the user chose it: a categorical's choice, an integer as one.
fn optuna_param(value: f64, distribution: &str) -> Cell {
    let d: serde_json::Value = serde_json::from_str(distribution).unwrap_or_default();
    match d["name"].as_str() {
        Some("CategoricalDistribution") => {
            d["attributes"]["choices"].get(value as usize).map(Cell::of_json).unwrap_or(Cell::Empty)
        }
        Some("IntDistribution" | "IntUniformDistribution" | "IntLogUniformDistribution") => {
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
const STATE_COMPLETE: u64 = 1;

#[derive(Default)]
struct JournalTrial {
    study: usize,
    number: usize,
    complete: bool,
    values: Vec<f64>,
    params: Vec<(String, Cell)>,
    attrs: Vec<(String, Cell)>,
}

fn read_journal(path: &Path) -> Result<Option<Read>, String> {
    use std::io::{BufRead, Read as _};
    let (f, _) = crate::ingest::open_store(path).map_err(|e| match e {
        crate::ingest::NotRead::Gone => "gone".to_string(),
        crate::ingest::NotRead::Because(why) => why,
    })?;
    let lines = std::io::BufReader::new(f.take(MAX_LOG_BYTES)).split(b'\n');
    // Studies: (name, directions: higher is better, metric names, deleted).
    let mut studies: Vec<(String, Vec<bool>, Vec<String>, bool)> = Vec::new();
    let mut trials: Vec<JournalTrial> = Vec::new();
    let mut notes = Vec::new();
    let mut line_no = 0usize;
    for line in lines {
        line_no += 1;
        let line = line.map_err(|e| format!("cannot be read: {e}"))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(op) = serde_json::from_slice::<serde_json::Value>(&line) else {
            if line_no == 1 {
                return Ok(None);
            }
            // A line being written (the last) or torn: said once.
            if notes.is_empty() {
                notes.push(format!("line {line_no} is not a JSON operation: skipped"));
            }
            continue;
        };
        let Some(code) = op["op_code"].as_u64() else {
            if line_no == 1 {
                return Ok(None);
            }
            continue;
        };
        let study_id = op["study_id"].as_u64().map(|s| s as usize);
        let trial = op["trial_id"].as_u64().and_then(|t| trials.get_mut(t as usize));
        match code {
            OP_CREATE_STUDY => studies.push((
                op["study_name"].as_str().unwrap_or_default().to_string(),
                op["directions"].as_array().map_or(Vec::new(), |d| d.iter().map(|x| x.as_u64() == Some(2)).collect()),
                Vec::new(),
                false,
            )),
            OP_DELETE_STUDY => {
                if let Some(s) = study_id.and_then(|s| studies.get_mut(s)) {
                    s.3 = true;
                }
            }
            OP_SET_STUDY_SYSTEM_ATTR => {
                if let (Some(s), Some(names)) =
                    (study_id.and_then(|s| studies.get_mut(s)), op["system_attr"]["study:metric_names"].as_array())
                {
                    s.2 = names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect();
                }
            }
            OP_CREATE_TRIAL => {
                let study = study_id.unwrap_or(usize::MAX);
                let number = trials.iter().filter(|t| t.study == study).count();
                if trials.len() < crate::results::MAX_ROWS * 4 {
                    trials.push(JournalTrial { study, number, ..JournalTrial::default() });
                }
            }
            OP_SET_TRIAL_PARAM => {
                if let Some(t) = trial {
                    let value = op["param_value_internal"].as_f64().unwrap_or(f64::NAN);
                    let cell = optuna_param(value, op["distribution"].as_str().unwrap_or_default());
                    t.params.push((op["param_name"].as_str().unwrap_or_default().to_string(), cell));
                }
            }
            OP_SET_TRIAL_STATE_VALUES => {
                if let Some(t) = trial {
                    t.complete = op["state"].as_u64() == Some(STATE_COMPLETE);
                    if let Some(v) = op["values"].as_array() {
                        t.values = v.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect();
                    }
                }
            }
            OP_SET_TRIAL_USER_ATTR => {
                if let (Some(t), Some(attrs)) = (trial, op["user_attr"].as_object()) {
                    for (k, v) in attrs {
                        t.attrs.push((k.clone(), Cell::of_json(v)));
                    }
                }
            }
            _ => {}
        }
    }
    if studies.is_empty() {
        return Ok(None);
    }
    let mut directions: Vec<(String, bool)> = Vec::new();
    let rows: Rows = trials
        .into_iter()
        .filter(|t| t.complete && studies.get(t.study).is_some_and(|s| !s.3))
        .enumerate()
        .map(|(i, t)| {
            let (name, dirs, names, _) = &studies[t.study];
            let mut cells = Vec::new();
            row(&mut cells, "study", ColumnKind::Key, Cell::of(name));
            row(&mut cells, "trial", ColumnKind::Key, Cell::Number(t.number as f64, t.number.to_string().into()));
            for (o, v) in t.values.iter().enumerate() {
                let metric = objective_name(names, dirs.len(), o);
                if let Some(&up) = dirs.get(o) {
                    if !directions.iter().any(|(n, _)| *n == metric) {
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
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Record {
        #[prost(message, optional, tag = "2")]
        pub history: Option<Items>,
        #[prost(message, optional, tag = "3")]
        pub summary: Option<Items>,
        #[prost(message, optional, tag = "5")]
        pub config: Option<Items>,
        #[prost(message, optional, tag = "17")]
        pub run: Option<Run>,
    }

    /// HistoryRecord (items: 1), SummaryRecord and ConfigRecord (update: 1).
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

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Run {
        #[prost(string, tag = "1")]
        pub run_id: String,
        #[prost(string, tag = "3")]
        pub project: String,
        #[prost(message, optional, tag = "4")]
        pub config: Option<Items>,
        #[prost(message, optional, tag = "5")]
        pub summary: Option<Items>,
        #[prost(string, tag = "6")]
        pub run_group: String,
        #[prost(string, tag = "8")]
        pub display_name: String,
    }
}

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
                // A piece over the block's end: the block is corrupt (or the file is being written).
                bad += 1;
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
            match kind {
                1 => {
                    each(body);
                    in_record = false;
                }
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
            if pending.len() > 64 << 20 {
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
    let (f, _) = crate::ingest::open_store(path).map_err(|e| match e {
        crate::ingest::NotRead::Gone => "gone".to_string(),
        crate::ingest::NotRead::Because(why) => why,
    })?;
    let mut run = wandb_proto::Run::default();
    // Name → (kind, cell), in first-seen order: history's last values, then the summary's.
    let mut values: Vec<(String, ColumnKind, Cell)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut set = |values: &mut Vec<(String, ColumnKind, Cell)>, name: String, kind: ColumnKind, cell: Cell| {
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
    let mut undecodable = 0usize;
    let bad = wandb_records(std::io::BufReader::new(f.take(MAX_LOG_BYTES)), |bytes| {
        let Ok(r) = wandb_proto::Record::decode(bytes) else {
            undecodable += 1;
            return;
        };
        if let Some(mut rr) = r.run {
            for item in rr.config.take().into_iter().flat_map(|c| c.items) {
                if let Some(n) = item_name(&item) {
                    set(&mut values, n, ColumnKind::Param, item_cell(&item));
                }
            }
            run = rr;
        }
        for item in r.config.into_iter().flat_map(|c| c.items) {
            if let Some(n) = item_name(&item) {
                set(&mut values, n, ColumnKind::Param, item_cell(&item));
            }
        }
        for item in r.history.into_iter().chain(r.summary).flat_map(|c| c.items) {
            if let Some(n) = item_name(&item) {
                set(&mut values, n, ColumnKind::Metric, item_cell(&item));
            }
        }
    })?;
    let mut cells = Vec::new();
    row(&mut cells, "W&B run", ColumnKind::Key, Cell::of(&run.run_id));
    row(&mut cells, "run name", ColumnKind::Key, Cell::of(&run.display_name));
    row(&mut cells, "W&B project", ColumnKind::Key, Cell::of(&run.project));
    row(&mut cells, "group", ColumnKind::Key, Cell::of(&run.run_group));
    cells.extend(values);
    let mut notes = Vec::new();
    if bad + undecodable > 0 {
        notes.push(format!(
            "{} damaged piece{} of the record log skipped (a bad checksum or framing): the values read may be older \
             than the run's last",
            bad + undecodable,
            if bad + undecodable == 1 { "" } else { "s" }
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

    #[test]
    fn optuna_params_are_the_choices_made() {
        let cat = r#"{"name": "CategoricalDistribution", "attributes": {"choices": ["adam", "sgd"]}}"#;
        assert_eq!(optuna_param(1.0, cat), Cell::Text("sgd".into()));
        let int = r#"{"name": "IntDistribution", "attributes": {"low": 1, "high": 9}}"#;
        assert_eq!(optuna_param(4.0, int), Cell::Number(4.0, "4".into()));
        assert_eq!(objective_name(&[], 2, 1), "value 1");
        assert_eq!(objective_name(&["acc".into()], 2, 0), "acc");
        assert_eq!(candidate("optuna_journal.log"), Some(Candidate::Journal));
        assert_eq!(candidate("mlflow.db-journal"), None, "SQLite's rollback journal is not Optuna's");
        assert_eq!(candidate("mlflow.db"), Some(Candidate::Sqlite));
    }
}
