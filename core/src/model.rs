//! The run model shared by the server and the browser: plain serde types and pure functions over
//! them (no parsing, no formatting for display).

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// One training run: the totals of its last checkpoint (or, for task files, the sum of its tasks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Run {
    pub run_id: String,
    /// `run_id` was missing and this id was made up from the row (see the file's problems).
    pub run_id_synthetic: bool,
    pub project_name: Option<String>,
    pub experiment_id: Option<String>,
    /// From the folder layout under the logs directory (`<team>/…/emissions.csv`) or `teams.csv`.
    pub team: Option<String>,
    /// Naive local time, as CodeCarbon wrote it: end minus duration.
    #[serde(with = "crate::time::opt_iso", default)]
    pub started_at: Option<Timestamp>,
    /// Timestamp of the last checkpoint.
    #[serde(with = "crate::time::opt_iso", default)]
    pub ended_at: Option<Timestamp>,
    pub duration_s: Option<f64>,
    /// Total energy, kWh, PUE already included by CodeCarbon.
    pub energy_kwh: Option<f64>,
    pub cpu_energy_kwh: Option<f64>,
    pub gpu_energy_kwh: Option<f64>,
    pub ram_energy_kwh: Option<f64>,
    /// The CSV's `emissions` column, kg CO2eq.
    pub co2_kg_reported: Option<f64>,
    /// Normalised to kg/s whatever the version wrote (v2.0–2.1 wrote g/s).
    pub emissions_rate_kg_per_s: Option<f64>,
    pub cpu_power_w: Option<f64>,
    pub gpu_power_w: Option<f64>,
    pub ram_power_w: Option<f64>,
    pub water_l: Option<f64>,
    pub country_name: Option<String>,
    pub country_iso_code: Option<String>,
    pub region: Option<String>,
    pub cloud_provider: Option<String>,
    pub cloud_region: Option<String>,
    pub on_cloud: Option<String>,
    pub os: Option<String>,
    pub python_version: Option<String>,
    pub codecarbon_version: Option<String>,
    pub cpu_count: Option<f64>,
    pub cpu_model: Option<String>,
    pub gpu_count: Option<f64>,
    pub gpu_model: Option<String>,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
    pub ram_total_size_gb: Option<f64>,
    pub tracking_mode: Option<String>,
    pub cpu_utilization_percent: Option<f64>,
    pub gpu_utilization_percent: Option<f64>,
    pub ram_utilization_percent: Option<f64>,
    pub ram_used_gb: Option<f64>,
    pub pue: Option<f64>,
    /// Rows read for this run (checkpoints, or tasks for task files), duplicates across files counted once.
    pub checkpoints: usize,
    /// Task names, for runs written by `start_task`/`stop_task`.
    pub tasks: Vec<String>,
    /// Header generation of the file the totals come from, e.g. "v3.2".
    pub schema: String,
    pub source_files: Vec<String>,
    /// Columns CodeCarbon does not write, kept as the user's tags (name, value).
    pub tags: Vec<(String, String)>,
    /// Where the run came from: log files, or trackers posting to this server.
    #[serde(default)]
    pub source: RunSource,
    /// The tracker that wrote the run's logs when it is not CodeCarbon ("carbontracker",
    /// "eco2AI", "Zeus", "experiment-impact-tracker"): see [`Run::tool_name`].
    #[serde(default)]
    pub tool: Option<String>,
    /// That tracker's version, where its logs say it.
    #[serde(default)]
    pub tool_version: Option<String>,
    /// What that tracker's own CO2 figure rests on: its intensity and where it came from, its
    /// PUE, its location guess (explains the gap to the recomputation).
    #[serde(default)]
    pub tool_basis: Option<String>,
    /// CO2 recomputed from the energy with the embedded dataset (see [`Assessment`]).
    #[serde(flatten)]
    pub assessment: Assessment,
}

/// The tracker of runs that name none.
pub const CODECARBON: &str = "CodeCarbon";

