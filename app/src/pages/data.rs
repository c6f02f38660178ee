use super::LoadError;
use crate::api::get_datasets;
use carbon_core::model::DatasetInfo;
use leptos::prelude::*;
use leptos_meta::Title;

/// Sources with attribution, the dataset version and the method behind every range.
#[component]
pub fn Data() -> impl IntoView {
    let info = Resource::new(|| (), |_| get_datasets());
    view! {
        <Title text="Data and method"/>
        <h1>"Data and method"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(i) => view! { <DataView i/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn DataView(i: DatasetInfo) -> impl IntoView {
    let pct = |x: f64| format!("±{:.0} %", x * 100.0);
    view! {
        <p>
            {format!(
                "Embedded dataset {}: {} figures in the latest dataset, {} in the CodeCarbon 3.3.2 dataset, {} cloud regions. \
                 It is compiled into the binary: nothing is fetched at run time.",
                i.version, i.figures_latest, i.figures_codecarbon, i.cloud_regions
            )}
        </p>
        <h2>"How CO₂ is recomputed"</h2>
        <p>
            "CO₂ = the run's energy (kWh, as CodeCarbon measured it, PUE included) × the grid intensity of where it ran (g CO₂e/kWh). "
            "The place is matched in this order, first match wins: the cloud provider and region; the country and region "
            "(US state, Canadian province, Chinese province, Nordic bidding zone); the country (ISO code, two-letter code or name); "
            "else the world average, flagged. "
            <strong>"latest"</strong>
            " uses the newest figure per place (Ember for countries, Google 2024 for its regions, other cloud regions the grid "
            "where they are). "
            <strong>"CodeCarbon 3.3.2"</strong>
            " reproduces exactly what today's CodeCarbon would compute for the row's location, its quirks included "
            "(it wants three-letter ISO codes, and AWS/Azure regions fall back to their country)."
        </p>
        <h2>"Uncertainty"</h2>
        <p>"Every CO₂ figure has a low–high range: the low energy × the low intensity, and the high × the high."</p>
        <table class="method">
            <thead><tr><th>"How the energy was obtained (inferred from the row)"</th><th class="num">"Error"</th></tr></thead>
            <tbody>
                {i.energy_errors.iter().map(|(how, e)| view! { <tr><td>{how.clone()}</td><td class="num">{pct(*e)}</td></tr> }).collect_view()}
            </tbody>
        </table>
        <p>
            {format!(
                "Intensity: the spread of every figure held for the place (sources and years), widened to at least {} \
                 since an annual average hides seasonal and hourly variation. When the place is unknown, the range is the \
                 10th–90th percentile of national intensities: {:.0}–{:.0} g/kWh. Totals add the runs' lows and highs, \
                 which holds whatever the correlation between runs.",
                pct(i.intensity_min_spread),
                i.world_range_g_per_kwh.0,
                i.world_range_g_per_kwh.1
            )}
        </p>
        <h2>"PUE"</h2>
        <p>
            "CodeCarbon's energies already include its pue column, so carbon-dash never applies PUE again. "
            {if i.applies_provider_pue {
                "This server applies the provider's PUE to cloud runs whose rows have no pue column (each such run says so)."
            } else {
                "Started with --apply-provider-pue, the server applies these to cloud runs whose rows have no pue column."
            }}
        </p>
        <table class="method">
            <thead><tr><th>"Provider"</th><th class="num">"PUE"</th><th>"Source id"</th></tr></thead>
            <tbody>
                {i.provider_pue.iter().map(|(p, v, s)| view! { <tr><td>{p.clone()}</td><td class="num">{v.to_string()}</td><td>{s.clone()}</td></tr> }).collect_view()}
            </tbody>
        </table>
        <h2>"Live grid data"</h2>
        <p id="live-sources">
            "Off unless the server is started with --live or an Electricity Maps token; then the planner (/plan), the map, the regions page and "
            "run pages add live values, each labelled with its provider, basis (lifecycle or direct average), whether estimated or forecast, "
            "its own time and when it was fetched. "
            <a href="https://carbonintensity.org.uk/">"UK Carbon Intensity API"</a>
            " (National Energy System Operator, CC BY 4.0): Great Britain and its regions, half-hourly, with a 48-hour forecast; a direct "
            "(operational) average, not a lifecycle one. "
            <a href="https://www.electricitymaps.com/">"Electricity Maps"</a>
            " (with your token, under its terms): lifecycle averages by zone; forecasts with plans that include them."
        </p>
        <h2>"Sources"</h2>
        <table class="sources">
            <thead><tr><th>"Id"</th><th>"Data"</th><th>"Publisher"</th><th class="num">"Year"</th><th>"Licence"</th></tr></thead>
            <tbody>
                {i.sources.into_iter().map(|s| view! {
                    <tr id=format!("source-{}", s.id)>
                        <td><code>{s.id.clone()}</code></td>
                        <td><a href=s.url.clone()>{s.title.clone()}</a></td>
                        <td>{s.publisher.clone()}</td>
                        <td class="num">{s.year}</td>
                        <td>{s.licence.clone()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
