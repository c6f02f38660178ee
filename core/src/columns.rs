//! CodeCarbon column names and the header generations that use them: the one place that spells them.

pub const TIMESTAMP: &str = "timestamp";
pub const PROJECT_NAME: &str = "project_name";
pub const RUN_ID: &str = "run_id";
pub const EXPERIMENT_ID: &str = "experiment_id";
pub const TASK_NAME: &str = "task_name";
pub const DURATION: &str = "duration";
pub const EMISSIONS: &str = "emissions";
pub const EMISSIONS_RATE: &str = "emissions_rate";
pub const CPU_POWER: &str = "cpu_power";
pub const GPU_POWER: &str = "gpu_power";
pub const RAM_POWER: &str = "ram_power";
pub const CPU_ENERGY: &str = "cpu_energy";
pub const GPU_ENERGY: &str = "gpu_energy";
pub const RAM_ENERGY: &str = "ram_energy";
pub const ENERGY_CONSUMED: &str = "energy_consumed";
pub const WATER_CONSUMED: &str = "water_consumed";
pub const COUNTRY_NAME: &str = "country_name";
pub const COUNTRY_ISO_CODE: &str = "country_iso_code";
pub const REGION: &str = "region";
pub const CLOUD_PROVIDER: &str = "cloud_provider";
pub const CLOUD_REGION: &str = "cloud_region";
pub const OS: &str = "os";
pub const PYTHON_VERSION: &str = "python_version";
pub const CODECARBON_VERSION: &str = "codecarbon_version";
pub const CPU_COUNT: &str = "cpu_count";
pub const CPU_MODEL: &str = "cpu_model";
pub const GPU_COUNT: &str = "gpu_count";
pub const GPU_MODEL: &str = "gpu_model";
pub const LONGITUDE: &str = "longitude";
pub const LATITUDE: &str = "latitude";
pub const RAM_TOTAL_SIZE: &str = "ram_total_size";
pub const TRACKING_MODE: &str = "tracking_mode";
pub const CPU_UTILIZATION_PERCENT: &str = "cpu_utilization_percent";
pub const GPU_UTILIZATION_PERCENT: &str = "gpu_utilization_percent";
pub const RAM_UTILIZATION_PERCENT: &str = "ram_utilization_percent";
pub const RAM_USED_GB: &str = "ram_used_gb";
pub const ON_CLOUD: &str = "on_cloud";
pub const PUE: &str = "pue";
pub const WUE: &str = "wue";

/// How a known column's values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Timestamp,
}

/// Every column CodeCarbon has ever written, with how its values are read.
pub const KNOWN: &[(&str, Kind)] = &[
    (TIMESTAMP, Kind::Timestamp),
    (PROJECT_NAME, Kind::Text),
    (RUN_ID, Kind::Text),
    (EXPERIMENT_ID, Kind::Text),
    (TASK_NAME, Kind::Text),
    (DURATION, Kind::Number),
    (EMISSIONS, Kind::Number),
    (EMISSIONS_RATE, Kind::Number),
    (CPU_POWER, Kind::Number),
    (GPU_POWER, Kind::Number),
    (RAM_POWER, Kind::Number),
    (CPU_ENERGY, Kind::Number),
    (GPU_ENERGY, Kind::Number),
    (RAM_ENERGY, Kind::Number),
    (ENERGY_CONSUMED, Kind::Number),
    (WATER_CONSUMED, Kind::Number),
    (COUNTRY_NAME, Kind::Text),
    (COUNTRY_ISO_CODE, Kind::Text),
    (REGION, Kind::Text),
    (CLOUD_PROVIDER, Kind::Text),
    (CLOUD_REGION, Kind::Text),
    (OS, Kind::Text),
    (PYTHON_VERSION, Kind::Text),
    (CODECARBON_VERSION, Kind::Text),
    (CPU_COUNT, Kind::Number),
    (CPU_MODEL, Kind::Text),
    (GPU_COUNT, Kind::Number),
    (GPU_MODEL, Kind::Text),
    (LONGITUDE, Kind::Number),
    (LATITUDE, Kind::Number),
    (RAM_TOTAL_SIZE, Kind::Number),
    (TRACKING_MODE, Kind::Text),
    (CPU_UTILIZATION_PERCENT, Kind::Number),
    (GPU_UTILIZATION_PERCENT, Kind::Number),
    (RAM_UTILIZATION_PERCENT, Kind::Number),
    (RAM_USED_GB, Kind::Number),
    (ON_CLOUD, Kind::Text),
    (PUE, Kind::Number),
    (WUE, Kind::Number),
];