impl Run {
    /// The tracker that wrote the run: its [`Run::tool`], or CodeCarbon.
    pub fn tool_name(&self) -> &str {
        self.tool.as_deref().unwrap_or(CODECARBON)
    }

    /// The tracker and its version, e.g. "carbontracker 2.4.7" or "CodeCarbon 3.3.2".
    pub fn tool_label(&self) -> String {
        let version = if self.tool.is_some() { &self.tool_version } else { &self.codecarbon_version };
        match version {
            Some(v) => format!("{} {v}", self.tool_name()),
            None => self.tool_name().to_string(),
        }
    }
}

/// Where a run's records came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RunSource {
    /// CodeCarbon's `emissions.csv` files (a logs folder, an upload, the demo).
    #[default]
    File,
    /// A CodeCarbon tracker posting to this server's collection API (`--collect`).
    Collected,
}

impl RunSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RunSource::File => "file",
            RunSource::Collected => "collected",
        }
    }
}

/// Which embedded figures CO2 is recomputed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DatasetMode {
    /// The newest figure per place (Ember, Google 2024, eGRID2023, …).
    #[default]
    Latest,
    /// Exactly CodeCarbon 3.3.2's figures and lookup order.
    Codecarbon,
}

impl DatasetMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetMode::Latest => "latest",
            DatasetMode::Codecarbon => "codecarbon",
        }
    }

    pub fn parse(s: &str) -> Option<DatasetMode> {
        match s {
            "latest" => Some(DatasetMode::Latest),
            "codecarbon" => Some(DatasetMode::Codecarbon),
            _ => None,
        }
    }
}

/// How precisely the run's location was matched to a grid figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LocationResolution {
    CloudRegion,
    Subnational,
    National,
    /// Nothing matched: the world average, flagged.
    #[default]
    World,
}

/// A run's CO2 recomputed from its energy: value, range, and where each figure comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Assessment {
    pub dataset: DatasetMode,
    /// energy × intensity, kg CO2e; `None` when the run has no energy.
    pub co2_kg: Option<f64>,
    pub co2_kg_low: Option<f64>,
    pub co2_kg_high: Option<f64>,
    pub energy_kwh_low: Option<f64>,
    pub energy_kwh_high: Option<f64>,
    /// Why the energy range is what it is ("GPU: NVML reading ±5 %; CPU: …").
    pub energy_method: String,
    pub intensity_g_per_kwh: f64,
    pub intensity_low_g_per_kwh: f64,
    pub intensity_high_g_per_kwh: f64,
    /// Source id (see `GET /api/v1/datasets`) and data year of the intensity.
    pub intensity_source: String,
    pub intensity_year: u16,
    pub location_resolution: LocationResolution,
    /// "grid of Virginia, US — US EPA, 2023".
    pub location_label: String,
    /// What the CSV implies: emissions ÷ energy, g/kWh.
    pub implied_intensity_g_per_kwh: Option<f64>,
    /// Set when the CSV's CO2 and the recomputed one differ by more than 0.5 %.
    pub delta_reason: Option<DeltaReason>,
    /// Provider PUE applied by carbon-dash (only on request, only to rows without a `pue`).
    pub pue_applied: Option<f64>,
}

/// Why the CSV's emissions differ from the recomputation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeltaReason {
    pub kind: DeltaKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum DeltaKind {
    /// The CSV used CodeCarbon's own current figure; this dataset has a newer one.
    NewerData,
    /// The CSV used figures of an older CodeCarbon release.
    OlderCodecarbonData,
    /// CodeCarbon fell back to its 475 g/kWh world average.
    WorldAverageFallback,
    /// One side used the national figure, the other a sub-national one.
    NationalVsSubnational,
    /// The difference is the PUE factor.
    Pue,
    /// No embedded figure explains it: a live Electricity Maps value or a forced intensity.
    LiveOrUnknown,
    /// Another tracker's own intensity and PUE (see [`Run::tool_basis`]).
    OtherTool,
}

