//! The set of ingested files and the runs built from them. Results are held per file, so one
//! changed file is re-read alone and the runs are rebuilt from the frames (cheap: no parsing).

use crate::columns as c;
use crate::grid::Grid;
use crate::ingest::{self, decode_tags, frame, IngestError, ParsedFile};
use crate::model::{Checkpoint, DatasetMode, FileReport, Run, RunDetail, Summary};
use chrono::DateTime;
use polars::prelude::*;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// All files and the runs across them.
///
/// Building and changing it ([`Catalog::from_files`], [`Catalog::upsert`], [`Catalog::remove`])
/// runs polars' lazy engine: call these outside an async runtime or in a blocking task
/// (`spawn_blocking`). Reading it is cheap and safe anywhere.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    files: BTreeMap<String, ParsedFile>,
    /// The runs assessed in each dataset mode, same order: `[latest, codecarbon]`.
    runs: [Vec<Run>; 2],
    index: HashMap<String, usize>,
    /// Apply the provider's PUE to cloud runs that carry none (a user setting; off by default).
    apply_provider_pue: bool,
    /// `path_prefix → team` from `teams.csv`; the folder layout otherwise.
    team_mapping: Vec<(String, String)>,
    /// Accepted rows of every file, identical rows (a run copied into a `.bak`) kept once.
    rows: DataFrame,
    reports: Vec<FileReport>,
    summary: [Summary; 2],
}

fn slot(mode: DatasetMode) -> usize {
    match mode {
        DatasetMode::Latest => 0,
        DatasetMode::Codecarbon => 1,
    }
}

/// The names CodeCarbon gives its logs: `*.csv`, `*.csv.bak` and `*.csv_N.bak` (its rotations).
pub fn is_log_file(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if name.ends_with(".csv") || name.ends_with(".csv.bak") {
        return true;
    }
    name.strip_suffix(".bak")
        .and_then(|s| s.rsplit_once(".csv_"))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Log files under `dir`, recursively, sorted.
pub fn find_log_files(dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| IngestError::Io { path: d.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| IngestError::Io { path: d.clone(), source })?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|source| IngestError::Io { path: path.clone(), source })?;
            if kind.is_dir() {
                stack.push(path);
            } else if is_log_file(&entry.file_name().to_string_lossy()) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Optional team mapping at the root of a logs folder: `path_prefix,team` rows.
pub const TEAMS_FILE: &str = "teams.csv";

/// The team a file belongs to: the longest matching prefix of the mapping, else the first folder
/// of its path (`<team>/<project>/…`), else none (a file at the root).
pub fn team_of(path: &str, mapping: &[(String, String)]) -> Option<String> {
    let mapped = mapping.iter().filter(|(prefix, _)| path.starts_with(prefix.as_str())).max_by_key(|(p, _)| p.len());
    if let Some((_, team)) = mapped {
        return Some(team.clone());
    }
    path.split_once('/').map(|(first, _)| first.to_string()).filter(|t| !t.is_empty())
}

/// Reads `teams.csv` (`path_prefix,team`, a header line first).
pub fn read_team_mapping(text: &str) -> Vec<(String, String)> {
    crate::records::records(text)
        .skip(1)
        .filter(|r| r.fields.len() == 2)
        .map(|r| (r.fields[0].trim().to_string(), r.fields[1].trim().to_string()))
        .filter(|(p, t)| !p.is_empty() && !t.is_empty())
        .collect()
}

/// Reads every log file under `dir` in parallel; paths in reports are relative to `dir`.
pub fn load_dir(dir: &Path) -> Result<Catalog, IngestError> {
    let paths = find_log_files(dir)?;
    let mapping_path = dir.join(TEAMS_FILE);
    let mapping = match std::fs::read_to_string(&mapping_path) {
        Ok(text) => read_team_mapping(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(IngestError::Io { path: mapping_path, source }),
    };
    let parsed: Result<Vec<ParsedFile>, IngestError> = paths
        .par_iter()
        .map(|p| {
            let display = p.strip_prefix(dir).unwrap_or(p).to_string_lossy().replace('\\', "/");
            ingest::ingest_path(p, &display)
        })
        .collect();
    let mut cat = Catalog { team_mapping: mapping, ..Catalog::default() };
    for f in parsed? {
        cat.files.insert(f.report.path.clone(), f);
    }
    cat.rebuild()?;
    Ok(cat)
}

fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    Ok(df.column(name)?.str()?.iter().map(|o| o.map(str::to_string)).collect())
}

fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.iter().collect())
}

