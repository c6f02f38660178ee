//! A cache of parsed files, so a restart reads only the files that changed.
//!
//! One Arrow IPC file (through polars) per logs folder holds what each file told of each run
//! (one row per [`RunPart`]) and the file's report, with the file's stamp: size, modification
//! time and a hash of its last 4 KiB. A file whose stamp differs is parsed again. The cache is
//! written to a temporary name, synced and renamed into place, so a crash leaves the previous
//! cache or none, never half of one; a cache that cannot be read is ignored (and rewritten).

pub use crate::ingest::Stamp;
use crate::ingest::{ParsedFile, RunPart, Source, TaskRow};
use crate::model::{FileReport, Run};
use polars::prelude::*;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bumped whenever what the cache holds or how files are parsed changes.
const FORMAT: &str = "carbon-dash parse cache 9";

/// Where the cache of the logs folder `dir` lives under `cache_dir`: one file per folder.
pub fn cache_file(cache_dir: &Path, dir: &Path) -> PathBuf {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let h = crate::ingest::fnv(dir.to_string_lossy().as_bytes());
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(40).collect();
    cache_dir.join(format!("{name}-{h:016x}.arrow"))
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] PolarsError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("not a cache of this version of carbon-dash")]
    Version,
}

/// The text and number fields of a [`Run`] a cache row holds, by name.
macro_rules! run_fields {
    ($m:ident) => {
        $m!(
            text: project_name, experiment_id, country_name, country_iso_code, region,
                  cloud_provider, cloud_region, on_cloud, os, python_version, codecarbon_version, cpu_model,
                  gpu_model, tracking_mode, tool, tool_version, tool_basis;
            time: started_at, ended_at;
            num: duration_s, energy_kwh, cpu_energy_kwh, gpu_energy_kwh, ram_energy_kwh, co2_kg_reported,
                 emissions_rate_kg_per_s, cpu_power_w, gpu_power_w, ram_power_w, water_l, cpu_count, gpu_count,
                 longitude, latitude, ram_total_size_gb, cpu_utilization_percent, gpu_utilization_percent,
                 ram_utilization_percent, ram_used_gb, pue
        )
    };
}

