//! Runs collected from CodeCarbon trackers (their "API" output, CodeCarbon 3.3.2's wire format):
//! what a tracker posts, checked field by field, and a collected run written back as a CodeCarbon
//! `emissions.csv`, so the catalog reads it like any log (same model, same CO2 engine, same
//! views) and an export hands the user their own format back.
//!
//! A tracker posts one record per upload, each the *delta* since the previous one (energy,
//! emissions, duration) except the powers and utilisations, which are running means since the
//! start. A CSV row is a checkpoint holding the totals so far: the rows are the running sums.

use crate::ingest::{self, ParsedFile, Source};
use crate::model::RunSource;
use crate::time::Timestamp;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::sync::Arc;

/// Display paths of collected runs start with this: `collected://<team>/<project>/<experiment>/<run id>`
/// (`-` for a project without a team).
pub const COLLECTED_PREFIX: &str = "collected://";
/// Longest text field accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 1000;
/// Most fields a record may carry beyond CodeCarbon's (kept as they came, for newer clients).
pub const MAX_EXTRA_FIELDS: usize = 32;

/// A field of a posted record that cannot be taken: its name and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field '{field}': {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_string(), message: message.into() }
}

/// `POST /runs`: a tracker's first upload (CodeCarbon's `RunCreate`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunIn {
    /// As sent: local time with its UTC offset.
    pub timestamp: String,
    pub experiment_id: String,
    pub os: Option<String>,
    pub python_version: Option<String>,
    pub codecarbon_version: Option<String>,
    pub cpu_count: Option<f64>,
    pub cpu_model: Option<String>,
    pub gpu_count: Option<f64>,
    pub gpu_model: Option<String>,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    /// The cloud region (CodeCarbon sends its cloud metadata here), not the geographic one.
    pub region: Option<String>,
    pub provider: Option<String>,
    pub ram_total_size: Option<f64>,
    pub tracking_mode: Option<String>,
    /// Fields CodeCarbon 3.3.2 does not send, as a JSON object, kept as they came.
    pub extra: Option<String>,
}

/// `POST /emissions`: one upload of a run (CodeCarbon's `EmissionCreate`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmissionIn {
    pub timestamp: String,
    pub run_id: String,
    /// Seconds in this interval (CodeCarbon truncates it to an integer, at least 1).
    pub duration: f64,
    /// kg CO2eq in this interval.
    pub emissions_sum: Option<f64>,
    pub emissions_rate: Option<f64>,
    /// W, the mean since the run started.
    pub cpu_power: Option<f64>,
    pub gpu_power: Option<f64>,
    pub ram_power: Option<f64>,
    /// kWh in this interval.
    pub cpu_energy: Option<f64>,
    pub gpu_energy: Option<f64>,
    pub ram_energy: Option<f64>,
    pub energy_consumed: Option<f64>,
    pub cpu_utilization_percent: Option<f64>,
    pub gpu_utilization_percent: Option<f64>,
    pub ram_utilization_percent: Option<f64>,
    pub wue: Option<f64>,
    pub extra: Option<String>,
}

/// The fields of one posted JSON object, taken one by one; what is left over is `extra`.
struct Fields(Map<String, Value>);

