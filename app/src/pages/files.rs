use super::LoadError;
use crate::api::get_files;
use carbon_core::model::FileReport;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn Files() -> impl IntoView {
    let live = crate::live::live_version();
    let files = Resource::new(live, |_| get_files());
    view! {
        <Title text="Files"/>
        <h1>"Files"</h1>
        <p class="hint">
            "Every file read, the CodeCarbon layout found, and each row that was not counted or was repaired, with its line. "
            "The files themselves are never changed."
        </p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match files.await {
                    Ok(fs) => view! { <FileList fs/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn anchor(i: usize) -> String {
    format!("file-{i}")
}

fn warnings(f: &FileReport) -> usize {
    f.problem_count.saturating_sub(f.rows_rejected)
}

#[component]
fn FileList(fs: Vec<FileReport>) -> impl IntoView {
    view! {
        <table class="files-table">
            <thead>
                <tr>
                    <th>"File"</th>
                    <th>"Layout"</th>
                    <th class="num">"Rows read"</th>
                    <th class="num">"Rejected"</th>
                    <th class="num">"Warnings"</th>
                    <th class="num">"Runs"</th>
                </tr>
            </thead>
            <tbody>
                {fs
                    .iter()
                    .enumerate()
                    .map(|(i, f)| view! {
                        <tr>
                            <td><a href=format!("#{}", anchor(i))>{f.path.clone()}</a></td>
                            <td>{f.schema.clone()}</td>
                            <td class="num">{f.rows_read}</td>
                            <td class={if f.rows_rejected > 0 { "num bad" } else { "num" }}>{f.rows_rejected}</td>
                            <td class="num">{warnings(f)}</td>
                            <td class="num">{f.runs}</td>
                        </tr>
                    })
                    .collect_view()}
            </tbody>
        </table>
        {fs.into_iter().enumerate().map(|(i, f)| view! { <FileCard f id=anchor(i)/> }).collect_view()}
    }
}

#[component]
fn FileCard(f: FileReport, id: String) -> impl IntoView {
    let warnings = warnings(&f);
    let status = if f.rows_rejected > 0 {
        "bad"
    } else if warnings > 0 {
        "warn"
    } else {
        "ok"
    };
    let more = f.problem_count.saturating_sub(f.problems.len());
    let layout = {
        let mut notes = Vec::new();
        if f.reordered {
            notes.push("columns in a different order".to_string());
        }
        if !f.missing_columns.is_empty() {
            notes.push(format!("missing: {}", f.missing_columns.join(", ")));
        }
        if !f.extra_columns.is_empty() {
            notes.push(format!("extra columns kept as tags: {}", f.extra_columns.join(", ")));
        }
        notes.join("; ")
    };
    let open = f.problem_count <= 10;
    view! {
        <section class=format!("file {status}") id=id>
            <h2 class="path">{f.path.clone()}</h2>
            <p class="meta">
                {format!(
                    "{} · {} rows read · {} rejected · {} warnings · {} runs · {}",
                    f.schema_detail, f.rows_read, f.rows_rejected, warnings, f.runs, f.encoding
                )}
            </p>
            {(!layout.is_empty()).then(|| view! { <p class="meta">{layout}</p> })}
            {(!f.problems.is_empty()).then(|| view! {
                <details open=open>
                    <summary>{format!("{} problems", f.problem_count)}</summary>
                    <table class="problems">
                        <thead><tr><th class="num">"Line"</th><th>"Column"</th><th>"Status"</th><th>"Reason"</th></tr></thead>
                        <tbody>
                            {f.problems.iter().map(|p| view! {
                                <tr class:rejected=p.rejected>
                                    <td class="num">{if p.line == 0 { "file".to_string() } else { p.line.to_string() }}</td>
                                    <td>{match (&p.column, &p.column_name) {
                                        (Some(c), Some(n)) => format!("{c} ({n})"),
                                        (None, Some(n)) => n.clone(),
                                        _ => "–".into(),
                                    }}</td>
                                    <td>{if p.rejected { "not counted" } else { "kept" }}</td>
                                    <td>{p.reason.clone()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    {(more > 0).then(|| view! { <p class="hint">{format!("… and {more} more: GET /api/v1/files lists them all")}</p> })}
                </details>
            })}
        </section>
    }
}
