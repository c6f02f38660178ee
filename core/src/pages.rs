//! What each page and JSON answer carries: bounded slices of the model, shaped for one view
//! (the domain types are in [`crate::model`]).

use crate::model::*;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Everything a run's page shows, fetched (and carried to the browser) once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPageData {
    /// The run, with its checkpoints thinned to at most `MAX_CHECKPOINT_ROWS` evenly spaced
    /// rows (the last one kept); the JSON API has them all.
    pub detail: RunDetail,
    pub checkpoints_total: usize,
    pub equivalents: Vec<Equivalent>,
    pub charts: Vec<Chart>,
    /// Model metrics joined to the run: (name, value, the file it came from and how it joined).
    #[serde(default)]
    pub metrics: Vec<(String, f64, String)>,
    /// Its hyper-parameters, as written.
    #[serde(default)]
    pub params: Vec<(String, String)>,
}

/// Checkpoint rows a run page lists at most.
pub const MAX_CHECKPOINT_ROWS: usize = 400;

/// At most [`MAX_CHECKPOINT_ROWS`] evenly spaced rows, the last one always kept.
pub fn thin(rows: Vec<Checkpoint>) -> Vec<Checkpoint> {
    let n = rows.len();
    if n <= MAX_CHECKPOINT_ROWS {
        return rows;
    }
    let step = n as f64 / (MAX_CHECKPOINT_ROWS - 1) as f64;
    let keep: std::collections::BTreeSet<usize> =
        (0..MAX_CHECKPOINT_ROWS - 1).map(|i| (i as f64 * step) as usize).chain([n - 1]).collect();
    rows.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, c)| c).collect()
}

/// Files per page of the Files page.
pub const FILES_PER_PAGE: usize = 100;

/// One page of the Files page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FilesPage {
    /// This page's files, their problems cut to the first ones.
    pub files: Vec<FileReport>,
    pub total: usize,
    /// Files with at least one problem, on every page.
    pub with_problems: usize,
    /// 1-based page shown, and page count.
    pub page: usize,
    pub pages: usize,
    /// Why changes to the logs folder may not be seen live (the watcher failed).
    pub watch_problem: Option<String>,
}

impl FilesPage {
    /// Page `page` (1-based, clamped) of `files`, each with at most `max_problems` problems.
    pub fn of(files: &[FileReport], page: usize, max_problems: usize) -> FilesPage {
        let pages = files.len().div_ceil(FILES_PER_PAGE).max(1);
        let page = page.clamp(1, pages);
        FilesPage {
            watch_problem: None,
            files: files
                .iter()
                .skip((page - 1) * FILES_PER_PAGE)
                .take(FILES_PER_PAGE)
                .map(|f| FileReport { problems: f.problems.iter().take(max_problems).cloned().collect(), ..f.clone() })
                .collect(),
            total: files.len(),
            // A metrics file that joined no run has something to say too.
            with_problems: files.iter().filter(|f| f.problem_count > 0 || f.join_failed).count(),
            page,
            pages,
        }
    }
}

/// Projects per page of the overview's tree, experiments and runs shown per project and
/// experiment there: the page stays small however many runs there are (the Runs page and the
/// JSON API have them all).
pub const PROJECTS_PER_PAGE: usize = 10;
pub const EXPERIMENTS_SHOWN: usize = 5;
pub const LEAVES_SHOWN: usize = 3;

/// The overview as its page shows it: the totals and one page of the project tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct OverviewPage {
    /// With `projects` holding this page's projects only, trimmed.
    pub summary: Summary,
    pub projects_total: usize,
    /// 1-based page shown, and page count.
    pub page: usize,
    pub pages: usize,
    /// Everyday equivalents of the totals.
    pub equivalents: Vec<Equivalent>,
    /// The monthly trend (drawn on the server).
    #[serde(default)]
    pub charts: Vec<Chart>,
    /// A small map of where the runs ran (SVG, drawn on the server), and what it leaves out.
    #[serde(default)]
    pub map_svg: String,
    #[serde(default)]
    pub map_note: String,
}

/// Where runs ran, for the small map: a place, its runs and their CO2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MapPlace {
    pub label: String,
    pub lon: f64,
    pub lat: f64,
    pub runs: usize,
    pub co2_kg: f64,
    pub g_per_kwh: f64,
}

