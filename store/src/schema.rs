//! The schema, the same text for SQLite and PostgreSQL (only types both know). A change is a new
//! migration appended in `Store::open`, never an edit of one that has shipped.

pub const V1: &str = "
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    team TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE experiments (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    country_iso_code TEXT,
    region TEXT,
    cloud_provider TEXT,
    cloud_region TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    -- What the tracker posted, hashed: a retry of the same post finds its run.
    body_hash TEXT NOT NULL UNIQUE,
    experiment_id TEXT NOT NULL REFERENCES experiments (id),
    timestamp TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    os TEXT,
    python_version TEXT,
    codecarbon_version TEXT,
    cpu_count DOUBLE PRECISION,
    cpu_model TEXT,
    gpu_count DOUBLE PRECISION,
    gpu_model TEXT,
    longitude DOUBLE PRECISION,
    latitude DOUBLE PRECISION,
    region TEXT,
    provider TEXT,
    ram_total_size DOUBLE PRECISION,
    tracking_mode TEXT,
    extra TEXT
);
CREATE INDEX runs_experiment ON runs (experiment_id);
CREATE TABLE emissions (
    run_id TEXT NOT NULL REFERENCES runs (id),
    timestamp TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    duration DOUBLE PRECISION NOT NULL,
    emissions_sum DOUBLE PRECISION,
    emissions_rate DOUBLE PRECISION,
    cpu_power DOUBLE PRECISION,
    gpu_power DOUBLE PRECISION,
    ram_power DOUBLE PRECISION,
    cpu_energy DOUBLE PRECISION,
    gpu_energy DOUBLE PRECISION,
    ram_energy DOUBLE PRECISION,
    energy_consumed DOUBLE PRECISION,
    cpu_utilization_percent DOUBLE PRECISION,
    gpu_utilization_percent DOUBLE PRECISION,
    ram_utilization_percent DOUBLE PRECISION,
    wue DOUBLE PRECISION,
    extra TEXT,
    PRIMARY KEY (run_id, timestamp)
);
CREATE INDEX tokens_project ON tokens (project_id);
";
