//! The grid now beside the annual figures of the map and the regions page: a badge per region
//! (live, forecast or annual) with the value's age. Fetched by the browser after the page shows,
//! so a slow or missing provider never holds a page back.

use crate::api::{get_grid_now, PageError};
use crate::format::intensity;
use carbon_core::schedule::GridNow;
use carbon_core::units;
use leptos::prelude::*;

pub type Now = LocalResource<Result<GridNow, PageError>>;

pub fn use_grid_now() -> Now {
    LocalResource::new(get_grid_now)
}

/// "live 171 g/kWh, 17 min old", "forecast …", or "annual" where no live provider covers `key`
/// (`provider/region`).
#[component]
pub fn NowBadge(now: Now, key: String) -> impl IntoView {
    move || {
        let g = now.get()?.ok()?;
        let view = match g.regions.iter().find(|(k, _)| *k == key) {
            Some((_, r)) => {
                let (class, word) = if r.forecast { ("badge forecast", "forecast") } else { ("badge live", "live") };
                let age = units::duration_s((g.at - r.at).max(0) as f64);
                let title = format!(
                    "{}, {}{}; for {}, fetched {}",
                    r.provider,
                    r.basis.words(),
                    if r.estimated { ", estimated" } else { "" },
                    carbon_core::time::rfc3339(r.at),
                    carbon_core::time::rfc3339(r.fetched_at)
                );
                view! { <span class="now" title=title><span class=class>{word}</span> " " {format!("{} · {age} old", intensity(r.g_per_kwh))}</span> }.into_any()
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
        let g = now.get()?.ok()?;
        let text = match (&g.offline, g.notes.is_empty()) {
            (Some(o), _) => format!("Grid figures: {o}."),
            (None, true) => format!("Grid now: {} regions covered by a live provider; the others show the annual average.", g.regions.len()),
            (None, false) => format!("Grid now: {}", g.notes.join("; ")),
        };
        Some(view! { <p class="hint grid-now" id="grid-now">{text}</p> })
    }
}
