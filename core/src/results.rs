//! Results tables: CSVs beside the logs that hold model quality (accuracy, loss, …) keyed by
//! something other than CodeCarbon's run id, joined to runs by what they hold.
//!
//! Researchers rarely write CodeCarbon's run id next to their results. They copy the emissions
//! `tracker.stop()` returned into the row, name the row as the run's `project_name`, or keep one
//! results table beside one log, a row per run. A table joins when one of these says which run
//! each row is, for every row that names a run, with no doubt:
//!
//! 1. a column holding run ids;
//! 2. a column equal to each run's emissions (kg, g or mg) or energy (kWh or Wh), within a
//!    relative 1e-9;
//! 3. a column holding each run's `project_name`, `experiment_id` or a tag value, one run each
//!    (runs in the table's folder first);
//! 4. a name column and a value column together, when the name alone is ambiguous;
//! 5. the same folder, as many rows as runs, in order (a guess, said as one).
//!
//! Otherwise it is not joined, and the reason names the candidates.

use crate::records::{records, Record};
use std::collections::{HashMap, HashSet};

/// Data rows a table keeps (a longer one is joined by its first rows, and says so).
pub const MAX_ROWS: usize = 100_000;
/// Columns a table may have.
pub const MAX_COLUMNS: usize = 1000;
/// Characters a text cell keeps.
const MAX_TEXT: usize = 200;

/// Two figures are the same when they differ by at most this share of the larger.
pub const TOLERANCE: f64 = 1e-9;

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    /// A number, and its text as written (an id such as `007` is matched as written).
    Number(f64, Box<str>),
    Text(Box<str>),
}

/// What tables write for a missing value.
const MISSING: [&str; 8] = ["nan", "none", "null", "n/a", "na", "-", "inf", "-inf"];

impl Cell {
    /// A cell as a table writes it: blank or a missing marker is empty, a finite number is a
    /// number, anything else text.
    pub fn of(raw: &str) -> Cell {
        let t = raw.trim();
        if t.is_empty() || MISSING.iter().any(|m| t.eq_ignore_ascii_case(m)) {
            return Cell::Empty;
        }
        let kept = || t.chars().take(MAX_TEXT).collect::<String>().into();
        match t.parse::<f64>() {
            Ok(x) if x.is_finite() => Cell::Number(x, kept()),
            _ => Cell::Text(kept()),
        }
    }

    /// A JSON value as a cell: numbers and strings as [`Cell::of`] reads them, `true`/`false`
    /// as text, `null`, arrays and objects as nothing.
    pub fn of_json(v: &serde_json::Value) -> Cell {
        match v {
            serde_json::Value::Number(n) => Cell::of(&n.to_string()),
            serde_json::Value::String(s) => Cell::of(s),
            serde_json::Value::Bool(b) => Cell::Text(if *b { "true" } else { "false" }.into()),
            _ => Cell::Empty,
        }
    }

    /// The cell as a key: its text as written.
    pub fn key(&self) -> Option<&str> {
        match self {
            Cell::Empty => None,
            Cell::Number(_, t) | Cell::Text(t) => Some(t),
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(x, _) => Some(*x),
            _ => None,
        }
    }
}

/// Cells a table keeps at most (rows × columns), so memory stays near 100 MB whatever the file.
pub const MAX_CELLS: usize = 2_000_000;

/// Largest file read as a results table (a larger CSV that is not a log is said to be neither).
pub const MAX_BYTES: usize = 64 << 20;

/// Columns that count steps rather than measure the model: never metrics.
pub const BOOKKEEPING: [&str; 4] = ["step", "epoch", "timestamp", "seed"];

/// A row as a store or a JSON file gives it: its line (or number), and cells by column name.
pub type NamedRow = (usize, Vec<(String, ColumnKind, Cell)>);

/// What a column holds, when the file says so (a tracking tool's store does; a CSV does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnKind {
    /// Unknown: numbers may be metrics, text may name runs.
    #[default]
    Any,
    /// A model metric (when it holds numbers).
    Metric,
    /// A hyper-parameter: travels with the run, never a metric.
    Param,
    /// A name or id: may name runs, never a metric.
    Key,
}

/// A results table: its columns and data rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<String>,
    /// What each column holds; empty when the file does not say (all [`ColumnKind::Any`]).
    pub kinds: Vec<ColumnKind>,
    /// (line, cells), at most [`MAX_ROWS`].
    pub rows: Vec<(usize, Vec<Cell>)>,
    /// Data rows in the file (kept or not).
    pub rows_total: usize,
    /// Whether the file had no header (its columns are named `column 1`, …).
    pub headerless: bool,
}

