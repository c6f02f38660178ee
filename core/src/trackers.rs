//! Other energy trackers' logs: carbontracker, eco2AI, Zeus and experiment-impact-tracker, read
//! into the same [`Run`]s and [`Checkpoint`]s as CodeCarbon's files, each run naming its tool
//! and version ([`Run::tool`]).
//!
//! A file is recognised by what it holds ([`detect`]), whatever its name: the name only says
//! which files of a folder are worth opening ([`is_candidate_name`]). Each reader keeps the
//! tool's own figures as it wrote them: the energy is the tool's (with the PUE it applied, said
//! in [`Run::pue`]), its CO2 is kept as reported, and what that CO2 rests on (the tool's
//! intensity and where it came from, its location guess) goes in [`Run::tool_basis`], so the
//! recomputation can explain the gap. Energy a tool only predicted (carbontracker's forecast
//! after its first epochs) is never taken for measured energy: it is kept as the run's tags.

use crate::model::{Checkpoint, Problem, Run};
use crate::records::records;
use chrono::NaiveDateTime;

/// The formats read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// carbontracker's standard log (`…_carbontracker.log`): version, PUE, components, epochs.
    CarbontrackerLog,
    /// carbontracker's output log (`…_carbontracker_output.log`): predicted and actual totals.
    CarbontrackerOutput,
    /// eco2AI's `emission.csv`.
    Eco2ai,
    /// Zeus's `ZeusMonitor(log_file=…)` CSV of measurement windows.
    Zeus,
    /// experiment-impact-tracker's `impacttracker/data.json` (JSON Lines of power samples).
    ImpactTracker,
}

pub const CARBONTRACKER: &str = "carbontracker";
pub const ECO2AI: &str = "eco2AI";
pub const ZEUS: &str = "Zeus";
pub const IMPACT_TRACKER: &str = "experiment-impact-tracker";

/// PUE that carbontracker and experiment-impact-tracker multiply their energy by (Uptime
/// Institute's survey figure, fixed in both tools' sources).
pub const TOOL_PUE: f64 = 1.58;

impl Format {
    /// The tool's name, as runs carry it.
    pub fn tool(self) -> &'static str {
        match self {
            Format::CarbontrackerLog | Format::CarbontrackerOutput => CARBONTRACKER,
            Format::Eco2ai => ECO2AI,
            Format::Zeus => ZEUS,
            Format::ImpactTracker => IMPACT_TRACKER,
        }
    }

    /// The file's kind on the Files page.
    pub fn label(self) -> &'static str {
        match self {
            Format::CarbontrackerLog => "carbontracker log",
            Format::CarbontrackerOutput => "carbontracker output log",
            Format::Eco2ai => "eco2AI CSV",
            Format::Zeus => "Zeus windows CSV",
            Format::ImpactTracker => "experiment-impact-tracker data",
        }
    }
}

/// Whether a folder's file of this name may be another tracker's log (its content decides):
/// carbontracker names its logs `…_carbontracker.log` and `…_carbontracker_output.log`;
/// eco2AI's and Zeus's CSVs and experiment-impact-tracker's `data.json` are read as CSV and
/// JSON files are anyway.
pub fn is_candidate_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with("_carbontracker.log") || lower.ends_with("_carbontracker_output.log")
}

/// A carbontracker log line's time stamp and message: `2026-12-05 13:22:21 - message`.
fn stamped(line: &str) -> Option<(NaiveDateTime, &str)> {
    let (head, rest) = (line.get(..19)?, line.get(19..)?);
    let rest = rest.strip_prefix(" - ")?;
    let t = NaiveDateTime::parse_from_str(head, "%Y-%m-%d %H:%M:%S").ok()?;
    Some((t, rest))
}

/// Which tracker wrote `text` (named `name`), if one of these did.
pub fn detect(name: &str, text: &str) -> Option<Format> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".log") {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty()).take(40);
        let first = lines.next().and_then(stamped)?;
        if first.1.starts_with("carbontracker version") {
            return Some(Format::CarbontrackerLog);
        }
        if first.1.starts_with("CarbonTracker:") {
            return Some(Format::CarbontrackerOutput);
        }
        return None;
    }
    if lower.ends_with(".json") || lower.ends_with(".jsonl") {
        let first = text.lines().find(|l| !l.trim().is_empty())?;
        if first.len() > MAX_SAMPLE_BYTES || !first.contains("_estimated_attributable_power_draw") {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(first.trim()).ok()?;
        let o = v.as_object()?;
        let power = o.contains_key("rapl_estimated_attributable_power_draw")
            || o.contains_key("nvidia_estimated_attributable_power_draw");
        return (o.contains_key("timestamp") && power).then_some(Format::ImpactTracker);
    }
    let header = text.trim_start_matches('\u{feff}').lines().next()?;
    let cols: Vec<String> = header.split(',').map(|c| c.trim().trim_matches('"').to_ascii_lowercase()).collect();
    let has = |c: &str| cols.iter().any(|x| x == c);
    if (has("power_consumption(kwh)") || has("power_consumption(kwth)")) && has("co2_emissions(kg)") {
        return Some(Format::Eco2ai);
    }
    if cols.len() >= 3 && cols[0] == "start_time" && cols[1] == "window_name" && cols[2] == "elapsed_time" {
        return Some(Format::Zeus);
    }
    None
}

/// The longest experiment-impact-tracker sample read (its lines are a few hundred bytes).
const MAX_SAMPLE_BYTES: usize = 64 * 1024;

/// What a reader made of one file: its runs with their checkpoints, and its problems.
#[derive(Debug, Default)]
pub struct Read {
    pub runs: Vec<(Run, Rows)>,
    /// The first [`crate::ingest::MAX_PROBLEMS_KEPT`] problems; all are counted.
    pub problems: Vec<Problem>,
    pub problem_count: usize,
    /// Records read (lines of samples, rows, epochs) and rejected.
    pub rows_read: usize,
    pub rows_rejected: usize,
    /// The file in words, for the Files page.
    pub detail: String,
}

impl Read {
    /// Counts a problem, and keeps it while fewer than the limit are kept.
    fn note(&mut self, p: Problem) {
        self.problem_count += 1;
        if self.problems.len() < crate::ingest::MAX_PROBLEMS_KEPT {
            self.problems.push(p);
        }
    }
}

/// A run's rows as a reader finds them: every row's key (the same row in a copy counts once),
/// and the rows themselves only for the run asked for (a run's page), so memory grows with runs,
/// not rows.
#[derive(Debug, Default)]
pub struct Rows {
    pub keys: Vec<u64>,
    pub kept: Vec<Checkpoint>,
    /// The line of the last row.
    pub last_line: usize,
    keep: bool,
}

impl Rows {
    fn new(run_id: &str, rows_of: Option<&str>) -> Rows {
        Rows { keep: rows_of == Some(run_id), ..Rows::default() }
    }

