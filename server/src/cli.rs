//! Command line: raw flags, then the validated settings the server runs with.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "carbon-dash", version, about = "Dashboard for the carbon footprint of ML runs logged by CodeCarbon")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard for the CodeCarbon logs under DIR (or the built-in demo logs).
    Serve {
        /// Folder searched recursively for *.csv, *.csv.bak and *.csv_N.bak. Without it: the demo
        /// logs (with --collect: collected runs only).
        dir: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Folder with the built browser assets (pkg/ with the wasm, JS and CSS).
        #[arg(long, env = "CARBON_DASH_SITE_ROOT", default_value = "site")]
        site_root: PathBuf,
        /// Multiply the energy of cloud runs that carry no `pue` column by the provider's published PUE.
        #[arg(long)]
        apply_provider_pue: bool,
        /// Hosted mode: no route writes anything (the default of the container image). Upload is
        /// off unless --allow-upload-preview.
        #[arg(long)]
        read_only: bool,
        /// With --read-only: visitors may still upload files for a private, in-memory preview
        /// (never saved).
        #[arg(long, requires = "read_only")]
        allow_upload_preview: bool,
        #[command(flatten)]
        upload: UploadArgs,
        /// Seconds a request may take, body included, before it is answered 408 (uploads: 20 times
        /// as long).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        request_timeout: u64,
        /// Serve everything under this path, for a reverse proxy that forwards e.g. /carbon/… as is.
        #[arg(long, default_value = "", value_parser = parse_base_path)]
        base_path: String,
        /// Request logs as text lines or as one JSON object a line (RUST_LOG sets the level).
        #[arg(long, env = "CARBON_DASH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Seconds a client has to send its request line and headers before it is disconnected.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        header_timeout: u64,
        /// Seconds a client may take nothing of its answer before it is disconnected.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        write_timeout: u64,
        /// Connections one client address (an IPv6 /64) may hold at once; more are answered 503.
        /// Behind a reverse proxy every client has the proxy's address: raise it, or 0 for no
        /// limit per address (the proxy then limits its clients).
        #[arg(long, default_value_t = crate::conn::MAX_CONNECTIONS_PER_CLIENT as u64)]
        max_connections_per_client: u64,
        #[command(flatten)]
        cache: CacheArgs,
        /// Also answer to this host name (repeatable). On a loopback address the server answers
        /// to localhost, 127.0.0.1 and [::1] only (against DNS rebinding); elsewhere to any name
        /// unless names are given here.
        #[arg(long = "allow-host", value_name = "NAME")]
        allow_hosts: Vec<String>,
        /// TLS ends in a proxy in front of this server: the session cookie is marked Secure.
        #[arg(long)]
        behind_tls: bool,
        #[command(flatten)]
        db: DbArg,
        /// Take runs from CodeCarbon trackers (their API output: POST /runs, /emissions) into
        /// --db, and show them beside the logs. Works with --read-only too.
        #[arg(long)]
        collect: bool,
        /// Posts a second one tracker token may make (twice as many in a burst); more get 429.
        /// 0: no limit.
        #[arg(long, default_value_t = 100)]
        collect_rate: u32,
        /// Keep collected records this long (e.g. 90d, 36h; off by default): older ones are
        /// folded, hourly, into a few rows per run that keep their sums (totals stay exact to the
        /// last record; the run's chart draws its old part coarser; the export says which rows
        /// are folded), so the database grows with runs, not records.
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        keep_records: Option<std::time::Duration>,
        #[command(flatten)]
        live: LiveArgs,
        #[command(flatten)]
        mlflow: Box<MlflowArgs>,
        #[command(flatten)]
        auth: Box<AuthArgs>,
        #[command(flatten)]
        alerts: Box<AlertArgs>,
    },
    /// Projects of collected runs (the unit a token writes to).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Experiments of a project: where its runs use electricity.
    #[command(subcommand)]
    Experiment(ExperimentCommand),
    /// Tokens trackers post with (their api_key), and read tokens for scripts.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Who sees which team's runs, beside their groups (servers with --auth).
    #[command(subcommand)]
    Member(MemberCommand),
    /// Carbon budgets per team or project (month or quarter); `budgets.toml` at the logs folder's
    /// top sets them too, for setups without a database.
    #[command(subcommand)]
    Budget(BudgetCommand),
    /// People signed in with OpenID Connect: list them, or sign one out everywhere (their groups
    /// are read at sign-in, so someone who left a group is signed out to lose it at once).
    #[command(subcommand)]
    Session(SessionCommand),
    /// Run a command and measure its energy (GPU: NVML; CPU: RAPL, else the load; RAM: CodeCarbon's
    /// model), writing a checkpoint row to CodeCarbon's emissions.csv every interval.
    Track(Box<TrackArgs>),
    /// Write a report of the runs under DIR (all of them, a project, an experiment, a team or one
    /// run): a self-contained HTML page, or its LaTeX, Markdown, model-card YAML or BibTeX alone.
    Report(ReportArgs),
    /// Write a project's collected runs as one CodeCarbon emissions.csv.
    Export {
        #[arg(long)]
        project: String,
        /// File to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Logs folder, read as `serve` reads it (metrics files beside the logs included).
    pub dir: PathBuf,
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long)]
    pub experiment: Option<String>,
    #[arg(long)]
    pub team: Option<String>,
    /// One run.
    #[arg(long)]
    pub run: Option<String>,
    /// The metric of the efficiency section (the one most runs have by default).
    #[arg(long)]
    pub metric: Option<String>,
    /// html, tex, md, yaml or bib.
    #[arg(long, default_value = "html")]
    pub format: String,
    /// File to write (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Live grid data. Off by default: without --live or a token nothing leaves the machine and
