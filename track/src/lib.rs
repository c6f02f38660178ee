//! `carbon-dash track -- <command>`: runs a command and measures the energy it takes (GPU by
//! NVML's energy counters, CPU by RAPL or CodeCarbon's load model, RAM by CodeCarbon's DIMM
//! model), writing a checkpoint row to CodeCarbon's `emissions.csv` every interval, so a crash
//! loses at most one interval and `carbon-dash serve` follows the run live. Optionally posts each
//! interval to a collection API as CodeCarbon's tracker does.
//!
//! The rows are made by the same writer as collected runs ([`carbon_core::collect::Rows`]):
//! each interval is a record of what it used (a delta); the writer keeps the running totals.

pub mod gpu;
pub mod host;
pub mod place;
pub mod rapl;

use carbon_core::collect::{EmissionIn, Experiment, Rows, RunIn};
use carbon_core::grid::{Grid, Location};
use carbon_core::model::DatasetMode;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// CodeCarbon's default experiment id, used when none is given (as its tracker does).
pub const DEFAULT_EXPERIMENT: &str = "5b0fa12a-3dd7-45bb-9766-cc326314d9f1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The whole machine's CPU and RAM.
    Machine,
    /// The command and its children (CPU by their share of the cores, RAM by their memory).
    Process,
}

/// Where to post each interval, as CodeCarbon's API output does.
#[derive(Debug, Clone)]
pub struct Api {
    pub endpoint: String,
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub project: String,
    pub experiment_id: String,
    pub output: PathBuf,
    pub interval: Duration,
    pub country: Option<String>,
    pub region: Option<String>,
    pub cloud_provider: Option<String>,
    pub cloud_region: Option<String>,
    pub pue: f64,
    pub mode: Mode,
    /// W, for the CPU estimate without RAPL (default: 4 W a thread, as CodeCarbon).
    pub cpu_tdp: Option<f64>,
    pub api: Option<Api>,
    /// `/sys/class/powercap` and `/proc` (other folders in tests).
    pub powercap: PathBuf,
    pub proc_root: PathBuf,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            project: "codecarbon".into(),
            experiment_id: DEFAULT_EXPERIMENT.into(),
            output: PathBuf::from("."),
            interval: Duration::from_secs(10),
            country: None,
            region: None,
            cloud_provider: None,
            cloud_region: None,
            pue: 1.0,
            mode: Mode::Machine,
            cpu_tdp: None,
            api: None,
            powercap: PathBuf::from(rapl::POWERCAP),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("nothing to run: give the command after --, e.g. carbon-dash track -- python train.py")]
    NoCommand,
    /// Exit code 127 (not found) or 126 (not runnable), as `env` and `timeout` say.
    #[error("cannot start {0}: {1}")]
    Start(String, std::io::Error, i32),
    #[error("cannot write {0}: {1}")]
    Output(String, std::io::Error),
    #[error("{0}")]
    Place(String),
}

fn start_error(program: &str, e: std::io::Error) -> TrackError {
    let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
    TrackError::Start(program.to_string(), e, code)
}

impl TrackError {
    /// The exit code to leave with.
    pub fn exit_code(&self) -> i32 {
        match self {
            TrackError::Start(_, _, code) => *code,
            _ => 1,
        }
    }
}

/// What the tracker says on stderr: prefixed, so it stands out from the command's own output.
fn say(msg: &str) {
    eprintln!("carbon-dash track: {msg}");
}

/// The local time now with its UTC offset, as CodeCarbon's tracker writes it:
/// `2026-11-29T18:39:22.172723+01:00`.
fn local_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which lives on this stack frame.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    let offset = if ok { tm.tm_gmtoff } else { 0 };
    let local = carbon_core::time::from_unix_micros(now.as_micros() as i64 + offset * 1_000_000);
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.abs();
    match local {
        Some(t) => format!("{}{sign}{:02}:{:02}", carbon_core::time::iso_micros(&t), off / 3600, off % 3600 / 60),
        None => String::new(),
    }
}

