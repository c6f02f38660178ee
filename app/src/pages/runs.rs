use super::LoadError;
use crate::api::get_runs_page;
use crate::format::{co2, duration, energy, run_href, short_id, text, when};
use carbon_core::model::UNNAMED;
use carbon_core::pages::RunsPage;
use carbon_core::query::{RunQuery, SortKey};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

fn path_of(q: &RunQuery) -> String {
    crate::format::url("/runs", q.to_params())
}

/// The filterable, sortable, paged table. The URL holds the state, so every view works without
/// JavaScript (links and a GET form) and, once hydrated, changes without a page load: the
/// router navigates and only the new page of rows is fetched.
#[component]
pub fn Runs() -> impl IntoView {
    let query_map = use_query_map();
    let query = Memo::new(move |_| {
        let m = query_map.read();
        RunQuery::from_params(|k| m.get(k))
    });
    let live = crate::live::live_version();
    let page = Resource::new(move || (query.get(), live()), |(q, _)| get_runs_page(q));
    view! {
        <Title text="Runs"/>
        <h1>"Runs"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <RunsTable p query/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn RunsTable(p: RunsPage, query: Memo<RunQuery>) -> impl IntoView {
    let q = query.get_untracked();
    let navigate = use_navigate();
    let set_param = move |key: &str, value: String| {
        let mut q = query.get_untracked();
        let v = (!value.is_empty()).then_some(value);
        match key {
            "project" => q.project = v,
            "experiment" => q.experiment = v,
            "country" => q.country = v,
            "team" => q.team = v,
            "provider" => q.provider = v,
            "tool" => q.tool = v,
            "from" => q.from = v,
            "metric" => q.metric = v,
            _ => q.to = v,
        }
        navigate(&path_of(&q.on_page(1)), Default::default());
    };
    let select = |key: &'static str, label: &'static str, options: Vec<String>, current: Option<String>| {
        let set_param = set_param.clone();
        let current = current.unwrap_or_default();
        view! {
            <label>
                {label}
                <select name=key on:change=move |ev| set_param(key, event_target_value(&ev))>
                    <option value="" selected=current.is_empty()>{if key == "metric" { "none" } else { "all" }}</option>
                    {options
                        .into_iter()
                        .map(|o| {
                            let label = if key == "experiment" && o != UNNAMED { short_id(&o) } else { o.clone() };
                            view! { <option value=o.clone() selected=o == current>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
        }
    };
    let date = |key: &'static str, label: &'static str, current: Option<String>| {
        let set_param = set_param.clone();
        view! {
            <label>
                {label}
                <input
                    type="date"
                    name=key
                    value=current.unwrap_or_default()
                    on:change=move |ev| set_param(key, event_target_value(&ev))
                />
            </label>
        }
    };
    let header = |key: SortKey, label: &'static str, numeric: bool| {
        let sorted = q.sort_key() == key;
        let desc = q.is_descending();
        view! {
            <th
                class:num=numeric
                aria-sort=if !sorted { "none" } else if desc { "descending" } else { "ascending" }
            >
                <a href=crate::format::href(&path_of(&q.toggled(key))) data-sort=key.as_str()>
                    {label}
                    {if !sorted { "" } else if desc { " ▼" } else { " ▲" }}
                </a>
            </th>
        }
    };
    let metric_name = q.metric.clone().filter(|m| p.metrics.contains(m));
    let first = (p.page - 1) * carbon_core::query::PAGE_SIZE + 1;
    let count = if p.matched == 0 {
        format!("0 of {} runs", p.total)
    } else {
        format!("{}–{} of {} runs ({} loaded)", first, first + p.rows.len() - 1, p.matched, p.total)
    };
    view! {
        <form class="filters" method="get" action=crate::format::href("/runs")>
            {select("project", "Project", p.projects, q.project.clone())}
            {select("experiment", "Experiment", p.experiments, q.experiment.clone())}
            {select("country", "Country", p.countries, q.country.clone())}
            {select("team", "Team", p.teams, q.team.clone())}
            {select("provider", "Cloud", p.providers, q.provider.clone())}
            {(p.tools.len() > 1 || q.tool.is_some()).then(|| select("tool", "Tracker", p.tools.clone(), q.tool.clone()))}
            {date("from", "Started from", q.from.clone())}
            {date("to", "to", q.to.clone())}
            {(!p.metrics.is_empty()).then(|| select("metric", "Metric column", p.metrics.clone(), q.metric.clone()))}
            <noscript>
                <button type="submit">"Apply"</button>
            </noscript>
            <a href=crate::format::href("/runs")>"Clear"</a>
        </form>
        <p class="hint" id="runs-count">{count}</p>
        <table class="runs-table">
            <thead>
                <tr>
                    <th>"Run"</th>
                    {header(SortKey::Project, "Project", false)}
                    {header(SortKey::Experiment, "Experiment", false)}
                    {header(SortKey::Started, "Started", false)}
                    {header(SortKey::Duration, "Duration", true)}
                    {header(SortKey::Energy, "Energy", true)}
                    {header(SortKey::Co2, "CO₂", true)}
                    {header(SortKey::Co2Reported, "Reported", true)}
                    <th>"Gap to reported"</th>
                    {header(SortKey::Country, "Country", false)}
                    <th>"Cloud"</th>
                    <th>"Tracker"</th>
                    {metric_name.clone().map(|m| view! { <th class="num" data-metric=m.clone()>{m.clone()}</th> })}
                </tr>
            </thead>
            <tbody>
                {p
                    .rows
                    .into_iter()
                    .map(|r| {
                        view! {
                            <tr>
                                <td><a href=run_href(&r.run_id) title=r.run_id.clone()>{short_id(&r.run_id)}</a></td>
                                <td>{text(&r.project_name)}</td>
                                <td title=text(&r.experiment_id)>{r.experiment_id.as_deref().map(short_id).unwrap_or_else(|| "–".into())}</td>
                                <td>{when(&r.started_at)}</td>
                                <td class="num">{duration(r.duration_s)}</td>
                                <td class="num">{energy(r.energy_kwh)}</td>
                                <td
                                    class="num"
                                    title=format!(
                                        "range {} – {}; {} × {}",
                                        co2(r.co2_kg_low),
                                        co2(r.co2_kg_high),
                                        energy(r.energy_kwh),
                                        r.location_label
                                    )
                                >
                                    {co2(r.co2_kg)}
                                    <div class="range">
                                        {match (r.co2_kg_low, r.co2_kg_high) {
                                            (Some(l), Some(h)) => format!("{}–{}", co2(Some(l)), co2(Some(h))),
                                            _ => String::new(),
                                        }}
                                    </div>
                                </td>
                                <td class="num">{co2(r.co2_kg_reported)}</td>
                                <td class="gap" title=r.delta_reason.as_ref().map(|d| d.detail.clone()).unwrap_or_default()>
                                    {r.delta_reason.as_ref().map(|d| d.kind.label()).unwrap_or("")}
                                </td>
                                <td>{text(&r.country_name)} {r.region.clone().map(|g| format!(" · {g}"))}</td>
                                <td>
                                    {match (&r.cloud_provider, &r.cloud_region) {
                                        (Some(p), Some(g)) => format!("{p} {g}"),
                                        _ => "–".into(),
                                    }}
                                </td>
                                <td class="tool">{r.tool.clone()}</td>
                                {metric_name.is_some().then(|| view! {
                                    <td class="num metric">{r.metric.map(carbon_core::units::sig4).unwrap_or_else(|| "–".into())}</td>
                                })}
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        {(p.pages > 1).then(|| view! {
            <nav class="pager" aria-label="Pages">
                {(p.page > 1).then(|| view! { <a rel="prev" href=crate::format::href(&path_of(&q.on_page(p.page - 1)))>"← previous"</a> })}
                <span>{format!("page {} of {}", p.page, p.pages)}</span>
                {(p.page < p.pages).then(|| view! { <a rel="next" href=crate::format::href(&path_of(&q.on_page(p.page + 1)))>"next →"</a> })}
            </nav>
        })}
    }
}