/// every figure is the embedded annual one.
#[derive(clap::Args)]
pub struct LiveArgs {
    /// Fetch Great Britain's live grid and 48-hour forecast (UK Carbon Intensity API, no key).
    #[arg(long, env = "CARBON_DASH_LIVE")]
    pub live: bool,
    /// Electricity Maps API token: the grid now worldwide, and forecasts when the plan includes
    /// them. Prefer the variable: a command line is visible to other users of the machine.
    #[arg(long, env = "ELECTRICITYMAPS_TOKEN", hide_env_values = true)]
    pub electricitymaps_token: Option<String>,
    /// Electricity Maps' API base (a proxy's); /v4 is added unless it ends in /v3 or /v4.
    #[arg(long, env = "CARBON_DASH_ELECTRICITYMAPS_URL", default_value = carbon_live::ELECTRICITYMAPS_URL)]
    pub electricitymaps_url: String,
    /// The UK Carbon Intensity API's base (a proxy's).
    #[arg(long, env = "CARBON_DASH_UK_INTENSITY_URL", default_value = carbon_live::UK_INTENSITY_URL)]
    pub uk_intensity_url: String,
}

impl std::fmt::Debug for LiveArgs {
    /// Without the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.config().fmt(f)
    }
}

impl LiveArgs {
    /// Flags given that do nothing without another, each with why (said at start).
    pub fn ignored(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.live && self.uk_intensity_url != carbon_live::UK_INTENSITY_URL {
            out.push("--uk-intensity-url is ignored: the UK Carbon Intensity API is read only with --live".into());
        }
        let token = self.electricitymaps_token.as_ref().is_some_and(|t| !t.trim().is_empty());
        if !token && self.electricitymaps_url != carbon_live::ELECTRICITYMAPS_URL {
            out.push(
                "--electricitymaps-url is ignored: Electricity Maps is read only with a token (ELECTRICITYMAPS_TOKEN)"
                    .into(),
            );
        }
        out
    }

    pub fn config(&self) -> carbon_live::Config {
        carbon_live::Config {
            electricitymaps_token: self.electricitymaps_token.clone().filter(|t| !t.trim().is_empty()),
            electricitymaps_url: self.electricitymaps_url.clone(),
            uk: self.live,
            uk_url: self.uk_intensity_url.clone(),
            timeout: carbon_live::TIMEOUT,
        }
    }
}

/// `carbon-dash track [options] -- <command> [args…]`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrackArgs {
    /// The project_name column.
    #[arg(long, default_value = "codecarbon")]
    pub project: String,
    /// The experiment_id column (and what is posted with --api-endpoint).
    #[arg(long, visible_alias = "experiment-id", default_value = carbon_track::DEFAULT_EXPERIMENT)]
    pub experiment: String,
    /// Folder for emissions.csv (appended to, as CodeCarbon does).
    #[arg(long, default_value = ".")]
    pub output: PathBuf,
    /// Time between checkpoint rows: 10s, 1s, 500ms, 2m (a bare number is seconds).
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// ISO 3166 alpha-3 code of the country whose grid powers the machine (else a guess from
    /// the time zone, said so).
    #[arg(long)]
    pub country: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long, requires = "cloud_region")]
    pub cloud_provider: Option<String>,
    #[arg(long, requires = "cloud_provider")]
    pub cloud_region: Option<String>,
    /// Power usage effectiveness of the data centre: energies are multiplied by it.
    #[arg(long, default_value_t = 1.0, value_parser = parse_pue)]
    pub pue: f64,
    /// machine: the whole machine's CPU and RAM; process: the command and its children's.
    #[arg(long, value_enum, default_value_t = TrackingMode::Machine)]
    pub tracking_mode: TrackingMode,
    /// The CPU's TDP in W, for the estimate when RAPL cannot be read (default: 4 W a thread,
    /// CodeCarbon's figure for a CPU model it does not know).
    #[arg(long, value_parser = parse_tdp)]
    pub cpu_tdp: Option<f64>,
    /// Also post each interval to this collection API (CodeCarbon's api_endpoint), with --api-key.
    #[arg(long, env = "CODECARBON_API_ENDPOINT", requires = "api_key")]
    pub api_endpoint: Option<String>,
    /// The token (better from CODECARBON_API_KEY: a command line is visible to other users).
    #[arg(long, env = "CODECARBON_API_KEY", hide_env_values = true, requires = "api_endpoint")]
    pub api_key: Option<String>,
    /// The command to run and measure.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum TrackingMode {
    Machine,
    Process,
}

