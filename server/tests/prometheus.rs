//! A real Prometheus (Debian's) scrapes `/metrics` of a server whose logs hold 5,000 projects and
//! a budget: its query API gives back the series with the values the JSON API gives, and the
//! projects' label values stay bounded.
#![allow(clippy::unwrap_used)]

use carbon_dash::budgets::urlencode;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_carbon-dash");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn get_json(url: &str) -> serde_json::Value {
    serde_json::from_str(&reqwest::get(url).await.unwrap().text().await.unwrap()).unwrap()
}

/// Prometheus's answer to an instant query: (labels, value) of each series.
async fn query(prom: &str, q: &str) -> Vec<(serde_json::Value, f64)> {
    let url = format!("{prom}/api/v1/query?query={}", urlencode(q));
    let v = get_json(&url).await;
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"].clone(), r["value"][1].as_str().unwrap().parse().unwrap()))
        .collect()
}

#[tokio::test]
async fn prometheus_scrapes_the_same_figures_as_the_api_with_labels_bounded() {
    let Some(prometheus) = std::env::var_os("CARBON_DASH_TEST_PROMETHEUS") else {
        assert!(std::env::var_os("CI").is_none(), "CARBON_DASH_TEST_PROMETHEUS is not set: run ./x test");
        eprintln!("CARBON_DASH_TEST_PROMETHEUS not set: Prometheus not tested here");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    // 5,000 projects in 20 teams, one run each, this month.
    let now = carbon_core::time::iso(&carbon_core::budget::now());
    for t in 0..20 {
        let team = logs.join(format!("team{t:02}"));
        std::fs::create_dir_all(&team).unwrap();
        let mut csv =
            String::from("timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n");
        for p in 0..250 {
            let n = t * 250 + p;
            csv.push_str(&format!(
                "{now},project{n:04},00000000-0000-4000-8000-{n:012},1,0.01,{},FRA\n",
                0.1 + n as f64 / 1000.0
            ));
        }
        std::fs::write(team.join("emissions.csv"), csv).unwrap();
    }
    std::fs::write(logs.join("budgets.toml"), "[[budget]]\nteam = \"team19\"\nenergy_kwh = 2000\n").unwrap();
    let port = free_port();
    let server = Killed(
        Command::new(BIN)
            .args(["serve", logs.to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}"), "--no-cache"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pport = free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: carbon-dash\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"),
    )
    .unwrap();
    let _prom = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom = format!("http://127.0.0.1:{pport}");
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{prom}/api/v1/query?query=carbon_dash_runs")).await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.text().await.unwrap_or_default()) {
                if v["data"]["result"].as_array().is_some_and(|a| !a.is_empty()) {
                    break;
                }
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "Prometheus scraped nothing in 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every run is counted, in at most 51 projects (the 50 largest and "other") per team.
    let runs = query(&prom, "sum(carbon_dash_runs)").await;
    assert_eq!(runs[0].1, 5000.0);
    let series = query(&prom, "count(carbon_dash_energy_kwh)").await[0].1;
    assert!((20.0..=20.0 * 51.0).contains(&series), "{series} series");
    let projects = query(&prom, "count(count by (project) (carbon_dash_energy_kwh))").await[0].1;
    assert_eq!(projects, 51.0, "50 projects by name and other");
    // The same energy and CO₂e as the JSON API.
    let summary = get_json(&format!("{base}/api/v1/summary")).await;
    let energy = query(&prom, "sum(carbon_dash_energy_kwh)").await[0].1;
    assert!((energy - summary["totals"]["energy_kwh"].as_f64().unwrap()).abs() < 1e-6 * energy, "{energy} {summary}");
    let co2 = query(&prom, "sum(carbon_dash_co2e_kg)").await[0].1;
    assert!((co2 - summary["totals"]["co2_kg"].as_f64().unwrap()).abs() < 1e-6 * co2);
    let low = query(&prom, "sum(carbon_dash_co2e_low_kg)").await[0].1;
    assert!(low < co2);
    // The budget: spent as the API says.
    let budgets = get_json(&format!("{base}/api/v1/budgets")).await;
    let spent = query(&prom, "carbon_dash_budget_spent{name=\"team19\"}").await;
    assert_eq!(spent[0].0["quantity"], "energy_kwh");
    assert!((spent[0].1 - budgets["budgets"][0]["spent"]["value"].as_f64().unwrap()).abs() < 1e-6 * spent[0].1);
    assert_eq!(query(&prom, "carbon_dash_budget_amount").await[0].1, 2000.0);
    // The server's health: rows, and the scrapes themselves timed.
    assert_eq!(query(&prom, "carbon_dash_rows_read").await[0].1, 5000.0);
    assert!(query(&prom, "carbon_dash_request_duration_seconds_count").await[0].1 >= 1.0);
    // The Grafana dashboard (public/grafana-dashboard.json, served at /grafana-dashboard.json):
    // each of its queries is one Prometheus takes, over series /metrics has.
    let exposed = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../public/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            exprs += 1;
            for name in
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("carbon_dash_"))
            {
                // A family /metrics declares (a counter nothing has counted yet has no sample).
                let family = exposed.contains(&format!("# TYPE {name} ")) || exposed.contains(&format!("\n{name}{{"));
                assert!(family, "{expr}: {name} is not in /metrics");
            }
            let url = format!("{prom}/api/v1/query?query={}", urlencode(expr));
            let v: serde_json::Value =
                serde_json::from_str(&reqwest::get(url).await.unwrap().text().await.unwrap()).unwrap();
            assert_eq!(v["status"], "success", "{expr}: {v}");
        }
    }
    assert!(exprs >= 10);
    drop(server);
}