impl DeltaKind {
    pub fn label(self) -> &'static str {
        match self {
            DeltaKind::NewerData => "newer data than CodeCarbon's",
            DeltaKind::OlderCodecarbonData => "older CodeCarbon data",
            DeltaKind::WorldAverageFallback => "CodeCarbon's world-average fallback",
            DeltaKind::NationalVsSubnational => "national vs sub-national figure",
            DeltaKind::Pue => "PUE",
            DeltaKind::LiveOrUnknown => "live Electricity Maps value or unknown figure",
            DeltaKind::OtherTool => "the other tracker's own intensity and PUE",
        }
    }
}

/// One source of the embedded data, shown with attribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub id: String,
    pub title: String,
    pub publisher: String,
    pub url: String,
    pub licence: String,
    pub year: u16,
}

/// An everyday equivalent of a run's CO2 or energy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Equivalent {
    pub id: String,
    pub label: String,
    /// How many (e.g. 12.3 km).
    pub amount: f64,
    pub amount_low: f64,
    pub amount_high: f64,
    /// The factor: value and unit ("106.6 g CO2 per km").
    pub factor: f64,
    pub factor_unit: String,
    pub source: Source,
    pub note: String,
}

/// One row of a run as written: a cumulative checkpoint, or one task's own delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Checkpoint {
    pub file: String,
    pub line: usize,
    #[serde(with = "crate::time::opt_iso", default)]
    pub timestamp: Option<Timestamp>,
    pub task_name: Option<String>,
    pub duration_s: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub cpu_energy_kwh: Option<f64>,
    pub gpu_energy_kwh: Option<f64>,
    pub ram_energy_kwh: Option<f64>,
    pub co2_kg_reported: Option<f64>,
    pub cpu_power_w: Option<f64>,
    pub gpu_power_w: Option<f64>,
    pub ram_power_w: Option<f64>,
    /// CodeCarbon 3.2+ writes utilisation, %.
    pub cpu_utilization_percent: Option<f64>,
    pub gpu_utilization_percent: Option<f64>,
    pub ram_utilization_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    pub run: Run,
    pub checkpoints: Vec<Checkpoint>,
}

/// Something wrong with a row or the file: rejected rows are not counted, warnings are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// 1-based line in the file (0: the file as a whole).
    pub line: usize,
    /// 1-based column of the field concerned, when one is.
    pub column: Option<usize>,
    pub column_name: Option<String>,
    pub reason: String,
    pub rejected: bool,
}

/// What the ingest made of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FileReport {
    pub path: String,
    /// Header generation label, e.g. "v3.2", with "task" for task files.
    pub schema: String,
    /// Human description: "38 columns — CodeCarbon 3.2.x and later".
    pub schema_detail: String,
    pub columns: usize,
    pub encoding: String,
    pub rows_read: usize,
    pub rows_rejected: usize,
    pub runs: usize,
    pub extra_columns: Vec<String>,
    pub missing_columns: Vec<String>,
    pub reordered: bool,
    /// All problems found; `problems` may hold only the first ones (pages cap it).
    pub problem_count: usize,
    pub problems: Vec<Problem>,
    /// A metrics file: how it joined to runs, in words (see `metrics::FileJoin::note`).
    #[serde(default)]
    pub join: Option<String>,
    /// A metrics file none of whose values reached a run.
    #[serde(default)]
    pub join_failed: bool,
}

/// Totals of a set of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Totals {
    pub runs: usize,
    pub energy_kwh: f64,
    pub co2_kg_reported: f64,
    /// Recomputed CO2 and its range: sums of the runs' values, lows and highs (a sound bound
    /// whatever the correlation between runs).
    pub co2_kg: f64,
    pub co2_kg_low: f64,
    pub co2_kg_high: f64,
    /// Energy range: sums of the runs' lows and highs.
    pub energy_kwh_low: f64,
    pub energy_kwh_high: f64,
    pub duration_s: f64,
    /// Runs that carry no energy figure (counted in `runs`, not in `energy_kwh`).
    pub runs_without_energy: usize,
}