impl Table {
    /// Columns whose cells are mostly numbers (a stray word or garbage row does not make a
    /// column text).
    pub fn numeric_columns(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&c| {
                let (mut numbers, mut texts) = (0usize, 0usize);
                for cell in self.rows.iter().filter_map(|(_, r)| r.get(c)) {
                    match cell {
                        Cell::Number(..) => numbers += 1,
                        Cell::Text(_) => texts += 1,
                        Cell::Empty => {}
                    }
                }
                numbers > 0 && numbers > texts * 4
            })
            .collect()
    }

    /// What column `c` holds.
    pub fn kind(&self, c: usize) -> ColumnKind {
        self.kinds.get(c).copied().unwrap_or_default()
    }

    /// Numeric columns that may be metrics: not bookkeeping, parameters or names, and not in
    /// `keys`.
    pub fn metric_columns(&self, keys: &[usize]) -> Vec<usize> {
        self.numeric_columns()
            .into_iter()
            .filter(|&c| {
                !keys.contains(&c)
                    && match self.kind(c) {
                        ColumnKind::Metric => true,
                        ColumnKind::Any => !BOOKKEEPING.contains(&self.columns[c].to_ascii_lowercase().as_str()),
                        ColumnKind::Param | ColumnKind::Key => false,
                    }
            })
            .collect()
    }

    /// Columns of hyper-parameters.
    pub fn param_columns(&self) -> Vec<usize> {
        (0..self.columns.len()).filter(|&c| self.kind(c) == ColumnKind::Param).collect()
    }

    /// A table of `rows` (line, cells by column name), columns in first-seen order, at most
    /// [`MAX_COLUMNS`] of them, [`MAX_ROWS`] rows and about [`MAX_CELLS`] cells.
    pub fn from_rows(rows: impl IntoIterator<Item = NamedRow>) -> Table {
        let mut table = Table::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut kept: Vec<(usize, Vec<(usize, Cell)>)> = Vec::new();
        for (line, named) in rows {
            table.rows_total += 1;
            if kept.len() >= MAX_ROWS {
                continue;
            }
            let mut cells = Vec::with_capacity(named.len());
            for (name, kind, cell) in named {
                let name: String = name.chars().take(MAX_TEXT).collect();
                let c = match index.get(&name) {
                    Some(&c) => c,
                    None if table.columns.len() < MAX_COLUMNS => {
                        let c = table.columns.len();
                        index.insert(name.clone(), c);
                        table.columns.push(name);
                        table.kinds.push(kind);
                        c
                    }
                    None => continue,
                };
                cells.push((c, cell));
            }
            kept.push((line, cells));
        }
        // Rows at the table's final width, as many as the cell budget allows.
        let width = table.columns.len().max(1);
        let rows = kept.len().min(MAX_CELLS / width);
        table.rows = kept
            .into_iter()
            .take(rows)
            .map(|(line, cells)| {
                let mut row = vec![Cell::Empty; table.columns.len()];
                for (c, cell) in cells {
                    row[c] = cell;
                }
                (line, row)
            })
            .collect();
        table
    }
}

/// Reads `text` as a results table: `None` unless it has a data row and a numeric column.
pub fn read_table(text: &str) -> Option<Table> {
    let mut recs = records(text);
    let mut rec = Record::default();
    if !recs.read_filled(&mut rec) {
        return None;
    }
    if text.len() > MAX_BYTES {
        return None;
    }
    let first: Vec<Cell> = rec.iter(text).map(Cell::of).collect();
    if first.len() > MAX_COLUMNS {
        return None;
    }
    // A first row of numbers only is data: the file has no header.
    let headerless = first.iter().all(|c| matches!(c, Cell::Number(..) | Cell::Empty));
    let header_line: Vec<String> = rec.iter(text).map(|h| h.trim().to_string()).collect();
    let max_rows = (MAX_CELLS / first.len().max(1)).min(MAX_ROWS);
    let mut table = Table {
        columns: if headerless {
            (1..=first.len()).map(|i| format!("column {i}")).collect()
        } else {
            rec.iter(text).map(|h| h.trim().trim_start_matches('\u{feff}').chars().take(MAX_TEXT).collect()).collect()
        },
        headerless,
        ..Table::default()
    };
    if headerless {
        table.rows.push((rec.line, first));
        table.rows_total = 1;
    }
    while recs.read_filled(&mut rec) {
        // The header again (tables appended to by several exports): not a row.
        if !headerless && rec.len() == header_line.len() && rec.iter(text).zip(&header_line).all(|(a, b)| a.trim() == b)
        {
            continue;
        }
        table.rows_total += 1;
        if table.rows.len() < max_rows {
            let mut cells: Vec<Cell> = rec.iter(text).take(table.columns.len()).map(Cell::of).collect();
            cells.resize(table.columns.len(), Cell::Empty);
            table.rows.push((rec.line, cells));
        }
    }
    (!table.rows.is_empty() && !table.numeric_columns().is_empty()).then_some(table)
}

/// Whether a JSON file of this name may be a results table: `.json`, `.jsonl`, `.ndjson`, but
/// not the configuration files ML tools keep beside their models (`config.json`,
/// `tokenizer.json`, …), which are never tables and may be large.
pub fn is_json_table_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let Some((stem, ext)) = lower.rsplit_once('.') else { return false };
    matches!(ext, "json" | "jsonl" | "ndjson")
        && !(stem.ends_with("config")
            || stem.starts_with("tokenizer")
            || stem.starts_with("package")
            || stem.ends_with(".index")
            || matches!(stem, "vocab" | "special_tokens_map" | "added_tokens" | "wandb-metadata" | "preprocessor"))
}

