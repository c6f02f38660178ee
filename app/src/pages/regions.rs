use super::LoadError;
use crate::api::get_regions;
use crate::format::intensity;
use carbon_core::model::RegionRow;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

const COLUMNS: &[(&str, &str)] = &[
    ("provider", "Provider"),
    ("region", "Region"),
    ("country", "Country"),
    ("intensity", "Grid intensity"),
    ("cfe", "Google CFE"),
    ("year", "Year"),
];

fn sorted(mut rows: Vec<RegionRow>, key: &str, desc: bool) -> Vec<RegionRow> {
    rows.sort_by(|a, b| {
        let o = match key {
            "provider" => a.provider.cmp(&b.provider).then_with(|| a.region.cmp(&b.region)),
            "region" => a.region.cmp(&b.region),
            "country" => a.country_iso_code.cmp(&b.country_iso_code),
            "cfe" => a.google_cfe_pct.unwrap_or(-1.0).total_cmp(&b.google_cfe_pct.unwrap_or(-1.0)),
            "year" => a.year.cmp(&b.year),
            _ => a.intensity_g_per_kwh.total_cmp(&b.intensity_g_per_kwh),
        };
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    rows
}

/// All cloud regions, sortable, with intensity, source, year and Google's CFE % beside it.
#[component]
pub fn Regions() -> impl IntoView {
    let regions = Resource::new(|| (), |_| get_regions());
    let now = super::gridnow::use_grid_now();
    let q = use_query_map();
    let key = Memo::new(move |_| q.read().get("sort").unwrap_or_else(|| "intensity".into()));
    let desc = Memo::new(move |_| q.read().get("dir").as_deref() == Some("desc"));
    view! {
        <Title text="Cloud regions"/>
        <h1>"Cloud regions"</h1>
        <p class="hint">
            "Grid carbon intensity of every AWS, Azure and GCP region (latest data): Google's own 2024 figure for its regions, "
            "otherwise the grid where the region is. Google's carbon-free energy share is shown beside it, not instead of it."
        </p>
        <super::gridnow::GridNowNote now/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match regions.await {
                    Ok(rows) => view! {
                        <table class="regions">
                            <thead>
                                <tr>
                                    {COLUMNS.iter().map(|(k, label)| {
                                        let here = move || key.get() == *k;
                                        view! {
                                            <th aria-sort=move || if !here() { "none" } else if desc.get() { "descending" } else { "ascending" }>
                                                <a data-sort=*k href=move || crate::format::href(&format!("/regions?sort={k}&dir={}", if here() && !desc.get() { "desc" } else { "asc" }))>
                                                    {*label}
                                                    {move || if !here() { "" } else if desc.get() { " ▼" } else { " ▲" }}
                                                </a>
                                            </th>
                                        }
                                    }).collect_view()}
                                    <th>"Now"</th>
                                    <th>"Source"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {move || sorted(rows.clone(), &key.get(), desc.get()).into_iter().map(|r| view! {
                                    <tr>
                                        <td>{r.provider.clone()}</td>
                                        <td><a href=crate::format::href(&format!("/map?region={}/{}", r.provider, r.region))>{r.region.clone()}</a> " " <span class="hint">{r.name.clone()}</span></td>
                                        <td>{format!("{} · {}", r.country_iso_code, r.continent)}</td>
                                        <td class="num" title=format!("range {} – {}", intensity(r.intensity_low_g_per_kwh), intensity(r.intensity_high_g_per_kwh))>{intensity(r.intensity_g_per_kwh)}</td>
                                        <td class="num">{r.google_cfe_pct.map(|c| format!("{c:.0} %")).unwrap_or_else(|| "–".into())}</td>
                                        <td class="num">{r.year}</td>
                                        <td><super::gridnow::NowBadge now key=format!("{}/{}", r.provider, r.region)/></td>
                                        <td class="src">{r.label.clone()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}