    fn push(&mut self, run_id: &str, c: Checkpoint) {
        self.keys.push(row_key(run_id, &c));
        self.last_line = c.line;
        if self.keep {
            self.kept.push(c);
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The key of a row: its run and figures.
fn row_key(run_id: &str, c: &Checkpoint) -> u64 {
    let text = format!(
        "{run_id}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{}",
        c.timestamp,
        c.duration_s.map(f64::to_bits),
        c.energy_kwh.map(f64::to_bits),
        c.co2_kg_reported.map(f64::to_bits),
        c.gpu_power_w.map(f64::to_bits),
        c.line
    );
    crate::ingest::fnv(text.as_bytes())
}

/// Reads `text` (the file `display`) as `format`, keeping the rows of the run `rows_of` (see
/// [`Rows`]).
pub fn read(format: Format, display: &str, text: &str, rows_of: Option<&str>) -> Read {
    match format {
        Format::CarbontrackerLog => carbontracker_log(display, text, rows_of),
        Format::CarbontrackerOutput => carbontracker_output(display, text, rows_of),
        Format::Eco2ai => eco2ai(display, text, rows_of),
        Format::Zeus => zeus(display, text, rows_of),
        Format::ImpactTracker => impact_tracker(display, text, rows_of),
    }
}

fn problem(line: usize, column: Option<(usize, &str)>, reason: String, rejected: bool) -> Problem {
    Problem { line, column: column.map(|c| c.0), column_name: column.map(|c| c.1.to_string()), reason, rejected }
}

/// Text as shown: control, text-direction and invisible characters out, at most
/// [`crate::ingest::MAX_TAG_CHARS`] characters.
fn shown(v: &str) -> String {
    crate::ingest::clip(crate::text::shown(v).into_owned(), crate::ingest::MAX_TAG_CHARS)
}

/// The largest figure read (seconds, watts, joules, kWh, kg, Unix seconds): beyond it a value is
/// no machine's, and sums of such values would overflow.
const MAX_FIGURE: f64 = 1e12;

/// A figure as read: finite, not negative, not beyond [`MAX_FIGURE`].
fn figure(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|x| x.is_finite() && (0.0..=MAX_FIGURE).contains(x))
}

/// A country as the logs give it (ISO 3166 alpha-2, as both eco2AI and carbontracker write it)
/// as runs carry it: alpha-3 code and name where the embedded dataset knows it.
fn set_country(run: &mut Run, code: &str) {
    let grid = crate::grid::Grid::embedded();
    match grid.iso3(code) {
        Some(iso3) => {
            run.country_name = grid.country_name(iso3).map(str::to_string);
            run.country_iso_code = Some(iso3.to_string());
        }
        None => run.country_iso_code = Some(shown(code)),
    }
}

/// A value as a problem quotes it: at most 100 characters.
fn clip(v: &str) -> String {
    format!("{:?}", crate::ingest::clip(v.to_string(), 100))
}

/// The 1-based column at which `part`, a slice of `line`, begins.
fn column_of(line: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(line.as_ptr() as usize).min(line.len()) + 1
}

/// carbontracker's detected location in a message: `…at detected location: Copenhagen, Capital
/// Region, DK: [140.0]`, `…at detected location Aarhus, Central Jutland, DK: [..]` (older) or
/// `…was 150.00 gCO2/kWh at detected location: Aarhus, Central Jutland, DK.` (older).
fn detected_location(message: &str) -> Option<String> {
    let rest = message.rsplit_once("at detected location")?.1;
    let rest = rest.strip_prefix(':').unwrap_or(rest).trim();
    let rest = rest.rsplit_once(": [").map_or(rest, |(l, _)| l);
    let rest = rest.trim().trim_end_matches('.').trim();
    (!rest.is_empty()).then(|| shown(rest))
}

fn base_name(display: &str) -> &str {
    display.rsplit('/').next().unwrap_or(display)
}

/// A run of `tool` with the fields every reader fills.
fn tool_run(tool: &str, run_id: String, display: &str) -> Run {
    Run {
        run_id,
        tool: Some(tool.to_string()),
        schema: tool.to_string(),
        source_files: vec![display.to_string()],
        ..Run::default()
    }
}

const J_PER_KWH: f64 = 3.6e6;

// ---------------------------------------------------------------------------------------------
// carbontracker

/// The run both of carbontracker's logs of one tracker name: the file name before
/// `_carbontracker…` (`{pid}.{logger}_{UTC time}`), or the whole stem for a renamed file.
fn carbontracker_id(display: &str) -> String {
    let name = base_name(display);
    let lower = name.to_ascii_lowercase();
    let stem = match lower.find("_carbontracker") {
        Some(at) => &name[..at],
        None => name.rsplit_once('.').map_or(name, |(s, _)| s),
    };
    format!("carbontracker-{stem}")
}

/// `H:MM:SS[.ff]` (Python's `timedelta` text, with `N day(s), ` for long runs) in seconds.
fn duration_text(v: &str) -> Option<f64> {
    let v = v.trim();
    let (days, v) = match v.split_once(", ") {
        Some((d, rest)) => (d.split_whitespace().next()?.parse::<f64>().ok()?, rest),
        None => (0.0, v),
    };
    let mut parts = v.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (h, m, s) = (h.trim().parse::<f64>().ok()?, m.parse::<f64>().ok()?, s.parse::<f64>().ok()?);
    let total = days * 86_400.0 + h * 3600.0 + m * 60.0 + s;
    (total.is_finite() && (0.0..=MAX_FIGURE).contains(&total) && m < 60.0 && s < 61.0).then_some(total)
}

/// `60.0`, `[250.1 251.3]`, `[250.1, 251.3]` or `None`: the summed power of a component's devices.
fn power_list(v: &str) -> Option<Option<f64>> {
    let v = v.trim();
    if v == "None" {
        return Some(None);
    }
    let inner = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(v);
    let mut sum = 0.0;
    let mut any = false;
    for x in inner.split(|c: char| c == ',' || c.is_whitespace()).filter(|x| !x.is_empty()) {
        let x = figure(x)?;
        sum += x;
        any = true;
    }
    any.then_some(Some(sum))
}

/// `GPU with device(s) A, B. CPU with device(s) Intel(R) Xeon(R) CPU @ 2.20GHz.` as (component,
/// devices).
fn components(message: &str) -> Vec<(String, Vec<String>)> {
    const MARK: &str = " with device(s) ";
    let mut out = Vec::new();
    let mut rest = message.trim();
    // carbontracker names two components (GPU, CPU): a line naming more is read no further, so a
    // hostile line costs its length a few times, not its length squared.
    while let Some(at) = rest.find(MARK).filter(|_| out.len() < MAX_COMPONENTS) {
        let name = rest[..at].rsplit(['.', ' ', ':']).find(|s| !s.is_empty()).unwrap_or("").to_string();
        let after = &rest[at + MARK.len()..];
        // The devices run to the next component's name, or to the end.
        let next = after.find(MARK).map(|n| after[..n].rfind(". ").map_or(0, |d| d + 1)).unwrap_or(after.len());
        let devices = after[..next].trim().trim_end_matches('.');
        let devices = devices.split(", ").map(|d| shown(d.trim())).filter(|d| !d.is_empty()).take(MAX_DEVICES);
        out.push((name, devices.collect()));
        rest = &after[next..];
    }
    out
}

/// The run's GPU and CPU models (and GPU count) from carbontracker's components line.
fn set_components(run: &mut Run, line: &str) {
    for (name, devices) in components(line) {
        let joined = Some(devices.join(", ")).filter(|d| !d.is_empty());
        match name.to_ascii_uppercase().as_str() {
            "GPU" => {
                run.gpu_count = Some(devices.len() as f64);
                run.gpu_model = joined;
            }
            "CPU" => run.cpu_model = joined,
            _ => {}
        }
    }
}

/// The average intensity and the detected location of carbontracker's "Average carbon
/// intensity during training was …" message (`rest` follows those words).
fn average_intensity(rest: &str) -> (Option<f64>, Option<String>) {
    let average = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()).filter(|a| a.is_finite());
    (average, detected_location(rest))
}

/// Components and devices a component line is read for.
const MAX_COMPONENTS: usize = 8;
const MAX_DEVICES: usize = 1024;

/// The country of carbontracker's detected location (`City, Region, DK`), if it names one.
fn location_country(address: &str) -> Option<String> {
    let last = address.rsplit(',').next()?.trim();
    (last.len() == 2 && last.bytes().all(|b| b.is_ascii_uppercase())).then(|| last.to_string())
}

/// What carbontracker's intensity was, in words, from its detected location.
fn carbontracker_basis(location: Option<&str>, average: Option<f64>, pue: f64) -> String {
    let figure = average.map(|a| format!("{a:.2} gCO2eq/kWh on average")).unwrap_or_else(|| "its intensity".into());
    let whence = match location {
        None => "no location in its log".to_string(),
        Some("Unknown") => {
            "no location detected: its global average (445 g/kWh for 2024 in carbontracker 2.4)".to_string()
        }
        Some(l) => format!(
            "detected location {}: a live figure where it has a provider for that place (Energi Data Service for DK, \
             the Carbon Intensity API for GB, Electricity Maps with a key), else its own national average",
            shown(l)
        ),
    };
    format!("carbontracker's {figure} ({whence}); its energy includes its fixed PUE of {pue}")
}

fn carbontracker_log(display: &str, text: &str, rows_of: Option<&str>) -> Read {
    let mut run = tool_run(CARBONTRACKER, carbontracker_id(display), display);
    let mut read = Read::default();
    let mut rows = Rows::new(&run.run_id, rows_of);
    // The epoch being read (its power lines follow its duration).
    let mut current: Option<Checkpoint> = None;
    let (mut first, mut last): (Option<NaiveDateTime>, Option<NaiveDateTime>) = (None, None);
    let mut pue = None;
    let mut duration: Option<f64> = None;
    let (mut total_s, mut cpu_j, mut gpu_j) = (0.0, 0.0, 0.0);
    // Sums and counts of the epochs' average powers.
    let (mut cpu_w, mut gpu_w) = ((0.0, 0usize), (0.0, 0usize));
    let mut location = None;
    let mut average = None;
    let mut stopped_early = false;
    let mut at = None;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let message = match stamped(line) {
            Some((t, m)) => {
                first.get_or_insert(t);
                last = Some(t);
                at = Some(t);
                m
            }
            // carbontracker writes one message a line; older releases left `Duration:` and
            // power lines without a time stamp.
            None => line.trim(),
        };
        if let Some(v) = message.strip_prefix("carbontracker version ") {
            run.tool_version = Some(shown(v.trim()));
        } else if let Some(rest) = message.split_once("PUE coefficient of ").map(|p| p.1) {
            let v = rest.split_whitespace().next().unwrap_or("").trim_end_matches('.');
            match v.parse::<f64>().ok().filter(|p| (1.0..=3.0).contains(p)) {
                Some(p) => pue = Some(p),
                None => read.note(problem(
                    n,
                    Some((column_of(line, v), "PUE")),
                    format!("{display}:{n}: a PUE of {} is not between 1 and 3: {TOOL_PUE} is taken", clip(v)),
                    false,
                )),
            }
        } else if let Some(rest) = message.strip_prefix("The following components were found:") {
            set_components(&mut run, rest);
        } else if let Some(v) = message.strip_prefix("Epoch ") {
            if v.trim_end_matches(':').trim().parse::<usize>().is_err() {
                read.note(problem(
                    n,
                    None,
                    format!("{display}:{n}: an epoch that is not a number: {message:?}"),
                    false,
                ));
            }
            duration = None;
        } else if let Some(v) = message.strip_prefix("Duration:") {
            match duration_text(v) {
                Some(d) => {
                    duration = Some(d);
                    total_s += d;
                    read.rows_read += 1;
                    if let Some(c) = current.take() {
                        rows.push(&run.run_id, c);
                    }
                    current = Some(Checkpoint {
                        file: display.to_string(),
                        line: n,
                        timestamp: at,
                        duration_s: Some(total_s),
                        ..Checkpoint::default()
                    });
                }
                None => {
                    read.rows_read += 1;
                    read.rows_rejected += 1;
                    read.note(problem(
                        n,
                        Some((column_of(line, v.trim_start()), "Duration")),
                        format!(
                            "{display}:{n}: the epoch's duration {} is not H:MM:SS: this epoch is not counted",
                            clip(v.trim())
                        ),
                        true,
                    ));
                }
            }
        } else if let Some(rest) = message.strip_prefix("Average power usage (W) for ") {
            let Some((component, value)) = rest.split_once(": ") else { continue };
            let Some(d) = duration else { continue };
            // NumPy wraps a long list (many GPUs) onto lines of its own, without a time stamp.
            let mut joined;
            let mut value = value;
            if value.trim_start().starts_with('[') && !value.contains(']') {
                joined = value.to_string();
                while let Some(&(_, next)) = lines.peek() {
                    if stamped(next).is_some() || joined.len() > 64 * 1024 {
                        break;
                    }
                    lines.next();
                    joined.push(' ');
                    joined.push_str(next.trim());
                    if next.contains(']') {
                        break;
                    }
                }
                value = joined.as_str();
            }
            match power_list(value) {
                Some(Some(w)) => {
                    let j = w * d;
                    let cp = current.as_mut();
                    if component.eq_ignore_ascii_case("gpu") {
                        gpu_j += j;
                        gpu_w = (gpu_w.0 + w, gpu_w.1 + 1);
                        if let Some(cp) = cp {
                            cp.gpu_power_w = Some(w);
                            cp.gpu_energy_kwh = Some(gpu_j * pue.unwrap_or(TOOL_PUE) / J_PER_KWH);
                        }
                    } else if component.eq_ignore_ascii_case("cpu") {
                        cpu_j += j;
                        cpu_w = (cpu_w.0 + w, cpu_w.1 + 1);
                        if let Some(cp) = cp {
                            cp.cpu_power_w = Some(w);
                            cp.cpu_energy_kwh = Some(cpu_j * pue.unwrap_or(TOOL_PUE) / J_PER_KWH);
                        }
                    }
                    if let Some(cp) = current.as_mut() {
                        cp.energy_kwh = Some((cpu_j + gpu_j) * pue.unwrap_or(TOOL_PUE) / J_PER_KWH);
                    }
                }
                Some(None) => {}
                None => read.note(problem(
                    n,
                    Some((column_of(line, rest) + component.len() + 2, "power")),
                    format!(
                        "{display}:{n}: the {} power {} is not a number or a list of numbers: left out",
                        clip(component),
                        clip(value.trim())
                    ),
                    false,
                )),
            }
        } else if let Some(rest) = message.strip_prefix("Average carbon intensity during training was ") {
            let (a, l) = average_intensity(rest);
            average = a;
            location = l.or(location);
        } else if message.contains("Carbon intensities") && message.contains("at detected location") {
            location = detected_location(message);
        } else if message.contains("Training was interrupted") {
            stopped_early = true;
        }
    }
    if let Some(c) = current.take() {
        rows.push(&run.run_id, c);
    }
    if run.tool_version.is_none() && first.is_none() {
        read.note(problem(0, None, format!("{display}: no time-stamped line: not a carbontracker log"), true));
        read.detail = "no carbontracker lines".into();
        return read;
    }
    let pue = pue.unwrap_or(TOOL_PUE);
    run.pue = Some(pue);
    run.started_at = first;
    run.ended_at = last;
    run.duration_s = (total_s > 0.0).then_some(total_s);
    let measured = cpu_j + gpu_j;
    run.energy_kwh = (!rows.is_empty()).then_some(measured * pue / J_PER_KWH);
    run.cpu_energy_kwh = (cpu_j > 0.0).then_some(cpu_j * pue / J_PER_KWH);
    run.gpu_energy_kwh = (gpu_j > 0.0).then_some(gpu_j * pue / J_PER_KWH);
    let mean = |(sum, n): (f64, usize)| (n > 0).then(|| sum / n as f64);
    run.cpu_power_w = mean(cpu_w);
    run.gpu_power_w = mean(gpu_w);
    if let Some(c) = location.as_deref().and_then(location_country) {
        set_country(&mut run, &c);
    }
    run.tool_basis = Some(carbontracker_basis(location.as_deref(), average, pue));
    note_intensity(&mut run, location.as_deref(), average);
    run.checkpoints = rows.len();
    if stopped_early {
        run.tags.push(("carbontracker".into(), "training was interrupted before all epochs".into()));
    }
    read.detail = format!(
        "{} epoch{} measured{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        if run.tool_version.is_none() { " (version not logged)" } else { "" }
    );
    read.runs.push((run, rows));
    read
}

