//! Reads one CodeCarbon CSV into a typed polars frame plus a report of every problem found.
//!
//! Columns are bound by (trimmed, lower-cased) header name, so any generation, order, missing or
//! extra column works. A row is rejected only when it cannot be read faithfully (wrong field
//! count, open quote, a fragment with nothing to count); every rejection and every repaired value
//! is a [`Problem`] with its line and column. The file itself is never modified.

use crate::columns::{self as c, Kind};
use crate::model::{FileReport, Problem};
use crate::records::records;
use chrono::NaiveDateTime;
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// Frame column names that are not CodeCarbon's own.
pub mod frame {
    pub const FILE: &str = "file";
    pub const LINE: &str = "line";
    pub const RUN_ID: &str = "run_id";
    pub const RUN_ID_SYNTHETIC: &str = "run_id_synthetic";
    pub const TIMESTAMP_MS: &str = "timestamp_ms";
    pub const ENERGY_KWH: &str = "energy_kwh";
    pub const RATE_KG_PER_S: &str = "emissions_rate_kg_per_s";
    pub const SCHEMA: &str = "schema";
    pub const TAGS: &str = "tags";
}

/// Widest header read: CodeCarbon's ~40 columns plus room for the user's own.
pub const MAX_COLUMNS: usize = 1000;

/// Separators of the `tags` column: name US value RS name US value …
pub const TAG_UNIT: char = '\u{1f}';
pub const TAG_RECORD: char = '\u{1e}';

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("internal frame error: {0}")]
    Frame(#[from] PolarsError),
}

/// One file after ingest: its report and its accepted rows.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub report: FileReport,
    /// Accepted rows, one per CSV row, with the fixed columns of [`frame_schema`].
    pub frame: DataFrame,
}

/// Text columns of the frame (CodeCarbon's, less the ones stored otherwise).
pub fn text_columns() -> impl Iterator<Item = &'static str> {
    c::KNOWN.iter().filter(|(n, k)| *k == Kind::Text && *n != c::RUN_ID).map(|(n, _)| *n)
}

/// Number columns of the frame, as CodeCarbon names them.
pub fn number_columns() -> impl Iterator<Item = &'static str> {
    c::KNOWN.iter().filter(|(_, k)| *k == Kind::Number).map(|(n, _)| *n)
}

