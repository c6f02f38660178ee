use super::{ChartView, LoadError, Stat};
use crate::api::get_plan;
use crate::format::{co2, intensity};
use carbon_core::schedule::{PlanAnswer, PlanQuery, PlanView};
use carbon_core::time::parse_rfc3339;
use carbon_core::units;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

fn query_of(get: impl Fn(&str) -> Option<String>) -> PlanQuery {
    let f = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    PlanQuery {
        zone: f("zone"),
        region: f("region"),
        run_id: f("run_id"),
        duration: f("duration"),
        energy_kwh: f("energy_kwh"),
        start_by: f("start_by"),
        finish_by: f("finish_by"),
        provider: f("provider"),
        continent: f("continent"),
    }
}

/// `2026-12-01T02:30:00Z` as `2026-12-01 02:30 UTC`.
fn utc(t: &str) -> String {
    parse_rfc3339(t).map_or_else(|| t.to_string(), carbon_core::schedule::readable)
}

/// "in 16 h 13 min" from the answer's now.
fn from_now(a: &PlanAnswer, t: &str) -> String {
    match (parse_rfc3339(&a.now), parse_rfc3339(t)) {
        (Some(n), Some(t)) if t <= n + 59 => "now".into(),
        (Some(n), Some(t)) => format!("in {}", units::duration_s((t - n) as f64)),
        _ => String::new(),
    }
}