/// Where the runs use electricity: from the flags, else a guess from the time zone (said so).
fn experiment(o: &Options) -> Result<(Experiment, String), TrackError> {
    let grid = Grid::embedded();
    let (iso, how) = match &o.country {
        Some(c) => match grid.iso3(c) {
            Some(iso) => (Some(iso.to_string()), format!("{iso} (--country)")),
            None => {
                return Err(TrackError::Place(format!(
                    "country '{c}' is not in the grid data: give an ISO 3166 alpha-3 code, e.g. FRA"
                )))
            }
        },
        None if o.cloud_provider.is_some() => (None, "the cloud region given".to_string()),
        None => {
            let zone = place::time_zone(Path::new("/etc"));
            let iso2 =
                zone.as_deref().and_then(|z| place::country_of_zone(Path::new("/usr/share/zoneinfo/zone.tab"), z));
            match (zone, iso2.as_deref().and_then(|c| grid.iso3(c))) {
                (Some(z), Some(iso)) => (
                    Some(iso.to_string()),
                    format!("{iso}, a weak guess from the time zone {z}: pass --country to be sure"),
                ),
                (z, _) => (
                    None,
                    format!(
                        "unknown (time zone {}): the world average is used; pass --country",
                        z.unwrap_or_else(|| "not set".into())
                    ),
                ),
            }
        }
    };
    let exp = Experiment {
        id: o.experiment_id.clone(),
        name: String::new(),
        project_id: String::new(),
        project: o.project.clone(),
        team: None,
        country_name: iso.as_deref().and_then(|i| grid.country_name(i)).map(str::to_string),
        country_iso_code: iso,
        region: o.region.clone(),
        cloud_provider: o.cloud_provider.clone(),
        cloud_region: o.cloud_region.clone(),
    };
    Ok((exp, how))
}