/// One consumption block of the output log.
#[derive(Debug, Clone, Copy, Default)]
struct Consumption {
    epochs: Option<usize>,
    seconds: Option<f64>,
    kwh: Option<f64>,
    grams: Option<f64>,
    line: usize,
    /// A figure could not be read: the block is not counted.
    damaged: bool,
}

fn carbontracker_output(display: &str, text: &str, rows_of: Option<&str>) -> Read {
    let mut run = tool_run(CARBONTRACKER, carbontracker_id(display), display);
    let mut read = Read::default();
    let (mut first, mut last) = (None, None);
    let mut actual: Option<Consumption> = None;
    let mut predicted: Option<Consumption> = None;
    // The block being read: (is actual, its figures).
    let mut block: Option<(bool, Consumption)> = None;
    let mut average = None;
    let mut location: Option<String> = None;
    let finish = |block: &mut Option<(bool, Consumption)>,
                  actual: &mut Option<Consumption>,
                  predicted: &mut Option<Consumption>| {
        if let Some((is_actual, c)) = block.take() {
            if is_actual {
                *actual = Some(c);
            } else {
                *predicted = Some(c);
            }
        }
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let message = match stamped(line) {
            Some((t, m)) => {
                first.get_or_insert(t);
                last = Some(t);
                finish(&mut block, &mut actual, &mut predicted);
                m.strip_prefix("CarbonTracker:").unwrap_or(m).trim()
            }
            None => line.trim(),
        };
        let consumption = message
            .strip_prefix("Actual consumption")
            .map(|r| (true, r))
            .or_else(|| message.strip_prefix("Predicted consumption").map(|r| (false, r)));
        if let Some((is_actual, rest)) = consumption {
            finish(&mut block, &mut actual, &mut predicted);
            let epochs = rest.trim().strip_prefix("for ").and_then(|r| r.split_whitespace().next()?.parse().ok());
            block = Some((is_actual, Consumption { epochs, line: n, ..Consumption::default() }));
            read.rows_read += 1;
            continue;
        }
        if let Some(v) = message.strip_prefix("Average carbon intensity during training was ") {
            let (a, l) = average_intensity(v);
            average = a;
            location = l.or(location);
            continue;
        }
        if let Some(rest) = message.strip_prefix("The following components were found:") {
            set_components(&mut run, rest);
            continue;
        }
        let Some((_, c)) = block.as_mut() else { continue };
        let Some((key, value)) = message.split_once(':') else { continue };
        let value = value.trim();
        let column = column_of(line, value);
        let bad = |what: &str| {
            problem(
                n,
                Some((column, key)),
                format!("{display}:{n}: {what} {} cannot be read: this block is not counted", clip(value)),
                true,
            )
        };
        let damage = |c: &mut Consumption, read: &mut Read, what: &str| {
            if !c.damaged {
                c.damaged = true;
                read.rows_rejected += 1;
            }
            read.note(bad(what));
        };
        match key {
            "Time" => match duration_text(value) {
                Some(s) => c.seconds = Some(s),
                None => damage(c, &mut read, "the time"),
            },
            "Energy" => match value.strip_suffix("kWh").and_then(figure) {
                Some(e) => c.kwh = Some(e),
                None => damage(c, &mut read, "the energy"),
            },
            "CO2eq" => {
                let (v, scale) = match value.rsplit_once(' ') {
                    Some((v, "g")) => (v, 1e-3),
                    Some((v, "kg")) => (v, 1.0),
                    _ => (value, f64::NAN),
                };
                match v.trim().parse::<f64>().ok().map(|v| v * scale) {
                    Some(kg) if kg.is_finite() && (0.0..=MAX_FIGURE).contains(&kg) => c.grams = Some(kg * 1000.0),
                    // carbontracker writes `nan` when it had no intensity: the energy stands.
                    Some(kg) if kg.is_nan() && scale.is_finite() => read.note(problem(
                        n,
                        Some((column, key)),
                        format!("{display}:{n}: no CO2eq (nan): the energy is kept, without a reported CO2"),
                        false,
                    )),
                    _ => damage(c, &mut read, "the CO2eq"),
                }
            }
            _ => {}
        }
    }
    finish(&mut block, &mut actual, &mut predicted);
    // A block with a figure that could not be read is not counted at all.
    let damaged = |c: &Consumption| c.damaged;
    let actual = actual.filter(|c| !damaged(c));
    run.started_at = first;
    run.ended_at = last;
    // carbontracker 2.x's; the standard log says the one it applied (see `fill_from`).
    run.pue = Some(TOOL_PUE);
    if let (Some(a), Some(p)) = (actual, predicted) {
        if let (Some(measured), Some(of)) = (a.epochs, p.epochs) {
            if measured < of {
                read.note(problem(
                    a.line,
                    None,
                    format!(
                        "{display}:{}: carbontracker measured {measured} of the {of} epochs it predicted for: the \
                         energy is what it measured",
                        a.line
                    ),
                    false,
                ));
            }
        }
    }
    if let Some(p) = predicted.filter(|c| !damaged(c)) {
        let put = |tags: &mut Vec<(String, String)>, k: &str, v: Option<String>| {
            if let Some(v) = v {
                tags.push((k.to_string(), v));
            }
        };
        put(&mut run.tags, "predicted energy (kWh)", p.kwh.map(|v| v.to_string()));
        put(&mut run.tags, "predicted CO2eq (g)", p.grams.map(|v| v.to_string()));
        put(&mut run.tags, "predicted for epochs", p.epochs.map(|v| v.to_string()));
    }
    let mut rows = Rows::new(&run.run_id, rows_of);
    match actual {
        Some(a) => {
            run.energy_kwh = a.kwh;
            run.co2_kg_reported = a.grams.map(|g| g / 1000.0);
            run.duration_s = a.seconds;
            rows.push(
                &run.run_id,
                Checkpoint {
                    file: display.to_string(),
                    line: a.line,
                    timestamp: last,
                    duration_s: a.seconds,
                    energy_kwh: a.kwh,
                    co2_kg_reported: run.co2_kg_reported,
                    ..Checkpoint::default()
                },
            );
        }
        None if predicted.is_some() => read.note(problem(
            0,
            None,
            format!(
                "{display}: only carbontracker's prediction, no actual consumption (the run stopped early or is still \
                 running): the prediction is kept as a tag, never counted as energy"
            ),
            false,
        )),
        None => {}
    }
    run.tool_basis = Some(carbontracker_basis(location.as_deref(), average, TOOL_PUE));
    note_intensity(&mut run, location.as_deref(), average);
    run.checkpoints = rows.len();
    read.detail = format!(
        "{}{}",
        if actual.is_some() { "actual consumption" } else { "no actual consumption" },
        if predicted.is_some() { ", and a prediction (kept apart)" } else { "" }
    );
    read.runs.push((run, rows));
    read
}

