//! `carbon-dash track`: the binary around small commands, its CSV read by the same ingest and
//! `serve`, signals and exit codes passed through, and its posts to a collecting server.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_carbon-dash");

fn track(dir: &Path, extra: &[&str], command: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["track", "--interval", "1s", "--country", "FRA", "--output"]).arg(dir).args(extra).arg("--").args(command);
    c
}

/// `carbon-dash serve ARGS` on a free port, once it has printed `ready` (e.g. that it watches
/// the folder): the process and its address.
fn serve(args: &[&str], ready: &str) -> (std::process::Child, String) {
    let mut server = Command::new(BIN)
        .arg("serve")
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let (mut line, mut addr, mut is_ready) = (String::new(), String::new(), false);
    while !is_ready || addr.is_empty() {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the server ended");
        if let Some(rest) = line.trim().strip_prefix("Serving on http://") {
            addr = rest.split_whitespace().next().unwrap().to_string();
        }
        is_ready |= line.contains(ready);
    }
    // Keep reading its output, so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (server, addr)
}

/// The server's runs (`GET /api/v1/runs`).
fn api_runs(addr: &str) -> Vec<serde_json::Value> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /api/v1/runs HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap()
}

fn rows(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("emissions.csv")).unwrap_or_default().lines().map(str::to_string).collect()
}

fn column(header: &str, row: &str, name: &str) -> String {
    let i = header.split(',').position(|c| c == name).unwrap();
    row.split(',').nth(i).unwrap().to_string()
}

#[test]
fn a_tracked_command_writes_codecarbons_csv_with_a_row_per_interval_and_keeps_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let status = track(dir.path(), &["--project", "vit"], &["sh", "-c", "sleep 2.5; exit 3"]).status().unwrap();
    assert_eq!(status.code(), Some(3), "the command's exit code");
    let lines = rows(dir.path());
    // CodeCarbon 3.x's 38 columns, as its own file has them.
    let fixture =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/fixtures/v3_2_38_columns.csv"))
            .unwrap();
    assert_eq!(lines[0], fixture.lines().next().unwrap());
    assert!(lines.len() >= 4, "a row a second and one at exit: {lines:?}");
    let h = &lines[0];
    let ids: std::collections::HashSet<String> = lines[1..].iter().map(|r| column(h, r, "run_id")).collect();
    assert_eq!(ids.len(), 1, "one run");
    let durations: Vec<f64> = lines[1..].iter().map(|r| column(h, r, "duration").parse().unwrap()).collect();
    assert!(durations.windows(2).all(|w| w[1] > w[0]), "running totals: {durations:?}");
    assert!((2.4..4.0).contains(durations.last().unwrap()), "{durations:?}");
    let energy: Vec<f64> = lines[1..].iter().map(|r| column(h, r, "energy_consumed").parse().unwrap()).collect();
    assert!(energy.windows(2).all(|w| w[1] >= w[0]) && energy[0] > 0.0, "{energy:?}");
    assert_eq!(column(h, &lines[1], "country_iso_code"), "FRA");
    assert_eq!(column(h, &lines[1], "project_name"), "vit");
    assert_eq!(column(h, &lines[1], "pue"), "1");
    // Units as CodeCarbon's: kWh = mean W × s / 3.6e6 (PUE 1); kg = kWh × France's g/kWh / 1000.
    let last = lines.last().unwrap();
    let num = |name: &str| -> f64 { column(h, last, name).parse().unwrap() };
    let watts = num("cpu_power") + num("gpu_power") + num("ram_power");
    let kwh = num("energy_consumed");
    assert!((kwh - watts * num("duration") / 3.6e6).abs() < 1e-9 * kwh.max(1e-12) + 1e-12, "{kwh} vs {watts} W");
    assert!((num("cpu_energy") + num("gpu_energy") + num("ram_energy") - kwh).abs() < 1e-15);
    let france = carbon_core::grid::Grid::embedded().resolve(
        &carbon_core::grid::Location { country_iso_code: Some("FRA"), ..Default::default() },
        carbon_core::model::DatasetMode::Latest,
    );
    assert!((num("emissions") - kwh * france.g_per_kwh / 1000.0).abs() < 1e-12, "emissions in kg");
    assert!((num("emissions_rate") - num("emissions") / num("duration")).abs() < 1e-15);

    // Read as CodeCarbon's: one run, every row a checkpoint, no problem.
    let file = carbon_core::ingest::ingest_path(&dir.path().join("emissions.csv"), "emissions.csv").unwrap();
    assert!(file.report.problems.is_empty(), "{:?}", file.report.problems);
    assert_eq!(file.runs.len(), 1);
    assert_eq!(file.runs[0].run.checkpoints, lines.len() - 1);

    // A second run appends to the same file, under its own id.
    track(dir.path(), &[], &["true"]).status().unwrap();
    let again = rows(dir.path());
    assert_eq!(again.iter().filter(|l| l.starts_with("timestamp,")).count(), 1, "one header");
    let file = carbon_core::ingest::ingest_path(&dir.path().join("emissions.csv"), "emissions.csv").unwrap();
    assert_eq!(file.runs.len(), 2);

    // PUE multiplies the energy, not the hardware's power.
    let pue_dir = tempfile::tempdir().unwrap();
    track(pue_dir.path(), &["--pue", "1.5"], &["sleep", "1.2"]).stderr(Stdio::null()).status().unwrap();
    let lines = rows(pue_dir.path());
    let (h, last) = (&lines[0], lines.last().unwrap());
    let num = |name: &str| -> f64 { column(h, last, name).parse().unwrap() };
    let watts = num("cpu_power") + num("gpu_power") + num("ram_power");
    assert!((num("energy_consumed") - 1.5 * watts * num("duration") / 3.6e6).abs() < 1e-12);
    assert_eq!(column(h, last, "pue"), "1.5");
}