/// `DIR/emissions.csv`, opened for appending. A file with another header (another CodeCarbon
/// version) is moved aside to `emissions.csv_N.bak`, as CodeCarbon does.
fn open_output(dir: &Path) -> Result<(std::fs::File, PathBuf), TrackError> {
    let path = dir.join("emissions.csv");
    let err = |e| TrackError::Output(path.display().to_string(), e);
    std::fs::create_dir_all(dir).map_err(err)?;
    let header = carbon_core::collect::codecarbon_header();
    let first_line = std::fs::read_to_string(&path).ok().map(|t| t.lines().next().unwrap_or("").to_string());
    if let Some(line) = &first_line {
        if line.trim_start_matches('\u{feff}') != header {
            let bak =
                (1..).map(|n| dir.join(format!("emissions.csv_{n}.bak"))).find(|p| !p.exists()).unwrap_or_default();
            std::fs::rename(&path, &bak).map_err(err)?;
            say(&format!("{} had other columns: moved to {}", path.display(), bak.display()));
        }
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(err)?;
    if file.metadata().map(|m| m.len() == 0).unwrap_or(true) {
        file.write_all(format!("{header}\n").as_bytes()).map_err(err)?;
    }
    Ok((file, path))
}

/// What is measured, opened once.
struct Meters {
    rapl: Option<rapl::Rapl>,
    gpus: Option<gpu::Gpus>,
    cores: f64,
    /// W at full load, for the estimate without RAPL.
    tdp: f64,
    ram_gb: f64,
    /// For the CPU estimate: machine busy/total seconds, or the tree's CPU seconds, last seen.
    last_machine: Option<(f64, f64)>,
    last_tree_cpu: f64,
    /// Counter energy read since the last row (RAPL wraps in minutes: read at least every
    /// [`COUNTER_READS`]).
    pending_cpu_j: Option<f64>,
    pending_gpu_j: f64,
}

/// Longest time between two reads of the energy counters (RAPL's wraps after ~262 kJ, some
/// minutes at full power), whatever the interval between rows.
const COUNTER_READS: Duration = Duration::from_secs(10);

/// One interval's measurement.
struct Sample {
    cpu_j: f64,
    gpu_j: f64,
    ram_j: f64,
    gpu_w: f64,
    cpu_util: f64,
    gpu_util: f64,
    ram_util: f64,
}

impl Meters {
    /// Reads the energy counters into the pending totals (between rows).
    fn read_counters(&mut self) {
        if let Some(r) = &mut self.rapl {
            match r.joules() {
                Ok(j) => *self.pending_cpu_j.get_or_insert(0.0) += j,
                Err(e) => {
                    say(&format!("RAPL stopped answering ({e}): estimating from the CPU load from now on"));
                    self.rapl = None;
                    self.pending_cpu_j = None;
                }
            }
        }
        if let Some(g) = &mut self.gpus {
            self.pending_gpu_j += g.counters_j();
        }
    }

    /// Forgets what the counters counted so far (before the first interval starts).
    fn reset(&mut self) {
        self.read_counters();
        self.pending_cpu_j = None;
        self.pending_gpu_j = 0.0;
    }

    fn sample(&mut self, o: &Options, child: u32, dt: f64, ended: Option<f64>) -> Sample {
        // The command's own tree matters only in process mode: machine mode reads no process.
        let (mut tree_cpu, tree_rss) = match o.mode {
            Mode::Process => host::tree(&o.proc_root, child),
            Mode::Machine => (0.0, 0),
        };
        // The command has ended: its whole tree's CPU time, as the kernel accounts it.
        if let Some(total) = ended {
            tree_cpu = tree_cpu.max(total);
        }
        let machine = host::machine_cpu(&o.proc_root);
        let load = match (machine, self.last_machine) {
            (Some((b1, t1)), Some((b0, t0))) if t1 > t0 => (b1 - b0) / (t1 - t0),
            _ => 0.0,
        };
        self.last_machine = machine.or(self.last_machine);
        let tree_cores = ((tree_cpu - self.last_tree_cpu) / dt.max(1e-3)).max(0.0);
        self.last_tree_cpu = tree_cpu;
        self.read_counters();
        let counted = self.pending_cpu_j.take();
        let cpu_j = match counted.filter(|_| self.rapl.is_some()) {
            Some(j) => j,
            None => {
                let w = match o.mode {
                    Mode::Machine => host::cpu_power_machine_w(self.tdp, load),
                    Mode::Process => host::cpu_power_process_w(self.tdp, tree_cores, self.cores),
                };
                w * dt
            }
        };
        let ram_w = match o.mode {
            Mode::Machine => host::ram_power_w(self.ram_gb),
            Mode::Process => host::ram_power_w(tree_rss as f64 / 1024f64.powi(3)),
        };
        let (gpu_w, gpu_util) = self.gpus.as_mut().map(|g| g.now()).unwrap_or((0.0, 0.0));
        let gpu_j =
            std::mem::take(&mut self.pending_gpu_j) + self.gpus.as_ref().map(|g| g.uncounted_w() * dt).unwrap_or(0.0);
        let ram_util = match o.mode {
            Mode::Machine => machine_ram_used(&o.proc_root).map(|u| 100.0 * u / self.ram_gb.max(1e-9)).unwrap_or(0.0),
            Mode::Process => 100.0 * tree_rss as f64 / 1024f64.powi(3) / self.ram_gb.max(1e-9),
        };
        let cpu_util = 100.0
            * match o.mode {
                Mode::Machine => load,
                Mode::Process => (tree_cores / self.cores.max(1.0)).min(1.0),
            };
        Sample { cpu_j, gpu_j, ram_j: ram_w * dt, gpu_w, cpu_util, gpu_util, ram_util: ram_util.min(100.0) }
    }
}

fn machine_ram_used(proc_root: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(proc_root.join("meminfo")).ok()?;
    let kb =
        |k: &str| -> Option<f64> { text.lines().find(|l| l.starts_with(k))?.split_whitespace().nth(1)?.parse().ok() };
    Some((kb("MemTotal:")? - kb("MemAvailable:")?) / 1024.0 / 1024.0)
}

/// Runs `command`, measuring it; returns the exit code to leave with (the command's, or 128 +
/// the signal that ended it).
pub fn run(o: &Options, command: &[String]) -> Result<i32, TrackError> {
    let (program, args) = command.split_first().ok_or(TrackError::NoCommand)?;
    let (exp, place_note) = experiment(o)?;
    let grid = Grid::embedded();
    let loc = Location {
        cloud_provider: exp.cloud_provider.as_deref(),
        cloud_region: exp.cloud_region.as_deref(),
        country_iso_code: exp.country_iso_code.as_deref(),
        country_name: exp.country_name.as_deref(),
        region: exp.region.as_deref(),
    };
    let intensity = grid.resolve(&loc, DatasetMode::Latest);
    let cores = host::cpus_online();
    let tdp = o.cpu_tdp.unwrap_or(host::W_PER_THREAD * cores);
    let ram_gb = host::memory_gb(&o.proc_root).unwrap_or(0.0);
    let rapl = rapl::Rapl::open(&o.powercap);
    let gpus = gpu::Gpus::open();
    say(&match &rapl {
        Ok(r) => format!("CPU: RAPL, {} package(s)", r.domains()),
        Err(e) => format!(
            "CPU: estimated from the load with a {tdp} W TDP ({}; {e})",
            if o.cpu_tdp.is_some() {
                "--cpu-tdp"
            } else {
                "4 W a thread, CodeCarbon's figure for an unknown CPU: --cpu-tdp gives yours"
            }
        ),
    });
    say(&match &gpus {
        Ok(g) => format!("GPU: NVML, {}", g.model()),
        Err(e) => format!("GPU: {e}"),
    });
    say(&format!(
        "RAM: CodeCarbon's model, {:.1} GB; location: {place_note}; grid {:.0} g/kWh ({})",
        ram_gb, intensity.g_per_kwh, intensity.label
    ));
    let run_in = RunIn {
        timestamp: local_now(),
        experiment_id: exp.id.clone(),
        os: Some(
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|r| format!("Linux-{}", r.trim()))
                .unwrap_or_else(|_| std::env::consts::OS.to_string()),
        ),
        python_version: None,
        codecarbon_version: Some(format!("carbon-dash-track-{}", env!("CARGO_PKG_VERSION"))),
        cpu_count: Some(cores),
        cpu_model: host::cpu_model(&o.proc_root),
        gpu_count: Some(gpus.as_ref().map(|g| g.names.len() as f64).unwrap_or(0.0)),
        gpu_model: gpus.as_ref().ok().map(gpu::Gpus::model),
        longitude: None,
        latitude: None,
        region: o.cloud_region.clone(),
        provider: o.cloud_provider.clone(),
        ram_total_size: Some(ram_gb),
        tracking_mode: Some(if o.mode == Mode::Machine { "machine" } else { "process" }.to_string()),
        extra: None,
    };
    let (mut file, path) = open_output(&o.output)?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let mut rows = Rows::new(&exp, &run_id, &run_in);
    rows.experiment_name = false;
    rows.pue = Some(o.pue);
    let poster = o.api.clone().map(|api| api::Poster::start(api, run_in.clone()));
    say(&format!("run {run_id}: a row every {:.0} s in {}", o.interval.as_secs_f64(), path.display()));

    // SAFETY: resets SIGCHLD to its default so the command can be waited for (a parent that
    // ignored it would have the kernel reap the command before its status is read).
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let mut child: Child = Command::new(program).args(args).spawn().map_err(|e| start_error(program, e))?;
    let pid = child.id();
    let signals = forward_signals(pid);
    let mut meters = Meters {
        rapl: rapl.ok(),
        gpus: gpus.ok(),
        cores,
        tdp,
        ram_gb,
        last_machine: host::machine_cpu(&o.proc_root),
        last_tree_cpu: 0.0,
        pending_cpu_j: None,
        pending_gpu_j: 0.0,
    };
    // The first interval starts now: what the counters counted while starting is not the command's.
    meters.reset();
    let (mut total_s, mut total_cpu_j, mut total_gpu_j, mut total_ram_j) = (0.0, 0.0, 0.0, 0.0);
    let (mut util_cpu_s, mut util_gpu_s, mut util_ram_s) = (0.0, 0.0, 0.0);
    let mut last = Instant::now();
    let mut last_read = last;
    let status: Option<i32> = loop {
        let until = last + o.interval;
        // Polls for the command's end without reaping it (its pid stays ours, and its process
        // tree readable, until the last row is written and signals stop being forwarded).
        let ended = loop {
            if let Some(st) = ended_status(pid) {
                break Some(st);
            }
            let now = Instant::now();
            if now >= until {
                break None;
            }
            if now.duration_since(last_read) >= COUNTER_READS {
                meters.read_counters();
                last_read = now;
            }
            std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(now)));
        };
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        last_read = now;
        let s = meters.sample(o, pid, dt, ended.and_then(|_| children_cpu_s()));
        let kwh = |j: f64| j * o.pue / 3.6e6;
        total_s += dt;
        total_cpu_j += s.cpu_j;
        total_gpu_j += s.gpu_j;
        total_ram_j += s.ram_j;
        util_cpu_s += s.cpu_util * dt;
        util_gpu_s += s.gpu_util * dt;
        util_ram_s += s.ram_util * dt;
        let energy = kwh(s.cpu_j + s.gpu_j + s.ram_j);
        let co2 = energy * intensity.g_per_kwh / 1000.0;
        let record = EmissionIn {
            timestamp: local_now(),
            run_id: run_id.clone(),
            duration: dt,
            emissions_sum: Some(co2),
            emissions_rate: Some(co2 / dt.max(1e-9)),
            // The hardware's mean power since the start (PUE is in the energies only), and the
            // mean utilisation since the start, as CodeCarbon reports them.
            cpu_power: Some(total_cpu_j / total_s),
            gpu_power: Some(if total_gpu_j > 0.0 { total_gpu_j / total_s } else { s.gpu_w }),
            ram_power: Some(total_ram_j / total_s),
            cpu_energy: Some(kwh(s.cpu_j)),
            gpu_energy: Some(kwh(s.gpu_j)),
            ram_energy: Some(kwh(s.ram_j)),
            energy_consumed: Some(energy),
            cpu_utilization_percent: Some(util_cpu_s / total_s),
            gpu_utilization_percent: Some(util_gpu_s / total_s),
            ram_utilization_percent: Some(util_ram_s / total_s),
            wue: Some(0.0),
            extra: None,
        };
        let mut line = String::new();
        rows.push(&mut line, &record);
        write_row(&mut file, &path, &line);
        if let Some(p) = &poster {
            p.send(record);
        }
        if let Some(st) = ended {
            break st;
        }
    };
    if let Some(h) = signals {
        h.close();
    }
    // Nothing forwards signals any more: Ctrl-C and SIGTERM end the tracker again.
    default_signals();
    // Reaps the command (its status was read above).
    let _ = child.wait();
    if let Some(p) = poster {
        p.finish();
    }
    let total_j = total_cpu_j + total_gpu_j + total_ram_j;
    let kwh = |j: f64| carbon_core::units::energy_kwh(j * o.pue / 3.6e6);
    say(&format!(
        "done: {}, {} (CPU {}, GPU {}, RAM {}), {} at {:.0} g/kWh",
        carbon_core::units::duration_s(total_s),
        kwh(total_j),
        kwh(total_cpu_j),
        kwh(total_gpu_j),
        kwh(total_ram_j),
        carbon_core::units::co2_kg(total_j * o.pue / 3.6e6 * intensity.g_per_kwh / 1000.0),
        intensity.g_per_kwh
    ));
    match status {
        Some(code) if code >= 0 => Ok(code),
        // Ended by a signal: end the same way, so a calling shell sees it (Ctrl-C stops a loop).
        Some(code) => {
            let sig = -code;
            if [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE].contains(&sig) {
                // SAFETY: the handler is the default again: raising the signal ends this process.
                unsafe { libc::raise(sig) };
            }
            Ok(128 + sig)
        }
        None => {
            say("the command ended, but its exit status was lost (reaped elsewhere)");
            Ok(1)
        }
    }
}