/// Reads `path` from disk, naming it `display` in reports.
pub fn ingest_path(path: &Path, display: &str) -> Result<ParsedFile, IngestError> {
    let bytes = std::fs::read(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
    ingest_bytes(display, &bytes)
}

/// Decodes bytes: UTF-8 (BOM stripped) or, when not valid UTF-8, Latin-1.
fn decode(bytes: &[u8]) -> (String, &'static str) {
    let (bytes, bom) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    match std::str::from_utf8(bytes) {
        Ok(s) if bom => (s.to_string(), "UTF-8 with BOM"),
        Ok(s) => (s.to_string(), "UTF-8"),
        Err(_) => (bytes.iter().map(|&b| b as char).collect(), "Latin-1 (not valid UTF-8, decoded byte by byte)"),
    }
}

/// A field's value, or `None` for empty, space-only, `None`, `nan` and `null` cells.
fn value(raw: &str) -> Option<&str> {
    let v = raw.trim();
    match v {
        "" => None,
        _ if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("nan") || v.eq_ignore_ascii_case("null") => None,
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
    FORMATS.iter().find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
}

fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Column-wise accumulator of accepted rows.
struct Columns {
    text: Vec<(&'static str, Vec<Option<String>>)>,
    numbers: Vec<(&'static str, Vec<Option<f64>>)>,
    file: String,
    line: Vec<u64>,
    run_id: Vec<String>,
    run_id_synthetic: Vec<bool>,
    timestamp_ms: Vec<Option<i64>>,
    energy_kwh: Vec<Option<f64>>,
    rate: Vec<Option<f64>>,
    tags: Vec<Option<String>>,
    schema: String,
}

impl Columns {
    fn into_frame(self) -> PolarsResult<DataFrame> {
        let n = self.line.len();
        let mut cols: Vec<Column> = vec![
            Column::new(frame::FILE.into(), vec![self.file.as_str(); n]),
            Column::new(frame::LINE.into(), self.line),
            Column::new(frame::RUN_ID.into(), self.run_id),
            Column::new(frame::RUN_ID_SYNTHETIC.into(), self.run_id_synthetic),
            Column::new(frame::TIMESTAMP_MS.into(), self.timestamp_ms),
            Column::new(frame::ENERGY_KWH.into(), self.energy_kwh),
            Column::new(frame::RATE_KG_PER_S.into(), self.rate),
            Column::new(frame::SCHEMA.into(), vec![self.schema.as_str(); n]),
            Column::new(frame::TAGS.into(), self.tags),
        ];
        for (name, v) in self.text {
            cols.push(Column::new(name.into(), v));
        }
        for (name, v) in self.numbers {
            cols.push(Column::new(name.into(), v));
        }
        DataFrame::new(n, cols)
    }
}

/// Parses one file's bytes. Never fails on content: what cannot be read is reported.
pub fn ingest_bytes(display: &str, bytes: &[u8]) -> Result<ParsedFile, IngestError> {
    let (text, encoding) = decode(bytes);
    let mut report = FileReport { path: display.to_string(), encoding: encoding.to_string(), ..FileReport::default() };
    if encoding.starts_with("Latin-1") {
        report.problems.push(Problem {
            line: 0,
            column: None,
            column_name: None,
            reason: "file is not valid UTF-8: decoded as Latin-1, so accented text may look different".into(),
            rejected: false,
        });
    }
    let mut recs = records(&text).filter(|r| !r.is_blank());
    let header_rec = recs.next();
    // Names as written (trimmed) for user columns; lower-cased for binding CodeCarbon's.
    let header_raw: Vec<String> =
        header_rec.as_ref().map(|r| r.fields.iter().map(|h| h.trim().to_string()).collect()).unwrap_or_default();
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
    report.extra_columns =
        (0..header.len()).filter(|&i| c::kind_of(&header[i]).is_none()).map(|i| header_raw[i].clone()).collect();
    report.missing_columns =
        generation.columns.iter().filter(|col| known_pos(col).is_none()).map(|s| s.to_string()).collect();
    let present_order: Vec<&str> =
        header.iter().map(String::as_str).filter(|h| generation.columns.contains(h)).collect();
    let canonical_order: Vec<&str> =
        generation.columns.iter().copied().filter(|col| present_order.contains(col)).collect();
    report.reordered = present_order != canonical_order;

    let mut cols = Columns {
        text: text_columns().map(|n| (n, Vec::new())).collect(),
        numbers: number_columns().map(|n| (n, Vec::new())).collect(),
        file: display.to_string(),
        line: Vec::new(),
        run_id: Vec::new(),
        run_id_synthetic: Vec::new(),
        timestamp_ms: Vec::new(),
        energy_kwh: Vec::new(),
        rate: Vec::new(),
        tags: Vec::new(),
        schema: report.schema.clone(),
    };

    let countable = known_pos(c::DURATION).is_some()
        || known_pos(c::ENERGY_CONSUMED).is_some()
        || known_pos(c::EMISSIONS).is_some();
    let too_wide = header.len() > MAX_COLUMNS;
    if header_rec.is_none() || !countable || too_wide {
        report.problems.push(Problem {
            line: if header_rec.is_none() { 0 } else { 1 },
            column: None,
            column_name: None,
            reason: if header_rec.is_none() {
                "empty file: no header".into()
            } else if too_wide {
                format!(
                    "the header has {} columns: CodeCarbon writes at most about 40, so the file is not read \
                     (more than {MAX_COLUMNS} user columns are not kept as tags)",
                    header.len()
                )
            } else {
                "not a CodeCarbon file: the header has none of duration, energy_consumed, emissions".into()
            },
            rejected: true,
        });
        report.rows_read = recs.count();
        report.rows_rejected = report.rows_read;
        report.problem_count = report.problems.len();
        let frame = cols.into_frame()?;
        return Ok(ParsedFile { report, frame });
    }

    let text_pos: Vec<Option<usize>> = cols.text.iter().map(|(n, _)| known_pos(n)).collect();
    let num_pos: Vec<Option<usize>> = cols.numbers.iter().map(|(n, _)| known_pos(n)).collect();
    let extra_pos: Vec<usize> = (0..header.len()).filter(|&i| c::kind_of(&header[i]).is_none()).collect();
    let p_run = known_pos(c::RUN_ID);
    let p_exp = known_pos(c::EXPERIMENT_ID);
    let p_ts = known_pos(c::TIMESTAMP);
    let p_version = known_pos(c::CODECARBON_VERSION);
    let idx_of = |name: &str| cols.numbers.iter().position(|(n, _)| *n == name);
    let (i_duration, i_energy, i_emissions, i_rate) =
        (idx_of(c::DURATION), idx_of(c::ENERGY_CONSUMED), idx_of(c::EMISSIONS), idx_of(c::EMISSIONS_RATE));
    let i_parts: Vec<Option<usize>> = [c::CPU_ENERGY, c::GPU_ENERGY, c::RAM_ENERGY].iter().map(|n| idx_of(n)).collect();

    let mut nums: Vec<Option<f64>> = vec![None; cols.numbers.len()];
    for rec in recs {
        report.rows_read += 1;
        let line = rec.line;
        // A rejected row is quoted in its report, so nothing the file holds is lost from view.
        let excerpt = excerpt(&rec.fields);
        let reject = |report: &mut FileReport, reason: String| {
            report.rows_rejected += 1;
            report.problems.push(Problem {
                line,
                column: None,
                column_name: None,
                reason: format!("{reason} — row: {excerpt}"),
                rejected: true,
            });
        };
        if rec.unterminated_quote {
            reject(
                &mut report,
                "a quote opened on this line is never closed: the rest of the file is one broken row".into(),
            );
            continue;
        }
        if rec.fields.len() != header.len() {
            reject(
                &mut report,
                format!(
                    "{} fields where the header has {}: not read, because the values cannot be matched to columns \
                     (CodeCarbon 3.2.9 drops empty fields when appending; concurrent writers leave fragments)",
                    rec.fields.len(),
                    header.len()
                ),
            );
            continue;
        }
        if rec.fields.iter().map(|f| f.trim().to_ascii_lowercase()).eq(header.iter().cloned()) {
            report.problems.push(Problem {
                line,
                column: None,
                column_name: None,
                reason: "header repeated inside the file: skipped".into(),
                rejected: false,
            });
            report.rows_read -= 1;
            continue;
        }
        let mut warnings = Vec::new();
        for (slot, pos) in nums.iter_mut().zip(&num_pos) {
            *slot = None;
            if let Some(p) = *pos {
                if let Some(v) = value(&rec.fields[p]) {
                    match v.parse::<f64>() {
                        Ok(x) if x.is_finite() => *slot = Some(x),
                        _ => warnings.push(Problem {
                            line,
                            column: Some(p + 1),
                            column_name: Some(header[p].clone()),
                            reason: format!("'{v}' is not a number: read as missing"),
                            rejected: false,
                        }),
                    }
                }
            }
        }
        let get = |i: Option<usize>| i.and_then(|i| nums[i]);
        let energy = get(i_energy);
        if get(i_duration).is_none()
            && energy.is_none()
            && get(i_emissions).is_none()
            && i_parts.iter().all(|&i| get(i).is_none())
        {
            let first = rec.fields.first().map(|f| f.trim()).unwrap_or("");
            reject(
                &mut report,
                format!(
                    "fragment row (starts with '{first}'): no duration, energy or emissions — a tail left by \
                     concurrent appends or a truncated line"
                ),
            );
            continue;
        }
        report.problems.extend(warnings);

        let timestamp = p_ts.and_then(|p| value(&rec.fields[p]).map(|v| (p, v)));
        let ts_ms = match timestamp {
            Some((p, v)) => match parse_timestamp(v) {
                Some(t) => Some(t.and_utc().timestamp_millis()),
                None => {
                    report.problems.push(Problem {
                        line,
                        column: Some(p + 1),
                        column_name: Some(c::TIMESTAMP.into()),
                        reason: format!("timestamp '{v}' is not a date (truncated?): row kept without a time"),
                        rejected: false,
                    });
                    None
                }
            },
            None => None,
        };

        // v1 files have no run_id: their experiment_id is the per-run id.
        let (id_pos, v1) = match (p_run, p_exp) {
            (Some(p), _) => (Some(p), false),
            (None, Some(p)) => (Some(p), true),
            (None, None) => (None, false),
        };
        let id = id_pos.and_then(|p| value(&rec.fields[p]));
        let (run_id, synthetic) = match id {
            Some(id) => (id.to_string(), false),
            None => {
                let fields: Vec<&str> = rec.fields.iter().map(|f| f.trim()).collect();
                let made = format!("row-{:016x}", fnv(&fields));
                report.problems.push(Problem {
                    line,
                    column: id_pos.map(|p| p + 1),
                    column_name: Some(if v1 { c::EXPERIMENT_ID } else { c::RUN_ID }.into()),
                    reason: format!("no run id: the row is counted as a run of its own, '{made}'"),
                    rejected: false,
                });
                (made, true)
            }
        };

        for ((name, out), pos) in cols.text.iter_mut().zip(&text_pos) {
            let v = pos.and_then(|p| value(&rec.fields[p]));
            // In v1 files experiment_id is the run id, not an experiment.
            let v = if v1 && *name == c::EXPERIMENT_ID { None } else { v };
            out.push(v.map(str::to_string));
        }
        for ((_, out), v) in cols.numbers.iter_mut().zip(&nums) {
            out.push(*v);
        }
        let rate_in_grams = p_version
            .and_then(|p| value(&rec.fields[p]))
            .and_then(c::version_rate_in_grams)
            .unwrap_or(generation.rate_in_grams);
        cols.rate.push(get(i_rate).map(|r| if rate_in_grams { r / 1000.0 } else { r }));
        cols.energy_kwh.push(energy);
        cols.timestamp_ms.push(ts_ms);
        cols.line.push(line as u64);
        cols.run_id.push(run_id);
        cols.run_id_synthetic.push(synthetic);
        let tags: Vec<String> = extra_pos
            .iter()
            .filter_map(|&p| value(&rec.fields[p]).map(|v| format!("{}{TAG_UNIT}{v}", header_raw[p])))
            .collect();
        cols.tags.push((!tags.is_empty()).then(|| tags.join(&TAG_RECORD.to_string())));
    }
    report.problem_count = report.problems.len();
    let frame = cols.into_frame()?;
    Ok(ParsedFile { report, frame })
}

/// The row as written, shortened to 120 characters.
fn excerpt(fields: &[String]) -> String {
    let row = fields.join(",");
    match row.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &row[..i]),
        None => row,
    }
}

/// Decodes the `tags` cell of a row.
pub fn decode_tags(cell: &str) -> Vec<(String, String)> {
    cell.split(TAG_RECORD)
        .filter_map(|kv| kv.split_once(TAG_UNIT).map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}