impl Summary {
    /// Page `page` (1-based, clamped) of the project tree, each project with its first
    /// experiments and each experiment with its latest runs.
    pub fn overview_page(&self, page: usize) -> OverviewPage {
        let pages = self.projects.len().div_ceil(PROJECTS_PER_PAGE).max(1);
        let page = page.clamp(1, pages);
        let projects = self
            .projects
            .iter()
            .skip((page - 1) * PROJECTS_PER_PAGE)
            .take(PROJECTS_PER_PAGE)
            .map(|p| ProjectNode {
                project_name: p.project_name.clone(),
                totals: p.totals.clone(),
                experiments: p
                    .experiments
                    .iter()
                    .take(EXPERIMENTS_SHOWN)
                    .map(|e| ExperimentNode {
                        experiment_id: e.experiment_id.clone(),
                        totals: e.totals.clone(),
                        runs: e.runs.iter().take(LEAVES_SHOWN).cloned().collect(),
                    })
                    .collect(),
                experiments_total: p.experiments.len(),
            })
            .collect();
        OverviewPage {
            summary: Summary { projects, ..self.clone_without_tree() },
            projects_total: self.projects.len(),
            page,
            pages,
            equivalents: Vec::new(),
            charts: Vec::new(),
            map_svg: String::new(),
            map_note: String::new(),
        }
    }
}

/// A run as one row of the Runs table shows it: only the fields it has columns for (a whole
/// [`Run`] is about ten times larger).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunRow {
    pub run_id: String,
    pub project_name: Option<String>,
    pub experiment_id: Option<String>,
    #[serde(with = "crate::time::opt_iso", default)]
    pub started_at: Option<Timestamp>,
    #[serde(with = "crate::time::opt_iso", default)]
    pub ended_at: Option<Timestamp>,
    pub duration_s: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub co2_kg: Option<f64>,
    pub co2_kg_low: Option<f64>,
    pub co2_kg_high: Option<f64>,
    pub location_label: String,
    pub co2_kg_reported: Option<f64>,
    pub delta_reason: Option<DeltaReason>,
    pub country_name: Option<String>,
    pub region: Option<String>,
    pub cloud_provider: Option<String>,
    pub cloud_region: Option<String>,
    /// The tracker and its version ("CodeCarbon 3.3.2", "carbontracker 2.4.7").
    #[serde(default)]
    pub tool: String,
    /// The value of the metric the table shows, when the run has it.
    #[serde(default)]
    pub metric: Option<f64>,
}

impl From<&Run> for RunRow {
    fn from(r: &Run) -> RunRow {
        RunRow {
            run_id: r.run_id.clone(),
            project_name: r.project_name.clone(),
            experiment_id: r.experiment_id.clone(),
            started_at: r.started_at,
            ended_at: r.ended_at,
            duration_s: r.duration_s,
            energy_kwh: r.energy_kwh,
            co2_kg: r.assessment.co2_kg,
            co2_kg_low: r.assessment.co2_kg_low,
            co2_kg_high: r.assessment.co2_kg_high,
            location_label: r.assessment.location_label.clone(),
            co2_kg_reported: r.co2_kg_reported,
            delta_reason: r.assessment.delta_reason.clone(),
            country_name: r.country_name.clone(),
            region: r.region.clone(),
            cloud_provider: r.cloud_provider.clone(),
            cloud_region: r.cloud_region.clone(),
            tool: r.tool_label(),
            metric: None,
        }
    }
}

/// One page of the Runs table with what its filters offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunsPage {
    pub rows: Vec<RunRow>,
    /// Runs matching the filters (all pages).
    pub matched: usize,
    /// Runs loaded.
    pub total: usize,
    /// 1-based page shown, and page count.
    pub page: usize,
    pub pages: usize,
    pub projects: Vec<String>,
    pub experiments: Vec<String>,
    pub countries: Vec<String>,
    pub teams: Vec<String>,
    pub providers: Vec<String>,
    /// The trackers that wrote the runs.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Model metrics the runs have (most common first), one of which may be a column.
    #[serde(default)]
    pub metrics: Vec<String>,
}

