use anyhow::Context;
use carbon_dash::cli::{Cli, Command, LogFormat, ServeSettings, Source};
use carbon_dash::{collect, demo, manage, router, AppState};
use clap::Parser;

#[tokio::main]
async fn main() {
    // An error is said in one line (its causes after colons), never as a backtrace.
    if let Err(e) = run().await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let out = match Cli::parse().command {
        Command::Project(cmd) => manage::project(cmd).await?,
        Command::Experiment(cmd) => manage::experiment(cmd).await?,
        Command::Token(cmd) => manage::token(cmd).await?,
        Command::Member(cmd) => manage::member(cmd).await?,
        Command::Session(cmd) => manage::session(cmd).await?,
        Command::Budget(cmd) => manage::budget(cmd).await?,
        Command::Report(args) => carbon_dash::report::command(&args)?,
        Command::Export { project, output, db } => manage::export(&project, output.as_deref(), &db.db).await?,
        Command::Track(args) => {
            // The tracker measures from threads of its own: off the async runtime.
            let code =
                match tokio::task::spawn_blocking(move || carbon_track::run(&args.options(), &args.command)).await? {
                    Ok(code) => code,
                    Err(e) => {
                        eprintln!("error: {e}");
                        e.exit_code()
                    }
                };
            std::process::exit(code);
        }
        serve_command => return serve(serve_command).await,
    };
    print!("{out}");
    Ok(())
}

