//! Upload: a form that works without JavaScript (one POST, then this page lists the results);
//! hydrated, files dropped or picked are sent one by one with a progress bar and a result each.

use super::LoadError;
use crate::api::get_upload_state;
use carbon_core::pages::{UploadSession, UploadState};
use carbon_core::units::{count, duration_s, human_bytes};
use leptos::prelude::*;
use leptos_meta::Title;

/// Bumped when an upload finishes in the browser: what reads the session refetches.
#[derive(Clone, Copy)]
pub struct UploadVersion(pub RwSignal<u64>);

pub fn upload_version() -> impl Fn() -> u64 + Copy + Send + Sync + 'static {
    let v = use_context::<UploadVersion>().map(|u| u.0);
    move || v.map(|s| s.get()).unwrap_or(0)
}

/// One file sent from this page (hydrated only).
#[derive(Clone, Debug, PartialEq)]
pub struct Sending {
    pub name: String,
    pub size: f64,
    pub sent: f64,
    /// `None` while sending; then (accepted, message).
    pub result: Option<(bool, String)>,
}

#[component]
pub fn Upload() -> impl IntoView {
    let version = upload_version();
    let state = Resource::new(version, |_| get_upload_state());
    // Outlives the form: the session's table reloads after each batch, the progress list stays.
    let sending = RwSignal::new(Vec::<Sending>::new());
    view! {
        <Title text="Upload"/>
        <h1>"Upload CodeCarbon logs"</h1>
        // A transition: while the session reloads after a batch, the page stays as it is.
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match state.await {
                    Ok(s) if s.enabled => view! { <UploadForm s sending/> }.into_any(),
                    Ok(s) => view! { <p class="notice" id="upload-off">{s.disabled_reason.unwrap_or_default()}</p> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn UploadForm(s: UploadState, sending: RwSignal<Vec<Sending>>) -> impl IntoView {
    let max_file = s.max_file_bytes as f64;
    let version = use_context::<UploadVersion>();
    let target = StoredValue::new(crate::format::href("/upload"));
    let start = move |files: Option<web_sys::FileList>| {
        if let Some(files) = files {
            send_all(files, sending, max_file, version, target.get_value());
        }
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        start(ev.data_transfer().and_then(|d| d.files()));
    };
    let on_change = move |ev: web_sys::Event| {
        use wasm_bindgen::JsCast;
        let input = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok());
        start(input.as_ref().and_then(|i| i.files()));
        if let Some(i) = input {
            i.set_value("");
        }
    };
    let ttl = duration_s(s.ttl_s as f64);
    view! {
        <p class="hint">
            "Your files are read in memory for you alone: a private session that ends " {ttl}
            " after your last upload. The pages then show your files instead of this server's logs. "
            {if s.save_dir.is_some() {
                "Nothing is stored unless you save it."
            } else {
                "Nothing is stored: the files are forgotten when the session ends."
            }}
        </p>
        <form
            id="upload-form"
            class="dropzone"
            method="post"
            action=crate::format::href("/upload")
            enctype="multipart/form-data"
            on:dragover=|ev: web_sys::DragEvent| ev.prevent_default()
            on:drop=on_drop
            on:submit=|ev: web_sys::SubmitEvent| ev.prevent_default()
        >
            <p class="drop-here">"Drop emissions.csv files here"</p>
            <label>
                "or choose files: "
                <input type="file" name="file" multiple accept=".csv,.bak,.json,.jsonl,.db,.sqlite,.sqlite3,.wandb,.log,text/csv,application/json" on:change=on_change/>
            </label>
            <noscript><button type="submit">"Upload"</button></noscript>
            <p class="hint">
                {format!(
                    "Up to {} a file and {} at a time (and in a session). CodeCarbon's .csv, .csv.bak and .csv_N.bak files, any version; beside them, model results: metrics.csv, results tables (.csv, .json, .jsonl), Trainer and W&B JSON files, mlflow.db, optuna.db or an Optuna journal, W&B run files (run-<id>.wandb).",
                    human_bytes(s.max_file_bytes),
                    human_bytes(s.max_request_bytes),
                )}
            </p>
        </form>
        <ul class="sending" id="sending">
            {move || sending.get().into_iter().map(|f| view! { <SendingRow f/> }).collect_view()}
        </ul>
        {s.session.map(|session| view! { <SessionFiles session save_dir=s.save_dir.clone()/> })}
    }
}

#[component]
fn SendingRow(f: Sending) -> impl IntoView {
    let (class, text) = match &f.result {
        None => ("sending-now", format!("{} of {}", human_bytes(f.sent as u64), human_bytes(f.size as u64))),
        Some((true, msg)) => ("ok", msg.clone()),
        Some((false, msg)) => ("bad", msg.clone()),
    };
    view! {
        <li class=class>
            <span class="name">{f.name.clone()}</span>
            <progress max=f.size.max(1.0) value=f.sent></progress>
            <span class="result">{text}</span>
        </li>
    }
}

#[component]
fn SessionFiles(session: UploadSession, save_dir: Option<String>) -> impl IntoView {
    let expires = duration_s(session.expires_in_s as f64);
    let unsaved = session.files.iter().filter(|f| f.accepted && f.saved_as.is_none()).count();
    let link = crate::format::href(&format!("/sessions/{}", session.id));
    view! {
        <section class="session" id="session">
            <h2>"Your upload"</h2>
            <p>
                {format!("{}, {} held; the session ends in {expires}. ", count(session.files.len(), "file"), human_bytes(session.bytes))}
                <a href=crate::format::href("/") rel="external">"Open the dashboard of your files"</a>
                " · "
                <a href=crate::format::href("/runs") rel="external">"their runs"</a>
                " · "
                <a href=crate::format::href("/files") rel="external">"rows not counted"</a>
            </p>
            <table class="upload-results">
                <thead>
                    <tr>
                        <th>"File"</th>
                        <th class="num">"Size"</th>
                        <th class="num">"Runs"</th>
                        <th>"Result"</th>
                        <th>"Saved as"</th>
                    </tr>
                </thead>
                <tbody>
                    {session
                        .files
                        .iter()
                        .map(|f| view! {
                            <tr class=if f.accepted { "ok" } else { "bad" }>
                                <td>{f.name.clone()}</td>
                                <td class="num">{human_bytes(f.bytes)}</td>
                                <td class="num">{f.runs}</td>
                                <td>{f.message.clone()}</td>
                                <td>{f.saved_as.clone().unwrap_or_else(|| "–".into())}</td>
                            </tr>
                        })
                        .collect_view()}
                </tbody>
            </table>
            <div class="session-actions">
                {save_dir.map(|dir| view! {
                    <form method="post" action=crate::format::href("/upload/save")>
                        <button type="submit" disabled=unsaved == 0>{format!("Save {} to {dir}", count(unsaved, "file"))}</button>
                    </form>
                })}
                <form method="post" action=crate::format::href("/upload/leave")>
                    <button type="submit">"Forget this upload"</button>
                </form>
            </div>
            <p class="hint">
                "Link to this session (private: whoever has it sees your files until it ends): "
                <a href=link.clone() rel="external">{link.clone()}</a>
            </p>
        </section>
    }
}

/// Sends the files one after another (browser only); the server's answer is each file's result.
#[cfg(feature = "hydrate")]
fn send_all(
    files: web_sys::FileList,
    sending: RwSignal<Vec<Sending>>,
    max_file: f64,
    version: Option<UploadVersion>,
    target: String,
) {
    let first = sending.with_untracked(Vec::len);
    let mut queue = std::collections::VecDeque::new();
    for i in 0..files.length() {
        let Some(file) = files.get(i) else { continue };
        let too_big = file.size() > max_file;
        let result = too_big.then(|| {
            (
                false,
                format!(
                    "{}: larger than the {} limit for one file: not sent",
                    file.name(),
                    human_bytes(max_file as u64)
                ),
            )
        });
        sending.update(|s| s.push(Sending { name: file.name(), size: file.size(), sent: 0.0, result }));
        if !too_big {
            queue.push_back((first + i as usize, file));
        }
    }
    let queue = std::rc::Rc::new(std::cell::RefCell::new(queue));
    send_next(Batch { queue, sending, version, target: target.into() });
}

#[cfg(not(feature = "hydrate"))]
fn send_all(_: web_sys::FileList, _: RwSignal<Vec<Sending>>, _: f64, _: Option<UploadVersion>, _: String) {}

/// Files still to send, where to, and what to update.
#[cfg(feature = "hydrate")]
#[derive(Clone)]
struct Batch {
    queue: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<(usize, web_sys::File)>>>,
    sending: RwSignal<Vec<Sending>>,
    version: Option<UploadVersion>,
    target: std::rc::Rc<str>,
}

#[cfg(feature = "hydrate")]
fn send_next(batch: Batch) {
    use wasm_bindgen::{closure::Closure, JsCast};
    let (sending, version) = (batch.sending, batch.version);
    let next = batch.queue.borrow_mut().pop_front();
    let Some((index, file)) = next else {
        // All sent: the session's table and the header banner reload.
        if let Some(v) = version {
            v.0.update(|n| *n += 1);
        }
        return;
    };
    let finish = move |result: (bool, String)| sending.update(|s| s[index].result = Some(result));
    let (Ok(xhr), Ok(form)) = (web_sys::XmlHttpRequest::new(), web_sys::FormData::new()) else {
        finish((false, "this browser cannot upload from the page: use the form without JavaScript".into()));
        return;
    };
    let _ = form.append_with_blob_and_filename("file", &file, &file.name());
    let _ = xhr.open("POST", &batch.target);
    let _ = xhr.set_request_header("Accept", "application/json");
    if let Ok(upload) = xhr.upload() {
        let progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |ev: web_sys::ProgressEvent| {
            sending.update(|s| s[index].sent = ev.loaded());
        });
        upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
        progress.forget();
    }
    let done_xhr = xhr.clone();
    let done = Closure::once(move || {
        let status = done_xhr.status().unwrap_or(0);
        let text = done_xhr.response_text().ok().flatten().unwrap_or_default();
        let answer: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let result = match (status, answer) {
            (200, Some(v)) => {
                let f = &v["files"][0];
                (f["accepted"].as_bool().unwrap_or(false), f["message"].as_str().unwrap_or("read").to_string())
            }
            (0, _) => (false, "the connection was lost while sending".to_string()),
            (code, Some(v)) => (false, format!("{} (HTTP {code})", v["error"].as_str().unwrap_or("refused"))),
            (code, None) => (false, format!("the server answered HTTP {code}")),
        };
        sending.update(|s| {
            s[index].sent = s[index].size;
        });
        finish(result);
        send_next(batch);
    });
    xhr.set_onloadend(Some(done.as_ref().unchecked_ref()));
    done.forget();
    if xhr.send_with_opt_form_data(Some(&form)).is_err() {
        finish((false, "the browser refused to send the file".into()));
    }
}

/// The header's reminder that the pages show the visitor's upload, not the logs.
#[component]
pub fn SessionBanner() -> impl IntoView {
    let version = upload_version();
    let state = Resource::new(version, |_| get_upload_state());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                state.await.ok().and_then(|s| s.session).map(|session| {
                    let n = session.files.iter().filter(|f| f.accepted).count();
                    view! {
                        <aside class="session-banner" id="session-banner" aria-label="Your upload">
                            <strong>"Your upload:"</strong>
                            {format!("these pages show the {} you uploaded (ends in {}). ", count(n, "file"), duration_s(session.expires_in_s as f64))}
                            <a href=crate::format::href("/upload")>"Details"</a>
                            <form method="post" action=crate::format::href("/upload/leave")>
                                <button type="submit">"Show the server's logs again"</button>
                            </form>
                        </aside>
                    }
                })
            })}
        </Suspense>
    }
}

/// Who the page is shown to, and a way to sign out, on a server that signs people in.
#[component]
pub fn Account() -> impl IntoView {
    let person = Resource::new(|| (), |_| crate::api::get_signed_in());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                person.await.ok().flatten().map(|p| {
                    view! {
                        <div class="account">
                            <span class="who" title="Signed in">{p.user}</span>
                            {p.can_sign_out.then(|| view! {
                                <form method="post" action=crate::format::href("/signout")>
                                    <button type="submit">"Sign out"</button>
                                </form>
                            })}
                        </div>
                    }
                })
            })}
        </Suspense>
    }
}