impl Fields {
    fn of(body: &[u8]) -> Result<Fields, FieldError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Fields(map)),
            Ok(_) => Err(bad("body", "expected a JSON object")),
            Err(e) => Err(bad("body", format!("not valid JSON: {e}"))),
        }
    }

    fn text(&mut self, name: &str) -> Result<Option<String>, FieldError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() > MAX_TEXT_CHARS => {
                Err(bad(name, format!("longer than {MAX_TEXT_CHARS} characters")))
            }
            Some(Value::String(s)) if s.chars().any(char::is_control) => Err(bad(name, "holds control characters")),
            Some(Value::String(s)) if s.chars().any(crate::text::is_spoofing) => {
                Err(bad(name, "holds invisible or text-direction characters (U+202E and the like)"))
            }
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(bad(name, format!("expected a string, got {}", kind(&v)))),
        }
    }

    /// A descriptive field (hardware, versions): a control character becomes a space, a
    /// text-direction or invisible character is left out (see [`crate::text::shown`]) and a text
    /// over the limit is cut, rather than the whole run refused for it.
    fn label(&mut self, name: &str) -> Result<Option<String>, FieldError> {
        match self.0.remove(name) {
            Some(Value::String(s)) => {
                let cut: String = s.chars().take(MAX_TEXT_CHARS).collect();
                Ok(Some(crate::text::shown(&cut).into_owned()))
            }
            other => {
                let mut one = Fields(Map::new());
                if let Some(v) = other {
                    one.0.insert(name.to_string(), v);
                }
                one.text(name)
            }
        }
    }

    fn required_text(&mut self, name: &str) -> Result<String, FieldError> {
        self.text(name)?.filter(|s| !s.is_empty()).ok_or_else(|| bad(name, "missing"))
    }

    /// A finite number in `min..=max` (an integer literal such as `0` is a number too).
    fn number(&mut self, name: &str, min: f64, max: f64) -> Result<Option<f64>, FieldError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && (min..=max).contains(&x) => Ok(Some(x)),
                Some(x) if x < min => Err(bad(name, format!("{x} is below {min}"))),
                Some(x) => Err(bad(name, format!("{x} is above {max}"))),
                None => Err(bad(name, "not a finite number")),
            },
            Some(v) => Err(bad(name, format!("expected a number, got {}", kind(&v)))),
        }
    }

    /// A figure from 0 to `max` (`unit`), where more is more than `what` (see [`MAX_MACHINE_W`]).
    fn physical(&mut self, name: &str, max: f64, unit: &str, what: &str) -> Result<Option<f64>, FieldError> {
        match self.number(name, 0.0, f64::MAX)? {
            Some(x) if x > max => Err(bad(name, format!("{x} {unit} is more than {what} (at most {max:.3e} {unit})"))),
            other => Ok(other),
        }
    }

    fn count(&mut self, name: &str) -> Result<Option<f64>, FieldError> {
        match self.number(name, 0.0, 1e6)? {
            Some(x) if x.fract() != 0.0 => Err(bad(name, format!("expected a whole number, got {x}"))),
            other => Ok(other),
        }
    }

    /// The record's time, which must lie within [`PLAUSIBLE_PAST`] before `now` and
    /// [`PLAUSIBLE_FUTURE`] after it (a tracker posts as it measures).
    fn timestamp(&mut self, now: Timestamp) -> Result<String, FieldError> {
        let t = self.required_text("timestamp")?;
        let Some(at) = instant(&t) else {
            return Err(bad("timestamp", format!("'{t}' is not an ISO 8601 date and time")));
        };
        if at < now - PLAUSIBLE_PAST || at > now + PLAUSIBLE_FUTURE {
            return Err(bad(
                "timestamp",
                format!(
                    "'{t}' is not within {} years before and a day after the server's clock ({}): is the machine's \
                     clock right?",
                    PLAUSIBLE_PAST.num_days() / 365,
                    crate::time::iso(&now)
                ),
            ));
        }
        Ok(t)
    }

    fn extra(self) -> Result<Option<String>, FieldError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        if self.0.len() > MAX_EXTRA_FIELDS {
            return Err(bad("body", format!("more than {MAX_EXTRA_FIELDS} fields CodeCarbon does not send")));
        }
        Ok(Some(Value::Object(self.0).to_string()))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Longest interval one record may cover: a year, in seconds.
const MAX_DURATION_S: f64 = 366.0 * 86_400.0;
/// Shortest interval one record may cover (CodeCarbon sends whole seconds, at least 1).
pub const MIN_DURATION_S: f64 = 0.001;
/// The most one machine draws, in W: 100 kW, about seven 8-GPU servers at full load (one draws
/// 10 to 15 kW). A tracker measures one machine: a power above this, or an energy above this
/// power over the record's interval (plus a second, as CodeCarbon cuts intervals to whole
/// seconds), is refused.
pub const MAX_MACHINE_W: f64 = 100_000.0;
/// The most CO2 a kWh emits anywhere, in kg (coal plants emit about 1): bounds emissions.
pub const MAX_KG_PER_KWH: f64 = 2.0;
/// The most RAM one machine has, in GB.
pub const MAX_RAM_GB: f64 = 100_000.0;
/// The most water a kWh uses (WUE), in L.
pub const MAX_WUE: f64 = 100.0;
/// How far before and after the server's clock a tracker's timestamp may be.
pub const PLAUSIBLE_PAST: chrono::TimeDelta = chrono::TimeDelta::days(10 * 365);
pub const PLAUSIBLE_FUTURE: chrono::TimeDelta = chrono::TimeDelta::days(1);

impl RunIn {
    /// Reads a `POST /runs` body; the first field that cannot be taken is named.
    pub fn parse(body: &[u8]) -> Result<RunIn, FieldError> {
        RunIn::parse_at(body, now_utc())
    }

    /// [`RunIn::parse`] with the server's clock at `now` (UTC).
    pub fn parse_at(body: &[u8], now: Timestamp) -> Result<RunIn, FieldError> {
        let mut f = Fields::of(body)?;
        let run = RunIn {
            timestamp: f.timestamp(now)?,
            experiment_id: f.required_text("experiment_id")?,
            os: f.label("os")?,
            python_version: f.label("python_version")?,
            codecarbon_version: f.label("codecarbon_version")?,
            cpu_count: f.count("cpu_count")?,
            cpu_model: f.label("cpu_model")?,
            gpu_count: f.count("gpu_count")?,
            gpu_model: f.label("gpu_model")?,
            longitude: f.number("longitude", -180.0, 180.0)?,
            latitude: f.number("latitude", -90.0, 90.0)?,
            region: f.label("region")?,
            provider: f.label("provider")?,
            ram_total_size: f.number("ram_total_size", 0.0, MAX_RAM_GB)?,
            tracking_mode: f.label("tracking_mode")?,
            extra: None,
        };
        Ok(RunIn { extra: f.extra()?, ..run })
    }
}

