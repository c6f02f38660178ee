//! One component per page.

mod data;
mod experiment;
mod files;
mod gridnow;
mod map;
mod overview;
mod pareto;
mod plan;
mod regions;
mod run;
mod runs;
mod teams;
mod upload;

pub use data::Data;
pub use experiment::ExperimentView;
pub use files::Files;
pub use map::Map;
pub use overview::Overview;
pub use pareto::Pareto;
pub(crate) use pareto::{ExperimentPareto, ReportLinks};
pub use plan::Plan;
pub use regions::Regions;
pub use run::RunPage;
pub use runs::Runs;
pub use teams::{TeamView, Teams};
pub use upload::{Account, SessionBanner, Upload, UploadVersion};

use leptos::prelude::*;

/// What a page shows when its data cannot be loaded.
#[component]
fn LoadError(error: crate::api::PageError) -> impl IntoView {
    view! { <p class="error">"Could not load the data: " {error.to_string()}</p> }
}

/// A headline figure with its label and an explanation of where it comes from.
#[component]
fn Stat(label: &'static str, value: String, #[prop(into)] note: String) -> impl IntoView {
    view! {
        <div class="stat">
            <div class="stat-label">{label}</div>
            <div class="stat-value">{value}</div>
            <div class="stat-note">{note}</div>
        </div>
    }
}

/// Everyday equivalents of a CO2 figure and its energy, each with its factor and source on hover.
/// The list comes with the page's own data (one server call, serialized once).
#[component]
fn Equivalents(mut list: Vec<carbon_core::model::Equivalent>) -> impl IntoView {
    use carbon_core::units::sig3;
    // Amounts far below one say little: keep the meaningful ones (at least three).
    list.sort_by(|a, b| b.amount.total_cmp(&a.amount));
    let meaningful = list.iter().filter(|e| e.amount >= 0.1).count().max(3);
    list.truncate(meaningful);
    view! {
        <section class="equivalents" aria-label="Everyday equivalents">
            <h2>"In everyday terms"</h2>
            <ul>
                {list
                    .into_iter()
                    .map(|e| {
                        let range = if (e.amount_high - e.amount_low).abs() > f64::EPSILON {
                            format!(" ({}–{})", sig3(e.amount_low), sig3(e.amount_high))
                        } else {
                            String::new()
                        };
                        let hover = format!(
                            "{} {} — {}, {} ({}){}",
                            e.factor,
                            e.factor_unit,
                            e.source.publisher,
                            e.source.year,
                            e.source.url,
                            if e.note.is_empty() { String::new() } else { format!("; {}", e.note) }
                        );
                        view! {
                            <li title=hover data-equivalent=e.id.clone()>
                                <strong>{sig3(e.amount)}</strong>
                                {range}
                                " "
                                {e.label.clone()}
                                <a class="src" href=e.source.url.clone() title=e.source.title.clone()>
                                    {format!("[{}]", e.source.publisher)}
                                </a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
    }
}

/// The value of the nearest element (under the pointer) carrying a `data-attr` attribute.
pub(crate) fn attribute_at(ev: &web_sys::MouseEvent, attr: &str) -> Option<String> {
    use wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|e| e.closest(&format!("[{attr}]")).ok().flatten())
        .and_then(|e| e.get_attribute(attr))
}

/// Points the clicked link at `href` before the browser follows it.
pub(crate) fn set_href(ev: &web_sys::MouseEvent, href: &str) {
    use wasm_bindgen::JsCast;
    if let Some(a) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
        let _ = a.set_attribute("href", href);
    }
}

/// The hover text under the pointer (`data-tip`, written by the server) and where to show it.
pub(crate) fn tip_at(ev: &web_sys::MouseEvent) -> Option<(String, i32, i32)> {
    attribute_at(ev, "data-tip").map(|t| (t, ev.client_x(), ev.client_y()))
}

/// A server-drawn chart: title, the SVG with hover values, its text alternative, and its data
/// as CSV and itself as SVG to download.
#[component]
fn ChartView(chart: carbon_core::pages::Chart) -> impl IntoView {
    let (tip, set_tip) = signal(None::<(String, i32, i32)>);
    let on_move = move |ev: web_sys::MouseEvent| set_tip.set(tip_at(&ev));
    let enc = crate::format::encode;
    // A chart whose points are links is a group of them (an image holds nothing to press).
    let role = if chart.svg.contains("<a ") { "group" } else { "img" };
    view! {
        <figure class="chart" id=format!("chart-{}", chart.id)>
            <div
                class="chart-svg"
                role=role
                aria-label=chart.alt.clone()
                on:mousemove=on_move
                on:mouseleave=move |_| set_tip.set(None)
                inner_html=chart.svg.clone()
            ></div>
            {move || tip.get().map(|(t, x, y)| view! { <div class="tooltip" role="tooltip" style=format!("left: {}px; top: {}px", x + 14, y + 14)>{t}</div> })}
            <figcaption>
                {chart.alt.clone()}
                " "
                <a download=format!("{}.csv", chart.id) href=format!("data:text/csv;charset=utf-8,{}", enc(&chart.csv))>"data (CSV)"</a>
                " · "
                // The SVG is on the page already: its download link is made when clicked, so the
                // page does not carry a third, percent-encoded copy.
                <a
                    download=format!("{}.svg", chart.id)
                    href="#"
                    on:click={
                        let svg = chart.svg.clone();
                        move |ev: web_sys::MouseEvent| set_href(&ev, &format!("data:image/svg+xml;charset=utf-8,{}", enc(&svg)))
                    }
                >
                    "chart (SVG)"
                </a>
            </figcaption>
        </figure>
    }
}
