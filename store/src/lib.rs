//! Where collected runs are kept: projects, experiments, tokens, runs and their records, in SQLite
//! (WAL mode, one file, no setup) or PostgreSQL (for several replicas), with one schema and one
//! set of queries through sqlx's `Any` driver. Migrations run when a store is opened.
//!
//! Writes go through one writer task that commits whatever is waiting in one transaction (group
//! commit: the records in multi-row inserts), so a record is acknowledged only once it is
//! durable, and many trackers cost one commit, not one each. Each write is idempotent: a record
//! posted again (a client retrying after a lost answer) lands once.
//!
//! Each run keeps its totals beside its records ([`collect::Totals`]), updated in the transaction
//! that commits the records, so reading the runs back costs one row per run, never a scan of the
//! records. Records carry a sequence number taken from one counter row inside the committing
//! transaction, which holds that row until it commits: the numbers commit in order, so a reader
//! that has seen everything up to its cursor asks for what changed after it ([`Store::runs_after`])
//! and misses nothing, on every replica.

use carbon_core::collect::{self, EmissionIn, Experiment, RunIn, Totals};
use carbon_core::ingest::ParsedFile;
use carbon_core::model::Checkpoint;
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr, SqlStr};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub mod budgets;
pub mod people;
pub mod schema;

/// For other replicas' news (PostgreSQL `LISTEN` on [`CHANNEL`]).
pub use sqlx::postgres::PgListener;