pub fn kind_of(name: &str) -> Option<Kind> {
    KNOWN.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

const V1: &[&str] = &[
    TIMESTAMP,
    EXPERIMENT_ID,
    PROJECT_NAME,
    DURATION,
    EMISSIONS,
    ENERGY_CONSUMED,
    COUNTRY_NAME,
    COUNTRY_ISO_CODE,
    REGION,
    ON_CLOUD,
    CLOUD_PROVIDER,
    CLOUD_REGION,
];
const V2_0: &[&str] = &[
    TIMESTAMP,
    PROJECT_NAME,
    RUN_ID,
    DURATION,
    EMISSIONS,
    EMISSIONS_RATE,
    CPU_POWER,
    GPU_POWER,
    RAM_POWER,
    CPU_ENERGY,
    GPU_ENERGY,
    RAM_ENERGY,
    ENERGY_CONSUMED,
    COUNTRY_NAME,
    COUNTRY_ISO_CODE,
    REGION,
    CLOUD_PROVIDER,
    CLOUD_REGION,
    OS,
    PYTHON_VERSION,
    CPU_COUNT,
    CPU_MODEL,
    GPU_COUNT,
    GPU_MODEL,
    LONGITUDE,
    LATITUDE,
    RAM_TOTAL_SIZE,
    TRACKING_MODE,
    ON_CLOUD,
];
const V2_2: &[&str] = &[
    TIMESTAMP,
    PROJECT_NAME,
    RUN_ID,
    DURATION,
    EMISSIONS,
    EMISSIONS_RATE,
    CPU_POWER,
    GPU_POWER,
    RAM_POWER,
    CPU_ENERGY,
    GPU_ENERGY,
    RAM_ENERGY,
    ENERGY_CONSUMED,
    COUNTRY_NAME,
    COUNTRY_ISO_CODE,
    REGION,
    CLOUD_PROVIDER,
    CLOUD_REGION,
    OS,
    PYTHON_VERSION,
    CODECARBON_VERSION,
    CPU_COUNT,
    CPU_MODEL,
    GPU_COUNT,
    GPU_MODEL,
    LONGITUDE,
    LATITUDE,
    RAM_TOTAL_SIZE,
    TRACKING_MODE,
    ON_CLOUD,
];
const V2_2_3: &[&str] = &[
    TIMESTAMP,
    PROJECT_NAME,
    RUN_ID,
    DURATION,
    EMISSIONS,
    EMISSIONS_RATE,
    CPU_POWER,
    GPU_POWER,
    RAM_POWER,
    CPU_ENERGY,
    GPU_ENERGY,
    RAM_ENERGY,
    ENERGY_CONSUMED,
    COUNTRY_NAME,
    COUNTRY_ISO_CODE,
    REGION,
    CLOUD_PROVIDER,
    CLOUD_REGION,
    OS,
    PYTHON_VERSION,
    CODECARBON_VERSION,
    CPU_COUNT,
    CPU_MODEL,
    GPU_COUNT,
    GPU_MODEL,
    LONGITUDE,
    LATITUDE,
    RAM_TOTAL_SIZE,
    TRACKING_MODE,
    ON_CLOUD,
    PUE,
];
const V2_7: &[&str] = &[
    TIMESTAMP,
    PROJECT_NAME,
    RUN_ID,
    EXPERIMENT_ID,
    DURATION,
    EMISSIONS,
    EMISSIONS_RATE,
    CPU_POWER,
    GPU_POWER,
    RAM_POWER,
    CPU_ENERGY,
    GPU_ENERGY,
    RAM_ENERGY,
    ENERGY_CONSUMED,
    COUNTRY_NAME,
    COUNTRY_ISO_CODE,
    REGION,
    CLOUD_PROVIDER,
    CLOUD_REGION,
    OS,
    PYTHON_VERSION,
    CODECARBON_VERSION,
    CPU_COUNT,
    CPU_MODEL,
    GPU_COUNT,
    GPU_MODEL,
    LONGITUDE,
    LATITUDE,
    RAM_TOTAL_SIZE,
    TRACKING_MODE,
    ON_CLOUD,
    PUE,
];
const V3_0_8: &[&str] = &[
    TIMESTAMP,
    PROJECT_NAME,
    RUN_ID,
    EXPERIMENT_ID,
    DURATION,
    EMISSIONS,
    EMISSIONS_RATE,
    CPU_POWER,
    GPU_POWER,
    RAM_POWER,
    CPU_ENERGY,
    GPU_ENERGY,
    RAM_ENERGY,
    ENERGY_CONSUMED,
    WATER_CONSUMED,
    COUNTRY_NAME,
    COUNTRY_ISO_CODE,
    REGION,
    CLOUD_PROVIDER,
    CLOUD_REGION,
    OS,
    PYTHON_VERSION,
    CODECARBON_VERSION,
    CPU_COUNT,
    CPU_MODEL,
    GPU_COUNT,
    GPU_MODEL,
    LONGITUDE,
    LATITUDE,
    RAM_TOTAL_SIZE,
    TRACKING_MODE,
    ON_CLOUD,
    PUE,
    WUE,
];
const V3_2: &[&str] = &[
    TIMESTAMP,
    PROJECT_NAME,
    RUN_ID,
    EXPERIMENT_ID,
    DURATION,
    EMISSIONS,
    EMISSIONS_RATE,
    CPU_POWER,
    GPU_POWER,
    RAM_POWER,
    CPU_ENERGY,
    GPU_ENERGY,
    RAM_ENERGY,
    ENERGY_CONSUMED,
    WATER_CONSUMED,
    COUNTRY_NAME,
    COUNTRY_ISO_CODE,
    REGION,
    CLOUD_PROVIDER,
    CLOUD_REGION,
    OS,
    PYTHON_VERSION,
    CODECARBON_VERSION,
    CPU_COUNT,
    CPU_MODEL,
    GPU_COUNT,
    GPU_MODEL,
    LONGITUDE,
    LATITUDE,
    RAM_TOTAL_SIZE,
    TRACKING_MODE,
    CPU_UTILIZATION_PERCENT,
    GPU_UTILIZATION_PERCENT,
    RAM_UTILIZATION_PERCENT,
    RAM_USED_GB,
    ON_CLOUD,
    PUE,
    WUE,
];

/// A CodeCarbon header generation: its label, the versions that wrote it, and its canonical columns.
pub struct Generation {
    pub label: &'static str,
    pub versions: &'static str,
    pub columns: &'static [&'static str],
    /// `emissions_rate` was written in g/s by these versions, kg/s after.
    pub rate_in_grams: bool,
}

