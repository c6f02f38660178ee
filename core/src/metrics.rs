//! Model metrics beside the logs: the files ML tools write next to CodeCarbon's `emissions.csv`,
//! read into final values per run.
//!
//! - `metrics.csv`, long (`run_id,name,value[,step,timestamp]`) or wide (`run_id,accuracy,loss,…`);
//! - Hugging Face Trainer's `trainer_state.json` (`log_history`) and `all_results.json`;
//! - W&B's `files/wandb-summary.json`;
//! - an MLflow file-store run (`mlruns/<exp>/<run>/metrics/<key>`, tag `codecarbon.run_id`).
//!
//! A value names its run when the file does (`run_id` column, MLflow tag, W&B key
//! `codecarbon_run_id`); otherwise it belongs to "the folder's run", a join the caller makes by
//! place and flags as a guess. The final value of a metric is MLflow's rule: the highest step,
//! then the latest timestamp, then the last written.

use crate::model::Problem;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Which kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    Csv,
    HfTrainerState,
    HfAllResults,
    WandbSummary,
    MlflowRun,
    /// A CSV or JSON file that is neither a log nor a metrics file but holds numbers: joined by
    /// what it holds (see [`crate::results`]).
    ResultsTable,
    /// MLflow's database (`mlflow.db`), W&B's run file, Optuna's storage: read as tables (see
    /// [`crate::stores`]).
    MlflowDb,
    /// An MLflow tracking server (`--mlflow-url`).
    MlflowServer,
    WandbRun,
    OptunaDb,
    OptunaJournal,
}

impl MetricsFormat {
    /// The kind a file's name says, if any: `metrics.csv` (also `metrics_<anything>.csv`), the
    /// JSON files by their names, each also as a saved copy `<name>-<n>.<ext>` (an upload kept
    /// beside one of the same name). MLflow runs are folders: see [`MLFLOW_RUN_FILE`].
    pub fn of_file_name(name: &str) -> Option<MetricsFormat> {
        let lower = name.to_ascii_lowercase();
        let (stem, ext) = lower.rsplit_once('.')?;
        // A copy's `-<n>` is not part of the name.
        let stem = match stem.rsplit_once('-') {
            Some((s, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => s,
            _ => stem,
        };
        match (stem, ext) {
            ("metrics", "csv") => Some(MetricsFormat::Csv),
            (s, "csv") if s.starts_with("metrics_") => Some(MetricsFormat::Csv),
            ("trainer_state", "json") => Some(MetricsFormat::HfTrainerState),
            ("all_results", "json") => Some(MetricsFormat::HfAllResults),
            ("wandb-summary", "json") => Some(MetricsFormat::WandbSummary),
            _ => None,
        }
    }

    /// The format in words, as the Files page names it.
    pub fn label(self) -> &'static str {
        match self {
            MetricsFormat::Csv => "metrics.csv",
            MetricsFormat::HfTrainerState => "Hugging Face trainer_state.json",
            MetricsFormat::HfAllResults => "Hugging Face all_results.json",
            MetricsFormat::WandbSummary => "W&B wandb-summary.json",
            MetricsFormat::MlflowRun => "MLflow run",
            MetricsFormat::ResultsTable => "results table",
            MetricsFormat::MlflowDb => "MLflow database",
            MetricsFormat::MlflowServer => "MLflow tracking server",
            MetricsFormat::WandbRun => "W&B run file",
            MetricsFormat::OptunaDb => "Optuna study (SQLite)",
            MetricsFormat::OptunaJournal => "Optuna study (journal)",
        }
    }

    /// Which file wins when two give the same metric of the same run: the one the user wrote for
    /// the purpose, then final results before running summaries.
    pub fn rank(self) -> u8 {
        match self {
            MetricsFormat::Csv => 0,
            MetricsFormat::HfAllResults => 1,
            MetricsFormat::WandbSummary => 2,
            MetricsFormat::MlflowRun => 3,
            MetricsFormat::HfTrainerState => 4,
            MetricsFormat::MlflowDb
            | MetricsFormat::MlflowServer
            | MetricsFormat::OptunaDb
            | MetricsFormat::OptunaJournal => 3,
            MetricsFormat::WandbRun => 2,
            MetricsFormat::ResultsTable => 5,
        }
    }
}

/// The file that stands for an MLflow file-store run (`mlruns/<exp>/<run>/meta.yaml`, beside
/// its `metrics/` folder): reading it reads the run's metrics and its `codecarbon.run_id` tag.
pub const MLFLOW_RUN_FILE: &str = "meta.yaml";

/// What a metrics file gave, kept by the catalog to join to runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsFile {
    pub format: MetricsFormat,
    pub values: Vec<MetricValue>,
    /// A results table, joined once the runs are known (its `values` are then empty).
    pub table: Option<Arc<crate::results::Table>>,
    /// How a results table joined: its values then name their runs.
    pub joined: Option<Result<TableJoined, String>>,
    /// `carbon-dash.toml`: the joins it declares.
    pub declarations: Option<Arc<Vec<crate::declare::Declaration>>>,
    /// Hyper-parameters, by run (a joined table's parameter columns).
    pub params: Vec<ParamValue>,
    /// Metric name → whether higher is better, where the file says.
    pub directions: Vec<(String, bool)>,
    /// Metric name → its unit (`carbon-dash.toml`'s `[metrics]`).
    pub units: Vec<(String, String)>,
}