impl EmissionIn {
    /// Reads a `POST /emissions` body; the first field that cannot be taken is named.
    pub fn parse(body: &[u8]) -> Result<EmissionIn, FieldError> {
        EmissionIn::parse_at(body, now_utc())
    }

    /// [`EmissionIn::parse`] with the server's clock at `now` (UTC). Figures must be ones a
    /// machine can reach (see [`MAX_MACHINE_W`]).
    pub fn parse_at(body: &[u8], now: Timestamp) -> Result<EmissionIn, FieldError> {
        let mut f = Fields::of(body)?;
        let timestamp = f.timestamp(now)?;
        let run_id = f.required_text("run_id")?;
        let duration = match f.number("duration", f64::MIN, MAX_DURATION_S)? {
            None => return Err(bad("duration", "missing")),
            Some(d) if d < MIN_DURATION_S => {
                return Err(bad("duration", format!("{d} s: an interval lasts at least {MIN_DURATION_S} s")))
            }
            Some(d) => d,
        };
        // What one machine can use and emit in this interval.
        let max_kwh = MAX_MACHINE_W * (duration + 1.0) / 3.6e6;
        let max_kg = max_kwh * MAX_KG_PER_KWH;
        let max_rate = MAX_MACHINE_W / 1000.0 * MAX_KG_PER_KWH / 3600.0;
        let energy = |f: &mut Fields, name: &str| f.physical(name, max_kwh, "kWh", "one machine uses in this interval");
        let power = |f: &mut Fields, name: &str| f.physical(name, MAX_MACHINE_W, "W", "one machine draws");
        let percent = |f: &mut Fields, name: &str| f.number(name, 0.0, 100.0);
        let e = EmissionIn {
            timestamp,
            run_id,
            duration,
            emissions_sum: f.physical("emissions_sum", max_kg, "kg", "one machine emits in this interval")?,
            emissions_rate: f.physical("emissions_rate", max_rate, "kg/s", "one machine emits")?,
            cpu_power: power(&mut f, "cpu_power")?,
            gpu_power: power(&mut f, "gpu_power")?,
            ram_power: power(&mut f, "ram_power")?,
            cpu_energy: energy(&mut f, "cpu_energy")?,
            gpu_energy: energy(&mut f, "gpu_energy")?,
            ram_energy: energy(&mut f, "ram_energy")?,
            energy_consumed: energy(&mut f, "energy_consumed")?,
            cpu_utilization_percent: percent(&mut f, "cpu_utilization_percent")?,
            gpu_utilization_percent: percent(&mut f, "gpu_utilization_percent")?,
            ram_utilization_percent: percent(&mut f, "ram_utilization_percent")?,
            wue: f.number("wue", 0.0, MAX_WUE)?,
            extra: None,
        };
        Ok(EmissionIn { extra: f.extra()?, ..e })
    }
}

/// The system clock, in UTC.
pub fn now_utc() -> Timestamp {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    chrono::DateTime::from_timestamp(since.as_secs() as i64, since.subsec_nanos()).unwrap_or_default().naive_utc()
}

/// The wall-clock time of a tracker's timestamp (`2026-11-29T18:39:22.172723+00:00`): the local
/// time it names, its offset dropped, as CodeCarbon's own CSV writes it.
pub fn naive_time(t: &str) -> Option<Timestamp> {
    split_offset(t).map(|(local, _)| local)
}

/// The moment a tracker's timestamp names, in UTC (its local time less its offset): what orders
/// records, also across a change of the clocks.
pub fn instant(t: &str) -> Option<Timestamp> {
    split_offset(t).map(|(local, offset_s)| local - chrono::TimeDelta::seconds(offset_s))
}

/// Local time and UTC offset (seconds; 0 when none is written) of an ISO 8601 timestamp.
fn split_offset(t: &str) -> Option<(Timestamp, i64)> {
    let t = t.trim();
    let (t, zulu) = match t.strip_suffix('Z') {
        Some(rest) => (rest, true),
        None => (t, false),
    };
    // An offset is `+hh:mm`, `-hh:mm` or `+hhmm` after the time (not the date's dashes).
    let cut = t.char_indices().skip(11).find(|(_, c)| *c == '+' || *c == '-').map(|(i, _)| i).unwrap_or(t.len());
    let offset = &t[cut..];
    let offset_s = if offset.is_empty() {
        0
    } else {
        if zulu {
            return None;
        }
        let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || offset[1..].len() > 5 {
            return None;
        }
        let (h, m): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
        if h > 23 || m > 59 {
            return None;
        }
        let s = h * 3600 + m * 60;
        if offset.starts_with('-') {
            -s
        } else {
            s
        }
    };
    Some((ingest::parse_timestamp(&t[..cut])?, offset_s))
}