/// Tags naming carbontracker's detected location and average intensity, as its logs say them.
const LOCATION_TAG: &str = "carbontracker's detected location";
const AVERAGE_TAG: &str = "carbontracker's average intensity (gCO2eq/kWh)";

fn note_intensity(run: &mut Run, location: Option<&str>, average: Option<f64>) {
    if let Some(l) = location {
        run.tags.push((LOCATION_TAG.into(), shown(l)));
    }
    if let Some(a) = average {
        run.tags.push((AVERAGE_TAG.into(), a.to_string()));
    }
}

/// Fills what the run taken from one carbontracker log lacks from the other log of its pair:
/// the output log has the totals, the standard log the version, components, epochs and the
/// detected location. Figures the run has are never replaced.
pub fn fill_from(run: &mut Run, other: &Run) {
    macro_rules! fill {
        ($($f:ident),*) => { $( if run.$f.is_none() { run.$f.clone_from(&other.$f); } )* };
    }
    fill!(tool_version, cpu_model, gpu_model, gpu_count, cpu_power_w, gpu_power_w, energy_kwh, duration_s);
    // The standard log (it names the version) says the PUE carbontracker applied.
    if other.tool_version.is_some() && other.pue.is_some() {
        run.pue = other.pue;
    }
    run.ended_at = match (run.ended_at, other.ended_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    // The standard log begins before the output log's first line.
    run.started_at = match (run.started_at, other.started_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if run.country_iso_code.is_none() {
        run.country_iso_code.clone_from(&other.country_iso_code);
        run.country_name.clone_from(&other.country_name);
    }
    // The split by component, scaled to the total it is part of.
    if run.cpu_energy_kwh.is_none() && run.gpu_energy_kwh.is_none() {
        if let (Some(total), Some(split)) = (run.energy_kwh, other.energy_kwh.filter(|e| *e > 0.0)) {
            run.cpu_energy_kwh = other.cpu_energy_kwh.map(|e| e / split * total);
            run.gpu_energy_kwh = other.gpu_energy_kwh.map(|e| e / split * total);
        }
    }
    for tag in &other.tags {
        if !run.tags.iter().any(|(k, _)| *k == tag.0) {
            run.tags.push(tag.clone());
        }
    }
    // The standard log says where the intensity came from, the output log its average.
    if run.tool.as_deref() == Some(CARBONTRACKER) {
        let tag = |k: &str| run.tags.iter().find(|t| t.0 == k).map(|t| t.1.clone());
        let (location, average) = (tag(LOCATION_TAG), tag(AVERAGE_TAG).and_then(|a| a.parse().ok()));
        run.tool_basis = Some(carbontracker_basis(location.as_deref(), average, run.pue.unwrap_or(TOOL_PUE)));
    }
}

// ---------------------------------------------------------------------------------------------
// eco2AI

/// `AMD EPYC/1 device(s), TDP:500.0` or ` 0 device(s)` as (model, count).
fn eco2ai_device(v: &str) -> (Option<String>, Option<f64>) {
    let v = v.trim();
    let (model, rest) = match v.rsplit_once('/') {
        Some((m, r)) => (Some(shown(m.trim())).filter(|m| !m.is_empty()), r),
        None => (None, v),
    };
    let count = rest.split_whitespace().next().and_then(|c| c.parse::<f64>().ok());
    match count {
        Some(0.0) => (None, Some(0.0)),
        _ => (model.or_else(|| Some(shown(v)).filter(|v| !v.is_empty() && !v.contains("device(s)"))), count),
    }
}

fn eco2ai(display: &str, text: &str, rows_of: Option<&str>) -> Read {
    use std::collections::HashMap;
    let mut read = Read::default();
    let text = text.trim_start_matches('\u{feff}');
    let mut recs = records(text);
    let mut rec = crate::records::Record::default();
    if !recs.read_filled(&mut rec) {
        return read;
    }
    let header: Vec<String> = rec.iter(text).map(str::to_string).collect();
    let names: Vec<String> = header.iter().map(|c| c.trim().to_ascii_lowercase()).collect();
    let col = |want: &[&str]| names.iter().position(|n| want.iter().any(|w| n == w || n.starts_with(&format!("{w}("))));
    let id = col(&["id"]);
    let project = col(&["project_name"]);
    let description = col(&["experiment_description"]);
    let start = col(&["start_time"]);
    let duration = col(&["duration(s)"]);
    let energy = names.iter().position(|n| n.starts_with("power_consumption("));
    let co2 = col(&["co2_emissions(kg)"]);
    let (cpu, gpu, os, place) = (col(&["cpu_name"]), col(&["gpu_name"]), col(&["os"]), col(&["region/country"]));
    let header_name = |i: usize| header[i].trim().to_string();
    // Runs in the order first seen: eco2AI appends one row a session, or one an epoch (the same
    // `id`, each row that epoch's own consumption, not a running total).
    let mut order: Vec<String> = Vec::new();
    let mut runs: HashMap<String, (Run, Rows)> = HashMap::new();
    while recs.read_filled(&mut rec) {
        let line = rec.line;
        let fields: Vec<&str> = rec.iter(text).collect();
        read.rows_read += 1;
        if fields.len() != names.len() {
            read.rows_rejected += 1;
            read.note(problem(
                line,
                None,
                format!(
                    "{display}:{line}: {} fields where the header has {}: row not counted",
                    fields.len(),
                    names.len()
                ),
                true,
            ));
            continue;
        }
        let get =
            |i: Option<usize>| i.map(|i| fields[i].trim()).filter(|v| !v.is_empty() && *v != "N/A" && *v != "N\\A");
        let number = |i: Option<usize>, read: &mut Read| -> Result<Option<f64>, ()> {
            let Some(v) = get(i) else { return Ok(None) };
            match figure(v) {
                Some(x) => Ok(Some(x)),
                None => {
                    let c = i.unwrap_or(0);
                    read.note(problem(
                        line,
                        Some((c + 1, &header_name(c))),
                        format!(
                            "{display}:{line}:{}: {} {} is not a number from 0 to 10¹²: row not counted",
                            c + 1,
                            header_name(c),
                            clip(v)
                        ),
                        true,
                    ));
                    Err(())
                }
            }
        };
        let (Ok(kwh), Ok(kg), Ok(seconds)) =
            (number(energy, &mut read), number(co2, &mut read), number(duration, &mut read))
        else {
            read.rows_rejected += 1;
            continue;
        };
        let started = get(start).and_then(crate::ingest::parse_timestamp);
        if get(start).is_some() && started.is_none() {
            let c = start.unwrap_or(0);
            read.note(problem(
                line,
                Some((c + 1, "start_time")),
                format!(
                    "{display}:{line}:{}: start_time {:?} is not a date and time: kept without one",
                    c + 1,
                    get(start).unwrap_or("")
                ),
                false,
            ));
        }
        let key = match get(id) {
            Some(v) => shown(v),
            // eco2AI before 0.3 wrote no id: each row is one tracker session.
            None => format!("eco2ai-{display}-{line}"),
        };
        // A run's page needs its rows only.
        if rows_of.is_some_and(|r| r != key) {
            continue;
        }
        let entry = runs.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            let mut run = tool_run(ECO2AI, key.clone(), display);
            run.run_id_synthetic = get(id).is_none();
            run.project_name = get(project).map(shown);
            if let Some(d) = get(description) {
                run.tags.push(("experiment_description".into(), shown(d)));
            }
            let (cpu_model, cpu_count) = get(cpu).map(eco2ai_device).unwrap_or_default();
            let (gpu_model, gpu_count) = get(gpu).map(eco2ai_device).unwrap_or_default();
            (run.cpu_model, run.cpu_count, run.gpu_model, run.gpu_count) = (cpu_model, cpu_count, gpu_model, gpu_count);
            run.os = get(os).map(shown);
            if let Some(p) = get(place) {
                // `FR`, `DE/Bavaria`, or `(FR/Bavaria)` when the user gave the intensity.
                let p = p.trim_start_matches('(').trim_end_matches(')');
                let (country, region) = p.split_once('/').map_or((p, None), |(c, r)| (c, Some(r)));
                if !country.trim().is_empty() {
                    set_country(&mut run, country.trim());
                }
                run.region = region.map(|r| shown(r.trim())).filter(|r| !r.is_empty() && r != "None");
            }
            run.started_at = started;
            let rows = Rows::new(&run.run_id, rows_of);
            (run, rows)
        });
        let (run, rows) = entry;
        let add = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        run.energy_kwh = add(run.energy_kwh, kwh);
        run.co2_kg_reported = add(run.co2_kg_reported, kg);
        run.duration_s = add(run.duration_s, seconds);
        if let Some(s) = started {
            run.started_at = Some(run.started_at.map_or(s, |t| t.min(s)));
            let end = chrono::Duration::try_milliseconds((seconds.unwrap_or(0.0) * 1000.0) as i64)
                .and_then(|d| s.checked_add_signed(d))
                .unwrap_or(s);
            run.ended_at = Some(run.ended_at.map_or(end, |t| t.max(end)));
        }
        run.checkpoints += 1;
        let id = run.run_id.clone();
        rows.push(
            &id,
            Checkpoint {
                file: display.to_string(),
                line,
                timestamp: run.ended_at,
                duration_s: run.duration_s,
                energy_kwh: run.energy_kwh,
                co2_kg_reported: run.co2_kg_reported,
                ..Checkpoint::default()
            },
        );
    }
    let generation = if id.is_some() { "0.3 (with id)" } else { "before 0.3 (no id)" };
    read.detail = format!("eco2AI {generation}, {} run{}", runs.len(), if runs.len() == 1 { "" } else { "s" });
    for key in order {
        if let Some((mut run, rows)) = runs.remove(&key) {
            run.tool_basis = Some(
                "eco2AI's own table of intensity by country and region (its carbon_index.csv), for the country the user \
                 gave or ipinfo.io guessed; eco2AI multiplies the energy by the PUE it was given (1 unless set), which \
                 its file does not record"
                    .into(),
            );
            read.runs.push((run, rows));
        }
    }
    read
}

