//! The collection API through the binary, as a team uses it: projects, experiments and tokens
//! from the command line, `serve --collect`, trackers posting, pages and exports showing the
//! runs. Each test runs on SQLite and on the PostgreSQL server `./x test` starts. The real
//! CodeCarbon 3.3.2 client drives some of them (the virtual environment `./x test` makes).
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_carbon-dash");

/// The `--db` values to test: a SQLite file in `dir`, and a fresh PostgreSQL database when the
/// test server is there (required under CI).
fn dbs(dir: &std::path::Path) -> Vec<String> {
    let mut out = vec![dir.join("collect.db").to_string_lossy().into_owned()];
    match std::env::var("CARBON_DASH_TEST_PG") {
        Ok(admin) => {
            static SEQ: AtomicUsize = AtomicUsize::new(0);
            let name = format!("srv{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            out.push(rt.block_on(carbon_store::Store::create_postgres_database(&admin, &name)).unwrap());
        }
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "CARBON_DASH_TEST_PG is not set: run ./x test");
            eprintln!("CARBON_DASH_TEST_PG not set: PostgreSQL not tested here");
        }
    }
    out
}

/// Runs a management command; its standard output.
fn cli(db: &str, args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).args(["--db", db]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The value of `key = value` in a command's output.
fn line_value(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} line in {out}"))
        .to_string()
}

/// A project with one experiment (France) and a token: (experiment id, token).
fn setup(db: &str, project: &str) -> (String, String) {
    cli(db, &["project", "add", project, "--team", "ml"]);
    let exp = line_value(
        &cli(db, &["experiment", "add", "--project", project, "--name", "baseline", "--country", "FRA"]),
        "experiment_id",
    );
    let token = cli(db, &["token", "add", "--project", project, "--endpoint", "http://127.0.0.1:9"]);
    assert_eq!(line_value(&token, "experiment_id"), exp, "a project's only experiment is in the lines to paste");
    assert!(token.contains("[codecarbon]") && token.contains("api_endpoint = http://127.0.0.1:9"), "{token}");
    (exp, line_value(&token, "api_key"))
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(db: &str, args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0", "--db", db])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "the server ended before serving");
            if let Some(rest) = line.trim().strip_prefix("Serving on http://") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep reading its output, so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Server { child, addr }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Answer = (u16, Vec<(String, String)>, String);

/// One HTTP/1.1 request on a new connection: status, headers (lower-case names), body.
fn try_http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let cut = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no status line");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).ok_or_else(cut)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    Ok((status, headers, if chunked { dechunk(body) } else { body.to_string() }))
}

/// A chunked body's content.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    try_http(addr, method, path, headers, body).unwrap()
}

fn post(addr: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(t) = token {
        headers.push(("x-api-token", t));
    }
    let (status, _, body) = http(addr, "POST", path, &headers, body.to_string().as_bytes());
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

fn get_json(addr: &str, path: &str) -> Value {
    let (status, _, body) = http(addr, "GET", path, &[], b"");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The tracker's `RunCreate`, as CodeCarbon 3.3.2 sends it.
fn run_body(experiment: &str, t: &str) -> Value {
    json!({"timestamp": t, "experiment_id": experiment, "os": "Linux-6.18-x86_64-with-glibc2.36",
        "python_version": "3.11.7", "codecarbon_version": "3.3.2", "cpu_count": 2, "cpu_model": "Intel(R) Xeon(R)",
        "gpu_count": 0, "gpu_model": "", "longitude": null, "latitude": null, "region": null, "provider": null,
        "ram_total_size": 23.54, "tracking_mode": "machine"})
}

/// The tracker's `EmissionCreate` for the `i`-th interval of 2 s, 0.001 kWh.
fn emission_body(run: &str, i: usize) -> Value {
    json!({"timestamp": format!("2026-11-29T18:{:02}:{:02}.{:06}+00:00", 40 + i / 3600 % 20, i / 60 % 60, i % 60),
        "run_id": run, "duration": 2, "emissions_sum": 0.00005, "emissions_rate": 0.000025, "cpu_power": 30.0,
        "gpu_power": 0.0, "ram_power": 10.0, "cpu_energy": 0.00075, "gpu_energy": 0.0, "ram_energy": 0.00025,
        "energy_consumed": 0.001, "cpu_utilization_percent": 33.2, "gpu_utilization_percent": 0,
        "ram_utilization_percent": 3.9, "wue": 0.0})
}

fn collected_run(addr: &str, id: &str) -> Option<Value> {
    get_json(addr, "/api/v1/runs?limit=all").as_array().unwrap().iter().find(|r| r["run_id"] == id).cloned()
}

/// (runs, records) in the store, read directly.
fn stored_counts(db: &str) -> (i64, i64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = carbon_store::Store::open(db).await.unwrap();
        let c = store.counts().await.unwrap();
        store.close().await;
        c
    })
}

