//! The set of ingested files and the runs built from them. Each file is held as what it tells of
//! each run ([`RunPart`]), never as rows, so memory grows with runs; one changed file is re-read
//! alone and only its runs are merged again. A run's rows are read from its files when asked.
//!
//! Readers share a [`Catalog`] through [`SharedCatalog`]: a change is built on a copy (cheap: the
//! parts are behind `Arc`s) and swapped in whole, so a reader never waits for a rebuild and never
//! sees half of one.

use crate::grid::{Grid, Location};
use crate::ingest::{self, dedup_tasks, sum_tasks, IngestError, ParsedFile, RunPart, Stamp};
use crate::metrics::{MetricJoin, MetricsFormat, MLFLOW_RUN_FILE};
use crate::model::{Checkpoint, DatasetMode, FileReport, Run, RunDetail, Summary};
use crate::pages::RunsPage;
use crate::query::{sort_order, FilterValues, RunQuery, SortKey};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// All files and the runs across them. Cloning is cheap (shared parts), so changes are made on a
/// copy: see [`SharedCatalog::update`].
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Every file by its display path, in path order (ties between files go to the later one).
    files: Arc<BTreeMap<String, Arc<ParsedFile>>>,
    /// Every run merged across its files, not yet assessed.
    merged: Arc<HashMap<String, Arc<Run>>>,
    /// The merged runs, newest first.
    order: Arc<Vec<Arc<Run>>>,
    /// The runs assessed in each dataset mode, in `order`: `[latest, codecarbon]`. CodeCarbon's
    /// is assessed when first asked for.
    modes: [Arc<OnceLock<Assessed>>; 2],
    /// Position of each run in `order`.
    index: Arc<HashMap<String, usize>>,
    /// Apply the provider's PUE to cloud runs that carry none (a user setting; off by default).
    apply_provider_pue: bool,
    /// `path_prefix → team` from `teams.csv`; the folder layout otherwise.
    team_mapping: Arc<Vec<(String, String)>>,
    reports: Arc<Vec<FileReport>>,
    /// Metrics files joined to the runs, and what they were joined from (see
    /// [`Catalog::join_inputs`]): an appended checkpoint changes neither, so it is not joined again.
    metric_join: Arc<MetricJoin>,
    metric_join_inputs: u64,
    /// Sort orders and filter values of these runs, each computed on first use.
    derived: Arc<Derived>,
    /// Why changes to the folder may not be seen (the watcher failed), for the Files page.
    watch_problem: Option<String>,
    /// Where the checkpoints of collected runs are read (they are held as totals only).
    row_store: RowStoreRef,
}

/// The future a [`RowStore`] answers with.
pub type RowsFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Vec<Checkpoint>, usize), String>> + Send + 'a>>;

/// Where the checkpoints of runs held as totals only ([`ingest::Source::Store`]) are read: the
/// collected runs' database.
pub trait RowStore: Send + Sync {
    /// Run `run_id`'s checkpoints (running totals) in time order, at most `max` of them, evenly
    /// spaced with the last one kept; and how many it has.
    fn checkpoints<'a>(&'a self, run_id: &'a str, max: usize) -> RowsFuture<'a>;
    /// Run `run_id`'s checkpoints after the `after`-th (numbered from 1 in time order), at most
    /// `limit`; and how many it has.
    fn page<'a>(&'a self, run_id: &'a str, after: usize, limit: usize) -> RowsFuture<'a>;
}

#[derive(Clone, Default)]
struct RowStoreRef(Option<Arc<dyn RowStore>>);

impl std::fmt::Debug for RowStoreRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "RowStore" } else { "no RowStore" })
    }
}

/// The runs assessed in one dataset mode, and their summary (made when first asked for).
/// Runs are behind `Arc`s: a change re-assesses the runs it touched and copies pointers to the
/// others, so a publish costs a pass over pointers, not a copy of every run.
#[derive(Debug, Default)]
struct Assessed {
    runs: Vec<Arc<Run>>,
    summary: OnceLock<Summary>,
    reports: Arc<Vec<FileReport>>,
}

/// Assesses `order` in `mode`. With `kept` (the runs that changed, the previous assessment and
/// its index), unchanged runs keep their assessed run as it was (a pointer copy); an explanation
/// that depends on other runs is checked again by [`explain_constant_gaps`].
fn assess_mode(
    order: &[Arc<Run>],
    mode: DatasetMode,
    apply_provider_pue: bool,
    reports: &Arc<Vec<FileReport>>,
    kept: Option<(&HashSet<String>, &Assessed, &HashMap<String, usize>)>,
) -> Assessed {
    let grid = Grid::embedded();
    let was = |r: &Arc<Run>| -> Option<Arc<Run>> {
        let (changed, old, index) = kept?;
        if changed.contains(&r.run_id) {
            return None;
        }
        let o = old.runs.get(*index.get(&r.run_id)?)?;
        (o.run_id == r.run_id).then(|| o.clone())
    };
    let kept_runs: Vec<Option<Arc<Run>>> = order.par_iter().map(was).collect();
    // Runs share places: each place is worked out once (for the runs assessed anew).
    let mut places: HashMap<Location, crate::grid::Place> = HashMap::new();
    for (r, k) in order.iter().zip(&kept_runs) {
        if k.is_none() {
            let at = Location::of(r);
            places.entry(at).or_insert_with(|| grid.place(&at, mode));
        }
    }
    let mut runs: Vec<Arc<Run>> = order
        .par_iter()
        .zip(kept_runs)
        .map(|(r, k)| {
            k.unwrap_or_else(|| {
                let mut run = (**r).clone();
                run.assessment = match places.get(&Location::of(r)) {
                    Some(place) => grid.assess_at(&run, mode, apply_provider_pue, place),
                    None => grid.assess(&run, mode, apply_provider_pue),
                };
                Arc::new(run)
            })
        })
        .collect();
    explain_constant_gaps(&mut runs, |r| match places.get(&Location::of(r)) {
        Some(place) => grid.assess_at(r, mode, apply_provider_pue, place),
        None => grid.assess(r, mode, apply_provider_pue),
    });
    Assessed { runs, summary: OnceLock::new(), reports: reports.clone() }
}

impl Assessed {
    fn summary(&self) -> &Summary {
        self.summary.get_or_init(|| Summary::build(&self.runs, &self.reports))
    }
}

#[derive(Debug, Default)]
struct Derived {
    /// `[mode][sort key][descending]`: positions in `runs`.
    orders: [[[OnceLock<Vec<u32>>; 2]; SortKey::ALL.len()]; 2],
    values: OnceLock<FilterValues>,
    /// The joined metrics' names, most common first (the Runs table's metric column).
    metric_names: OnceLock<Vec<String>>,
}

/// A catalog shared by readers and replaced by one writer at a time.
#[derive(Debug, Clone, Default)]
pub struct SharedCatalog {
    current: Arc<RwLock<Arc<Catalog>>>,
    writer: Arc<Mutex<()>>,
}