/// JSON as Python's `json` writes it: bare `NaN`, `Infinity` and `-Infinity` (outside strings)
/// become `null`, which JSON parsers read.
pub fn python_json(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !text.windows(3).any(|w| w == b"NaN" || w == b"Inf") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let rest = &text[i..];
        let token = [&b"-Infinity"[..], b"Infinity", b"NaN"].into_iter().find(|t| rest.starts_with(t));
        match (b, token) {
            (b'"', _) => {
                in_string = true;
                out.push(b);
                i += 1;
            }
            (_, Some(t)) => {
                out.extend_from_slice(b"null");
                i += t.len();
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Reads `text` as a JSON results table: an array of objects (a row each, numbered from 1), an
/// object of objects (a row each, its key in the column `key`), or JSON lines (an object a
/// line: two lines at least, or one in a `.jsonl`/`.ndjson` file). Nested objects give
/// `outer.inner` columns (one level); arrays are not read. `None` unless a row has a number.
pub fn read_json_table(text: &str, lines_by_name: bool) -> Option<Table> {
    use serde_json::Value;
    if text.len() > MAX_BYTES {
        return None;
    }
    fn cells(obj: &serde_json::Map<String, Value>, out: &mut Vec<(String, ColumnKind, Cell)>) {
        for (k, v) in obj {
            match v {
                Value::Object(inner) => {
                    for (k2, v2) in inner {
                        let c = Cell::of_json(v2);
                        if !matches!(c, Cell::Empty) {
                            out.push((format!("{k}.{k2}"), ColumnKind::Any, c));
                        }
                    }
                }
                v => {
                    let c = Cell::of_json(v);
                    if !matches!(c, Cell::Empty) {
                        out.push((k.clone(), ColumnKind::Any, c));
                    }
                }
            }
        }
    }
    // Python's json writes NaN and Infinity, which are not JSON.
    let fixed = python_json(text.as_bytes());
    let text = std::str::from_utf8(&fixed).unwrap_or(text);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let mut rows: Vec<NamedRow> = Vec::new();
    if trimmed.starts_with('[') {
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(trimmed) else { return None };
        for (i, item) in items.iter().enumerate() {
            let Value::Object(obj) = item else { return None };
            let mut row = Vec::new();
            cells(obj, &mut row);
            rows.push((i + 1, row));
        }
    } else if trimmed.starts_with('{') {
        // JSON lines when every non-blank line is an object.
        let mut lines: Vec<(usize, serde_json::Map<String, Value>)> = Vec::new();
        let mut all = true;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(obj)) => lines.push((i + 1, obj)),
                _ => {
                    all = false;
                    break;
                }
            }
        }
        if all && (lines.len() >= 2 || (lines_by_name && !lines.is_empty())) {
            for (line, obj) in &lines {
                let mut row = Vec::new();
                cells(obj, &mut row);
                rows.push((*line, row));
            }
        } else {
            // One object: a table when each of its values is an object (a row per key).
            let Ok(Value::Object(outer)) = serde_json::from_str::<Value>(trimmed) else { return None };
            if outer.is_empty() || !outer.values().all(Value::is_object) {
                return None;
            }
            for (i, (key, v)) in outer.iter().enumerate() {
                let mut row = vec![("key".to_string(), ColumnKind::Any, Cell::of(key))];
                if let Value::Object(obj) = v {
                    cells(obj, &mut row);
                }
                rows.push((i + 1, row));
            }
        }
    } else {
        return None;
    }
    let table = Table::from_rows(rows);
    (!table.rows.is_empty() && !table.numeric_columns().is_empty()).then_some(table)
}

/// What the join knows of a run.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub id: String,
    /// Folders of the log files that hold it.
    pub folders: Vec<String>,
    pub co2_kg: Option<f64>,
    pub energy_kwh: Option<f64>,
    /// Names it goes by besides its id: `project_name`, `experiment_id`, tag values.
    pub names: Vec<String>,
    pub project: Option<String>,
    pub experiment: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// How a table joined: for each kept row joined, the run; the key columns (not metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct TableJoin {
    pub rows: Vec<(usize, String)>,
    pub key_columns: Vec<usize>,
    /// In words: "the column co2_kg equal to each run's emissions (kg)".
    pub how: String,
    /// The join is a guess (folder and row order).
    pub guess: bool,
    /// Rows that named no run (left out).
    pub rows_without_run: usize,
}

/// A quantity a value column may copy, and the scales it may be written in.
const QUANTITIES: [(&str, &[(f64, &str)]); 2] =
    [("emissions", &[(1.0, "kg"), (1e3, "g"), (1e6, "mg")]), ("energy", &[(1.0, "kWh"), (1e3, "Wh")])];

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * a.abs().max(b.abs())
}

/// Runs sorted by one figure, for lookups within the tolerance.
struct ByFigure<'a>(Vec<(f64, &'a str)>);

impl<'a> ByFigure<'a> {
    fn new(runs: &'a [RunFacts], figure: impl Fn(&RunFacts) -> Option<f64>) -> ByFigure<'a> {
        let mut v: Vec<(f64, &str)> =
            runs.iter().filter_map(|r| figure(r).filter(|x| *x != 0.0).map(|x| (x, r.id.as_str()))).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        ByFigure(v)
    }

    /// Runs whose figure equals `x` within the tolerance.
    fn find(&self, x: f64) -> Vec<&'a str> {
        let lo = x - TOLERANCE * x.abs() * 2.0;
        let start = self.0.partition_point(|(v, _)| *v < lo);
        self.0[start..]
            .iter()
            .take_while(|(v, _)| *v <= x + TOLERANCE * x.abs() * 2.0)
            .filter(|(v, _)| same(*v, x))
            .map(|(_, id)| *id)
            .collect()
    }
}

/// For each row, the runs a column names (empty: none; `None`: the row has no value there).
type Candidates<'a> = Vec<Option<Vec<&'a str>>>;

/// Whether the candidates of every row are at most one run, distinct across rows, and at least
/// one row has one: then the rows joined, and how many named no run.
fn unique<'a>(cands: &Candidates<'a>, rows: &[(usize, Vec<Cell>)]) -> Option<(Vec<(usize, String)>, usize)> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut without = 0;
    for (c, (line, _)) in cands.iter().zip(rows) {
        match c.as_deref() {
            None | Some([]) => without += 1,
            Some([one]) => {
                if !seen.insert(*one) {
                    return None;
                }
                out.push((*line, one.to_string()));
            }
            Some(_) => return None,
        }
    }
    (!out.is_empty()).then_some((out, without))
}

/// Significant digits of a number as written (`0.00123456` has 6): a figure of many digits equal
/// to a run's is no coincidence.
fn significant_digits(raw: &str) -> usize {
    let mantissa = raw.split(['e', 'E']).next().unwrap_or("");
    mantissa.trim_start_matches(['-', '+', '0', '.']).chars().filter(char::is_ascii_digit).count()
}