/// The records of project `vision` stored, by their time as the export writes it.
fn stored_times(db: &str) -> std::collections::HashSet<String> {
    let csv = cli(db, &["export", "--project", "vision"]);
    csv.lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect()
}

/// Waits (up to 10 s) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < until, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn posts_are_checked_as_codecarbons_server_does_and_collected_runs_show_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    for db in dbs(dir.path()) {
        let (exp, token) = setup(&db, "vision");
        let (_, other_token) = {
            cli(&db, &["project", "add", "nlp"]);
            let e = line_value(
                &cli(
                    &db,
                    &[
                        "experiment",
                        "add",
                        "--project",
                        "nlp",
                        "--name",
                        "x",
                        "--cloud-provider",
                        "gcp",
                        "--cloud-region",
                        "europe-west1",
                    ],
                ),
                "experiment_id",
            );
            (e, line_value(&cli(&db, &["token", "add", "--project", "nlp"]), "api_key"))
        };
        // Hosted: read-only for browsers, still taking trackers' posts.
        let server = Server::start(&db, &["--collect", "--read-only"]);
        let a = &server.addr;
        let run = run_body(&exp, "2026-11-29T18:39:22.172723+00:00");
        let (status, body) = post(a, "/runs", Some(&token), &run);
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        // `//runs` (an endpoint ending in '/') and `/api/runs` are the same; the same run again
        // (a retry) keeps its id.
        for path in ["//runs", "/api/runs"] {
            assert_eq!(post(a, path, Some(&token), &run), (201, json!({"id": id, "experiment_id": exp})), "{path}");
        }
        // Refused as CodeCarbon's server refuses: 403 with a reason.
        let (status, body) = post(a, "/runs", None, &run);
        assert_eq!(status, 403);
        assert!(body["detail"].as_str().unwrap().contains("Missing project token"), "{body}");
        let (status, body) = post(a, "/runs", Some("api_key"), &run);
        assert_eq!(status, 403);
        assert!(body["detail"].as_str().unwrap().contains("unknown or revoked"), "{body}");
        let (status, body) = post(a, "/runs", Some(&other_token), &run);
        assert_eq!(status, 403, "another project's token");
        assert!(body["detail"].as_str().unwrap().contains("another project"), "{body}");
        let (status, body) = post(
            a,
            "/runs",
            Some(&token),
            &run_body("5b0fa12a-3dd7-45bb-9766-cc326314d9f1", "2026-11-29T18:39:22+00:00"),
        );
        assert_eq!(status, 403, "CodeCarbon's default experiment id is not one of ours");
        assert!(body["detail"].as_str().unwrap().contains("experiment add"), "{body}");
        let (status, _) = post(a, "/emissions", Some(&other_token), &emission_body(&id, 0));
        assert_eq!(status, 403, "another project's token cannot write to this run");
        let (status, body) = post(a, "/emissions", Some(&token), &emission_body("no-such-run", 0));
        assert_eq!((status, body["detail"].as_str().unwrap().contains("no run")), (403, true), "{body}");

        // Records: 201 once stored; integer 0 in float fields; unknown fields kept.
        for i in 0..3 {
            let mut e = emission_body(&id, i);
            if i == 2 {
                e["gpu_temperature_c"] = json!(71);
            }
            assert_eq!(post(a, "/emissions", Some(&token), &e).0, 201);
        }
        // Another record at a taken timestamp: 409, the stored one kept.
        let mut clash = emission_body(&id, 1);
        clash["cpu_energy"] = json!(0.05);
        assert_eq!(post(a, "/emissions", Some(&token), &clash).0, 409);
        // Bad bodies: 422 naming the field, 413 over the limit.
        let bad = |field: &str, value: Value| {
            let mut e = emission_body(&id, 9);
            e[field] = value;
            let (status, body) = post(a, "/emissions", Some(&token), &e);
            assert_eq!(status, 422, "{field}: {body}");
            assert_eq!(body["detail"][0]["loc"], json!(["body", field]), "{body}");
        };
        bad("duration", json!(-5));
        bad("cpu_energy", json!("0.5"));
        bad("gpu_utilization_percent", json!(250));
        bad("timestamp", json!(12));
        let (status, _, _) = http(a, "POST", "/emissions", &[("x-api-token", &token)], &vec![b' '; 70_000]);
        assert_eq!(status, 413);
        let (status, _, body) = http(a, "POST", "/emissions", &[("x-api-token", &token)], b"{\"run_id\": ");
        assert_eq!(status, 422, "{body}");

        // The run, live: in the JSON API with its source, the energy it was sent, its location
        // from the experiment, recomputed CO2 with a range.
        eventually("the collected run in /api/v1/runs", || {
            collected_run(a, &id).is_some_and(|r| r["checkpoints"] == 3)
        });
        let r = collected_run(a, &id).unwrap();
        assert_eq!(
            (r["source"].as_str(), r["team"].as_str(), r["project_name"].as_str()),
            (Some("collected"), Some("ml"), Some("vision"))
        );
        assert!((r["energy_kwh"].as_f64().unwrap() - 0.003).abs() < 1e-12, "{r}");
        assert_eq!((r["country_iso_code"].as_str(), r["country_name"].as_str()), (Some("FRA"), Some("France")));
        assert_eq!(r["tags"], json!([["experiment_name", "baseline"]]), "the experiment's name shown beside its id");
        // Each interval is emissions over rate (2 s here), not CodeCarbon's truncated seconds.
        assert!((r["duration_s"].as_f64().unwrap() - 6.0).abs() < 1e-9, "{r}");
        assert!(r["co2_kg_low"].as_f64().unwrap() < r["co2_kg"].as_f64().unwrap());
        // Its page, the team view and the runs table.
        for path in [format!("/runs/{id}"), "/teams".to_string(), "/runs".to_string()] {
            let (status, _, page) = http(a, "GET", &path, &[], b"");
            assert_eq!(status, 200, "{path}");
            assert!(page.contains("vision"), "{path} shows the collected run's project");
        }
        // Browsers still cannot write on a read-only server.
        assert_eq!(http(a, "POST", "/upload/save", &[], b"").0, 403);

        // Export: CodeCarbon's CSV, the same from the API and the command line.
        let (status, headers, csv) = http(a, "GET", "/api/v1/projects/vision/emissions.csv", &[], b"");
        assert_eq!(status, 200);
        assert!(headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/csv")));
        let header = format!("{},{}", carbon_core::collect::CSV_HEADER, carbon_core::collect::FOLDED_COLUMN);
        assert_eq!(csv.lines().next(), Some(header.as_str()));
        assert_eq!(csv.lines().count(), 4, "{csv}");
        assert_eq!(csv, cli(&db, &["export", "--project", "vision"]));
        assert_eq!(http(a, "GET", "/api/v1/projects/nope/emissions.csv", &[], b"").0, 404);

        // Revoked by the command line (another process): refused within the server's token TTL.
        let prefix = &token[..12];
        cli(&db, &["token", "revoke", "--project", "vision", prefix]);
        let revoked = Instant::now();
        eventually("the revoked token refused", || {
            post(a, "/emissions", Some(&token), &emission_body(&id, 5)).0 == 403
        });
        assert!(revoked.elapsed() < carbon_store::TOKEN_TTL + Duration::from_millis(500));
        server.kill();

        // Without --collect, the store is shown but takes no posts.
        let server = Server::start(&db, &[]);
        assert!(collected_run(&server.addr, &id).is_some(), "collected runs are read at start");
        let (status, body) = post(&server.addr, "/runs", Some(&other_token), &run);
        assert_eq!(status, 404);
        assert!(body["error"].as_str().unwrap().contains("--collect"), "{body}");
    }
}