async fn serve(command: Command) -> anyhow::Result<()> {
    let Command::Serve {
        dir,
        addr,
        site_root,
        apply_provider_pue,
        read_only,
        allow_upload_preview,
        upload,
        request_timeout,
        header_timeout,
        write_timeout,
        max_connections_per_client,
        base_path,
        log_format,
        cache,
        allow_hosts,
        behind_tls,
        db,
        collect,
        collect_rate,
        keep_records,
        live,
        mlflow,
        auth,
        alerts,
    } = command
    else {
        anyhow::bail!("not a serve command");
    };
    let logs = tracing_subscriber::fmt()
        .with_target(false)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()));
    match log_format {
        LogFormat::Text => logs.init(),
        // One JSON object a line, with the request span's method and URI: for log collectors.
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
    if let Some(why) = auth.refusal(addr) {
        anyhow::bail!(why);
    }
    for note in live.ignored().into_iter().chain(auth.ignored()) {
        println!("note: {note}");
    }
    if mlflow.mlflow_url.is_none() && mlflow.mlflow_every != 60 {
        println!("note: --mlflow-every is ignored: it is for --mlflow-url");
    }
    let settings = ServeSettings::from_args(dir, addr, site_root)?;
    // Ingest reads files in parallel (rayon): keep it off the async workers.
    let source = settings.source.clone();
    let started = std::time::Instant::now();
    let cache_file = match &source {
        Source::Dir(d) => cache.file_for(d),
        Source::Demo => None,
    };
    let cache_at = cache_file.clone();
    // The store of collected runs: opened when collecting, when --db is given, or when the
    // default file is there. Collecting without a logs folder shows collected runs only.
    let explicit_db = db.db != carbon_dash::cli::DEFAULT_DB;
    // Sign-in keeps members, read tokens and sessions there too.
    let store = if collect || explicit_db || auth.auth.is_some() || std::path::Path::new(&db.db).exists() {
        let store =
            carbon_store::Store::open(&db.db).await.with_context(|| format!("cannot open the store {}", db.db))?;
        Some(store)
    } else {
        None
    };
    let demo = !collect;
    let (mut catalog, loaded) = tokio::task::spawn_blocking(move || match source {
        Source::Demo if demo => demo::catalog().map(|c| (c, Default::default())),
        Source::Demo => Ok((Default::default(), Default::default())),
        Source::Dir(d) => carbon_core::catalog::load_dir_cached(&d, cache_at.as_deref()),
    })
    .await??;
    if apply_provider_pue {
        catalog.set_apply_provider_pue(true);
        println!("provider PUE applied to cloud runs without a pue column (shown on each run)");
    }
    let from = match &settings.source {
        Source::Demo if collect => "no logs folder".to_string(),
        Source::Demo => "built-in demo logs".to_string(),
        Source::Dir(d) => d.display().to_string(),
    };
    let s = catalog.summary(carbon_core::model::DatasetMode::Latest);
    println!(
        "carbon-dash: {from}: {} files, {} runs, {} of {} rows rejected (details on /files), read in {:.2} s",
        s.files,
        s.totals.runs,
        s.rows_rejected,
        s.rows_read,
        started.elapsed().as_secs_f64()
    );
    if let Some(file) = &cache_file {
        match &loaded.cache_problem {
            Some(why) => println!("parse cache not used ({why}): {}", file.display()),
            None if loaded.from_cache() => {
                println!("from the parse cache {}; checking the folder for changes since", file.display())
            }
            None => {}
        }
    }
    if !settings.hydration_assets {
        eprintln!(
            "note: no browser assets under {}/pkg: pages work, but without interactivity (build them with ./x build)",
            settings.site_root.display()
        );
    }
    let site_root = settings.site_root.to_string_lossy().to_string();
    let mut state = AppState::new(catalog, &site_root, settings.addr);
    state.read_only = read_only;
    state.live = std::sync::Arc::new(carbon_live::Live::new(live.config()));
    match (live.live, state.live.offline()) {
        (_, true) => {
            println!("grid data: embedded annual figures (offline; --live or ELECTRICITYMAPS_TOKEN for live data)")
        }
        (true, false) => println!(
            "grid data: live from the UK Carbon Intensity API{}",
            if live.config().electricitymaps_token.is_some() { " and Electricity Maps" } else { "" }
        ),
        (false, false) => println!("grid data: live from Electricity Maps"),
    }
    state.base_path = base_path.clone();
    state.auth = std::sync::Arc::new(auth.auth(store.clone(), &base_path).await?);
    let admin = auth.admin_group.as_ref().map(|a| format!("; {a} sees every team")).unwrap_or_default();
    match &state.auth.mode {
        carbon_dash::auth::Mode::Proxy(p) => {
            let nets: Vec<String> = p.trusted.iter().map(|n| n.to_string()).collect();
            println!(
                "sign-in: by the proxy at {} ({} names the person, {} their teams{admin})",
                nets.join(", "),
                p.user_header,
                p.groups_header,
            )
        }
        carbon_dash::auth::Mode::Oidc(o) => println!(
            "sign-in: OpenID Connect with {} (teams from the '{}' claim and `carbon-dash member`{admin}); \
             sessions last {} min",
            o.issuer(),
            o.groups_claim(),
            o.session_lifetime().as_secs() / 60
        ),
        carbon_dash::auth::Mode::Open => {}
    }
    state.allowed_hosts = carbon_dash::allowed_hosts(settings.addr, &allow_hosts);
    state.behind_tls = behind_tls;
    state.request_timeout = std::time::Duration::from_secs(request_timeout);
    state.upload = upload
        .policy(&settings.source, read_only, allow_upload_preview)
        .needing_names(state.allowed_hosts.as_deref(), settings.addr);
    if state.allowed_hosts.is_none() && (!read_only || allow_upload_preview) {
        println!("note: {}", state.upload.disabled_reason.as_deref().unwrap_or_default());
    }
    // Expired upload sessions give their memory back.
    let sessions = state.sessions.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            sessions.purge();
        }
    });
    // Live serve: a changed log file is re-read alone and open pages are told. Watching a large
    // tree takes a while (a watch per folder), and so does comparing the folder with a catalog
    // from the parse cache: both run beside the server, which answers meanwhile.
    if let Source::Dir(d) = &settings.source {
        let (d, catalog) = (d.clone(), state.catalog.clone());
        let announcer = state.announcer.clone();
        let stale = loaded.cache_stale();
        std::thread::spawn(move || carbon_dash::watch::keep_up_to_date(d, catalog, announcer, cache_file, stale));
    }
    let (mlflow_url, mlflow_every) = (mlflow.mlflow_url.clone(), mlflow.mlflow_every);
    if let Some(url) = mlflow_url {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let auth = carbon_live::mlflow::Auth {
            token: env("MLFLOW_TRACKING_TOKEN"),
            user: env("MLFLOW_TRACKING_USERNAME").zip(env("MLFLOW_TRACKING_PASSWORD")),
        };
        let server = carbon_live::mlflow::MlflowServer::new(&url, auth, std::time::Duration::from_secs(30))
            .map_err(|e| anyhow::anyhow!("--mlflow-url {url}: {e}"))?;
        println!(
            "MLflow tracking server {url}: its runs are read every {mlflow_every} s (shown as {})",
            carbon_dash::mlflow::display(&server)
        );
        let every = std::time::Duration::from_secs(mlflow_every);
        carbon_dash::mlflow::spawn(server, every, state.catalog.clone(), state.announcer.clone());
    }
    // Budgets: the store's and budgets.toml's, read now and every few seconds.
    let logs_dir = match &settings.source {
        Source::Dir(d) => Some(d.clone()),
        Source::Demo => None,
    };
    state.budgets.set(carbon_dash::budgets::read(store.as_ref(), logs_dir.as_deref()).await);
    let listed = state.budgets.get();
    if !listed.budgets.is_empty() || !listed.problems.is_empty() {
        println!(
            "budgets: {} in force{}",
            listed.budgets.len(),
            if listed.problems.is_empty() { String::new() } else { format!("; {}", listed.problems.join("; ")) }
        );
    }
    let alert_webhooks = alerts.alert_webhooks.clone();
    let alerts = match (&store, alert_webhooks.is_empty()) {
        (_, true) => None,
        (None, false) => {
            println!("note: --alert-webhook is ignored: alerts are kept in the store, so give --db (or --collect)");
            None
        }
        (Some(store), false) => {
            for (i, hook) in alert_webhooks.iter().enumerate() {
                // Not echoed: a webhook's URL holds its secret.
                reqwest::Url::parse(hook)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| anyhow::anyhow!("--alert-webhook number {}: give an http(s) URL", i + 1))?;
            }
            println!(
                "budget alerts: to {} webhook{}",
                alert_webhooks.len(),
                if alert_webhooks.len() == 1 { "" } else { "s" }
            );
            Some(carbon_dash::budgets::Alerts {
                store: store.clone(),
                hooks: alert_webhooks.clone(),
                http: reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(std::time::Duration::from_secs(10))
                    .build()?,
                public_url: auth.public_url.clone(),
            })
        }
    };
    carbon_dash::budgets::spawn(store.clone(), logs_dir, state.budgets.clone(), state.catalog.clone(), alerts);
    if let Some(store) = store {
        let started = std::time::Instant::now();
        // Pages read a collected run's checkpoints from the store.
        let rows: std::sync::Arc<dyn carbon_core::catalog::RowStore> = std::sync::Arc::new(store.clone());
        state.catalog.update(|c| c.set_row_store(rows));
        // Every run from its totals (one row each), then what commits after, from that cursor.
        let (cursor, n) = collect::load_after(&store, &state.catalog, &state.announcer, 0).await?;
        collect::follow(store.clone(), state.catalog.clone(), state.announcer.clone(), cursor).await?;
        let (runs, records) = store.counts().await?;
        let engine = match store.engine() {
            carbon_store::Engine::Sqlite => {
                let path = std::path::Path::new(&db.db);
                format!("SQLite {}", std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display())
            }
            carbon_store::Engine::Postgres => "PostgreSQL".to_string(),
        };
        println!(
            "collected runs: {runs} runs, {records} records in {engine} ({n} read in {:.2} s){}",
            started.elapsed().as_secs_f64(),
            if collect { "; taking trackers' posts at /runs and /emissions" } else { "" }
        );
        if let Some(age) = keep_records {
            if read_only && !collect {
                println!("note: --keep-records is ignored: this server only reads the store (add --collect)");
            } else {
                collect::keep_records(store.clone(), age);
                println!("records older than {} h are folded hourly (--keep-records)", age.as_secs() / 3600);
            }
        }
        if collect && store.projects().await?.is_empty() {
            println!(
                "note: this store has no projects yet, so every post will be refused: is --db the one \
                 `carbon-dash project add` used? (they take the same --db)"
            );
        }
        state.collector = Some(collect::Collector::new(store, collect, collect_rate));
    }
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.addr))?;
    let mode = match (read_only, allow_upload_preview) {
        (false, _) => "",
        (true, false) => " (read-only)",
        (true, true) => " (read-only, upload previews allowed)",
    };
    println!("Serving on http://{}{base_path}{mode}", listener.local_addr()?);
    let stopping = state.stopping.clone();
    tokio::spawn(async move {
        carbon_dash::stop_signal().await;
        println!("stopping: finishing requests in flight");
        let _ = stopping.send(true);
    });
    let stop = state.stopping.subscribe();
    let mut limits =
        carbon_dash::conn::Limits::new(std::time::Duration::from_secs(header_timeout), state.connections.clone());
    limits.write_timeout = std::time::Duration::from_secs(write_timeout);
    limits.per_client = max_connections_per_client as usize;
    if limits.per_client == 0 {
        // Behind a proxy that is every client's address: no share per address anywhere.
        state.upload.max_sessions_per_client = 0;
        state.streams_per_client = 0;
    }
    carbon_dash::serve(listener, router(state), limits, stop).await;
    println!("stopped");
    Ok(())
}
