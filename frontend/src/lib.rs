//! The browser entry point: hydrates the server-rendered page.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    use leptos::prelude::*;
    console_error_panic_hook::set_once();
    // Behind a reverse proxy the app lives under a base path: the server wrote it into the page.
    let base = document()
        .query_selector(&format!("meta[name=\"{}\"]", app::BASE_META))
        .ok()
        .flatten()
        .and_then(|m| m.get_attribute("content"))
        .unwrap_or_default();
    if !base.is_empty() {
        leptos::server_fn::client::set_server_url(Box::leak(base.clone().into_boxed_str()));
    }
    leptos::mount::hydrate_body(move || {
        provide_context(app::BasePath(base));
        view! { <app::App/> }
    });
}