#[test]
fn open_pages_hear_of_each_collected_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db").to_string_lossy().into_owned();
    let (exp, token) = setup(&db, "vision");
    let server = Server::start(&db, &["--collect"]);
    let mut events = TcpStream::connect(&server.addr).unwrap();
    write!(events, "GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    events.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 512];
    let n = events.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).contains("200 OK"));
    let (_, body) = post(&server.addr, "/runs", Some(&token), &run_body(&exp, "2026-11-29T18:39:22+00:00"));
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(post(&server.addr, "/emissions", Some(&token), &emission_body(&id, 0)).0, 201);
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    while !seen.contains("event: catalog") {
        let n = events.read(&mut buf).expect("an event within 10 s");
        assert!(n > 0, "the stream ended");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(collected_run(&server.addr, &id).is_some(), "announced once the run is in the catalog");
}

/// Posts `records` records of `run`, several at a time, each until it gets 201 (a connection
/// refused or cut is tried again, as a retrying client does). Returns the records acknowledged.
fn post_all(
    addr: &std::sync::Mutex<String>,
    acked: &std::sync::Mutex<Vec<usize>>,
    token: &str,
    run: &str,
    records: usize,
    threads: usize,
) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= records {
                    return;
                }
                let body = emission_body(run, i).to_string();
                loop {
                    let a = addr.lock().unwrap().clone();
                    let headers = [("x-api-token", token), ("Content-Type", "application/json")];
                    match try_http(&a, "POST", "/emissions", &headers, body.as_bytes()).map(|r| r.0) {
                        Ok(201) => {
                            acked.lock().unwrap().push(i);
                            break;
                        }
                        // Refused or cut connections (the server is down), or busy: again.
                        Ok(429) | Ok(503) | Err(_) => std::thread::sleep(Duration::from_millis(20)),
                        Ok(other) => panic!("record {i}: answered {other}"),
                    }
                }
            });
        }
    });
}