impl SharedCatalog {
    pub fn new(catalog: Catalog) -> SharedCatalog {
        SharedCatalog { current: Arc::new(RwLock::new(Arc::new(catalog))), writer: Arc::default() }
    }

    /// The catalog as it is now; it stays whole for as long as it is held.
    pub fn current(&self) -> Arc<Catalog> {
        // The lock guards a pointer swap only: a poisoned one still holds a whole catalog.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a change to a copy of the current catalog, then publishes it. Writers take turns;
    /// readers keep the catalog they hold until they are done.
    pub fn update<T>(&self, change: impl FnOnce(&mut Catalog) -> T) -> T {
        let _turn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = (*self.current()).clone();
        let out = change(&mut next);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        out
    }

    pub fn replace(&self, catalog: Catalog) {
        let _turn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog);
    }
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

/// Whether the watcher and the walk read a file of this name: a log, a metrics file or an
/// MLflow run's `meta.yaml` (see [`is_read_file`] for where).
pub fn is_read_name(name: &str) -> bool {
    is_log_file(name)
        || crate::trackers::is_candidate_name(name)
        || MetricsFormat::of_file_name(name).is_some()
        || name == MLFLOW_RUN_FILE
        || name == crate::declare::FILE
        || crate::stores::candidate(name).is_some()
        || crate::results::is_json_table_name(name)
}

/// Whether a walk reads the file `name` at `path`: a log or a metrics file, but not a Trainer
/// checkpoint's state (`checkpoint-N/trainer_state.json`: the output folder's final state
/// supersedes it), and an MLflow run's `meta.yaml` only beside a `metrics/` folder and not in
/// MLflow's `.trash`.
pub fn is_read_file(path: &Path, name: &str) -> bool {
    let parent = path.parent();
    let parent_name = parent.and_then(Path::file_name).map(|n| n.to_string_lossy()).unwrap_or_default();
    if name == MLFLOW_RUN_FILE {
        return parent.is_some_and(|p| std::fs::symlink_metadata(p.join("metrics")).is_ok_and(|m| m.is_dir()))
            && !path.components().any(|c| c.as_os_str() == ".trash");
    }
    match MetricsFormat::of_file_name(name) {
        Some(MetricsFormat::HfTrainerState) => !parent_name.starts_with("checkpoint-"),
        Some(_) => true,
        None => {
            is_log_file(name)
                || crate::trackers::is_candidate_name(name)
                || name == crate::declare::FILE
                || crate::stores::candidate(name).is_some()
                // Not a Trainer checkpoint's files, nor the parse cache's own folder.
                || (crate::results::is_json_table_name(name) && !parent_name.starts_with("checkpoint-"))
        }
    }
}

/// W&B's `wandb/latest-run` link to a run folder the walk reads anyway: not worth a word.
fn is_wandb_latest(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "latest-run")
        && path.parent().and_then(Path::file_name).is_some_and(|n| n == "wandb")
}

/// What a walk of the logs folder found: the log files to read (sorted), and what it would
/// not go into, with why: folders it cannot list, links to folders (not followed).
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<PathBuf>,
    pub skipped: Vec<(PathBuf, String)>,
}

/// What listing one folder found: sub-folders, log files, and entries not gone into.
type Listing = (Vec<PathBuf>, Vec<PathBuf>, Vec<(PathBuf, String)>);