/// Where a collected run is placed: its experiment, the experiment's project and team.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Experiment {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub project: String,
    pub team: Option<String>,
    /// Where the runs use electricity (the tracker's records carry no location).
    pub country_iso_code: Option<String>,
    pub country_name: Option<String>,
    pub region: Option<String>,
    pub cloud_provider: Option<String>,
    pub cloud_region: Option<String>,
}

/// The display path of a collected run (see [`COLLECTED_PREFIX`]).
pub fn display_path(exp: &Experiment, run_id: &str) -> String {
    format!("{COLLECTED_PREFIX}{}/{}/{}/{run_id}", exp.team.as_deref().unwrap_or("-"), exp.project, exp.name)
}

/// The team of a collected run's display path (`None` for any other path).
pub fn team_of_path(path: &str) -> Option<Option<String>> {
    let rest = path.strip_prefix(COLLECTED_PREFIX)?;
    Some(rest.split('/').next().filter(|t| !t.is_empty() && *t != "-").map(str::to_string))
}

/// CodeCarbon 3.x's `emissions.csv` header (38 columns), and the experiment's name (a column
/// CodeCarbon's readers skip and carbon-dash shows as a tag: the id alone says little).
pub const CSV_HEADER: &str = "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,ram_utilization_percent,ram_used_gb,on_cloud,pue,wue,experiment_name";

fn csv_text(out: &mut String, spreadsheet_safe: bool, v: Option<&str>) {
    let v = v.unwrap_or("");
    let v = if spreadsheet_safe { crate::text::spreadsheet_cell(v) } else { std::borrow::Cow::Borrowed(v) };
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&v);
    }
    out.push(',');
}

fn csv_num(out: &mut String, v: Option<f64>) {
    if let Some(v) = v {
        let _ = write!(out, "{v}");
    }
    out.push(',');
}

/// Appends one CSV row per record of `run_id` (in `records`' order): the running totals as
/// CodeCarbon writes them at each checkpoint, its location from the experiment.
pub fn write_rows(out: &mut String, exp: &Experiment, run_id: &str, run: &RunIn, records: &[EmissionIn]) {
    let mut rows = Rows::new(exp, run_id, run);
    for r in records {
        rows.push(out, r);
    }
}

/// Writes a run's checkpoint rows one at a time from its records (deltas), keeping the running
/// totals: for a collected run read back, and for `carbon-dash track` as it measures.
pub struct Rows<'a> {
    exp: &'a Experiment,
    run_id: &'a str,
    run: &'a RunIn,
    /// Adds the `experiment_name` column (see [`CSV_HEADER`]); off: CodeCarbon's 38 columns.
    pub experiment_name: bool,
    /// The PUE the energies already include, written in the `pue` column.
    pub pue: Option<f64>,
    /// Adds the `folded_records` column (see [`FOLDED_COLUMN`]).
    pub folded_column: bool,
    /// Text cells that a spreadsheet would run as formulas get a leading `'` (see
    /// [`crate::text::spreadsheet_cell`]): for exports, which people open in spreadsheets.
    pub spreadsheet_safe: bool,
    duration: f64,
    emissions: f64,
    cpu: f64,
    gpu: f64,
    ram: f64,
    energy: f64,
}

