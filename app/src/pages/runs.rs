use super::LoadError;
use crate::api::get_runs;
use crate::format::{co2, duration, encode, energy, run_href, short_id, text, when};
use carbon_core::model::{Run, UNNAMED};
use carbon_core::query::{RunQuery, SortKey};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use std::collections::BTreeSet;
use std::sync::Arc;

#[component]
pub fn Runs() -> impl IntoView {
    let runs = Resource::new(|| (), |_| get_runs());
    view! {
        <Title text="Runs"/>
        <h1>"Runs"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match runs.await {
                    Ok(all) => view! { <RunsTable all=Arc::new(all)/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn href(q: &RunQuery) -> String {
    let params: Vec<String> = q
        .to_params()
        .into_iter()
        .map(|(k, v)| format!("{k}={}", encode(&v)))
        .collect();
    if params.is_empty() {
        "/runs".into()
    } else {
        format!("/runs?{}", params.join("&"))
    }
}

fn distinct(all: &[Run], f: impl Fn(&Run) -> Option<&String>) -> Vec<String> {
    all.iter()
        .map(|r| f(r).cloned().unwrap_or_else(|| UNNAMED.to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The filterable, sortable table. The URL holds the state, so every view works without
/// JavaScript (links and a GET form) and, once hydrated, changes without a page load.
#[component]
fn RunsTable(all: Arc<Vec<Run>>) -> impl IntoView {
    let query_map = use_query_map();
    let query = Memo::new(move |_| {
        let m = query_map.read();
        RunQuery::from_params(|k| m.get(k))
    });
    let projects = distinct(&all, |r| r.project_name.as_ref());
    let experiments = distinct(&all, |r| r.experiment_id.as_ref());
    let countries = distinct(&all, |r| r.country_name.as_ref());
    let navigate = use_navigate();
    let set_param = move |key: &'static str, value: String| {
        let mut q = query.get_untracked();
        let v = (!value.is_empty()).then_some(value);
        match key {
            "project" => q.project = v,
            "experiment" => q.experiment = v,
            "country" => q.country = v,
            "from" => q.from = v,
            _ => q.to = v,
        }
        navigate(&href(&q), Default::default());
    };
    let set_for_select = set_param.clone();
    let select = move |key: &'static str, label: &'static str, options: Vec<String>| {
        let set_param = set_for_select.clone();
        view! {
            <label>
                {label}
                <select
                    name=key
                    on:change=move |ev| set_param(key, event_target_value(&ev))
                    prop:value=move || {
                        let q = query.get();
                        match key {
                            "project" => q.project,
                            "experiment" => q.experiment,
                            _ => q.country,
                        }
                            .unwrap_or_default()
                    }
                >
                    <option value="">"all"</option>
                    {options
                        .into_iter()
                        .map(|o| {
                            let label = if key == "experiment" && o != UNNAMED { short_id(&o) } else { o.clone() };
                            view! { <option value=o.clone()>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
        }
    };
    let date = move |key: &'static str, label: &'static str| {
        let set_param = set_param.clone();
        view! {
            <label>
                {label}
                <input
                    type="date"
                    name=key
                    prop:value=move || { if key == "from" { query.get().from } else { query.get().to }.unwrap_or_default() }
                    on:change=move |ev| set_param(key, event_target_value(&ev))
                />
            </label>
        }
    };
    let header = move |key: SortKey, label: &'static str, numeric: bool| {
        view! {
            <th
                class:num=numeric
                aria-sort=move || {
                    let q = query.get();
                    if q.sort_key() != key {
                        "none"
                    } else if q.is_descending() {
                        "descending"
                    } else {
                        "ascending"
                    }
                }
            >
                <a href=move || href(&query.get().toggled(key)) data-sort=key.as_str()>
                    {label}
                    {move || {
                        let q = query.get();
                        if q.sort_key() != key { "" } else if q.is_descending() { " ▼" } else { " ▲" }
                    }}
                </a>
            </th>
        }
    };
    let all_rows = all.clone();
    let rows = Memo::new(move |_| {
        let q = query.get();
        q.apply(&all_rows)
            .into_iter()
            .cloned()
            .collect::<Vec<Run>>()
    });
    let total = all.len();
    view! {
        <form class="filters" method="get" action="/runs">
            {select("project", "Project", projects)}
            {select("experiment", "Experiment", experiments)}
            {select("country", "Country", countries)}
            {date("from", "Started from")}
            {date("to", "to")}
            <button type="submit">"Apply"</button>
            <a href="/runs">"Clear"</a>
        </form>
        <p class="hint" id="runs-count">
            {move || format!("{} of {} runs", rows.read().len(), total)}
        </p>
        <table class="runs-table">
            <thead>
                <tr>
                    <th>"Run"</th>
                    {header(SortKey::Project, "Project", false)}
                    {header(SortKey::Experiment, "Experiment", false)}
                    {header(SortKey::Started, "Started", false)}
                    {header(SortKey::Duration, "Duration", true)}
                    {header(SortKey::Energy, "Energy", true)}
                    {header(SortKey::Co2, "CO₂ reported", true)}
                    {header(SortKey::Country, "Country", false)}
                    <th>"Cloud"</th>
                </tr>
            </thead>
            <tbody>
                <For each=move || rows.get() key=|r| r.run_id.clone() let:r>
                    <tr>
                        <td><a href=run_href(&r.run_id) title=r.run_id.clone()>{short_id(&r.run_id)}</a></td>
                        <td>{text(&r.project_name)}</td>
                        <td title=text(&r.experiment_id)>{r.experiment_id.as_deref().map(short_id).unwrap_or_else(|| "–".into())}</td>
                        <td>{when(&r.started_at)}</td>
                        <td class="num">{duration(r.duration_s)}</td>
                        <td class="num">{energy(r.energy_kwh)}</td>
                        <td class="num">{co2(r.co2_kg_reported)}</td>
                        <td>{text(&r.country_name)} {r.region.clone().map(|g| format!(" · {g}"))}</td>
                        <td>
                            {match (&r.cloud_provider, &r.cloud_region) {
                                (Some(p), Some(g)) => format!("{p} {g}"),
                                _ => "–".into(),
                            }}
                        </td>
                    </tr>
                </For>
            </tbody>
        </table>
    }
}