// ---------------------------------------------------------------------------------------------
// Zeus

fn zeus(display: &str, text: &str, rows_of: Option<&str>) -> Read {
    let mut read = Read::default();
    let text = text.trim_start_matches('\u{feff}');
    let mut recs = records(text);
    let mut rec = crate::records::Record::default();
    if !recs.read_filled(&mut rec) {
        return read;
    }
    let header: Vec<String> = rec.iter(text).map(|c| c.trim().to_string()).collect();
    // Zeus writes a trailing comma when no GPU is monitored.
    let width = header.iter().rposition(|c| !c.is_empty()).map_or(0, |i| i + 1);
    let gpus: Vec<(usize, &str)> = header[..width]
        .iter()
        .enumerate()
        .skip(3)
        .map(|(i, c)| (i, c.as_str()))
        .filter(|(_, c)| c.starts_with("gpu") && c.ends_with("_energy"))
        .collect();
    // The file's path (without its extension) names the run: `windows.csv` is a common name.
    let stem = display.rsplit_once('.').filter(|(s, _)| !s.is_empty()).map_or(display, |(s, _)| s);
    let mut run = tool_run(ZEUS, format!("zeus-{stem}"), display);
    if width < 3 || header[..3] != ["start_time", "window_name", "elapsed_time"] {
        read.note(problem(
            1,
            None,
            format!("{display}:1: not Zeus's header (start_time,window_name,elapsed_time,gpuN_energy…): not read"),
            true,
        ));
        read.detail = "not a Zeus header".into();
        return read;
    }
    let mut rows = Rows::new(&run.run_id, rows_of);
    // Zeus writes a window when it ends, so a window written later that began no later than one
    // before it holds it (a whole-training window around per-epoch ones): only the outermost
    // count, so no joule is counted twice. The outermost so far, as (start, energy, seconds):
    // their starts rise, so those a new window holds are at the end.
    let mut outer: Vec<(f64, Option<f64>, f64)> = Vec::new();
    let (mut seconds, mut joules, mut nested, mut out_of_order) = (0.0, None::<f64>, 0usize, false);
    let (mut first, mut last_end) = (f64::INFINITY, f64::NEG_INFINITY);
    let at = |s: f64| chrono::DateTime::from_timestamp_millis((s * 1000.0) as i64).map(|d| d.naive_utc());
    while recs.read_filled(&mut rec) {
        let line = rec.line;
        let fields: Vec<&str> = rec.iter(text).collect();
        read.rows_read += 1;
        let used = fields.iter().rposition(|c| !c.trim().is_empty()).map_or(0, |i| i + 1);
        if used > width || fields.len() < width {
            read.rows_rejected += 1;
            read.note(problem(
                line,
                None,
                format!("{display}:{line}: {used} fields where the header has {width}: window not counted"),
                true,
            ));
            continue;
        }
        let num = |i: usize| fields.get(i).and_then(|v| figure(v));
        let bad = [(0, "start_time"), (2, "elapsed_time")]
            .into_iter()
            .chain(gpus.iter().copied())
            .find(|(i, _)| num(*i).is_none());
        if let Some((i, name)) = bad {
            read.rows_rejected += 1;
            read.note(problem(
                line,
                Some((i + 1, name)),
                format!(
                    "{display}:{line}:{}: {name} {} is not a number from 0 to 10¹²: window not counted",
                    i + 1,
                    clip(fields.get(i).map_or("", |v| v.trim()))
                ),
                true,
            ));
            continue;
        }
        let (start, elapsed) = (num(0).unwrap_or(0.0), num(2).unwrap_or(0.0));
        let energy = (!gpus.is_empty()).then(|| gpus.iter().filter_map(|(i, _)| num(*i)).sum::<f64>());
        let end = start + elapsed;
        if end < last_end {
            out_of_order = true;
        }
        while let Some(&(s, e, t)) = outer.last() {
            if s < start {
                break;
            }
            outer.pop();
            nested += 1;
            seconds -= t;
            if let Some(e) = e {
                joules = Some(joules.unwrap_or(0.0) - e);
            }
        }
        outer.push((start, energy, elapsed));
        seconds += elapsed;
        if let Some(e) = energy {
            joules = Some(joules.unwrap_or(0.0) + e);
        }
        first = first.min(start);
        last_end = last_end.max(end);
        rows.push(
            &run.run_id,
            Checkpoint {
                file: display.to_string(),
                line,
                timestamp: at(end),
                // Seconds measured so far, as the run's duration is: the last row is the run's totals.
                duration_s: Some(seconds.max(0.0)),
                energy_kwh: joules.map(|j| j / J_PER_KWH),
                gpu_energy_kwh: joules.map(|j| j / J_PER_KWH),
                gpu_power_w: energy.filter(|_| elapsed > 0.0).map(|j| j / elapsed),
                ..Checkpoint::default()
            },
        );
    }
    run.gpu_count = Some(gpus.len() as f64);
    if !rows.is_empty() {
        run.started_at = at(first);
        run.ended_at = at(last_end);
        run.duration_s = Some(seconds.max(0.0));
    }
    run.energy_kwh = joules.map(|j| j.max(0.0) / J_PER_KWH);
    run.gpu_energy_kwh = run.energy_kwh;
    run.gpu_power_w = joules.filter(|_| seconds > 0.0).map(|j| j.max(0.0) / seconds);
    run.checkpoints = rows.len();
    run.tool_basis = Some("Zeus measures GPU energy (NVML's energy counter) and reports no CO2".into());
    if gpus.is_empty() {
        read.note(problem(
            1,
            None,
            format!("{display}:1: no gpuN_energy column (Zeus monitored no GPU): windows have a duration, no energy"),
            false,
        ));
    }
    if out_of_order {
        read.note(problem(
            0,
            None,
            format!(
                "{display}: windows not in the order they ended (Zeus writes each as it ends): a window is taken to \
                 hold those before it that began no earlier"
            ),
            false,
        ));
    }
    read.detail = format!(
        "{} window{} on {} GPU{}{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        gpus.len(),
        if gpus.len() == 1 { "" } else { "s" },
        if nested > 0 { format!(" ({nested} inside others, not counted twice)") } else { String::new() }
    );
    read.runs.push((run, rows));
    read
}

