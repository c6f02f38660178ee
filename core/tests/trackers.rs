//! Other trackers' logs: the real carbontracker, eco2AI, Zeus and experiment-impact-tracker write
//! them (`trackers/write_logs.py`, in the environment `./x test` makes) beside a CodeCarbon file;
//! every run is read with its tool and version, its energy equal to the tool's own parser's, its
//! CO2 recomputed and the gap explained. Damaged files of each format get line and column.

#![allow(clippy::unwrap_used)]

use carbon_core::catalog::load_dir;
use carbon_core::ingest::ingest_bytes;
use carbon_core::model::{DeltaKind, Run};

fn python() -> Option<String> {
    match std::env::var("CARBON_DASH_TEST_TRACKERS_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "CARBON_DASH_TEST_TRACKERS_PYTHON is not set: run ./x test");
            eprintln!("CARBON_DASH_TEST_TRACKERS_PYTHON not set: the real trackers are not run here");
            None
        }
    }
}

const CODECARBON: &str = "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n\
                          2026-10-01T10:00:00,bert,cc-1,600,0.0011,0.02,FRA\n";

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

#[test]
fn a_folder_of_all_five_trackers_reads_each_run_with_its_tool_and_the_tools_own_energy() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/trackers/write_logs.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(dir.path())
        .env("HOME", dir.path())
        .output()
        .expect("run the trackers");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reference: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("the script prints its reference")).expect("JSON");
    std::fs::create_dir_all(dir.path().join("cc")).unwrap();
    std::fs::write(dir.path().join("cc/emissions.csv"), CODECARBON).unwrap();

    let cat = load_dir(dir.path()).expect("load");
    let runs: Vec<&Run> = cat.runs(carbon_core::model::DatasetMode::Latest).iter().map(|r| &**r).collect();
    let of = |tool: &str| runs.iter().copied().filter(|r| r.tool_name() == tool).collect::<Vec<_>>();
    let version = |tool: &str| reference["versions"][tool].as_str().unwrap().to_string();
    let mut largest: Vec<(String, usize, f64)> = Vec::new();

    // carbontracker: one run from the pair of logs, the actual energy, the prediction apart.
    let ct = of("carbontracker");
    let want = &reference["carbontracker"][0];
    assert_eq!(ct.len(), 1, "{ct:#?}");
    let r = ct[0];
    assert_eq!(r.tool_version.as_deref(), Some(version("carbontracker").as_str()));
    let diff = relative(r.energy_kwh.unwrap(), want["energy_kwh"].as_f64().unwrap());
    assert!(diff < 1e-9, "{r:#?} vs {want}");
    assert!(relative(r.co2_kg_reported.unwrap() * 1000.0, want["co2_g"].as_f64().unwrap()) < 1e-9);
    assert_eq!(r.pue, Some(1.58));
    assert_eq!(r.source_files.len(), 2, "both logs of the pair: {:?}", r.source_files);
    assert!(r.cpu_model.is_some() && r.cpu_energy_kwh.is_some(), "the standard log's components: {r:#?}");
    let predicted = r.tags.iter().find(|(k, _)| k == "predicted energy (kWh)").expect("prediction kept as a tag");
    assert!(relative(predicted.1.parse().unwrap(), want["predicted_kwh"].as_f64().unwrap()) < 1e-9);
    let reason = r.assessment.delta_reason.as_ref().expect("the gap explained");
    assert_eq!(reason.kind, DeltaKind::OtherTool);
    assert!(reason.detail.contains("carbontracker 2.4.7") && reason.detail.contains("PUE of 1.58"), "{reason:?}");
    assert!(r.assessment.co2_kg.is_some(), "recomputed");
    let detail = cat.run_detail(&r.run_id, carbon_core::model::DatasetMode::Latest).expect("read").expect("detail");
    let epochs = detail.checkpoints.iter().filter(|c| c.file.ends_with("_carbontracker.log")).count();
    assert_eq!(epochs as u64, want["epochs"].as_u64().unwrap(), "{:#?}", detail.checkpoints);
    largest.push((format!("carbontracker {}", version("carbontracker")), ct.len(), diff));

    // eco2AI: a session and a run of epochs, each the sum of its rows.
    let eco = of("eco2AI");
    let wants = reference["eco2AI"].as_array().unwrap();
    assert_eq!(eco.len(), wants.len());
    let mut worst: f64 = 0.0;
    for want in wants {
        let r = eco.iter().find(|r| r.run_id == want["id"].as_str().unwrap()).expect("every id a run");
        let d = relative(r.energy_kwh.unwrap(), want["energy_kwh"].as_f64().unwrap());
        assert!(d < 1e-12, "{r:#?} vs {want}");
        assert!(relative(r.co2_kg_reported.unwrap(), want["co2_kg"].as_f64().unwrap()) < 1e-12);
        assert_eq!(r.assessment.delta_reason.as_ref().map(|d| d.kind), Some(DeltaKind::OtherTool), "{r:#?}");
        worst = worst.max(d);
    }
    let total: f64 = eco.iter().filter_map(|r| r.energy_kwh).sum();
    assert!(relative(total, reference["eco2AI_summary_kwh"].as_f64().unwrap()) < 1e-12, "eco2AI's own summary");
    assert!(eco.iter().any(|r| r.country_iso_code.as_deref() == Some("FRA")), "alpha-2 to the dataset's code");
    assert!(eco.iter().any(|r| r.checkpoints == 2), "one row an epoch: {eco:#?}");
    largest.push((format!("eco2AI {}", version("eco2AI")), eco.len(), worst));

    // Zeus: the training window around its epochs, counted once.
    let zeus = of("Zeus");
    assert_eq!(zeus.len(), 1);
    let want = &reference["Zeus"];
    assert!((zeus[0].duration_s.unwrap() - want["seconds"].as_f64().unwrap()).abs() < 1e-9, "{:#?}", zeus[0]);
    assert_eq!(zeus[0].energy_kwh, None, "no GPU here: no energy, not zero");
    assert_eq!(zeus[0].checkpoints as u64, want["windows"].as_u64().unwrap());
    largest.push((format!("Zeus {}", version("Zeus")), zeus.len(), 0.0));

    // experiment-impact-tracker: its integration of power, with its PUE.
    let eit = of("experiment-impact-tracker");
    assert_eq!(eit.len(), 1);
    let want = &reference["experiment-impact-tracker"];
    let diff = relative(eit[0].energy_kwh.unwrap(), want["energy_kwh"].as_f64().unwrap());
    assert!(diff < 1e-9, "{:#?} vs {want}", eit[0]);
    assert!(relative(eit[0].gpu_energy_kwh.unwrap(), want["kw_hr_gpu"].as_f64().unwrap() * 1.58) < 1e-9);
    assert_eq!(eit[0].run_id, "impacttracker-exp-resnet");
    largest.push((format!("experiment-impact-tracker {}", version("experiment-impact-tracker")), eit.len(), diff));

    // CodeCarbon's run is there too, and the Files page names each tool.
    assert_eq!(of("CodeCarbon").len(), 1);
    let schemas: Vec<String> = cat.files().iter().map(|f| f.schema.clone()).collect();
    for label in [
        "carbontracker log 2.4.7",
        "carbontracker output log",
        "eco2AI CSV",
        "Zeus windows CSV",
        "experiment-impact-tracker data",
    ] {
        assert!(schemas.iter().any(|s| s.starts_with(label)), "{label} in {schemas:?}");
    }
    for (tool, n, d) in &largest {
        println!("{tool}: {n} run(s) read, largest energy difference from its own parser {:.2e} (relative)", d);
    }
}