/// Once the command has ended, its exit code (negative: the signal that ended it; `None`: lost,
/// when the kernel reaped it for a parent that ignored SIGCHLD). Does not reap it.
fn ended_status(pid: u32) -> Option<Option<i32>> {
    // SAFETY: waitid writes only into `info`; WNOWAIT leaves the child to be reaped later.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
    };
    if r != 0 {
        return Some(None);
    }
    // SAFETY: the fields waitid fills for a child that ended.
    let (got, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if got == 0 {
        return None;
    }
    Some(Some(if code == libc::CLD_EXITED { status } else { -status }))
}

/// CPU seconds of this process's ended children (the command and what it waited for).
fn children_cpu_s() -> Option<f64> {
    // SAFETY: getrusage writes only into `u`.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
        return None;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Some(t(u.ru_utime) + t(u.ru_stime))
}

/// The forwarded signals back to their default action.
fn default_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2] {
        // SAFETY: installs the default action; no handler code of ours runs.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// Appends one row in one write, then syncs it. A write that fails half-way is cut back, so
/// the next row never lands glued to a fragment.
fn write_row(file: &mut std::fs::File, path: &Path, line: &str) {
    let len = file.metadata().map(|m| m.len()).ok();
    if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.sync_data()) {
        say(&format!("cannot write {}: {e}", path.display()));
        if let Some(len) = len {
            let _ = file.set_len(len);
        }
    }
}