impl TrackArgs {
    pub fn options(&self) -> carbon_track::Options {
        carbon_track::Options {
            project: self.project.clone(),
            experiment_id: self.experiment.clone(),
            output: self.output.clone(),
            interval: self.interval,
            country: self.country.clone(),
            region: self.region.clone(),
            cloud_provider: self.cloud_provider.clone(),
            cloud_region: self.cloud_region.clone(),
            pue: self.pue,
            mode: match self.tracking_mode {
                TrackingMode::Machine => carbon_track::Mode::Machine,
                TrackingMode::Process => carbon_track::Mode::Process,
            },
            cpu_tdp: self.cpu_tdp,
            api: match (&self.api_endpoint, &self.api_key) {
                (Some(endpoint), Some(key)) => Some(carbon_track::Api { endpoint: endpoint.clone(), key: key.clone() }),
                _ => None,
            },
            ..Default::default()
        }
    }
}

fn parse_pue(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (1.0..=3.0).contains(&x) => Ok(x),
        _ => Err(format!("'{s}': a PUE is a number from 1.0 to 3.0 (1.1 for a good data centre)")),
    }
}

fn parse_tdp(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (1.0..=2000.0).contains(&x) => Ok(x),
        _ => Err(format!("'{s}': give the CPU's TDP in W, e.g. 85")),
    }
}