impl Totals {
    pub fn add(&mut self, run: &Run) {
        self.runs += 1;
        match run.energy_kwh {
            Some(e) => self.energy_kwh += e,
            None => self.runs_without_energy += 1,
        }
        self.co2_kg_reported += run.co2_kg_reported.unwrap_or(0.0);
        self.duration_s += run.duration_s.unwrap_or(0.0);
        let a = &run.assessment;
        self.co2_kg += a.co2_kg.unwrap_or(0.0);
        self.co2_kg_low += a.co2_kg_low.unwrap_or(0.0);
        self.co2_kg_high += a.co2_kg_high.unwrap_or(0.0);
        self.energy_kwh_low += a.energy_kwh_low.unwrap_or(0.0);
        self.energy_kwh_high += a.energy_kwh_high.unwrap_or(0.0);
    }

    /// Adds up totals (of experiments into a project, say).
    pub fn merge(&mut self, o: &Totals) {
        self.runs += o.runs;
        self.energy_kwh += o.energy_kwh;
        self.co2_kg_reported += o.co2_kg_reported;
        self.co2_kg += o.co2_kg;
        self.co2_kg_low += o.co2_kg_low;
        self.co2_kg_high += o.co2_kg_high;
        self.energy_kwh_low += o.energy_kwh_low;
        self.energy_kwh_high += o.energy_kwh_high;
        self.duration_s += o.duration_s;
        self.runs_without_energy += o.runs_without_energy;
    }