/// Joins `table` (at `path` under the logs folder) to `runs`; `folder_runs` holds, for each
/// folder with one log file, its runs in the order the file lists them. The reason it is not
/// joined, with the candidates, otherwise.
pub fn join_table(
    path: &str,
    table: &Table,
    runs: &[RunFacts],
    folder_runs: &HashMap<String, Vec<String>>,
) -> Result<TableJoin, String> {
    let mut join = join_once(path, table, runs, folder_runs)?;
    // Rows left without a run may name theirs another way (a tracking tool's runs: some tagged
    // with the run id, others holding the emissions): join them again, among the runs left in
    // the table's folder (when it has any), by anything but row order.
    let folder = path.rsplit_once('/').map_or("", |(d, _)| d);
    let below = format!("{folder}/");
    let in_folder = |r: &RunFacts| folder.is_empty() || r.folders.iter().any(|f| f == folder || f.starts_with(&below));
    let local = runs.iter().any(in_folder);
    for _ in 0..2 {
        if join.guess || join.rows_without_run == 0 {
            break;
        }
        let used: HashSet<&str> = join.rows.iter().map(|(_, r)| r.as_str()).collect();
        let joined: HashSet<usize> = join.rows.iter().map(|(l, _)| *l).collect();
        let rows: Vec<(usize, Vec<Cell>)> = table.rows.iter().filter(|(l, _)| !joined.contains(l)).cloned().collect();
        let rest = Table {
            columns: table.columns.clone(),
            kinds: table.kinds.clone(),
            rows_total: rows.len(),
            rows,
            headerless: table.headerless,
        };
        let left: Vec<RunFacts> =
            runs.iter().filter(|r| !used.contains(r.id.as_str()) && (!local || in_folder(r))).cloned().collect();
        match join_once(path, &rest, &left, &HashMap::new()) {
            Ok(more) if !more.guess && !more.rows.is_empty() => {
                join.how =
                    format!("{} ({} rows), and {} ({} rows)", join.how, join.rows.len(), more.how, more.rows.len());
                join.rows.extend(more.rows);
                join.rows_without_run = more.rows_without_run;
                for c in more.key_columns {
                    if !join.key_columns.contains(&c) {
                        join.key_columns.push(c);
                    }
                }
            }
            _ => break,
        }
    }
    Ok(join)
}

