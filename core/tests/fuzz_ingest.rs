//! Property tests over ingest (a bounded fuzz that runs in CI): files made from the fixtures
//! with random damage, and random bytes, must never panic and must keep ingest's promises.
#![allow(clippy::unwrap_used)]

use carbon_core::catalog::Catalog;
use carbon_core::ingest::{ingest_bytes, MAX_PROBLEMS_KEPT, MAX_TAGS};
use carbon_core::model::DatasetMode;
use proptest::prelude::*;
use std::path::Path;

/// The seed corpus: every fixture file.
fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(".csv")))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// One piece of damage: where (a fraction of the file) and what.
#[derive(Debug, Clone)]
enum Damage {
    Flip(f64, u8),
    Insert(f64, Vec<u8>),
    Cut(f64),
    RepeatLine(f64),
}

fn damage() -> impl Strategy<Value = Damage> {
    // The bytes that matter to a CSV reader, and some that should not be there.
    let nasty = prop::sample::select(vec![
        b"\"".to_vec(),
        b",".to_vec(),
        b"\n".to_vec(),
        b"\r".to_vec(),
        b"\r\n".to_vec(),
        b"\0".to_vec(),
        "é".as_bytes().to_vec(),
        vec![0xff, 0xfe],
        b"NaN".to_vec(),
        b"1e308".to_vec(),
        b"-0".to_vec(),
        b"=cmd|' /C calc'!A0".to_vec(),
        b"2024-05-18T12:0".to_vec(),
        b",,,,,,,,,,,,,,,,".to_vec(),
    ]);
    prop_oneof![
        (0.0..1.0f64, any::<u8>()).prop_map(|(at, b)| Damage::Flip(at, b)),
        (0.0..1.0f64, nasty).prop_map(|(at, bytes)| Damage::Insert(at, bytes)),
        (0.0..1.0f64).prop_map(Damage::Cut),
        (0.0..1.0f64).prop_map(Damage::RepeatLine),
    ]
}

fn apply(mut bytes: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
    for d in damages {
        let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
        match d {
            Damage::Flip(f, b) if !bytes.is_empty() => {
                let i = at(*f, bytes.len() - 1);
                bytes[i] = *b;
            }
            Damage::Flip(..) => {}
            Damage::Insert(f, ins) => {
                let i = at(*f, bytes.len());
                bytes.splice(i..i, ins.iter().copied());
            }
            Damage::Cut(f) => bytes.truncate(at(*f, bytes.len())),
            Damage::RepeatLine(f) => {
                let text = bytes.clone();
                let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
                let i = at(*f, lines.len().saturating_sub(1));
                let mut line = lines[i].to_vec();
                line.push(b'\n');
                let start: usize = lines[..i].iter().map(|l| l.len() + 1).sum();
                bytes.splice(start..start, line);
            }
        }
    }
    bytes
}

/// What ingest promises for any bytes.
fn check(bytes: &[u8]) {
    check_named("fuzz.csv", bytes);
}