#[test]
fn serve_shows_a_tracked_run_live() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("team")).unwrap();
    let (mut server, addr) = serve(&[logs.to_str().unwrap(), "--no-cache"], "watching");
    let mut tracked = track(&logs.join("team"), &[], &["sleep", "4"]).stderr(Stdio::null()).spawn().unwrap();
    let runs = || api_runs(&addr);
    // While it runs: the run is there, its checkpoints growing.
    let until = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while tracked.try_wait().unwrap().is_none() && Instant::now() < until {
        if let Some(r) = runs().first() {
            seen.push(r["checkpoints"].as_u64().unwrap());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    tracked.wait().unwrap();
    seen.dedup();
    assert!(seen.len() >= 2, "checkpoints seen growing while the command ran: {seen:?}");
    std::thread::sleep(Duration::from_millis(500));
    let all = runs();
    assert_eq!(all.len(), 1, "one run");
    assert_eq!(all[0]["team"], "team");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn signals_go_on_to_the_command_and_its_way_of_ending_is_the_trackers() {
    let dir = tempfile::tempdir().unwrap();
    // SIGTERM to the tracker (a scheduler stopping the job) reaches the command, which ends as it
    // chooses; the last interval is written.
    let script = "trap 'exit 42' TERM; while :; do sleep 0.1; done";
    let mut child = track(dir.path(), &[], &["sh", "-c", script]).stderr(Stdio::null()).spawn().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while rows(dir.path()).len() < 3 {
        assert!(Instant::now() < until, "no rows");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = rows(dir.path()).len();
    // SAFETY: sends SIGTERM to the child we started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < until, "the tracker did not end after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(42));
    assert!(rows(dir.path()).len() > before, "a final row at exit");
    // A command killed by a signal: 128 + its number, as a shell says.
    let status = track(dir.path(), &[], &["sh", "-c", "kill -KILL $$"]).stderr(Stdio::null()).status().unwrap();
    assert_eq!(status.code(), Some(128 + 9));
    // One ended by SIGTERM: the tracker ends by SIGTERM too, as a shell expects of a wrapper.
    use std::os::unix::process::ExitStatusExt;
    let status = track(dir.path(), &[], &["sh", "-c", "kill -TERM $$"]).stderr(Stdio::null()).status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    // Nothing to run, or a command that does not exist: a clear error, exit 1.
    let out = Command::new(BIN)
        .args(["track", "--output"])
        .arg(dir.path())
        .args(["--", "no-such-command-xyz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "not found, as env and timeout say");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start no-such-command-xyz"));
    // A server out of reach never holds the tracker up (nor the command's exit code).
    let started = Instant::now();
    let status = track(
        dir.path(),
        &["--api-endpoint", "http://10.255.255.1:9", "--api-key", "k"],
        &["sh", "-c", "sleep 2.5; exit 5"],
    )
    .stderr(Stdio::null())
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(5));
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
}

#[test]
fn a_file_with_other_columns_is_moved_aside_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let old = "timestamp,project_name,run_id,duration,emissions,energy_consumed\n2024-01-01T00:00:00,p,r,1,0.1,0.2\n";
    std::fs::write(dir.path().join("emissions.csv"), old).unwrap();
    track(dir.path(), &[], &["true"]).stderr(Stdio::null()).status().unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("emissions.csv_1.bak")).unwrap(), old, "kept byte for byte");
    assert!(rows(dir.path())[0].starts_with("timestamp,project_name,run_id,experiment_id,"));
}

#[test]
fn a_tracked_run_can_post_to_a_collecting_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db").to_string_lossy().into_owned();
    let cli = |args: &[&str]| {
        let out = Command::new(BIN).args(args).args(["--db", &db]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let value =
        |out: &str, key: &str| out.lines().find_map(|l| l.strip_prefix(&format!("{key} = "))).unwrap().to_string();
    cli(&["project", "add", "vision"]);
    let exp =
        value(&cli(&["experiment", "add", "--project", "vision", "--name", "x", "--country", "FRA"]), "experiment_id");
    let key = value(&cli(&["token", "add", "--project", "vision"]), "api_key");
    let (mut server, addr) = serve(&["--collect", "--db", &db], "Serving on");
    let endpoint = format!("http://{addr}");
    let csv_dir = dir.path().join("out");
    let status =
        track(&csv_dir, &["--experiment", &exp, "--api-endpoint", &endpoint, "--api-key", &key], &["sleep", "3.2"])
            .stderr(Stdio::null())
            .status()
            .unwrap();
    assert!(status.success());
    let local = rows(&csv_dir);
    let until = Instant::now() + Duration::from_secs(10);
    let run = loop {
        if let Some(r) = api_runs(&addr).into_iter().find(|r| r["checkpoints"].as_u64() >= Some(3)) {
            break r;
        }
        assert!(Instant::now() < until, "the tracked run never reached the server");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(run["source"], "collected");
    assert_eq!(run["experiment_id"], exp.as_str());
    // The same energy as the local file's last row (the intervals under 1 s are not posted,
    // as with CodeCarbon's client).
    let h = &local[0];
    let local_kwh: f64 = column(h, local.last().unwrap(), "energy_consumed").parse().unwrap();
    let posted = run["energy_kwh"].as_f64().unwrap();
    assert!(posted <= local_kwh * 1.000001 && posted >= local_kwh * 0.6, "{posted} vs {local_kwh}");
    server.kill().unwrap();
    server.wait().unwrap();
}