/// Everything the map page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MapPage {
    pub whatif: WhatIf,
    /// The world map, SVG drawn by the view (`charts::map`) from `shown`.
    pub svg: String,
    /// The regions the map marks: those that pass the filters (server side only).
    #[serde(skip)]
    pub shown: Vec<RegionRow>,
    pub providers: Vec<String>,
    pub continents: Vec<String>,
    pub selected: Option<RegionRow>,
    /// Projects and their experiments, to choose a selection from.
    pub projects: Vec<String>,
    /// The trackers that wrote the runs, to choose a selection from.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// A chart as the pages show it: SVG drawn on the server, its data as CSV, and a text
/// alternative. Points carry `data-tip` for hover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Chart {
    pub id: String,
    pub title: String,
    pub alt: String,
    pub svg: String,
    pub csv: String,
}

/// A team (or the whole organisation when `team` is `None`) with its totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TeamSummary {
    pub team: String,
    pub totals: Totals,
    pub projects: Vec<String>,
    #[serde(with = "crate::time::opt_iso", default)]
    pub last_run: Option<Timestamp>,
}

/// A project's totals within a view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProjectTotal {
    pub project_name: String,
    pub totals: Totals,
}

/// Everything a team page (or the organisation page) shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TeamPage {
    /// "organisation" or the team's name.
    pub title: String,
    pub totals: Totals,
    /// The last month with runs, its totals, and the month before (the trend).
    pub this_period: String,
    pub this_period_totals: Totals,
    pub previous_period: String,
    pub previous_period_totals: Totals,
    pub charts: Vec<Chart>,
    pub top_runs: Vec<RunRow>,
    pub top_projects: Vec<ProjectTotal>,
    pub teams: Vec<String>,
    pub projects: Vec<String>,
    /// The budgets of the team (of every team, on the organisation's page) and its projects,
    /// with their burn-down charts.
    #[serde(default)]
    pub budgets: Vec<BudgetView>,
}

/// A budget where it stands, with its burn-down chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetView {
    pub standing: crate::budget::Standing,
    pub chart: Chart,
}

/// An experiment's runs compared. The page stays small however many runs it has: the table lists
/// the latest [`EXPERIMENT_RUNS_LISTED`] (the best and the worst always among them), the chart
/// plots at most [`EXPERIMENT_RUNS_PLOTTED`]; the totals count every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ExperimentPage {
    pub experiment_id: String,
    pub project_name: Option<String>,
    pub totals: Totals,
    pub runs: Vec<RunRow>,
    /// Runs in the experiment (`runs` may list fewer).
    pub runs_total: usize,
    pub best_run: Option<String>,
    pub worst_run: Option<String>,
    pub charts: Vec<Chart>,
    /// Runs the charts plot.
    pub runs_plotted: usize,
}

pub const EXPERIMENT_RUNS_LISTED: usize = 100;
pub const EXPERIMENT_RUNS_PLOTTED: usize = 500;

impl ExperimentPage {
    /// The page of an experiment's `runs` (newest first), without its charts; `None` without runs.
    pub fn of(experiment_id: String, runs: &[&Run]) -> Option<ExperimentPage> {
        let first = runs.first()?;
        let co2 = |r: &&&Run| r.assessment.co2_kg.unwrap_or(f64::NAN);
        let with_co2 = || runs.iter().filter(|r| r.assessment.co2_kg.is_some());
        let best = with_co2().min_by(|a, b| co2(a).total_cmp(&co2(b)));
        let worst = with_co2().max_by(|a, b| co2(a).total_cmp(&co2(b)));
        let mut listed: Vec<&Run> = runs.iter().take(EXPERIMENT_RUNS_LISTED).copied().collect();
        for extreme in [best, worst].into_iter().flatten() {
            if !listed.iter().any(|r| r.run_id == extreme.run_id) {
                listed.push(extreme);
            }
        }
        Some(ExperimentPage {
            project_name: first.project_name.clone(),
            totals: Totals::of(runs.iter().copied()),
            best_run: best.map(|r| r.run_id.clone()),
            worst_run: worst.map(|r| r.run_id.clone()),
            runs: listed.into_iter().map(RunRow::from).collect(),
            runs_total: runs.len(),
            experiment_id,
            charts: Vec::new(),
            runs_plotted: 0,
        })
    }