#[test]
fn damaged_files_of_each_format_say_where_and_keep_what_can_be_read() {
    // carbontracker's output log with an energy that is not a number: the block is not counted.
    let out = "2026-12-05 13:22:25 - CarbonTracker: \nActual consumption for 3 epoch(s):\n\tTime:\t0:00:03\n\
               \tEnergy:\t12,5 kWh\n\tCO2eq:\t0.03 g\n";
    let f = ingest_bytes("a_carbontracker_output.log", out.as_bytes()).unwrap();
    let p = &f.report.problems[0];
    assert_eq!((p.line, p.column, p.rejected), (4, Some(10), true), "{p:?}");
    assert!(p.reason.contains("a_carbontracker_output.log:4"), "{}", p.reason);
    assert_eq!(f.runs[0].run.energy_kwh, None, "a damaged actual is not energy");
    // Only a prediction: kept as a tag, never energy.
    let pred = "2026-12-05 13:22:23 - CarbonTracker: \nPredicted consumption for 3 epoch(s):\n\tTime:\t0:00:03\n\
                \tEnergy:\t0.5 kWh\n\tCO2eq:\t10.0 g\n";
    let f = ingest_bytes("b_carbontracker_output.log", pred.as_bytes()).unwrap();
    assert_eq!(f.runs[0].run.energy_kwh, None);
    assert!(f.runs[0].run.tags.contains(&("predicted energy (kWh)".into(), "0.5".into())));
    assert!(f.report.problems.iter().any(|p| p.reason.contains("only carbontracker's prediction")));
    // The standard log with a duration that is not H:MM:SS.
    let std = "2026-12-05 13:22:21 - carbontracker version 2.4.7\n2026-12-05 13:22:23 - Epoch 1:\n\
               2026-12-05 13:22:23 - Duration: 0:00:01.00\n2026-12-05 13:22:23 - Average power usage (W) for cpu: 60.0\n\
               2026-12-05 13:22:24 - Epoch 2:\n2026-12-05 13:22:24 - Duration: ten seconds\n";
    let f = ingest_bytes("c_carbontracker.log", std.as_bytes()).unwrap();
    assert_eq!((f.report.rows_read, f.report.rows_rejected), (2, 1));
    let p = f.report.problems.iter().find(|p| p.rejected).unwrap();
    assert_eq!((p.line, p.column), (6, Some(33)), "{p:?}");
    assert!((f.runs[0].run.energy_kwh.unwrap() - 60.0 * 1.58 / 3.6e6).abs() < 1e-15);
    // A `.log` no tracker wrote is said to be none, not read as one.
    let f = ingest_bytes("train.log", b"epoch 1 loss 0.3\n").unwrap();
    assert!(f.runs.is_empty() && f.report.problems[0].rejected, "{:?}", f.report);

    // eco2AI: a row with a consumption that is not a number, one with a field too many.
    let csv = "id,project_name,experiment_description,epoch,start_time,duration(s),power_consumption(kWh),\
               CO2_emissions(kg),CPU_name,GPU_name,OS,region/country,cost\n\
               a,p,d,N/A,2026-12-05 13:22:36,10,0.001,0.0001,\"AMD EPYC/1 device(s), TDP:500.0\", 0 device(s),Linux,FR,0\n\
               b,p,d,N/A,2026-12-05 13:22:36,10,lots,0.0001,cpu, 0 device(s),Linux,FR,0\n\
               c,p,d,N/A,2026-12-05 13:22:36,10,0.001,0.0001,cpu, 0 device(s),Linux,FR,0,extra\n";
    let f = ingest_bytes("emission.csv", csv.as_bytes()).unwrap();
    assert_eq!((f.report.rows_read, f.report.rows_rejected, f.runs.len()), (3, 2, 1));
    let p = &f.report.problems[0];
    assert_eq!((p.line, p.column, p.column_name.as_deref()), (3, Some(7), Some("power_consumption(kWh)")), "{p:?}");
    assert_eq!(f.runs[0].run.cpu_model.as_deref(), Some("AMD EPYC"));
    // eco2AI before 0.3: no id, `kWTh`; each row a run.
    let old = "project_name,experiment_description,start_time,duration(s),power_consumption(kWTh),CO2_emissions(kg),\
               CPU_name,GPU_name,OS,region/country\n\
               p,d,2022-06-01 10:00:00,60,0.002,0.0003,cpu,gpu,Linux,RU/Moscow\n\
               p,d,2022-06-01 11:00:00,60,0.004,0.0006,cpu,gpu,Linux,RU/Moscow\n";
    let f = ingest_bytes("old/emission.csv", old.as_bytes()).unwrap();
    assert_eq!(f.runs.len(), 2);
    assert!(f.runs.iter().all(|p| p.run.run_id_synthetic && p.run.region.as_deref() == Some("Moscow")));

    // Zeus: a window whose energy is negative.
    let zeus = "start_time,window_name,elapsed_time,gpu0_energy\n1796476978.05,epoch_1,0.3,120.5\n\
                1796476978.35,epoch_2,0.2,-4\n";
    let f = ingest_bytes("windows.csv", zeus.as_bytes()).unwrap();
    let p = &f.report.problems[0];
    assert_eq!((p.line, p.column, p.column_name.as_deref()), (3, Some(4), Some("gpu0_energy")), "{p:?}");
    assert!((f.runs[0].run.energy_kwh.unwrap() - 120.5 / 3.6e6).abs() < 1e-15);

    // experiment-impact-tracker: a line cut short.
    let data = "{\"timestamp\": 10.0, \"rapl_estimated_attributable_power_draw\": 40.0}\n\
                {\"timestamp\": 15.0, \"rapl_estimated_attributable_power_draw\": 42\n\
                {\"timestamp\": 20.0, \"rapl_estimated_attributable_power_draw\": 44.0}\n";
    let f = ingest_bytes("exp/impacttracker/data.json", data.as_bytes()).unwrap();
    assert_eq!((f.report.rows_read, f.report.rows_rejected), (3, 1));
    assert_eq!(f.report.problems[0].line, 2);
    // 10 s at 44 W, with its PUE.
    assert!((f.runs[0].run.energy_kwh.unwrap() - 1.58 * 10.0 * 44.0 / 3.6e6).abs() < 1e-15);
}

