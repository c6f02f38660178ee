//! Ingest cases, one fixture file each (written by fixtures/make_fixtures.py).
#![allow(clippy::unwrap_used)]

use carbon_core::model::DatasetMode;
const L: DatasetMode = DatasetMode::Latest;
use carbon_core::catalog::Catalog;
use carbon_core::ingest::{ingest_path, ParsedFile};
use carbon_core::model::Run;
use std::path::Path;

fn parse(name: &str) -> ParsedFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    ingest_path(&path, name).unwrap()
}

fn catalog(names: &[&str]) -> Catalog {
    Catalog::from_files(names.iter().map(|n| parse(n)).collect()).unwrap()
}

fn only_run(name: &str) -> Run {
    let cat = catalog(&[name]);
    assert_eq!(cat.runs(L).len(), 1, "{name}: {:?}", cat.files()[0].problems);
    (*cat.runs(L)[0]).clone()
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() <= 1e-12 * b.abs().max(1.0))
}

#[test]
fn every_header_generation_is_recognised_and_read() {
    for (file, schema, columns) in [
        ("v1_12_columns.csv", "v1", 12),
        ("v2_0_29_columns.csv", "v2.0", 29),
        ("v2_2_30_columns.csv", "v2.2", 30),
        ("v2_2_3_31_columns.csv", "v2.2.3", 31),
        ("v2_7_32_columns.csv", "v2.7", 32),
        ("v3_0_8_34_columns.csv", "v3.0.8", 34),
        ("v3_2_38_columns.csv", "v3.2", 38),
    ] {
        let f = parse(file);
        assert_eq!(f.report.schema, schema, "{file}");
        assert_eq!(f.report.columns, columns, "{file}");
        assert!(f.report.missing_columns.is_empty(), "{file}: {:?}", f.report.missing_columns);
        assert!(!f.report.reordered, "{file}");
        assert_eq!(f.report.rows_rejected, 0, "{file}: {:?}", f.report.problems);
        let cat = Catalog::from_files(vec![f]).unwrap();
        let r = &cat.runs(L)[0];
        assert!(r.energy_kwh.is_some() && r.co2_kg_reported.is_some(), "{file}");
        assert_eq!(r.country_iso_code.as_deref(), Some("FRA"), "{file}");
    }
}

#[test]
fn v1_experiment_id_is_the_run_id() {
    let cat = catalog(&["v1_12_columns.csv"]);
    let ids: Vec<&str> = cat.runs(L).iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(cat.runs(L).len(), 2);
    assert!(ids.contains(&"a1") && ids.contains(&"a2"));
    assert!(cat.runs(L).iter().all(|r| r.experiment_id.is_none()));
}

#[test]
fn v2_0_emission_rates_in_grams_per_second_become_kg_per_second() {
    let r = only_run("v2_0_29_columns.csv");
    // 0.3 kWh × 0.5 kg/kWh over 300 s.
    assert!(close(r.emissions_rate_kg_per_s, 0.15 / 300.0), "{:?}", r.emissions_rate_kg_per_s);
    let r = only_run("v3_2_38_columns.csv");
    assert!(close(r.emissions_rate_kg_per_s, 0.05 / 100.0));
}

#[test]
fn a_run_is_its_last_checkpoint_never_the_sum_and_a_copy_counts_once() {
    let cat = catalog(&["checkpoints.csv", "checkpoints.csv_1.bak"]);
    assert_eq!(cat.runs(L).len(), 2);
    let r1 = cat.run("r1", L).unwrap();
    assert!(close(r1.energy_kwh, 0.3));
    assert!(close(r1.duration_s, 300.0));
    assert_eq!(r1.checkpoints, 3);
    assert_eq!(r1.ended_at.map(|t| carbon_core::time::iso(&t)).as_deref(), Some("2024-05-18T12:05:00"));
    assert_eq!(r1.started_at.map(|t| carbon_core::time::iso(&t)).as_deref(), Some("2024-05-18T12:00:00"));
    assert_eq!(r1.source_files, vec!["checkpoints.csv", "checkpoints.csv_1.bak"]);
    let d = cat.run_detail("r1", L).unwrap().unwrap();
    let durations: Vec<f64> = d.checkpoints.iter().filter_map(|c| c.duration_s).collect();
    assert_eq!(durations, [100.0, 200.0, 300.0]);
    assert!((cat.summary(L).totals.energy_kwh - 0.35).abs() < 1e-12);
}

