use super::LoadError;
use crate::api::get_map;
use crate::format::{co2, energy, intensity};
use crate::words;
use carbon_core::model::Advice;
use carbon_core::pages::MapPage;
use carbon_core::query::WhatIfQuery;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

fn path_of(q: &WhatIfQuery) -> String {
    crate::format::url("/map", q.to_params())
}

/// "How much lower would this have been elsewhere?": the world map with every cloud region,
/// the ranking, and one recommendation. State in the URL; tooltips and clicks once hydrated.
#[component]
pub fn Map() -> impl IntoView {
    let query_map = use_query_map();
    let query = Memo::new(move |_| {
        let m = query_map.read();
        WhatIfQuery::from_params(|k| m.get(k))
    });
    let live = crate::live::live_version();
    let page = Resource::new(move || (query.get(), live()), |(q, _)| get_map(q));
    view! {
        <Title text="Map and what-if"/>
        <h1>"Where would it have been lower?"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <MapView p query/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn MapView(p: MapPage, query: Memo<WhatIfQuery>) -> impl IntoView {
    let q = query.get_untracked();
    let w = p.whatif;
    let navigate = use_navigate();
    let (tip, set_tip) = signal(None::<(String, i32, i32)>);
    let set = {
        let navigate = navigate.clone();
        move |key: &str, value: String| {
            let mut q = query.get_untracked();
            let v = (!value.is_empty()).then_some(value);
            match key {
                "project" => {
                    q.project = v;
                    q.run_id = None;
                    q.experiment = None;
                }
                "tool" => q.tool = v,
                "provider" => q.filters.provider = v,
                "continent" => q.filters.continent = v,
                _ => q.filters.within_km = v.and_then(|k| k.parse().ok()),
            }
            navigate(&path_of(&q), Default::default());
        }
    };
    let on_move = move |ev: web_sys::MouseEvent| set_tip.set(super::tip_at(&ev));
    let on_click = move |ev: web_sys::MouseEvent| {
        let marker = super::attribute_at(&ev, "data-region");
        if let Some(id) = marker {
            let mut q = query.get_untracked();
            q.region = Some(id);
            navigate(&path_of(&q), Default::default());
        }
    };
    let select = |key: &'static str, label: &'static str, options: Vec<String>, current: Option<String>| {
        let set = set.clone();
        let current = current.unwrap_or_default();
        view! {
            <label>
                {label}
                <select name=key on:change=move |ev| set(key, event_target_value(&ev))>
                    <option value="" selected=current.is_empty()>"all"</option>
                    {options.into_iter().map(|o| view! { <option value=o.clone() selected=o == current>{o.clone()}</option> }).collect_view()}
                </select>
            </label>
        }
    };
    let within = {
        let set = set.clone();
        view! {
            <label>
                "Within (km)"
                <input
                    type="number"
                    name="within_km"
                    min="0"
                    step="100"
                    value=q.filters.within_km.map(|k| k.to_string()).unwrap_or_default()
                    on:change=move |ev| set("within_km", event_target_value(&ev))
                />
            </label>
        }
    };
    let now = super::gridnow::use_grid_now();
    let selected = p.selected.clone();
    let selected_option = selected
        .as_ref()
        .and_then(|s| w.options.iter().find(|o| o.provider == s.provider && o.region == s.region).cloned());
    view! {
        <form class="filters" method="get" action=crate::format::href("/map")>
            {q.run_id.clone().map(|id| view! { <input type="hidden" name="run_id" value=id/> })}
            {q.experiment.clone().map(|e| view! { <input type="hidden" name="experiment" value=e/> })}
            {select("project", "Selection: project", p.projects, q.project.clone())}
            {(p.tools.len() > 1 || q.tool.is_some()).then(|| select("tool", "Tracker", p.tools.clone(), q.tool.clone()))}
            {select("provider", "Provider", p.providers, q.filters.provider.clone())}
            {select("continent", "Continent", p.continents, q.filters.continent.clone())}
            {within}
            <noscript><button type="submit">"Apply"</button></noscript>
            <a href=crate::format::href("/map")>"All runs, no filter"</a>
        </form>
        <p class="recommendation" class:clean=w.advice == Advice::AlreadyCleanest id="recommendation">{words::recommendation(&w)}</p>
        <p class="hint">
            {format!(
                "Selection: {} — {} runs, {}, {} where they ran ({}). Each region: the same energy × its grid intensity (latest data).",
                w.selection,
                w.runs,
                energy(Some(w.energy_kwh)),
                co2(Some(w.current_co2_kg)),
                words::ran_in(&w)
            )}
        </p>
        <div class="map" on:mousemove=on_move on:mouseleave=move |_| set_tip.set(None) on:click=on_click inner_html=p.svg></div>
        {move || tip.get().map(|(t, x, y)| view! {
            <div class="tooltip" role="tooltip" style=format!("left: {}px; top: {}px", x + 14, y + 14)>{t}</div>
        })}
        {selected.map(|s| view! {
            <section class="selected-region" id="selected-region">
                <h2>{format!("Selected: {} {} — {}", s.provider, s.region, s.name)}</h2>
                <p>
                    {format!("{} ({}), {}", intensity(s.intensity_g_per_kwh), s.label, s.continent)}
                    {s.google_cfe_pct.map(|c| format!("; Google carbon-free energy {c:.0} %"))}
                </p>
                <p>
                    "Grid now: " <super::gridnow::NowBadge now key=format!("{}/{}", s.provider, s.region)/> " · "
                    <a class="plan-link" href=crate::format::href(&format!("/plan?region={}/{}&duration=1h", s.provider, s.region))>"When to run here"</a>
                </p>
                {selected_option.map(|o| view! {
                    <p>{format!("The selection here: {} ({} – {}), {} {} than where it ran.",
                        co2(Some(o.co2_kg)), co2(Some(o.co2_kg_low)), co2(Some(o.co2_kg_high)),
                        co2(Some(o.saving_kg.abs())), if o.saving_kg >= 0.0 { "less" } else { "more" })}</p>
                })}
            </section>
        })}
        <h2>"Every region, lowest CO₂ first"</h2>
        <super::gridnow::GridNowNote now/>
        <table class="whatif">
            <thead>
                <tr>
                    <th class="num">"#"</th>
                    <th>"Region"</th>
                    <th>"Country"</th>
                    <th class="num">"Intensity"</th>
                    <th>"Now"</th>
                    <th class="num">"CO₂ there"</th>
                    <th class="num">"Saving"</th>
                    <th class="num">"Distance"</th>
                </tr>
            </thead>
            <tbody>
                {w.options.into_iter().enumerate().map(|(i, o)| {
                    let id = format!("{}/{}", o.provider, o.region);
                    let is_sel = q.region.as_deref() == Some(id.as_str());
                    let mut qq = q.clone();
                    qq.region = Some(id.clone());
                    view! {
                        <tr class:selected=is_sel data-region=id.clone()>
                            <td class="num">{i + 1}</td>
                            <td><a href=crate::format::href(&path_of(&qq))>{format!("{} {}", o.provider, o.region)}</a> " " <span class="hint">{o.name.clone()}</span></td>
                            <td>{format!("{} · {}", o.country_iso_code, o.continent)}</td>
                            <td class="num">{intensity(o.intensity_g_per_kwh)}</td>
                            <td><super::gridnow::NowBadge now key=id.clone()/></td>
                            <td class="num" title=format!("range {} – {}", co2(Some(o.co2_kg_low)), co2(Some(o.co2_kg_high)))>{co2(Some(o.co2_kg))}</td>
                            <td class="num">{format!("{} ({:+.0} %)", co2(Some(o.saving_kg)), -o.saving_pct)}</td>
                            <td class="num">{o.distance_km.map(|d| format!("{d:.0} km")).unwrap_or_else(|| "–".into())}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