/// `10s`, `500ms`, `2m`, `1h`, `1.5` (seconds): at least 100 ms.
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| c.is_ascii_alphabetic()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let x: f64 = num.trim().parse().map_err(|_| format!("'{s}' is not an interval: give e.g. 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => x / 1000.0,
        "s" => x,
        "m" | "min" => x * 60.0,
        "h" => x * 3600.0,
        _ => return Err(format!("'{s}': the unit is ms, s, m or h")),
    };
    if !(0.1..=86_400.0).contains(&secs) {
        return Err(format!("'{s}': give an interval from 100ms to 24h"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Where collected runs are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArg {
    /// A SQLite file (made when missing; WAL mode) or a postgres:// URL. The same value for
    /// `serve` and the project, experiment and token commands.
    #[arg(long, env = "CARBON_DASH_DB", default_value = DEFAULT_DB)]
    pub db: String,
}

/// The store's default: a file in the folder the command runs in (beside the logs folder when
/// `serve ./logs` runs from its parent).
pub const DEFAULT_DB: &str = "carbon-dash.db";

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project, optionally in a team (as a logs folder's first level is).
    Add {
        name: String,
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the projects: name, team, id.
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Create an experiment; prints its `experiment_id` line for .codecarbon.config.
    Add {
        #[arg(long)]
        project: String,
        #[arg(long)]
        name: String,
        /// Three-letter ISO code of the country whose grid the runs use (e.g. FRA).
        #[arg(long)]
        country: Option<String>,
        /// Region within the country, as CodeCarbon names it (e.g. california).
        #[arg(long)]
        region: Option<String>,
        /// Cloud provider (aws, gcp, azure, …), with --cloud-region.
        #[arg(long)]
        cloud_provider: Option<String>,
        #[arg(long)]
        cloud_region: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the experiments: project, name, place, and the experiment_id line.
    List {
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token, printed once: for a project's trackers (--project; as the lines for
    /// .codecarbon.config), or for scripts that read the API (--read with --team or --all; sent
    /// as `Authorization: Bearer …` to a server with --auth).
    Add {
        #[arg(long, required_unless_present = "read", conflicts_with = "read")]
        project: Option<String>,
        /// A read token: sees what a member of --team sees (or every team, with --all).
        #[arg(long)]
        read: bool,
        #[arg(long, requires = "read", conflicts_with = "all")]
        team: Option<String>,
        #[arg(long, requires = "read")]
        all: bool,
        /// The address trackers reach this server at (the api_endpoint line).
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        endpoint: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// The tokens of a project (or the read tokens, with --read): their first characters, when
    /// made, whether revoked.
    List {
        #[arg(long, required_unless_present = "read", conflicts_with = "read")]
        project: Option<String>,
        #[arg(long)]
        read: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke a token (its first 12 characters, as listed, or the whole token): it stops working
    /// at once. Read tokens (cdr_…) need no --project.
    Revoke {
        #[arg(long)]
        project: Option<String>,
        token: String,
        #[command(flatten)]
        db: DbArg,
    },
}

/// Where budget alerts go.
#[derive(Clone, clap::Args)]
pub struct AlertArgs {
    /// Post an alert here when a budget's spent or projected amount crosses a threshold
    /// (repeatable; JSON with a `text` field Slack and Teams show). Once per threshold, budget,
    /// period and webhook, kept in --db; retried with back-off while the receiver fails. A
    /// webhook URL holds its secret: prefer the variable (comma-separated), which others on the
    /// machine cannot read in the process list.
    #[arg(
        long = "alert-webhook",
        value_name = "URL",
        env = "CARBON_DASH_ALERT_WEBHOOKS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub alert_webhooks: Vec<String>,
}

/// Without the URLs (they hold their secrets).
impl std::fmt::Debug for AlertArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlertArgs {{ {} webhooks }}", self.alert_webhooks.len())
    }
}

#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Set (or replace) the budget of a team or a project for a period.
    Set {
        #[arg(long, required_unless_present = "project", conflicts_with = "project")]
        team: Option<String>,
        #[arg(long)]
        project: Option<String>,
        /// Recomputed CO₂e, kg.
        #[arg(long, required_unless_present = "energy_kwh", conflicts_with = "energy_kwh")]
        co2_kg: Option<f64>,
        #[arg(long)]
        energy_kwh: Option<f64>,
        /// month or quarter.
        #[arg(long, default_value = "month", value_parser = ["month", "quarter"])]
        period: String,
        /// Percent of the amount an alert fires at.
        #[arg(long, value_delimiter = ',', default_values_t = [80.0, 100.0])]
        thresholds: Vec<f64>,
        #[command(flatten)]
        db: DbArg,
    },
    /// The budgets set in the store.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove the budgets of a team or project (of one period, with --period).
    Remove {
        #[arg(long, required_unless_present = "project", conflicts_with = "project")]
        team: Option<String>,
        #[arg(long)]
        project: Option<String>,
        #[arg(long, value_parser = ["month", "quarter"])]
        period: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Signed-in people: sessions, and when the last one ends.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// End every session of a person (the e-mail address, or subject, they sign in with).
    End {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        db: DbArg,
    },
}

/// Team members kept in the store, beside the teams people's groups name.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Let a person (the e-mail address, or subject, they sign in with) see a team's runs.
    Add {
        #[arg(long)]
        team: String,
        #[arg(long)]
        user: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Members: team, person, when added.
    List {
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    Remove {
        #[arg(long)]
        team: String,
        #[arg(long)]
        user: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Limits of browser uploads.
#[derive(Debug, Clone, clap::Args)]
pub struct UploadArgs {
    /// Minutes an upload session lives after its last upload.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub session_minutes: u64,
    /// Largest uploaded file, in MB (10^6 bytes).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_file_mb: u64,
    /// Largest upload request, and most one session holds, in MB.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_request_mb: u64,
    /// Upload sessions held at once (one client address an eighth of them at most; its new
    /// session replaces its oldest idle one, and a full server ends the session idle longest).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_sessions: u64,
}

impl UploadArgs {
    /// The policy for a server with these flags, logs from `source`.
    pub fn policy(&self, source: &Source, read_only: bool, allow_preview: bool) -> crate::upload::UploadPolicy {
        let disabled_reason = (read_only && !allow_preview).then(|| {
            "This server is read-only: upload is off. Run carbon-dash serve on your own machine to look at your files, \
             or ask for --allow-upload-preview."
                .to_string()
        });
        let save_root = match source {
            Source::Dir(d) if !read_only => Some(d.clone()),
            _ => None,
        };
        crate::upload::UploadPolicy {
            disabled_reason,
            save_root,
            max_file_bytes: (self.max_file_mb * 1_000_000) as usize,
            max_request_bytes: (self.max_request_mb * 1_000_000) as usize,
            ttl: std::time::Duration::from_secs(self.session_minutes * 60),
            max_sessions: self.max_sessions as usize,
            max_sessions_per_client: (self.max_sessions as usize / 8).max(1),
        }
    }
}

/// Where parsed files are kept between starts.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Folder for the parse cache (one file per logs folder; never inside the logs). Default:
    /// $XDG_CACHE_HOME/carbon-dash, else ~/.cache/carbon-dash.
    #[arg(long, env = "CARBON_DASH_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Parse every file at start, and keep no cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The cache file for the logs folder `dir`, unless caching is off or there is no place for it.
    pub fn file_for(&self, dir: &std::path::Path) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let base = self
            .cache_dir
            .clone()
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("carbon-dash")))
            .or_else(|| var("HOME").map(|h| h.join(".cache").join("carbon-dash")))?;
        Some(carbon_core::parse_cache::cache_file(&base, dir))
    }
}

/// `/carbon/` → `/carbon`; `/` → empty. Letters, digits, `-`, `_`, `.` and `/` only.
pub fn parse_base_path(s: &str) -> Result<String, String> {
    let trimmed = s.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let ok = trimmed.starts_with('/')
        && !trimmed.contains("//")
        && !trimmed.split('/').any(|seg| seg == "." || seg == "..")
        && trimmed.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(format!("'{s}' is not a base path: give one like /carbon (letters, digits, - _ . and /)"))
    }
}

/// An MLflow tracking server to read runs from.
#[derive(Debug, Clone, clap::Args)]
pub struct MlflowArgs {
    /// An MLflow tracking server (http://host:5000) whose runs' metrics and params join the
    /// logs' runs, read through its REST API; signs in with MLFLOW_TRACKING_TOKEN, or
    /// MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, when set.
    #[arg(long, value_name = "URL", env = "CARBON_DASH_MLFLOW_URL")]
    pub mlflow_url: Option<String>,
    /// Seconds between reads of --mlflow-url (10 at least; doubling to 10 minutes while it fails).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(10..))]
    pub mlflow_every: u64,
}

/// Who may see what. Without `--auth`, everyone who reaches the server sees every run.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// How people sign in. `oidc`: with the organisation's OpenID Connect provider (Keycloak,
    /// Okta, Entra ID, Google, Dex…). `proxy`: a trusted reverse proxy (oauth2-proxy, nginx
    /// auth_request, an SSO gateway) signs people in and names them and their groups in headers.
    /// Each person sees the runs of the teams their groups name, and of those `carbon-dash member
    /// add` put them in; scripts read with `carbon-dash token add --read` tokens.
    #[arg(long, value_enum)]
    pub auth: Option<AuthMode>,
    /// The provider's issuer URL (its /.well-known/openid-configuration is read at start).
    #[arg(long, value_name = "URL", required_if_eq("auth", "oidc"))]
    pub oidc_issuer: Option<String>,
    #[arg(long, value_name = "ID", required_if_eq("auth", "oidc"))]
    pub oidc_client_id: Option<String>,
    /// A file holding the client secret (never on the command line, which others can read).
    #[arg(long, value_name = "FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The claim listing a person's groups (in the ID token, else from the userinfo endpoint).
    #[arg(long, value_name = "NAME", default_value = "groups")]
    pub oidc_groups_claim: String,
    /// The address people reach this server at, base path included (e.g.
    /// https://carbon.example.org/carbon): the provider sends them back to its /signin/callback.
    #[arg(long, value_name = "URL", required_if_eq("auth", "oidc"))]
    pub public_url: Option<String>,
    /// How long a sign-in lasts (e.g. 12h, 7d, 30m).
    #[arg(long, value_name = "AGE", default_value = "12h", value_parser = parse_lifetime)]
    pub session_lifetime: std::time::Duration,
    /// The header naming the person signed in.
    #[arg(long, default_value = "X-Forwarded-Email", value_name = "HEADER")]
    pub auth_proxy_user_header: String,
    /// The header listing their groups (commas or spaces between them).
    #[arg(long, default_value = "X-Forwarded-Groups", value_name = "HEADER")]
    pub auth_proxy_groups_header: String,
    /// The proxy's addresses (CIDR, comma-separated): headers from anywhere else are refused.
    #[arg(long, value_name = "CIDR[,CIDR…]", value_delimiter = ',', required_if_eq("auth", "proxy"))]
    pub auth_proxy_trusted: Vec<ipnet::IpNet>,
    /// Members of this group see every team's runs.
    #[arg(long, value_name = "NAME")]
    pub admin_group: Option<String>,
    /// Show every run to whoever reaches this server, with no sign-in: needed to listen on an
    /// address other than loopback without --auth.
    #[arg(long, conflicts_with = "auth")]
    pub public: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    Oidc,
    Proxy,
}

/// A session's lifetime: `30s` to `90d` (seconds for tests of expiry).
pub fn parse_lifetime(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (n, unit) = t.split_at(t.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| format!("'{s}': give e.g. 12h, 7d, 30m or 90s"))?;
    let secs = match unit {
        "d" => n.saturating_mul(86_400),
        "h" => n.saturating_mul(3_600),
        "m" => n.saturating_mul(60),
        "s" => n,
        _ => return Err(format!("'{s}': the unit is d, h, m or s")),
    };
    if !(1..=90 * 86_400).contains(&secs) {
        return Err(format!("'{s}': give a lifetime from 1s to 90d"));
    }
    Ok(std::time::Duration::from_secs(secs))
}

impl AuthArgs {
    /// Why a server on `addr` must not start as asked, if so: on an address others reach, it
    /// shows runs only to people signed in, or to everyone when told so.
    pub fn refusal(&self, addr: std::net::SocketAddr) -> Option<String> {
        (!addr.ip().is_loopback() && self.auth.is_none() && !self.public).then(|| {
            format!(
                "refusing to serve every run to whoever reaches {addr} without sign-in: add --auth oidc (with \
                 --oidc-issuer, --oidc-client-id, --public-url) or --auth proxy --auth-proxy-trusted <its address> \
                 to sign people in, or --public to show every run to everyone"
            )
        })
    }

    /// Flags given that do nothing with the chosen `--auth`, each with why (said at start).
    pub fn ignored(&self) -> Vec<String> {
        let mut out = Vec::new();
        let oidc = self.auth == Some(AuthMode::Oidc);
        for (set, flag) in [
            (self.oidc_issuer.is_some(), "--oidc-issuer"),
            (self.oidc_client_id.is_some(), "--oidc-client-id"),
            (self.oidc_client_secret_file.is_some(), "--oidc-client-secret-file"),
            (self.public_url.is_some(), "--public-url"),
        ] {
            if set && !oidc {
                out.push(format!("{flag} is ignored: it is for --auth oidc"));
            }
        }
        if !self.auth_proxy_trusted.is_empty() && self.auth != Some(AuthMode::Proxy) {
            out.push("--auth-proxy-trusted is ignored: it is for --auth proxy".into());
        }
        if self.admin_group.is_some() && self.auth.is_none() {
            out.push("--admin-group is ignored: without --auth everyone sees every team".into());
        }
        out
    }

    /// How people sign in, with the store that keeps members, read tokens and sessions. OpenID
    /// Connect reads the provider's configuration and keys now.
    pub async fn auth(&self, store: Option<carbon_store::Store>, base_path: &str) -> anyhow::Result<crate::auth::Auth> {
        use crate::auth::{Auth, Mode};
        let mode = match self.auth {
            None => return Ok(Auth::default()),
            Some(AuthMode::Proxy) => {
                let header = |h: &str| {
                    axum::http::HeaderName::from_bytes(h.as_bytes())
                        .map_err(|_| anyhow::anyhow!("'{h}' is not a header name"))
                };
                Mode::Proxy(crate::auth::Proxy {
                    user_header: header(&self.auth_proxy_user_header)?,
                    groups_header: header(&self.auth_proxy_groups_header)?,
                    trusted: self.auth_proxy_trusted.clone(),
                })
            }
            Some(AuthMode::Oidc) => {
                let need = |v: &Option<String>, flag: &str| {
                    v.clone()
                        .filter(|v| !v.trim().is_empty())
                        .ok_or_else(|| anyhow::anyhow!("--auth oidc needs {flag}"))
                };
                let secret = match &self.oidc_client_secret_file {
                    Some(f) => Some(
                        std::fs::read_to_string(f)
                            .map_err(|e| anyhow::anyhow!("--oidc-client-secret-file {}: {e}", f.display()))?
                            .trim()
                            .to_string(),
                    ),
                    None => None,
                };
                let settings = crate::oidc::Settings {
                    issuer: need(&self.oidc_issuer, "--oidc-issuer")?,
                    client_id: need(&self.oidc_client_id, "--oidc-client-id")?,
                    client_secret: secret,
                    public_url: need(&self.public_url, "--public-url")?,
                    base_path: base_path.to_string(),
                    groups_claim: self.oidc_groups_claim.clone(),
                    session_lifetime: self.session_lifetime,
                };
                Mode::Oidc(std::sync::Arc::new(crate::oidc::Oidc::discover(settings).await?))
            }
        };
        let store =
            store.ok_or_else(|| anyhow::anyhow!("sign-in needs the store (--db) for members, tokens and sessions"))?;
        Ok(Auth { mode, admin_group: self.admin_group.clone(), store: Some(store) })
    }
}

/// Where the logs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Demo,
    Dir(PathBuf),
}

/// Settings checked before anything starts.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub source: Source,
    pub addr: SocketAddr,
    pub site_root: PathBuf,
    /// The browser assets are present: without them pages still work, without interactivity.
    pub hydration_assets: bool,
}

impl ServeSettings {
    pub fn from_args(dir: Option<PathBuf>, addr: SocketAddr, site_root: PathBuf) -> anyhow::Result<ServeSettings> {
        let source = match dir {
            None => Source::Demo,
            Some(d) if d.is_dir() => Source::Dir(d),
            Some(d) if d.exists() => {
                anyhow::bail!("{} is not a folder: give the folder that holds the CSV logs", d.display())
            }
            Some(d) => anyhow::bail!("{}: no such folder", d.display()),
        };
        let hydration_assets = site_root.join("pkg").join(format!("{}.js", app::OUTPUT_NAME)).is_file();
        Ok(ServeSettings { source, addr, site_root, hydration_assets })
    }
}

/// `90d`, `36h`, `45m`: an age, at least an hour.
pub fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("'{s}': give a number of days, hours or minutes, e.g. 90d, 36h, 90m");
    let t = s.trim();
    let (n, unit) = t.split_at(t.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        _ => return Err(bad()),
    }
    .filter(|s| *s < 100 * 365 * 86_400)
    .ok_or_else(bad)?;
    if secs < 3_600 {
        return Err(format!("'{s}': keep records an hour at least"));
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn keep_records_takes_days_hours_or_minutes_an_hour_at_least() {
        assert_eq!(parse_age("90d"), Ok(std::time::Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_age("36h"), Ok(std::time::Duration::from_secs(36 * 3_600)));
        assert_eq!(parse_age("90m"), Ok(std::time::Duration::from_secs(5_400)));
        for bad in ["90", "d", "-1d", "1.5d", "30m", "99999999999999999d", "", "9y"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        let cli = Cli::parse_from(["carbon-dash", "serve", "--collect", "--keep-records", "2d"]);
        let Command::Serve { keep_records, .. } = cli.command else { panic!("serve") };
        assert_eq!(keep_records, Some(std::time::Duration::from_secs(172_800)));
    }

    #[test]
    fn read_only_turns_upload_off_unless_previews_are_allowed_and_never_saves() {
        let cli = Cli::parse_from(["carbon-dash", "serve", "logs", "--read-only", "--session-minutes", "5"]);
        let Command::Serve { read_only, allow_upload_preview, upload, .. } = cli.command else { panic!("serve") };
        let off = upload.policy(&Source::Dir("logs".into()), read_only, allow_upload_preview);
        assert!(off.disabled_reason.is_some_and(|r| r.contains("read-only")));
        assert_eq!((off.save_root, off.ttl.as_secs()), (None, 300));
        let preview = upload.policy(&Source::Dir("logs".into()), true, true);
        assert!(preview.disabled_reason.is_none() && preview.save_root.is_none());
        assert!(Cli::try_parse_from(["carbon-dash", "serve", "--allow-upload-preview"]).is_err(), "needs --read-only");
    }

    /// `carbon-dash serve ARGS`, parsed.
    fn serve(args: &[&str]) -> Command {
        Cli::parse_from([&["carbon-dash", "serve"], args].concat()).command
    }

    #[test]
    fn a_server_others_reach_signs_people_in_or_says_it_is_public() {
        let auth = |args: &[&str]| {
            let Command::Serve { auth, .. } = serve(args) else { panic!("serve") };
            auth
        };
        let open: std::net::SocketAddr = "0.0.0.0:3000".parse().expect("addr");
        assert!(auth(&[]).refusal(open).is_some_and(|why| why.contains("--public")));
        assert!(auth(&["--public"]).refusal(open).is_none());
        assert!(auth(&["--auth", "proxy", "--auth-proxy-trusted", "10.0.0.1/32"]).refusal(open).is_none());
        assert!(auth(&[]).refusal("127.0.0.1:3000".parse().expect("addr")).is_none(), "loopback as today");
        assert!(auth(&[]).refusal("[::1]:3000".parse().expect("addr")).is_none());
        assert!(Cli::try_parse_from(["carbon-dash", "serve", "--public", "--auth", "proxy"]).is_err());
        assert!(Cli::try_parse_from(["carbon-dash", "serve", "--auth", "oidc"]).is_err(), "no issuer, client, URL");
        let oidc = ["--auth", "oidc", "--oidc-issuer", "https://id.example.org", "--oidc-client-id", "carbon"];
        assert!(auth(&[&oidc[..], &["--public-url", "https://carbon.example.org"]].concat()).refusal(open).is_none());
        assert_eq!(parse_lifetime("90s"), Ok(std::time::Duration::from_secs(90)));
        let ignored = auth(&["--admin-group", "ops", "--public-url", "https://x.example"]).ignored();
        assert_eq!(ignored.len(), 2, "{ignored:?}");
        assert!(auth(&[&oidc[..], &["--public-url", "https://x.example"]].concat()).ignored().is_empty());
        assert!(parse_lifetime("0s").is_err() && parse_lifetime("91d").is_err() && parse_lifetime("12").is_err());
    }

    #[test]
    fn proxy_sign_in_needs_the_proxys_addresses() {
        assert!(Cli::try_parse_from(["carbon-dash", "serve", "--auth", "proxy"]).is_err(), "no --auth-proxy-trusted");
        let cli = Cli::parse_from([
            "carbon-dash",
            "serve",
            "--auth",
            "proxy",
            "--auth-proxy-trusted",
            "10.0.0.0/8,127.0.0.1/32",
            "--admin-group",
            "ops",
        ]);
        let Command::Serve { auth, .. } = cli.command else { panic!("serve") };
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("people.db");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let settings = rt.block_on(async {
            let store = carbon_store::Store::open(&db.to_string_lossy()).await.expect("store");
            assert!(auth.auth(None, "").await.is_err(), "sign-in keeps its people in a store");
            auth.auth(Some(store), "").await.expect("settings")
        });
        assert_eq!(settings.admin_group.as_deref(), Some("ops"));
        let crate::auth::Mode::Proxy(p) = settings.mode else { panic!("proxy") };
        assert_eq!(p.trusted.len(), 2);
        assert_eq!((p.user_header.as_str(), p.groups_header.as_str()), ("x-forwarded-email", "x-forwarded-groups"));
        assert!(Cli::try_parse_from([
            "carbon-dash",
            "serve",
            "--auth",
            "proxy",
            "--auth-proxy-trusted",
            "10.0.0.300/8"
        ])
        .is_err());
    }

    #[test]
    fn a_flag_that_needs_another_says_it_is_ignored() {
        let live = |args: &[&str]| {
            let Command::Serve { live, .. } = serve(args) else { panic!("serve") };
            live
        };
        let proxy = ["--uk-intensity-url", "http://127.0.0.1:9/uk"];
        assert!(live(&proxy).ignored()[0].starts_with("--uk-intensity-url is ignored"));
        assert!(live(&[&proxy[..], &["--live"]].concat()).ignored().is_empty());
        assert!(live(&[]).ignored().is_empty());
    }

    #[test]
    fn base_paths_are_normalised_or_refused() {
        assert_eq!(parse_base_path("/carbon/"), Ok("/carbon".into()));
        assert_eq!(parse_base_path("/"), Ok(String::new()));
        assert_eq!(parse_base_path("/a/b-c"), Ok("/a/b-c".into()));
        for bad in ["carbon", "/a b", "/../x", "/a//b", "/x\"<"] {
            assert!(parse_base_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_parse_cache_lives_in_the_cache_folder_and_can_be_turned_off() {
        let cli = Cli::parse_from(["carbon-dash", "serve", "logs", "--cache-dir", "/tmp/cd-cache"]);
        let Command::Serve { cache, .. } = cli.command else { panic!("serve") };
        let file = cache.file_for(std::path::Path::new("logs")).unwrap_or_default();
        assert!(file.starts_with("/tmp/cd-cache") && file.to_string_lossy().ends_with(".arrow"), "{file:?}");
        let cli = Cli::parse_from(["carbon-dash", "serve", "logs", "--no-cache"]);
        let Command::Serve { cache, .. } = cli.command else { panic!("serve") };
        assert_eq!(cache.file_for(std::path::Path::new("logs")), None);
    }

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_parses_dir_and_addr_and_rejects_a_missing_folder() {
        let cli = Cli::parse_from(["carbon-dash", "serve", "logs", "--addr", "0.0.0.0:8080"]);
        let Command::Serve { dir, addr, apply_provider_pue, read_only, allow_upload_preview, upload, .. } = cli.command
        else {
            panic!("serve")
        };
        assert!(!apply_provider_pue && !read_only && !allow_upload_preview);
        let policy = upload.policy(&Source::Dir("logs".into()), false, false);
        assert_eq!((policy.max_file_bytes, policy.max_request_bytes), (50_000_000, 200_000_000));
        assert_eq!(policy.save_root, Some(PathBuf::from("logs")));
        assert!(policy.disabled_reason.is_none());
        assert_eq!(dir, Some(PathBuf::from("logs")));
        assert_eq!(addr.port(), 8080);
        let err = ServeSettings::from_args(Some("/no/such/dir".into()), addr, "site".into());
        assert!(err.is_err_and(|e| e.to_string().contains("no such folder")));
    }
}
