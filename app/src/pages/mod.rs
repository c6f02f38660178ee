//! One component per page.

mod files;
mod overview;
mod run;
mod runs;

pub use files::Files;
pub use overview::Overview;
pub use run::RunPage;
pub use runs::Runs;

use leptos::prelude::*;

/// What a page shows when its data cannot be loaded.
#[component]
fn LoadError(error: ServerFnError) -> impl IntoView {
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