/// One rule for the whole table (see [`join_table`]).
fn join_once(
    path: &str,
    table: &Table,
    runs: &[RunFacts],
    folder_runs: &HashMap<String, Vec<String>>,
) -> Result<TableJoin, String> {
    let folder = path.rsplit_once('/').map_or("", |(d, _)| d);
    let below = format!("{folder}/");
    let in_folder = |r: &RunFacts| folder.is_empty() || r.folders.iter().any(|f| f == folder || f.starts_with(&below));
    // Names are looked up among the runs of the table's folder when it has any (chosen once for
    // the whole table: one row never goes to a run elsewhere).
    let local: Vec<&RunFacts> = runs.iter().filter(|r| in_folder(r)).collect();
    let named: Vec<&RunFacts> = if local.is_empty() { runs.iter().collect() } else { local };
    let numeric = table.numeric_columns();
    let metrics_left = |keys: &[usize]| !table.metric_columns(keys).is_empty();
    fn cell(row: &[Cell], c: usize) -> Option<&Cell> {
        row.get(c).filter(|x| !matches!(x, Cell::Empty))
    }
    let mut doubts: Vec<String> = Vec::new();
    let pick = |how: String, rows: Vec<(usize, String)>, keys: Vec<usize>, without: usize| TableJoin {
        how,
        rows,
        key_columns: keys,
        guess: false,
        rows_without_run: without,
    };

    // 1: a column of run ids (most of its rows naming one).
    let by_id: HashSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let mut best: Best = None;
    for c in 0..table.columns.len() {
        let cands: Candidates = table
            .rows
            .iter()
            .map(|(_, row)| {
                let k = cell(row, c)?.key()?;
                Some(by_id.get(k).map(|id| vec![*id]).unwrap_or_default())
            })
            .collect();
        let (matched, valued) = counts(&cands);
        if matched * 2 < valued || !metrics_left(&[c]) {
            continue;
        }
        if let Some((rows, without)) = unique(&cands, &table.rows) {
            if best.as_ref().is_none_or(|b| matched > b.1) {
                best = Some((c, matched, rows, without));
            }
        }
    }
    if let Some((c, _, rows, without)) = best {
        return Ok(pick(
            format!("the column {} holding CodeCarbon's run ids", table.columns[c]),
            rows,
            vec![c],
            without,
        ));
    }

    // 2: a column copying each run's emissions or energy.
    let figures = [ByFigure::new(runs, |r| r.co2_kg), ByFigure::new(runs, |r| r.energy_kwh)];
    let value_candidates = |c: usize, q: usize, scale: f64| -> Candidates<'_> {
        table
            .rows
            .iter()
            .map(|(_, row)| match cell(row, c)?.number()? {
                0.0 => None,
                x => Some(figures[q].find(x / scale)),
            })
            .collect()
    };
    let mut value_keys: Vec<(usize, usize, f64, &str)> = Vec::new();
    for &c in &numeric {
        for (q, (what, scales)) in QUANTITIES.iter().enumerate() {
            for &(scale, unit) in scales.iter() {
                let cands = value_candidates(c, q, scale);
                let (matched, valued) = counts(&cands);
                // A round figure may equal a run's by chance: most rows must match, or the
                // matching figures must have many digits.
                let precise = cands.iter().zip(&table.rows).all(|(v, (_, row))| match v {
                    Some(ids) if !ids.is_empty() => {
                        cell(row, c).and_then(Cell::key).is_some_and(|raw| significant_digits(raw) >= 6)
                    }
                    _ => true,
                });
                if matched == 0 || (matched * 2 < valued && !precise) || !metrics_left(&[c]) {
                    continue;
                }
                value_keys.push((c, q, scale, unit));
                if let Some((rows, without)) = unique(&cands, &table.rows) {
                    return Ok(pick(
                        format!("the column {} equal to each run's {what} ({unit})", table.columns[c]),
                        rows,
                        vec![c],
                        without,
                    ));
                }
                doubts.push(format!(
                    "the column {} matches the {what} ({unit}) of {matched} rows' runs, but some rows match \
                     several runs or one run twice",
                    table.columns[c]
                ));
            }
        }
    }

    // 3: a column of names, looked up once per distinct name.
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    for r in &named {
        for n in &r.names {
            let ids = by_name.entry(n.as_str()).or_default();
            if ids.last() != Some(&r.id.as_str()) {
                ids.push(r.id.as_str());
            }
        }
    }
    // At most two candidates a row: enough to tell one from several.
    let name_candidates = |c: usize| -> Candidates<'_> {
        table
            .rows
            .iter()
            .map(|(_, row)| {
                let k = cell(row, c)?.key()?;
                Some(by_name.get(k).map(|ids| ids.iter().take(2).copied().collect()).unwrap_or_default())
            })
            .collect()
    };
    let text_columns: Vec<usize> = (0..table.columns.len()).filter(|c| !numeric.contains(c)).collect();
    let mut name_keys = Vec::new();
    let mut best: Best = None;
    for &c in &text_columns {
        let cands = name_candidates(c);
        let (matched, valued) = counts(&cands);
        if matched == 0 || matched * 2 < valued {
            continue;
        }
        name_keys.push(c);
        if let Some((rows, without)) = unique(&cands, &table.rows) {
            if best.as_ref().is_none_or(|b| matched > b.1) {
                best = Some((c, matched, rows, without));
            }
            continue;
        }
        let shared: Vec<String> = cands
            .iter()
            .zip(&table.rows)
            .filter_map(|(v, (line, row))| match v {
                Some(ids) if ids.len() > 1 => Some(format!(
                    "'{}' (line {line}) names {} runs",
                    cell(row, c).and_then(Cell::key).unwrap_or_default(),
                    by_name.get(cell(row, c).and_then(Cell::key).unwrap_or_default()).map_or(0, Vec::len)
                )),
                _ => None,
            })
            .take(3)
            .collect();
        doubts.push(format!(
            "the column {} names runs, but not one each{}",
            table.columns[c],
            if shared.is_empty() { String::new() } else { format!(": {}", shared.join(", ")) }
        ));
    }
    if let Some((c, _, rows, without)) = best {
        return Ok(pick(
            format!("the column {} naming each run (its project_name, experiment_id or a tag)", table.columns[c]),
            rows,
            vec![c],
            without,
        ));
    }

    // 4: a name and a value together: the value's runs that go by the row's name.
    for &n in &name_keys {
        for &(c, q, scale, unit) in &value_keys {
            let values = value_candidates(c, q, scale);
            let both: Candidates = table
                .rows
                .iter()
                .zip(&values)
                .map(|((_, row), v)| {
                    let name = cell(row, n).and_then(Cell::key);
                    let ids = by_name.get(name?)?;
                    let v = v.as_ref()?;
                    Some(v.iter().copied().filter(|id| ids.contains(id)).collect())
                })
                .collect();
            if let Some((rows, without)) = unique(&both, &table.rows) {
                return Ok(pick(
                    format!(
                        "the columns {} (a run's name) and {} (its {}, {unit}) together",
                        table.columns[n], table.columns[c], QUANTITIES[q].0
                    ),
                    rows,
                    vec![n, c],
                    without,
                ));
            }
        }
    }

    // 5: as many rows as the runs of the folder's one log, in order.
    let here = folder_runs.get(folder).map(Vec::as_slice).unwrap_or_default();
    let shown = if folder.is_empty() { "the top folder".to_string() } else { format!("{folder}/") };
    if doubts.is_empty()
        && !here.is_empty()
        && here.len() == table.rows.len()
        && table.rows_total == table.rows.len()
        && metrics_left(&[])
    {
        return Ok(TableJoin {
            how: format!(
                "row order: {shown} logs {} runs in one file and the table has as many rows, a guess",
                here.len()
            ),
            rows: table.rows.iter().map(|(line, _)| *line).zip(here.iter().cloned()).collect(),
            key_columns: Vec::new(),
            guess: true,
            rows_without_run: 0,
        });
    }
    if doubts.is_empty() {
        doubts.push(format!(
            "no column holds a run's id, emissions, energy or name, and {shown} logs {} runs in one file for its {} rows",
            here.len(),
            table.rows_total
        ));
    }
    let declare = match suggestion(path, table, &named) {
        Some(s) => format!("or declare in {}: {s}", crate::declare::FILE),
        None => format!(
            "or declare how it names its runs in {} ([[results]] table = \"{path}\", key = \"<column>\", \
             run = \"project_name\" or another run field)",
            crate::declare::FILE
        ),
    };
    Err(format!("{}: add a run_id column with CodeCarbon's run id, {declare}", doubts.join("; ")))
}