/// Writes the cache of `files` to `path`, atomically. Files without a stamp (held in memory,
/// not on disk) are left out.
pub fn write(path: &Path, files: &[Arc<ParsedFile>]) -> Result<(), CacheError> {
    // Metrics files are small and joined anew at each load: they are read again, not cached.
    let files: Vec<(Stamp, &ParsedFile)> =
        files.iter().filter(|f| f.metrics.is_none()).filter_map(|f| f.stamp.map(|s| (s, &**f))).collect();
    let mut rows: Vec<(usize, Option<&RunPart>)> = Vec::new();
    for (i, (_, f)) in files.iter().enumerate() {
        if f.runs.is_empty() {
            rows.push((i, None));
        }
        rows.extend(f.runs.iter().map(|p| (i, Some(p))));
    }
    let first = |i: usize, k: usize| k == 0 || rows[k - 1].0 != i;
    let n = rows.len();
    let mut cols: Vec<Column> = vec![Column::new("format".into(), vec![FORMAT; n])];
    cols.push(Column::new(
        "path".into(),
        rows.iter().map(|(i, _)| files[*i].1.report.path.as_str()).collect::<Vec<_>>(),
    ));
    cols.push(Column::new("size".into(), rows.iter().map(|(i, _)| files[*i].0.size).collect::<Vec<_>>()));
    cols.push(Column::new("mtime_ns".into(), rows.iter().map(|(i, _)| files[*i].0.mtime_ns).collect::<Vec<_>>()));
    cols.push(Column::new("tail".into(), rows.iter().map(|(i, _)| files[*i].0.tail).collect::<Vec<_>>()));
    let mut reports = Vec::with_capacity(n);
    for (k, (i, _)) in rows.iter().enumerate() {
        reports.push(if first(*i, k) { Some(serde_json::to_string(&files[*i].1.report)?) } else { None });
    }
    cols.push(Column::new("report".into(), reports));
    let part =
        |f: &dyn Fn(&RunPart) -> Option<f64>| -> Vec<Option<f64>> { rows.iter().map(|(_, p)| p.and_then(f)).collect() };
    let text = |f: &dyn Fn(&RunPart) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(|(_, p)| p.and_then(f)).collect()
    };
    cols.push(Column::new("run_id".into(), text(&|p| Some(p.run.run_id.clone()))));
    cols.push(Column::new(
        "run_id_synthetic".into(),
        rows.iter().map(|(_, p)| p.map(|p| p.run.run_id_synthetic)).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "best_has".into(),
        rows.iter().map(|(_, p)| p.and_then(|p| p.best.map(|b| b.0))).collect::<Vec<_>>(),
    ));
    cols.push(Column::new("best_duration".into(), part(&|p| p.best.map(|b| b.1))));
    cols.push(Column::new("best_line".into(), part(&|p| p.best.map(|b| b.2 as f64))));
    cols.push(Column::new("checkpoints".into(), part(&|p| Some(p.run.checkpoints as f64))));
    cols.push(Column::new("schema".into(), text(&|p| Some(p.run.schema.clone()))));
    let keys: Vec<Option<Vec<u8>>> =
        rows.iter().map(|(_, p)| p.map(|p| p.keys.iter().flat_map(|k| k.to_le_bytes()).collect())).collect();
    cols.push(Column::new("keys".into(), keys));
    let mut tags = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for (_, p) in &rows {
        tags.push(match p {
            Some(p) if !p.run.tags.is_empty() => Some(serde_json::to_string(&p.run.tags)?),
            _ => None,
        });
        tasks.push(match p {
            Some(p) if !p.tasks.is_empty() => Some(serde_json::to_string(&p.tasks)?),
            _ => None,
        });
    }
    cols.push(Column::new("tags".into(), tags));
    cols.push(Column::new("tasks".into(), tasks));
    macro_rules! push_fields {
        (text: $($t:ident),*; time: $($w:ident),*; num: $($n:ident),*) => {
            $(cols.push(Column::new(stringify!($t).into(), text(&|p| p.run.$t.clone())));)*
            $(cols.push(Column::new(
                stringify!($w).into(),
                rows.iter().map(|(_, p)| p.and_then(|p| p.run.$w).map(|t| t.and_utc().timestamp_millis())).collect::<Vec<_>>(),
            ));)*
            $(cols.push(Column::new(stringify!($n).into(), part(&|p| p.run.$n)));)*
        };
    }
    run_fields!(push_fields);
    let mut df = DataFrame::new(n, cols)?;

    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    // A start that ended while writing left its temporary file: remove those of this cache.
    if let (Some(parent), Some(stem)) = (path.parent(), path.file_stem().map(|s| s.to_string_lossy().to_string())) {
        for entry in std::fs::read_dir(parent)?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(&format!("{stem}.tmp-")) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let result = (|| -> Result<(), CacheError> {
        let mut file = std::fs::File::create(&tmp)?;
        IpcWriter::new(&mut file).finish(&mut df)?;
        file.flush()?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads the cache at `path`: every file it holds, with its stamp. The parts' sources are `dir`
/// joined with the display path. Files are rebuilt in parallel.
pub fn read(path: &Path, dir: &Path) -> Result<Vec<ParsedFile>, CacheError> {
    use rayon::prelude::*;
    let file = std::fs::File::open(path)?;
    let df = IpcReader::new(file).finish()?;
    if df.height() == 0 {
        return Ok(Vec::new());
    }
    if df.column("format")?.str()?.get(0) != Some(FORMAT) {
        return Err(CacheError::Version);
    }
    let str_col = |name: &str| -> Result<StringChunked, CacheError> { Ok(df.column(name)?.str()?.clone()) };
    let f64_col = |name: &str| -> Result<Float64Chunked, CacheError> { Ok(df.column(name)?.f64()?.clone()) };
    let paths = str_col("path")?;
    let size = df.column("size")?.u64()?.clone();
    let mtime = df.column("mtime_ns")?.i64()?.clone();
    let tail = df.column("tail")?.u64()?.clone();
    let reports = str_col("report")?;
    let run_id = str_col("run_id")?;
    let synthetic = df.column("run_id_synthetic")?.bool()?.clone();
    let best_has = df.column("best_has")?.bool()?.clone();
    let (best_duration, best_line, checkpoints) =
        (f64_col("best_duration")?, f64_col("best_line")?, f64_col("checkpoints")?);
    let (schema, tags, tasks) = (str_col("schema")?, str_col("tags")?, str_col("tasks")?);
    let keys = df.column("keys")?.binary()?.clone();
    let mut texts: HashMap<&str, StringChunked> = HashMap::new();
    let mut nums: HashMap<&str, Float64Chunked> = HashMap::new();
    let mut times: HashMap<&str, Int64Chunked> = HashMap::new();
    macro_rules! read_fields {
        (text: $($t:ident),*; time: $($w:ident),*; num: $($n:ident),*) => {
            $(texts.insert(stringify!($t), str_col(stringify!($t))?);)*
            $(times.insert(stringify!($w), df.column(stringify!($w))?.i64()?.clone());)*
            $(nums.insert(stringify!($n), f64_col(stringify!($n))?);)*
        };
    }
    run_fields!(read_fields);
    let text = |name: &str, k: usize| texts.get(name).and_then(|v| v.get(k).map(str::to_string));
    let num = |name: &str, k: usize| nums.get(name).and_then(|v| v.get(k));
    let time = |name: &str, k: usize| times.get(name).and_then(|v| v.get(k)).and_then(crate::ingest::at_ms);
    // A file's rows follow each other; its first row carries its report.
    let starts: Vec<usize> = (0..df.height()).filter(|&k| reports.get(k).is_some()).collect();
    let ends: Vec<usize> = starts.iter().skip(1).copied().chain([df.height()]).collect();
    starts
        .par_iter()
        .zip(ends.par_iter())
        .map(|(&start, &end)| {
            let path = paths.get(start).unwrap_or_default();
            let report: FileReport = serde_json::from_str(reports.get(start).unwrap_or_default())?;
            let stamp = Stamp {
                size: size.get(start).unwrap_or(0),
                mtime_ns: mtime.get(start).unwrap_or(0),
                tail: tail.get(start).unwrap_or(0),
            };
            let mut runs = Vec::with_capacity(end - start);
            for k in start..end {
                let Some(id) = run_id.get(k) else { continue };
                macro_rules! build_run {
                    (text: $($t:ident),*; time: $($w:ident),*; num: $($n:ident),*) => {
                        Run {
                            run_id: id.to_string(),
                            run_id_synthetic: synthetic.get(k).unwrap_or(false),
                            $($t: text(stringify!($t), k),)*
                            $($w: time(stringify!($w), k),)*
                            $($n: num(stringify!($n), k),)*
                            checkpoints: checkpoints.get(k).unwrap_or(0.0) as usize,
                            schema: schema.get(k).unwrap_or_default().to_string(),
                            source_files: vec![path.to_string()],
                            tags: match tags.get(k) { Some(t) => serde_json::from_str(t)?, None => Vec::new() },
                            ..Run::default()
                        }
                    };
                }
                let mut run = run_fields!(build_run);
                let task_rows: Vec<TaskRow> = match tasks.get(k) {
                    Some(t) => serde_json::from_str(t)?,
                    None => Vec::new(),
                };
                if !task_rows.is_empty() {
                    run.tasks = task_rows.iter().map(|t| t.name.clone()).collect();
                }
                let best = match (best_has.get(k), best_duration.get(k), best_line.get(k)) {
                    (Some(h), Some(d), Some(l)) => Some((h, d, l as usize)),
                    _ => None,
                };
                let keys: Vec<u64> = keys
                    .get(k)
                    .map(|b| b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
                    .unwrap_or_default();
                runs.push(RunPart { run: Arc::new(run), best, keys, tasks: task_rows });
            }
            let source = Source::Path(dir.join(path));
            let len = stamp.size as usize;
            Ok(ParsedFile { report, runs, source, len, stamp: Some(stamp), metrics: None })
        })
        .collect()
}
