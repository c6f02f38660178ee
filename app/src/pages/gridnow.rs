//! The grid now beside the annual figures of the map and the regions page: a badge per region
//! (live, forecast or annual) with the value's age. Fetched by the browser after the page shows,
//! so a slow or missing provider never holds a page back.

use crate::api::{get_grid_now, PageError};
use crate::format::intensity;
use carbon_core::schedule::GridNow;
use leptos::prelude::*;

pub type Now = ReadSignal<Option<Result<GridNow, PageError>>>;

pub fn use_grid_now() -> Now {
    after_load(get_grid_now)
}

/// A value the browser fetches once the page is there (an effect: never on the server, so the
/// server's render and the page's first state agree, and no page waits for it).
pub fn after_load<T, F>(fetch: impl Fn() -> F + 'static) -> ReadSignal<Option<T>>
where
    T: Send + Sync + 'static,
    F: std::future::Future<Output = T> + 'static,
{
    let (value, set) = signal(None::<T>);
    Effect::new(move |_| {
        let f = fetch();
        leptos::task::spawn_local(async move { set.set(Some(f.await)) });
    });
    value
}

/// "live 171 g/kWh, 17 min old", "forecast …", or "annual" where no live provider covers `key`
/// (`provider/region`).
#[component]
pub fn NowBadge(now: Now, key: String) -> impl IntoView {
    move || {
        let g = now.with(|n| n.clone())?.ok()?;
        let view = match g.regions.iter().find(|(k, _)| *k == key) {
            Some((_, r)) => {
                let (class, word) = if r.forecast { ("badge forecast", "forecast") } else { ("badge live", "live") };
                // To the minute: a value is half-hourly or hourly.
                let basis = r.basis.short();
                let from = carbon_core::schedule::readable(r.at);
                let from = from.get(11..).unwrap_or(&from).to_string();
                let title = format!(
                    "{}, {}{}; for {}, fetched {}",
                    r.provider,
                    r.basis.words(),
                    if r.estimated { ", estimated" } else { "" },
                    carbon_core::time::rfc3339(r.at),
                    carbon_core::time::rfc3339(r.fetched_at)
                );
                view! { <span class="now" title=title><span class=class>{word}</span> " " {format!("{} {basis} · for {from}", intensity(r.g_per_kwh))}</span> }.into_any()
            }
            None => view! { <span class="now" title="the embedded annual average: no live provider covers this region"><span class="badge annual">"annual"</span></span> }.into_any(),
        };
        Some(view)
    }
}

/// What the page's live figures rest on: offline and what would help, or providers skipped.
#[component]
pub fn GridNowNote(now: Now) -> impl IntoView {
    move || {
        let g = now.with(|n| n.clone())?.ok()?;
        let text = match (&g.offline, g.notes.is_empty()) {
            (Some(o), _) => format!("Grid figures: {o}."),
            (None, true) => format!(
                "Grid now: {} regions covered by a live provider; the others show the annual average.",
                g.regions.len()
            ),
            (None, false) => format!("Grid now: {}", g.notes.join("; ")),
        };
        Some(view! { <p class="hint grid-now" id="grid-now">{text}</p> })
    }
}