/// Signals sent to the tracker by another process (`kill`, a scheduler) go on to the command. A
/// terminal's Ctrl-C reaches the command by itself (same process group): not sent twice.
fn forward_signals(child: u32) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    use signal_hook::iterator::exfiltrator::WithOrigin;
    let mut signals =
        signal_hook::iterator::SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])
            .ok()?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for origin in signals.forever() {
            if origin.process.is_some() {
                // SAFETY: kill only sends a signal to the child's pid.
                unsafe { libc::kill(child as libc::pid_t, origin.signal) };
            }
        }
    });
    Some(handle)
}

mod api {
    //! Posting each interval to a collection API, as CodeCarbon 3.3.2's tracker does
    //! (`POST /runs` once, then `POST /emissions`), off the measuring thread.
    use super::{say, Api};
    use carbon_core::collect::{EmissionIn, RunIn};
    use serde_json::json;
    use std::sync::mpsc;

    pub struct Poster {
        tx: mpsc::SyncSender<EmissionIn>,
        thread: std::thread::JoinHandle<()>,
    }

    fn run_body(r: &RunIn) -> serde_json::Value {
        json!({"timestamp": r.timestamp, "experiment_id": r.experiment_id, "os": r.os,
            "python_version": r.python_version, "codecarbon_version": r.codecarbon_version,
            "cpu_count": r.cpu_count, "cpu_model": r.cpu_model, "gpu_count": r.gpu_count,
            "gpu_model": r.gpu_model.clone().unwrap_or_default(), "longitude": null, "latitude": null,
            "region": r.region, "provider": r.provider, "ram_total_size": r.ram_total_size,
            "tracking_mode": r.tracking_mode})
    }