/// A server taking posts without a rate limit, a token of project `vision` and a run of it.
fn collecting_one_run(db: &str) -> (Server, String, String) {
    let (exp, token) = setup(db, "vision");
    let server = Server::start(db, &["--collect", "--collect-rate", "0"]);
    let (_, body) = post(&server.addr, "/runs", Some(&token), &run_body(&exp, "2026-11-29T18:39:22+00:00"));
    let id = body["id"].as_str().unwrap().to_string();
    (server, token, id)
}

#[test]
fn every_acknowledged_record_survives_a_kill_and_retried_ones_land_once() {
    let dir = tempfile::tempdir().unwrap();
    for db in dbs(dir.path()) {
        let (server, token, id) = collecting_one_run(&db);
        const N: usize = 1500;
        let addr = std::sync::Mutex::new(server.addr.clone());
        let mut server = Some(server);
        let acked = std::sync::Mutex::new(Vec::new());
        let (stored_at_kill, acked_at_kill) = std::thread::scope(|s| {
            let poster = s.spawn(|| post_all(&addr, &acked, &token, &id, N, 8));
            // Kill it in the middle of the stream: wait until some records are in.
            let counting = server.as_ref().unwrap().addr.clone();
            eventually("some records stored", || {
                collected_run(&counting, &id).is_some_and(|r| r["checkpoints"].as_u64().unwrap_or(0) > 200)
            });
            server.take().unwrap().kill();
            // Every answer read by now was sent before the kill.
            let acked_then: Vec<usize> = acked.lock().unwrap().clone();
            let acked_at_kill = acked_then.len() as i64;
            let before = stored_counts(&db).1;
            let stored = stored_times(&db);
            for i in &acked_then {
                let t = emission_body(&id, *i)["timestamp"].as_str().unwrap().trim_end_matches("+00:00").to_string();
                assert!(stored.contains(&t), "record {i} got 201 before the kill but is not stored ({db})");
            }
            std::thread::sleep(Duration::from_millis(300));
            let again = Server::start(&db, &["--collect", "--collect-rate", "0"]);
            *addr.lock().unwrap() = again.addr.clone();
            poster.join().unwrap();
            server = Some(again);
            (before, acked_at_kill)
        });
        let mut acked = acked.into_inner().unwrap();
        acked.sort_unstable();
        acked.dedup();
        assert_eq!(acked.len(), N, "every record acknowledged in the end");
        assert!(
            stored_at_kill > 0 && (stored_at_kill as usize) < N,
            "killed mid-stream: {stored_at_kill} of {N} stored"
        );
        assert!(stored_at_kill >= acked_at_kill, "acknowledged {acked_at_kill} but only {stored_at_kill} stored");
        let a = &server.as_ref().unwrap().addr;
        eventually("all records in the run", || collected_run(a, &id).is_some_and(|r| r["checkpoints"] == N));
        let (runs, records) = stored_counts(&db);
        assert_eq!((runs, records), (1, N as i64), "each record exactly once ({db})");
        eprintln!("kill test ({db}): {acked_at_kill} acknowledged and {stored_at_kill} stored when killed; {N} after the retries, none twice");
    }
}