/// The declaration that would join the most rows of `table`, one run each, when one would: a
/// text column holding some runs' `project_name`, `experiment_id` or a tag (too few rows for the
/// join by content), or the file's name holding one.
fn suggestion(path: &str, table: &Table, runs: &[&RunFacts]) -> Option<String> {
    // Each run field, and how many runs each of its values names.
    fn add<'a>(fields: &mut HashMap<String, HashMap<&'a str, usize>>, field: String, v: &'a str) {
        *fields.entry(field).or_default().entry(v).or_default() += 1;
    }
    let mut fields: HashMap<String, HashMap<&str, usize>> = HashMap::new();
    for r in runs {
        if let Some(p) = &r.project {
            add(&mut fields, "project_name".into(), p);
        }
        if let Some(e) = &r.experiment {
            add(&mut fields, "experiment_id".into(), e);
        }
        for (k, v) in &r.tags {
            add(&mut fields, format!("tag:{k}"), v);
        }
    }
    let mut fields: Vec<(String, HashMap<&str, usize>)> = fields.into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let numeric = table.numeric_columns();
    // (rows naming one run, column, field)
    let mut best: Option<(usize, usize, &str)> = None;
    for c in (0..table.columns.len()).filter(|c| !numeric.contains(c)) {
        for (field, values) in &fields {
            let one = table
                .rows
                .iter()
                .filter(|(_, row)| row.get(c).and_then(Cell::key).is_some_and(|k| values.get(k) == Some(&1)))
                .count();
            if one > 0 && best.is_none_or(|b| one > b.0) {
                best = Some((one, c, field));
            }
        }
    }
    if let Some((one, c, field)) = best {
        return Some(format!(
            "[[results]] table = \"{path}\", key = \"{}\", run = \"{field}\" (it names one run in {one} of {} rows)",
            table.columns[c],
            table.rows.len()
        ));
    }
    // The file's name (less its extension) naming one run: the whole table is that run.
    let (folder, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let mut named: Vec<(&str, &str)> = fields
        .iter()
        .flat_map(|(field, values)| {
            values
                .iter()
                .filter(|(v, n)| **n == 1 && v.len() >= 2 && stem.contains(**v))
                .map(|(v, _)| (field.as_str(), *v))
        })
        .collect();
    // The longest value the name holds (`mnli-mm` before `mnli`).
    named.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(b.0)).then_with(|| a.1.cmp(b.1)));
    let &(field, value) = named.first()?;
    let pattern = format!(
        "{}{}{}{}",
        if folder.is_empty() { String::new() } else { format!("{folder}/") },
        stem.replacen(value, "{key}", 1),
        if ext.is_empty() { "" } else { "." },
        ext
    );
    Some(format!("[[results]] table = \"{pattern}\", run = \"{field}\" (its name holds '{value}')"))
}

/// Joins `table` (at `path`) as `decl` says (see [`crate::declare`]); `named_key` is the key its
/// file name gave (`{key}` in the declared table). Each row names at most one run; a row naming
/// several is a mistake said with its line.
pub fn join_declared(
    path: &str,
    table: &Table,
    decl: &crate::declare::Declaration,
    named_key: Option<&str>,
    runs: &[RunFacts],
) -> Result<TableJoin, String> {
    use crate::declare::RunField;
    let at = format!("{} line {}", crate::declare::FILE, decl.line);
    let column = match &decl.key {
        Some(k) => Some(table.columns.iter().position(|c| c.eq_ignore_ascii_case(k)).ok_or_else(|| {
            let some: Vec<&str> = table.columns.iter().take(8).map(String::as_str).collect();
            format!("{at}: the table has no column '{k}' (it has {}): change key", some.join(", "))
        })?),
        None => None,
    };
    let folder = path.rsplit_once('/').map_or("", |(d, _)| d);
    let below = format!("{folder}/");
    let local: Vec<&RunFacts> = runs
        .iter()
        .filter(|r| folder.is_empty() || r.folders.iter().any(|f| f == folder || f.starts_with(&below)))
        .collect();
    let scope: Vec<&RunFacts> = if local.is_empty() { runs.iter().collect() } else { local };
    let figures = match decl.run {
        RunField::Emissions(..) => Some(ByFigure::new(runs, |r| r.co2_kg)),
        RunField::Energy(..) => Some(ByFigure::new(runs, |r| r.energy_kwh)),
        _ => None,
    };
    // The runs a key names, as the declaration reads it.
    let find = |k: &str| -> Vec<String> {
        match &decl.run {
            RunField::RunId => runs.iter().filter(|r| r.id == k).map(|r| r.id.clone()).collect(),
            RunField::ProjectName => {
                scope.iter().filter(|r| r.project.as_deref() == Some(k)).map(|r| r.id.clone()).collect()
            }
            RunField::ExperimentId => {
                scope.iter().filter(|r| r.experiment.as_deref() == Some(k)).map(|r| r.id.clone()).collect()
            }
            RunField::Tag(t) => scope
                .iter()
                .filter(|r| r.tags.iter().any(|(n, v)| n.eq_ignore_ascii_case(t) && v == k))
                .map(|r| r.id.clone())
                .collect(),
            RunField::Emissions(scale, _) | RunField::Energy(scale, _) => match k.trim().parse::<f64>() {
                Ok(x) if x != 0.0 => figures
                    .as_ref()
                    .map(|f| f.find(x / scale))
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            },
        }
    };
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    let mut without = 0;
    for (line, cells) in &table.rows {
        let key = match (column, named_key) {
            (Some(c), _) => cells.get(c).and_then(Cell::key).map(str::to_string),
            (None, k) => k.map(str::to_string),
        };
        let Some(key) = key else {
            without += 1;
            continue;
        };
        let mut ids = find(&key);
        ids.sort();
        match ids.as_slice() {
            [] => without += 1,
            [one] => {
                if column.is_some() && !seen.insert(one.clone()) {
                    return Err(format!("{at}: line {line}: '{key}' names run {one}, which another row names too"));
                }
                rows.push((*line, one.clone()));
            }
            many => {
                return Err(format!(
                    "{at}: line {line}: '{key}' is the {} of {} runs ({}{}): choose a key that names one",
                    decl.run.label(),
                    many.len(),
                    many.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                    if many.len() > 3 { ", …" } else { "" }
                ))
            }
        }
    }
    if rows.is_empty() {
        return Err(format!("{at}: no row's key is a run's {}", decl.run.label()));
    }
    Ok(TableJoin {
        how: format!(
            "its declaration ({at}): {} is each run's {}",
            match (&decl.key, named_key) {
                (Some(k), _) => format!("the column {k}"),
                (None, Some(k)) => format!("'{k}' from its name"),
                (None, None) => "the key".into(),
            },
            decl.run.label()
        ),
        rows,
        key_columns: column.into_iter().collect(),
        guess: false,
        rows_without_run: without,
    })
}