/// Log files under `dir`, recursively. Folders are listed in parallel, a level at a time (a logs
/// tree often has a folder per run). Never fails: a folder that cannot be listed is skipped and
/// said. Links are not followed; an entry with a log file's name is returned whatever its type
/// ([`ingest::ingest_path`] says why a link, a pipe or a device is not read).
pub fn walk_logs(dir: &Path) -> Walk {
    let mut walk = Walk::default();
    // The team mapping is not a log.
    let teams = dir.join(TEAMS_FILE);
    let mut level = vec![dir.to_path_buf()];
    while !level.is_empty() {
        let listed: Vec<Listing> = level
            .par_iter()
            .map(|d| {
                let (mut dirs, mut files, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
                let entries = match std::fs::read_dir(d) {
                    Ok(entries) => entries,
                    Err(e) => {
                        skipped.push((d.clone(), format!("folder not read: {e}")));
                        return (dirs, files, skipped);
                    }
                };
                for entry in entries {
                    let entry = match entry {
                        Ok(entry) => entry,
                        Err(e) => {
                            skipped.push((d.clone(), format!("folder not read to the end: {e}")));
                            break;
                        }
                    };
                    let path = entry.path();
                    let Ok(kind) = entry.file_type() else {
                        files.push(path);
                        continue;
                    };
                    if kind.is_dir() {
                        dirs.push(path);
                    } else if is_read_file(&path, &entry.file_name().to_string_lossy()) && path != teams {
                        files.push(path);
                    } else if kind.is_symlink() && path.is_dir() && !is_wandb_latest(&path) {
                        skipped.push((path, "a symbolic link to a folder: links are not followed".into()));
                    }
                }
                (dirs, files, skipped)
            })
            .collect();
        level = Vec::new();
        for (dirs, files, skipped) in listed {
            level.extend(dirs);
            walk.files.extend(files);
            walk.skipped.extend(skipped);
        }
    }
    walk.files.sort();
    walk.skipped.sort();
    walk
}

/// Log files under `dir`, recursively, sorted (see [`walk_logs`]).
pub fn find_log_files(dir: &Path) -> Vec<PathBuf> {
    walk_logs(dir).files
}

/// What the walk of `dir` found, read: every log file parsed (or said why not), and every
/// folder not gone into, as a report of its own (its path ends with `/`).
fn read_walk(dir: &Path, walk: &Walk) -> Vec<ParsedFile> {
    let mut files: Vec<ParsedFile> =
        walk.files.par_iter().filter_map(|p| ingest::ingest_path(p, &display_path(dir, p))).collect();
    files.extend(walk.skipped.iter().map(|(p, why)| ingest::not_read(&folder_display(dir, p), p, why)));
    files
}

/// A folder's name in reports: its path under the logs folder, ending with `/`.
fn folder_display(dir: &Path, path: &Path) -> String {
    format!("{}/", display_path(dir, path))
}

/// Reading a logs folder waits on the disk more than on the CPU: more threads than cores keep
/// more reads in flight (a cold start on a network or virtual disk is several times faster).
const IO_THREADS: usize = 16;

/// Optional team mapping at the root of a logs folder: `path_prefix,team` rows.
pub const TEAMS_FILE: &str = "teams.csv";

/// The team a file belongs to: the longest matching prefix of the mapping, else the first folder
/// of its path (`<team>/<project>/…`), else none (a file at the root). A collected run's path
/// names its project's team.
pub fn team_of(path: &str, mapping: &[(String, String)]) -> Option<String> {
    if let Some(team) = crate::collect::team_of_path(path) {
        return team;
    }
    let mapped = mapping.iter().filter(|(prefix, _)| path.starts_with(prefix.as_str())).max_by_key(|(p, _)| p.len());
    if let Some((_, team)) = mapped {
        return Some(team.clone());
    }
    path.split_once('/').map(|(first, _)| first.to_string()).filter(|t| !t.is_empty())
}

/// Reads `teams.csv` (`path_prefix,team`, a header line first).
pub fn read_team_mapping(text: &str) -> Vec<(String, String)> {
    crate::records::records(text)
        .collect_owned()
        .into_iter()
        .skip(1)
        .filter(|(_, f)| f.len() == 2)
        .map(|(_, f)| (f[0].trim().to_string(), f[1].trim().to_string()))
        .filter(|(p, t)| !p.is_empty() && !t.is_empty())
        .collect()
}

/// Reads every log file under `dir` in parallel; paths in reports are relative to `dir`.
pub fn load_dir(dir: &Path) -> Result<Catalog, IngestError> {
    load_dir_cached(dir, None).map(|(cat, _)| cat)
}

/// What a load did: files taken from the parse cache, files parsed.
#[derive(Debug, Default)]
pub struct Loaded {
    pub reused: usize,
    pub parsed: usize,
    /// Why the cache was not used, when it exists but could not be read.
    pub cache_problem: Option<String>,
}

impl Loaded {
    /// Whether the cache should be written again (something was parsed, or it was unreadable).
    pub fn cache_stale(&self) -> bool {
        self.parsed > 0 || self.cache_problem.is_some()
    }

    /// Whether the catalog was taken from the cache without looking at the folder: files may
    /// have changed since; [`changes_on_disk`] says which.
    pub fn from_cache(&self) -> bool {
        self.reused > 0 && self.parsed == 0
    }
}

/// [`load_dir`], or the catalog the parse cache at `cache` (when given) holds: a restart then
/// reads one file, not the folder. The folder may have changed since the cache was written:
/// [`changes_on_disk`] finds out, and [`Catalog::apply`] brings the catalog up to date.
pub fn load_dir_cached(dir: &Path, cache: Option<&Path>) -> Result<(Catalog, Loaded), IngestError> {
    match rayon::ThreadPoolBuilder::new().num_threads(IO_THREADS).build() {
        Ok(pool) => pool.install(|| load(dir, cache)),
        Err(_) => load(dir, cache),
    }
}

/// The team mapping of `dir` (empty without `teams.csv`), and the report that says why it could
/// not be read, if so.
fn teams_of(dir: &Path) -> (Vec<(String, String)>, Option<ParsedFile>) {
    let path = dir.join(TEAMS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => (read_team_mapping(&text), None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
        Err(e) => {
            let why = format!("the team mapping cannot be read ({e}): teams follow the folder layout");
            (Vec::new(), Some(ingest::not_read(TEAMS_FILE, &path, &why)))
        }
    }
}

fn load(dir: &Path, cache: Option<&Path>) -> Result<(Catalog, Loaded), IngestError> {
    use crate::parse_cache;
    let (mapping, mapping_problem) = teams_of(dir);
    let mut loaded = Loaded::default();
    let mut cat = Catalog { team_mapping: Arc::new(mapping), ..Catalog::default() };
    match cache.map(|c| parse_cache::read(c, dir)) {
        None => {}
        Some(Ok(files)) if !files.is_empty() => {
            loaded.reused = files.len();
            cat.upsert_all(files)?;
            return Ok((cat, loaded));
        }
        Some(Ok(_)) => loaded.cache_problem = Some("empty".into()),
        Some(Err(parse_cache::CacheError::Io(e))) if e.kind() == std::io::ErrorKind::NotFound => {
            loaded.cache_problem = Some("no cache yet".into())
        }
        Some(Err(e)) => loaded.cache_problem = Some(e.to_string()),
    }
    let mut files = read_walk(dir, &walk_logs(dir));
    files.extend(mapping_problem);
    loaded.parsed = files.len();
    cat.upsert_all(files)?;
    Ok((cat, loaded))
}

/// A file's name in reports: its path under the logs folder, with `/`.
fn display_path(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// One file that differs between a catalog and the disk.
#[derive(Debug)]
pub struct FileChange {
    pub path: String,
    /// The stamp the catalog had (`None`: the file was not in it).
    pub was: Option<Stamp>,
    /// The file as it is now (`None`: gone from disk).
    pub now: Option<ParsedFile>,
}

/// The files of `dir` that differ from what `cat` holds (new, changed or gone), by their stamps;
/// changed and new files are parsed. Reads the folder and the last 4 KiB of each file, in
/// parallel, off any lock: apply the result with [`Catalog::apply`].
pub fn changes_on_disk(dir: &Path, cat: &Catalog) -> Vec<FileChange> {
    let look = || -> Vec<FileChange> {
        let walk = walk_logs(dir);
        let mut on_disk: HashSet<String> = walk.files.iter().map(|p| display_path(dir, p)).collect();
        // The team mapping's report (when it cannot be read) is the mapping's, not a log's:
        // `reload_teams` keeps it up to date.
        on_disk.insert(TEAMS_FILE.to_string());
        let mut changes: Vec<FileChange> = walk
            .files
            .par_iter()
            .filter_map(|p| {
                let path = display_path(dir, p);
                let was = cat.files.get(&path).and_then(|f| f.stamp);
                if was.is_some() && Stamp::of_path(p) == was {
                    return None;
                }
                // Gone between the walk and now: forgotten below if the catalog had it.
                let now = ingest::ingest_path(p, &path);
                (now.is_some() || was.is_some()).then_some(FileChange { path, was, now })
            })
            .collect();
        for (p, why) in &walk.skipped {
            let path = folder_display(dir, p);
            let now = ingest::not_read(&path, p, why);
            let was = cat.files.get(&path).and_then(|f| f.stamp);
            if was != now.stamp {
                changes.push(FileChange { path: path.clone(), was, now: Some(now) });
            }
            on_disk.insert(path);
        }
        changes.extend(
            cat.files
                .iter()
                .filter(|(path, f)| matches!(f.source, ingest::Source::Path(_)) && !on_disk.contains(*path))
                .map(|(path, f)| FileChange { path: path.clone(), was: f.stamp, now: None }),
        );
        changes
    };
    match rayon::ThreadPoolBuilder::new().num_threads(IO_THREADS).build() {
        Ok(pool) => pool.install(look),
        Err(_) => look(),
    }
}

/// Above this many changed runs, the runs are merged again from every file (cheaper than
/// patching them one by one).
const PATCH_LIMIT: usize = 4096;

impl Catalog {
    pub fn from_files(files: Vec<ParsedFile>) -> Result<Catalog, IngestError> {
        let mut cat = Catalog::default();
        cat.upsert_all(files)?;
        Ok(cat)
    }

    /// Adds or replaces one file, then merges its runs again.
    pub fn upsert(&mut self, file: ParsedFile) -> Result<(), IngestError> {
        self.upsert_all([file])
    }

    /// Applies what [`changes_on_disk`] found, merging the runs again once. A file the catalog
    /// no longer holds as it was then (the watcher got there first) is left as it is now.
    /// Returns how many files changed.
    pub fn apply(&mut self, changes: Vec<FileChange>) -> usize {
        let current = |path: &str| self.files.get(path).and_then(|f| f.stamp);
        let (mut upserts, mut removals) = (Vec::new(), Vec::new());
        for c in changes {
            if current(&c.path) != c.was {
                continue;
            }
            match c.now {
                Some(file) => upserts.push(file),
                None if c.was.is_some() => removals.push(c.path),
                None => {}
            }
        }
        let n = upserts.len() + removals.len();
        if n > 0 {
            self.change(upserts, &removals);
        }
        n
    }

    /// Adds or replaces several files, then merges their runs again, once.
    pub fn upsert_all(&mut self, files: impl IntoIterator<Item = ParsedFile>) -> Result<(), IngestError> {
        self.change(files, &[]);
        Ok(())
    }

    /// Adds or replaces `files`, forgets `removed`, then merges the runs of both again, once.
    fn change(&mut self, files: impl IntoIterator<Item = ParsedFile>, removed: &[String]) {
        // A first load merges everything anyway: no need to list what changed.
        let first = self.merged.is_empty();
        let mut changed: HashSet<String> = HashSet::new();
        let mut paths: Vec<String> = Vec::new();
        let map = Arc::make_mut(&mut self.files);
        for mut file in files {
            let team = team_of(&file.report.path, &self.team_mapping);
            for part in &mut file.runs {
                if part.run.team != team {
                    Arc::make_mut(&mut part.run).team = team.clone();
                }
            }
            // Sorted by id, so a run's part in a file is found by binary search.
            file.runs.sort_by(|a, b| a.run.run_id.cmp(&b.run.run_id));
            if !first {
                changed.extend(file.runs.iter().map(|p| p.run.run_id.clone()));
            }
            let path = file.report.path.clone();
            if let Some(old) = map.insert(path.clone(), Arc::new(file)) {
                changed.extend(old.runs.iter().map(|p| p.run.run_id.clone()));
            }
            paths.push(path);
        }
        for path in removed {
            if let Some(old) = map.remove(path) {
                changed.extend(old.runs.iter().map(|p| p.run.run_id.clone()));
            }
        }
        self.remerge(changed, &paths);
    }

    /// Forgets one file, then merges its runs again.
    pub fn remove(&mut self, path: &str) -> Result<(), IngestError> {
        self.change([], &[path.to_string()]);
        Ok(())
    }

    /// Merges the `changed` runs again from their files (every run when there are many), then
    /// assesses and publishes them. A changed run can only be in the files it came from or in
    /// the changed `paths`.
    fn remerge(&mut self, changed: HashSet<String>, paths: &[String]) {
        let everything = changed.len() > PATCH_LIMIT || self.merged.is_empty();
        if !everything && changed.is_empty() {
            return self.publish(Some(&changed));
        }
        if everything {
            let mut by_run: HashMap<&str, Vec<&RunPart>> = HashMap::new();
            for f in self.files.values() {
                for p in &f.runs {
                    by_run.entry(p.run.run_id.as_str()).or_default().push(p);
                }
            }
            let merged: HashMap<String, Arc<Run>> = by_run
                .into_iter()
                .filter_map(|(id, parts)| merge(&parts, &self.team_mapping).map(|r| (id.to_string(), r)))
                .collect();
            self.merged = Arc::new(merged);
        } else {
            let merged = Arc::make_mut(&mut self.merged);
            for id in &changed {
                let mut candidates: Vec<&str> = paths.iter().map(String::as_str).collect();
                if let Some(old) = merged.get(id) {
                    candidates.extend(old.source_files.iter().map(String::as_str));
                }
                candidates.sort_unstable();
                candidates.dedup();
                let parts: Vec<&RunPart> = candidates
                    .iter()
                    .filter_map(|path| self.files.get(*path))
                    .filter_map(|f| f.runs.binary_search_by(|p| p.run.run_id.as_str().cmp(id)).ok().map(|i| &f.runs[i]))
                    .collect();
                match merge(&parts, &self.team_mapping) {
                    Some(run) => merged.insert(id.clone(), run),
                    None => merged.remove(id),
                };
            }
        }
        self.publish(if everything { None } else { Some(&changed) });
    }

    /// Sorts the merged runs newest first, assesses them in the latest dataset (and in
    /// CodeCarbon's when that was asked for before: otherwise on first use) and rebuilds the
    /// summaries and file reports. Runs not in `changed` keep their assessment (all are assessed
    /// again when `changed` is `None`).
    fn publish(&mut self, changed: Option<&HashSet<String>>) {
        self.derived = Arc::default();
        let mut order: Vec<Arc<Run>> = self.merged.values().cloned().collect();
        order.par_sort_unstable_by(|a, b| b.ended_at.cmp(&a.ended_at).then_with(|| a.run_id.cmp(&b.run_id)));
        let inputs = self.join_inputs();
        if inputs != self.metric_join_inputs {
            self.metric_join = Arc::new(self.join_metrics());
            self.metric_join_inputs = inputs;
        }
        let join = &self.metric_join;
        self.reports = Arc::new(
            self.files
                .values()
                .map(|f| {
                    let mut r = f.report.clone();
                    if let Some(j) = join.files.get(&r.path) {
                        r.join = Some(j.note());
                        r.join_failed = j.failed();
                    }
                    r
                })
                .collect(),
        );
        let (old, old_index) = (self.modes.clone(), self.index.clone());
        let (pue, reports) = (self.apply_provider_pue, &self.reports);
        let assess = |mode: DatasetMode| -> Arc<OnceLock<Assessed>> {
            let was = old[slot(mode)].get();
            if mode != DatasetMode::Latest && was.is_none() {
                return Arc::default();
            }
            let kept = match (changed, was) {
                (Some(c), Some(w)) => Some((c, w, &*old_index)),
                _ => None,
            };
            Arc::new(OnceLock::from(assess_mode(&order, mode, pue, reports, kept)))
        };
        let (latest, codecarbon) = rayon::join(|| assess(DatasetMode::Latest), || assess(DatasetMode::Codecarbon));
        self.index = Arc::new(order.iter().enumerate().map(|(i, r)| (r.run_id.clone(), i)).collect());
        self.order = Arc::new(order);
        self.modes = [latest, codecarbon];
    }

    /// A fingerprint of what the join depends on: the metrics files (path, stamp, values), the
    /// run ids and which log file holds which run (0 without metrics files). Order-independent
    /// sums of hashes, so it costs a pass over the parts, not a sort.
    fn join_inputs(&self) -> u64 {
        use crate::ingest::fnv;
        if !self.files.values().any(|f| f.metrics.is_some()) {
            return 0;
        }
        // Results tables join by the runs' figures too: only then do they count.
        let tables = self.files.values().any(|f| f.metrics.as_ref().is_some_and(|m| m.table.is_some()));
        let mut h: u64 = 1;
        for (path, f) in self.files.iter() {
            match &f.metrics {
                Some(m) => {
                    let stamp = f.stamp.map_or([0u64; 3], |s| [s.size, s.mtime_ns as u64, s.tail]);
                    h = h.wrapping_add(
                        fnv(path.as_bytes()) ^ stamp[0] ^ stamp[1].rotate_left(21) ^ stamp[2].rotate_left(42),
                    );
                    h = h.wrapping_add(m.values.len() as u64);
                    // Held in memory (an upload): no stamp, so the values themselves.
                    if f.stamp.is_none() {
                        for v in &m.values {
                            let run = v.run_id.as_deref().map_or(0, |r| fnv(r.as_bytes()));
                            h = h.wrapping_add(fnv(v.name.as_bytes()) ^ v.value.to_bits() ^ run.rotate_left(13));
                        }
                    }
                }
                None => {
                    let p = fnv(path.as_bytes());
                    for part in &f.runs {
                        let r = &part.run;
                        let figures = if tables {
                            r.co2_kg_reported.map_or(0, f64::to_bits)
                                ^ r.energy_kwh.map_or(0, f64::to_bits).rotate_left(29)
                                ^ r.project_name.as_deref().map_or(0, |n| fnv(n.as_bytes())).rotate_left(11)
                        } else {
                            0
                        };
                        h = h.wrapping_add(p ^ fnv(r.run_id.as_bytes()).rotate_left(7) ^ figures);
                    }
                }
            }
        }
        h.max(1)
    }

    /// Joins the metrics files to the merged runs (nothing to do without metrics files).
    fn join_metrics(&self) -> MetricJoin {
        let mut metric_files: Vec<(&str, &crate::metrics::MetricsFile)> =
            self.files.iter().filter_map(|(p, f)| f.metrics.as_deref().map(|m| (p.as_str(), m))).collect();
        if metric_files.is_empty() {
            return MetricJoin::default();
        }
        // Results tables join by what they hold: the runs' figures and names, by folder.
        let tables: Vec<(&str, crate::metrics::MetricsFile)> = if metric_files.iter().any(|(_, m)| m.table.is_some()) {
            let facts = self.run_facts();
            // Folders with one log file, and its runs in the file's order (for the row-order guess).
            let mut logs_in: HashMap<&str, usize> = HashMap::new();
            for path in self.files.iter().filter(|(_, f)| !f.runs.is_empty()).map(|(p, _)| p) {
                *logs_in.entry(path.rsplit_once('/').map_or("", |(d, _)| d)).or_default() += 1;
            }
            let in_folder: HashMap<String, Vec<String>> = self
                .files
                .iter()
                .filter(|(_, f)| !f.runs.is_empty())
                .filter_map(|(path, f)| {
                    let folder = path.rsplit_once('/').map_or("", |(d, _)| d);
                    (logs_in.get(folder) == Some(&1))
                        .then(|| (folder.to_string(), f.runs.iter().map(|p| p.run.run_id.clone()).collect()))
                })
                .collect();
            // Declared joins first (the logs folder's own carbon-dash.toml).
            let declared: &[crate::declare::Declaration] = self
                .files
                .get(crate::declare::FILE)
                .and_then(|f| f.metrics.as_ref())
                .and_then(|m| m.declarations.as_deref())
                .map_or(&[], Vec::as_slice);
            metric_files
                .iter()
                .filter_map(|(path, m)| {
                    let t = m.table.as_deref()?;
                    let by_declaration =
                        declared.iter().find_map(|d| crate::declare::covers(&d.table, path).map(|key| (d, key)));
                    // A W&B run's folder is below wandb/: its runs are those of the folder above.
                    let home = crate::metrics::guess_folder(path, m.format);
                    let scoped = match path.rsplit_once('/') {
                        Some((folder, name)) if folder != home && home.is_empty() => name.to_string(),
                        Some((folder, name)) if folder != home => format!("{home}/{name}"),
                        _ => path.to_string(),
                    };
                    let join = match by_declaration {
                        Some((d, key)) => crate::results::join_declared(path, t, d, key.as_deref(), &facts),
                        // A declaration suggested for a W&B run covers the runs of its wandb/.
                        None => crate::results::join_table(&scoped, t, &facts, &in_folder).map_err(|why| {
                            if scoped == *path {
                                return why;
                            }
                            let at = if home.is_empty() { String::new() } else { format!("{home}/") };
                            why.replace(
                                &format!("table = \"{scoped}\""),
                                &format!("table = \"{at}wandb/*/run-*.wandb\""),
                            )
                        }),
                    };
                    let mut joined = crate::metrics::MetricsFile::joined_table(m.format, t, join);
                    joined.directions = m.directions.clone();
                    Some((*path, joined))
                })
                .collect()
        } else {
            Vec::new()
        };
        metric_files.retain(|(_, m)| m.table.is_none() && m.declarations.is_none());
        metric_files.extend(tables.iter().map(|(p, m)| (*p, m)));
        let mut folder_runs: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
        for (path, f) in self.files.iter().filter(|(_, f)| !f.runs.is_empty()) {
            let folder = path.rsplit_once('/').map_or("", |(d, _)| d);
            folder_runs.entry(folder.to_string()).or_default().extend(f.runs.iter().map(|p| p.run.run_id.clone()));
        }
        let runs: HashSet<&str> = self.merged.keys().map(String::as_str).collect();
        let mut join = crate::metrics::join(&metric_files, &runs, &folder_runs);
        // What carbon-dash.toml says of the metrics wins over what a file says.
        if let Some(said) = self.files.get(crate::declare::FILE).and_then(|f| f.metrics.as_ref()) {
            join.directions.extend(said.directions.iter().cloned());
            join.units.extend(said.units.iter().cloned());
        }
        join
    }

    /// What a results table may join runs by: their figures, names and folders.
    fn run_facts(&self) -> Vec<crate::results::RunFacts> {
        self.merged
            .values()
            .map(|r| {
                let mut names: Vec<String> = Vec::new();
                names.extend(r.project_name.iter().cloned());
                names.extend(r.experiment_id.iter().cloned());
                names.extend(r.tags.iter().map(|(_, v)| v.clone()));
                names.sort();
                names.dedup();
                let mut folders: Vec<String> =
                    r.source_files.iter().map(|p| p.rsplit_once('/').map_or("", |(d, _)| d).to_string()).collect();
                folders.sort();
                folders.dedup();
                crate::results::RunFacts {
                    id: r.run_id.clone(),
                    folders,
                    co2_kg: r.co2_kg_reported,
                    energy_kwh: r.energy_kwh,
                    names,
                    project: r.project_name.clone(),
                    experiment: r.experiment_id.clone(),
                    tags: r.tags.clone(),
                }
            })
            .collect()
    }

    /// The catalog as a person who sees only the runs of `teams` sees it: their runs, the log
    /// files holding them (a file shared with other teams' runs keeps only theirs, without its
    /// problems, which may quote the others' rows), the metrics files that joined only their
    /// runs, and `carbon-dash.toml`. Runs without a team, and files that hold no run (a file
    /// that could not be read says nothing of whose it is), are nobody's but an admin's.
    pub fn visible_to(&self, teams: &std::collections::BTreeSet<String>) -> Catalog {
        let visible = |id: &str| self.merged.get(id).and_then(|r| r.team.as_deref()).is_some_and(|t| teams.contains(t));
        let (mut upserts, mut removed) = (Vec::new(), Vec::new());
        for (path, f) in self.files.iter() {
            // A file in another team's folder is theirs, whatever runs it names.
            let ours = team_of(path, &self.team_mapping).is_some_and(|t| teams.contains(&t));
            let keep = match &f.metrics {
                // The logs' own carbon-dash.toml, without its problems (they may name others' tables).
                Some(m) if m.declarations.is_some() && path == crate::declare::FILE => {
                    if !f.report.problems.is_empty() {
                        let mut g = (**f).clone();
                        g.report.problems.clear();
                        g.report.problem_count = 0;
                        upserts.push(g);
                    }
                    true
                }
                Some(m) if m.declarations.is_some() => false,
                Some(_) if !ours => false,
                Some(_) => self
                    .metric_join
                    .files
                    .get(path)
                    .is_some_and(|j| !j.runs.is_empty() && j.runs.iter().all(|r| visible(r))),
                None if !ours => false,
                None => {
                    let kept: Vec<RunPart> = f.runs.iter().filter(|p| visible(&p.run.run_id)).cloned().collect();
                    let any = !kept.is_empty();
                    if any && kept.len() < f.runs.len() {
                        let mut g = (**f).clone();
                        g.report.runs = kept.len();
                        g.report.problems.clear();
                        g.report.problem_count = 0;
                        g.runs = kept;
                        upserts.push(g);
                    }
                    any
                }
            };
            if !keep {
                removed.push(path.clone());
            }
        }
        let mut scoped = self.clone();
        scoped.watch_problem = None;
        scoped.change(upserts, &removed);
        scoped
    }

    /// Metric values joined to runs, and how each metrics file joined.
    pub fn metrics(&self) -> &MetricJoin {
        &self.metric_join
    }

    /// The report of one run or of the runs a selection holds (latest dataset), with the
    /// selection's Pareto view when it has metrics; `None` when it holds no run.
    pub fn report(&self, scope: &crate::report::ReportScope, now: i64) -> Option<crate::report::Report> {
        let (runs, pareto): (Vec<&Run>, _) = match &scope.run_id {
            Some(id) => (self.run(id, DatasetMode::Latest).into_iter().collect(), None),
            None => {
                let runs = self.selected(&scope.selection);
                let pareto = crate::pareto_view::build(&scope.selection, &runs, &self.metric_join);
                (runs, Some(pareto))
            }
        };
        if runs.is_empty() {
            return None;
        }
        let title = scope.title();
        let words = match &scope.run_id {
            Some(id) => format!("run {id}"),
            None => scope.selection.scope(),
        };
        Some(crate::report::Report::build(title, words, &runs, pareto, now))
    }

    /// The Pareto view of the runs `q` selects (latest dataset): see [`crate::pareto`].
    pub fn pareto(&self, q: &crate::pareto::ParetoQuery) -> crate::pareto::ParetoView {
        crate::pareto_view::build(q, &self.selected(q), &self.metric_join)
    }

    /// The runs (latest dataset) a Pareto or report selection holds, newest first.
    pub fn selected(&self, q: &crate::pareto::ParetoQuery) -> Vec<&Run> {
        let sel = RunQuery {
            project: q.project.clone(),
            experiment: q.experiment.clone(),
            team: q.team.clone(),
            country: q.country.clone(),
            provider: q.provider.clone(),
            tool: q.tool.clone(),
            ..RunQuery::default()
        };
        self.runs(DatasetMode::Latest).iter().map(|r| &**r).filter(|r| sel.matches(r)).collect()
    }

    /// The runs in `mode`, assessed now if they were not yet.
    fn assessed(&self, mode: DatasetMode) -> &Assessed {
        self.modes[slot(mode)]
            .get_or_init(|| assess_mode(&self.order, mode, self.apply_provider_pue, &self.reports, None))
    }

    /// The map page for a what-if query: the selection's ranking over the regions that pass the
    /// filters (latest dataset), and those regions for the view to draw (`svg` is left empty).
    pub fn map_page(&self, q: &crate::query::WhatIfQuery) -> crate::pages::MapPage {
        let grid = Grid::embedded();
        let all = crate::whatif::regions(grid);
        let runs: Vec<&Run> = self.runs(DatasetMode::Latest).iter().map(|r| &**r).filter(|r| q.selects(r)).collect();
        let whatif = crate::whatif::what_if(&q.label(), &runs, &all, &q.filters);
        let shown: Vec<crate::model::RegionRow> = all
            .iter()
            .filter(|r| whatif.options.iter().any(|o| o.provider == r.provider && o.region == r.region))
            .cloned()
            .collect();
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
        let tools = self.filter_values().tools.clone();
        crate::pages::MapPage { whatif, svg: String::new(), shown, providers, continents, selected, projects, tools }
    }

    /// Turns the provider-PUE setting on or off and reassesses the runs.
    pub fn set_apply_provider_pue(&mut self, on: bool) {
        self.apply_provider_pue = on;
        self.publish(None);
    }

    pub fn applies_provider_pue(&self) -> bool {
        self.apply_provider_pue
    }

    /// Runs assessed in `mode`, newest first.
    pub fn runs(&self, mode: DatasetMode) -> &[Arc<Run>] {
        &self.assessed(mode).runs
    }

    pub fn files(&self) -> &[FileReport] {
        &self.reports
    }

    /// Writes the parse cache of the files read from disk to `path`.
    /// Reads `teams.csv` of the logs folder `dir` again (it was edited) and gives every run its
    /// team again.
    pub fn reload_teams(&mut self, dir: &Path) {
        let (mapping, problem) = teams_of(dir);
        self.team_mapping = Arc::new(mapping);
        let mut files: Vec<ParsedFile> =
            self.files.values().filter(|f| f.report.path != TEAMS_FILE).map(|f| (**f).clone()).collect();
        files.extend(problem);
        self.files = Arc::default();
        self.merged = Arc::default();
        self.change(files, &[]);
    }

    /// The stamp of the file read at `path` (its display path), when it came from disk.
    pub fn stamp_of(&self, path: &str) -> Option<Stamp> {
        self.files.get(path).and_then(|f| f.stamp)
    }

    /// Says (or clears) why changes to the folder may not be seen.
    pub fn set_watch_problem(&mut self, problem: Option<String>) {
        self.watch_problem = problem;
    }

    pub fn watch_problem(&self) -> Option<&str> {
        self.watch_problem.as_deref()
    }

    pub fn write_parse_cache(&self, path: &Path) -> Result<(), crate::parse_cache::CacheError> {
        let files: Vec<Arc<ParsedFile>> = self.files.values().cloned().collect();
        crate::parse_cache::write(path, &files)
    }

    pub fn summary(&self, mode: DatasetMode) -> &Summary {
        self.assessed(mode).summary()
    }

    pub fn run(&self, run_id: &str, mode: DatasetMode) -> Option<&Run> {
        self.index.get(run_id).and_then(|&i| self.assessed(mode).runs.get(i)).map(|r| &**r)
    }

    /// A run with its rows, read again from its files: checkpoints by duration, tasks in file
    /// order. The same row in several files is shown once.
    pub fn run_detail(&self, run_id: &str, mode: DatasetMode) -> Result<Option<RunDetail>, IngestError> {
        let Some(run) = self.run(run_id, mode) else {
            return Ok(None);
        };
        let mut seen = HashSet::new();
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        for path in &run.source_files {
            let Some(file) = self.files.get(path) else { continue };
            // A file renamed or removed since it was read: its rows come back when the watcher
            // has re-read it; the other files still show theirs.
            let Ok(bytes) = file.source.bytes() else { continue };
            let bytes = &bytes[..file.len.min(bytes.len())];
            for (key, row) in ingest::read_rows(path, bytes, run_id) {
                // A checkpoint run's totals come from its checkpoint rows only (task rows of the
                // same id elsewhere are another kind of run).
                if row.task_name.is_some() == run.tasks.is_empty() {
                    continue;
                }
                if seen.insert(key) {
                    checkpoints.push(row);
                }
            }
        }
        if run.tasks.is_empty() {
            // Missing durations first, as the totals take the largest.
            checkpoints.sort_by(|a, b| {
                let d = |c: &Checkpoint| c.duration_s.map_or((0, 0.0), |d| (1, d));
                let (da, db) = (d(a), d(b));
                da.0.cmp(&db.0).then(da.1.total_cmp(&db.1)).then_with(|| a.file.cmp(&b.file)).then(a.line.cmp(&b.line))
            });
        } else {
            checkpoints.sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
        }
        Ok(Some(RunDetail { run: run.clone(), checkpoints }))
    }

    /// Where collected runs' checkpoints are read from (kept by every later version).
    pub fn set_row_store(&mut self, store: Arc<dyn RowStore>) {
        self.row_store = RowStoreRef(Some(store));
    }

    /// A run with its checkpoints, and how many it has: a file's rows read again (all, or with
    /// `thinned` at most [`crate::pages::MAX_CHECKPOINT_ROWS`]), a collected run's read from its
    /// database, thinned there (its records can be millions; the checkpoints API pages
    /// through all of them).
    pub async fn detail(
        &self,
        run_id: &str,
        mode: DatasetMode,
        thinned: bool,
    ) -> Result<Option<(RunDetail, usize)>, String> {
        let Some(mut d) = self.run_detail(run_id, mode).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if let Some(store) = self.row_store_of(&d.run) {
            let (rows, total) = store.checkpoints(run_id, crate::pages::MAX_CHECKPOINT_ROWS).await?;
            d.checkpoints = named(rows, &d.run);
            return Ok(Some((d, total)));
        }
        let total = d.checkpoints.len();
        if thinned {
            d.checkpoints = crate::pages::thin(d.checkpoints);
        }
        Ok(Some((d, total)))
    }

    /// A run's checkpoints after the `after`-th (numbered from 1 in time order, running totals),
    /// at most `limit`, and how many it has (`None`: no such run): a collected run's read from
    /// its database a page at a time, a file's from its rows.
    pub async fn checkpoints_page(
        &self,
        run_id: &str,
        after: usize,
        limit: usize,
    ) -> Result<Option<(Vec<Checkpoint>, usize)>, String> {
        let Some(run) = self.run(run_id, DatasetMode::Latest) else { return Ok(None) };
        if let Some(store) = self.row_store_of(run) {
            let (rows, total) = store.page(run_id, after, limit).await?;
            return Ok(Some((named(rows, run), total)));
        }
        let all = self.run_detail(run_id, DatasetMode::Latest).map_err(|e| e.to_string())?;
        let all = all.map(|d| d.checkpoints).unwrap_or_default();
        let total = all.len();
        Ok(Some((all.into_iter().skip(after).take(limit).collect(), total)))
    }

    /// The store that holds `run`'s rows, for a collected run (when there is one).
    fn row_store_of(&self, run: &Run) -> Option<&Arc<dyn RowStore>> {
        self.row_store.0.as_ref().filter(|_| run.source == crate::model::RunSource::Collected)
    }

    /// Positions of the runs of `mode` in the order `key` sorts them, computed once per version
    /// of the runs.
    pub fn order(&self, mode: DatasetMode, key: SortKey, desc: bool) -> &[u32] {
        let k = SortKey::ALL.iter().position(|x| *x == key).unwrap_or(0);
        self.derived.orders[slot(mode)][k][usize::from(desc)].get_or_init(|| sort_order(self.runs(mode), key, desc))
    }

    /// What the Runs page's filters offer.
    pub fn filter_values(&self) -> &FilterValues {
        self.derived.values.get_or_init(|| FilterValues::of(self.runs(DatasetMode::Latest)))
    }

    /// One page of the Runs table.
    pub fn runs_page(&self, q: &RunQuery) -> RunsPage {
        let mode = q.mode();
        let mut page =
            q.page_in(self.runs(mode), self.order(mode, q.sort_key(), q.is_descending()), self.filter_values());
        let join = self.metrics();
        page.metrics =
            self.derived.metric_names.get_or_init(|| join.names().into_iter().map(|(n, _)| n).collect()).clone();
        if let Some(metric) = &q.metric {
            for row in &mut page.rows {
                row.metric = join.by_run.get(&row.run_id).and_then(|m| m.get(metric)).map(|j| j.value);
            }
        }
        page
    }

    /// The runs `q` selects, in its order, assessed in `mode`.
    pub fn select<'a>(&'a self, q: &'a RunQuery, mode: DatasetMode) -> impl Iterator<Item = &'a Run> + 'a {
        q.ordered(self.runs(mode), self.order(mode, q.sort_key(), q.is_descending()))
    }
}

/// Checkpoints read from a store, named by the run's display path (as a file's rows are by
/// their file's).
fn named(mut rows: Vec<Checkpoint>, run: &Run) -> Vec<Checkpoint> {
    let file = run.source_files.first().cloned().unwrap_or_default();
    for c in &mut rows {
        c.file.clone_from(&file);
    }
    rows
}

/// One run from what its files hold of it (`parts` in path order). Checkpoint rows win over task
/// rows; the totals are the checkpoint with the largest duration across files (the later file
/// on ties); task rows are summed once each.
fn merge(parts: &[&RunPart], mapping: &[(String, String)]) -> Option<Arc<Run>> {
    // A collected run is what its trackers posted: a file or an upload that claims its id (it
    // is shown on the pages) cannot add to it.
    let collected: Vec<&RunPart>;
    let parts = if parts.iter().any(|p| p.run.source == crate::model::RunSource::Collected) {
        collected = parts.iter().copied().filter(|p| p.run.source == crate::model::RunSource::Collected).collect();
        &collected[..]
    } else {
        parts
    };
    // An id two trackers claim (a file naming another's run): CodeCarbon's files, as for a
    // collected run, are the run; another tracker's cannot add to it.
    let codecarbon: Vec<&RunPart>;
    let parts = if parts.iter().any(|p| p.run.tool.is_some()) && parts.iter().any(|p| p.run.tool.is_none()) {
        codecarbon = parts.iter().copied().filter(|p| p.run.tool.is_none()).collect();
        &codecarbon[..]
    } else {
        parts
    };
    // Most runs live in one file: that part is the run as it is (no copy).
    if let [only] = parts {
        return Some(only.run.clone());
    }
    let checkpoints: Vec<&RunPart> = parts.iter().copied().filter(|p| p.best.is_some()).collect();
    let sources: Vec<String> = parts.iter().flat_map(|p| p.run.source_files.iter().cloned()).collect();
    let mut run = if !checkpoints.is_empty() {
        let mut best = checkpoints[0];
        for p in &checkpoints[1..] {
            let (Some((h1, d1, _)), Some((h2, d2, _))) = (best.best, p.best) else { continue };
            if (h2, d2) >= (h1, d1) {
                best = p;
            }
        }
        let mut run = (*best.run).clone();
        // carbontracker's two logs of one run: each tells part of it.
        if run.tool.as_deref() == Some(crate::trackers::CARBONTRACKER) {
            for p in &checkpoints {
                if !std::ptr::eq(*p, best) && p.run.tool == run.tool {
                    crate::trackers::fill_from(&mut run, &p.run);
                }
            }
        }
        let mut keys: Vec<u64> = checkpoints.iter().flat_map(|p| p.keys.iter().copied()).collect();
        keys.sort_unstable();
        keys.dedup();
        run.checkpoints = keys.len();
        run
    } else {
        let last = parts.iter().max_by_key(|p| p.tasks.iter().map(|t| t.line).max())?;
        let mut run = (*last.run).clone();
        let mut tasks: Vec<ingest::TaskRow> = parts.iter().flat_map(|p| p.tasks.iter().cloned()).collect();
        dedup_tasks(&mut tasks);
        sum_tasks(&mut run, &tasks);
        run
    };
    run.team = sources.first().and_then(|f| team_of(f, mapping));
    run.source_files = sources;
    Some(Arc::new(run))
}

/// How [`explain_constant_gaps`]' explanations begin (to tell them from the grid's own).
const EXPLAINED_BY_OTHERS: &str = "the CSV implies ";

/// Whether `r`'s reason is [`explain_constant_gaps`]' (it depends on other runs).
fn explained_by_others(r: &Run) -> bool {
    r.assessment.delta_reason.as_ref().is_some_and(|d| {
        d.kind == crate::model::DeltaKind::OlderCodecarbonData && d.detail.starts_with(EXPLAINED_BY_OTHERS)
    })
}

/// A gap no embedded figure explains, but whose implied intensity recurs in several runs at one
/// place, is a static figure of an older CodeCarbon release (its data files changed since); live
/// values (Electricity Maps) vary from run to run, so a one-off stays unexplained. Runs whose
/// reason does not change are not copied (runs kept from the previous version are shared); a
/// run explained before whose place no longer has another such run is assessed again
/// (`reassess`).
fn explain_constant_gaps(runs: &mut [Arc<Run>], reassess: impl Fn(&Run) -> crate::model::Assessment + Sync) {
    use crate::model::{DeltaKind, DeltaReason};
    /// The place (case aside) and the implied intensity to 4 significant digits, hashed: no
    /// allocation per run.
    fn key(r: &Run) -> Option<(u64, i64, i32)> {
        let imp = r.assessment.implied_intensity_g_per_kwh?;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [&r.cloud_provider, &r.cloud_region, &r.country_iso_code] {
            for c in part.as_deref().unwrap_or("").chars().flat_map(char::to_lowercase).chain(['/']) {
                h = (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3);
            }
        }
        if imp == 0.0 || !imp.is_finite() {
            return Some((h, 0, 0));
        }
        let exp = imp.abs().log10().floor() as i32;
        Some((h, (imp / 10f64.powi(exp - 3)).round() as i64, exp))
    }
    let unexplained = |r: &Run| r.assessment.delta_reason.as_ref().is_some_and(|d| d.kind == DeltaKind::LiveOrUnknown);
    let candidate = |r: &Run| unexplained(r) || explained_by_others(r);
    let keys: Vec<Option<(u64, i64, i32)>> =
        runs.par_iter().map(|r| if candidate(r) { key(r) } else { None }).collect();
    let mut counts: HashMap<(u64, i64, i32), usize> = HashMap::new();
    for k in keys.iter().flatten() {
        *counts.entry(*k).or_default() += 1;
    }
    runs.par_iter_mut().zip(keys).for_each(|(r, k)| {
        let Some(k) = k else { return };
        let n = counts.get(&k).copied().unwrap_or(0);
        if n >= 2 && unexplained(r) {
            // Copied only when it changes (others may share it).
            let r = Arc::make_mut(r);
            let version = r.codecarbon_version.clone().unwrap_or_else(|| format!("({} layout)", r.schema));
            r.assessment.delta_reason = Some(DeltaReason {
                kind: DeltaKind::OlderCodecarbonData,
                detail: format!(
                    "{EXPLAINED_BY_OTHERS}{:.1} g/kWh, as do other runs at this place: a static figure of CodeCarbon \
                     {version}'s data, since updated (recomputed with {:.1})",
                    r.assessment.implied_intensity_g_per_kwh.unwrap_or(f64::NAN),
                    r.assessment.intensity_g_per_kwh
                ),
            });
        } else if n < 2 && explained_by_others(r) {
            let r = Arc::make_mut(r);
            r.assessment = reassess(r);
        }
    });
}