#[test]
fn a_flood_from_one_token_gets_429_and_pages_stay_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db").to_string_lossy().into_owned();
    let (exp, token) = setup(&db, "vision");
    let server = Server::start(&db, &["--collect", "--collect-rate", "50"]);
    let a = server.addr.clone();
    let (_, body) = post(&a, "/runs", Some(&token), &run_body(&exp, "2026-11-29T18:39:22+00:00"));
    let id = body["id"].as_str().unwrap().to_string();
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let retry_after = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (a, token, id, statuses, retry_after) = (&a, &token, &id, &statuses, &retry_after);
            s.spawn(move || {
                for i in 0..250 {
                    let body = emission_body(id, t * 1000 + i).to_string();
                    let (status, headers, _) =
                        http(a, "POST", "/emissions", &[("x-api-token", token)], body.as_bytes());
                    *statuses.lock().unwrap().entry(status).or_default() += 1;
                    if status == 429 {
                        *retry_after.lock().unwrap() =
                            headers.iter().find(|(k, _)| k == "retry-after").map(|(_, v)| v.clone());
                    }
                }
            });
        }
        // Pages answer meanwhile.
        for _ in 0..5 {
            assert_eq!(http(&a, "GET", "/", &[], b"").0, 200);
            assert_eq!(http(&a, "GET", "/api/v1/summary", &[], b"").0, 200);
        }
    });
    let statuses = statuses.into_inner().unwrap();
    let (ok, limited) = (statuses.get(&201).copied().unwrap_or(0), statuses.get(&429).copied().unwrap_or(0));
    assert_eq!(ok + limited, 2000, "only 201 and 429: {statuses:?}");
    assert!(limited > 0 && ok >= 100, "{statuses:?}");
    assert_eq!(retry_after.into_inner().unwrap().as_deref(), Some("1"));
    // Another token of the project has its own allowance.
    let other = line_value(&cli(&db, &["token", "add", "--project", "vision"]), "api_key");
    assert_eq!(post(&a, "/emissions", Some(&other), &emission_body(&id, 99_999)).0, 201);
}

// ---- the real CodeCarbon client ----

/// The python of the virtual environment with CodeCarbon 3.3.2 (`./x test` makes it).
fn codecarbon_python() -> Option<String> {
    match std::env::var("CARBON_DASH_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "CARBON_DASH_TEST_PYTHON is not set: run ./x test");
            eprintln!("CARBON_DASH_TEST_PYTHON not set: the real CodeCarbon client is not tested here");
            None
        }
    }
}

/// A training script as a user writes it: an `OfflineEmissionsTracker` whose API settings come
/// from `.codecarbon.config` in its folder. It uploads at each `flush()` (1.5 s apart, so no
/// interval is under CodeCarbon's 1 s minimum), waits for the file `go` before the last two
/// uploads when asked, and prints what `stop()` reports.
const DRIVER: &str = r#"
import json, os, sys, time
from codecarbon import OfflineEmissionsTracker
flushes, wait = int(sys.argv[1]), sys.argv[2] == "wait"
t = OfflineEmissionsTracker(country_iso_code="FRA", measure_power_secs=1, api_call_interval=-1,
                            force_cpu_power=30, force_ram_power=10, log_level="error")
t.start()
for i in range(flushes):
    time.sleep(1.5)
    t.flush()
    print("flushed", i, flush=True)
    if wait and i == 0:
        while not os.path.exists("go"):
            time.sleep(0.05)
time.sleep(1.5)
total = t.stop()
d = t.final_emissions_data
print(json.dumps({"emissions": total, "energy": d.energy_consumed, "duration": d.duration}), flush=True)
"#;

