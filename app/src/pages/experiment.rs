use super::{ChartView, LoadError, Stat};
use crate::api::get_experiment;
use crate::format::{co2, co2_range, duration, energy, run_href, short_id, text, when};
use carbon_core::pages::ExperimentPage;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// An experiment's runs compared: CO2 with ranges, duration against CO2, energy per hour, best and worst.
#[component]
pub fn ExperimentView() -> impl IntoView {
    let params = use_params_map();
    let dataset = crate::use_dataset();
    let live = crate::live::live_version();
    let key = move || (params.read().get("id").unwrap_or_default(), dataset.get(), live());
    let page = Resource::new(key, |(id, d, _)| get_experiment(id, d));
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(Some(p)) => view! { <ExperimentBody p/> }.into_any(),
                    Ok(None) => view! { <h1>"Experiment not found"</h1> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ExperimentBody(p: ExperimentPage) -> impl IntoView {
    let t = p.totals.clone();
    let best = p.best_run.clone();
    let worst = p.worst_run.clone();
    view! {
        <Title text=format!("Experiment {}", short_id(&p.experiment_id))/>
        <p class="crumbs">{text(&p.project_name)} " / experiment"</p>
        <h1 class="run-id">{format!("Experiment {}", p.experiment_id)}</h1>
        <section class="stats">
            <Stat label="Runs" value=t.runs.to_string() note=format!("{} in all", duration(Some(t.duration_s)))/>
            <Stat label="Energy" value=energy(Some(t.energy_kwh)) note=format!("range {} – {}", energy(Some(t.energy_kwh_low)), energy(Some(t.energy_kwh_high)))/>
            <Stat label="CO₂ (recomputed)" value=co2(Some(t.co2_kg)) note=format!("range {} – {}", co2(Some(t.co2_kg_low)), co2(Some(t.co2_kg_high)))/>
        </section>
        <p>
            <a class="whatif-link" href=crate::format::href(&format!("/map?experiment={}", crate::format::encode(&p.experiment_id)))>"Where would this experiment have been lower? →"</a>
        </p>
        <super::ReportLinks selection=vec![("experiment", p.experiment_id.clone())] metric=None/>
        {p.charts.into_iter().map(|chart| view! { <ChartView chart/> }).collect_view()}
        <super::ExperimentPareto experiment_id=p.experiment_id.clone()/>
        {(p.runs_plotted < p.totals.runs).then(|| view! {
            <p class="hint">{format!("The chart plots {} of the {} runs, spread evenly from the lowest CO₂ to the highest.", p.runs_plotted, p.runs_total)}</p>
        })}
        <h2>"Runs compared"</h2>
        {(p.runs.len() < p.runs_total).then(|| view! {
            <p class="hint">
                {format!("The {} latest of {} runs, with the best and the worst; ", p.runs.len().min(carbon_core::pages::EXPERIMENT_RUNS_LISTED), p.runs_total)}
                <a href=crate::format::href(&format!("/runs?experiment={}", crate::format::encode(&p.experiment_id)))>"every run on the Runs page →"</a>
            </p>
        })}
        <table class="experiment-runs">
            <thead><tr><th>"Run"</th><th>"Ended"</th><th class="num">"Duration"</th><th class="num">"Energy"</th><th class="num">"Energy per hour"</th><th class="num">"CO₂ (range)"</th><th>"Note"</th></tr></thead>
            <tbody>
                {p.runs.into_iter().map(|r| {
                    let per_hour = match (r.energy_kwh, r.duration_s) {
                        (Some(e), Some(s)) if s > 0.0 => Some(e / (s / 3600.0)),
                        _ => None,
                    };
                    let mark = if best.as_deref() == Some(r.run_id.as_str()) { "best (lowest CO₂)" } else if worst.as_deref() == Some(r.run_id.as_str()) { "worst (highest CO₂)" } else { "" };
                    view! {
                        <tr>
                            <td><a href=run_href(&r.run_id)>{short_id(&r.run_id)}</a></td>
                            <td>{when(&r.ended_at)}</td>
                            <td class="num">{duration(r.duration_s)}</td>
                            <td class="num">{energy(r.energy_kwh)}</td>
                            <td class="num">{per_hour.map(|x| format!("{}/h", energy(Some(x)))).unwrap_or_else(|| "–".into())}</td>
                            <td class="num">{co2_range(r.co2_kg, r.co2_kg_low, r.co2_kg_high)}</td>
                            <td class="mark">{mark}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
