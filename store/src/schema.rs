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

/// Version 2, for both engines (then [`V2_SQLITE`] or [`V2_POSTGRES`]): each run keeps its totals
/// beside its records (maintained in the transaction that commits them), so a start reads one row
/// per run; records get a commit-ordered sequence number (`seq`), each run the newest one that
/// changed it (`last_seq`): readers apply what changed after their cursor. The old records table
/// is renamed `emissions_v1`; `Store::open` copies it into the new one (working out each
/// record's instant, interval, sequence number and each run's totals), then drops it.
pub const V2: &str = "
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('seq', 0);
ALTER TABLE runs ADD COLUMN records BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN last_seq BIGINT;
ALTER TABLE runs ADD COLUMN sum_interval DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN sum_emissions DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN sum_cpu_energy DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN sum_gpu_energy DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN sum_ram_energy DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN sum_energy DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN last_at BIGINT;
ALTER TABLE runs ADD COLUMN last_timestamp TEXT;
ALTER TABLE runs ADD COLUMN last_cpu_power DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN last_gpu_power DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN last_ram_power DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN last_cpu_utilization DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN last_gpu_utilization DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN last_ram_utilization DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN last_wue DOUBLE PRECISION;
CREATE INDEX runs_last_seq ON runs (last_seq);
ALTER TABLE emissions RENAME TO emissions_v1;
";

/// The records table of version 2. `at_us`: the record's instant (µs since 1970, UTC), which
/// orders a run's records and (PostgreSQL) partitions the table by month; the key
/// `(run_id, at_us, timestamp)` is as unique as `(run_id, timestamp)` (the instant follows from
/// the timestamp) and serves the ordered reads of one run. `interval_s`: the seconds the record
/// covers ([`carbon_core::collect::interval_s`]). `records`: how many tracker records the row
/// stands for (more than 1 once retention folded old ones together; `body_hash` is then
/// `folded`).
const V2_RECORDS_COLUMNS: &str = "
    run_id TEXT NOT NULL REFERENCES runs (id),
    at_us BIGINT NOT NULL,
    timestamp TEXT NOT NULL,
    seq BIGINT NOT NULL,
    body_hash TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    duration DOUBLE PRECISION NOT NULL,
    interval_s DOUBLE PRECISION NOT NULL,
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
    records BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (run_id, at_us, timestamp)";

pub fn v2_sqlite() -> String {
    format!("{V2}\nCREATE TABLE emissions ({V2_RECORDS_COLUMNS}\n) WITHOUT ROWID;\n")
}

/// PostgreSQL: records partitioned by month of `at_us` (partitions made as records need them,
/// see `Store::ensure_partitions`; months outside two years back to two months ahead go to the default partition).
pub fn v2_postgres() -> String {
    format!(
        "{V2}\nALTER INDEX emissions_pkey RENAME TO emissions_v1_pkey;\n\
         CREATE TABLE emissions ({V2_RECORDS_COLUMNS}\n) PARTITION BY RANGE (at_us);\n\
         CREATE TABLE emissions_default PARTITION OF emissions DEFAULT;\n"
    )
}

/// Version 3: who may see what. `members`: a person (an e-mail or subject, lower case) in a team,
/// beside the teams their groups name. `read_tokens`: tokens scripts read the API with, kept as
/// their hash, scoped to a team (`team` NULL: every team). `sessions`: people signed in with
/// OpenID Connect, by their cookie's hash. `sign_ins`: sign-ins under way (their state's hash,
/// the browser's cookie hash, the nonce and the PKCE verifier), each taken once.
pub const V3: &str = "
CREATE TABLE members (
    team TEXT NOT NULL,
    person TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (team, person)
);
CREATE INDEX members_person ON members (person);
CREATE TABLE read_tokens (
    hash TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    team TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    person TEXT NOT NULL,
    team_list TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE TABLE sign_ins (
    state_hash TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    next TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sign_ins_created ON sign_ins (created_at);
";

/// Version 4: carbon budgets (`budget set`), one per scope, quantity and period; and the alerts,
/// one row per budget, period, threshold and webhook (`target`: its URL's hash), so that a
/// restart or another replica never sends one twice: the row is claimed before the webhook is
/// called, and each attempt takes a lease (`lease`, a random token, from `attempted_at`) that a
/// retry waits out and that only its holder records the outcome under.
pub const V4: &str = "
CREATE TABLE budgets (
    scope_kind TEXT NOT NULL,
    scope_name TEXT NOT NULL,
    quantity TEXT NOT NULL,
    period TEXT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    thresholds TEXT NOT NULL,
    set_at BIGINT NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, quantity, period)
);
CREATE TABLE alerts (
    budget_key TEXT NOT NULL,
    period_start TEXT NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    target TEXT NOT NULL,
    crossed TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    attempted_at BIGINT NOT NULL,
    lease TEXT,
    sent_at BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (budget_key, period_start, threshold, target)
);
";