    /// The runs a chart plots: all of them up to [`EXPERIMENT_RUNS_PLOTTED`], otherwise that many
    /// spread evenly over the runs ordered by CO2, so the lowest and the highest are kept.
    pub fn plotted<'a>(runs: &[&'a Run]) -> Vec<&'a Run> {
        if runs.len() <= EXPERIMENT_RUNS_PLOTTED {
            return runs.to_vec();
        }
        let mut by_co2 = runs.to_vec();
        by_co2.sort_by(|a, b| {
            let v = |r: &Run| r.assessment.co2_kg.unwrap_or(f64::NEG_INFINITY);
            v(a).total_cmp(&v(b))
        });
        let last = by_co2.len() - 1;
        (0..EXPERIMENT_RUNS_PLOTTED).map(|i| by_co2[i * last / (EXPERIMENT_RUNS_PLOTTED - 1)]).collect()
    }
}

/// What this server lets a visitor do with uploads, and the visitor's private session if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UploadState {
    /// Files may be uploaded for a private, in-memory session.
    pub enabled: bool,
    /// Why upload is off, shown instead of the form.
    pub disabled_reason: Option<String>,
    /// Where "save to logs" writes (`DIR/uploads`); `None` when saving is off (read-only, demo).
    pub save_dir: Option<String>,
    pub max_file_bytes: u64,
    pub max_request_bytes: u64,
    /// How long a session lives after its last upload.
    pub ttl_s: u64,
    pub session: Option<UploadSession>,
}

/// A visitor's private session: the files given and what became of each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UploadSession {
    /// Unguessable: who knows it sees the session (`/sessions/{id}` opens it in another browser).
    pub id: String,
    pub expires_in_s: u64,
    pub bytes: u64,
    pub files: Vec<UploadedFile>,
}

/// One uploaded file and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UploadedFile {
    /// The name it has in the session (the browser's file name, made unique).
    pub name: String,
    pub bytes: u64,
    /// Read into the session (possibly with some rows rejected): false when refused as a whole.
    pub accepted: bool,
    /// One sentence: what was read, or why the file was refused.
    pub message: String,
    pub runs: usize,
    pub rows_read: usize,
    pub rows_rejected: usize,
    /// Where "save to logs" wrote it, relative to the logs folder.
    pub saved_as: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(n: usize) -> Vec<Run> {
        (0..n)
            .map(|i| Run {
                run_id: format!("r{i:05}"),
                experiment_id: Some("e".into()),
                // The lowest CO2 is the oldest run, the highest one in the middle.
                assessment: Assessment {
                    co2_kg: Some(if i == n / 2 { 1e6 } else { (n - i) as f64 }),
                    ..Assessment::default()
                },
                ..Run::default()
            })
            .collect()
    }

    #[test]
    fn an_experiment_page_is_bounded_and_keeps_its_best_and_worst_runs() {
        let all = runs(3000);
        let refs: Vec<&Run> = all.iter().collect();
        let p = ExperimentPage::of("e".into(), &refs).unwrap_or_default();
        assert_eq!((p.runs_total, p.totals.runs), (3000, 3000), "totals count every run");
        assert_eq!(p.runs.len(), EXPERIMENT_RUNS_LISTED + 2, "the latest, then the best and the worst");
        assert_eq!(p.runs[0].run_id, "r00000");
        assert_eq!(p.best_run.as_deref(), Some("r02999"));
        assert_eq!(p.worst_run.as_deref(), Some("r01500"));
        assert!(p.runs.iter().any(|r| r.run_id == "r02999") && p.runs.iter().any(|r| r.run_id == "r01500"));
        let plotted = ExperimentPage::plotted(&refs);
        assert_eq!(plotted.len(), EXPERIMENT_RUNS_PLOTTED);
        assert_eq!(plotted[0].run_id, "r02999", "the lowest CO2 is plotted");
        assert_eq!(plotted[EXPERIMENT_RUNS_PLOTTED - 1].run_id, "r01500", "and the highest");
        let few: Vec<&Run> = refs[..10].to_vec();
        assert_eq!(ExperimentPage::plotted(&few).len(), 10);
        assert_eq!(ExperimentPage::of("e".into(), &few).map(|p| p.runs.len()), Some(10));
        assert!(ExperimentPage::of("none".into(), &[]).is_none());
    }
}