/// Writes waiting for the writer, at most; more are refused (the server answers 503).
pub const QUEUE: usize = 4096;
/// Writes committed in one transaction, at most.
const BATCH: usize = 512;
/// The PostgreSQL channel each commit's sequence number is announced on (for the other replicas).
pub const CHANNEL: &str = "carbon_dash_runs";
/// Records in one multi-row insert, at most (23 parameters each).
const INSERT_ROWS: usize = 256;
/// Reads that scan a run's or a project's records, at once, at most (see `Store::heavy_reads`).
const HEAVY_READS: usize = 2;
/// How long a live token's project is remembered (see [`Store::token_project`]).
pub const TOKEN_TTL: Duration = Duration::from_secs(1);
/// Run → project pairs remembered (they never change), at most; forgotten all at once beyond.
const RUN_CACHE: usize = 200_000;
/// The `body_hash` of a row that retention folded from several records.
const FOLDED: &str = "folded";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Something the user named does not exist, or cannot be made: the message says what.
    #[error("{0}")]
    Refused(String),
    /// The writer's queue is full: try again shortly.
    #[error("too many records waiting to be written")]
    Busy,
    #[error("the store is closed")]
    Closed,
    /// The transaction that held the write failed: nothing of it is stored.
    #[error("not stored: {0}")]
    NotStored(String),
    /// Another record with the same run and timestamp, but other figures, is stored already.
    #[error("{0}")]
    Conflict(String),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn refused<T>(msg: impl Into<String>) -> Result<T> {
    Err(StoreError::Refused(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A project (the unit tokens belong to) and its team.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub team: Option<String>,
}

/// A token as listed: never the token itself, which is shown once and kept only hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// The first characters of the token, to tell tokens apart and to revoke one.
    pub prefix: String,
    pub project: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// What a new experiment is told: its name and where its runs use electricity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewExperiment {
    pub name: String,
    pub country_iso_code: Option<String>,
    pub region: Option<String>,
    pub cloud_provider: Option<String>,
    pub cloud_region: Option<String>,
}

/// The outcome of a write, for the writer's caller.
enum Job {
    Run(Box<RunIn>, oneshot::Sender<Result<String>>),
    Emission(Box<EmissionIn>, oneshot::Sender<Result<()>>),
}

/// An open store. Cloning shares the pools and the writer. (No `Debug`: the URL may hold a
/// password.)
#[derive(Clone)]
pub struct Store {
    /// Readers: tokens, lookups, read-back.
    pool: AnyPool,
    /// The writer's own connection, so readers (a flood of posts with made-up tokens, say)
    /// never keep it waiting.
    write_pool: AnyPool,
    engine: Engine,
    url: String,
    writer: mpsc::Sender<Job>,
    /// The newest sequence number this process committed, and a wake-up for who follows it.
    committed: Arc<(AtomicI64, tokio::sync::Notify)>,
    /// Transactions the writer committed.
    commits: Arc<std::sync::atomic::AtomicU64>,
    /// Token hash → (project, when looked up); run → project.
    tokens: Remembered<String>,
    run_projects: Arc<Mutex<HashMap<String, String>>>,
    /// Person → their teams here; read token hash → what it may see (see [`people`]).
    people: Remembered<Vec<String>>,
    read_scopes: Remembered<people::Scope>,
    /// Months (as `year * 12 + month - 1`) whose PostgreSQL partition is known to exist.
    partitions: Arc<Mutex<HashSet<i64>>>,
    /// Reads whose cost grows with a run's or a project's records (checkpoints, exports) take a
    /// turn here, so that requests for them cannot take every connection from the pages and
    /// the trackers.
    heavy_reads: Arc<tokio::sync::Semaphore>,
}

/// Looked-up values by key, with when they were looked up (kept for [`TOKEN_TTL`]).
type Remembered<T> = Arc<Mutex<HashMap<String, (T, Instant)>>>;

/// Microseconds since 1970, now.
fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The hash a token is kept as. Tokens are 256 random bits, so a fast hash is enough (no
/// password-style stretching: there is nothing to guess).
fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Names of projects and experiments become parts of paths and config lines.
fn check_name(what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 200 || name.contains('/') || name.chars().any(char::is_control) {
        return refused(format!("{what} name '{name}': use 1 to 200 characters, without '/' or control characters"));
    }
    Ok(())
}

/// The connection URL for `spec`: a `postgres://` URL as is, else a SQLite file path.
fn url_of(spec: &str) -> Result<(Engine, String)> {
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        return Ok((Engine::Postgres, spec.to_string()));
    }
    if let Some((scheme, _)) = spec.split_once("://").filter(|(s, _)| *s != "sqlite") {
        return refused(format!("--db {scheme}://…: give a SQLite file path or a postgres:// URL"));
    }
    let path = spec.strip_prefix("sqlite://").or_else(|| spec.strip_prefix("sqlite:")).unwrap_or(spec);
    let path = path.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
    Ok((Engine::Sqlite, format!("sqlite://{path}?mode=rwc")))
}

impl Store {
    /// Opens (creating a SQLite file when missing) and migrates the store `spec` names: a file
    /// path, or a `postgres://` URL.
    pub async fn open(spec: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (engine, url) = url_of(spec)?;
        let options = |connections: u32| {
            AnyPoolOptions::new().max_connections(connections).acquire_timeout(Duration::from_secs(10)).after_connect(
                move |conn, _| {
                    Box::pin(async move {
                        if engine == Engine::Sqlite {
                            // WAL: readers never wait for the writer; FULL: a commit is on disk
                            // (with its WAL frame synced) before it returns.
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = FULL",
                                "PRAGMA busy_timeout = 10000",
                                "PRAGMA foreign_keys = ON",
                            ] {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                        }
                        Ok(())
                    })
                },
            )
        };
        let pool = options(if engine == Engine::Sqlite { 4 } else { 8 }).connect(&url).await?;
        let v2 = match engine {
            Engine::Sqlite => schema::v2_sqlite(),
            Engine::Postgres => schema::v2_postgres(),
        };
        let migrator = Migrator::with_migrations(vec![
            Migration::new(1, "collected runs".into(), MigrationType::Simple, SqlStr::from_static(schema::V1), false),
            Migration::new(
                2,
                "run totals, record sequence".into(),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(v2).into_sql_str(),
                false,
            ),
            Migration::new(3, "who may see what".into(), MigrationType::Simple, SqlStr::from_static(schema::V3), false),
            Migration::new(
                4,
                "budgets and alerts".into(),
                MigrationType::Simple,
                SqlStr::from_static(schema::V4),
                false,
            ),
        ]);
        migrator.run(&pool).await?;
        let write_pool = options(1).connect(&url).await?;
        let (writer, jobs) = mpsc::channel(QUEUE);
        let store = Store {
            pool,
            write_pool,
            engine,
            url,
            writer,
            committed: Arc::default(),
            commits: Arc::default(),
            tokens: Arc::default(),
            run_projects: Arc::default(),
            people: Arc::default(),
            read_scopes: Arc::default(),
            partitions: Arc::default(),
            heavy_reads: Arc::new(tokio::sync::Semaphore::new(HEAVY_READS)),
        };
        store.copy_v1_records().await?;
        tokio::spawn(store.clone().write_loop(jobs));
        Ok(store)
    }

    /// Creates the PostgreSQL database `name` (letters, digits, `_`) on the server `admin_url`
    /// points to, and returns the URL of the new database.
    pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return refused(format!("database name '{name}': letters, digits and _ only"));
        }
        let Some((base, _)) = admin_url.rsplit_once('/') else {
            return refused(format!("'{admin_url}' names no database"));
        };
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await?;
        pool.close().await;
        Ok(format!("{base}/{name}"))
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL this store was opened with (for a PostgreSQL listener).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits until this process commits records with a sequence number above `after`, and
    /// returns the newest one (for whoever keeps the views up to date).
    pub async fn committed(&self, after: i64) -> i64 {
        loop {
            let notified = self.committed.1.notified();
            let seq = self.committed.0.load(Ordering::Acquire);
            if seq > after {
                return seq;
            }
            notified.await;
        }
    }

    // ---- projects, experiments, tokens (the command line) ----

    pub async fn add_project(&self, name: &str, team: Option<&str>) -> Result<Project> {
        check_name("project", name)?;
        if let Some(t) = team {
            check_name("team", t)?;
        }
        if self.project(name).await?.is_some() {
            return refused(format!("a project named '{name}' exists already"));
        }
        let id = uuid();
        sqlx::query("INSERT INTO projects (id, name, team, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(name)
            .bind(team)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(Project { id, name: name.to_string(), team: team.map(str::to_string) })
    }

    /// The project named (or with the id) `name_or_id`.
    pub async fn project(&self, name_or_id: &str) -> Result<Option<Project>> {
        let row = sqlx::query("SELECT id, name, team FROM projects WHERE name = $1 OR id = $1")
            .bind(name_or_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(Project { id: r.try_get("id")?, name: r.try_get("name")?, team: r.try_get("team")? }))
            .transpose()
    }

    async fn need_project(&self, name_or_id: &str) -> Result<Project> {
        match self.project(name_or_id).await? {
            Some(p) => Ok(p),
            None => {
                refused(format!("no project '{name_or_id}': create it with `carbon-dash project add {name_or_id}`"))
            }
        }
    }

    pub async fn projects(&self) -> Result<Vec<Project>> {
        let rows = sqlx::query("SELECT id, name, team FROM projects ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(Project { id: r.try_get("id")?, name: r.try_get("name")?, team: r.try_get("team")? }))
            .collect()
    }

    pub async fn add_experiment(&self, project: &str, new: &NewExperiment) -> Result<Experiment> {
        check_name("experiment", &new.name)?;
        let p = self.need_project(project).await?;
        let grid = carbon_core::grid::Grid::embedded();
        let iso = match &new.country_iso_code {
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => match grid.iso3(c) {
                Some(iso) => Some(iso.to_string()),
                None => {
                    return refused(format!(
                        "country '{c}' is not in the grid data: give a country's ISO 3166 alpha-3 code, e.g. FRA"
                    ))
                }
            },
            Some(c) => return refused(format!("country '{c}': give its three-letter ISO code, e.g. FRA")),
            None => None,
        };
        if let (Some(p), Some(r)) = (&new.cloud_provider, &new.cloud_region) {
            let known = grid
                .cloud_regions()
                .iter()
                .any(|c| c.provider.eq_ignore_ascii_case(p) && c.region.eq_ignore_ascii_case(r));
            if !known {
                let of_provider: Vec<&str> = grid
                    .cloud_regions()
                    .iter()
                    .filter(|c| c.provider.eq_ignore_ascii_case(p))
                    .map(|c| c.region.as_str())
                    .collect();
                // The regions that start like the one given (`europe-…`), else the first ones.
                let stem = r.split('-').next().unwrap_or(r).to_ascii_lowercase();
                let alike: Vec<&str> = of_provider.iter().copied().filter(|n| n.starts_with(&stem)).collect();
                let names: Vec<&str> =
                    if alike.is_empty() { of_provider } else { alike }.into_iter().take(12).collect();
                return refused(if names.is_empty() {
                    format!("cloud provider '{p}' is not in the grid data (aws, azure, gcp are)")
                } else {
                    format!("no region '{r}' of {p} in the grid data; it has e.g. {}", names.join(", "))
                });
            }
        }
        // As the grid data names them.
        let cloud_provider = new.cloud_provider.as_ref().map(|p| p.to_ascii_lowercase());
        let cloud_region = new.cloud_region.as_ref().map(|r| r.to_ascii_lowercase());
        if iso.is_none() && new.cloud_provider.is_none() {
            return refused("say where the runs use electricity: --country ISO3 (and --region), or --cloud-provider with --cloud-region");
        }
        if new.cloud_provider.is_some() != new.cloud_region.is_some() {
            return refused("--cloud-provider and --cloud-region go together");
        }
        let exists = sqlx::query("SELECT id FROM experiments WHERE project_id = $1 AND name = $2")
            .bind(&p.id)
            .bind(&new.name)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_some() {
            return refused(format!("project '{}' has an experiment named '{}' already", p.name, new.name));
        }
        let id = uuid();
        sqlx::query(
            "INSERT INTO experiments (id, project_id, name, country_iso_code, region, cloud_provider, cloud_region, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&p.id)
        .bind(&new.name)
        .bind(&iso)
        .bind(&new.region)
        .bind(&cloud_provider)
        .bind(&cloud_region)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(Experiment {
            id,
            name: new.name.clone(),
            project_id: p.id,
            project: p.name,
            team: p.team,
            country_iso_code: iso,
            country_name: None,
            region: new.region.clone(),
            cloud_provider,
            cloud_region,
        })
    }

    /// Every experiment with its project, or those of one project.
    pub async fn experiments(&self, project: Option<&str>) -> Result<Vec<Experiment>> {
        let p = match project {
            Some(p) => Some(self.need_project(p).await?.id),
            None => None,
        };
        let rows = match p {
            Some(p) => {
                let q = format!("{EXPERIMENT_COLUMNS} WHERE e.project_id = $1 ORDER BY p.name, e.name");
                sqlx::query(sqlx::AssertSqlSafe(q)).bind(p).fetch_all(&self.pool).await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{EXPERIMENT_COLUMNS} ORDER BY p.name, e.name")))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(experiment_of).collect()
    }

    /// A new token for `project`: returned once, kept only as its hash.
    pub async fn add_token(&self, project: &str) -> Result<String> {
        let p = self.need_project(project).await?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Refused(format!("no randomness for a token: {e}")))?;
        let token = format!("cdt_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        sqlx::query("INSERT INTO tokens (hash, prefix, project_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash(&token))
            .bind(&token[..12])
            .bind(&p.id)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(token)
    }

    pub async fn tokens(&self, project: &str) -> Result<Vec<TokenInfo>> {
        let p = self.need_project(project).await?;
        let rows = sqlx::query(
            "SELECT prefix, created_at, revoked_at FROM tokens WHERE project_id = $1 ORDER BY created_at, prefix",
        )
        .bind(&p.id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    prefix: r.try_get("prefix")?,
                    project: p.name.clone(),
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes the tokens of `project` that start with `prefix` (at least the 12 characters
    /// `token list` shows). Returns how many were revoked.
    pub async fn revoke_token(&self, project: &str, prefix: &str) -> Result<u64> {
        let p = self.need_project(project).await?;
        let n = self.revoke_by_prefix("tokens", Some(&p.id), prefix, "`token list`").await?;
        if n == 0 {
            return refused(format!("no live token of project '{}' starts with '{prefix}'", p.name));
        }
        lock(&self.tokens).clear();
        Ok(n)
    }

    /// Revokes the live tokens of `table` (`tokens` of `project`, or `read_tokens`) that start
    /// with `prefix`: its first 12 characters at least (as `listed_by` shows them), or a whole
    /// token (only that one). How many were revoked.
    async fn revoke_by_prefix(
        &self,
        table: &'static str,
        project: Option<&str>,
        prefix: &str,
        listed_by: &str,
    ) -> Result<u64> {
        let Some(key) = prefix.get(..12) else {
            return refused(format!("give the token's first 12 characters at least, as {listed_by} shows them"));
        };
        let select = format!(
            "SELECT hash FROM {table} WHERE prefix = $1 AND revoked_at IS NULL{}",
            if project.is_some() { " AND project_id = $2" } else { "" }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(select)).bind(key);
        if let Some(p) = project {
            q = q.bind(p);
        }
        let mut n = 0;
        for r in q.fetch_all(&self.pool).await? {
            let hash: String = r.try_get("hash")?;
            if prefix.len() > 12 && hash != token_hash(prefix) {
                continue;
            }
            let update = format!("UPDATE {table} SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL");
            n += sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(now())
                .bind(&hash)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    // ---- what a tracker may do ----

    /// The project a live (not revoked) token writes to. A live token is remembered for
    /// [`TOKEN_TTL`]: a tracker posts every few seconds, and a lookup is a trip to the database
    /// each (on SQLite, to its connection's thread and back). A token revoked here is refused at
    /// once; by another process (the `token revoke` command, another replica), within the TTL.
    pub async fn token_project(&self, token: &str) -> Result<Option<String>> {
        let hash = token_hash(token);
        if let Some((project, at)) = lock(&self.tokens).get(&hash) {
            if at.elapsed() < TOKEN_TTL {
                return Ok(Some(project.clone()));
            }
        }
        let row = sqlx::query("SELECT project_id FROM tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(&hash)
            .fetch_optional(&self.pool)
            .await?;
        let project: Option<String> = row.map(|r| r.try_get("project_id")).transpose()?;
        let mut tokens = lock(&self.tokens);
        match &project {
            Some(p) => {
                // Live tokens only (made-up ones are never kept), and expired ones dropped.
                if tokens.len() >= 10_000 {
                    tokens.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
                }
                tokens.insert(hash, (p.clone(), Instant::now()));
            }
            None => {
                tokens.remove(&hash);
            }
        }
        Ok(project)
    }

    pub async fn experiment_project(&self, experiment_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT project_id FROM experiments WHERE id = $1")
            .bind(experiment_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("project_id")).transpose()?)
    }

    /// The project of a run (remembered: it never changes).
    pub async fn run_project(&self, run_id: &str) -> Result<Option<String>> {
        if let Some(p) = lock(&self.run_projects).get(run_id) {
            return Ok(Some(p.clone()));
        }
        let row =
            sqlx::query("SELECT e.project_id FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id = $1")
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?;
        let project: Option<String> = row.map(|r| r.try_get("project_id")).transpose()?;
        if let Some(p) = &project {
            let mut runs = lock(&self.run_projects);
            if runs.len() >= RUN_CACHE {
                runs.clear();
            }
            runs.insert(run_id.to_string(), p.clone());
        }
        Ok(project)
    }

    /// Stores a tracker's run and returns its id, once committed. The same run posted again
    /// (same experiment, same timestamp) gets the id it was given the first time.
    pub async fn add_run(&self, run: RunIn) -> Result<String> {
        let (tx, rx) = oneshot::channel();
        self.writer.try_send(Job::Run(Box::new(run), tx)).map_err(queue_error)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores one record of a run, once committed. The same record posted again (same run, same
    /// timestamp) lands once.
    pub async fn add_emission(&self, e: EmissionIn) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.writer.try_send(Job::Emission(Box::new(e), tx)).map_err(queue_error)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// The writer: takes what is waiting (up to [`BATCH`]), writes it in one transaction and
    /// answers each caller after the commit. A write that fails is undone alone (a savepoint
    /// each), so it cannot fail the others; when the transaction itself fails, every caller of
    /// the batch gets the error (none gets a 201).
    async fn write_loop(self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.recv().await {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match jobs.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            match self.write(&batch).await {
                Ok((results, seq)) => self.answer(batch, results, seq),
                Err(e) => {
                    tracing::warn!(error = %e, n = batch.len(), "a batch of writes failed");
                    let message = e.to_string();
                    let results = batch.iter().map(|_| Err(StoreError::NotStored(message.clone()))).collect();
                    self.answer(batch, results, None);
                }
            }
        }
    }

    fn answer(&self, batch: Vec<Job>, results: Vec<Result<Option<String>>>, seq: Option<i64>) {
        for (job, result) in batch.into_iter().zip(results) {
            match job {
                Job::Run(_, tx) => {
                    let _ = tx.send(result.map(Option::unwrap_or_default));
                }
                Job::Emission(_, tx) => {
                    let _ = tx.send(result.map(|_| ()));
                }
            }
        }
        if let Some(seq) = seq {
            self.committed.0.fetch_max(seq, Ordering::AcqRel);
            self.committed.1.notify_waiters();
        }
    }

    /// PostgreSQL: makes the monthly partitions the records' instants fall in (before the
    /// transaction that writes them, so that it takes no lock on the table), for months from two
    /// years back to two months ahead: a tracker's clock cannot make a partition a month of the
    /// last century; such records go to the default partition. Another replica making the same
    /// one at the same time is no error; a partition that cannot be made (the default partition
    /// holds records of its month) leaves its records in the default partition.
    async fn ensure_partitions(&self, instants: impl Iterator<Item = i64>) -> Result<()> {
        if self.engine != Engine::Postgres {
            return Ok(());
        }
        let now = month_of(now()).unwrap_or(0);
        let mut months: Vec<i64> = instants.filter_map(month_of).filter(|m| (now - 24..=now + 2).contains(m)).collect();
        months.sort_unstable();
        months.dedup();
        months.retain(|m| !lock(&self.partitions).contains(m));
        for m in months {
            let (name, from, to) = partition(m);
            let ddl =
                format!("CREATE TABLE IF NOT EXISTS {name} PARTITION OF emissions FOR VALUES FROM ({from}) TO ({to})");
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(&self.write_pool).await {
                let exists = sqlx::query("SELECT 1 AS one FROM pg_class WHERE relname = $1")
                    .bind(&name)
                    .fetch_optional(&self.write_pool)
                    .await?
                    .is_some();
                if !exists {
                    tracing::warn!(error = %e, partition = %name, "records of this month stay in the default partition");
                }
            }
            lock(&self.partitions).insert(m);
        }
        Ok(())
    }

    /// A write transaction. SQLite: `BEGIN IMMEDIATE`, the write lock taken at once, so that a
    /// transaction that reads before it writes is never refused because another process (the
    /// command line, a second server on the same file) wrote in between.
    async fn begin_write(&self) -> Result<Tx> {
        Ok(match self.engine {
            Engine::Sqlite => self.write_pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.write_pool.begin().await?,
        })
    }

    /// Writes `batch` in one transaction; one result per job (a run's id for a run), and the
    /// newest sequence number it committed. `Err`: the transaction failed, nothing of the batch
    /// is stored.
    async fn write(&self, batch: &[Job]) -> Result<(Vec<Result<Option<String>>>, Option<i64>)> {
        let mut out: Vec<Result<Option<String>>> = (0..batch.len()).map(|_| Ok(None)).collect();
        // Records: their instants first (a timestamp the parser took always has one).
        let mut records: Vec<(usize, &EmissionIn, i64)> = Vec::new();
        for (i, job) in batch.iter().enumerate() {
            if let Job::Emission(e, _) = job {
                match collect::instant(&e.timestamp).map(|t| t.and_utc().timestamp_micros()) {
                    Some(at) => records.push((i, e, at)),
                    None => out[i] = refused(format!("record timestamp '{}' names no moment", e.timestamp)),
                }
            }
        }
        self.ensure_partitions(records.iter().map(|r| r.2)).await?;
        let mut tx = self.begin_write().await?;
        for (i, job) in batch.iter().enumerate() {
            if let Job::Run(r, _) = job {
                sqlx::query("SAVEPOINT job").execute(&mut *tx).await?;
                match insert_run(&mut tx, r).await {
                    Ok(id) => {
                        sqlx::query("RELEASE SAVEPOINT job").execute(&mut *tx).await?;
                        out[i] = Ok(Some(id));
                    }
                    Err(e) => {
                        sqlx::query("ROLLBACK TO SAVEPOINT job").execute(&mut *tx).await?;
                        sqlx::query("RELEASE SAVEPOINT job").execute(&mut *tx).await?;
                        out[i] = Err(e);
                    }
                }
            }
        }
        let mut seq = None;
        if !records.is_empty() {
            // Records of runs that do not exist are refused alone.
            let mut ids: Vec<&str> = records.iter().map(|r| r.1.run_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let known = existing_runs(&mut tx, &ids).await?;
            // The same run and timestamp twice in one batch: the first is written, the second
            // is a retry of it or a conflict.
            let mut first: HashMap<(&str, &str), (usize, String)> = HashMap::new();
            let received_at = now();
            let mut repeats: Vec<(usize, usize)> = Vec::new();
            let mut rows: Vec<NewRecord> = Vec::new();
            for &(i, e, at) in &records {
                if !known.contains(e.run_id.as_str()) {
                    out[i] = refused(format!("no run {} on this server", e.run_id));
                    continue;
                }
                let hash = content_hash(e);
                match first.get(&(e.run_id.as_str(), e.timestamp.as_str())) {
                    Some((j, h)) if *h == hash => repeats.push((i, *j)),
                    Some(_) => out[i] = Err(conflict(e)),
                    None => {
                        first.insert((&e.run_id, &e.timestamp), (i, hash.clone()));
                        rows.push(NewRecord { job: i, record: e, at_us: at, hash, seq: 0, records: 1, received_at });
                    }
                }
            }
            if !rows.is_empty() {
                // Taken inside the transaction and held until it commits: numbers commit in order.
                let top: i64 = sqlx::query("UPDATE counters SET value = value + $1 WHERE name = 'seq' RETURNING value")
                    .bind(rows.len() as i64)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("value")?;
                let base = top - rows.len() as i64;
                for (k, r) in rows.iter_mut().enumerate() {
                    r.seq = base + 1 + k as i64;
                }
                let inserted = insert_records(&mut tx, &rows).await?;
                let mut added: Vec<&NewRecord> = Vec::new();
                for (r, new) in rows.iter().zip(inserted) {
                    if new {
                        added.push(r);
                        continue;
                    }
                    // Not inserted: a retry (the same record) or another record at its timestamp.
                    let stored: Option<String> = sqlx::query(
                        "SELECT body_hash FROM emissions WHERE run_id = $1 AND at_us = $2 AND timestamp = $3",
                    )
                    .bind(&r.record.run_id)
                    .bind(r.at_us)
                    .bind(&r.record.timestamp)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| row.try_get("body_hash"))
                    .transpose()?;
                    // None: folded away meanwhile by retention (this was a retry of it).
                    if stored.is_some_and(|h| h != r.hash && h != FOLDED) {
                        out[r.job] = Err(conflict(r.record));
                    }
                }
                // Each run's totals, in the same transaction as its records.
                added.sort_by(|a, b| {
                    (a.record.run_id.as_str(), a.at_us, a.record.timestamp.as_str()).cmp(&(
                        b.record.run_id.as_str(),
                        b.at_us,
                        b.record.timestamp.as_str(),
                    ))
                });
                for group in added.chunk_by(|a, b| a.record.run_id == b.record.run_id) {
                    let mut delta = Totals::default();
                    delta.extend(group.iter().map(|r| r.record));
                    let last = group[group.len() - 1];
                    add_totals(&mut tx, &last.record.run_id, &delta, last.at_us, top).await?;
                }
                if self.engine == Engine::Postgres {
                    // Delivered to the other replicas when (and only if) the transaction commits.
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(top.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                seq = Some(top);
            }
            // A repeat in the batch fares as the record it repeats.
            for (i, j) in repeats {
                if let Err(StoreError::Conflict(_)) = &out[j] {
                    if let Job::Emission(e, _) = &batch[i] {
                        out[i] = Err(conflict(e));
                    }
                }
            }
        }
        tx.commit().await?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok((out, seq))
    }

    // ---- reading collected runs back ----

    /// The collected runs changed after sequence number `cursor` (every run with records for 0),
    /// as the catalog holds files, and the cursor to ask from next time. One row per run, read
    /// from its totals: no record is read.
    pub async fn runs_after(&self, cursor: i64) -> Result<(Vec<ParsedFile>, i64)> {
        let experiments: HashMap<String, Experiment> =
            self.experiments(None).await?.into_iter().map(|e| (e.id.clone(), e)).collect();
        let q = format!("{RUN_COLUMNS}, {TOTALS_COLUMNS} FROM runs WHERE last_seq > $1 ORDER BY last_seq");
        let rows = sqlx::query(sqlx::AssertSqlSafe(q)).bind(cursor).fetch_all(&self.pool).await?;
        let (mut next, mut hold) = (cursor, i64::MAX);
        let mut runs = Vec::with_capacity(rows.len());
        for r in &rows {
            let (id, run) = run_of(r)?;
            let (totals, last_seq) = totals_of(r, &id)?;
            next = next.max(last_seq);
            match experiments.get(&run.experiment_id) {
                Some(exp) => runs.push((exp.clone(), id, run, totals)),
                // Its experiment was made after the experiments were read: read it next time.
                None => hold = hold.min(last_seq - 1),
            }
        }
        let next = next.min(hold).max(cursor);
        drop(rows);
        let files = tokio::task::spawn_blocking(move || collect::run_files(runs))
            .await
            .map_err(|e| StoreError::NotStored(format!("reading runs back: {e}")))?;
        Ok((files, next))
    }

    /// The newest sequence number committed (by any process).
    pub async fn last_seq(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT value FROM counters WHERE name = 'seq'")
            .fetch_one(&self.pool)
            .await?
            .try_get("value")?)
    }

    /// Run `run_id`'s checkpoints (running totals, in time order), at most `max`, evenly spaced
    /// with the last one kept, thinned by the database; and how many rows it has.
    pub async fn checkpoints(&self, run_id: &str, max: usize) -> Result<(Vec<Checkpoint>, usize)> {
        let _turn = self.heavy_reads.acquire().await.map_err(|_| StoreError::Closed)?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM emissions WHERE run_id = $1")
            .bind(run_id)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let step = if total as usize <= max { 1 } else { (total - 1) / (max.max(2) as i64 - 1) + 1 };
        let q = format!("{CHECKPOINTS} WHERE (i - 1) % $2 = 0 OR i = n ORDER BY i");
        let rows = sqlx::query(sqlx::AssertSqlSafe(q)).bind(run_id).bind(step).fetch_all(&self.pool).await?;
        Ok((rows.iter().map(checkpoint_of).collect::<Result<_>>()?, total as usize))
    }

    /// A page of run `run_id`'s checkpoints: those after the `after`-th (1-based numbers, in
    /// time order), at most `limit`; and how many rows it has.
    pub async fn checkpoints_page(&self, run_id: &str, after: usize, limit: usize) -> Result<(Vec<Checkpoint>, usize)> {
        let _turn = self.heavy_reads.acquire().await.map_err(|_| StoreError::Closed)?;
        let q = format!("{CHECKPOINTS} WHERE i > $2 ORDER BY i LIMIT $3");
        let rows = sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(run_id)
            .bind(after.min(i64::MAX as usize) as i64)
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await?;
        let total = match rows.first() {
            Some(r) => r.try_get::<i64, _>("n")? as usize,
            None => sqlx::query("SELECT COUNT(*) AS n FROM emissions WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(&self.pool)
                .await?
                .try_get::<i64, _>("n")? as usize,
        };
        Ok((rows.iter().map(checkpoint_of).collect::<Result<_>>()?, total))
    }

    /// Every run of `project` as one CodeCarbon `emissions.csv` (header, then each run's rows
    /// with its running totals; a last column says how many records a row folded by retention
    /// stands for), sent in pieces to `out` as it is read: a run's records are read a page at a
    /// time, never all at once. Stops early when `out` is closed.
    pub async fn export(&self, project: &str, out: mpsc::Sender<String>) -> Result<()> {
        let p = self.need_project(project).await?;
        let experiments: HashMap<String, Experiment> =
            self.experiments(Some(&p.id)).await?.into_iter().map(|e| (e.id.clone(), e)).collect();
        let q = format!(
            "{RUN_COLUMNS} FROM runs WHERE experiment_id IN (SELECT id FROM experiments WHERE project_id = $1) ORDER BY timestamp, id"
        );
        let runs = sqlx::query(sqlx::AssertSqlSafe(q)).bind(&p.id).fetch_all(&self.pool).await?;
        if out.send(format!("{},{}\n", collect::CSV_HEADER, collect::FOLDED_COLUMN)).await.is_err() {
            return Ok(());
        }
        const PAGE: i64 = 5000;
        for r in &runs {
            let (id, run) = run_of(r)?;
            let Some(exp) = experiments.get(&run.experiment_id) else { continue };
            let mut rows = collect::Rows::new(exp, &id, &run);
            rows.folded_column = true;
            rows.spreadsheet_safe = true;
            let mut after: (i64, String) = (i64::MIN, String::new());
            loop {
                let q = format!(
                    "{EMISSION_COLUMNS} FROM emissions WHERE run_id = $1 AND (at_us, timestamp) > ($2, $3)
                     ORDER BY at_us, timestamp LIMIT $4"
                );
                // A turn per page, not held while the client reads (a slow one must not hold it).
                let page = {
                    let _turn = self.heavy_reads.acquire().await.map_err(|_| StoreError::Closed)?;
                    sqlx::query(sqlx::AssertSqlSafe(q))
                        .bind(&id)
                        .bind(after.0)
                        .bind(&after.1)
                        .bind(PAGE)
                        .fetch_all(&self.pool)
                        .await?
                };
                let mut text = String::with_capacity(page.len() * 400);
                for row in &page {
                    let e = emission_of(row)?;
                    let n: i64 = row.try_get("records")?;
                    rows.push_folded(&mut text, &e, n.max(1) as u64);
                    after = (row.try_get("at_us")?, e.timestamp);
                }
                if !text.is_empty() && out.send(text).await.is_err() {
                    return Ok(());
                }
                if (page.len() as i64) < PAGE {
                    break;
                }
            }
        }
        Ok(())
    }

    /// [`Store::export`] into one string (for the command line and tests).
    pub async fn export_csv(&self, project: &str) -> Result<String> {
        let (tx, mut rx) = mpsc::channel(4);
        let (done, text) = tokio::join!(self.export(project, tx), async move {
            let mut text = String::new();
            while let Some(piece) = rx.recv().await {
                text.push_str(&piece);
            }
            text
        });
        done?;
        Ok(text)
    }

    /// Retention: folds the records older than `before_us` (µs since 1970) into fewer rows
    /// that keep their sums: each run's old records become at most about 400 rows (one per
    /// span of at least an hour), each the sum of the records it stands for, with the last one's
    /// time and means. Totals stay exact; a run's page draws its old part coarser. Returns
    /// (runs folded, rows before, rows after). A run is folded a few spans per transaction,
    /// holding its row (so records committing meanwhile, here or on another replica, wait or are
    /// left for the next pass, and two replicas folding at once take turns).
    pub async fn fold_records(&self, before_us: i64) -> Result<(usize, u64, u64)> {
        let ids: Vec<String> =
            sqlx::query("SELECT DISTINCT run_id FROM emissions WHERE at_us < $1 AND body_hash <> $2")
                .bind(before_us)
                .bind(FOLDED)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get("run_id"))
                .collect::<Result<_, _>>()?;
        let (mut before, mut after) = (0u64, 0u64);
        for id in &ids {
            let mut from = i64::MIN;
            while let Some((b, a, next)) = self.fold_slice(id, from, before_us).await? {
                before += b;
                after += a;
                from = next;
            }
        }
        Ok((ids.len(), before, after))
    }

    /// Folds run `run_id`'s rows from `from` (µs) on, a few spans of them, before `before_us`;
    /// `None` when nothing is left before it. Returns (rows read, rows written, where the next
    /// slice starts).
    async fn fold_slice(&self, run_id: &str, from: i64, before_us: i64) -> Result<Option<(u64, u64, i64)>> {
        /// Spans per transaction: bounds what one holds (and the writer waits for).
        const SPANS: i64 = 16;
        let mut tx = self.begin_write().await?;
        // The run's row first: writers of its records (which update it) wait for this fold.
        sqlx::query("UPDATE runs SET records = records WHERE id = $1").bind(run_id).execute(&mut *tx).await?;
        let r = sqlx::query(
            "SELECT MIN(at_us) AS a, MAX(at_us) AS b, MIN(CASE WHEN at_us >= $2 THEN at_us END) AS c
             FROM emissions WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(from)
        .fetch_one(&mut *tx)
        .await?;
        let (Some(first), Some(last), Some(start)) =
            (r.try_get::<Option<i64>, _>("a")?, r.try_get::<Option<i64>, _>("b")?, r.try_get::<Option<i64>, _>("c")?)
        else {
            return Ok(None);
        };
        if start >= before_us {
            return Ok(None);
        }
        let width = ((last - first) / 400).max(3_600_000_000);
        // Whole spans only, so that a span is never split between two slices.
        let span_start = start.div_euclid(width) * width;
        let end = (span_start.saturating_add(SPANS * width)).min(before_us.div_euclid(width) * width);
        if end <= start {
            // The span the cut-off falls in is not over: it is folded once it is.
            return Ok(None);
        }
        let q = format!(
            "{EMISSION_COLUMNS}, seq FROM emissions WHERE run_id = $1 AND at_us >= $2 AND at_us < $3
             ORDER BY at_us, timestamp"
        );
        let old =
            sqlx::query(sqlx::AssertSqlSafe(q)).bind(run_id).bind(span_start).bind(end).fetch_all(&mut *tx).await?;
        let mut rows: Vec<(EmissionIn, i64, i64, i64)> = Vec::with_capacity(old.len());
        for r in &old {
            rows.push((emission_of(r)?, r.try_get("at_us")?, r.try_get("seq")?, r.try_get("records")?));
        }
        drop(old);
        let mut folded: Vec<(EmissionIn, i64, i64, i64)> = Vec::new();
        for group in rows.chunk_by(|a, b| a.1.div_euclid(width) == b.1.div_euclid(width)) {
            let mut sum = Totals::default();
            for (e, ..) in group {
                sum.add_sums(e);
            }
            let (last, at, seq, _) = &group[group.len() - 1];
            sum.last = last.clone();
            let n: i64 = group.iter().map(|g| g.3.max(1)).sum();
            folded.push((sum.as_record(), *at, *seq, n));
        }
        sqlx::query("DELETE FROM emissions WHERE run_id = $1 AND at_us >= $2 AND at_us < $3")
            .bind(run_id)
            .bind(span_start)
            .bind(end)
            .execute(&mut *tx)
            .await?;
        let received_at = now();
        let new: Vec<NewRecord> = folded
            .iter()
            .map(|(e, at, seq, n)| NewRecord {
                job: 0,
                record: e,
                at_us: *at,
                hash: FOLDED.into(),
                seq: *seq,
                records: *n,
                received_at,
            })
            .collect();
        insert_records(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(Some((rows.len() as u64, new.len() as u64, end)))
    }

    /// Transactions the writer has committed (fewer than writes when many wait at once).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// How many runs and records are stored (records as the trackers posted them, those folded
    /// by retention counted one by one), from the runs' totals.
    pub async fn counts(&self) -> Result<(i64, i64)> {
        let r = sqlx::query("SELECT COUNT(*) AS n, CAST(COALESCE(SUM(records), 0) AS BIGINT) AS records FROM runs")
            .fetch_one(&self.pool)
            .await?;
        Ok((r.try_get("n")?, r.try_get("records")?))
    }

    /// Rows in the records table (fewer than the records once retention folded some).
    pub async fn record_rows(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM emissions").fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// Closes the pool: writes still waiting fail (their callers get an error, never a 201).
    pub async fn close(self) {
        let Store { pool, writer, .. } = self;
        drop(writer);
        pool.close().await;
    }

    /// Upgrade from version 1: copies the records of `emissions_v1` (when it is there) into the
    /// records table of version 2, run by run in time order, working out each record's instant,
    /// interval and sequence number and each run's totals; then drops it. One transaction:
    /// stopped half-way, nothing of it stays and the next start does it again.
    async fn copy_v1_records(&self) -> Result<()> {
        let exists = |engine: Engine| match engine {
            Engine::Sqlite => "SELECT 1 AS one FROM sqlite_master WHERE type = 'table' AND name = 'emissions_v1'",
            Engine::Postgres => "SELECT 1 AS one FROM pg_class WHERE relname = 'emissions_v1' AND relkind = 'r'",
        };
        if sqlx::query(exists(self.engine)).fetch_optional(&self.pool).await?.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let mut tx = self.begin_write().await?;
        if self.engine == Engine::Postgres {
            // Replicas starting together: one copies, the others wait, then find nothing to do.
            sqlx::query("SELECT pg_advisory_xact_lock(7243100)").execute(&mut *tx).await?;
            if sqlx::query(exists(self.engine)).fetch_optional(&mut *tx).await?.is_none() {
                return Ok(());
            }
        }
        let ids: Vec<String> = sqlx::query("SELECT DISTINCT run_id FROM emissions_v1 ORDER BY run_id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("run_id"))
            .collect::<Result<_, _>>()?;
        let mut seq: i64 =
            sqlx::query("SELECT value FROM counters WHERE name = 'seq'").fetch_one(&mut *tx).await?.try_get("value")?;
        let mut copied = 0usize;
        for id in &ids {
            let q = format!("{EMISSION_V1_COLUMNS} FROM emissions_v1 WHERE run_id = $1 ORDER BY received_at");
            let old = sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_all(&mut *tx).await?;
            let mut list: Vec<(EmissionIn, String, i64)> = Vec::with_capacity(old.len());
            for r in &old {
                list.push((emission_of(r)?, r.try_get("body_hash")?, r.try_get("received_at")?));
            }
            drop(old);
            let at = |e: &EmissionIn| collect::instant(&e.timestamp).map_or(0, |t| t.and_utc().timestamp_micros());
            // In time order (ties by timestamp text, as checkpoints are read).
            list.sort_by(|(a, ..), (b, ..)| (at(a), a.timestamp.as_str()).cmp(&(at(b), b.timestamp.as_str())));
            if self.engine == Engine::Postgres {
                let now = month_of(now()).unwrap_or(0);
                let mut months: Vec<i64> = list
                    .iter()
                    .filter_map(|(e, ..)| month_of(at(e)))
                    .filter(|m| (now - 24..=now + 2).contains(m))
                    .collect();
                months.sort_unstable();
                months.dedup();
                for m in months {
                    let (name, from, to) = partition(m);
                    let ddl = format!(
                        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF emissions FOR VALUES FROM ({from}) TO ({to})"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(&mut *tx).await?;
                    lock(&self.partitions).insert(m);
                }
            }
            let mut totals = Totals::default();
            totals.extend(list.iter().map(|l| &l.0));
            let mut rows = Vec::with_capacity(list.len());
            for (e, hash, received_at) in &list {
                seq += 1;
                let received_at = *received_at;
                rows.push(NewRecord {
                    job: 0,
                    record: e,
                    at_us: at(e),
                    hash: hash.clone(),
                    seq,
                    records: 1,
                    received_at,
                });
            }
            insert_records(&mut tx, &rows).await?;
            if let Some(last) = rows.last() {
                add_totals(&mut tx, id, &totals, last.at_us, seq).await?;
            }
            copied += rows.len();
        }
        sqlx::query("UPDATE counters SET value = $1 WHERE name = 'seq'").bind(seq).execute(&mut *tx).await?;
        sqlx::query("DROP TABLE emissions_v1").execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(
            records = copied,
            runs = ids.len(),
            seconds = started.elapsed().as_secs_f64(),
            "upgraded the records to version 2"
        );
        Ok(())
    }
}

/// A record about to be inserted.
struct NewRecord<'a> {
    /// Its job in the batch.
    job: usize,
    record: &'a EmissionIn,
    at_us: i64,
    hash: String,
    seq: i64,
    /// Tracker records it stands for (1 but for rows folded by retention).
    records: i64,
    received_at: i64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn conflict(e: &EmissionIn) -> StoreError {
    StoreError::Conflict(format!(
        "run {} has another record at {} already: a record's timestamp is its identity",
        e.run_id, e.timestamp
    ))
}

/// The month (`year * 12 + month - 1`) of an instant in µs.
fn month_of(at_us: i64) -> Option<i64> {
    use chrono::Datelike;
    let t = chrono::DateTime::from_timestamp_micros(at_us)?;
    Some(i64::from(t.year()) * 12 + i64::from(t.month0()))
}

/// A month's partition: its name and range of instants (µs).
fn partition(month: i64) -> (String, i64, i64) {
    let start = |m: i64| {
        chrono::NaiveDate::from_ymd_opt((m / 12) as i32, (m % 12) as u32 + 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(0, |t| t.and_utc().timestamp_micros())
    };
    (format!("emissions_y{}m{:02}", month / 12, month % 12 + 1), start(month), start(month + 1))
}

/// Which of `ids` are runs.
async fn existing_runs(tx: &mut Tx, ids: &[&str]) -> Result<HashSet<String>> {
    let mut known = HashSet::new();
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let q = format!("SELECT id FROM runs WHERE id IN ({})", marks.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(q));
        for id in chunk {
            query = query.bind(*id);
        }
        for r in query.fetch_all(&mut **tx).await? {
            known.insert(r.try_get("id")?);
        }
    }
    Ok(known)
}

/// Inserts `rows` (multi-row inserts); for each, whether it was new (not a record already
/// stored at its run and timestamp).
async fn insert_records(tx: &mut Tx, rows: &[NewRecord<'_>]) -> Result<Vec<bool>> {
    const COLUMNS: usize = 23;
    let mut inserted: HashSet<(String, String)> = HashSet::new();
    for chunk in rows.chunks(INSERT_ROWS) {
        let mut q = String::from(
            "INSERT INTO emissions (run_id, at_us, timestamp, seq, body_hash, received_at, duration, interval_s,
             emissions_sum, emissions_rate, cpu_power, gpu_power, ram_power, cpu_energy, gpu_energy, ram_energy,
             energy_consumed, cpu_utilization_percent, gpu_utilization_percent, ram_utilization_percent, wue, extra,
             records) VALUES ",
        );
        for k in 0..chunk.len() {
            if k > 0 {
                q.push(',');
            }
            q.push('(');
            for c in 0..COLUMNS {
                if c > 0 {
                    q.push(',');
                }
                q.push_str(&format!("${}", k * COLUMNS + c + 1));
            }
            q.push(')');
        }
        q.push_str(" ON CONFLICT DO NOTHING RETURNING run_id, timestamp");
        // Not kept prepared: sqlx's `Any` declares a null double as a 4-byte float, and a
        // statement prepared with one would refuse an 8-byte value later.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(q)).persistent(false);
        for r in chunk {
            let e = r.record;
            query = query
                .bind(&e.run_id)
                .bind(r.at_us)
                .bind(&e.timestamp)
                .bind(r.seq)
                .bind(&r.hash)
                .bind(r.received_at)
                .bind(e.duration)
                .bind(collect::interval_s(e))
                .bind(e.emissions_sum)
                .bind(e.emissions_rate)
                .bind(e.cpu_power)
                .bind(e.gpu_power)
                .bind(e.ram_power)
                .bind(e.cpu_energy)
                .bind(e.gpu_energy)
                .bind(e.ram_energy)
                .bind(e.energy_consumed)
                .bind(e.cpu_utilization_percent)
                .bind(e.gpu_utilization_percent)
                .bind(e.ram_utilization_percent)
                .bind(e.wue)
                .bind(&e.extra)
                .bind(r.records);
        }
        for row in query.fetch_all(&mut **tx).await? {
            inserted.insert((row.try_get("run_id")?, row.try_get("timestamp")?));
        }
    }
    Ok(rows.iter().map(|r| inserted.contains(&(r.record.run_id.clone(), r.record.timestamp.clone()))).collect())
}

/// Adds `delta` (records newer than or as new as its last, at `last_at`) to run `run_id`'s
/// totals: the sums grow; the newest record's values are replaced when this one is as new.
async fn add_totals(tx: &mut Tx, run_id: &str, delta: &Totals, last_at: i64, seq: i64) -> Result<()> {
    let l = &delta.last;
    // Every SET reads the row as it was: `newer` compares with the old `last_at`. The newest
    // record is the last by (instant, timestamp), the order checkpoints are read in.
    let newer = "(last_at IS NULL OR $10 > last_at OR ($10 = last_at AND $11 >= last_timestamp))";
    let q = format!(
        "UPDATE runs SET records = records + $2, sum_interval = sum_interval + $3, sum_emissions = sum_emissions + $4,
            sum_cpu_energy = sum_cpu_energy + $5, sum_gpu_energy = sum_gpu_energy + $6,
            sum_ram_energy = sum_ram_energy + $7, sum_energy = sum_energy + $8, last_seq = $9,
            last_at = CASE WHEN {newer} THEN $10 ELSE last_at END,
            last_timestamp = CASE WHEN {newer} THEN $11 ELSE last_timestamp END,
            last_cpu_power = CASE WHEN {newer} THEN $12 ELSE last_cpu_power END,
            last_gpu_power = CASE WHEN {newer} THEN $13 ELSE last_gpu_power END,
            last_ram_power = CASE WHEN {newer} THEN $14 ELSE last_ram_power END,
            last_cpu_utilization = CASE WHEN {newer} THEN $15 ELSE last_cpu_utilization END,
            last_gpu_utilization = CASE WHEN {newer} THEN $16 ELSE last_gpu_utilization END,
            last_ram_utilization = CASE WHEN {newer} THEN $17 ELSE last_ram_utilization END,
            last_wue = CASE WHEN {newer} THEN $18 ELSE last_wue END
         WHERE id = $1"
    );
    // Not kept prepared (see `insert_records`).
    sqlx::query(sqlx::AssertSqlSafe(q))
        .persistent(false)
        .bind(run_id)
        .bind(delta.records as i64)
        .bind(delta.interval_s)
        .bind(delta.emissions)
        .bind(delta.cpu_energy)
        .bind(delta.gpu_energy)
        .bind(delta.ram_energy)
        .bind(delta.energy)
        .bind(seq)
        .bind(last_at)
        .bind(&l.timestamp)
        .bind(l.cpu_power)
        .bind(l.gpu_power)
        .bind(l.ram_power)
        .bind(l.cpu_utilization_percent)
        .bind(l.gpu_utilization_percent)
        .bind(l.ram_utilization_percent)
        .bind(l.wue)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// What identifies a posted body's content (a retry posts the same, field for field).
fn content_hash(value: &impl std::fmt::Debug) -> String {
    token_hash(&format!("{value:?}"))
}

/// A run, once: the same body posted again (a retry after a lost answer) gets the id the first
/// one got.
async fn insert_run(tx: &mut Tx, r: &RunIn) -> Result<String> {
    let hash = content_hash(r);
    let found = sqlx::query("SELECT id FROM runs WHERE body_hash = $1").bind(&hash).fetch_optional(&mut **tx).await?;
    if let Some(row) = found {
        return Ok(row.try_get("id")?);
    }
    let id = uuid();
    sqlx::query(
        "INSERT INTO runs (id, body_hash, experiment_id, timestamp, received_at, os, python_version, codecarbon_version,
            cpu_count, cpu_model, gpu_count, gpu_model, longitude, latitude, region, provider,
            ram_total_size, tracking_mode, extra)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    // Not kept prepared (see `insert_records`).
    .persistent(false)
    .bind(&id)
    .bind(&hash)
    .bind(&r.experiment_id)
    .bind(&r.timestamp)
    .bind(now())
    .bind(&r.os)
    .bind(&r.python_version)
    .bind(&r.codecarbon_version)
    .bind(r.cpu_count)
    .bind(&r.cpu_model)
    .bind(r.gpu_count)
    .bind(&r.gpu_model)
    .bind(r.longitude)
    .bind(r.latitude)
    .bind(&r.region)
    .bind(&r.provider)
    .bind(r.ram_total_size)
    .bind(&r.tracking_mode)
    .bind(&r.extra)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

fn queue_error<T>(e: mpsc::error::TrySendError<T>) -> StoreError {
    match e {
        mpsc::error::TrySendError::Full(_) => StoreError::Busy,
        mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
    }
}

const EXPERIMENT_COLUMNS: &str = "SELECT e.id, e.name, e.project_id, p.name AS project, p.team,
    e.country_iso_code, e.region, e.cloud_provider, e.cloud_region FROM experiments e JOIN projects p ON p.id = e.project_id";

const RUN_COLUMNS: &str = "SELECT id, experiment_id, timestamp, os, python_version, codecarbon_version, cpu_count,
    cpu_model, gpu_count, gpu_model, longitude, latitude, region, provider, ram_total_size, tracking_mode, extra";

/// A run's totals (see [`totals_of`]).
const TOTALS_COLUMNS: &str = "records, last_seq, sum_interval, sum_emissions, sum_cpu_energy, sum_gpu_energy,
    sum_ram_energy, sum_energy, last_timestamp, last_cpu_power, last_gpu_power, last_ram_power, last_cpu_utilization,
    last_gpu_utilization, last_ram_utilization, last_wue";

const EMISSION_COLUMNS: &str = "SELECT run_id, timestamp, at_us, records, duration, emissions_sum, emissions_rate,
    cpu_power, gpu_power, ram_power, cpu_energy, gpu_energy, ram_energy, energy_consumed, cpu_utilization_percent,
    gpu_utilization_percent, ram_utilization_percent, wue, extra";

/// Version 1's records (for the upgrade).
const EMISSION_V1_COLUMNS: &str = "SELECT run_id, timestamp, body_hash, received_at, duration, emissions_sum,
    emissions_rate, cpu_power, gpu_power, ram_power, cpu_energy, gpu_energy, ram_energy, energy_consumed,
    cpu_utilization_percent, gpu_utilization_percent, ram_utilization_percent, wue, extra";

/// A run's checkpoints, numbered `i` from 1 in time order, with their running totals and the
/// run's row count `n`: the database sums, the caller picks rows (`WHERE` on `i`, `n`).
const CHECKPOINTS: &str = "SELECT * FROM (SELECT ROW_NUMBER() OVER w AS i, COUNT(*) OVER () AS n, timestamp,
    SUM(interval_s) OVER w AS d,
    SUM(COALESCE(energy_consumed, COALESCE(cpu_energy, 0.0) + COALESCE(gpu_energy, 0.0) + COALESCE(ram_energy, 0.0))) OVER w AS e,
    SUM(COALESCE(cpu_energy, 0.0)) OVER w AS c, SUM(COALESCE(gpu_energy, 0.0)) OVER w AS g,
    SUM(COALESCE(ram_energy, 0.0)) OVER w AS r, SUM(COALESCE(emissions_sum, 0.0)) OVER w AS em,
    cpu_power, gpu_power, ram_power, cpu_utilization_percent, gpu_utilization_percent, ram_utilization_percent
    FROM emissions WHERE run_id = $1
    WINDOW w AS (ORDER BY at_us, timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) t";

fn checkpoint_of(r: &AnyRow) -> Result<Checkpoint> {
    let timestamp: String = r.try_get("timestamp")?;
    Ok(Checkpoint {
        file: String::new(),
        line: r.try_get::<i64, _>("i")? as usize,
        timestamp: collect::naive_time(&timestamp),
        task_name: None,
        duration_s: Some(r.try_get("d")?),
        energy_kwh: Some(r.try_get("e")?),
        cpu_energy_kwh: Some(r.try_get("c")?),
        gpu_energy_kwh: Some(r.try_get("g")?),
        ram_energy_kwh: Some(r.try_get("r")?),
        co2_kg_reported: Some(r.try_get("em")?),
        cpu_power_w: r.try_get("cpu_power")?,
        gpu_power_w: r.try_get("gpu_power")?,
        ram_power_w: r.try_get("ram_power")?,
        cpu_utilization_percent: r.try_get("cpu_utilization_percent")?,
        gpu_utilization_percent: r.try_get("gpu_utilization_percent")?,
        ram_utilization_percent: r.try_get("ram_utilization_percent")?,
    })
}

/// A run's totals and the sequence number of its newest change.
fn totals_of(r: &AnyRow, run_id: &str) -> Result<(Totals, i64)> {
    let totals = Totals {
        records: r.try_get::<i64, _>("records")?.max(0) as u64,
        interval_s: r.try_get("sum_interval")?,
        emissions: r.try_get("sum_emissions")?,
        cpu_energy: r.try_get("sum_cpu_energy")?,
        gpu_energy: r.try_get("sum_gpu_energy")?,
        ram_energy: r.try_get("sum_ram_energy")?,
        energy: r.try_get("sum_energy")?,
        last: EmissionIn {
            timestamp: r.try_get::<Option<String>, _>("last_timestamp")?.unwrap_or_default(),
            run_id: run_id.to_string(),
            cpu_power: r.try_get("last_cpu_power")?,
            gpu_power: r.try_get("last_gpu_power")?,
            ram_power: r.try_get("last_ram_power")?,
            cpu_utilization_percent: r.try_get("last_cpu_utilization")?,
            gpu_utilization_percent: r.try_get("last_gpu_utilization")?,
            ram_utilization_percent: r.try_get("last_ram_utilization")?,
            wue: r.try_get("last_wue")?,
            ..Default::default()
        },
    };
    Ok((totals, r.try_get::<Option<i64>, _>("last_seq")?.unwrap_or(0)))
}

fn experiment_of(r: &AnyRow) -> Result<Experiment> {
    let iso: Option<String> = r.try_get("country_iso_code")?;
    let grid = carbon_core::grid::Grid::embedded();
    let country_name = iso.as_deref().and_then(|i| grid.country_name(i)).map(str::to_string);
    Ok(Experiment {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        project_id: r.try_get("project_id")?,
        project: r.try_get("project")?,
        team: r.try_get("team")?,
        country_iso_code: iso,
        country_name,
        region: r.try_get("region")?,
        cloud_provider: r.try_get("cloud_provider")?,
        cloud_region: r.try_get("cloud_region")?,
    })
}

fn run_of(r: &AnyRow) -> Result<(String, RunIn)> {
    Ok((
        r.try_get("id")?,
        RunIn {
            timestamp: r.try_get("timestamp")?,
            experiment_id: r.try_get("experiment_id")?,
            os: r.try_get("os")?,
            python_version: r.try_get("python_version")?,
            codecarbon_version: r.try_get("codecarbon_version")?,
            cpu_count: r.try_get("cpu_count")?,
            cpu_model: r.try_get("cpu_model")?,
            gpu_count: r.try_get("gpu_count")?,
            gpu_model: r.try_get("gpu_model")?,
            longitude: r.try_get("longitude")?,
            latitude: r.try_get("latitude")?,
            region: r.try_get("region")?,
            provider: r.try_get("provider")?,
            ram_total_size: r.try_get("ram_total_size")?,
            tracking_mode: r.try_get("tracking_mode")?,
            extra: r.try_get("extra")?,
        },
    ))
}

fn emission_of(r: &AnyRow) -> Result<EmissionIn> {
    Ok(EmissionIn {
        timestamp: r.try_get("timestamp")?,
        run_id: r.try_get("run_id")?,
        duration: r.try_get("duration")?,
        emissions_sum: r.try_get("emissions_sum")?,
        emissions_rate: r.try_get("emissions_rate")?,
        cpu_power: r.try_get("cpu_power")?,
        gpu_power: r.try_get("gpu_power")?,
        ram_power: r.try_get("ram_power")?,
        cpu_energy: r.try_get("cpu_energy")?,
        gpu_energy: r.try_get("gpu_energy")?,
        ram_energy: r.try_get("ram_energy")?,
        energy_consumed: r.try_get("energy_consumed")?,
        cpu_utilization_percent: r.try_get("cpu_utilization_percent")?,
        gpu_utilization_percent: r.try_get("gpu_utilization_percent")?,
        ram_utilization_percent: r.try_get("ram_utilization_percent")?,
        wue: r.try_get("wue")?,
        extra: r.try_get("extra")?,
    })
}

/// The collected runs' checkpoints, for the catalog's run pages.
impl carbon_core::catalog::RowStore for Store {
    fn checkpoints<'a>(&'a self, run_id: &'a str, max: usize) -> carbon_core::catalog::RowsFuture<'a> {
        Box::pin(async move { Store::checkpoints(self, run_id, max).await.map_err(|e| e.to_string()) })
    }

    fn page<'a>(&'a self, run_id: &'a str, after: usize, limit: usize) -> carbon_core::catalog::RowsFuture<'a> {
        Box::pin(async move { self.checkpoints_page(run_id, after, limit).await.map_err(|e| e.to_string()) })
    }
}
