use anyhow::Context;
use carbon_dash::cli::{Cli, Command, LogFormat, ServeSettings, Source};
use carbon_dash::{demo, router, AppState};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli {
        command:
            Command::Serve {
                dir,
                addr,
                site_root,
                apply_provider_pue,
                read_only,
                allow_upload_preview,
                upload,
                request_timeout,
                header_timeout,
                base_path,
                log_format,
                cache,
            },
    } = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_target(false)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()));
    match log_format {
        LogFormat::Text => logs.init(),
        // One JSON object a line, with the request span's method and URI: for log collectors.
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
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
    let (mut catalog, loaded) = tokio::task::spawn_blocking(move || match source {
        Source::Demo => demo::catalog().map(|c| (c, Default::default())),
        Source::Dir(d) => carbon_core::catalog::load_dir_cached(&d, cache_at.as_deref()),
    })
    .await??;
    if apply_provider_pue {
        catalog.set_apply_provider_pue(true);
        println!("provider PUE applied to cloud runs without a pue column (shown on each run)");
    }
    let from = match &settings.source {
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
            Some(why) if loaded.reused == 0 => println!("parse cache not used ({why}): {}", file.display()),
            _ => {
                println!("{} files from the parse cache, {} parsed ({})", loaded.reused, loaded.parsed, file.display())
            }
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
    state.base_path = base_path.clone();
    state.request_timeout = std::time::Duration::from_secs(request_timeout);
    state.upload = upload.policy(&settings.source, read_only, allow_upload_preview);
    // Expired upload sessions give their memory back.
    let sessions = state.sessions.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            sessions.purge();
        }
    });
    // The parse cache is written after the start, off the request path, when something changed.
    if let (Some(file), true) = (cache_file, loaded.cache_stale()) {
        let snapshot = state.catalog.current();
        std::thread::spawn(move || match snapshot.write_parse_cache(&file, &loaded.stamps) {
            Ok(()) => tracing::info!(file = %file.display(), "parse cache written"),
            Err(e) => tracing::warn!(file = %file.display(), error = %e, "parse cache not written"),
        });
    }
    // Live serve: a changed log file is re-read alone and open pages are told. Watching a large
    // tree takes a while (a watch per folder): it is set up beside the server, which answers
    // meanwhile; the thread keeps the watcher for the life of the process.
    if let Source::Dir(d) = &settings.source {
        let (d, catalog, changes) = (d.clone(), state.catalog.clone(), state.changes.clone());
        std::thread::spawn(move || match carbon_dash::watch::watch(d.clone(), catalog, changes) {
            Ok(_watcher) => {
                println!("watching {} for changes", d.display());
                loop {
                    std::thread::park();
                }
            }
            Err(e) => println!("note: not watching {} ({e}): restart to see new runs", d.display()),
        });
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
    carbon_dash::serve(listener, router(state), std::time::Duration::from_secs(header_timeout)).await;
    Ok(())
}