/// Oldest first. Detection picks the newest generation whose marker columns are all present.
pub const GENERATIONS: &[Generation] = &[
    Generation { label: "v1", versions: "1.x", columns: V1, rate_in_grams: false },
    Generation { label: "v2.0", versions: "2.0–2.1", columns: V2_0, rate_in_grams: true },
    Generation { label: "v2.2", versions: "2.2.0–2.2.2", columns: V2_2, rate_in_grams: false },
    Generation { label: "v2.2.3", versions: "2.2.3–2.6", columns: V2_2_3, rate_in_grams: false },
    Generation { label: "v2.7", versions: "2.7–3.0.7", columns: V2_7, rate_in_grams: false },
    Generation { label: "v3.0.8", versions: "3.0.8–3.1.x", columns: V3_0_8, rate_in_grams: false },
    Generation { label: "v3.2", versions: "3.2.x and later", columns: V3_2, rate_in_grams: false },
];

/// Picks the header generation from the columns present, whatever their order.
///
/// Markers, newest first: utilisation columns (3.2), `water_consumed` (3.0.8), `experiment_id`
/// beside `run_id` (2.7), `pue` (2.2.3), `codecarbon_version` (2.2.0), `run_id` (2.0), else v1.
pub fn detect_generation(columns: &[String]) -> &'static Generation {
    let has = |c: &str| columns.iter().any(|x| x == c);
    let idx = if has(CPU_UTILIZATION_PERCENT) || has(RAM_USED_GB) {
        6
    } else if has(WATER_CONSUMED) {
        5
    } else if has(RUN_ID) && has(EXPERIMENT_ID) {
        4
    } else if has(PUE) {
        3
    } else if has(CODECARBON_VERSION) {
        2
    } else if has(RUN_ID) {
        1
    } else {
        0
    };
    &GENERATIONS[idx]
}

/// Whether `emissions_rate` of a row written by `version` (e.g. "2.1.3") is in g/s.
pub fn version_rate_in_grams(version: &str) -> Option<bool> {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next().flatten()?;
    let minor = parts.next().flatten().unwrap_or(0);
    Some(major == 2 && minor < 2)
}
