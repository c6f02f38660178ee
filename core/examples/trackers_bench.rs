//! Reading other trackers' logs at scale: the time and memory of ingesting each format with
//! ROWS rows (an eco2AI CSV of ROWS epochs over 1,000 runs, a Zeus CSV of ROWS windows, an
//! experiment-impact-tracker file of ROWS samples, a carbontracker log of ROWS/10 epochs), and of
//! reading one run's rows back for its page.
//!
//!     cargo run --release -p carbon-core --example trackers_bench [ROWS]

use carbon_core::ingest::{ingest_bytes, read_rows};
use std::fmt::Write;
use std::time::Instant;

/// Peak resident memory so far, MiB (Linux).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mut eco = String::from(
        "id,project_name,experiment_description,epoch,start_time,duration(s),power_consumption(kWh),\
         CO2_emissions(kg),CPU_name,GPU_name,OS,region/country,cost\n",
    );
    for i in 0..n {
        let _ = writeln!(
            eco,
            "run-{:04},bert,sweep,\"epoch: {}, loss: 0.{}, \",2026-11-{:02} 10:{:02}:00,{}.5,0.00{},0.000{},\
             \"AMD EPYC/1 device(s), TDP:240.0\",NVIDIA A100/4 device(s),Linux,FR,0",
            i % 1000,
            i / 1000,
            i % 97,
            1 + i % 28,
            i % 60,
            60 + i % 7,
            1 + i % 9,
            1 + i % 5
        );
    }
    let mut zeus = String::from("start_time,window_name,elapsed_time,gpu0_energy,gpu1_energy\n");
    for i in 0..n {
        let _ = writeln!(zeus, "{}.25,step_{i},0.9,{}.5,{}.25", 1_796_000_000 + i, 200 + i % 50, 210 + i % 40);
    }
    let mut eit = String::new();
    for i in 0..n {
        let _ = writeln!(
            eit,
            "{{\"timestamp\": {}.5, \"rapl_estimated_attributable_power_draw\": {}.5, \
             \"nvidia_estimated_attributable_power_draw\": {}.0, \"cpu_time_seconds\": {{\"42\": {{\"user\": {i}.0, \"system\": 1.0}}}}}}",
            1_790_000_000 + i * 5,
            40 + i % 9,
            250 + i % 30
        );
    }
    let mut ct = String::from("2026-12-05 13:22:21 - carbontracker version 2.4.7\n");
    for e in 1..=n / 10 {
        let _ = write!(
            ct,
            "2026-12-05 13:22:23 - Epoch {e}:\n2026-12-05 13:22:23 - Duration: 0:01:00.00\n\
             2026-12-05 13:22:23 - Average power usage (W) for gpu: [250.1 251.3]\n\
             2026-12-05 13:22:23 - Average power usage (W) for cpu: 60.5\n"
        );
    }
    println!("{n} rows; peak memory before reading: {:.0} MiB", peak_mib());
    for (name, text, run) in [
        ("emission.csv", &eco, "run-0007"),
        ("windows.csv", &zeus, "zeus-windows"),
        ("exp/impacttracker/data.json", &eit, "impacttracker-exp"),
        ("x_carbontracker.log", &ct, "carbontracker-x"),
    ] {
        let t = Instant::now();
        let f = ingest_bytes(name, text.as_bytes()).expect("read");
        let took = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let rows = read_rows(name, text.as_bytes(), run);
        let page = t.elapsed().as_secs_f64();
        println!(
            "{:<30} {:>8.1} MB  {:>6.2} s  {:>6.0} MB/s  {:>9} rows  {:>5} runs  one run's {} rows read back in {:.2} s  peak {:.0} MiB",
            f.report.schema,
            text.len() as f64 / 1e6,
            took,
            text.len() as f64 / 1e6 / took,
            f.report.rows_read,
            f.runs.len(),
            rows.len(),
            page,
            peak_mib()
        );
    }
}