/// A folder with `.codecarbon.config` holding what `token add` printed, and the driver.
fn project_folder(root: &std::path::Path, name: &str, config: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".codecarbon.config"), config).unwrap();
    std::fs::write(dir.join("train.py"), DRIVER).unwrap();
    dir
}

fn tracker(python: &str, dir: &std::path::Path, flushes: usize, wait: bool) -> Child {
    Command::new(python)
        .args(["-u", "train.py", &flushes.to_string(), if wait { "wait" } else { "no" }])
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The tracker's last line: what `stop()` reported.
fn finish(child: Child) -> Value {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tracker failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

fn runs_of_experiment(addr: &str, exp: &str) -> Vec<Value> {
    get_json(addr, "/api/v1/runs?limit=all")
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["experiment_id"] == exp)
        .cloned()
        .collect()
}

#[test]
fn codecarbon_3_3_2_trackers_post_their_runs_live() {
    let Some(python) = codecarbon_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for db in dbs(dir.path()) {
        cli(&db, &["project", "add", "vision", "--team", "ml"]);
        let exp = line_value(
            &cli(&db, &["experiment", "add", "--project", "vision", "--name", "baseline", "--country", "FRA"]),
            "experiment_id",
        );
        let server = Server::start(&db, &["--collect"]);
        // Exactly the lines `token add` prints, pasted (the endpoint with a trailing slash, as
        // users type it: the tracker then asks for //runs).
        let endpoint = format!("http://127.0.0.1:{}/", server.port());
        let config = cli(&db, &["token", "add", "--project", "vision", "--endpoint", &endpoint]);
        let token = line_value(&config, "api_key");

        // One tracker, 3 uploads and the last at stop(): every interval arrives, with the
        // energy and emissions the tracker reports.
        let folder = project_folder(dir.path(), &format!("one{}", db.len()), &config);
        let reported = finish(tracker(&python, &folder, 3, false));
        eventually("the run with its 4 uploads", || {
            runs_of_experiment(&server.addr, &exp).first().is_some_and(|r| r["checkpoints"] == 4)
        });
        let runs = runs_of_experiment(&server.addr, &exp);
        let [run] = &runs[..] else { panic!("one run: {runs:?}") };
        assert_eq!((run["source"].as_str(), run["checkpoints"].as_u64()), (Some("collected"), Some(4)), "{run}");
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
        assert!(
            close(run["energy_kwh"].as_f64().unwrap(), reported["energy"].as_f64().unwrap()),
            "{run} vs {reported}"
        );
        assert!(
            close(run["co2_kg_reported"].as_f64().unwrap(), reported["emissions"].as_f64().unwrap()),
            "{run} vs {reported}"
        );
        assert_eq!((run["team"].as_str(), run["codecarbon_version"].as_str()), (Some("ml"), Some("3.3.2")));
        // The run lasted what the tracker measured, not the whole seconds it sends per upload.
        let (ours, theirs) = (run["duration_s"].as_f64().unwrap(), reported["duration"].as_f64().unwrap());
        assert!((ours - theirs).abs() < 0.1, "duration {ours} s, the tracker's {theirs} s");

        // Several trackers at once, one run each, nothing mixed up.
        let children: Vec<Child> = (0..4)
            .map(|i| tracker(&python, &project_folder(dir.path(), &format!("many{i}_{}", db.len()), &config), 2, false))
            .collect();
        let reports: Vec<Value> = children.into_iter().map(finish).collect();
        let matched = |runs: &[Value]| {
            reports.iter().all(|r| {
                let e = r["energy"].as_f64().unwrap();
                runs.iter().any(|run| close(run["energy_kwh"].as_f64().unwrap(), e) && run["checkpoints"] == 3)
            })
        };
        // Read back within a refresh or two of the last upload.
        eventually("each tracker's run, whole", || {
            let runs = runs_of_experiment(&server.addr, &exp);
            runs.len() == 5 && matched(&runs)
        });

        // A wrong token: refused, the tracker carries on, no run.
        let wrong = config.replace(&token, "cdt_0000");
        finish(tracker(&python, &project_folder(dir.path(), &format!("wrong{}", db.len()), &wrong), 2, false));
        assert_eq!(runs_of_experiment(&server.addr, &exp).len(), 5);

        // Revoked while a tracker runs: its next upload is refused.
        let folder = project_folder(dir.path(), &format!("revoked{}", db.len()), &config);
        let mut child = tracker(&python, &folder, 2, true);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.starts_with("flushed 0"), "{line}");
        eventually("the first upload", || runs_of_experiment(&server.addr, &exp).len() == 6);
        let records_before = stored_counts(&db).1;
        cli(&db, &["token", "revoke", "--project", "vision", &token[..12]]);
        std::fs::write(folder.join("go"), "").unwrap();
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        assert!(child.wait().unwrap().success(), "{rest}");
        assert_eq!(stored_counts(&db).1, records_before, "nothing stored after the revocation");
    }
}

