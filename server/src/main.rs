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
                allow_hosts,
                behind_tls,
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
    state.base_path = base_path.clone();
    state.allowed_hosts = carbon_dash::allowed_hosts(settings.addr, &allow_hosts);
    state.behind_tls = behind_tls;
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
    // Live serve: a changed log file is re-read alone and open pages are told. Watching a large
    // tree takes a while (a watch per folder), and so does comparing the folder with a catalog
    // from the parse cache: both run beside the server, which answers meanwhile.
    if let Source::Dir(d) = &settings.source {
        let (d, catalog) = (d.clone(), state.catalog.clone());
        let announcer = state.announcer.clone();
        let stale = loaded.cache_stale();
        std::thread::spawn(move || carbon_dash::watch::keep_up_to_date(d, catalog, announcer, cache_file, stale));
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
    carbon_dash::serve(listener, router(state), std::time::Duration::from_secs(header_timeout), stop).await;
    println!("stopped");
    Ok(())
}
