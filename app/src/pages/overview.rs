use super::{Equivalents, LoadError, Stat};
use crate::api::get_overview;
use crate::format::{co2, co2_range, duration, encode, energy, run_href, short_id, when};
use carbon_core::model::{DatasetMode, ProjectNode};
use carbon_core::pages::OverviewPage;
use carbon_core::units::count;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn Overview() -> impl IntoView {
    let dataset = crate::use_dataset();
    let query = leptos_router::hooks::use_query_map();
    let page = Memo::new(move |_| query.read().get("page").and_then(|p| p.trim().parse().ok()).unwrap_or(1usize));
    let live = crate::live::live_version();
    let summary = Resource::new(move || (dataset.get(), page.get(), live()), |(d, page, _)| get_overview(d, page));
    view! {
        <Title text="Overview"/>
        <h1>"Overview"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match summary.await {
                    Ok(o) => view! { <SummaryView o dataset=dataset.get_untracked()/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The overview's link to page `page` of the project tree.
fn page_href(page: usize, dataset: DatasetMode) -> String {
    let mut params = vec![("page", page.to_string())];
    if dataset != DatasetMode::Latest {
        params.push(("dataset", dataset.as_str().to_string()));
    }
    crate::format::href(&crate::format::url("/", params))
}

#[component]
fn SummaryView(o: OverviewPage, dataset: DatasetMode) -> impl IntoView {
    let s = o.summary;
    let t = &s.totals;
    let period = match (&s.first_run, &s.last_run) {
        (Some(a), Some(b)) => format!("{} → {}", when(&Some(*a)), when(&Some(*b))),
        _ => "no dated runs".into(),
    };
    let no_energy = format!(
        "range {} – {}; {}",
        energy(Some(t.energy_kwh_low)),
        energy(Some(t.energy_kwh_high)),
        if t.runs_without_energy > 0 {
            format!("{} runs carry no energy figure", t.runs_without_energy)
        } else {
            "CodeCarbon, PUE included".to_string()
        }
    );
    let projects = s.projects.clone();
    view! {
        <section class="stats" aria-label="Totals">
            <Stat label="Runs" value=t.runs.to_string() note=period/>
            <Stat label="Energy" value=energy(Some(t.energy_kwh)) note=no_energy/>
            <Stat
                label="CO₂ (recomputed)"
                value=co2(Some(t.co2_kg))
                note=format!(
                    "range {} – {}; {} grid data",
                    co2(Some(t.co2_kg_low)),
                    co2(Some(t.co2_kg_high)),
                    s.dataset.as_str()
                )
            />
            <Stat label="CO₂ (as reported)" value=co2(Some(t.co2_kg_reported)) note="the CSVs' emissions column"/>
            <Stat label="Compute time" value=duration(Some(t.duration_s)) note="sum of run durations"/>
            <Stat
                label="Files"
                value=s.files.to_string()
                note=format!("{} rows read, {} rejected", s.rows_read, s.rows_rejected)
            />
        </section>
        <Equivalents list=o.equivalents/>
        <div class="overview-glance">
            {o.charts.into_iter().map(|chart| view! { <super::ChartView chart/> }).collect_view()}
            {(!o.map_svg.is_empty()).then(|| view! {
                <figure class="runs-map" id="overview-map">
                    <div class="chart-svg" inner_html=o.map_svg.clone()></div>
                    <figcaption>"Where the runs ran: " {o.map_note.clone()} ". " <a href=crate::format::href("/map")>"The map and the what-if →"</a></figcaption>
                </figure>
            })}
        </div>
        <p><a href=crate::format::href("/map")>"Where would all of this have been lower? The map and the what-if →"</a></p>
        <h2>"Projects"</h2>
        <p class="hint">"Project → experiment → run. Totals per level; open a run for its details."</p>
        <div class="tree">
            {projects.into_iter().map(|p| view! { <ProjectTree p/> }).collect_view()}
        </div>
        {(o.pages > 1).then(|| view! {
            <nav class="pager" aria-label="Project pages">
                {(o.page > 1).then(|| view! { <a rel="prev" href=page_href(o.page - 1, dataset)>"← previous"</a> })}
                <span>{format!("projects page {} of {} ({} projects)", o.page, o.pages, o.projects_total)}</span>
                {(o.page < o.pages).then(|| view! { <a rel="next" href=page_href(o.page + 1, dataset)>"next →"</a> })}
            </nav>
        })}
        <p><a href=crate::format::href("/files")>"Ingest diagnostics for every file →"</a></p>
    }
}

#[component]
fn ProjectTree(p: ProjectNode) -> impl IntoView {
    let n_exp = p.experiments.len();
    let project = p.project_name.clone();
    view! {
        <details class="project" open=n_exp <= 3>
            <summary>
                <span class="name">{p.project_name.clone()}</span>
                <span class="figures">
                    {format!("{} · {} · {}", count(p.totals.runs, "run"), energy(Some(p.totals.energy_kwh)), co2_range(Some(p.totals.co2_kg), Some(p.totals.co2_kg_low), Some(p.totals.co2_kg_high)))}
                </span>
            </summary>
            {p
                .experiments
                .into_iter()
                .map(|e| {
                    let hidden = e.totals.runs - e.runs.len();
                    let all = format!(
                        "/runs?project={}&experiment={}",
                        encode(&project),
                        encode(&e.experiment_id)
                    );
                    view! {
                        <details class="experiment">
                            <summary>
                                <span class="name">"experiment " {short_id(&e.experiment_id)}</span>
                                <span class="figures">
                                    {format!("{} · {} · {}", count(e.totals.runs, "run"), energy(Some(e.totals.energy_kwh)), co2_range(Some(e.totals.co2_kg), Some(e.totals.co2_kg_low), Some(e.totals.co2_kg_high)))}
                                </span>
                            </summary>
                            <ul class="runs">
                                {e
                                    .runs
                                    .into_iter()
                                    .map(|r| {
                                        view! {
                                            <li>
                                                <a href=run_href(&r.run_id)>{short_id(&r.run_id)}</a>
                                                <span class="figures">
                                                    {format!("{} · {} · {}", when(&r.started_at), energy(r.energy_kwh), co2(r.co2_kg))}
                                                </span>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                                {(hidden > 0).then(|| view! {
                                    <li><a href=crate::format::href(&all)>{format!("all {} runs →", e.totals.runs)}</a></li>
                                })}
                                <li>
                                    <a class="whatif-link" href=crate::format::href(&format!("/map?project={}&experiment={}", encode(&project), encode(&e.experiment_id)))>
                                        "where would this experiment have been lower? →"
                                    </a>
                                </li>
                            </ul>
                        </details>
                    }
                })
                .collect_view()}
            <p class="more">
                <a href=crate::format::href(&format!("/pareto?project={}", encode(&project)))>"accuracy against CO₂e, and a report →"</a>
            </p>
            {(p.experiments_total > n_exp).then(|| view! {
                <p class="more">
                    <a href=crate::format::href(&format!("/runs?project={}", encode(&project)))>
                        {format!("and {} more experiments: every run of {} →", p.experiments_total - n_exp, project)}
                    </a>
                </p>
            })}
        </details>
    }
}