#[test]
fn replicas_on_one_postgresql_show_each_others_runs_even_after_losing_their_listener() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = dbs(dir.path()).into_iter().find(|d| d.starts_with("postgres://")) else { return };
    let (exp, token) = setup(&db, "vision");
    let (a, b) = (Server::start(&db, &["--collect"]), Server::start(&db, &["--collect"]));
    let (_, body) = post(&a.addr, "/runs", Some(&token), &run_body(&exp, "2026-11-29T18:39:22+00:00"));
    let id = body["id"].as_str().unwrap().to_string();
    // A tracker's posts spread over both replicas by the load balancer.
    assert_eq!(post(&a.addr, "/emissions", Some(&token), &emission_body(&id, 0)).0, 201);
    assert_eq!(post(&b.addr, "/emissions", Some(&token), &emission_body(&id, 1)).0, 201);
    for s in [&a, &b] {
        eventually("both records on each replica", || {
            collected_run(&s.addr, &id).is_some_and(|r| r["checkpoints"] == 2)
        });
    }
    // PostgreSQL drops the listening connections (a restart, a proxy's idle timeout): each
    // replica listens again and reads everything, so a record committed meanwhile is not missed.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let killed = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db).await.unwrap();
        let q = "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid() AND datname = current_database()";
        let n = sqlx::query(q).fetch_all(&pool).await.unwrap().len();
        pool.close().await;
        n
    });
    assert_eq!(killed, 2, "one listener per replica");
    assert_eq!(post(&a.addr, "/emissions", Some(&token), &emission_body(&id, 2)).0, 201);
    eventually("the record committed while B listened again", || {
        collected_run(&b.addr, &id).is_some_and(|r| r["checkpoints"] == 3)
    });
}

#[test]
fn a_collected_runs_checkpoints_come_from_the_database_thinned_for_pages_and_paged_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    for db in dbs(dir.path()) {
        let (server, token, id) = collecting_one_run(&db);
        const N: usize = 450;
        let (addr, acked) = (std::sync::Mutex::new(server.addr.clone()), std::sync::Mutex::new(Vec::new()));
        post_all(&addr, &acked, &token, &id, N, 8);
        eventually("every record counted", || collected_run(&server.addr, &id).is_some_and(|r| r["checkpoints"] == N));
        // The run's JSON: the chart's share of its checkpoints, and where the rest are.
        let (status, headers, text) = http(&server.addr, "GET", &format!("/api/v1/runs/{id}"), &[], b"");
        assert_eq!(status, 200);
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(header("x-checkpoints-total").as_deref(), Some("450"), "{db}");
        assert_eq!(header("link"), Some(format!("<{id}/checkpoints>; rel=\"checkpoints\"")));
        let detail: Value = serde_json::from_str(&text).unwrap();
        let shown = detail["checkpoints"].as_array().unwrap();
        assert!(shown.len() <= 400 && shown.len() >= 200, "{}", shown.len());
        let last = shown.last().unwrap();
        assert!((last["energy_kwh"].as_f64().unwrap() - detail["run"]["energy_kwh"].as_f64().unwrap()).abs() < 1e-9);
        // Every checkpoint, a page at a time following the Link header: the running totals.
        let mut all: Vec<Value> = Vec::new();
        let mut next = Some(format!("/api/v1/runs/{id}/checkpoints?limit=100"));
        while let Some(path) = next.take() {
            let (status, headers, text) = http(&server.addr, "GET", &path, &[], b"");
            assert_eq!(status, 200, "{path}");
            let total = headers.iter().find(|(k, _)| k == "x-total-count").map(|(_, v)| v.clone());
            assert_eq!(total.as_deref(), Some("450"));
            all.extend(serde_json::from_str::<Vec<Value>>(&text).unwrap());
            next = headers
                .iter()
                .find(|(k, _)| k == "link")
                .map(|(_, v)| v.trim_start_matches('<').split('>').next().unwrap().to_string());
        }
        assert_eq!(all.len(), N, "{db}");
        for (i, c) in all.iter().enumerate() {
            assert_eq!(c["line"], i + 1);
            assert!((c["energy_kwh"].as_f64().unwrap() - 0.001 * (i + 1) as f64).abs() < 1e-9, "{i}: {c}");
            assert!(c["file"].as_str().unwrap().starts_with("collected://"));
        }
        // Its page draws from the same rows.
        let (status, _, page) = http(&server.addr, "GET", &format!("/runs/{id}"), &[], b"");
        assert_eq!(status, 200);
        assert!(page.contains("450"), "the page says how many checkpoints the run has");
        assert_eq!(http(&server.addr, "GET", "/api/v1/runs/nope/checkpoints", &[], b"").0, 404);
        // Numbers past any run, or not numbers: an empty page, or a 400 that says why.
        let (status, headers, text) =
            http(&server.addr, "GET", &format!("/api/v1/runs/{id}/checkpoints?after=18446744073709551615"), &[], b"");
        assert_eq!((status, text.as_str()), (200, "[]"));
        assert!(!headers.iter().any(|(k, _)| k == "link"), "no next page");
        let bad = format!("/api/v1/runs/{id}/checkpoints?after=-1");
        assert_eq!(http(&server.addr, "GET", &bad, &[], b"").0, 400);
        let (_, _, one) = http(&server.addr, "GET", &format!("/api/v1/runs/{id}/checkpoints?limit=0"), &[], b"");
        assert_eq!(serde_json::from_str::<Vec<Value>>(&one).unwrap().len(), 1, "a limit of 0 is taken as 1");
    }
}