/// "When to run": the best start within the forecast and the deadlines, now against best, the
/// saving in kg, the forecast with the window, and the best elsewhere. The form is a plain GET,
/// so it works before (and without) hydration and every answer has a URL.
#[component]
pub fn Plan() -> impl IntoView {
    let q = use_query_map();
    let query = Memo::new(move |_| {
        let m = q.read();
        query_of(|k| m.get(k))
    });
    let page = Resource::new(
        move || query.get(),
        |q| async move {
            if q.is_empty() {
                Ok(None)
            } else {
                get_plan(q).await.map(Some)
            }
        },
    );
    let value = move |k: &'static str| move || q.read().get(k).unwrap_or_default();
    view! {
        <Title text="When to run"/>
        <h1>"When to run"</h1>
        <p class="hint">
            "The start, within the grid's forecast and your deadlines, at which a job meets the cleanest electricity; "
            "exact to the second, never in the past, weighted by a past run's own power profile when you name one."
        </p>
        <form class="plan-form" method="get" action=crate::format::href("/plan")>
            <label>"Zone " <input name="zone" placeholder="GB, GB-13, DE, US-CAL-CISO" prop:value=value("zone")/></label>
            <label>"or cloud region " <input name="region" placeholder="gcp/europe-west2" prop:value=value("region")/></label>
            <label>"or run " <input name="run_id" placeholder="a run id" prop:value=value("run_id")/></label>
            <label>"Duration " <input name="duration" placeholder="90m, 3h, 1h30m" prop:value=value("duration")/></label>
            <label>"Energy (kWh) " <input name="energy_kwh" placeholder="from the run" prop:value=value("energy_kwh")/></label>
            <label>"Start by " <input name="start_by" placeholder="YYYY-MM-DDTHH:MM:SSZ" prop:value=value("start_by")/></label>
            <label>"Finish by " <input name="finish_by" placeholder="RFC 3339, UTC" prop:value=value("finish_by")/></label>
            <button type="submit">"Plan"</button>
        </form>
        <Suspense fallback=|| view! { <p>"Asking the grid…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(None) => view! { <p class="hint">"Name a zone, a cloud region or a run, and a duration."</p> }.into_any(),
                    Ok(Some(v)) => view! { <PlanResult v/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn PlanResult(v: PlanView) -> impl IntoView {
    let PlanView { answer, chart, offline } = v;
    let a = match answer {
        Ok(a) => a,
        Err(why) => return view! { <p class="error" role="alert">{why}</p> }.into_any(),
    };
    let badge = if a.live { ("badge live", "forecast") } else { ("badge annual", "annual") };
    // Waiting gains less than half a per cent: say "now" plainly.
    let now_is_best = a.saving_pct.is_some_and(|p| p < 0.5);
    let headline = match (&a.best_start, a.best_mean_g_per_kwh) {
        (Some(_), Some(m)) if now_is_best => {
            format!("Start now: {} on average; no later start in the forecast is lower.", intensity(m))
        }
        (Some(s), Some(m)) => {
            let vs = match (a.now_mean_g_per_kwh, a.saving_pct) {
                (Some(n), Some(p)) => format!(", against {} starting now: {p:.0} % lower", intensity(n)),
                _ => String::new(),
            };
            format!("Start {} ({}): {} on average{vs}.", utc(s), from_now(&a, s), intensity(m))
        }
        _ if !a.live => format!(
            "No forecast for {}: its annual average is {} at any hour (range {} – {}).",
            a.place,
            intensity(a.annual.g_per_kwh),
            intensity(a.annual.low_g_per_kwh),
            intensity(a.annual.high_g_per_kwh)
        ),
        _ => "No start found within the forecast and the deadlines.".into(),
    };
    let saving = match a.saving_kg {
        _ if now_is_best => "none".into(),
        Some(kg) => co2(Some(kg)),
        None => "–".into(),
    };
    let saving_note = match (a.energy_kwh, a.saving_kg, a.live) {
        (_, _, false) => "no forecast, so nothing to compare".into(),
        _ if now_is_best => "starting now is as good as any later start".into(),
        (Some(e), Some(_), _) => format!("for {} of energy, against starting now", units::energy_kwh(e)),
        (Some(_), None, _) => "no window to compare with starting now".into(),
        (None, _, _) => "give the energy (or a run) for kg".into(),
    };
    // "22:00 → 01:00" and the dates beneath.
    let (window, window_note) = match (&a.best_start, &a.best_end) {
        (Some(s), Some(e)) if s.len() >= 16 && e.len() >= 16 => {
            (format!("{} → {}", &s[11..16], &e[11..16]), format!("UTC, {} → {}; job: {}", utc(s), utc(e), a.job))
        }
        _ => ("–".into(), format!("job: {}", a.job)),
    };
    let notes = a.notes.clone();
    let elsewhere = a.elsewhere.clone();
    view! {
        <section class="plan-answer" data-live=a.live.to_string()>
            <p class="plan-headline" class:none=a.best_start.is_none()><span class=badge.0>{badge.1}</span> " " {headline}</p>
            <p class="src">
                {format!("{} — {}", a.place, a.source)}
                {a.fetched_at.as_deref().map(|f| format!("; fetched {}", utc(f)))}
            </p>
            {a.grid_now.clone().map(|r| view! {
                <p class="grid-now" id="plan-grid-now">
                    "Grid now: " <span class=if r.forecast { "badge forecast" } else { "badge live" }>{if r.forecast { "forecast" } else { "live" }}</span>
                    {format!(" {} for the period from {} ({}, {}{})", intensity(r.g_per_kwh), utc(&r.at), r.provider, r.basis.words(), if r.estimated { ", estimated" } else { "" })}
                </p>
            })}
            {offline.map(|o| view! { <p class="hint offline">{o}</p> })}
            <section class="stats">
                <Stat label="Best window" value=window note=window_note/>
                <Stat label="Mean at best" value=a.best_mean_g_per_kwh.map(intensity).unwrap_or_else(|| "–".into()) note="g CO₂e per kWh, weighted by the job's power"/>
                <Stat label="Mean starting now" value=a.now_mean_g_per_kwh.map(intensity).unwrap_or_else(|| "–".into()) note=format!("at {}", utc(&a.now))/>
                <Stat label="Saved by waiting" value=saving note=saving_note/>
            </section>
            <ul class="plan-notes">{notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
            {chart.map(|c| view! { <ChartView chart=c/> })}
            <h2>"Where and when"</h2>
            <p class="hint">"The place asked about and the cleanest cloud regions (by annual figure), each at its best start where a forecast covers it."</p>
            <table class="elsewhere">
                <thead><tr><th>"Place"</th><th>"Best start"</th><th>"Mean"</th><th>"CO₂e for the job"</th><th>"Basis"</th><th>"Source"</th></tr></thead>
                <tbody>
                    {elsewhere.into_iter().map(|e| view! {
                        <tr data-zone=e.zone.clone()>
                            <td>{e.label.clone()}</td>
                            <td>{e.best_start.as_deref().map(utc).unwrap_or_else(|| "any time (annual)".into())}</td>
                            <td class="num">{intensity(e.mean_g_per_kwh)}</td>
                            <td class="num">{co2(e.co2_kg)}</td>
                            <td>{e.basis.words()}</td>
                            <td class="src"><span class=format!("badge {}", e.kind)>{e.kind.clone()}</span> " " {e.source.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}