fn check_named(name: &str, bytes: &[u8]) {
    let f = ingest_bytes(name, bytes).unwrap();
    let r = &f.report;
    assert!(r.rows_rejected <= r.rows_read, "{r:?}");
    assert!(r.problems.len() <= MAX_PROBLEMS_KEPT && r.problems.len() <= r.problem_count);
    let lines = bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
    assert!(r.problems.iter().all(|p| p.line <= lines), "a problem beyond the file's lines");
    assert!(r.extra_columns.len() <= MAX_TAGS);
    assert_eq!(r.runs, f.runs.len());
    for part in &f.runs {
        assert!(part.run.tags.len() <= MAX_TAGS);
        assert!(!part.run.run_id.is_empty());
    }
    // The runs merge and assess, and a run's rows read back agree with its count.
    let cat = Catalog::from_files(vec![f]).unwrap();
    for run in cat.runs(DatasetMode::Latest) {
        let a = &run.assessment;
        if let (Some(lo), Some(v), Some(hi)) = (a.co2_kg_low, a.co2_kg, a.co2_kg_high) {
            assert!(lo <= v * (1.0 + 1e-9) && v <= hi * (1.0 + 1e-9) || !v.is_finite(), "{lo} {v} {hi}");
        }
        if run.tasks.is_empty() {
            let detail = cat.run_detail(&run.run_id, DatasetMode::Latest).unwrap().unwrap();
            assert_eq!(detail.checkpoints.len(), run.checkpoints, "run {}", run.run_id);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_fixtures_never_break_ingest(pick in any::<prop::sample::Index>(), damages in prop::collection::vec(damage(), 1..8)) {
        let corpus = corpus();
        let bytes = apply(corpus[pick.index(corpus.len())].clone(), &damages);
        check(&bytes);
    }

    #[test]
    fn random_bytes_never_break_ingest(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        check(&bytes);
    }

    #[test]
    fn random_csv_text_never_breaks_ingest(
        header in prop::sample::subsequence(vec!["timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions", "energy_consumed", "cpu_energy", "gpu_energy", "country_iso_code", "region", "task_name", "custom"], 0..13),
        cells in prop::collection::vec(prop::collection::vec("[0-9a-z.,\"\\-eE: ]{0,12}", 0..14), 0..40),
    ) {
        let mut text = header.join(",");
        text.push('\n');
        for row in cells {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        check(text.as_bytes());
    }

    /// Other trackers' formats: a carbontracker log or output log, eco2AI's and Zeus's CSVs and
    /// experiment-impact-tracker's samples, with random lines after their first.
    #[test]
    fn random_lines_in_other_trackers_formats_never_break_ingest(
        kind in 0usize..5,
        lines in prop::collection::vec(prop_oneof![
            "[0-9a-zA-Z.,:\"\\[\\]{} \t\\-]{0,40}",
            Just("Epoch 1:".to_string()),
            "Duration: [0-9]:[0-9]{2}:[0-9]{2}(\\.[0-9]{2})?",
            "Average power usage \\(W\\) for (cpu|gpu): (\\[[0-9. ]{0,12}\\]|[0-9.]{1,6}|None)",
            "(Actual|Predicted) consumption for [0-9] epoch\\(s\\):",
            "\t(Time|Energy|CO2eq):\t[0-9.e:-]{0,10} (kWh|g|kg)?",
            "[a-f0-9]{2},p,d,N/A,2026-12-05 13:22:3[0-9],[0-9.e-]{1,6},[0-9.e-]{1,8},[0-9.e-]{1,8},cpu, 0 device\\(s\\),Linux,FR,0",
            "1[0-9]{9}\\.[0-9]{1,3},w[0-9],[0-9.]{1,5},[0-9.-]{1,6},?",
            "\\{\"timestamp\": [0-9.e]{1,12}, \"rapl_estimated_attributable_power_draw\": [0-9.-]{1,5}, \"nvidia_estimated_attributable_power_draw\": [0-9.]{1,5}\\}",
        ], 0..30),
        prefixed in prop::collection::vec(any::<bool>(), 30),
    ) {
        let (name, first) = match kind {
            0 => ("x_carbontracker.log", "2026-12-05 13:22:21 - carbontracker version 2.4.7"),
            1 => ("x_carbontracker_output.log", "2026-12-05 13:22:22 - CarbonTracker: The following components were found: CPU with device(s) A."),
            2 => ("emission.csv", "id,project_name,experiment_description,epoch,start_time,duration(s),power_consumption(kWh),CO2_emissions(kg),CPU_name,GPU_name,OS,region/country,cost"),
            3 => ("windows.csv", "start_time,window_name,elapsed_time,gpu0_energy"),
            _ => ("exp/impacttracker/data.json", "{\"timestamp\": 1.0, \"rapl_estimated_attributable_power_draw\": 3}"),
        };
        let mut text = format!("{first}\n");
        for (i, l) in lines.iter().enumerate() {
            if kind < 2 && prefixed[i] {
                text.push_str("2026-12-05 13:22:23 - ");
            }
            text.push_str(l);
            text.push('\n');
        }
        check_named(name, text.as_bytes());
    }
}
