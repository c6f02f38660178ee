//! The router driven with `oneshot`: pages render on the server, the JSON API answers.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use carbon_core::catalog::Catalog;
use serde_json::Value;
use std::sync::OnceLock;
use tower::ServiceExt;

mod common;

use common::{call, catalog, server_runtime};

fn build(cat: Catalog) -> axum::Router {
    common::build(common::state(cat))
}

fn app() -> axum::Router {
    static APP: OnceLock<axum::Router> = OnceLock::new();
    APP.get_or_init(|| build(catalog())).clone()
}

async fn send(app: axum::Router, uri: &str) -> (StatusCode, String) {
    let (status, _, body) = call(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
    (status, body)
}

async fn get(uri: &str) -> (StatusCode, String) {
    send(app(), uri).await
}

async fn json(uri: &str) -> Value {
    let (status, body) = get(uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn api_runs_lists_every_demo_run_with_the_documented_fields() {
    let runs = json("/api/v1/runs").await;
    let runs = runs.as_array().unwrap();
    let summary = json("/api/v1/summary").await;
    assert_eq!(runs.len() as u64, summary["totals"]["runs"].as_u64().unwrap());
    assert!(runs.len() > 20);
    for key in [
        "run_id",
        "project_name",
        "experiment_id",
        "started_at",
        "ended_at",
        "duration_s",
        "energy_kwh",
        "cpu_energy_kwh",
        "gpu_energy_kwh",
        "ram_energy_kwh",
        "co2_kg_reported",
        "country_iso_code",
        "region",
        "cloud_provider",
        "cloud_region",
        "codecarbon_version",
        "checkpoints",
        "source_files",
    ] {
        assert!(runs[0].get(key).is_some(), "missing {key}");
    }
    let energy: f64 = runs.iter().filter_map(|r| r["energy_kwh"].as_f64()).sum();
    let total = summary["totals"]["energy_kwh"].as_f64().unwrap();
    assert!((energy - total).abs() < 1e-9 * total);
    assert!(runs.iter().any(|r| r["cloud_provider"] == "gcp" && r["cloud_region"] == "us-central1"));
}

#[tokio::test]
async fn api_runs_filters_and_sorts_like_the_page() {
    let runs = json("/api/v1/runs?project=whisper-distill&sort=energy&dir=asc").await;
    let runs = runs.as_array().unwrap();
    assert!(!runs.is_empty());
    assert!(runs.iter().all(|r| r["project_name"] == "whisper-distill"));
    let e: Vec<f64> = runs.iter().map(|r| r["energy_kwh"].as_f64().unwrap()).collect();
    assert!(e.windows(2).all(|w| w[0] <= w[1]), "{e:?}");
    let page = json("/api/v1/runs?project=whisper-distill&sort=energy&dir=asc&offset=1&limit=2").await;
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["run_id"], runs[1]["run_id"]);
    let (status, _) = get("/api/v1/runs?limit=lots").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn api_run_detail_has_checkpoints_and_unknown_ids_are_404() {
    let runs = json("/api/v1/runs?sort=duration").await;
    let id = runs[0]["run_id"].as_str().unwrap().to_string();
    let detail = json(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(detail["run"]["run_id"], id.as_str());
    assert_eq!(detail["checkpoints"].as_array().unwrap().len() as u64, detail["run"]["checkpoints"].as_u64().unwrap());
    let (status, body) = get("/api/v1/runs/no-such-run").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no-such-run"));
    let (status, _) = get("/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_files_reports_the_short_row_with_its_line() {
    let files = json("/api/v1/files").await;
    let speech = files.as_array().unwrap().iter().find(|f| f["path"] == "speech/emissions.csv").unwrap();
    assert_eq!(speech["rows_rejected"], 1);
    assert_eq!(speech["schema"], "v3.2");
    let p = &speech["problems"][0];
    assert!(p["line"].as_u64().unwrap() > 1);
    assert!(p["reason"].as_str().unwrap().contains("fields where the header has 38"));
}

#[tokio::test]
async fn pages_render_on_the_server_without_javascript() {
    let (status, html) = get("/").await;
    assert_eq!(status, StatusCode::OK);
    for text in ["resnet50-imagenet", "llama-3-8b-lora", "whisper-distill", "Compute time"] {
        assert!(html.contains(text), "overview lacks {text}");
    }
    let (_, html) = get("/runs?project=whisper-distill").await;
    assert!(html.contains("runs-table") && html.contains("whisper-distill"));
    assert!(!html.contains("llama-3-8b-lora</td>"), "the filter applies on the server too");
    let runs = json("/api/v1/runs").await;
    let id = runs[0]["run_id"].as_str().unwrap();
    let (status, html) = get(&format!("/runs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(id) && html.contains("Checkpoints"));
    let (_, html) = get("/files").await;
    assert!(html.contains("speech/emissions.csv") && html.contains("not counted"));
}

#[tokio::test]
async fn the_summary_lists_projects_and_one_project_opens_its_experiments() {
    let all = json("/api/v1/summary").await;
    let projects = all["projects"].as_array().unwrap();
    assert!(projects.len() >= 2);
    assert!(projects.iter().all(|p| p["experiments"].as_array().unwrap().is_empty()));
    assert!(projects.iter().all(|p| p["experiments_total"].as_u64().unwrap() > 0));
    let name = projects[0]["project_name"].as_str().unwrap();
    let one = json(&format!("/api/v1/summary?project={name}")).await;
    let only = one["projects"].as_array().unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(
        only[0]["experiments"].as_array().unwrap().len() as u64,
        projects[0]["experiments_total"].as_u64().unwrap()
    );
    assert_eq!(one["totals"], all["totals"], "totals are the whole catalog's either way");
}

#[tokio::test]
async fn an_unknown_page_is_a_404() {
    let (status, _) = get("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_logs_folder_is_read_recursively_with_paths_relative_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures");
    let nested = dir.path().join("team-a/project-x");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(fixtures.join("checkpoints.csv"), nested.join("emissions.csv")).unwrap();
    std::fs::copy(fixtures.join("checkpoints.csv"), nested.join("emissions.csv_1.bak")).unwrap();
    std::fs::copy(fixtures.join("short_and_long_rows.csv"), dir.path().join("other.csv")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a log").unwrap();
    let root = dir.path().to_path_buf();
    let cat = tokio::task::spawn_blocking(move || carbon_core::catalog::load_dir(&root)).await.unwrap().unwrap();
    let (_, body) = send(build(cat), "/api/v1/files").await;
    let files: Value = serde_json::from_str(&body).unwrap();
    let paths: Vec<&str> = files.as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["other.csv", "team-a/project-x/emissions.csv", "team-a/project-x/emissions.csv_1.bak"]);
    assert_eq!(files[0]["rows_rejected"], 2);
}

#[tokio::test]
async fn the_dataset_parameter_switches_the_figures_and_rejects_unknown_names() {
    let latest = json("/api/v1/runs?project=llama-3-8b-lora&sort=started").await;
    let cc = json("/api/v1/runs?project=llama-3-8b-lora&sort=started&dataset=codecarbon").await;
    // gcp us-central1: Google 2024 (412.72 g/kWh) vs CodeCarbon 3.3.2's impact.csv (430).
    assert_eq!(latest[0]["intensity_g_per_kwh"], 412.72);
    assert_eq!(cc[0]["intensity_g_per_kwh"], 430.0);
    assert_eq!(latest[0]["location_resolution"], "cloud_region");
    let e = latest[0]["energy_kwh"].as_f64().unwrap();
    assert!((latest[0]["co2_kg"].as_f64().unwrap() - e * 0.41272).abs() < 1e-9);
    let s = json("/api/v1/summary?dataset=codecarbon").await;
    assert_eq!(s["dataset"], "codecarbon");
    let t = &s["totals"];
    assert!(t["co2_kg_low"].as_f64().unwrap() <= t["co2_kg"].as_f64().unwrap());
    assert!(t["co2_kg"].as_f64().unwrap() <= t["co2_kg_high"].as_f64().unwrap());
    let (status, body) = get("/api/v1/runs?dataset=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("bogus"));
}

#[tokio::test]
async fn equivalents_and_datasets_endpoints_answer_with_sources() {
    let eq = json("/api/v1/equivalents?co2_kg=1.066&kwh=19.8").await;
    let car = eq.as_array().unwrap().iter().find(|e| e["id"] == "car_km_eu").unwrap();
    assert!((car["amount"].as_f64().unwrap() - 10.0).abs() < 1e-9);
    assert!(car["source"]["url"].as_str().unwrap().starts_with("https://"));
    let only_energy = json("/api/v1/equivalents?kwh=9.9").await;
    assert_eq!(only_energy.as_array().unwrap().len(), 1);
    let (status, _) = get("/api/v1/equivalents?co2_kg=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let d = json("/api/v1/datasets").await;
    assert!(d["sources"].as_array().unwrap().iter().any(|s| s["licence"] == "CC BY 4.0"));
    assert_eq!(d["modes"][1], "codecarbon");
    let (_, html) = get("/data").await;
    assert!(html.contains("Ember") && html.contains("CC BY 4.0") && html.contains("Uncertainty"));
}

#[tokio::test]
async fn regions_and_whatif_api_rank_the_selection() {
    let regions = json("/api/v1/regions").await;
    let regions = regions.as_array().unwrap();
    assert_eq!(regions.len(), 117);
    for key in ["provider", "region", "name", "lat", "lon", "country_iso_code", "intensity_g_per_kwh", "source", "year"]
    {
        assert!(regions[0].get(key).is_some(), "missing {key}");
    }
    let w = json("/api/v1/whatif?project=llama-3-8b-lora&provider=gcp").await;
    let options = w["options"].as_array().unwrap();
    assert!(!options.is_empty() && options.iter().all(|o| o["provider"] == "gcp"));
    let co2: Vec<f64> = options.iter().map(|o| o["co2_kg"].as_f64().unwrap()).collect();
    assert!(co2.windows(2).all(|p| p[0] <= p[1]), "ranked");
    let energy = w["energy_kwh"].as_f64().unwrap();
    let first = &options[0];
    let expected = energy * first["intensity_g_per_kwh"].as_f64().unwrap() / 1000.0;
    assert!((first["co2_kg"].as_f64().unwrap() - expected).abs() < 1e-12);
    let saving = w["current_co2_kg"].as_f64().unwrap() - expected;
    assert!((first["saving_kg"].as_f64().unwrap() - saving).abs() < 1e-12);
    assert!(w["recommendation"].as_str().unwrap().contains("gcp"));
    let europe = json("/api/v1/whatif?continent=Europe").await;
    assert!(europe["options"].as_array().unwrap().iter().all(|o| o["continent"] == "Europe"));
    let (status, _) = get("/api/v1/whatif?run_id=no-such-run").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_map_page_holds_every_country_path_and_region_marker_without_javascript() {
    let (status, html) = get("/map").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("class=\"country\"").count(), 177);
    assert_eq!(html.matches("class=\"marker ").count(), 117);
    assert!(html.contains("data-region=\"aws/us-east-1\"") && html.contains("id=\"recommendation\""));
    let (_, html) = get("/map?provider=azure&region=azure/swedencentral").await;
    assert_eq!(html.matches("class=\"marker ").count(), html.matches("data-provider=\"azure\"").count());
    assert!(html.contains("Selected: azure swedencentral"));
    let (_, html) = get("/regions?sort=intensity").await;
    assert!(html.contains("europe-north1") && html.contains("Google CFE"));
}

#[tokio::test]
async fn timeseries_and_teams_follow_the_folder_layout_and_add_up() {
    let teams = json("/api/v1/teams").await;
    let names: Vec<&str> = teams.as_array().unwrap().iter().map(|t| t["team"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["llm-finetune", "speech", "sweep", "vision-lab"]);
    let ts = json("/api/v1/timeseries?group_by=month&by=team").await;
    let total: f64 = ts["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["co2_kg"].as_array().unwrap())
        .map(|v| v.as_f64().unwrap())
        .sum();
    let summary = json("/api/v1/summary").await;
    let expected = summary["totals"]["co2_kg"].as_f64().unwrap();
    assert!((total - expected).abs() < 1e-9 * expected, "{total} vs {expected}");
    // Monthly totals equal the runs that end in each month.
    let runs = json("/api/v1/runs").await;
    let periods = ts["periods"].as_array().unwrap();
    for (i, p) in periods.iter().enumerate() {
        let month = p.as_str().unwrap();
        let want: f64 = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["ended_at"].as_str().is_some_and(|e| e.starts_with(month)))
            .map(|r| r["co2_kg"].as_f64().unwrap_or(0.0))
            .sum();
        let got: f64 = ts["series"].as_array().unwrap().iter().map(|s| s["co2_kg"][i].as_f64().unwrap()).sum();
        assert!((got - want).abs() < 1e-9, "{month}: {got} vs {want}");
    }
    let speech = json("/api/v1/timeseries?group_by=week&team=speech").await;
    assert!(speech["series"].as_array().unwrap().iter().all(|s| s["key"] == "whisper-distill"));
    let (status, _) = get("/api/v1/timeseries?group_by=year").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, html) = get("/teams/speech").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Team speech") && html.contains("CO₂e per month, by project") && html.contains("data (CSV)"));
    let (_, html) = get("/teams").await;
    assert!(html.contains("CO₂e per month, by team") && html.contains("vision-lab"));
}

async fn send_method(method: &str, uri: &str) -> StatusCode {
    let req = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    let app = app();
    server_runtime().spawn(async move { app.oneshot(req).await.unwrap().status() }).await.unwrap()
}

#[tokio::test]
async fn no_route_writes_and_health_answers() {
    let h = json("/healthz").await;
    assert_eq!(h["status"], "ok");
    assert!(h["runs"].as_u64().unwrap() > 20);
    for &uri in common::EVERY_ROUTE {
        for method in ["PUT", "DELETE", "PATCH"] {
            let status = send_method(method, uri).await;
            assert!(
                status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_FOUND,
                "{method} {uri}: {status}"
            );
        }
        if uri.starts_with("/api/v1") || uri == "/healthz" {
            assert_eq!(send_method("POST", uri).await, StatusCode::METHOD_NOT_ALLOWED, "POST {uri}");
        }
    }
}

#[tokio::test]
async fn the_bundle_goes_as_brotli_or_gzip_to_browsers_that_take_them() {
    let app = app();
    let ask = |coding: &'static str| {
        let req = Request::get("/pkg/bundle.js").header("accept-encoding", coding).body(Body::empty()).unwrap();
        call(&app, req)
    };
    let (status, headers, body) = ask("gzip, deflate, br").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "br");
    assert_eq!(body, common::BUNDLE_BROTLI, "the build's own brotli copy");
    let (_, headers, _) = ask("gzip").await;
    assert_eq!(headers["content-encoding"], "gzip");
    let (_, headers, body) = ask("identity").await;
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(body, common::BUNDLE_TEXT.repeat(100));
}

#[tokio::test]
async fn no_route_serves_a_file_outside_the_assets() {
    let (status, body) = get("/pkg/carbon-dash.css").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, common::ASSET_TEXT), "the assets are served");
    for uri in [
        "/../secret.txt",
        "/pkg/../../secret.txt",
        "/pkg/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/pkg/..%2f..%2fsecret.txt",
        "/pkg/..%5c..%5csecret.txt",
        "/pkg/%252e%252e/%252e%252e/secret.txt",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/pkg//etc/passwd",
    ] {
        let (status, body) = get(uri).await;
        assert!(!body.contains(common::OUTSIDE_TEXT) && !body.contains("root:x:0:0"), "{uri} leaked a file ({status})");
        assert!(status.is_client_error(), "{uri}: {status}");
    }
}

#[tokio::test]
async fn an_oversized_body_gets_a_clear_413() {
    let big = vec![b'x'; carbon_dash::MAX_BODY_BYTES + 1];
    let req = Request::post("/api/v1/summary")
        .header("content-type", "application/json")
        .header("content-length", big.len().to_string())
        .body(Body::from(big))
        .unwrap();
    let app = app();
    let status = server_runtime().spawn(async move { app.oneshot(req).await.unwrap().status() }).await.unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn behind_a_reverse_proxy_everything_lives_under_the_base_path() {
    static BASED: OnceLock<axum::Router> = OnceLock::new();
    let app = BASED
        .get_or_init(|| {
            let mut s = common::state(catalog());
            s.base_path = "/carbon".into();
            common::build(s)
        })
        .clone();
    let (status, html) = send(app.clone(), "/carbon").await;
    assert_eq!(status, StatusCode::OK);
    for link in [
        "href=\"/carbon/runs\"",
        "href=\"/carbon/pkg/carbon-dash.css\"",
        "/carbon/pkg/carbon-dash.js",
        "href=\"/carbon/map?project=",
        "content=\"/carbon\"",
    ] {
        assert!(html.contains(link), "{link} missing");
    }
    assert!(!html.contains("href=\"/runs\"") && !html.contains("href=\"/map"), "no link escapes the base path");
    let (status, html) = send(app.clone(), "/carbon/runs?sort=energy").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("href=\"/carbon/runs/") && html.contains("action=\"/carbon/runs\""));
    let (status, body) = send(app.clone(), "/carbon/api/v1/summary").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for uri in ["/", "/carbon/"] {
        let (status, headers, _) = call(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert!(
            status.is_redirection() && headers["location"] == "/carbon",
            "{uri}: {status} {:?}",
            headers.get("location")
        );
    }
    let (status, _) = send(app.clone(), "/runs").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_are_gzipped_for_clients_that_ask_and_events_never_are() {
    let req = Request::get("/").header("accept-encoding", "gzip").body(Body::empty()).unwrap();
    let (status, headers, _) = call(&app(), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "gzip");
    let (_, headers, html) = call(&app(), Request::get("/").body(Body::empty()).unwrap()).await;
    assert!(headers.get("content-encoding").is_none() && html.contains("Overview"));
    let req = Request::get("/api/v1/events").header("accept-encoding", "gzip").body(Body::empty()).unwrap();
    let app = app();
    let headers =
        server_runtime().spawn(async move { app.oneshot(req).await.unwrap().headers().clone() }).await.unwrap();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(headers.get("content-encoding").is_none());
}

#[tokio::test]
async fn pages_are_rendered_once_per_version_of_the_logs() {
    static CACHED: OnceLock<(axum::Router, carbon_dash::AppState)> = OnceLock::new();
    let (app, state) = CACHED
        .get_or_init(|| {
            let s = common::state(catalog());
            (common::build(s.clone()), s)
        })
        .clone();
    let (_, first) = send(app.clone(), "/runs").await;
    assert!(first.contains("resnet50-imagenet"));
    assert_eq!(state.pages.len(), 1);
    // The catalog changes without telling: the kept page is served.
    state.catalog.replace(Catalog::default());
    let (_, again) = send(app.clone(), "/runs").await;
    assert_eq!(again, first);
    // The watcher tells: the page is rendered anew.
    state.changes.send(1).unwrap();
    let (_, fresh) = send(app.clone(), "/runs").await;
    assert!(!fresh.contains("resnet50-imagenet"), "rendered from the new catalog");
    // Other queries are other pages; the JSON API is kept the same way.
    let _ = send(app.clone(), "/runs?sort=energy").await;
    let _ = send(app.clone(), "/api/v1/summary").await;
    assert_eq!(state.pages.len(), 3);
}

#[tokio::test]
async fn routers_built_while_pages_render_never_stall_them() {
    // Building a router lists the app's pages; a page whose data loads while that happens must
    // still finish (it once waited forever: the listing paused every resource in the process).
    let app = app();
    let builder = std::thread::spawn(|| {
        for _ in 0..20 {
            drop(build(catalog()));
        }
    });
    let mut n = 0;
    while !builder.is_finished() || n < 20 {
        // A new query each time: a page kept by the cache would not render.
        let uri = format!("/runs?team=demo-{n}");
        let render = tokio::time::timeout(std::time::Duration::from_secs(20), send(app.clone(), &uri));
        let (status, body) = render.await.unwrap_or_else(|_| panic!("{uri} stalled"));
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(body.contains("</html>"), "{uri} complete");
        n += 1;
    }
    builder.join().unwrap();
}

#[tokio::test]
async fn a_local_server_answers_to_its_own_names_only() {
    let mut s = common::state(catalog());
    s.allowed_hosts = carbon_dash::allowed_hosts("127.0.0.1:3000".parse().unwrap(), &["dash.lan".into()]);
    let app = common::build(s);
    let with_host = |host: &str| Request::get("/healthz").header("host", host).body(Body::empty()).unwrap();
    for host in ["localhost:3000", "127.0.0.1:3000", "[::1]:3000", "LOCALHOST", "dash.lan:3000"] {
        let (status, _, _) = call(&app, with_host(host)).await;
        assert_eq!(status, StatusCode::OK, "{host}");
    }
    // A page of another site whose name now resolves to 127.0.0.1 (DNS rebinding).
    let (status, _, body) = call(&app, with_host("attacker.example:3000")).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    assert!(body.contains("--allow-host attacker.example"), "{body}");
    // Listening everywhere, a hosted page answers to any name unless told its names.
    assert_eq!(carbon_dash::allowed_hosts("0.0.0.0:8080".parse().unwrap(), &[]), None);
    assert_eq!(
        carbon_dash::allowed_hosts("0.0.0.0:8080".parse().unwrap(), &["Carbon.Example.org".into()]),
        Some(vec!["carbon.example.org".to_string()])
    );
}

#[tokio::test]
async fn the_teams_pages_follow_the_dataset_chosen() {
    for dataset in ["latest", "codecarbon"] {
        let teams = json(&format!("/api/v1/teams?dataset={dataset}")).await;
        let first = &teams.as_array().unwrap()[0];
        let co2 = carbon_core::units::co2_kg(first["totals"]["co2_kg"].as_f64().unwrap());
        let (status, page) = get(&format!("/teams?dataset={dataset}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&co2), "{dataset}: the first team's {co2} on the page");
    }
    let latest = json("/api/v1/teams?dataset=latest").await;
    let codecarbon = json("/api/v1/teams?dataset=codecarbon").await;
    assert_ne!(latest[0]["totals"]["co2_kg"], codecarbon[0]["totals"]["co2_kg"], "the modes differ on the demo");
}

#[tokio::test]
async fn runs_come_a_page_at_a_time_with_the_count_and_the_next_page_or_all_streamed() {
    // 2,500 runs: more than one answer's worth.
    let mut csv = String::from("timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n");
    for i in 0..2500 {
        csv.push_str(&format!(
            "2026-10-01T10:{:02}:{:02},p{},r{i:04},10,0.0001,0.002,FRA\n",
            i / 60 % 60,
            i % 60,
            i % 3
        ));
    }
    let file = carbon_core::ingest::ingest_bytes("many.csv", csv.as_bytes()).unwrap();
    let app = build(Catalog::from_files(vec![file]).unwrap());
    let call_get = |uri: &str| call(&app, Request::get(uri).body(Body::empty()).unwrap());
    let (status, headers, body) = call_get("/api/v1/runs?sort=project&dir=asc").await;
    assert_eq!(status, StatusCode::OK);
    let first: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first.as_array().unwrap().len(), carbon_dash::RUNS_PER_ANSWER, "a page by default");
    assert_eq!(headers["x-total-count"], "2500");
    let next = headers["link"].to_str().unwrap().to_string();
    assert_eq!(next, "</api/v1/runs?dir=asc&sort=project&offset=1000>; rel=\"next\"");
    // Following the links gives every run once; `limit=all` streams the same, in the same order.
    let mut paged: Vec<Value> = first.as_array().unwrap().clone();
    let mut link = Some(next);
    while let Some(l) = link {
        let uri = l.trim_start_matches('<').split('>').next().unwrap().to_string();
        let (_, headers, body) = call_get(&uri).await;
        paged.extend(serde_json::from_str::<Value>(&body).unwrap().as_array().unwrap().clone());
        link = headers.get("link").map(|v| v.to_str().unwrap().to_string());
    }
    assert_eq!(paged.len(), 2500);
    let (status, headers, body) = call_get("/api/v1/runs?sort=project&dir=asc&limit=all").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("link").is_none());
    let all: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(all.as_array().unwrap(), &paged);
    // Filtered and offset, streamed.
    let (_, headers, body) = call_get("/api/v1/runs?project=p1&offset=5&limit=all").await;
    let some: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(headers["x-total-count"], "833");
    assert_eq!(some.as_array().unwrap().len(), 828);
    assert!(some.as_array().unwrap().iter().all(|r| r["project_name"] == "p1"));
}

#[tokio::test]
async fn a_next_page_link_keeps_the_base_path_and_a_zero_limit_has_none() {
    let mut s = common::state(catalog());
    s.base_path = "/carbon".into();
    let app = common::build(s);
    let (status, headers, _) =
        call(&app, Request::get("/carbon/api/v1/runs?limit=10").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["link"], "</carbon/api/v1/runs?limit=10&offset=10>; rel=\"next\"");
    let (_, headers, body) =
        call(&app, Request::get("/carbon/api/v1/files?limit=0").body(Body::empty()).unwrap()).await;
    assert_eq!(body, "[]");
    assert!(headers.get("link").is_none(), "a page of nothing has no next page");
}

#[tokio::test]
async fn the_pareto_api_names_its_figures_and_refuses_what_it_cannot_read() {
    let v = json("/api/v1/pareto?project=bert-sst2-sweep").await;
    assert_eq!(v["metric"], "eval_accuracy");
    assert_eq!(v["direction"], "higher");
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 31, "30 trials and the Trainer's run");
    for key in ["run_id", "co2_kg", "energy_kwh", "value", "on_front"] {
        assert!(points.iter().all(|p| p.get(key).is_some()), "{key}");
    }
    let knee = v["knee_run_id"].as_str().unwrap();
    assert!(points.iter().any(|p| p["run_id"] == knee && p["on_front"] == true));
    let beaten: f64 = points.iter().filter(|p| p["on_front"] == false).map(|p| p["co2_kg"].as_f64().unwrap()).sum();
    assert!((v["dominated_co2_kg"].as_f64().unwrap() - beaten).abs() < 1e-9);
    // The Trainer's run joined by its folder, and said to be a guess.
    assert!(points.iter().any(|p| p["joined_by_guess"].as_str().is_some_and(|g| g.contains("sweep/hf-trainer/"))));
    // Energy on the axis when asked; the loss goes down.
    let e = json("/api/v1/pareto?project=bert-sst2-sweep&metric=eval_loss&axis=energy&scale=log").await;
    assert_eq!(
        (e["axis"].as_str(), e["direction"].as_str(), e["scale"].as_str()),
        (Some("energy"), Some("lower"), Some("log"))
    );
    for (uri, says) in [
        (
            "/api/v1/pareto?project=bert-sst2-sweep&metric=bleu",
            "metric 'bleu': no run of project bert-sst2-sweep has it (they have: eval_accuracy, eval_loss, ",
        ),
        ("/api/v1/pareto?project=bert-sst2-sweep&axis=time", "axis 'time': one of co2, energy"),
        ("/api/v1/pareto?project=bert-sst2-sweep&delta=-1", "delta '-1': a number, 0 or more"),
    ] {
        let (status, body) = get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(body.contains(says), "{uri}: {body}");
    }
    assert_eq!(get("/api/v1/pareto?project=nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reports_come_in_each_format_with_their_type_and_a_file_name() {
    for (format, ctype, start) in [
        ("html", "text/html", "<!DOCTYPE html>"),
        ("tex", "application/x-tex", "% Compute and carbon statement"),
        ("md", "text/markdown", "## Environmental impact"),
        ("yaml", "application/yaml", "co2_eq_emissions:"),
        ("bib", "application/x-bibtex", "@misc{codecarbon,"),
    ] {
        let uri = format!("/api/v1/report?experiment=&project=bert-sst2-sweep&format={format}");
        let (status, headers, body) = call(&app(), Request::get(&uri).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(ctype), "{format}");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(disposition.contains(&format!("carbon-report-project-bert-sst2-sweep.{format}")), "{disposition}");
        assert!(body.starts_with(start), "{format}: {}", &body[..80.min(body.len())]);
    }
    let (status, body) = get("/api/v1/report?project=bert-sst2-sweep&metric=bleu").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a metric no run has: {body}");
    let (status, body) = get("/api/v1/report?format=docx").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("format 'docx'"));
    assert_eq!(get("/api/v1/report?run_id=nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_files_page_says_how_each_metrics_file_joined() {
    let files = json("/api/v1/files?limit=1000").await;
    let files = files.as_array().unwrap();
    let m = files.iter().find(|f| f["path"] == "sweep/metrics.csv").unwrap();
    assert_eq!(m["schema"], "metrics");
    assert_eq!(m["join"], "joined to 30 runs by run_id");
    let hf = files.iter().find(|f| f["path"] == "sweep/hf-trainer/all_results.json").unwrap();
    assert!(hf["join"].as_str().unwrap().contains("by its folder, a guess"), "{hf}");
    let (status, page) = get("/files").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("joined to 30 runs by run_id"), "the Files page shows the join");
}

/// Status, headers and body of a GET on a router over the demo.
async fn get_with_headers(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    call(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn every_answer_carries_security_headers_and_pages_a_policy_their_scripts_meet() {
    let plain = app();
    let header = |h: &axum::http::HeaderMap, name: &str| {
        h.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    };
    for uri in ["/", "/runs", "/api/v1/summary", "/api/v1/report?format=html", "/nope", "/api/v1/nope", "/healthz"] {
        let (status, h, _) = get_with_headers(&plain, uri).await;
        assert!(status.is_success() || status == StatusCode::NOT_FOUND, "{uri}: {status}");
        assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(header(&h, "x-frame-options"), "DENY", "{uri}");
        assert_eq!(header(&h, "referrer-policy"), "same-origin", "{uri}");
        assert!(header(&h, "content-security-policy").contains("frame-ancestors 'none'"), "{uri}");
        assert!(h.get("strict-transport-security").is_none(), "no HSTS without TLS in front");
    }
    // A page: its inline scripts all carry the nonce its policy names, and no other script runs.
    for uri in ["/", "/runs", "/nope"] {
        let (_, h, page) = get_with_headers(&plain, uri).await;
        let policy = header(&h, "content-security-policy");
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .unwrap_or_else(|| panic!("{uri}: {policy}"));
        assert!(nonce.len() >= 16, "{policy}");
        let scripts_allowed = policy.split(';').map(str::trim).find(|d| d.starts_with("script-src")).unwrap();
        assert!(!scripts_allowed.contains("'unsafe-inline'") && !scripts_allowed.contains("'unsafe-eval'"), "{policy}");
        let scripts: Vec<&str> = page.split("<script").skip(1).map(|s| &s[..s.find('>').unwrap()]).collect();
        assert!(!scripts.is_empty(), "{uri}");
        for s in scripts {
            assert!(s.contains(&format!("nonce=\"{nonce}\"")), "{uri}: <script{s}>");
        }
    }
    // The report: no script at all, its own styles and images only.
    let (_, h, report) = get_with_headers(&plain, "/api/v1/report?format=html").await;
    assert_eq!(header(&h, "content-security-policy"), carbon_dash::REPORT_POLICY);
    assert!(report.split("<script").skip(1).all(|s| s.starts_with(" type=\"application/json\"")), "only data");
    // JSON: nothing may run.
    let (_, h, _) = get_with_headers(&plain, "/api/v1/summary").await;
    assert_eq!(header(&h, "content-security-policy"), carbon_dash::DEFAULT_POLICY);
    // Behind TLS: HSTS.
    let mut s = common::state(catalog());
    s.behind_tls = true;
    let tls = common::build(s);
    let (_, h, _) = get_with_headers(&tls, "/").await;
    assert_eq!(header(&h, "strict-transport-security"), carbon_dash::HSTS);
}

#[tokio::test]
async fn runs_carry_their_model_metrics_and_how_each_was_joined() {
    let runs = json("/api/v1/runs?project=bert-sst2-sweep&limit=100").await;
    let runs = runs.as_array().unwrap();
    let with: Vec<&Value> = runs.iter().filter(|r| r.get("metrics").is_some()).collect();
    assert!(with.len() >= 30, "the sweep's trials have metrics: {}", with.len());
    let one = with.iter().find(|r| r["metrics_join"]["eval_accuracy"]["guess"].is_null()).unwrap();
    let acc = one["metrics"]["eval_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{one}");
    let join = &one["metrics_join"]["eval_accuracy"];
    assert!(join["file"].as_str().unwrap().ends_with("metrics.csv"), "{join}");
    assert!(join["how"].as_str().unwrap().contains("by run_id"), "{join}");
    // The Trainer run's values are joined by its folder: a guess, said.
    let guessed = with.iter().find(|r| !r["metrics_join"].as_object().unwrap().values().all(|j| j["guess"].is_null()));
    assert!(guessed.is_some(), "the Trainer run's metrics are a guess");
    // The run's own answer and the streamed list say the same.
    let id = one["run_id"].as_str().unwrap();
    let detail = json(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(detail["metrics"]["eval_accuracy"].as_f64(), Some(acc));
    let all = json("/api/v1/runs?limit=all").await;
    let streamed = all.as_array().unwrap().iter().find(|r| r["run_id"] == id).unwrap();
    assert_eq!(streamed["metrics"], one["metrics"]);
    // A run without metrics has no such keys.
    let other = all.as_array().unwrap().iter().find(|r| r["project_name"] != "bert-sst2-sweep").unwrap();
    assert!(other.get("metrics").is_none() && other.get("metrics_join").is_none(), "{other}");
}

#[tokio::test]
async fn runs_carry_the_hyper_parameters_of_their_optuna_trial() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("emissions.csv"),
        "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n\
         2026-10-01T10:00:00,trial-0,t0,600,0.0123456789012345,0.0301,FRA\n\
         2026-10-01T11:00:00,trial-1,t1,600,0.0234567890123456,0.0602,FRA\n",
    )
    .unwrap();
    // Optuna's journal as its JournalFileBackend writes it: a study, two complete trials.
    let dist = r#""{\"name\": \"CategoricalDistribution\", \"attributes\": {\"choices\": [\"adam\", \"sgd\"]}}""#;
    let mut journal = String::from(
        "{\"op_code\":0,\"worker_id\":\"w\",\"study_name\":\"s\",\"directions\":[2]}\n\
         {\"op_code\":3,\"worker_id\":\"w\",\"study_id\":0,\"system_attr\":{\"study:metric_names\":[\"f1\"]}}\n",
    );
    for (t, (id, f1)) in [("t0", 0.81), ("t1", 0.86)].iter().enumerate() {
        journal.push_str(&format!(
            "{{\"op_code\":4,\"worker_id\":\"w\",\"study_id\":0,\"datetime_start\":\"2026-10-01T10:00:00\"}}\n\
             {{\"op_code\":5,\"worker_id\":\"w\",\"trial_id\":{t},\"param_name\":\"optimizer\",\"param_value_internal\":{t},\"distribution\":{dist}}}\n\
             {{\"op_code\":8,\"worker_id\":\"w\",\"trial_id\":{t},\"user_attr\":{{\"codecarbon_run_id\":\"{id}\"}}}}\n\
             {{\"op_code\":6,\"worker_id\":\"w\",\"trial_id\":{t},\"state\":1,\"values\":[{f1}]}}\n"
        ));
    }
    std::fs::write(dir.path().join("journal.log"), journal).unwrap();
    let app = common::build(common::state(carbon_core::catalog::load_dir(dir.path()).unwrap()));
    let (status, _, body) = common::call(&app, Request::get("/api/v1/runs/t1").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let run: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(run["metrics"]["f1"].as_f64(), Some(0.86), "{run}");
    assert_eq!(run["params"]["optimizer"], "sgd", "{run}");
    assert_eq!(run["metrics_join"]["f1"]["format"], "Optuna study (journal)");
    let (_, _, list) = common::call(&app, Request::get("/api/v1/runs").body(Body::empty()).unwrap()).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let t0 = list.as_array().unwrap().iter().find(|r| r["run_id"] == "t0").unwrap();
    assert_eq!(t0["params"]["optimizer"], "adam");
}
