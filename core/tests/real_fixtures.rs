//! Every real CodeCarbon file in ../shared/fixtures/codecarbon-real: no panic, every file yields
//! runs or a diagnostic, and run counts checked by hand. Skipped (and said) when the folder is absent.
#![allow(clippy::unwrap_used)]

use carbon_core::catalog::load_dir;
use std::path::PathBuf;

fn real_dir() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/codecarbon-real");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent, real-file checks not run",
            dir.display()
        );
        None
    }
}

#[test]
fn every_real_file_yields_runs_or_a_diagnostic_with_hand_checked_counts() {
    let Some(dir) = real_dir() else { return };
    let cat = load_dir(&dir).unwrap();
    assert_eq!(cat.files().len(), 26, "every .csv and .bak is found");
    for f in cat.files() {
        assert!(
            f.runs > 0 || !f.problems.is_empty(),
            "{} gave nothing and said nothing",
            f.path
        );
        assert!(f.rows_read > 0, "{}", f.path);
    }
    let file = |needle: &str| {
        cat.files()
            .iter()
            .find(|f| f.path.contains(needle))
            .unwrap()
            .clone()
    };
    // Counted by hand (distinct run ids among readable rows).
    for (needle, runs) in [
        ("siljeberiksen", 57),
        ("BAGUIAN01", 196),
        ("Pampaj7", 3),
        ("korneelf1", 5),
        ("trinerye", 1),
        ("huggingface__peft", 3),
        ("Rolamjaya", 4),
        ("patdfb", 102),
    ] {
        assert_eq!(file(needle).runs, runs, "{needle}");
    }
    let bert = file("BERT-Pruning");
    assert_eq!(
        (bert.rows_read, bert.rows_rejected, bert.runs),
        (6939, 5, 6934)
    );
    let big = file("bigscience");
    assert_eq!(big.schema, "v2.0");
    assert_eq!(big.rows_rejected, 643, "the fragment rows");
    assert!(big
        .problems
        .iter()
        .any(|p| !p.rejected && p.reason.contains("2-05-18T12:04:08")));
    assert!(file("trinerye").schema.ends_with("task"));
    assert_eq!(
        file("LeCapet").missing_columns,
        vec!["gpu_count", "gpu_model"]
    );
    assert_eq!(file("korneelf1").extra_columns, vec!["ram_process"]);

    // The 2,202-checkpoint run: totals are its largest-duration checkpoint, not a sum.
    let longest = cat
        .runs()
        .iter()
        .filter(|r| r.source_files[0].contains("siljeberiksen"))
        .max_by_key(|r| r.checkpoints)
        .unwrap();
    assert_eq!(longest.checkpoints, 2202);
    let detail = cat.run_detail(&longest.run_id).unwrap().unwrap();
    let max_dur = detail
        .checkpoints
        .iter()
        .filter_map(|c| c.duration_s)
        .fold(0.0, f64::max);
    assert_eq!(longest.duration_s, Some(max_dur));
    let sum: f64 = detail.checkpoints.iter().filter_map(|c| c.energy_kwh).sum();
    assert!(longest.energy_kwh.unwrap() < sum);

    let total: usize = cat.files().iter().map(|f| f.rows_rejected).sum();
    assert_eq!(cat.summary().rows_rejected, total);
}