/// Naive local time as CodeCarbon wrote it (stored as milliseconds of a UTC clock).
pub fn format_ms(ms: f64) -> Option<String> {
    DateTime::from_timestamp_millis(ms.round() as i64).map(|d| d.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
}

const START_MS: &str = "start_ms";
const COUNT: &str = "row_count";

impl Catalog {
    pub fn from_files(files: Vec<ParsedFile>) -> Result<Catalog, IngestError> {
        let mut cat =
            Catalog { files: files.into_iter().map(|f| (f.report.path.clone(), f)).collect(), ..Catalog::default() };
        cat.rebuild()?;
        Ok(cat)
    }

    /// Adds or replaces one file, then rebuilds the runs.
    pub fn upsert(&mut self, file: ParsedFile) -> Result<(), IngestError> {
        self.upsert_all([file])
    }

    /// Adds or replaces several files, then rebuilds the runs once.
    pub fn upsert_all(&mut self, files: impl IntoIterator<Item = ParsedFile>) -> Result<(), IngestError> {
        for file in files {
            self.files.insert(file.report.path.clone(), file);
        }
        self.rebuild()
    }

    /// Forgets one file, then rebuilds the runs.
    pub fn remove(&mut self, path: &str) -> Result<(), IngestError> {
        self.files.remove(path);
        self.rebuild()
    }

    /// The map page for a what-if query: the selection's ranking over the regions that pass the
    /// filters, and the world map with those regions (latest dataset).
    pub fn map_page(&self, q: &crate::query::WhatIfQuery) -> crate::model::MapPage {
        let grid = Grid::embedded();
        let all = crate::whatif::regions(grid);
        let runs: Vec<&Run> = self.runs(DatasetMode::Latest).iter().filter(|r| q.selects(r)).collect();
        let whatif = crate::whatif::what_if(&q.label(), &runs, &all, &q.filters);
        let shown: Vec<crate::model::RegionRow> = all
            .iter()
            .filter(|r| whatif.options.iter().any(|o| o.provider == r.provider && o.region == r.region))
            .cloned()
            .collect();
        let sel = crate::map::Selection { energy_kwh: whatif.energy_kwh, current_co2_kg: whatif.current_co2_kg };
        let svg = crate::map::world_svg(grid, &shown, sel, q.region.as_deref());
        let mut providers: Vec<String> = all.iter().map(|r| r.provider.clone()).collect();
        providers.sort();
        providers.dedup();
        let mut continents: Vec<String> = all.iter().map(|r| r.continent.clone()).collect();
        continents.sort();
        continents.dedup();
        let selected = q
            .region
            .as_deref()
            .and_then(|id| all.iter().find(|r| format!("{}/{}", r.provider, r.region) == id))
            .cloned();
        let mut projects: Vec<String> =
            self.runs(DatasetMode::Latest).iter().filter_map(|r| r.project_name.clone()).collect();
        projects.sort();
        projects.dedup();
        crate::model::MapPage { whatif, svg, providers, continents, selected, projects }
    }

    /// Turns the provider-PUE setting on or off and reassesses the runs.
    pub fn set_apply_provider_pue(&mut self, on: bool) {
        self.apply_provider_pue = on;
        self.assess();
    }

    pub fn applies_provider_pue(&self) -> bool {
        self.apply_provider_pue
    }

    /// Runs assessed in `mode`, newest first.
    pub fn runs(&self, mode: DatasetMode) -> &[Run] {
        &self.runs[slot(mode)]
    }

    pub fn files(&self) -> &[FileReport] {
        &self.reports
    }

    pub fn summary(&self, mode: DatasetMode) -> &Summary {
        &self.summary[slot(mode)]
    }

    pub fn run(&self, run_id: &str, mode: DatasetMode) -> Option<&Run> {
        self.index.get(run_id).map(|&i| &self.runs[slot(mode)][i])
    }

    /// A run with its rows: checkpoints by duration, tasks in file order.
    pub fn run_detail(&self, run_id: &str, mode: DatasetMode) -> Result<Option<RunDetail>, IngestError> {
        let Some(run) = self.run(run_id, mode) else {
            return Ok(None);
        };
        // Eager operations only: this runs inside request handlers, where polars' lazy engine
        // would need a blocking context.
        let mask = self.rows.column(frame::RUN_ID)?.str()?.equal(run_id);
        let rows = self.rows.filter(&mask)?;
        let by: &[&str] =
            if run.tasks.is_empty() { &[c::DURATION, frame::FILE, frame::LINE] } else { &[frame::FILE, frame::LINE] };
        let rows = rows.sort(by.iter().copied(), SortMultipleOptions::default())?;
        let file = strs(&rows, frame::FILE)?;
        let line = f64s(&rows, frame::LINE)?;
        let ts = f64s(&rows, frame::TIMESTAMP_MS)?;
        let task = strs(&rows, c::TASK_NAME)?;
        let num = |n: &str| f64s(&rows, n);
        let (dur, energy, cpu, gpu, ram, co2) = (
            num(c::DURATION)?,
            num(frame::ENERGY_KWH)?,
            num(c::CPU_ENERGY)?,
            num(c::GPU_ENERGY)?,
            num(c::RAM_ENERGY)?,
            num(c::EMISSIONS)?,
        );
        let (cpu_p, gpu_p, ram_p) = (num(c::CPU_POWER)?, num(c::GPU_POWER)?, num(c::RAM_POWER)?);
        let (cpu_u, gpu_u, ram_u) =
            (num(c::CPU_UTILIZATION_PERCENT)?, num(c::GPU_UTILIZATION_PERCENT)?, num(c::RAM_UTILIZATION_PERCENT)?);
        let checkpoints = (0..rows.height())
            .map(|i| Checkpoint {
                file: file[i].clone().unwrap_or_default(),
                line: line[i].unwrap_or(0.0) as usize,
                timestamp: ts[i].and_then(format_ms),
                task_name: task[i].clone(),
                duration_s: dur[i],
                energy_kwh: energy[i],
                cpu_energy_kwh: cpu[i],
                gpu_energy_kwh: gpu[i],
                ram_energy_kwh: ram[i],
                co2_kg_reported: co2[i],
                cpu_power_w: cpu_p[i],
                gpu_power_w: gpu_p[i],
                ram_power_w: ram_p[i],
                cpu_utilization_percent: cpu_u[i],
                gpu_utilization_percent: gpu_u[i],
                ram_utilization_percent: ram_u[i],
            })
            .collect();
        Ok(Some(RunDetail { run: run.clone(), checkpoints }))
    }

    fn rebuild(&mut self) -> Result<(), IngestError> {
        let mut frames = self.files.values().map(|f| &f.frame);
        let mut all = match frames.next() {
            Some(f) => f.clone(),
            None => ingest::ingest_bytes("", b"")?.frame,
        };
        for f in frames {
            all.vstack_mut(f)?;
        }
        all.rechunk_mut();
        // The same rows in a copy or a `.bak` are one checkpoint, not two.
        let key: Vec<String> =
            [frame::RUN_ID, c::TASK_NAME, frame::TIMESTAMP_MS, c::DURATION, frame::ENERGY_KWH, c::EMISSIONS]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let rows = all.unique_stable(Some(&key), UniqueKeepStrategy::First, None)?;

        let with_start = rows.clone().lazy().with_column(
            (col(frame::TIMESTAMP_MS).cast(DataType::Float64) - col(c::DURATION).fill_null(lit(0.0)) * lit(1000.0))
                .alias(START_MS),
        );
        let value_cols: Vec<String> = rows
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .filter(|n| n != frame::RUN_ID)
            .chain([START_MS.to_string()])
            .collect();
        // Checkpoint runs: every value from the row with the largest duration.
        let mut aggs: Vec<Expr> = value_cols
            .iter()
            .map(|n| col(n.as_str()).sort_by([col(c::DURATION)], SortMultipleOptions::default()).last())
            .collect();
        aggs.push(len().alias(COUNT));
        let checkpoint_runs = with_start
            .clone()
            .filter(col(c::TASK_NAME).is_null())
            .group_by([col(frame::RUN_ID)])
            .agg(aggs)
            .collect()?;
        // Task runs: each row is one task's own delta, so a run is their sum.
        let summed = [
            c::DURATION,
            frame::ENERGY_KWH,
            c::CPU_ENERGY,
            c::GPU_ENERGY,
            c::RAM_ENERGY,
            c::EMISSIONS,
            c::WATER_CONSUMED,
        ];
        let mut aggs: Vec<Expr> = value_cols
            .iter()
            .map(|n| {
                let e = col(n.as_str());
                if summed.contains(&n.as_str()) {
                    e.sum()
                } else if n == START_MS {
                    e.min()
                } else if n == frame::TIMESTAMP_MS {
                    e.max()
                } else {
                    e.sort_by([col(frame::LINE)], SortMultipleOptions::default()).last()
                }
            })
            .collect();
        aggs.push(len().alias(COUNT));
        let task_runs =
            with_start.filter(col(c::TASK_NAME).is_not_null()).group_by([col(frame::RUN_ID)]).agg(aggs).collect()?;

        let mut tasks: HashMap<String, Vec<String>> = HashMap::new();
        if task_runs.height() > 0 {
            let ids = strs(&rows, frame::RUN_ID)?;
            let names = strs(&rows, c::TASK_NAME)?;
            for (id, name) in ids.into_iter().zip(names) {
                if let (Some(id), Some(name)) = (id, name) {
                    tasks.entry(id).or_default().push(name);
                }
            }
        }
        let mut sources: HashMap<String, Vec<String>> = HashMap::new();
        let mut reports = Vec::with_capacity(self.files.len());
        for (path, f) in &self.files {
            let ids: HashSet<Option<&str>> = f.frame.column(frame::RUN_ID)?.str()?.iter().collect();
            for id in ids.iter().flatten() {
                sources.entry(id.to_string()).or_default().push(path.clone());
            }
            let mut report = f.report.clone();
            report.runs = ids.len();
            reports.push(report);
        }

        let mut runs = Vec::new();
        for (df, is_task) in [(&checkpoint_runs, false), (&task_runs, true)] {
            runs.extend(to_runs(df, is_task, &mut tasks, &sources)?);
        }
        runs.sort_by(|a, b| b.ended_at.cmp(&a.ended_at).then_with(|| a.run_id.cmp(&b.run_id)));
        runs.dedup_by(|a, b| a.run_id == b.run_id);
        for r in runs.iter_mut() {
            r.team = r.source_files.first().and_then(|f| team_of(f, &self.team_mapping));
        }
        self.index = runs.iter().enumerate().map(|(i, r)| (r.run_id.clone(), i)).collect();
        self.runs = [runs.clone(), runs];
        self.reports = reports;
        self.rows = rows;
        self.assess();
        Ok(())
    }

    /// Recomputes every run's CO2 in both dataset modes, then the summaries.
    fn assess(&mut self) {
        let grid = Grid::embedded();
        for mode in [DatasetMode::Latest, DatasetMode::Codecarbon] {
            let runs = &mut self.runs[slot(mode)];
            for r in runs.iter_mut() {
                r.assessment = grid.assess(r, mode, self.apply_provider_pue);
            }
            explain_constant_gaps(runs);
            self.summary[slot(mode)] = Summary::build(runs, &self.reports);
        }
    }
}

/// A gap no embedded figure explains, but whose implied intensity recurs in several runs at one
/// place, is a static figure of an older CodeCarbon release (its data files changed since); live
/// values (Electricity Maps) vary from run to run, so a one-off stays unexplained.
fn explain_constant_gaps(runs: &mut [Run]) {
    use crate::model::{DeltaKind, DeltaReason};
    fn key(r: &Run) -> Option<(String, String)> {
        let imp = r.assessment.implied_intensity_g_per_kwh?;
        let place = [&r.cloud_provider, &r.cloud_region, &r.country_iso_code]
            .map(|x| x.as_deref().unwrap_or("").to_lowercase())
            .join("/");
        Some((place, format!("{imp:.3e}")))
    }
    let unknown = |r: &Run| r.assessment.delta_reason.as_ref().is_some_and(|d| d.kind == DeltaKind::LiveOrUnknown);
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    for r in runs.iter().filter(|r| unknown(r)) {
        if let Some(k) = key(r) {
            *counts.entry(k).or_default() += 1;
        }
    }
    for r in runs.iter_mut().filter(|r| unknown(r)) {
        let n = key(r).and_then(|k| counts.get(&k).copied()).unwrap_or(0);
        if n >= 2 {
            let version = r.codecarbon_version.clone().unwrap_or_else(|| format!("({} layout)", r.schema));
            r.assessment.delta_reason = Some(DeltaReason {
                kind: DeltaKind::OlderCodecarbonData,
                detail: format!(
                    "the CSV implies {:.1} g/kWh, as do {} runs at this place: a static figure of CodeCarbon {version}'s \
                     data, since updated (recomputed with {:.1})",
                    r.assessment.implied_intensity_g_per_kwh.unwrap_or(f64::NAN),
                    n - 1,
                    r.assessment.intensity_g_per_kwh
                ),
            });
        }
    }
}

fn to_runs(
    df: &DataFrame,
    is_task: bool,
    tasks: &mut HashMap<String, Vec<String>>,
    sources: &HashMap<String, Vec<String>>,
) -> PolarsResult<Vec<Run>> {
    let s = |n: &str| strs(df, n);
    let f = |n: &str| f64s(df, n);
    let ids = s(frame::RUN_ID)?;
    let synthetic: Vec<Option<bool>> = df.column(frame::RUN_ID_SYNTHETIC)?.bool()?.iter().collect();
    let (project, experiment, country, iso, region, provider, cloud_region, on_cloud) = (
        s(c::PROJECT_NAME)?,
        s(c::EXPERIMENT_ID)?,
        s(c::COUNTRY_NAME)?,
        s(c::COUNTRY_ISO_CODE)?,
        s(c::REGION)?,
        s(c::CLOUD_PROVIDER)?,
        s(c::CLOUD_REGION)?,
        s(c::ON_CLOUD)?,
    );
    let (os, python, version, cpu_model, gpu_model, mode, schema, tags) = (
        s(c::OS)?,
        s(c::PYTHON_VERSION)?,
        s(c::CODECARBON_VERSION)?,
        s(c::CPU_MODEL)?,
        s(c::GPU_MODEL)?,
        s(c::TRACKING_MODE)?,
        s(frame::SCHEMA)?,
        s(frame::TAGS)?,
    );
    let (ts, start, dur, energy, cpu_e, gpu_e, ram_e, co2, rate) = (
        f(frame::TIMESTAMP_MS)?,
        f(START_MS)?,
        f(c::DURATION)?,
        f(frame::ENERGY_KWH)?,
        f(c::CPU_ENERGY)?,
        f(c::GPU_ENERGY)?,
        f(c::RAM_ENERGY)?,
        f(c::EMISSIONS)?,
        f(frame::RATE_KG_PER_S)?,
    );
    let (cpu_p, gpu_p, ram_p, water, cpu_n, gpu_n, lon, lat, ram_total) = (
        f(c::CPU_POWER)?,
        f(c::GPU_POWER)?,
        f(c::RAM_POWER)?,
        f(c::WATER_CONSUMED)?,
        f(c::CPU_COUNT)?,
        f(c::GPU_COUNT)?,
        f(c::LONGITUDE)?,
        f(c::LATITUDE)?,
        f(c::RAM_TOTAL_SIZE)?,
    );
    let (cpu_u, gpu_u, ram_u, ram_used, pue, count) = (
        f(c::CPU_UTILIZATION_PERCENT)?,
        f(c::GPU_UTILIZATION_PERCENT)?,
        f(c::RAM_UTILIZATION_PERCENT)?,
        f(c::RAM_USED_GB)?,
        f(c::PUE)?,
        f(COUNT)?,
    );
    let mut runs = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let Some(id) = ids[i].clone() else { continue };
        runs.push(Run {
            run_id_synthetic: synthetic[i].unwrap_or(false),
            project_name: project[i].clone(),
            experiment_id: experiment[i].clone(),
            started_at: start[i].and_then(format_ms),
            ended_at: ts[i].and_then(format_ms),
            duration_s: dur[i],
            energy_kwh: energy[i],
            cpu_energy_kwh: cpu_e[i],
            gpu_energy_kwh: gpu_e[i],
            ram_energy_kwh: ram_e[i],
            co2_kg_reported: co2[i],
            emissions_rate_kg_per_s: rate[i],
            cpu_power_w: cpu_p[i],
            gpu_power_w: gpu_p[i],
            ram_power_w: ram_p[i],
            water_l: water[i],
            country_name: country[i].clone(),
            country_iso_code: iso[i].clone(),
            region: region[i].clone(),
            cloud_provider: provider[i].clone(),
            cloud_region: cloud_region[i].clone(),
            on_cloud: on_cloud[i].clone(),
            os: os[i].clone(),
            python_version: python[i].clone(),
            codecarbon_version: version[i].clone(),
            cpu_count: cpu_n[i],
            cpu_model: cpu_model[i].clone(),
            gpu_count: gpu_n[i],
            gpu_model: gpu_model[i].clone(),
            longitude: lon[i],
            latitude: lat[i],
            ram_total_size_gb: ram_total[i],
            tracking_mode: mode[i].clone(),
            cpu_utilization_percent: cpu_u[i],
            gpu_utilization_percent: gpu_u[i],
            ram_utilization_percent: ram_u[i],
            ram_used_gb: ram_used[i],
            pue: pue[i],
            checkpoints: count[i].unwrap_or(0.0) as usize,
            tasks: if is_task { tasks.remove(&id).unwrap_or_default() } else { Vec::new() },
            schema: schema[i].clone().unwrap_or_default(),
            source_files: sources.get(&id).cloned().unwrap_or_default(),
            team: None,
            tags: tags[i].as_deref().map(decode_tags).unwrap_or_default(),
            assessment: Default::default(),
            run_id: id,
        });
    }
    Ok(runs)
}