/// The best key column so far: (column, rows matched, rows joined, rows without a run).
type Best = Option<(usize, usize, Vec<(usize, String)>, usize)>;

/// Rows naming a run, and rows with a value, of a column's candidates.
fn counts(cands: &Candidates) -> (usize, usize) {
    let valued = cands.iter().flatten().count();
    let matched = cands.iter().flatten().filter(|v| !v.is_empty()).count();
    (matched, valued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, folder: &str, co2: f64, kwh: f64, names: &[&str]) -> RunFacts {
        RunFacts {
            id: id.into(),
            folders: vec![folder.into()],
            co2_kg: Some(co2),
            energy_kwh: Some(kwh),
            names: names.iter().map(|n| n.to_string()).collect(),
            ..RunFacts::default()
        }
    }

    #[test]
    fn a_wide_last_row_keeps_the_cell_budget_and_python_json_is_read() {
        let mut rows: Vec<NamedRow> =
            (0..99_999).map(|i| (i, vec![("a".into(), ColumnKind::Any, Cell::of("1"))])).collect();
        rows.push((99_999, (0..999).map(|c| (format!("c{c}"), ColumnKind::Any, Cell::of("1"))).collect()));
        let t = Table::from_rows(rows);
        assert_eq!(t.columns.len(), 1000);
        assert!(t.rows.len() * t.columns.len() <= MAX_CELLS, "{} rows", t.rows.len());
        assert_eq!(t.rows_total, 100_000);
        let t = read_json_table(
            r#"[{"model": "NaN-net", "acc": NaN, "f1": 0.5}, {"model": "b", "acc": Infinity, "f1": 0.7}]"#,
            false,
        )
        .expect("Python's json");
        // NaN and Infinity are no values (acc has none); a name holding "NaN" is kept as written.
        assert_eq!(t.columns, ["f1", "model"]);
        assert_eq!(t.rows[0].1, [Cell::of("0.5"), Cell::Text("NaN-net".into())]);
    }

    #[test]
    fn a_table_that_does_not_join_suggests_the_declaration_that_would() {
        let mut tagged = runs();
        for (r, d) in tagged.iter_mut().zip(["mnli", "sst2", "qnli"]) {
            r.tags = vec![("dataset".into(), d.into())];
        }
        // One row of three names a run's dataset: too few for a join by content.
        let t = read_table("task,acc\nmnli,0.8\ncola,0.5\nrte,0.6\n").expect("table");
        let why = join_table("exp/glue.csv", &t, &tagged, &HashMap::new()).expect_err("too few rows");
        assert!(
            why.contains(r#"[[results]] table = "exp/glue.csv", key = "task", run = "tag:dataset" (it names one run in 1 of 3 rows)"#),
            "{why}"
        );
        // And it would: the row naming a run joins it.
        let decl =
            crate::declare::parse("[[results]]\ntable = \"exp/glue.csv\"\nkey = \"task\"\nrun = \"tag:dataset\"\n")
                .expect("the suggested block reads");
        let j = join_declared("exp/glue.csv", &t, &decl.results[0], None, &tagged).expect("joins");
        assert_eq!((j.rows.len(), j.rows_without_run), (1, 2));
        // Nothing in the rows, but the file's name holds a dataset.
        let t = read_table("acc,f1\n0.8,0.7\n0.9,0.8\n").expect("table");
        let why = join_table("exp/results_sst2.csv", &t, &tagged, &HashMap::new()).expect_err("no key");
        assert!(
            why.contains(r#"table = "exp/results_{key}.csv", run = "tag:dataset" (its name holds 'sst2')"#),
            "{why}"
        );
    }

    fn runs() -> Vec<RunFacts> {
        vec![
            run("r1", "exp", 0.00123456789012, 0.01, &["bert-base", "seed-1"]),
            run("r2", "exp", 0.00234567890123, 0.02, &["bert-base", "seed-2"]),
            run("r3", "exp", 0.00345678901234, 0.03, &["roberta"]),
        ]
    }

    fn folders() -> HashMap<String, Vec<String>> {
        HashMap::from([("exp".to_string(), vec!["r1".into(), "r2".into(), "r3".into()])])
    }

    fn joined(path: &str, csv: &str) -> Result<TableJoin, String> {
        let table = read_table(csv).ok_or("not a table")?;
        join_table(path, &table, &runs(), &folders())
    }

    fn pairs(j: &TableJoin) -> Vec<(usize, &str)> {
        j.rows.iter().map(|(l, r)| (*l, r.as_str())).collect()
    }

    #[test]
    fn emissions_copied_into_the_rows_join_in_kg_g_or_mg_and_energy_in_wh() {
        // One digit more or fewer than the log, upper-case E, padded.
        let j =
            joined("exp/results.csv", "model,co2_kg,accuracy\nb,  1.23456789012E-03 ,0.9\nr,0.00345678901234,0.8\n")
                .expect("joined");
        assert_eq!(pairs(&j), [(2, "r1"), (3, "r3")]);
        assert!(j.how.contains("co2_kg equal to each run's emissions (kg)") && !j.guess, "{}", j.how);
        let j = joined("other/results.csv", "g,acc\n2.34567890123,0.5\n").expect("joined");
        assert_eq!(pairs(&j), [(2, "r2")]);
        assert!(j.how.contains("(g)"));
        let j = joined("r.csv", "mg,acc\n1234.56789012,0.5\n").expect("joined");
        assert!(j.how.contains("(mg)"), "{}", j.how);
        let j = joined("r.csv", "energy_wh,acc\n30,0.5\n10,0.4\n").expect("joined");
        assert_eq!(pairs(&j), [(2, "r3"), (3, "r1")]);
        assert!(j.how.contains("energy (Wh)"));
        // A row with no run beside it is left out, and counted.
        let j = joined("r.csv", "co2,acc\n0.00123456789012,0.9\n0.5,0.1\n").expect("joined");
        assert_eq!((pairs(&j), j.rows_without_run), (vec![(2, "r1")], 1));
    }

    #[test]
    fn a_name_column_joins_when_each_row_names_one_run_and_a_name_with_a_value_when_not() {
        let j = joined("exp/r.csv", "run,acc\nseed-2,0.7\nroberta,0.8\n").expect("joined");
        assert_eq!(pairs(&j), [(2, "r2"), (3, "r3")]);
        assert!(j.how.contains("naming each run"));
        // bert-base is two runs: with the emissions it is one each.
        let j = joined("exp/r.csv", "model,co2_g,acc\nbert-base,1.23456789012,0.7\nbert-base,2.34567890123,0.8\n")
            .expect("joined");
        assert_eq!(pairs(&j), [(2, "r1"), (3, "r2")]);
        assert!(j.how.contains("co2_g equal"), "the value alone already says: {}", j.how);
        // The run ids themselves, and a column of CodeCarbon run ids wins over everything.
        let j = joined("exp/r.csv", "id,acc\nr3,0.1\n").expect("joined");
        assert!(j.how.contains("run ids"));
    }

    #[test]
    fn a_name_and_a_value_together_join_when_neither_does_alone() {
        let runs = vec![
            run("r1", "s", 0.001, 0.1, &["bert-base"]),
            run("r2", "s", 0.002, 0.2, &["bert-base"]),
            run("r3", "s", 0.001, 0.3, &["roberta"]),
        ];
        let t =
            read_table("model,co2,acc\nbert-base,0.001,0.7\nroberta,0.001,0.8\nbert-base,0.002,0.9\n").expect("joined");
        let j = join_table("s/r.csv", &t, &runs, &HashMap::new()).expect("joined");
        assert_eq!(pairs(&j), [(2, "r1"), (3, "r3"), (4, "r2")]);
        assert!(j.how.contains("the columns model (a run's name) and co2 (its emissions, kg) together"), "{}", j.how);
        assert_eq!(j.key_columns, [0, 1]);
    }

    #[test]
    fn traps_a_stray_word_a_repeated_header_one_coincidental_name_and_bookkeeping_columns() {
        let t = read_table(
            "dataset,run,co2,acc,epoch\nsst2,seed-1,n/a,0.9,3\ndataset,run,co2,acc,epoch\nmnli,seed-2,oops,0.8,3\n\
             roberta,roberta,NaN,0.7,3\n",
        )
        .expect("table");
        assert_eq!(t.rows_total, 3, "the repeated header is not a row");
        assert_eq!(t.numeric_columns(), [3, 4], "acc and epoch; co2 holds one word among blanks and is text");
        // `dataset` names one run by chance (a tag); `run` names a run on every row: it wins.
        let j = join_table("exp/r.csv", &t, &runs(), &folders()).expect("joined");
        assert!(j.how.contains("the column run naming each run"), "{}", j.how);
        assert_eq!(t.metric_columns(&j.key_columns), [3], "epoch is bookkeeping, not a metric");
    }

    #[test]
    fn ambiguous_tables_are_not_joined_and_say_why() {
        let e = joined("exp/r.csv", "model,acc\nbert-base,0.7\nbert-base,0.8\nroberta,0.5\n").expect_err("not joined");
        assert!(e.contains("the column model names runs, but not one each: 'bert-base' (line 2) names 2 runs"), "{e}");
        assert!(e.contains("add a run_id column"), "{e}");
        // The same run twice (a copy of its row).
        let e = joined("exp/r.csv", "co2,acc\n0.00123456789012,0.7\n0.00123456789012,0.7\n0.00345678901234,0.5\n")
            .expect_err("not joined");
        assert!(e.contains("one run twice"), "{e}");
    }

    #[test]
    fn a_table_beside_as_many_runs_joins_by_order_as_a_guess_and_otherwise_not() {
        let j = joined("exp/r.csv", "epochs,acc\n3,0.7\n3,0.8\n3,0.9\n").expect("joined");
        assert!(j.guess && j.how.contains("row order"), "{}", j.how);
        assert_eq!(pairs(&j), [(2, "r1"), (3, "r2"), (4, "r3")]);
        let e = joined("exp/r.csv", "epochs,acc\n3,0.7\n3,0.8\n").expect_err("not joined");
        assert!(e.contains("logs 3 runs in one file for its 2 rows"), "{e}");
        // Header-less: numbers from the first line.
        let t = read_table("0.00123456789012,0.9\n0.00234567890123,0.8\n").expect("joined");
        assert!(t.headerless && t.columns == ["column 1", "column 2"]);
        let j = join_table("x.csv", &t, &runs(), &folders()).expect("joined");
        assert_eq!(j.rows.len(), 2);
        // No numbers: not a results table.
        assert!(read_table("name,notes\na,hello\n").is_none());
    }
}
