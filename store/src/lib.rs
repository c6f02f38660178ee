//! Where collected runs are kept: projects, experiments, tokens, runs and their records, in SQLite
//! (WAL mode, one file, no setup) or PostgreSQL (for several replicas), with one schema and one
//! set of queries through sqlx's `Any` driver. Migrations run when a store is opened.
//!
//! Writes go through one writer task that commits whatever is waiting in one transaction (group
//! commit), so a record is acknowledged only once it is durable, and many trackers cost one
//! commit, not one each. Each write is idempotent: a record posted again (a client retrying after
//! a lost answer) lands once.

use carbon_core::collect::{self, EmissionIn, Experiment, RunIn};
use carbon_core::ingest::ParsedFile;
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlStr};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

mod schema;

/// For other replicas' news (PostgreSQL `LISTEN` on [`CHANNEL`]).
pub use sqlx::postgres::PgListener;

/// Writes waiting for the writer, at most; more are refused (the server answers 503).
pub const QUEUE: usize = 4096;
/// Writes committed in one transaction, at most.
const BATCH: usize = 512;
/// The PostgreSQL channel each committed run is announced on (for the other replicas).
pub const CHANNEL: &str = "carbon_dash_runs";

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
    /// Run ids committed by this process since the last [`Store::committed`] took them.
    committed: Arc<(std::sync::Mutex<HashSet<String>>, tokio::sync::Notify)>,
    /// Transactions the writer committed.
    commits: Arc<std::sync::atomic::AtomicU64>,
}

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
        let migrator = Migrator::with_migrations(vec![Migration::new(
            1,
            "collected runs".into(),
            MigrationType::Simple,
            SqlStr::from_static(schema::V1),
            false,
        )]);
        migrator.run(&pool).await?;
        let write_pool = options(1).connect(&url).await?;
        let (writer, jobs) = mpsc::channel(QUEUE);
        let store = Store { pool, write_pool, engine, url, writer, committed: Arc::default(), commits: Arc::default() };
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

    /// The run ids this process committed records of since the last call, once there are some
    /// (for one reader: whoever keeps the views up to date).
    pub async fn committed(&self) -> Vec<String> {
        loop {
            let notified = self.committed.1.notified();
            let ids: Vec<String> = {
                let mut set = self.committed.0.lock().unwrap_or_else(|e| e.into_inner());
                std::mem::take(&mut *set).into_iter().collect()
            };
            if !ids.is_empty() {
                return ids;
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
        let Some(key) = prefix.get(..12) else {
            return refused("give the token's first 12 characters at least, as `token list` shows them");
        };
        let rows = sqlx::query("SELECT hash FROM tokens WHERE project_id = $1 AND prefix = $2 AND revoked_at IS NULL")
            .bind(&p.id)
            .bind(key)
            .fetch_all(&self.pool)
            .await?;
        let mut n = 0;
        for r in rows {
            let hash: String = r.try_get("hash")?;
            // A whole token given: only that one.
            if prefix.len() > 12 && hash != token_hash(prefix) {
                continue;
            }
            n += sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL")
                .bind(now())
                .bind(&hash)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        if n == 0 {
            return refused(format!("no live token of project '{}' starts with '{prefix}'", p.name));
        }
        Ok(n)
    }

    // ---- what a tracker may do ----

    /// The project a live (not revoked) token writes to.
    pub async fn token_project(&self, token: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT project_id FROM tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(token_hash(token))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("project_id")).transpose()?)
    }

    pub async fn experiment_project(&self, experiment_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT project_id FROM experiments WHERE id = $1")
            .bind(experiment_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("project_id")).transpose()?)
    }

    pub async fn run_project(&self, run_id: &str) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT e.project_id FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id = $1")
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get("project_id")).transpose()?)
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
                Ok(results) => self.answer(batch, results),
                Err(e) => {
                    tracing::warn!(error = %e, n = batch.len(), "a batch of writes failed");
                    let message = e.to_string();
                    let results = batch.iter().map(|_| Err(StoreError::NotStored(message.clone()))).collect();
                    self.answer(batch, results);
                }
            }
        }
    }

    fn answer(&self, batch: Vec<Job>, results: Vec<Result<Option<String>>>) {
        let mut runs: Vec<String> = Vec::new();
        for (job, result) in batch.into_iter().zip(results) {
            match job {
                Job::Run(_, tx) => {
                    let _ = tx.send(result.map(Option::unwrap_or_default));
                }
                Job::Emission(e, tx) => {
                    if result.is_ok() {
                        runs.push(e.run_id.clone());
                    }
                    let _ = tx.send(result.map(|_| ()));
                }
            }
        }
        if !runs.is_empty() {
            self.committed.0.lock().unwrap_or_else(|e| e.into_inner()).extend(runs);
            self.committed.1.notify_one();
        }
    }

    /// Writes `batch` in one transaction; one result per job (a run's id for a run). `Err`: the
    /// transaction failed, nothing of the batch is stored.
    async fn write(&self, batch: &[Job]) -> Result<Vec<Result<Option<String>>>> {
        let mut tx = self.write_pool.begin().await?;
        let mut out = Vec::with_capacity(batch.len());
        let mut notify: Vec<&str> = Vec::new();
        for job in batch {
            sqlx::query("SAVEPOINT job").execute(&mut *tx).await?;
            let result = match job {
                Job::Run(r, _) => insert_run(&mut tx, r).await.map(Some),
                Job::Emission(e, _) => insert_emission(&mut tx, e).await.map(|()| None),
            };
            match result {
                Ok(v) => {
                    sqlx::query("RELEASE SAVEPOINT job").execute(&mut *tx).await?;
                    if let Job::Emission(e, _) = job {
                        notify.push(&e.run_id);
                    }
                    out.push(Ok(v));
                }
                Err(e) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT job").execute(&mut *tx).await?;
                    sqlx::query("RELEASE SAVEPOINT job").execute(&mut *tx).await?;
                    out.push(Err(e));
                }
            }
        }
        if self.engine == Engine::Postgres {
            notify.sort_unstable();
            notify.dedup();
            for run in notify {
                // Delivered to the other replicas when (and only if) the transaction commits.
                sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(run).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    // ---- reading collected runs back ----

    /// Collected runs as the catalog holds files: every run, or those of `only`. Runs without
    /// records yet are left out (they show once their first record lands). Every run's records
    /// are read in one ordered pass, one run at a time held as rows.
    pub async fn run_files(&self, only: Option<&[String]>) -> Result<Vec<ParsedFile>> {
        use futures_util::TryStreamExt;
        let experiments: HashMap<String, Experiment> =
            self.experiments(None).await?.into_iter().map(|e| (e.id.clone(), e)).collect();
        let file = |id: &str, run: &RunIn, mut list: Vec<EmissionIn>| -> Option<ParsedFile> {
            let exp = experiments.get(&run.experiment_id)?;
            if list.is_empty() {
                return None;
            }
            collect::sort_records(&mut list);
            Some(collect::run_file(exp, id, run, &list))
        };
        let mut out = Vec::new();
        match only {
            None => {
                let mut runs: HashMap<String, RunIn> = HashMap::new();
                for r in &sqlx::query(RUN_COLUMNS).fetch_all(&self.pool).await? {
                    let (id, run) = run_of(r)?;
                    runs.insert(id, run);
                }
                let q = format!("{EMISSION_COLUMNS} ORDER BY run_id, received_at");
                let mut rows = sqlx::query(sqlx::AssertSqlSafe(q)).fetch(&self.pool);
                let mut current: Option<(String, Vec<EmissionIn>)> = None;
                while let Some(row) = rows.try_next().await? {
                    let e = emission_of(&row)?;
                    match &mut current {
                        Some((id, list)) if *id == e.run_id => list.push(e),
                        _ => {
                            if let Some((id, list)) = current.take() {
                                out.extend(runs.get(&id).and_then(|run| file(&id, run, list)));
                            }
                            current = Some((e.run_id.clone(), vec![e]));
                        }
                    }
                }
                if let Some((id, list)) = current {
                    out.extend(runs.get(&id).and_then(|run| file(&id, run, list)));
                }
            }
            Some(ids) => {
                for id in ids {
                    let one_run = format!("{RUN_COLUMNS} WHERE id = $1");
                    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(one_run)).bind(id).fetch_optional(&self.pool).await?
                    else {
                        continue;
                    };
                    let (_, run) = run_of(&r)?;
                    let q = format!("{EMISSION_COLUMNS} WHERE run_id = $1 ORDER BY received_at");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_all(&self.pool).await?;
                    let list = rows.iter().map(emission_of).collect::<Result<Vec<_>>>()?;
                    out.extend(file(id, &run, list));
                }
            }
        }
        Ok(out)
    }

    /// Every run of `project` as one CodeCarbon `emissions.csv` (header, then each run's rows
    /// with its running totals).
    pub async fn export_csv(&self, project: &str) -> Result<String> {
        let p = self.need_project(project).await?;
        let experiments: HashMap<String, Experiment> =
            self.experiments(Some(&p.id)).await?.into_iter().map(|e| (e.id.clone(), e)).collect();
        let q = format!(
            "{RUN_COLUMNS} WHERE experiment_id IN (SELECT id FROM experiments WHERE project_id = $1) ORDER BY timestamp, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(q)).bind(&p.id).fetch_all(&self.pool).await?;
        let mut out = String::from(collect::CSV_HEADER);
        out.push('\n');
        for r in &rows {
            let (id, run) = run_of(r)?;
            let Some(exp) = experiments.get(&run.experiment_id) else { continue };
            let q = format!("{EMISSION_COLUMNS} WHERE run_id = $1 ORDER BY received_at");
            let rows = sqlx::query(sqlx::AssertSqlSafe(q)).bind(&id).fetch_all(&self.pool).await?;
            let mut list = rows.iter().map(emission_of).collect::<Result<Vec<_>>>()?;
            collect::sort_records(&mut list);
            collect::write_rows(&mut out, exp, &id, &run, &list);
        }
        Ok(out)
    }

    /// Transactions the writer has committed (fewer than writes when many wait at once).
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many runs and records are stored (for the console and tests).
    pub async fn counts(&self) -> Result<(i64, i64)> {
        let runs: i64 = sqlx::query("SELECT COUNT(*) AS n FROM runs").fetch_one(&self.pool).await?.try_get("n")?;
        let records: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM emissions").fetch_one(&self.pool).await?.try_get("n")?;
        Ok((runs, records))
    }

    /// Closes the pool: writes still waiting fail (their callers get an error, never a 201).
    pub async fn close(self) {
        let Store { pool, writer, .. } = self;
        drop(writer);
        pool.close().await;
    }
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

/// A record, once: the same record again is a retry (stored once); another record with the same
/// run and timestamp is refused, never silently dropped.
async fn insert_emission(tx: &mut Tx, e: &EmissionIn) -> Result<()> {
    let hash = content_hash(e);
    let done = sqlx::query(
        "INSERT INTO emissions (run_id, timestamp, body_hash, received_at, duration, emissions_sum, emissions_rate,
            cpu_power, gpu_power, ram_power, cpu_energy, gpu_energy, ram_energy, energy_consumed,
            cpu_utilization_percent, gpu_utilization_percent, ram_utilization_percent, wue, extra)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         ON CONFLICT (run_id, timestamp) DO NOTHING",
    )
    .bind(&e.run_id)
    .bind(&e.timestamp)
    .bind(&hash)
    .bind(now())
    .bind(e.duration)
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
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let stored: String = sqlx::query("SELECT body_hash FROM emissions WHERE run_id = $1 AND timestamp = $2")
        .bind(&e.run_id)
        .bind(&e.timestamp)
        .fetch_one(&mut **tx)
        .await?
        .try_get("body_hash")?;
    if stored == hash {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "run {} has another record at {} already: a record's timestamp is its identity",
            e.run_id, e.timestamp
        )))
    }
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
    cpu_model, gpu_count, gpu_model, longitude, latitude, region, provider, ram_total_size, tracking_mode, extra FROM runs";

const EMISSION_COLUMNS: &str = "SELECT run_id, timestamp, duration, emissions_sum, emissions_rate, cpu_power,
    gpu_power, ram_power, cpu_energy, gpu_energy, ram_energy, energy_consumed, cpu_utilization_percent,
    gpu_utilization_percent, ram_utilization_percent, wue, extra FROM emissions";

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