#[test]
fn task_files_sum_their_tasks_into_one_run() {
    let cat = catalog(&["task_file.csv"]);
    let f = &cat.files()[0];
    assert!(f.schema.ends_with("task"), "{}", f.schema);
    assert_eq!(cat.runs(L).len(), 1);
    let r = &cat.runs(L)[0];
    assert!(close(r.energy_kwh, 0.4));
    assert!(close(r.duration_s, 400.0));
    assert_eq!(r.tasks, vec!["load", "train"]);
    assert_eq!(r.checkpoints, 2);
}

#[test]
fn missing_moved_and_reordered_columns_are_bound_by_name() {
    let f = parse("missing_and_moved_columns.csv");
    assert_eq!(f.report.missing_columns, vec!["gpu_count", "gpu_model"]);
    assert!(f.report.reordered);
    let r = only_run("missing_and_moved_columns.csv");
    assert!(close(r.energy_kwh, 0.1));
    assert_eq!(r.gpu_model, None);
    let r = only_run("reordered_columns.csv");
    assert!(close(r.energy_kwh, 0.1));
    assert!(close(r.duration_s, 100.0));
    assert_eq!(r.project_name.as_deref(), Some("proj"));
    assert_eq!(r.codecarbon_version.as_deref(), Some("3.2.6"));
}

#[test]
fn extra_user_columns_are_kept_as_tags() {
    let f = parse("extra_user_columns.csv");
    assert_eq!(f.report.extra_columns, vec!["team", "seed"]);
    let r = only_run("extra_user_columns.csv");
    assert_eq!(r.tags, vec![("team".to_string(), "nlp".to_string()), ("seed".to_string(), "42".to_string())]);
}

#[test]
fn padded_names_and_values_are_trimmed() {
    let r = only_run("padded_spaces.csv");
    assert_eq!(r.run_id, "r1");
    assert_eq!(r.country_name.as_deref(), Some("France"));
    assert!(close(r.energy_kwh, 0.1));
}

#[test]
fn quoted_fields_keep_their_commas() {
    let r = only_run("quoted_commas.csv");
    assert_eq!(r.cpu_model.as_deref(), Some("Intel Core Processor (Broadwell, no TSX, IBRS)"));
}

#[test]
fn crlf_mixed_endings_blank_lines_and_no_final_newline() {
    let cat = catalog(&["line_endings.csv"]);
    assert_eq!(cat.runs(L).len(), 3);
    assert_eq!(cat.files()[0].rows_read, 3);
    assert!(cat.files()[0].problems.is_empty());
}

#[test]
fn a_bom_is_skipped_and_latin1_is_decoded_and_said() {
    let f = parse("bom.csv");
    assert_eq!(f.report.encoding, "UTF-8 with BOM");
    assert_eq!(f.report.schema, "v3.2");
    let f = parse("latin1.csv");
    assert!(f.report.encoding.starts_with("Latin-1"));
    assert!(f.report.problems.iter().any(|p| p.line == 0 && p.reason.contains("Latin-1")));
    let r = only_run("latin1.csv");
    assert_eq!(r.region.as_deref(), Some("île-de-france"));
}

#[test]
fn none_empty_and_space_only_values_are_missing() {
    let r = only_run("none_empty_values.csv");
    assert_eq!(r.gpu_model, None);
    assert_eq!(r.gpu_energy_kwh, None);
    assert_eq!(r.gpu_power_w, None);
    assert_eq!(r.region, None);
    assert_eq!(r.cpu_count, None);
    assert!(parse("none_empty_values.csv").report.problems.is_empty());
}

#[test]
fn float_counts_and_e_notation_are_numbers() {
    let r = only_run("float_counts_e_notation.csv");
    assert_eq!(r.cpu_count, Some(40.0));
    assert_eq!(r.gpu_count, Some(8.0));
    assert!(close(r.energy_kwh, 0.1));
    assert!(close(r.co2_kg_reported, 0.05));
    assert!(close(r.duration_s, 100.0));
}