#[test]
fn hostile_tracker_text_and_impossible_records_are_cleaned_refused_and_exported_safely() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db").display().to_string();
    let (exp, token) = setup(&db, "vision");
    let server = Server::start(&db, &["--collect", "--collect-rate", "0"]);
    let a = &server.addr;
    // A spreadsheet formula behind a right-to-left override.
    let mut run = run_body(&exp, "2026-11-29T18:39:22+00:00");
    run["cpu_model"] = json!("=HYPERLINK(\"http://evil\",\"x\")\u{202E}fdp.exe");
    let (status, body) = post(a, "/runs", Some(&token), &run);
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    // Records no machine can produce: 422 naming the field; nothing of them is kept.
    let impossible = [
        ("duration", json!(1e-300)),
        ("energy_consumed", json!(1e12)),
        ("gpu_power", json!(1e7)),
        ("timestamp", json!("9999-12-31T00:00:00+00:00")),
        ("timestamp", json!("0001-01-01T00:00:00+00:00")),
    ];
    for (field, value) in impossible {
        let mut e = emission_body(&id, 1);
        e[field] = value.clone();
        let (status, body) = post(a, "/emissions", Some(&token), &e);
        assert_eq!(status, 422, "{field} {value}: {body}");
        assert!(body.to_string().contains(&format!("'{field}'")), "{field}: {body}");
    }
    assert_eq!(post(a, "/emissions", Some(&token), &emission_body(&id, 1)).0, 201);
    eventually("the run collected", || collected_run(a, &id).is_some());
    let shown = collected_run(a, &id).unwrap();
    assert_eq!(shown["cpu_model"], "=HYPERLINK(\"http://evil\",\"x\")fdp.exe", "no override: {shown}");
    assert!(shown["energy_kwh"].as_f64().unwrap() < 0.01, "{shown}");
    // The export: the formula is text to a spreadsheet, the numbers are numbers.
    let (status, _, csv) = http(a, "GET", "/api/v1/projects/vision/emissions.csv", &[], b"");
    assert_eq!(status, 200);
    let row = csv.lines().nth(1).unwrap();
    assert!(row.contains(r#""'=HYPERLINK(""http://evil"",""x"")fdp.exe""#), "{row}");
    assert!(row.contains(",2.0,") || row.contains(",2,"), "the duration stays a number: {row}");
    assert!(!csv.contains('\u{202E}'));
}
