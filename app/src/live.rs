//! Live updates: in the browser an `EventSource` on `/api/v1/events` bumps a version that the
//! pages' resources depend on, so open pages refetch when a watched log file changes.

use leptos::prelude::*;

#[derive(Clone, Copy)]
struct LiveVersion(RwSignal<u64>);

/// Called once by the app: provides the version and, in the browser, listens for changes.
pub fn provide_live() {
    let version = RwSignal::new(0u64);
    provide_context(LiveVersion(version));
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::{closure::Closure, JsCast};
            if let Ok(source) = web_sys::EventSource::new(&crate::format::href("/api/v1/events")) {
                let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_: web_sys::MessageEvent| {
                    version.update(|v| *v += 1);
                });
                let _ = source.add_event_listener_with_callback("catalog", on_change.as_ref().unchecked_ref());
                // Both live as long as the page: the listener must outlive this effect.
                on_change.forget();
                std::mem::forget(source);
            }
        }
    });
}

/// A reader of the version for a resource's source: it changes whenever the logs do.
pub fn live_version() -> impl Fn() -> u64 + Copy + Send + Sync + 'static {
    let v = use_context::<LiveVersion>().map(|l| l.0);
    move || v.map(|s| s.get()).unwrap_or(0)
}