#[test]
fn rows_shorter_or_longer_than_the_header_are_reported_not_shifted() {
    let cat = catalog(&["short_and_long_rows.csv"]);
    let f = &cat.files()[0];
    assert_eq!(f.rows_read, 3);
    assert_eq!(f.rows_rejected, 2);
    let lines: Vec<usize> = f.problems.iter().filter(|p| p.rejected).map(|p| p.line).collect();
    assert_eq!(lines, [3, 4]);
    assert!(f.problems[0].reason.contains("36 fields where the header has 38"));
    assert_eq!(cat.runs(L).len(), 1);
    assert_eq!(cat.runs(L)[0].run_id, "r1");
}

#[test]
fn fragment_rows_are_rejected_with_their_line() {
    let cat = catalog(&["fragment_rows.csv"]);
    let f = &cat.files()[0];
    assert_eq!(f.rows_rejected, 2);
    assert_eq!(f.problems.iter().map(|p| p.line).collect::<Vec<_>>(), [3, 4]);
    assert!(f.problems[0].reason.contains("fragment row (starts with 'ne')"));
    assert!(close(cat.run("r1", L).unwrap().energy_kwh, 0.2));
}

#[test]
fn a_truncated_timestamp_keeps_the_row_and_names_line_and_column() {
    let cat = catalog(&["truncated_timestamp.csv"]);
    let f = &cat.files()[0];
    assert_eq!(f.rows_rejected, 0);
    let p = &f.problems[0];
    assert_eq!((p.line, p.column, p.rejected), (3, Some(1), false));
    assert!(p.reason.contains("2-05-18T12:04:08"));
    let r = cat.run("r1", L).unwrap();
    assert!(close(r.energy_kwh, 0.2));
    assert_eq!(r.ended_at, None, "the last checkpoint has no readable time");
}

#[test]
fn rows_without_a_run_id_become_runs_of_their_own_and_are_reported() {
    let cat = catalog(&["missing_run_id.csv"]);
    assert_eq!(cat.runs(L).len(), 2);
    assert!(cat.runs(L).iter().all(|r| r.run_id_synthetic && r.run_id.starts_with("row-")));
    assert_eq!(cat.files()[0].problems.len(), 2);
    // The same row in a copy gets the same id, so it is still one run.
    let twice = catalog(&["missing_run_id.csv", "missing_run_id.csv"]);
    assert_eq!(twice.runs(L).len(), 2);
}

#[test]
fn a_file_that_is_not_codecarbon_output_says_so() {
    let cat = catalog(&["not_codecarbon.csv"]);
    assert!(cat.runs(L).is_empty());
    let f = &cat.files()[0];
    assert_eq!(f.rows_rejected, 1);
    assert!(f.problems[0].reason.contains("not a CodeCarbon file"));
}

#[test]
fn one_changed_file_is_replaced_alone() {
    let mut cat = catalog(&["v1_12_columns.csv", "checkpoints.csv"]);
    assert_eq!(cat.runs(L).len(), 4);
    cat.remove("v1_12_columns.csv").unwrap();
    assert_eq!(cat.runs(L).len(), 2);
    cat.upsert(parse("v1_12_columns.csv")).unwrap();
    assert_eq!(cat.runs(L).len(), 4);
    assert_eq!(cat.files().len(), 2);
}

#[test]
fn log_file_names_follow_codecarbon() {
    use carbon_core::catalog::is_log_file;
    for yes in ["emissions.csv", "a/EMISSIONS.CSV", "emissions.csv.bak", "emissions.csv_3.bak"] {
        assert!(is_log_file(yes), "{yes}");
    }
    for no in ["emissions.json", "emissions.csv_x.bak", "notes.bak", "emissions.csv_.bak"] {
        assert!(!is_log_file(no), "{no}");
    }
}

#[test]
fn a_header_repeated_inside_a_file_is_skipped_and_said() {
    let cat = catalog(&["repeated_header.csv"]);
    let f = &cat.files()[0];
    assert_eq!((f.rows_read, f.rows_rejected), (2, 0));
    assert_eq!(f.problems[0].line, 3);
    assert!(f.problems[0].reason.contains("header repeated"));
    assert_eq!(cat.runs(L).len(), 2);
}