    fn emission_body(e: &EmissionIn, run_id: &str) -> serde_json::Value {
        json!({"timestamp": e.timestamp, "run_id": run_id, "duration": e.duration.floor().max(1.0) as i64,
            "emissions_sum": e.emissions_sum, "emissions_rate": e.emissions_rate, "cpu_power": e.cpu_power,
            "gpu_power": e.gpu_power, "ram_power": e.ram_power, "cpu_energy": e.cpu_energy,
            "gpu_energy": e.gpu_energy, "ram_energy": e.ram_energy, "energy_consumed": e.energy_consumed,
            "cpu_utilization_percent": e.cpu_utilization_percent,
            "gpu_utilization_percent": e.gpu_utilization_percent,
            "ram_utilization_percent": e.ram_utilization_percent, "wue": e.wue})
    }

    /// `b` added to `a` (a record under a second waits for the next: CodeCarbon's server takes
    /// whole seconds).
    fn merge(a: &mut EmissionIn, b: EmissionIn) {
        let add = |x: Option<f64>, y: Option<f64>| Some(x.unwrap_or(0.0) + y.unwrap_or(0.0));
        a.duration += b.duration;
        a.emissions_sum = add(a.emissions_sum, b.emissions_sum);
        a.emissions_rate = a.emissions_sum.map(|e| e / a.duration.max(1e-9));
        a.cpu_energy = add(a.cpu_energy, b.cpu_energy);
        a.gpu_energy = add(a.gpu_energy, b.gpu_energy);
        a.ram_energy = add(a.ram_energy, b.ram_energy);
        a.energy_consumed = add(a.energy_consumed, b.energy_consumed);
        a.timestamp = b.timestamp;
        (a.cpu_power, a.gpu_power, a.ram_power) = (b.cpu_power, b.gpu_power, b.ram_power);
        a.cpu_utilization_percent = b.cpu_utilization_percent;
        a.gpu_utilization_percent = b.gpu_utilization_percent;
        a.ram_utilization_percent = b.ram_utilization_percent;
    }