#[test]
fn a_file_that_only_looks_like_one_is_not_mistaken() {
    // A CodeCarbon file with a column named like eco2AI's is CodeCarbon's.
    let f = ingest_bytes("emissions.csv", CODECARBON.as_bytes()).unwrap();
    assert_eq!(f.runs[0].run.tool, None);
    // A results table with start_time but not Zeus's columns.
    let f = ingest_bytes("results.csv", b"start_time,model,accuracy\n1,a,0.9\n").unwrap();
    assert!(f.runs.iter().all(|p| p.run.tool.is_none()));
}

/// A folder of files, loaded as the server loads one.
fn folder(files: &[(&str, &str)]) -> (tempfile::TempDir, carbon_core::catalog::Catalog) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let cat = load_dir(dir.path()).unwrap();
    (dir, cat)
}

fn runs_of(cat: &carbon_core::catalog::Catalog) -> Vec<Run> {
    cat.runs(carbon_core::model::DatasetMode::Latest).iter().map(|r| (**r).clone()).collect()
}

#[test]
fn carbontracker_pairs_keep_measured_energy_the_pue_applied_and_the_location_as_releases_wrote_them() {
    // A standard log of carbontracker 1.x: its PUE 1.55, a GPU list NumPy wrapped onto a second
    // line, the location after the average, without a colon before the intensities.
    let std = "2022-05-01 10:00:00 - carbontracker version 1.1.7\n\
               2022-05-01 10:00:00 - Only predicted and actual consumptions are multiplied by a PUE coefficient of 1.55 (Rhonda Ascierto, 2020, Uptime Institute Global Data Center Survey).\n\
               2022-05-01 10:10:00 - Epoch 1:\n2022-05-01 10:10:00 - Duration: 0:10:00.00\n\
               2022-05-01 10:10:00 - Average power usage (W) for gpu: [250.12345678 251.3        252.2        250.\n 253.3        254.4       ]\n\
               2022-05-01 10:10:01 - Carbon intensities (gCO2eq/kWh) fetched every 900 s at detected location Aarhus, Central Jutland, DK: [150.0]\n\
               2022-05-01 10:10:01 - Average carbon intensity during training was 150.00 gCO2/kWh at detected location: Aarhus, Central Jutland, DK.\n";
    // Its output log holds only the prediction: the measured epochs are the run's energy.
    let out = "2022-05-01 10:10:00 - CarbonTracker: \nPredicted consumption for 10 epoch(s):\n\tTime:\t1:40:00\n\
               \tEnergy:\t2.500000000000 kWh\n\tCO2eq:\t375.000000000000 g\n";
    let (_dir, cat) = folder(&[
        ("a/1.2_2022-05-01T100000Z_carbontracker.log", std),
        ("a/1.2_2022-05-01T100000Z_carbontracker_output.log", out),
    ]);
    let runs = runs_of(&cat);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let r = &runs[0];
    let watts = 250.12345678 + 251.3 + 252.2 + 250.0 + 253.3 + 254.4;
    assert!((r.energy_kwh.unwrap() - watts * 600.0 * 1.55 / 3.6e6).abs() < 1e-12, "{r:#?}");
    assert_eq!(r.pue, Some(1.55));
    assert_eq!(r.country_iso_code.as_deref(), Some("DNK"));
    assert!(
        r.tool_basis.as_deref().unwrap().contains("150.00 gCO2eq/kWh")
            && r.tool_basis.as_deref().unwrap().contains("PUE of 1.55"),
        "{:?}",
        r.tool_basis
    );
    assert!(r.tags.iter().any(|(k, v)| k == "predicted energy (kWh)" && v == "2.5"), "the prediction apart");

    // `CO2eq: nan g` (no intensity): the actual energy stands, without a reported CO2.
    let out = "2026-12-05 13:22:25 - CarbonTracker: \nActual consumption for 3 epoch(s):\n\tTime:\t0:00:03\n\
               \tEnergy:\t0.000079 kWh\n\tCO2eq:\tnan g\n";
    let f = ingest_bytes("n_carbontracker_output.log", out.as_bytes()).unwrap();
    assert_eq!((f.runs[0].run.energy_kwh, f.runs[0].run.co2_kg_reported), (Some(0.000079), None));
    assert_eq!(f.report.rows_rejected, 0);
    // Fewer epochs measured than predicted: said.
    let out = "2026-12-05 13:22:23 - CarbonTracker: \nPredicted consumption for 10 epoch(s):\n\tTime:\t0:00:10\n\
               \tEnergy:\t0.001 kWh\n\tCO2eq:\t0.4 g\n2026-12-05 13:22:25 - CarbonTracker: \nActual consumption for 3 epoch(s):\n\
               \tTime:\t0:00:03\n\tEnergy:\t0.0003 kWh\n\tCO2eq:\t0.12 g\n";
    let f = ingest_bytes("m_carbontracker_output.log", out.as_bytes()).unwrap();
    assert_eq!(f.runs[0].run.energy_kwh, Some(0.0003));
    assert!(
        f.report.problems.iter().any(|p| p.reason.contains("measured 3 of the 10 epochs")),
        "{:?}",
        f.report.problems
    );
}