/// One hyper-parameter of a run, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamValue {
    /// `None`: the folder's run, as for [`MetricValue`].
    pub run_id: Option<String>,
    pub name: String,
    pub value: String,
}

/// How a results table joined (see [`crate::results::TableJoin`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TableJoined {
    pub how: String,
    pub guess: bool,
    pub rows: usize,
    pub rows_without_run: usize,
}

impl MetricsFile {
    pub fn of(format: MetricsFormat, values: Vec<MetricValue>) -> MetricsFile {
        MetricsFile {
            format,
            values,
            table: None,
            joined: None,
            declarations: None,
            params: Vec::new(),
            directions: Vec::new(),
            units: Vec::new(),
        }
    }

    /// A results table joined to runs: each row's numbers (key columns aside) are its run's
    /// metrics; or why it is not joined.
    pub fn joined_table(
        format: MetricsFormat,
        table: &crate::results::Table,
        join: Result<crate::results::TableJoin, String>,
    ) -> MetricsFile {
        let mut file = MetricsFile::of(format, Vec::new());
        match join {
            Ok(j) => {
                let metrics = table.metric_columns(&j.key_columns);
                let params = table.param_columns();
                let lines: HashMap<usize, &Vec<crate::results::Cell>> =
                    table.rows.iter().map(|(l, cells)| (*l, cells)).collect();
                let mut finals = Finals::default();
                for (line, run) in &j.rows {
                    let Some(cells) = lines.get(line) else { continue };
                    for &c in &metrics {
                        if let Some(crate::results::Cell::Number(x, _)) = cells.get(c) {
                            finals.add(Some(run.clone()), shorten(&table.columns[c]), *x, None, None);
                        }
                    }
                    for &c in &params {
                        if let Some(v) = cells.get(c).and_then(crate::results::Cell::key) {
                            file.params.push(ParamValue {
                                run_id: Some(run.clone()),
                                name: shorten(&table.columns[c]),
                                value: v.to_string(),
                            });
                        }
                    }
                }
                file.values = finals.values();
                file.joined = Some(Ok(TableJoined {
                    how: j.how,
                    guess: j.guess,
                    rows: j.rows.len(),
                    rows_without_run: j.rows_without_run,
                }));
            }
            Err(why) => file.joined = Some(Err(why)),
        }
        file
    }
}

/// One final value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// `None`: the folder's run (a guess the caller flags).
    pub run_id: Option<String>,
    pub name: String,
    pub value: f64,
}

/// What a metrics file says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    pub values: Vec<MetricValue>,
    pub problems: Vec<Problem>,
    /// Problems over [`MAX_PROBLEMS_KEPT`], counted.
    dropped: usize,
}

fn problem(line: usize, column: Option<usize>, column_name: Option<&str>, reason: String) -> Problem {
    Problem { line, column, column_name: column_name.map(str::to_string), reason, rejected: true }
}

/// A metric of a run: (run, name).
type MetricKey = (Option<String>, String);
/// Its latest observation: (step, timestamp, order written, value).
type Observation = (f64, f64, usize, f64);

/// Observations of one metric of one run, reduced to the final one.
#[derive(Default)]
struct Finals {
    /// In first-seen order.
    seen: Vec<(MetricKey, Observation)>,
    index: std::collections::HashMap<MetricKey, usize>,
    /// Observations so far: the order of writing.
    written: usize,
}

impl Finals {
    fn add(&mut self, run: Option<String>, name: String, value: f64, step: Option<f64>, ts: Option<f64>) {
        let order = self.written;
        self.written += 1;
        let key = (step.unwrap_or(f64::NEG_INFINITY), ts.unwrap_or(f64::NEG_INFINITY), order, value);
        let k = (run, name);
        match self.index.get(&k) {
            Some(&i) => {
                let cur = &mut self.seen[i].1;
                if (key.0, key.1, key.2) >= (cur.0, cur.1, cur.2) {
                    *cur = key;
                }
            }
            None => {
                self.index.insert(k.clone(), self.seen.len());
                self.seen.push((k, key));
            }
        }
    }

    fn values(self) -> Vec<MetricValue> {
        self.seen.into_iter().map(|((run_id, name), (_, _, _, value))| MetricValue { run_id, name, value }).collect()
    }
}

