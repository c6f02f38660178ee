use super::LoadError;
use crate::api::get_files;
use carbon_core::model::FileReport;
use carbon_core::pages::FilesPage;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn Files() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let page = Memo::new(move |_| query.read().get("page").and_then(|p| p.trim().parse().ok()).unwrap_or(1usize));
    let live = crate::live::live_version();
    let files = Resource::new(move || (page.get(), live()), |(page, _)| get_files(page));
    view! {
        <Title text="Files"/>
        <h1>"Files"</h1>
        <p class="hint">
            "Every file read, the layout found (CodeCarbon's, or another tracker's: carbontracker, eco2AI, Zeus, experiment-impact-tracker), and each row that was not counted or was repaired, with its line. "
            "The files themselves are never changed."
        </p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match files.await {
                    Ok(p) => view! { <FileList p/> }.into_any(),
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

/// A file worth a card of its own: one with problems or an unusual layout (the table says the
/// rest).
fn has_notes(f: &FileReport) -> bool {
    f.problem_count > 0 || f.join_failed || f.reordered || !f.missing_columns.is_empty() || !f.extra_columns.is_empty()
}

fn page_href(page: usize) -> String {
    crate::format::href(&format!("/files?page={page}"))
}

#[component]
fn FileList(p: FilesPage) -> impl IntoView {
    let fs = p.files;
    let first = (p.page - 1) * carbon_core::pages::FILES_PER_PAGE;
    let pager = (p.pages > 1).then(|| {
        view! {
            <nav class="pager" aria-label="File pages">
                {(p.page > 1).then(|| view! { <a rel="prev" href=page_href(p.page - 1)>"← previous"</a> })}
                <span>{format!("page {} of {}", p.page, p.pages)}</span>
                {(p.page < p.pages).then(|| view! { <a rel="next" href=page_href(p.page + 1)>"next →"</a> })}
            </nav>
        }
    });
    view! {
        {p.watch_problem.clone().map(|why| view! { <p class="error" id="watch-problem">{format!("Changes to the logs folder may not be seen: {why}")}</p> })}
        <p class="hint">
            {format!(
                "{} files, {} with problems; files {}–{} below",
                p.total,
                p.with_problems,
                (first + 1).min(p.total),
                first + fs.len()
            )}
        </p>
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
                            <td>
                                {if has_notes(f) {
                                    view! { <a href=format!("#{}", anchor(i))>{f.path.clone()}</a> }.into_any()
                                } else {
                                    view! { <span>{f.path.clone()}</span> }.into_any()
                                }}
                                {f.join.clone().map(|j| view! { <div class="join" class:bad=f.join_failed>{j}</div> })}
                            </td>
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
        {pager}
        {fs
            .into_iter()
            .enumerate()
            .filter(|(_, f)| has_notes(f))
            .map(|(i, f)| view! { <FileCard f id=anchor(i)/> })
            .collect_view()}
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
            {f.join.clone().map(|j| view! { <p class="meta join" class:bad=f.join_failed>{j}</p> })}
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