#[test]
fn teams_come_from_the_folder_layout_or_a_mapping_file() {
    use carbon_core::catalog::load_dir;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("vision/resnet")).unwrap();
    std::fs::create_dir_all(dir.path().join("nlp")).unwrap();
    std::fs::copy(fixtures.join("checkpoints.csv"), dir.path().join("vision/resnet/emissions.csv")).unwrap();
    std::fs::copy(fixtures.join("v1_12_columns.csv"), dir.path().join("nlp/emissions.csv")).unwrap();
    std::fs::copy(fixtures.join("task_file.csv"), dir.path().join("emissions.csv")).unwrap();
    let team = |cat: &Catalog, id: &str| cat.run(id, L).unwrap().team.clone();
    let cat = load_dir(dir.path()).unwrap();
    assert_eq!(team(&cat, "r2").as_deref(), Some("vision"));
    assert_eq!(team(&cat, "a1").as_deref(), Some("nlp"));
    assert_eq!(team(&cat, "r1"), None, "a file at the root has no team (r1 is in both: the task file sorts first)");
    std::fs::write(dir.path().join("teams.csv"), "path_prefix,team\nvision/resnet,imaging\nnlp/,language\n").unwrap();
    let cat = load_dir(dir.path()).unwrap();
    assert_eq!(team(&cat, "r2").as_deref(), Some("imaging"));
    assert_eq!(team(&cat, "a1").as_deref(), Some("language"));
}

#[test]
fn a_csv_with_ten_thousand_columns_gets_a_clear_answer() {
    use carbon_core::ingest::ingest_bytes;
    let header: Vec<String> =
        (0..10_000).map(|i| if i == 0 { "duration".to_string() } else { format!("c{i}") }).collect();
    let row = vec!["1"; 10_000].join(",");
    let text = format!("{}\n{row}\n", header.join(","));
    let f = ingest_bytes("wide.csv", text.as_bytes()).unwrap();
    assert_eq!((f.report.rows_read, f.report.rows_rejected, f.rows_accepted()), (1, 1, 0));
    assert!(f.report.problems[0].reason.contains("10000 columns"), "{}", f.report.problems[0].reason);
}

#[test]
fn a_file_built_to_blow_up_memory_costs_a_bounded_amount_per_byte() {
    use carbon_core::ingest::{MAX_PROBLEMS_KEPT, MAX_TAGS, MAX_TAG_CHARS};
    // 990 user columns with 200-character names, 2,000 rows, each its own run with a value
    // that is not a number: ~4 MB that once cost ~800 MB of tags and problems.
    let names: Vec<String> = (0..990).map(|i| format!("{i:03}{}", "x".repeat(197))).collect();
    let mut csv = format!("run_id,duration,energy_consumed,{}\n", names.join(","));
    let values = vec!["v"; 990].join(",");
    for r in 0..2000 {
        csv.push_str(&format!("run-{r},{},oops,{values}\n", r + 1));
    }
    let f = carbon_core::ingest::ingest_bytes("wide.csv", csv.as_bytes()).unwrap();
    assert_eq!(f.runs.len(), 2000);
    for part in &f.runs {
        assert!(part.run.tags.len() <= MAX_TAGS, "{} tags", part.run.tags.len());
        assert!(part.run.tags.iter().all(|(k, v)| k.chars().count() <= MAX_TAG_CHARS + 1 && v.len() <= MAX_TAG_CHARS));
    }
    let tag_bytes: usize = f.runs.iter().flat_map(|p| &p.run.tags).map(|(k, v)| k.len() + v.len()).sum();
    assert!(tag_bytes < 2 * csv.len(), "tags {tag_bytes} bytes for a {} byte file", csv.len());
    let r = &f.report;
    assert_eq!(r.extra_columns.len(), MAX_TAGS);
    assert_eq!(r.problem_count, 2001, "every bad value counted, and the dropped columns said once");
    assert_eq!(r.problems.len(), MAX_PROBLEMS_KEPT, "but only the first ones kept");
    assert!(r.problems[0].reason.starts_with("990 user columns: the first 32 are kept"), "{}", r.problems[0].reason);
    assert!(r.problems.iter().all(|p| p.reason.chars().count() <= 301));
}