impl<'a> Rows<'a> {
    pub fn new(exp: &'a Experiment, run_id: &'a str, run: &'a RunIn) -> Rows<'a> {
        Rows {
            exp,
            run_id,
            run,
            experiment_name: true,
            pue: None,
            folded_column: false,
            spreadsheet_safe: false,
            duration: 0.0,
            emissions: 0.0,
            cpu: 0.0,
            gpu: 0.0,
            ram: 0.0,
            energy: 0.0,
        }
    }

    /// Appends the row after record `r`, newline included.
    pub fn push(&mut self, out: &mut String, r: &EmissionIn) {
        self.push_folded(out, r, 1);
    }

    /// Appends the row after `r`, a row that stands for `records` tracker records (more than one
    /// when retention folded them together).
    pub fn push_folded(&mut self, out: &mut String, r: &EmissionIn, records: u64) {
        let (exp, run, safe) = (self.exp, self.run, self.spreadsheet_safe);
        let cloud_provider = exp.cloud_provider.as_deref().or(run.provider.as_deref());
        let cloud_region = exp.cloud_region.as_deref().or(run.region.as_deref());
        self.duration += interval_s(r);
        self.emissions += r.emissions_sum.unwrap_or(0.0);
        self.cpu += r.cpu_energy.unwrap_or(0.0);
        self.gpu += r.gpu_energy.unwrap_or(0.0);
        self.ram += r.ram_energy.unwrap_or(0.0);
        self.energy += energy_of(r);
        let time = naive_time(&r.timestamp).map(|t| crate::time::iso_micros(&t));
        csv_text(out, safe, time.as_deref());
        csv_text(out, safe, Some(&exp.project));
        csv_text(out, safe, Some(self.run_id));
        csv_text(out, safe, Some(&exp.id));
        csv_num(out, Some(self.duration));
        csv_num(out, Some(self.emissions));
        csv_num(out, Some(self.emissions / self.duration));
        csv_num(out, r.cpu_power);
        csv_num(out, r.gpu_power);
        csv_num(out, r.ram_power);
        csv_num(out, Some(self.cpu));
        csv_num(out, Some(self.gpu));
        csv_num(out, Some(self.ram));
        csv_num(out, Some(self.energy));
        csv_num(out, r.wue.map(|w| w * self.energy));
        csv_text(out, safe, exp.country_name.as_deref());
        csv_text(out, safe, exp.country_iso_code.as_deref());
        csv_text(out, safe, exp.region.as_deref());
        csv_text(out, safe, cloud_provider);
        csv_text(out, safe, cloud_region);
        csv_text(out, safe, run.os.as_deref());
        csv_text(out, safe, run.python_version.as_deref());
        csv_text(out, safe, run.codecarbon_version.as_deref());
        csv_num(out, run.cpu_count);
        csv_text(out, safe, run.cpu_model.as_deref());
        csv_num(out, run.gpu_count);
        csv_text(out, safe, run.gpu_model.as_deref());
        csv_num(out, run.longitude);
        csv_num(out, run.latitude);
        csv_num(out, run.ram_total_size);
        csv_text(out, safe, run.tracking_mode.as_deref());
        csv_num(out, r.cpu_utilization_percent);
        csv_num(out, r.gpu_utilization_percent);
        csv_num(out, r.ram_utilization_percent);
        csv_num(out, None);
        csv_text(out, safe, Some(if cloud_provider.is_some() { "Y" } else { "N" }));
        csv_num(out, self.pue);
        csv_num(out, r.wue);
        if self.experiment_name {
            csv_text(out, safe, Some(&exp.name));
        }
        if self.folded_column {
            csv_num(out, (records > 1).then_some(records as f64));
        }
        out.pop();
        out.push('\n');
    }
}

/// The column an export adds after [`CSV_HEADER`]'s: how many tracker records a row stands for,
/// where retention (`--keep-records`) folded old records together; empty for a record as posted.
pub const FOLDED_COLUMN: &str = "folded_records";

/// CodeCarbon 3.x's own 38 columns (what `carbon-dash track` writes).
pub fn codecarbon_header() -> &'static str {
    CSV_HEADER.strip_suffix(",experiment_name").unwrap_or(CSV_HEADER)
}

/// Records in the order a run's rows go: by the moment each was sent (ties keep their order).
pub fn sort_records(records: &mut [EmissionIn]) {
    records.sort_by_key(|r| instant(&r.timestamp));
}

/// The seconds a record covers. CodeCarbon sends `int(duration)` but its rate from the real one,
/// so emissions over rate gives the interval back, when it agrees with the whole seconds sent.
pub fn interval_s(r: &EmissionIn) -> f64 {
    match (r.emissions_sum, r.emissions_rate) {
        (Some(sum), Some(rate)) if sum > 0.0 && rate > 0.0 => {
            let exact = sum / rate;
            if (r.duration..r.duration + 1.0).contains(&exact) {
                exact
            } else {
                r.duration
            }
        }
        _ => r.duration,
    }
}

/// What the database keeps of a collected run beside its records, maintained as each record
/// commits: the sums of the records' deltas and the newest record's running means. The run's
/// totals follow from it without reading a record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Totals {
    /// Records the tracker posted (those folded by retention counted one by one).
    pub records: u64,
    /// Σ [`interval_s`], seconds.
    pub interval_s: f64,
    pub emissions: f64,
    pub cpu_energy: f64,
    pub gpu_energy: f64,
    pub ram_energy: f64,
    /// Σ `energy_consumed` (or, where a record has none, its parts).
    pub energy: f64,
    /// The newest record (by [`instant`], the later post on ties): its timestamp, powers,
    /// utilisations and WUE; its deltas are not used.
    pub last: EmissionIn,
}

impl Totals {
    /// Adds one record that is newer than (or as new as) every record added before.
    pub fn add(&mut self, r: &EmissionIn) {
        self.extend([r]);
    }

    /// Adds records in time order, each newer than (or as new as) those before: the last one
    /// alone is copied.
    pub fn extend<'a>(&mut self, records: impl IntoIterator<Item = &'a EmissionIn>) {
        let mut last = None;
        for r in records {
            self.records += 1;
            self.add_sums(r);
            last = Some(r);
        }
        if let Some(r) = last {
            self.last = r.clone();
        }
    }

    /// Adds a record's deltas (not its means).
    pub fn add_sums(&mut self, r: &EmissionIn) {
        self.interval_s += interval_s(r);
        self.emissions += r.emissions_sum.unwrap_or(0.0);
        self.cpu_energy += r.cpu_energy.unwrap_or(0.0);
        self.gpu_energy += r.gpu_energy.unwrap_or(0.0);
        self.ram_energy += r.ram_energy.unwrap_or(0.0);
        self.energy += energy_of(r);
    }

    /// One record that stands for all of them: the sums as its deltas, the newest record's
    /// time and means. Its [`interval_s`] is the sum of theirs.
    pub fn as_record(&self) -> EmissionIn {
        EmissionIn {
            duration: self.interval_s,
            emissions_sum: Some(self.emissions),
            emissions_rate: None,
            cpu_energy: Some(self.cpu_energy),
            gpu_energy: Some(self.gpu_energy),
            ram_energy: Some(self.ram_energy),
            energy_consumed: Some(self.energy),
            extra: None,
            ..self.last.clone()
        }
    }
}