// ---------------------------------------------------------------------------------------------
// experiment-impact-tracker

/// experiment-impact-tracker's run: the folder holding `impacttracker/`.
fn impact_tracker_id(display: &str) -> String {
    match display.strip_suffix("impacttracker/data.json").map(|d| d.trim_end_matches('/')) {
        Some(dir) if !dir.is_empty() => format!("impacttracker-{dir}"),
        // An upload or a renamed file: its name.
        _ => {
            let stem = display.rsplit_once('.').filter(|(s, _)| !s.is_empty()).map_or(display, |(s, _)| s);
            format!("impacttracker-{}", stem.replace("/impacttracker/", "/"))
        }
    }
}

fn impact_tracker(display: &str, text: &str, rows_of: Option<&str>) -> Read {
    let mut read = Read::default();
    let mut run = tool_run(IMPACT_TRACKER, impact_tracker_id(display), display);
    run.pue = Some(TOOL_PUE);
    let mut rows = Rows::new(&run.run_id, rows_of);
    // The tool integrates each sample's power over the time since the one before (its first over
    // the time since the experiment's start, kept in `info.pkl`, a Python pickle not read here).
    let (mut cpu_kwh, mut gpu_kwh, mut grams, mut with_intensity) = (0.0, 0.0, 0.0, 0usize);
    let (mut rapl_sum, mut nvidia_sum) = (0.0, 0.0);
    // The first and the latest sample's time.
    let (mut first, mut previous): (Option<f64>, Option<f64>) = (None, None);
    let at = |s: f64| chrono::DateTime::from_timestamp_millis((s * 1000.0) as i64).map(|d| d.naive_utc());
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        read.rows_read += 1;
        if line.len() > MAX_SAMPLE_BYTES {
            read.rows_rejected += 1;
            read.note(problem(
                n,
                None,
                format!("{display}:{n}: a sample of {} bytes, over {MAX_SAMPLE_BYTES}: not counted", line.len()),
                true,
            ));
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line.trim()) {
            Ok(v) => v,
            Err(e) => {
                read.rows_rejected += 1;
                read.note(problem(
                    n,
                    Some((e.column() + line.len() - line.trim_start().len(), "sample")),
                    format!("{display}:{n}:{}: not a JSON sample ({e}): sample not counted", e.column()),
                    true,
                ));
                continue;
            }
        };
        let num = |k: &str| {
            v.get(k).and_then(serde_json::Value::as_f64).filter(|x| x.is_finite() && (0.0..=MAX_FIGURE).contains(x))
        };
        let Some(t) = num("timestamp") else {
            read.rows_rejected += 1;
            read.note(problem(n, None, format!("{display}:{n}: a sample without a timestamp: not counted"), true));
            continue;
        };
        if previous.is_some_and(|p| t < p) {
            read.rows_rejected += 1;
            read.note(problem(
                n,
                None,
                format!("{display}:{n}: a sample earlier than the one before: not counted"),
                true,
            ));
            continue;
        }
        let rapl = num("rapl_estimated_attributable_power_draw").unwrap_or(0.0).max(0.0);
        let nvidia = num("nvidia_estimated_attributable_power_draw").unwrap_or(0.0).max(0.0);
        // Written as a number or as text by the live providers.
        let realtime = v.get("realtime_carbon_intensity").and_then(|x| {
            x.as_f64().or_else(|| x.as_str().and_then(|s| s.trim().parse().ok())).filter(|x: &f64| x.is_finite())
        });
        let hours = previous.map_or(0.0, |p| (t - p) / 3600.0);
        let (c, g) = (TOOL_PUE * hours * rapl / 1000.0, TOOL_PUE * hours * nvidia / 1000.0);
        cpu_kwh += c;
        gpu_kwh += g;
        rapl_sum += rapl;
        nvidia_sum += nvidia;
        if let Some(i) = realtime {
            grams += (c + g) * i;
            with_intensity += 1;
        }
        let start = *first.get_or_insert(t);
        previous = Some(t);
        rows.push(
            &run.run_id,
            Checkpoint {
                file: display.to_string(),
                line: n,
                timestamp: at(t),
                duration_s: Some(t - start),
                energy_kwh: Some(cpu_kwh + gpu_kwh),
                cpu_energy_kwh: Some(cpu_kwh),
                gpu_energy_kwh: Some(gpu_kwh),
                cpu_power_w: Some(rapl),
                gpu_power_w: Some(nvidia),
                ..Checkpoint::default()
            },
        );
    }
    let samples = rows.len();
    if let (Some(first), Some(last)) = (first, previous) {
        run.started_at = at(first);
        run.ended_at = at(last);
        run.duration_s = Some(last - first);
        run.energy_kwh = Some(cpu_kwh + gpu_kwh);
        run.cpu_energy_kwh = Some(cpu_kwh);
        run.gpu_energy_kwh = Some(gpu_kwh);
        run.cpu_power_w = Some(rapl_sum / samples as f64);
        run.gpu_power_w = Some(nvidia_sum / samples as f64).filter(|w| *w > 0.0);
        if with_intensity == samples {
            run.co2_kg_reported = Some(grams / 1000.0);
        }
    }
    run.tool_basis = Some(format!(
        "experiment-impact-tracker's {} and its fixed PUE of {TOOL_PUE}",
        if with_intensity > 0 {
            "realtime intensity of each sample (a live provider for its region)"
        } else {
            "regional average (kept in info.pkl, a Python pickle this server does not read)"
        }
    ));
    run.checkpoints = samples;
    read.detail = format!("experiment-impact-tracker: {samples} power sample{}", if samples == 1 { "" } else { "s" });
    read.runs.push((run, rows));
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_powers_and_components_as_carbontracker_writes_them() {
        assert_eq!(duration_text("0:00:01.00"), Some(1.0));
        assert_eq!(duration_text("1 day, 2:03:04.50"), Some(86_400.0 + 7384.5));
        assert_eq!(duration_text("12:61:00"), None);
        assert_eq!(duration_text("soon"), None);
        assert_eq!(power_list("60.0"), Some(Some(60.0)));
        assert_eq!(power_list("[250.5 249.5]"), Some(Some(500.0)));
        assert_eq!(power_list("None"), Some(None));
        assert_eq!(power_list("[abc]"), None);
        let hostile = " with device(s) ".repeat(100_000);
        assert_eq!(components(&hostile).len(), MAX_COMPONENTS);
        let c = components(
            " GPU with device(s) NVIDIA A100, NVIDIA A100. CPU with device(s) Intel(R) Xeon(R) CPU @ 2.20GHz.",
        );
        assert_eq!(c[0], ("GPU".into(), vec!["NVIDIA A100".to_string(), "NVIDIA A100".into()]));
        assert_eq!(c[1], ("CPU".into(), vec!["Intel(R) Xeon(R) CPU @ 2.20GHz".to_string()]));
        assert_eq!(location_country("Copenhagen, Capital Region, DK").as_deref(), Some("DK"));
        assert_eq!(location_country("Unknown"), None);
    }

    #[test]
    fn formats_are_told_by_content() {
        let ct = "2026-12-05 13:22:21 - carbontracker version 2.4.7\n";
        assert_eq!(detect("x.log", ct), Some(Format::CarbontrackerLog));
        assert_eq!(
            detect("renamed.log", "2026-12-05 13:22:22 - CarbonTracker: The following"),
            Some(Format::CarbontrackerOutput)
        );
        assert_eq!(detect("train.log", "epoch 1 loss 0.3\n"), None);
        assert_eq!(
            detect("emission.csv", "id,project_name,power_consumption(kWh),CO2_emissions(kg)\n"),
            Some(Format::Eco2ai)
        );
        assert_eq!(detect("z.csv", "start_time,window_name,elapsed_time,gpu0_energy\n"), Some(Format::Zeus));
        assert_eq!(detect("emissions.csv", "timestamp,project_name,run_id,duration\n"), None);
        assert_eq!(
            detect("data.json", "{\"timestamp\": 1.0, \"rapl_estimated_attributable_power_draw\": 3}\n"),
            Some(Format::ImpactTracker)
        );
        assert_eq!(detect("results.json", "[{\"acc\": 1}]"), None);
    }

    #[test]
    fn zeus_windows_inside_others_are_not_counted_twice() {
        // As Zeus writes them: each window as it ends.
        let csv = "start_time,window_name,elapsed_time,gpu0_energy,gpu1_energy\n\
                   100.5,epoch_1,4.0,400.0,400.0\n\
                   105.0,epoch_2,4.0,390.0,410.0\n\
                   100.0,training,10.0,1000.0,1000.0\n\
                   200.0,eval,2.0,100.0,100.0\n";
        let r = read(Format::Zeus, "z.csv", csv, Some("zeus-z"));
        let (run, rows) = &r.runs[0];
        assert_eq!((rows.len(), rows.kept.len()), (4, 4));
        let last = rows.kept.last().expect("rows");
        assert_eq!((last.duration_s, last.energy_kwh), (run.duration_s, run.energy_kwh), "the last row is the totals");
        assert!((run.energy_kwh.expect("energy") - 2200.0 / J_PER_KWH).abs() < 1e-15, "{run:?}");
        assert_eq!(run.duration_s, Some(12.0));
        assert!(r.detail.contains("2 inside others"), "{}", r.detail);
    }
}