#[test]
fn runs_of_other_trackers_stay_apart_and_never_take_over_codecarbons() {
    let zeus = "start_time,window_name,elapsed_time,gpu0_energy\n1796476978.0,epoch_1,10.0,1000.0\n";
    let eco = "id,project_name,experiment_description,epoch,start_time,duration(s),power_consumption(kWh),\
               CO2_emissions(kg),CPU_name,GPU_name,OS,region/country,cost\n\
               cc-1,p,d,N/A,2026-10-01 09:00:00,600,9.9,9.9,cpu, 0 device(s),Linux,FR,0\n";
    let eit = "{\"timestamp\": 1790000000.0, \"rapl_estimated_attributable_power_draw\": 40.0}\n\
               {\"timestamp\": 1790000005.0, \"rapl_estimated_attributable_power_draw\": 40.0}\n";
    let (_dir, cat) = folder(&[
        ("a/windows.csv", zeus),
        ("b/windows.csv", zeus),
        ("x/impacttracker/data.json", eit),
        ("y/impacttracker/data.json", eit),
        ("cc/emissions.csv", CODECARBON),
        ("eco/emission.csv", eco),
    ]);
    let runs = runs_of(&cat);
    let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    for id in ["zeus-a/windows", "zeus-b/windows", "impacttracker-x", "impacttracker-y"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    // An eco2AI row naming CodeCarbon's run does not add to it.
    let cc = runs.iter().find(|r| r.run_id == "cc-1").unwrap();
    assert_eq!((cc.tool.as_deref(), cc.energy_kwh, cc.source_files.len()), (None, Some(0.02), 1), "{cc:#?}");
}

#[test]
fn hostile_figures_and_headers_cost_nothing_and_break_nothing() {
    // A header whose names are quoted into one field: not Zeus's, said, no panic.
    for zeus in ["\"start_time,window_name,elapsed_time\"\n5\n", "\"start_time,window_name\",elapsed_time\n5,6\n"] {
        let f = ingest_bytes("windows.csv", zeus.as_bytes()).unwrap();
        assert!(f.runs.iter().all(|p| p.run.energy_kwh.is_none()), "{:?}", f.report);
    }
    // Figures no machine writes: rejected, never an infinite or NaN energy.
    let eit = "{\"timestamp\": 1e-300, \"rapl_estimated_attributable_power_draw\": 0}\n\
               {\"timestamp\": 1e308, \"rapl_estimated_attributable_power_draw\": 1e300}\n\
               {\"timestamp\": 10.0, \"rapl_estimated_attributable_power_draw\": 36.0}\n";
    let f = ingest_bytes("exp/impacttracker/data.json", eit.as_bytes()).unwrap();
    let e = f.runs[0].run.energy_kwh.unwrap();
    assert!(e.is_finite() && (e - 1.58 * 10.0 * 36.0 / 3.6e6).abs() < 1e-15, "{e}");
    let zeus = "start_time,window_name,elapsed_time,gpu0_energy\n1.0,a,1e300,1e300\n2.0,b,1.0,5.0\n";
    let f = ingest_bytes("windows.csv", zeus.as_bytes()).unwrap();
    assert_eq!((f.report.rows_rejected, f.runs[0].run.energy_kwh), (1, Some(5.0 / 3.6e6)));
    // A quoted value in a problem is cut short.
    let long = "x".repeat(10_000);
    let std = format!("2026-12-05 13:22:21 - carbontracker version 2.4.7\n2026-12-05 13:22:23 - Duration: {long}\n");
    let f = ingest_bytes("l_carbontracker.log", std.as_bytes()).unwrap();
    assert!(f.report.problems[0].reason.len() < 400, "{}", f.report.problems[0].reason.len());
    // A first line of a .json file that is no sample is not parsed to be told.
    let big = format!("[{}0]", "0,".repeat(1_000_000));
    let f = ingest_bytes("big.json", big.as_bytes()).unwrap();
    assert!(f.runs.is_empty());
}