/// A record's energy, kWh: `energy_consumed`, or the sum of its parts when it has none.
pub fn energy_of(r: &EmissionIn) -> f64 {
    r.energy_consumed.unwrap_or(r.cpu_energy.unwrap_or(0.0) + r.gpu_energy.unwrap_or(0.0) + r.ram_energy.unwrap_or(0.0))
}

/// A collected run as the catalog holds a log file, from its [`Totals`]: the one row its last
/// checkpoint would be, read by the same parser as files (same model, same CO2 engine), and no
/// rows kept: its checkpoints are read from the database when a page asks ([`Source::Store`]).
pub fn run_file(exp: &Experiment, run_id: &str, run: &RunIn, totals: &Totals) -> ParsedFile {
    let mut text = String::with_capacity(CSV_HEADER.len() + 800);
    text.push_str(CSV_HEADER);
    text.push('\n');
    Rows::new(exp, run_id, run).push(&mut text, &totals.as_record());
    let path = display_path(exp, run_id);
    let mut file = ingest::ingest_source(&path, text.as_bytes(), Source::Store);
    file.len = 0;
    file.report.rows_read = totals.records as usize;
    for part in &mut file.runs {
        let r = Arc::make_mut(&mut part.run);
        r.source = RunSource::Collected;
        r.checkpoints = totals.records as usize;
    }
    file
}