    pub fn of<'a>(runs: impl IntoIterator<Item = &'a Run>) -> Totals {
        let mut t = Totals::default();
        for r in runs {
            t.add(r);
        }
        t
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLeaf {
    pub run_id: String,
    #[serde(with = "crate::time::opt_iso", default)]
    pub started_at: Option<Timestamp>,
    pub energy_kwh: Option<f64>,
    pub co2_kg_reported: Option<f64>,
    pub co2_kg: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentNode {
    pub experiment_id: String,
    pub totals: Totals,
    /// The most recent runs, at most [`MAX_LEAVES`]; `totals.runs` counts them all.
    pub runs: Vec<RunLeaf>,
}

/// Runs listed per experiment in the overview tree (the Runs page lists them all).
pub const MAX_LEAVES: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectNode {
    pub project_name: String,
    pub totals: Totals,
    pub experiments: Vec<ExperimentNode>,
    /// Experiments in the project (the overview page lists only the first ones).
    #[serde(default)]
    pub experiments_total: usize,
}

/// The overview: totals, the project → experiment → run tree, and the ingest counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Summary {
    pub dataset: DatasetMode,
    pub totals: Totals,
    pub files: usize,
    pub rows_read: usize,
    pub rows_rejected: usize,
    #[serde(with = "crate::time::opt_iso", default)]
    pub first_run: Option<Timestamp>,
    #[serde(with = "crate::time::opt_iso", default)]
    pub last_run: Option<Timestamp>,
    pub projects: Vec<ProjectNode>,
}

/// Label used in the tree for runs without a project or experiment.
pub const UNNAMED: &str = "(none)";

impl Summary {
    /// The summary with every project's totals but no experiments (`project`: `None`), or with
    /// one project only, its experiments and their latest runs included.
    pub fn view(&self, project: Option<&str>) -> Summary {
        let projects = match project {
            None => self
                .projects
                .iter()
                .map(|p| ProjectNode {
                    project_name: p.project_name.clone(),
                    totals: p.totals.clone(),
                    experiments: Vec::new(),
                    experiments_total: p.experiments.len(),
                })
                .collect(),
            Some(name) => self.projects.iter().filter(|p| p.project_name == name).cloned().collect(),
        };
        Summary { projects, ..self.clone_without_tree() }
    }

    pub(crate) fn clone_without_tree(&self) -> Summary {
        Summary {
            dataset: self.dataset,
            totals: self.totals.clone(),
            files: self.files,
            rows_read: self.rows_read,
            rows_rejected: self.rows_rejected,
            first_run: self.first_run,
            last_run: self.last_run,
            projects: Vec::new(),
        }
    }

    /// Builds the overview from runs (any order) and file reports. Projects and experiments are
    /// sorted by name, runs by start time.
    pub fn build<R: std::borrow::Borrow<Run>>(runs: &[R], files: &[FileReport]) -> Summary {
        use std::collections::BTreeMap;
        let mut tree: BTreeMap<&str, BTreeMap<&str, Vec<&Run>>> = BTreeMap::new();
        for r in runs.iter().map(|r| r.borrow()) {
            tree.entry(r.project_name.as_deref().unwrap_or(UNNAMED))
                .or_default()
                .entry(r.experiment_id.as_deref().unwrap_or(UNNAMED))
                .or_default()
                .push(r);
        }
        let projects = tree
            .into_iter()
            .map(|(project, exps)| {
                let experiments: Vec<ExperimentNode> = exps
                    .into_iter()
                    .map(|(exp, mut rs)| {
                        rs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
                        ExperimentNode {
                            experiment_id: exp.to_string(),
                            totals: Totals::of(rs.iter().copied()),
                            runs: rs
                                .iter()
                                .take(MAX_LEAVES)
                                .map(|r| RunLeaf {
                                    run_id: r.run_id.clone(),
                                    started_at: r.started_at,
                                    energy_kwh: r.energy_kwh,
                                    co2_kg_reported: r.co2_kg_reported,
                                    co2_kg: r.assessment.co2_kg,
                                })
                                .collect(),
                        }
                    })
                    .collect();
                let mut totals = Totals::default();
                for e in &experiments {
                    totals.merge(&e.totals);
                }
                ProjectNode {
                    project_name: project.to_string(),
                    totals,
                    experiments_total: experiments.len(),
                    experiments,
                }
            })
            .collect();
        Summary {
            dataset: runs.first().map(|r| r.borrow().assessment.dataset).unwrap_or_default(),
            totals: Totals::of(runs.iter().map(|r| r.borrow())),
            files: files.len(),
            rows_read: files.iter().map(|f| f.rows_read).sum(),
            rows_rejected: files.iter().map(|f| f.rows_rejected).sum(),
            first_run: runs.iter().filter_map(|r| r.borrow().started_at).min(),
            last_run: runs.iter().filter_map(|r| r.borrow().ended_at).max(),
            projects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::{EXPERIMENTS_SHOWN, LEAVES_SHOWN, PROJECTS_PER_PAGE};

    fn run(id: &str, project: Option<&str>, kwh: Option<f64>) -> Run {
        Run {
            run_id: id.into(),
            project_name: project.map(Into::into),
            experiment_id: Some("e".into()),
            energy_kwh: kwh,
            co2_kg_reported: kwh.map(|k| k * 0.5),
            ..Run::default()
        }
    }

    #[test]
    fn summary_tree_totals_add_up_and_unnamed_runs_are_grouped() {
        let runs = vec![run("a", Some("p"), Some(1.0)), run("b", Some("p"), Some(2.0)), run("c", None, None)];
        let s = Summary::build(&runs, &[]);
        assert_eq!(s.totals.runs, 3);
        assert_eq!(s.totals.energy_kwh, 3.0);
        assert_eq!(s.totals.runs_without_energy, 1);
        assert_eq!(s.projects.len(), 2);
        assert_eq!(s.projects[0].project_name, UNNAMED);
        assert_eq!(s.projects[1].totals.energy_kwh, 3.0);
        assert_eq!(s.projects[1].experiments[0].runs.len(), 2);
    }

    #[test]
    fn the_overview_page_holds_a_bounded_slice_of_the_tree() {
        let runs: Vec<Run> = (0..(PROJECTS_PER_PAGE + 3))
            .flat_map(|p| {
                (0..(EXPERIMENTS_SHOWN + 2)).flat_map(move |e| {
                    (0..(LEAVES_SHOWN + 1)).map(move |r| Run {
                        run_id: format!("{p}-{e}-{r}"),
                        project_name: Some(format!("p{p:02}")),
                        experiment_id: Some(format!("e{e:02}")),
                        energy_kwh: Some(1.0),
                        ..Run::default()
                    })
                })
            })
            .collect();
        let s = Summary::build(&runs, &[]);
        let first = s.overview_page(1);
        assert_eq!((first.page, first.pages, first.projects_total), (1, 2, PROJECTS_PER_PAGE + 3));
        assert_eq!(first.summary.projects.len(), PROJECTS_PER_PAGE);
        let p = &first.summary.projects[0];
        assert_eq!((p.experiments.len(), p.experiments_total), (EXPERIMENTS_SHOWN, EXPERIMENTS_SHOWN + 2));
        assert_eq!(p.experiments[0].runs.len(), LEAVES_SHOWN);
        assert_eq!(p.experiments[0].totals.runs, LEAVES_SHOWN + 1, "totals count every run");
        assert_eq!(first.summary.totals, s.totals);
        let last = s.overview_page(99);
        assert_eq!((last.page, last.summary.projects.len()), (2, 3));
    }
}

/// What `GET /api/v1/datasets` and the Data page show about the embedded data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DatasetInfo {
    pub version: String,
    pub modes: Vec<String>,
    pub figures_latest: usize,
    pub figures_codecarbon: usize,
    pub cloud_regions: usize,
    pub sources: Vec<Source>,
    /// (provider, PUE, source id)
    pub provider_pue: Vec<(String, f64, String)>,
    /// (how the energy was obtained, relative error)
    pub energy_errors: Vec<(String, f64)>,
    pub intensity_min_spread: f64,
    pub world_range_g_per_kwh: (f64, f64),
    pub applies_provider_pue: bool,
}

/// A cloud region with the grid intensity it runs on (latest dataset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionRow {
    pub provider: String,
    pub region: String,
    pub name: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    pub country_iso_code: String,
    pub continent: String,
    pub intensity_g_per_kwh: f64,
    pub intensity_low_g_per_kwh: f64,
    pub intensity_high_g_per_kwh: f64,
    pub source: String,
    pub year: u16,
    /// "gcp us-central1 — Google Cloud, 2024" or "grid of Virginia, US — US EPA, 2023".
    pub label: String,
    /// Google's carbon-free energy share, beside (not instead of) the grid intensity.
    pub google_cfe_pct: Option<f64>,
}

/// One region of a what-if ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIfOption {
    pub provider: String,
    pub region: String,
    pub name: String,
    pub country_iso_code: String,
    pub continent: String,
    pub intensity_g_per_kwh: f64,
    /// The selection's energy × this region's intensity.
    pub co2_kg: f64,
    pub co2_kg_low: f64,
    pub co2_kg_high: f64,
    /// Current CO2 minus this region's (negative: worse).
    pub saving_kg: f64,
    pub saving_pct: f64,
    pub distance_km: Option<f64>,
}

/// "How much lower would this have been elsewhere?" for a selection of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct WhatIf {
    /// "run 2c7f0b79", "project resnet50-imagenet", "all runs".
    pub selection: String,
    pub runs: usize,
    pub energy_kwh: f64,
    /// The selection's recomputed CO2 where it ran (latest dataset).
    pub current_co2_kg: f64,
    /// How many places it ran at (by their location labels), and the place when only one.
    pub places: usize,
    pub place: Option<String>,
    /// The regions that pass the filters, lowest CO2 first.
    pub options: Vec<WhatIfOption>,
    pub advice: Advice,
    pub filters: crate::query::WhatIfFilters,
    /// Whether where it ran has coordinates (otherwise `within_km` is ignored).
    pub origin_known: bool,
}

/// What the what-if recommends, as data: the pages put it into words.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Advice {
    /// No region passes the filters.
    #[default]
    NoRegion,
    /// The selection has no energy figure: moving it changes nothing countable.
    NoEnergy,
    /// Where it ran is as clean as the first option.
    AlreadyCleanest,
    /// Move to the first option; its saving is about `car_km` km by a new EU car.
    Move { car_km: f64 },
}