#[test]
fn csvs_that_live_beside_ml_logs_are_read_as_metrics_or_results_tables_not_logs() {
    use carbon_core::ingest::ingest_bytes;
    // A metrics.csv (Lightning's CSVLogger writes one) is read as metrics, for the folder's run.
    let m = ingest_bytes(
        "lightning_logs/version_0/metrics.csv",
        b"epoch,step,loss,accuracy\n1,100,0.5,0.8\n2,200,0.4,0.85\n",
    )
    .unwrap();
    assert_eq!((m.runs.len(), m.report.schema.as_str()), (0, "metrics"));
    let values = &m.metrics.as_ref().unwrap().values;
    assert!(values.iter().any(|v| v.name == "accuracy" && v.value == 0.85 && v.run_id.is_none()), "{values:?}");
    // Numbers that are not a log: results tables, joined to runs by what they hold.
    for (name, text) in [
        ("nvml.csv", "timestamp,gpu_index,power_w,energy_consumed\n2026-10-01T10:00:00,0,250,0.01\n"),
        ("phases.csv", "phase,start,end,duration,emissions\ntrain,0,60,60,0.001\n"),
    ] {
        let f = ingest_bytes(name, text.as_bytes()).unwrap();
        let r = &f.report;
        assert_eq!((f.runs.len(), r.rows_read, r.rows_rejected), (0, 1, 0), "{name}");
        assert_eq!(r.schema, "results table", "{name}");
        assert!(f.metrics.as_ref().unwrap().table.is_some(), "{name}");
    }
    // Text only: neither.
    let f = ingest_bytes("notes.csv", b"who,what\nana,tried lr 3e-4\n").unwrap();
    let r = &f.report;
    assert_eq!((f.runs.len(), r.rows_read, r.rows_rejected), (0, 1, 1));
    assert_eq!(r.problem_count, 1, "one problem, not one a row");
    assert!(r.problems[0].reason.starts_with("not a CodeCarbon file"), "{}", r.problems[0].reason);
    assert_eq!(r.schema, "not CodeCarbon", "no header generation named");
}

#[test]
fn a_negative_energy_is_kept_as_written_and_its_co2_range_stays_in_order() {
    // CodeCarbon writes slightly negative deltas at times (-1.16e-06 kWh of GPU in a real file).
    let text = "timestamp,run_id,duration,emissions,energy_consumed,cpu_energy,gpu_energy,ram_energy,country_iso_code,longitude\n\
                2026-10-01T10:00:10,r,10,-0.001,-0.5,-0.2,-0.25,-0.05,FRA,-3.7\n";
    let f = carbon_core::ingest::ingest_bytes("neg.csv", text.as_bytes()).unwrap();
    let run = &f.runs[0].run;
    assert_eq!((run.energy_kwh, run.gpu_energy_kwh, run.longitude), (Some(-0.5), Some(-0.25), Some(-3.7)));
    let cat = Catalog::from_files(vec![f]).unwrap();
    let a = &cat.runs(L)[0].assessment;
    let (lo, v, hi) = (a.co2_kg_low.unwrap(), a.co2_kg.unwrap(), a.co2_kg_high.unwrap());
    assert!(lo <= v && v <= hi, "{lo} ≤ {v} ≤ {hi}");
    assert!(a.energy_kwh_low.unwrap() <= a.energy_kwh_high.unwrap());
}

#[test]
fn one_negative_part_does_not_push_the_energy_range_past_the_total() {
    // Found by the fuzz test: RAM -0.0125 beside CPU 0.0125 and GPU 0.025, total 0.05. The range
    // was scaled by total ÷ (sum with the negative part) = 2, its low landing above the total.
    let text = "timestamp,run_id,duration,emissions,energy_consumed,cpu_energy,gpu_energy,ram_energy,cpu_power,country_iso_code\n\
                2026-10-01T10:00:10,r,50,0.025,0.05,0.0125,0.025,-0.0125,10.0,FRA\n";
    let f = carbon_core::ingest::ingest_bytes("neg.csv", text.as_bytes()).unwrap();
    let cat = Catalog::from_files(vec![f]).unwrap();
    let r = &cat.runs(L)[0];
    let a = &r.assessment;
    let (elo, e, ehi) = (a.energy_kwh_low.unwrap(), r.energy_kwh.unwrap(), a.energy_kwh_high.unwrap());
    assert!(elo <= e && e <= ehi, "{elo} ≤ {e} ≤ {ehi}");
    let (lo, v, hi) = (a.co2_kg_low.unwrap(), a.co2_kg.unwrap(), a.co2_kg_high.unwrap());
    assert!(lo <= v && v <= hi, "{lo} ≤ {v} ≤ {hi}");
}