/// Many collected runs as files, in parallel (see [`run_file`]).
pub fn run_files(runs: Vec<(Experiment, String, RunIn, Totals)>) -> Vec<ParsedFile> {
    use rayon::prelude::*;
    runs.par_iter().map(|(exp, id, run, totals)| run_file(exp, id, run, totals)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = r#"{"timestamp":"2026-11-29T18:39:22.172723+00:00","experiment_id":"8edb03e1-9a28-452a-9c93-a3b6560136d7","os":"Linux-6.18.44-x86_64-with-glibc2.36","python_version":"3.11.7","codecarbon_version":"3.3.2","cpu_count":2,"cpu_model":"Intel(R) Xeon(R) Processor","gpu_count":0,"gpu_model":"","longitude":null,"latitude":null,"region":null,"provider":null,"ram_total_size":23.540576934814453,"tracking_mode":"machine"}"#;
    const EMISSION: &str = r#"{"timestamp":"2026-11-29T18:39:24.163655+00:00","run_id":"d38b614b-6cf8-4ea2-84cb-22078b98b3de","duration":2,"emissions_sum":1.5642589539599806e-06,"emissions_rate":7.801920377954161e-07,"cpu_power":29.8991374647062,"gpu_power":0.0,"ram_power":20.0,"cpu_energy":1.6749892241666467e-05,"gpu_energy":0.0,"ram_energy":1.1163863427777682e-05,"energy_consumed":2.7913755669444145e-05,"cpu_utilization_percent":33.266666666666666,"gpu_utilization_percent":0,"ram_utilization_percent":3.9,"wue":0.0}"#;

    fn with(body: &str, field: &str, value: &str) -> String {
        let mut v: Value = serde_json::from_str(body).expect("json");
        v[field] = serde_json::from_str(value).expect("value");
        v.to_string()
    }

    #[test]
    fn the_bodies_codecarbon_3_3_2_sends_are_taken_as_they_are() {
        let run = RunIn::parse(RUN.as_bytes()).expect("run");
        assert_eq!(run.experiment_id, "8edb03e1-9a28-452a-9c93-a3b6560136d7");
        assert_eq!(
            (run.cpu_count, run.gpu_count, run.longitude, run.region.as_deref()),
            (Some(2.0), Some(0.0), None, None)
        );
        assert_eq!(run.extra, None);
        let e = EmissionIn::parse(EMISSION.as_bytes()).expect("emission");
        assert_eq!(e.duration, 2.0);
        // The integer literal 0 in a float field.
        assert_eq!(e.gpu_utilization_percent, Some(0.0));
        assert_eq!(e.energy_consumed, Some(2.7913755669444145e-05));
    }

    #[test]
    fn a_bad_field_is_named() {
        let err = |body: String| EmissionIn::parse(body.as_bytes()).expect_err("refused");
        assert_eq!(err(with(EMISSION, "duration", "-3")).field, "duration");
        assert_eq!(err(with(EMISSION, "duration", "0")).field, "duration");
        assert_eq!(err(with(EMISSION, "cpu_energy", "\"12\"")).field, "cpu_energy");
        assert_eq!(err(with(EMISSION, "cpu_utilization_percent", "140")).field, "cpu_utilization_percent");
        assert_eq!(err(with(EMISSION, "timestamp", "\"yesterday\"")).field, "timestamp");
        assert_eq!(err(with(EMISSION, "run_id", "null")).field, "run_id");
        assert_eq!(err("[1,2]".into()).field, "body");
        assert_eq!(err("{\"timestamp\":".into()).field, "body");
        let e = RunIn::parse(with(RUN, "cpu_count", "2.5").as_bytes()).expect_err("refused");
        assert_eq!(e.to_string(), "field 'cpu_count': expected a whole number, got 2.5");
        assert_eq!(
            RunIn::parse(with(RUN, "experiment_id", "7").as_bytes()).expect_err("refused").field,
            "experiment_id"
        );
        // A descriptive field never costs the run: control characters become spaces, length is cut.
        let run = RunIn::parse(with(RUN, "cpu_model", "\"Xeon\\u0007 Gold\"").as_bytes()).expect("taken");
        assert_eq!(run.cpu_model.as_deref(), Some("Xeon  Gold"));
        let long = format!("\"{}\"", "x".repeat(MAX_TEXT_CHARS + 5));
        assert_eq!(
            RunIn::parse(with(RUN, "os", &long).as_bytes()).expect("taken").os.map(|o| o.len()),
            Some(MAX_TEXT_CHARS)
        );
    }

    #[test]
    fn figures_no_machine_reaches_and_times_far_from_now_are_refused_naming_the_field() {
        let now = naive_time("2026-11-29T20:00:00").expect("now");
        let err = |body: String| EmissionIn::parse_at(body.as_bytes(), now).expect_err("refused");
        // The attack: 1e12 kWh in 1e-300 s.
        let e = err(with(&with(EMISSION, "duration", "1e-300"), "energy_consumed", "1e12"));
        assert_eq!(e.field, "duration");
        assert!(e.message.contains("at least 0.001 s"), "{e}");
        // 2 s at most 100 kW is 0.0833 kWh (the bound allows one more second: 3 s).
        let e = err(with(EMISSION, "energy_consumed", "0.1"));
        assert_eq!(e.field, "energy_consumed");
        assert!(e.message.contains("more than one machine uses"), "{e}");
        assert!(EmissionIn::parse_at(with(EMISSION, "energy_consumed", "0.08").as_bytes(), now).is_ok());
        assert_eq!(err(with(EMISSION, "gpu_power", "150000")).field, "gpu_power");
        assert_eq!(err(with(EMISSION, "emissions_sum", "1")).field, "emissions_sum");
        assert_eq!(err(with(EMISSION, "wue", "1e6")).field, "wue");
        for t in ["\"0001-01-01T00:00:00+00:00\"", "\"9999-12-31T00:00:00+00:00\"", "\"2026-12-01T00:00:00+00:00\""] {
            let e = err(with(EMISSION, "timestamp", t));
            assert_eq!(e.field, "timestamp");
            assert!(e.message.contains("clock"), "{e}");
        }
        // A clock 14 hours ahead (a local time sent as UTC) is still taken.
        assert!(EmissionIn::parse_at(with(EMISSION, "timestamp", "\"2026-11-30T09:59:00\"").as_bytes(), now).is_ok());
        let run = |t: &str| RunIn::parse_at(with(RUN, "timestamp", t).as_bytes(), now);
        assert_eq!(run("\"9999-12-31T00:00:00\"").expect_err("refused").field, "timestamp");
        assert_eq!(
            RunIn::parse_at(with(RUN, "ram_total_size", "1e9").as_bytes(), now).expect_err("refused").field,
            "ram_total_size"
        );
    }

    #[test]
    fn text_direction_characters_are_left_out_of_labels_and_refused_in_ids() {
        let run = RunIn::parse(with(RUN, "cpu_model", "\"Xeon \\u202egpu.exe\\u2066\"").as_bytes()).expect("taken");
        assert_eq!(run.cpu_model.as_deref(), Some("Xeon gpu.exe"));
        let e = RunIn::parse(with(RUN, "experiment_id", "\"a\\u202eb\"").as_bytes()).expect_err("refused");
        assert_eq!(e.field, "experiment_id");
    }

    #[test]
    fn an_export_row_cannot_be_a_spreadsheet_formula_and_keeps_its_numbers() {
        let exp = Experiment { id: "e".into(), name: "=1+1".into(), project: "@p".into(), ..Experiment::default() };
        let run = RunIn {
            cpu_model: Some("=HYPERLINK(\"http://evil\",\"x\")".into()),
            longitude: Some(-3.5),
            ..RunIn::default()
        };
        let rec = EmissionIn::parse(EMISSION.as_bytes()).expect("emission");
        let (mut plain, mut safe) = (String::new(), String::new());
        Rows::new(&exp, "-r", &run).push(&mut plain, &rec);
        let mut rows = Rows::new(&exp, "-r", &run);
        rows.spreadsheet_safe = true;
        rows.push(&mut safe, &rec);
        assert!(plain.contains(",@p,-r,") && plain.contains(r#""=HYPERLINK(""http://evil"",""x"")""#), "{plain}");
        assert!(safe.contains(",'@p,'-r,") && safe.contains(r#""'=HYPERLINK(""http://evil"",""x"")""#), "{safe}");
        assert!(safe.trim_end().ends_with(",'=1+1") && safe.contains(",-3.5,"), "{safe}");
        let cells = |t: &str| t.split(',').filter(|c| c.parse::<f64>().is_ok()).count();
        assert_eq!(cells(&plain), cells(&safe));
    }

    #[test]
    fn fields_codecarbon_does_not_send_are_kept_as_they_came() {
        let e = EmissionIn::parse(with(EMISSION, "gpu_temperature", "[71, 72]").as_bytes()).expect("taken");
        assert_eq!(e.extra.as_deref(), Some(r#"{"gpu_temperature":[71,72]}"#));
        let many: String = (0..=MAX_EXTRA_FIELDS).fold(EMISSION.to_string(), |b, i| with(&b, &format!("x{i}"), "1"));
        assert_eq!(EmissionIn::parse(many.as_bytes()).expect_err("too many").field, "body");
    }

    #[test]
    fn timestamps_keep_their_wall_clock_time() {
        let t = naive_time("2026-11-29T18:39:22.172723+01:00").expect("time");
        assert_eq!(crate::time::iso(&t)[11..].to_string(), "18:39:22");
        assert!(naive_time("2026-11-29T18:39:22-0530").is_some());
        assert!(naive_time("2026-11-29T18:39:22Z").is_some());
        assert!(naive_time("2026-11-29T18:39:22+bogus").is_none());
        assert!(naive_time("2026-11-29T18:39:22+").is_none());
        assert!(naive_time("2026-11-29T18:39:22+01:00Z").is_none());
        // The autumn clock change in Paris: 02:50+02:00 comes before 02:10+01:00.
        let (summer, winter) = (instant("2026-10-25T02:50:00+02:00"), instant("2026-10-25T02:10:00+01:00"));
        assert!(summer < winter, "{summer:?} {winter:?}");
        assert_eq!(instant("2026-10-25T01:10:00Z"), winter);
        assert!(naive_time("2026-11-29").is_none());
    }

    #[test]
    fn a_collected_run_reads_as_a_log_with_running_totals() {
        let exp = Experiment {
            id: "8edb03e1".into(),
            name: "baseline".into(),
            project_id: "p1".into(),
            project: "vision".into(),
            team: Some("ml".into()),
            country_iso_code: Some("FRA".into()),
            ..Default::default()
        };
        let run = RunIn::parse(RUN.as_bytes()).expect("run");
        let mut records: Vec<EmissionIn> = (0..3)
            .map(|i| {
                let mut e = EmissionIn::parse(EMISSION.as_bytes()).expect("emission");
                e.timestamp = format!("2026-11-29T18:40:0{}.5+00:00", 5 - i);
                e.cpu_power = Some(30.0 + f64::from(i));
                e
            })
            .collect();
        sort_records(&mut records);
        assert_eq!(records[0].cpu_power, Some(32.0));
        let mut totals = Totals::default();
        for r in &records {
            totals.add(r);
        }
        let file = run_file(&exp, "r-1", &run, &totals);
        assert!(matches!(file.source, Source::Store), "no rows held: {:?}", file.source);
        assert_eq!(file.report.path, "collected://ml/vision/baseline/r-1");
        assert_eq!(team_of_path(&file.report.path), Some(Some("ml".to_string())));
        assert!(file.report.problems.is_empty(), "{:?}", file.report.problems);
        let [part] = &file.runs[..] else { panic!("one run: {:?}", file.runs.len()) };
        let r = &part.run;
        assert_eq!(r.source, RunSource::Collected);
        // The seconds the rate gives (2.005 s each), not the truncated 2 s.
        let d = r.duration_s.expect("duration");
        assert_eq!(r.checkpoints, 3);
        assert!((d - 3.0 * 1.5642589539599806e-06 / 7.801920377954161e-07).abs() < 1e-9, "{d}");
        let kwh = r.energy_kwh.expect("energy");
        assert!((kwh - 3.0 * 2.7913755669444145e-05).abs() < 1e-15, "{kwh}");
        // The powers are running means: the last record's.
        assert_eq!(r.cpu_power_w, Some(30.0));
        assert_eq!((r.country_iso_code.as_deref(), r.experiment_id.as_deref()), (Some("FRA"), Some("8edb03e1")));
        assert_eq!(r.ended_at.map(|t| crate::time::iso(&t)[11..].to_string()).as_deref(), Some("18:40:05"));
        // The very run that all its rows, written out and parsed, make.
        let mut text = format!("{CSV_HEADER}\n");
        write_rows(&mut text, &exp, "r-1", &run, &records);
        let full = ingest::ingest_bytes(&file.report.path, text.as_bytes()).expect("parse");
        let mut whole = (*full.runs[0].run).clone();
        whole.source = RunSource::Collected;
        assert_eq!(&whole, &**r);
    }
}
