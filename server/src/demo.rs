//! The demo logs compiled into the binary (made by `data/make_demo.py`), so the first run shows
//! a real-looking dashboard with no files at hand.

use carbon_core::catalog::Catalog;
use carbon_core::ingest::{ingest_source, IngestError, Source};
use std::sync::Arc;

/// (path shown in the app, contents)
pub const FILES: &[(&str, &[u8])] = &[
    ("vision-lab/emissions.csv", include_bytes!("../../data/demo/vision-lab/emissions.csv")),
    ("llm-finetune/emissions.csv", include_bytes!("../../data/demo/llm-finetune/emissions.csv")),
    ("llm-finetune/emissions.csv_1.bak", include_bytes!("../../data/demo/llm-finetune/emissions.csv_1.bak")),
    ("speech/emissions.csv", include_bytes!("../../data/demo/speech/emissions.csv")),
    ("speech/tasks_emissions.csv", include_bytes!("../../data/demo/speech/tasks_emissions.csv")),
    ("sweep/emissions.csv", include_bytes!("../../data/demo/sweep/emissions.csv")),
    ("sweep/metrics.csv", include_bytes!("../../data/demo/sweep/metrics.csv")),
    ("sweep/hf-trainer/emissions.csv", include_bytes!("../../data/demo/sweep/hf-trainer/emissions.csv")),
    ("sweep/hf-trainer/trainer_state.json", include_bytes!("../../data/demo/sweep/hf-trainer/trainer_state.json")),
    ("sweep/hf-trainer/all_results.json", include_bytes!("../../data/demo/sweep/hf-trainer/all_results.json")),
];

pub fn catalog() -> Result<Catalog, IngestError> {
    let files =
        FILES.iter().map(|(path, bytes)| ingest_source(path, bytes, Source::Memory(Arc::new(*bytes)))).collect();
    Catalog::from_files(files)
}
