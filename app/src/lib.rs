//! The carbon-dash web app: pages rendered on the server and hydrated in the browser. Components
//! stay thin: data comes from [`api`] server functions, figures are formatted by
//! `carbon_core::units`.

pub mod api;
pub mod format;
mod live;
mod pages;
pub mod words;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{path, SsrMode};

/// Name of the wasm-bindgen output and of the stylesheet under `/pkg`.
pub const OUTPUT_NAME: &str = "carbon-dash";

/// The path the app is served under behind a reverse proxy (`/carbon`), empty at the root. The
/// server provides it; in the browser it is read from the page (`<meta name="carbon-dash-base">`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasePath(pub String);

/// Name of the `<meta>` carrying the base path to the browser.
pub const BASE_META: &str = "carbon-dash-base";

pub fn base_path() -> String {
    use_context::<BasePath>().map(|b| b.0).unwrap_or_default()
}

/// `path` under `base` (`/carbon` + `/runs`); the base itself for `/`: `/carbon`, not `/carbon/`.
pub fn under(base: &str, path: &str) -> String {
    if path == "/" && !base.is_empty() {
        base.to_string()
    } else {
        format!("{base}{path}")
    }
}

/// The Content-Security-Policy of the app's pages: scripts only from this site and the page's
/// own inline scripts (which carry its nonce), wasm compiled from this site, requests to this
/// site only, no frames, no plugins, no `<base>`, forms posted here only. Styles may be inline
/// (tooltips are placed by a style attribute).
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The HTML document around the app. On the server it also sets the page's
/// Content-Security-Policy (see [`page_policy`]) with the nonce its scripts carry.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(res)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) {
        if let Ok(policy) = http::HeaderValue::from_str(&page_policy(&nonce.to_string())) {
            res.insert_header(http::header::CONTENT_SECURITY_POLICY, policy);
        }
    }
    let base = base_path();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href=format!("{base}/favicon.svg") type="image/svg+xml"/>
                <meta name=BASE_META content=base.clone()/>
                <HydrationScripts options root=base/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    live::provide_live();
    provide_context(pages::UploadVersion(RwSignal::new(0)));
    // Effects run only in the browser: this marks the page as hydrated (end-to-end tests wait for it).
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href=format::href(&format!("/pkg/{OUTPUT_NAME}.css"))/>
        <Title formatter=|t: String| if t.is_empty() { "carbon-dash".to_string() } else { format!("{t} · carbon-dash") }/>
        <Router base=base_path()>
            <header class="top">
                <a class="brand" href=format::href("/")>"carbon-dash"</a>
                <nav>
                    <A href=format::href("/") exact=true>"Overview"</A>
                    <A href=format::href("/runs")>"Runs"</A>
                    <A href=format::href("/teams")>"Teams"</A>
                    <A href=format::href("/map")>"Map"</A>
                    <A href=format::href("/regions")>"Regions"</A>
                    <A href=format::href("/plan")>"Plan"</A>
                    <A href=format::href("/files")>"Files"</A>
                    <A href=format::href("/data")>"Data"</A>
                    <A href=format::href("/upload")>"Upload"</A>
                </nav>
                <DatasetSwitch/>
                <pages::Account/>
            </header>
            <pages::SessionBanner/>
            <main>
                <Routes fallback=|| view! { <Title text="Page not found"/> <h1>"Page not found"</h1> }>
                    <Route path=path!("/") view=pages::Overview ssr=SsrMode::Async/>
                    <Route path=path!("/runs") view=pages::Runs ssr=SsrMode::Async/>
                    <Route path=path!("/runs/:id") view=pages::RunPage ssr=SsrMode::Async/>
                    <Route path=path!("/files") view=pages::Files ssr=SsrMode::Async/>
                    <Route path=path!("/data") view=pages::Data ssr=SsrMode::Async/>
                    <Route path=path!("/map") view=pages::Map ssr=SsrMode::Async/>
                    <Route path=path!("/teams") view=pages::Teams ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team") view=|| view! { <pages::TeamView/> } ssr=SsrMode::Async/>
                    <Route path=path!("/experiments/:id") view=pages::ExperimentView ssr=SsrMode::Async/>
                    <Route path=path!("/regions") view=pages::Regions ssr=SsrMode::Async/>
                    <Route path=path!("/plan") view=pages::Plan ssr=SsrMode::Async/>
                    <Route path=path!("/pareto") view=pages::Pareto ssr=SsrMode::Async/>
                    <Route path=path!("/upload") view=pages::Upload ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer>
                "Energy as each run's tracker measured it (CodeCarbon unless the run names another; kWh, PUE included). \
                 CO₂ recomputed with carbon-dash's embedded grid data "
                <a href=format::href("/data")>"(sources and method)"</a>
                "; the tracker's own figure is shown as “reported”."
            </footer>
        </Router>
    }
}

/// The dataset chosen in the URL (`?dataset=codecarbon`), `latest` otherwise.
pub fn use_dataset() -> Memo<carbon_core::model::DatasetMode> {
    let q = leptos_router::hooks::use_query_map();
    Memo::new(move |_| {
        q.read().get("dataset").as_deref().and_then(carbon_core::model::DatasetMode::parse).unwrap_or_default()
    })
}

/// Chooses the dataset CO2 is recomputed with; the choice lives in the URL.
#[component]
fn DatasetSwitch() -> impl IntoView {
    use carbon_core::model::DatasetMode;
    let location = leptos_router::hooks::use_location();
    let dataset = use_dataset();
    let link = move |mode: DatasetMode| {
        let mut params: Vec<(String, String)> = location
            .query
            .get()
            .into_iter()
            .filter(|(k, _)| k != "dataset" && k != "page")
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        if mode != DatasetMode::Latest {
            params.push(("dataset".into(), mode.as_str().into()));
        }
        format::url(&location.pathname.get(), params)
    };
    view! {
        <div class="dataset-switch" title="Grid data CO₂ is recomputed with">
            "CO₂ data: "
            <a href=move || link(DatasetMode::Latest) class:active=move || dataset.get() == DatasetMode::Latest data-dataset="latest">
                "latest"
            </a>
            " · "
            <a href=move || link(DatasetMode::Codecarbon) class:active=move || dataset.get() == DatasetMode::Codecarbon data-dataset="codecarbon">
                "CodeCarbon 3.3.2"
            </a>
        </div>
    }
}