/// A number as metric files write them (`nan`, `inf` are not values).
fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A timestamp column: a number (MLflow's ms) or an ISO time (compared as written).
fn timestamp(s: &str) -> Option<f64> {
    number(s)
        .or_else(|| crate::time::parse_iso(s.trim()).map(|t| t.and_utc().timestamp_millis() as f64))
        .or_else(|| crate::time::parse_rfc3339(s).map(|t| t as f64 * 1000.0))
}

/// Problems kept per file (the rest are counted in one last problem).
pub const MAX_PROBLEMS_KEPT: usize = 200;

/// Widest metrics.csv read (a wide file has a column per metric).
pub const MAX_COLUMNS: usize = 1000;

/// Longest run id taken (CodeCarbon's are 36-character UUIDs): a longer one is not a run id,
/// and every value would carry a copy of it.
pub const MAX_RUN_ID: usize = 200;

/// Longest metric name kept, and text quoted in a problem: longer is cut with `…`.
const MAX_NAME: usize = 200;

/// `s` cut to [`MAX_NAME`] characters.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_NAME) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// A run id a file names, if it is one: trimmed, not empty, at most [`MAX_RUN_ID`] bytes.
fn run_id_of(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= MAX_RUN_ID).then(|| s.to_string())
}

impl Metrics {
    fn push(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS_KEPT {
            self.problems.push(p);
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Metrics {
        if self.dropped > 0 {
            let n = self.dropped;
            self.problems.push(problem(0, None, None, format!("{n} more problems not listed")));
        }
        self
    }
}

/// `metrics.csv`, long or wide.
pub fn read_csv(text: &str) -> Metrics {
    let mut out = Metrics::default();
    let mut records = crate::records::records(text);
    let mut rec = crate::records::Record::default();
    // The header: the first record that is not blank.
    let header: Vec<String> = loop {
        if !records.read(&mut rec) {
            out.push(problem(
                0,
                None,
                None,
                "an empty file: a metrics.csv starts with a header such as run_id,name,value".into(),
            ));
            return out;
        }
        if !rec.is_blank(text) {
            break rec.iter(text).map(|h| h.trim().trim_start_matches('\u{feff}').to_string()).collect();
        }
    };
    if header.len() > MAX_COLUMNS {
        out.push(problem(
            1,
            None,
            None,
            format!("{} columns, more than the {MAX_COLUMNS} a metrics file may have: not read", header.len()),
        ));
        return out.finish();
    }
    let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    let col = |n: &str| names.iter().position(|h| h == n);
    let (run_col, step_col, ts_col) = (col("run_id"), col("step"), col("timestamp"));
    let mut finals = Finals::default();
    // MLflow's own word for the name is `key`; some write `metric`.
    let long = (col("name").or_else(|| col("metric")).or_else(|| col("key")), col("value"));
    // The wide form's metric columns, and those found to hold text (said once, not per row).
    let metric_cols: Vec<usize> = (0..names.len())
        .filter(|&i| {
            Some(i) != run_col && !names[i].is_empty() && !["step", "timestamp", "epoch"].contains(&names[i].as_str())
        })
        .collect();
    let mut text_column = vec![false; names.len()];
    while records.read(&mut rec) {
        if rec.is_blank(text) {
            continue;
        }
        let line = rec.line;
        let cell = |i: usize| if i < rec.len() { rec.get(text, i) } else { "" };
        let run = match run_col.map(|i| cell(i).trim()) {
            None => None,
            Some("") => {
                out.push(problem(line, run_col.map(|i| i + 1), Some("run_id"), "no run_id: the row is skipped".into()));
                continue;
            }
            Some(r) if r.len() > MAX_RUN_ID => {
                out.push(problem(
                    line,
                    run_col.map(|i| i + 1),
                    Some("run_id"),
                    format!("a run_id of {} bytes (more than {MAX_RUN_ID}): the row is skipped", r.len()),
                ));
                continue;
            }
            Some(r) => Some(r.to_string()),
        };
        let step = step_col.and_then(|i| number(cell(i)));
        match long {
            (Some(n), Some(v)) => {
                let name = cell(n).trim();
                let Some(value) = number(cell(v)) else {
                    out.push(problem(
                        line,
                        Some(v + 1),
                        Some("value"),
                        format!("'{}' is not a finite number: the row is skipped", shorten(cell(v).trim())),
                    ));
                    continue;
                };
                if name.is_empty() {
                    out.push(problem(line, Some(n + 1), Some("name"), "no metric name: the row is skipped".into()));
                    continue;
                }
                let ts = ts_col.and_then(|i| timestamp(cell(i)));
                finals.add(run, shorten(name), value, step, ts);
            }
            _ => {
                for &i in &metric_cols {
                    let raw = cell(i).trim();
                    if raw.is_empty() || text_column[i] {
                        continue;
                    }
                    match number(raw) {
                        Some(v) => finals.add(run.clone(), shorten(&header[i]), v, step, None),
                        None => {
                            text_column[i] = true;
                            out.push(problem(
                                line,
                                Some(i + 1),
                                Some(&names[i]),
                                format!(
                                    "'{}' is not a finite number: the column's text cells are skipped",
                                    shorten(raw)
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
    out.values = finals.values();
    out.finish()
}

fn json(text: &str, what: &str) -> Result<Value, Metrics> {
    serde_json::from_str(text).map_err(|e| Metrics {
        values: Vec::new(),
        problems: vec![problem(e.line(), Some(e.column().max(1)), None, format!("not a {what}: {e}"))],
        dropped: 0,
    })
}

/// Numeric fields of a flat JSON object, in order, skipping `skip`.
fn flat_numbers(o: &serde_json::Map<String, Value>, skip: impl Fn(&str) -> bool) -> Vec<(String, f64)> {
    o.iter()
        .filter(|(k, _)| !skip(k))
        .filter_map(|(k, v)| Some((shorten(k), v.as_f64().filter(|x| x.is_finite())?)))
        .collect()
}

/// Not model quality: a trainer's bookkeeping.
fn trainer_bookkeeping(k: &str) -> bool {
    matches!(k, "step" | "epoch" | "total_flos" | "learning_rate" | "grad_norm" | "global_step")
}

/// Hugging Face Trainer's `trainer_state.json`: the last value of each key of `log_history`
/// (by step), and `best_metric`. All for the folder's run.
pub fn read_trainer_state(text: &str) -> Metrics {
    let v = match json(text, "trainer_state.json") {
        Ok(v) => v,
        Err(m) => return m,
    };
    let mut finals = Finals::default();
    for entry in v.get("log_history").and_then(Value::as_array).into_iter().flatten() {
        let Some(o) = entry.as_object() else { continue };
        let step = o.get("step").and_then(Value::as_f64);
        for (k, x) in flat_numbers(o, trainer_bookkeeping) {
            finals.add(None, k, x, step, None);
        }
    }
    if let Some(b) = v.get("best_metric").and_then(Value::as_f64).filter(|b| b.is_finite()) {
        finals.add(None, "best_metric".into(), b, None, None);
    }
    let mut out = Metrics { values: finals.values(), ..Metrics::default() };
    if out.values.is_empty() {
        out.problems.push(problem(0, None, None, "no numeric metric in log_history".into()));
    }
    out
}

/// Hugging Face Trainer's `all_results.json` (and `eval_results.json`): a flat object.
pub fn read_all_results(text: &str) -> Metrics {
    match json(text, "results file") {
        Ok(Value::Object(o)) => {
            // A script may name its run as for W&B (`trainer.save_metrics("all", {…})` with it).
            let (run, problems) = named_run(&o);
            Metrics {
                values: flat_numbers(&o, trainer_bookkeeping)
                    .into_iter()
                    .map(|(name, value)| MetricValue { run_id: run.clone(), name, value })
                    .collect(),
                problems,
                ..Metrics::default()
            }
        }
        Ok(_) => Metrics { problems: vec![problem(0, None, None, "not a JSON object".into())], ..Metrics::default() },
        Err(m) => m,
    }
}

/// The run a JSON metrics object names by a `codecarbon_run_id` (or `codecarbon.run_id`) key,
/// and the problem when the key holds no run id.
fn named_run(o: &serde_json::Map<String, Value>) -> (Option<String>, Vec<Problem>) {
    let named = ["codecarbon_run_id", "codecarbon.run_id", "codecarbon/run_id"]
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str));
    let run = named.and_then(run_id_of);
    let mut problems = Vec::new();
    if let (Some(n), None) = (named, &run) {
        problems.push(problem(
            0,
            None,
            Some("codecarbon_run_id"),
            format!("a run id of {} bytes is not one: the values go to the folder's run", n.len()),
        ));
    }
    (run, problems)
}

/// W&B's `wandb-summary.json`: the summary's numbers (not W&B's own `_` keys); the run is named
/// by a `codecarbon_run_id` (or `codecarbon.run_id`) key when the script logged it.
pub fn read_wandb_summary(text: &str) -> Metrics {
    let o = match json(text, "wandb-summary.json") {
        Ok(Value::Object(o)) => o,
        Ok(_) => {
            return Metrics { problems: vec![problem(0, None, None, "not a JSON object".into())], ..Metrics::default() }
        }
        Err(m) => return m,
    };
    let (run, problems) = named_run(&o);
    let values = flat_numbers(&o, |k| k.starts_with('_'))
        .into_iter()
        .map(|(name, value)| MetricValue { run_id: run.clone(), name, value })
        .collect();
    Metrics { values, problems, ..Metrics::default() }
}

/// An MLflow file-store run: its `codecarbon.run_id` tag (the file's text) and its metric files
/// (`key`, text of lines `timestamp value [step]`).
pub fn read_mlflow_run(tag: Option<&str>, metric_files: &[(String, String)]) -> Metrics {
    let run = tag.and_then(run_id_of);
    let mut finals = Finals::default();
    let mut out = Metrics::default();
    for (key, text) in metric_files {
        for (i, line) in text.lines().enumerate() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (ts, value, step) = match parts.as_slice() {
                [ts, v] => (number(ts), number(v), Some(0.0)),
                [ts, v, s] => (number(ts), number(v), number(s)),
                [] => continue,
                _ => (None, None, None),
            };
            match value {
                Some(v) => finals.add(run.clone(), key.clone(), v, step, ts),
                // MLflow writes `nan` for a diverged value: not a value, not an error either.
                None if parts.get(1).is_some_and(|v| {
                    ["nan", "inf", "-inf", "infinity", "-infinity"].contains(&v.to_ascii_lowercase().as_str())
                }) => {}
                None => out.push(problem(
                    i + 1,
                    None,
                    Some(key),
                    format!("metrics/{key}: '{}' is not 'timestamp value [step]'", shorten(line)),
                )),
            }
        }
    }
    out.values = finals.values();
    out.finish()
}

/// Reads a metrics file of `format`.
pub fn read(format: MetricsFormat, text: &str) -> Metrics {
    match format {
        MetricsFormat::Csv => read_csv(text),
        MetricsFormat::HfTrainerState => read_trainer_state(text),
        MetricsFormat::HfAllResults => read_all_results(text),
        MetricsFormat::WandbSummary => read_wandb_summary(text),
        // Read by their own readers (folders, tables, stores).
        MetricsFormat::MlflowRun
        | MetricsFormat::ResultsTable
        | MetricsFormat::MlflowDb
        | MetricsFormat::MlflowServer
        | MetricsFormat::WandbRun
        | MetricsFormat::OptunaDb
        | MetricsFormat::OptunaJournal => Metrics::default(),
    }
}

/// A metric value joined to a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub value: f64,
    /// The file it came from (its path under the logs folder).
    pub file: String,
    pub format: MetricsFormat,
    /// Why the join is a guess, when the file did not name the run.
    pub guess: Option<String>,
}

/// How one metrics file joined.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileJoin {
    /// Runs it gave a value to (used or not).
    pub runs: BTreeSet<String>,
    /// Set when the values went to its folder's run: why that run.
    pub guess: Option<String>,
    /// A results table: what joined its rows to runs, and rows that named no run.
    pub how: Option<(String, usize)>,
    /// Why values were not joined (each reason once).
    pub unjoined: Vec<String>,
    /// Run ids the file names that are not in the logs.
    pub unknown_runs: BTreeSet<String>,
    /// Values another file gave differently, and which one was used.
    pub conflicts: Vec<String>,
    pub conflicts_total: usize,
}

/// Conflicts said per file; the rest are counted.
const CONFLICTS_SAID: usize = 5;

impl FileJoin {
    /// Whether nothing of the file reached a run.
    pub fn failed(&self) -> bool {
        self.runs.is_empty()
    }

    /// In words, for the Files page.
    pub fn note(&self) -> String {
        let mut parts = Vec::new();
        match (self.runs.len(), &self.guess) {
            (0, _) => parts.push(format!("not joined: {}", self.unjoined.join("; "))),
            (n, _) if self.how.is_some() => {
                let (how, without) = self.how.clone().unwrap_or_default();
                parts.push(format!("joined to {n} run{} by {how}", if n == 1 { "" } else { "s" }));
                if without > 0 {
                    parts.push(format!("{without} row{} name no run", if without == 1 { "" } else { "s" }));
                }
            }
            (_, Some(why)) => parts.push(format!(
                "joined to run {} by its folder, a guess: {why}",
                self.runs.iter().next().map(String::as_str).unwrap_or_default()
            )),
            (n, None) => parts.push(format!("joined to {n} run{} by run_id", if n == 1 { "" } else { "s" })),
        }
        if !self.unknown_runs.is_empty() && !self.runs.is_empty() {
            let some: Vec<&str> = self.unknown_runs.iter().take(3).map(String::as_str).collect();
            parts.push(format!(
                "{} run id{} not in the logs ({}{})",
                self.unknown_runs.len(),
                if self.unknown_runs.len() == 1 { " is" } else { "s are" },
                some.join(", "),
                if self.unknown_runs.len() > 3 { ", …" } else { "" }
            ));
        }
        if self.conflicts_total > 0 {
            let more = self.conflicts_total - self.conflicts.len();
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            parts.push(format!("differs from another file: {}{more}", self.conflicts.join("; ")));
        }
        parts.join("; ")
    }
}

/// Metric values joined to runs, and how each metrics file joined.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricJoin {
    /// run id → metric name → value.
    pub by_run: HashMap<String, BTreeMap<String, Joined>>,
    /// metrics file path → how it joined.
    pub files: BTreeMap<String, FileJoin>,
    /// run id → hyper-parameter → value (the first file's, by path, when two give one).
    pub params: HashMap<String, BTreeMap<String, String>>,
    /// Metric name → whether higher is better, where a joined file says (an Optuna study's
    /// directions) or `carbon-dash.toml` declares it (which wins).
    pub directions: BTreeMap<String, bool>,
    /// Metric name → its unit, where declared.
    pub units: BTreeMap<String, String>,
}

impl MetricJoin {
    /// Metric names with the number of runs that have each, most common first.
    pub fn names(&self) -> Vec<(String, usize)> {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.by_run.values() {
            for name in m.keys() {
                *count.entry(name).or_default() += 1;
            }
        }
        let mut out: Vec<(String, usize)> = count.into_iter().map(|(n, c)| (n.to_string(), c)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

/// The folder of a path under the logs folder (`""` at the top).
fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The folder whose runs a file that names none may belong to: its own, or for W&B the folder
/// holding `wandb/` (its run folders sit below it); never further up, where a folder's only run
/// is unlikely to be the file's.
pub fn guess_folder(path: &str, format: MetricsFormat) -> &str {
    let own = folder_of(path);
    if matches!(format, MetricsFormat::WandbSummary | MetricsFormat::WandbRun) {
        if let Some(at) = own.rfind("/wandb/").map(|i| &own[..i]).or_else(|| own.starts_with("wandb/").then_some("")) {
            return at;
        }
    }
    own
}

/// The run a file that names none belongs to: the only run logged in its folder (see
/// [`guess_folder`]), or why there is none.
fn folder_run(
    path: &str,
    format: MetricsFormat,
    folder_runs: &HashMap<String, BTreeSet<String>>,
) -> Result<(String, String), String> {
    if format == MetricsFormat::MlflowRun {
        return Err("the MLflow run has no codecarbon.run_id tag: set it with \
                    mlflow.set_tag(\"codecarbon.run_id\", tracker.run_id)"
            .into());
    }
    let folder = guess_folder(path, format);
    let shown = if folder.is_empty() { "the top folder".to_string() } else { format!("{folder}/") };
    match folder_runs.get(folder) {
        Some(runs) if runs.len() == 1 => {
            Ok((runs.iter().next().cloned().unwrap_or_default(), format!("the only run logged in {shown}")))
        }
        Some(runs) => Err(format!(
            "{shown} logs {} runs and the file names none: {}",
            runs.len(),
            match format {
                MetricsFormat::Csv => "add a run_id column (CodeCarbon's run id)",
                MetricsFormat::HfTrainerState => {
                    "give each run its own output_dir, or put its values in a metrics.csv with a run_id column"
                }
                MetricsFormat::HfAllResults => {
                    "give each run its own output_dir, or add a \"codecarbon_run_id\" key with CodeCarbon's run id"
                }
                MetricsFormat::WandbSummary => "log CodeCarbon's run id in the summary as codecarbon_run_id",
                MetricsFormat::MlflowRun => "set the codecarbon.run_id tag",
                MetricsFormat::ResultsTable => "add a run_id column (CodeCarbon's run id)",
                MetricsFormat::MlflowDb | MetricsFormat::MlflowServer => "set the codecarbon.run_id tag",
                MetricsFormat::WandbRun => "log CodeCarbon's run id in the summary as codecarbon_run_id",
                MetricsFormat::OptunaDb | MetricsFormat::OptunaJournal => {
                    "set the trial's codecarbon_run_id user attribute"
                }
            }
        )),
        None => Err(format!("no CodeCarbon log in {shown}, and the file names no run")),
    }
}

/// Joins metrics `files` (path, values) to the runs in `runs`, where `folder_runs` holds the runs
/// logged in each folder (by the log files directly in it). A value that names its run joins it
/// exactly; one that does not goes to its folder's only run, flagged as a guess. When files give
/// the same metric of a run, an exact join wins over a guess, then the format's rank, then the
/// first path; a different value from the losing file is said on it.
pub fn join(
    files: &[(&str, &MetricsFile)],
    runs: &HashSet<&str>,
    folder_runs: &HashMap<String, BTreeSet<String>>,
) -> MetricJoin {
    let mut out = MetricJoin::default();
    let mut disagree: BTreeSet<String> = BTreeSet::new();
    for (path, file) in files {
        let mut fj = FileJoin::default();
        let mut folder: Option<Result<(String, String), String>> = None;
        let table_guess = match &file.joined {
            Some(Ok(j)) => {
                fj.how = Some((j.how.clone(), j.rows_without_run));
                j.guess.then(|| j.how.clone())
            }
            Some(Err(why)) => {
                fj.unjoined.push(why.clone());
                None
            }
            None => None,
        };
        for v in &file.values {
            let (run, guess) = match &v.run_id {
                Some(id) if runs.contains(id.as_str()) => (id.clone(), table_guess.clone()),
                Some(id) => {
                    fj.unknown_runs.insert(id.clone());
                    continue;
                }
                None => match folder.get_or_insert_with(|| folder_run(path, file.format, folder_runs)) {
                    Ok((run, why)) => (run.clone(), Some(why.clone())),
                    Err(why) => {
                        if !fj.unjoined.contains(why) {
                            fj.unjoined.push(why.clone());
                        }
                        continue;
                    }
                },
            };
            if guess.is_some() && fj.how.is_none() {
                fj.guess = guess.clone();
            }
            fj.runs.insert(run.clone());
            let new = Joined { value: v.value, file: path.to_string(), format: file.format, guess };
            let slot = out.by_run.entry(run.clone()).or_default();
            let key = |j: &Joined| (j.guess.is_some(), j.format.rank());
            let (winner, loser) = match slot.get(&v.name) {
                None => {
                    slot.insert(v.name.clone(), new);
                    continue;
                }
                Some(old) if key(&new) < key(old) => {
                    let old = slot.insert(v.name.clone(), new.clone()).unwrap_or(new.clone());
                    (new, old)
                }
                Some(old) => (old.clone(), new),
            };
            if winner.value != loser.value && winner.file != loser.file {
                let said = format!(
                    "{} of run {} is {} here and {} in {} (used)",
                    v.name, run, loser.value, winner.value, winner.file
                );
                let lj = if loser.file == *path { &mut fj } else { out.files.entry(loser.file.clone()).or_default() };
                lj.conflicts_total += 1;
                if lj.conflicts.len() < CONFLICTS_SAID {
                    lj.conflicts.push(said);
                }
            }
        }
        for p in &file.params {
            let run = match &p.run_id {
                Some(id) if runs.contains(id.as_str()) => id.clone(),
                Some(_) => continue,
                None => match folder.get_or_insert_with(|| folder_run(path, file.format, folder_runs)) {
                    Ok((run, _)) => run.clone(),
                    Err(_) => continue,
                },
            };
            out.params.entry(run).or_default().entry(p.name.clone()).or_insert_with(|| p.value.clone());
        }
        if !fj.runs.is_empty() {
            for (name, up) in &file.directions {
                // Two studies that disagree on a metric's direction say nothing of it.
                if *out.directions.entry(name.clone()).or_insert(*up) != *up {
                    disagree.insert(name.clone());
                }
            }
        }
        if fj.runs.is_empty() && fj.unjoined.is_empty() {
            fj.unjoined.push(match (fj.unknown_runs.len(), file.values.len()) {
                (_, 0) => "it holds no metric value".to_string(),
                (n, _) => {
                    let some: Vec<&str> = fj.unknown_runs.iter().take(3).map(String::as_str).collect();
                    format!(
                        "the run id{} it names ({}{}) {} not in the logs",
                        if n == 1 { "" } else { "s" },
                        some.join(", "),
                        if n > 3 { ", …" } else { "" },
                        if n == 1 { "is" } else { "are" }
                    )
                }
            });
        }
        out.files.insert(path.to_string(), fj);
    }
    for name in disagree {
        out.directions.remove(&name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(m: &Metrics, run: Option<&str>, name: &str) -> Option<f64> {
        m.values.iter().find(|v| v.run_id.as_deref() == run && v.name == name).map(|v| v.value)
    }

    #[test]
    fn a_long_metrics_csv_keeps_the_final_value_per_run_and_name() {
        let text = "run_id,name,value,step,timestamp\n\
                    r1,accuracy,0.80,1,1000\n\
                    r1,accuracy,0.91,3,3000\n\
                    r1,accuracy,0.85,2,2000\n\
                    r2,accuracy,0.70,1,\n\
                    r2,loss,nan,1,\n\
                    ,accuracy,0.5,1,\n";
        let m = read_csv(text);
        assert_eq!(get(&m, Some("r1"), "accuracy"), Some(0.91), "the highest step wins, not the last line");
        assert_eq!(get(&m, Some("r2"), "accuracy"), Some(0.70));
        assert_eq!(get(&m, Some("r2"), "loss"), None);
        let lines: Vec<(usize, Option<usize>)> = m.problems.iter().map(|p| (p.line, p.column)).collect();
        assert_eq!(lines, vec![(6, Some(3)), (7, Some(1))], "{:?}", m.problems);
        assert!(m.problems[0].reason.contains("'nan' is not a finite number"));
    }

    #[test]
    fn a_wide_metrics_csv_is_one_row_per_run_and_without_run_id_is_the_folders() {
        let m = read_csv("run_id,accuracy,loss,epoch\nr1,0.9,0.31,3\nr2,0.8,oops,3\n");
        assert_eq!(get(&m, Some("r1"), "accuracy"), Some(0.9));
        assert_eq!(get(&m, Some("r1"), "loss"), Some(0.31));
        assert_eq!(get(&m, Some("r1"), "epoch"), None, "epoch is bookkeeping");
        assert_eq!((m.problems[0].line, m.problems[0].column), (3, Some(3)));
        let folder = read_csv("accuracy,f1\n0.93,0.88\n");
        assert_eq!(get(&folder, None, "f1"), Some(0.88));
        assert!(!read_csv("").problems.is_empty());
    }

    #[test]
    fn hugging_face_files_give_the_last_logged_values() {
        let state = r#"{"best_metric": 0.912, "global_step": 300, "log_history": [
            {"epoch": 1.0, "step": 100, "loss": 0.9, "learning_rate": 5e-5},
            {"epoch": 1.0, "step": 100, "eval_loss": 0.52, "eval_accuracy": 0.88},
            {"epoch": 2.0, "step": 200, "eval_loss": 0.41, "eval_accuracy": 0.91},
            {"epoch": 3.0, "step": 300, "train_runtime": 812.5, "train_loss": 0.6}]}"#;
        let m = read_trainer_state(state);
        assert_eq!(get(&m, None, "eval_accuracy"), Some(0.91));
        assert_eq!(get(&m, None, "eval_loss"), Some(0.41));
        assert_eq!(get(&m, None, "best_metric"), Some(0.912));
        assert_eq!(get(&m, None, "learning_rate"), None);
        let all = read_all_results(r#"{"epoch": 3.0, "eval_accuracy": 0.91, "eval_samples": 872, "note": "x"}"#);
        assert_eq!(get(&all, None, "eval_accuracy"), Some(0.91));
        assert_eq!(all.values.len(), 2);
        let bad = read_trainer_state("{\"log_history\": [\n  {\"step\": 1,,}]}");
        assert_eq!(bad.problems[0].line, 2);
    }

    #[test]
    fn wandb_and_mlflow_name_the_run_when_the_script_logged_it() {
        let w = read_wandb_summary(
            r#"{"_runtime": 812, "_step": 300, "accuracy": 0.9, "codecarbon_run_id": "r9", "_wandb": {"runtime": 812}}"#,
        );
        assert_eq!(w.values, vec![MetricValue { run_id: Some("r9".into()), name: "accuracy".into(), value: 0.9 }]);
        let files = vec![
            ("accuracy".to_string(), "1700000000000 0.8 1\n1700000001000 0.9 2\n1700000002000 nan 3\n".to_string()),
            ("val/loss".to_string(), "1700000000000 0.5\n1700000009000 0.4\n".to_string()),
        ];
        let m = read_mlflow_run(Some("r7\n"), &files);
        assert_eq!(get(&m, Some("r7"), "accuracy"), Some(0.9), "nan is no value");
        assert_eq!(get(&m, Some("r7"), "val/loss"), Some(0.4), "two-field lines: step 0, the later timestamp wins");
        assert!(m.problems.is_empty());
        assert_eq!(MetricsFormat::of_file_name("wandb-summary.json"), Some(MetricsFormat::WandbSummary));
        assert_eq!(MetricsFormat::of_file_name("emissions.csv"), None);
    }

    #[test]
    fn odd_but_common_files_are_read_and_their_problems_bounded() {
        // A spreadsheet's byte-order mark, a text column said once, `metric` as the name column.
        let wide = read_csv("\u{feff}accuracy,model\n0.9,resnet\n0.8,vit\n");
        assert_eq!(get(&wide, None, "accuracy"), Some(0.8));
        assert_eq!(wide.problems.len(), 1, "{:?}", wide.problems);
        let keyed =
            read_csv("run_id,metric,value,timestamp\nr1,f1,0.5,2026-01-01T00:00:00Z\nr1,f1,0.7,2026-01-02T00:00:00Z\n");
        assert_eq!(get(&keyed, Some("r1"), "f1"), Some(0.7), "RFC 3339 timestamps order the values");
        // A file of a million bad rows keeps 200 problems and counts the rest.
        let mut big = String::from("run_id,name,value\n");
        for _ in 0..1000 {
            big.push_str("r,acc,x\n");
        }
        let m = read_csv(&big);
        assert_eq!(m.problems.len(), MAX_PROBLEMS_KEPT + 1);
        assert!(m.problems[MAX_PROBLEMS_KEPT].reason.contains("800 more problems"));
        // An empty W&B run id is no run id; MLflow's inf is no value and no error.
        let w = read_wandb_summary(r#"{"acc": 1.0, "codecarbon_run_id": " "}"#);
        assert_eq!(w.values[0].run_id, None);
        let ml = read_mlflow_run(None, &[("acc".into(), "1 inf 1\n2 0.5 2\n".into())]);
        assert!(ml.problems.is_empty() && get(&ml, None, "acc") == Some(0.5));
    }
}
