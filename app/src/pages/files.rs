use super::LoadError;
use crate::api::get_files;
use carbon_core::model::FileReport;
use leptos::prelude::*;
use leptos_meta::Title;

/// Problems listed per file before "… and N more" (all of them are in `GET /api/v1/files`).
const MAX_PROBLEMS_SHOWN: usize = 50;

#[component]
pub fn Files() -> impl IntoView {
    let files = Resource::new(|| (), |_| get_files());
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
                    Ok(fs) => fs.into_iter().map(|f| view! { <FileCard f/> }).collect_view().into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn FileCard(f: FileReport) -> impl IntoView {
    let warnings = f.problems.iter().filter(|p| !p.rejected).count();
    let status = if f.rows_rejected > 0 {
        "bad"
    } else if warnings > 0 {
        "warn"
    } else {
        "ok"
    };
    let more = f.problems.len().saturating_sub(MAX_PROBLEMS_SHOWN);
    let layout = {
        let mut notes = Vec::new();
        if f.reordered {
            notes.push("columns in a different order".to_string());
        }
        if !f.missing_columns.is_empty() {
            notes.push(format!("missing: {}", f.missing_columns.join(", ")));
        }
        if !f.extra_columns.is_empty() {
            notes.push(format!(
                "extra columns kept as tags: {}",
                f.extra_columns.join(", ")
            ));
        }
        notes.join("; ")
    };
    view! {
        <section class=format!("file {status}")>
            <h2 class="path">{f.path.clone()}</h2>
            <p class="meta">
                {format!(
                    "{} · {} rows read · {} rejected · {} warnings · {} runs · {}",
                    f.schema_detail, f.rows_read, f.rows_rejected, warnings, f.runs, f.encoding
                )}
            </p>
            {(!layout.is_empty()).then(|| view! { <p class="meta">{layout}</p> })}
            {(!f.problems.is_empty()).then(|| view! {
                <table class="problems">
                    <thead><tr><th class="num">"Line"</th><th>"Column"</th><th>"Status"</th><th>"Reason"</th></tr></thead>
                    <tbody>
                        {f.problems.iter().take(MAX_PROBLEMS_SHOWN).map(|p| view! {
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
            })}
            {(more > 0).then(|| view! { <p class="hint">{format!("… and {more} more (see /api/v1/files)")}</p> })}
        </section>
    }
}