    /// After a post the server did not answer, posts wait this long (records meanwhile are
    /// added up, not lost).
    const BACK_OFF: std::time::Duration = std::time::Duration::from_secs(30);
    /// Longest the tracker waits at exit for posts still queued.
    const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

    impl Poster {
        pub fn start(api: Api, run: RunIn) -> Poster {
            let (tx, rx) = mpsc::sync_channel::<EmissionIn>(1024);
            let thread = std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(std::time::Duration::from_secs(2)))
                    .http_status_as_error(false)
                    .build()
                    .into();
                let base = api.endpoint.trim_end_matches('/').to_string();
                let post = |path: &str, body: serde_json::Value| -> Result<serde_json::Value, (bool, String)> {
                    let mut req = agent.post(&format!("{base}{path}"));
                    // As CodeCarbon's client: no header without a key.
                    if !api.key.is_empty() {
                        req = req.header("x-api-token", &api.key);
                    }
                    let mut res = req.send_json(body).map_err(|e| (true, e.to_string()))?;
                    let status = res.status().as_u16();
                    let text = res.body_mut().read_to_string().unwrap_or_default();
                    if status == 201 {
                        Ok(serde_json::from_str(&text).unwrap_or_default())
                    } else {
                        Err((false, format!("{status} {text}")))
                    }
                };
                let mut run_id: Option<String> = None;
                let mut pending: Option<EmissionIn> = None;
                let mut quiet_until: Option<std::time::Instant> = None;
                let mut said = std::collections::HashSet::new();
                let mut closing: Option<std::time::Instant> = None;
                loop {
                    let next = match closing {
                        None => match rx.recv() {
                            Ok(e) => Some(e),
                            Err(_) => {
                                closing = Some(std::time::Instant::now());
                                None
                            }
                        },
                        Some(_) => None,
                    };
                    if let Some(e) = next {
                        match &mut pending {
                            Some(p) => merge(p, e),
                            None => pending = Some(e),
                        }
                    }
                    if closing.is_some_and(|c| c.elapsed() > DRAIN) {
                        say(&format!("gave up posting to {base}: the last records are only in the CSV"));
                        return;
                    }
                    let now = std::time::Instant::now();
                    let ready = pending.as_ref().is_some_and(|p| p.duration >= 1.0);
                    if !ready || quiet_until.is_some_and(|q| now < q && closing.is_none()) {
                        if closing.is_some() {
                            return;
                        }
                        continue;
                    }
                    let mut fail = |(unreachable, why): (bool, String)| {
                        if said.insert(why.clone()) {
                            say(&format!("posting to {base} failed: {why}"));
                        }
                        if unreachable {
                            quiet_until = Some(std::time::Instant::now() + BACK_OFF);
                        }
                    };
                    if run_id.is_none() {
                        match post("/runs", run_body(&run)) {
                            Ok(v) => run_id = v["id"].as_str().map(str::to_string),
                            Err(e) => fail(e),
                        }
                    }
                    let Some(id) = &run_id else {
                        if closing.is_some() {
                            return;
                        }
                        continue;
                    };
                    if let Some(e) = pending.take() {
                        if let Err(err) = post("/emissions", emission_body(&e, id)) {
                            // Kept for the next try when the server was out of reach.
                            if err.0 {
                                pending = Some(e);
                            }
                            fail(err);
                        }
                    }
                    if closing.is_some() && pending.is_none() {
                        return;
                    }
                }
            });
            Poster { tx, thread }
        }

        pub fn send(&self, e: EmissionIn) {
            let _ = self.tx.try_send(e);
        }

        /// Waits for the posts still queued.
        pub fn finish(self) {
            drop(self.tx);
            let _ = self.thread.join();
        }
    }
}
