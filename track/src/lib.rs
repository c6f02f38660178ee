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
    /// W, for the CPU estimate without RAPL.
    pub cpu_tdp: f64,
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
            cpu_tdp: host::DEFAULT_TDP_W,
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
    #[error("cannot start {0}: {1}")]
    Start(String, std::io::Error),
    #[error("cannot write {0}: {1}")]
    Output(String, std::io::Error),
    #[error("{0}")]
    Place(String),
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
    ram_gb: f64,
    /// For the CPU estimate: machine busy/total seconds, or the tree's CPU seconds, last seen.
    last_machine: Option<(f64, f64)>,
    last_tree_cpu: f64,
}

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
    fn sample(&mut self, o: &Options, child: u32, dt: f64) -> Sample {
        // The command's own tree matters only in process mode: machine mode reads no process.
        let (tree_cpu, tree_rss) = match o.mode {
            Mode::Process => host::tree(&o.proc_root, child),
            Mode::Machine => (0.0, 0),
        };
        let machine = host::machine_cpu(&o.proc_root);
        let load = match (machine, self.last_machine) {
            (Some((b1, t1)), Some((b0, t0))) if t1 > t0 => (b1 - b0) / (t1 - t0),
            _ => 0.0,
        };
        self.last_machine = machine.or(self.last_machine);
        let tree_cores = ((tree_cpu - self.last_tree_cpu) / dt.max(1e-3)).max(0.0);
        self.last_tree_cpu = tree_cpu;
        let cpu_j = match &mut self.rapl {
            Some(r) => match r.joules() {
                Ok(j) => j,
                Err(e) => {
                    say(&format!("RAPL stopped answering ({e}): estimating from the CPU load from now on"));
                    self.rapl = None;
                    0.0
                }
            },
            None => {
                let w = match o.mode {
                    Mode::Machine => host::cpu_power_machine_w(o.cpu_tdp, load),
                    Mode::Process => host::cpu_power_process_w(o.cpu_tdp, tree_cores, self.cores),
                };
                w * dt
            }
        };
        let ram_w = match o.mode {
            Mode::Machine => host::ram_power_w(self.ram_gb),
            Mode::Process => host::ram_power_w(tree_rss as f64 / 1024f64.powi(3)),
        };
        let (gpu_j, gpu_w, gpu_util) = self.gpus.as_mut().map(|g| g.sample(dt)).unwrap_or((0.0, 0.0, 0.0));
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
    let cores = std::thread::available_parallelism().map(|n| n.get() as f64).unwrap_or(1.0);
    let ram_gb = host::memory_gb(&o.proc_root).unwrap_or(0.0);
    let rapl = rapl::Rapl::open(&o.powercap);
    let gpus = gpu::Gpus::open();
    say(&match &rapl {
        Ok(r) => format!("CPU: RAPL, {} package(s)", r.domains()),
        Err(e) => format!("CPU: estimated from the load with a {} W TDP ({e})", o.cpu_tdp),
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
        region: None,
        provider: None,
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

    let mut child: Child =
        Command::new(program).args(args).spawn().map_err(|e| TrackError::Start(program.clone(), e))?;
    let pid = child.id();
    let signals = forward_signals(pid);
    let mut meters = Meters {
        rapl: rapl.ok(),
        gpus: gpus.ok(),
        cores,
        ram_gb,
        last_machine: host::machine_cpu(&o.proc_root),
        last_tree_cpu: if o.mode == Mode::Process { host::tree(&o.proc_root, pid).0 } else { 0.0 },
    };
    let (mut total_j, mut total_s, mut total_cpu_j, mut total_gpu_j, mut total_ram_j) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut last = Instant::now();
    let status = loop {
        let until = last + o.interval;
        let exited = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= until => break None,
                Ok(None) => {
                    std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())))
                }
                Err(e) => {
                    say(&format!("cannot wait for the command: {e}"));
                    break None;
                }
            }
        };
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        let s = meters.sample(o, pid, dt);
        let kwh = |j: f64| j * o.pue / 3.6e6;
        total_s += dt;
        total_cpu_j += s.cpu_j;
        total_gpu_j += s.gpu_j;
        total_ram_j += s.ram_j;
        total_j += s.cpu_j + s.gpu_j + s.ram_j;
        let energy = kwh(s.cpu_j + s.gpu_j + s.ram_j);
        let co2 = energy * intensity.g_per_kwh / 1000.0;
        let record = EmissionIn {
            timestamp: local_now(),
            run_id: run_id.clone(),
            duration: dt,
            emissions_sum: Some(co2),
            emissions_rate: Some(co2 / dt.max(1e-9)),
            // Mean power since the start, as CodeCarbon reports it.
            cpu_power: Some(total_cpu_j * o.pue / total_s),
            gpu_power: Some(if total_gpu_j > 0.0 { total_gpu_j * o.pue / total_s } else { s.gpu_w * o.pue }),
            ram_power: Some(total_ram_j * o.pue / total_s),
            cpu_energy: Some(kwh(s.cpu_j)),
            gpu_energy: Some(kwh(s.gpu_j)),
            ram_energy: Some(kwh(s.ram_j)),
            energy_consumed: Some(energy),
            cpu_utilization_percent: Some(s.cpu_util),
            gpu_utilization_percent: Some(s.gpu_util),
            ram_utilization_percent: Some(s.ram_util),
            wue: Some(0.0),
            extra: None,
        };
        let mut line = String::new();
        rows.push(&mut line, &record);
        // One write per row: a reader sees whole rows (carbon-dash's watcher waits for the
        // newline anyway), and a crash loses at most the interval being measured.
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.sync_data()) {
            say(&format!("cannot write {}: {e}", path.display()));
        }
        if let Some(p) = &poster {
            p.send(record);
        }
        if let Some(status) = exited {
            break status;
        }
    };
    if let Some(h) = signals {
        h.close();
    }
    if let Some(p) = poster {
        p.finish();
    }
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
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
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
                let post = |path: &str, body: serde_json::Value| -> Result<serde_json::Value, String> {
                    let mut res = agent
                        .post(&format!("{base}{path}"))
                        .header("x-api-token", &api.key)
                        .send_json(body)
                        .map_err(|e| e.to_string())?;
                    let status = res.status().as_u16();
                    let text = res.body_mut().read_to_string().unwrap_or_default();
                    if status == 201 {
                        Ok(serde_json::from_str(&text).unwrap_or_default())
                    } else {
                        Err(format!("{status} {text}"))
                    }
                };
                let mut run_id: Option<String> = None;
                for e in rx {
                    // Records under a second are not sent (CodeCarbon's client does the same).
                    if e.duration < 1.0 {
                        continue;
                    }
                    if run_id.is_none() {
                        match post("/runs", run_body(&run)) {
                            Ok(v) => run_id = v["id"].as_str().map(str::to_string),
                            Err(why) => say(&format!("POST {base}/runs failed: {why}")),
                        }
                    }
                    let Some(id) = &run_id else { continue };
                    if let Err(why) = post("/emissions", emission_body(&e, id)) {
                        say(&format!("POST {base}/emissions failed: {why}"));
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
