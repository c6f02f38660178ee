use super::{Equivalents, LoadError, Stat};
use crate::api::get_run_page;
use crate::format::{co2, co2_range, duration, energy, intensity, power, seconds, text, when};
use carbon_core::model::Run;
use carbon_core::pages::RunPageData;
use carbon_core::units;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let dataset = crate::use_dataset();
    let live = crate::live::live_version();
    let key = move || (params.read().get("id").unwrap_or_default(), dataset.get());
    let detail = Resource::new(move || (key(), live()), |((id, d), _)| get_run_page(id, d));
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(Some(p)) => view! { <RunView p/> }.into_any(),
                    Ok(None) => view! {
                        <Title text="Run not found"/>
                        <h1>"Run not found"</h1>
                        <p>"No run with this id in the loaded files. " <a href=crate::format::href("/runs")>"All runs"</a></p>
                    }
                        .into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn field(label: &'static str, value: String) -> impl IntoView {
    view! {
        <dt>{label}</dt>
        <dd>{value}</dd>
    }
}

fn opt_num(x: Option<f64>) -> String {
    x.map(units::sig3).unwrap_or_else(|| "–".into())
}

#[component]
fn RunView(p: RunPageData) -> impl IntoView {
    let d = p.detail;
    let r = d.run;
    let avg_power = match (r.energy_kwh, r.duration_s) {
        (Some(e), Some(s)) if s > 0.0 => Some(e * 3.6e6 / s),
        _ => None,
    };
    let title = format!("Run {}", r.run_id);
    let heading = format!("{} / {}", text(&r.project_name), r.run_id);
    let tags = r.tags.clone();
    let tool_run = r.tool.is_some();
    let rows_label = if r.tasks.is_empty() { "Checkpoints" } else { "Tasks" };
    let n = p.checkpoints_total;
    let shown = d.checkpoints;
    let note = if shown.len() < n {
        format!("{n} rows; {} evenly spaced rows shown, the last one included.", shown.len())
    } else {
        format!("{n} rows.")
    };
    let cumulative = r.tasks.is_empty();
    view! {
        <Title text=title/>
        <p class="crumbs"><a href=crate::format::href("/runs")>"Runs"</a> " / " {short(&r)}</p>
        <h1 class="run-id">{heading}</h1>
        <section class="stats">
            <Stat
                label="Energy"
                value=energy(r.energy_kwh)
                note=match r.pue.filter(|p| (p - 1.0).abs() > 1e-9) {
                    Some(p) => format!("{}, PUE {p} included", r.tool_name()),
                    None => format!("{}, PUE included", r.tool_name()),
                }
            />
            <Stat
                label="CO₂ (recomputed)"
                value=co2(r.assessment.co2_kg)
                note=format!("range {} – {}", co2(r.assessment.co2_kg_low), co2(r.assessment.co2_kg_high))
            />
            <Stat
                label="CO₂ (as reported)"
                value=co2(r.co2_kg_reported)
                note=if r.tool.is_some() { format!("{}'s own figure", r.tool_name()) } else { "the CSV's emissions column".to_string() }
            />
            <Stat label="Duration" value=duration(r.duration_s) note=format!("{} → {}", when(&r.started_at), when(&r.ended_at))/>
            <Stat label="Average power" value=power(avg_power) note="energy ÷ duration"/>
        </section>
        <HowComputed r=r.clone()/>
        <p>
            <a class="whatif-link" href=crate::format::href(&format!("/map?run_id={}", crate::format::encode(&r.run_id)))>
                "How much lower would this run have been elsewhere? →"
            </a>
            " · "
            <a class="plan-link" href=crate::format::href(&format!("/plan?run_id={}", crate::format::encode(&r.run_id)))>
                "When should it run next? →"
            </a>
        </p>
        <super::ReportLinks selection=vec![("run_id", r.run_id.clone())] metric=None/>
        <RunHoursLine run_id=r.run_id.clone()/>
        {(!p.equivalents.is_empty()).then(|| view! { <Equivalents list=p.equivalents/> })}
        {(!p.metrics.is_empty() || !p.params.is_empty()).then(|| view! {
            <h2>"Model metrics and hyper-parameters"</h2>
            <table class="run-metrics">
                <thead><tr><th>"Metric"</th><th class="num">"Final value"</th><th>"From"</th></tr></thead>
                <tbody>
                    {p.metrics.into_iter().map(|(name, value, from)| view! {
                        <tr><td>{name}</td><td class="num">{carbon_core::units::sig4(value)}</td><td class="hint">{from}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
            {(!p.params.is_empty()).then(|| view! {
                <dl class="fields run-params">
                    {p.params.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
                </dl>
            })}
        })}
        {p.charts.into_iter().map(|chart| view! { <super::ChartView chart/> }).collect_view()}
        <h2>"Every field"</h2>
        <dl class="fields">
            {field("Run id", r.run_id.clone())}
            {field("Project", text(&r.project_name))}
            <dt>"Experiment"</dt>
            <dd>
                {match &r.experiment_id {
                    Some(e) => view! { <a href=crate::format::href(&format!("/experiments/{}", crate::format::encode(e)))>{e.clone()}</a> }.into_any(),
                    None => "–".into_any(),
                }}
            </dd>
            {field("Team", text(&r.team))}
            {field("Started (local time)", seconds(&r.started_at))}
            {field("Ended (local time)", seconds(&r.ended_at))}
            {field("Duration", duration(r.duration_s))}
            {field("Energy", energy(r.energy_kwh))}
            {field("CPU energy", energy(r.cpu_energy_kwh))}
            {field("GPU energy", energy(r.gpu_energy_kwh))}
            {field("RAM energy", energy(r.ram_energy_kwh))}
            {field("CO₂ reported", co2(r.co2_kg_reported))}
            {field("Emission rate", r.emissions_rate_kg_per_s.map(|x| format!("{}/s", units::co2_kg(x))).unwrap_or_else(|| "–".into()))}
            {field("CPU power", power(r.cpu_power_w))}
            {field("GPU power", power(r.gpu_power_w))}
            {field("RAM power", power(r.ram_power_w))}
            {field("Water", r.water_l.map(|w| format!("{} L", units::sig3(w))).unwrap_or_else(|| "–".into()))}
            {field("Country", format!("{} ({})", text(&r.country_name), text(&r.country_iso_code)))}
            {field("Region", text(&r.region))}
            {field("Cloud", match (&r.cloud_provider, &r.cloud_region) {
                (Some(p), Some(g)) => format!("{p} {g}"),
                _ => format!("not on a cloud (on_cloud: {})", text(&r.on_cloud)),
            })}
            {field("PUE", opt_num(r.pue))}
            {field("CPU", format!("{} (cpu_count: {})", text(&r.cpu_model), opt_num(r.cpu_count)))}
            {field("GPU", format!("{} (gpu_count: {})", text(&r.gpu_model), opt_num(r.gpu_count)))}
            {field("RAM", r.ram_total_size_gb.map(|g| format!("{} GB", units::sig3(g))).unwrap_or_else(|| "–".into()))}
            {field("Utilisation CPU / GPU / RAM", format!("{} % / {} % / {} %", opt_num(r.cpu_utilization_percent), opt_num(r.gpu_utilization_percent), opt_num(r.ram_utilization_percent)))}
            {field("Location", format!("{}, {}", opt_num(r.latitude), opt_num(r.longitude)))}
            {field("OS", text(&r.os))}
            {field("Python", text(&r.python_version))}
            {if r.tool.is_some() {
                field("Tracker", format!("{} ({})", r.tool_label(), r.schema))
            } else {
                field("CodeCarbon", format!("{} ({} file layout)", text(&r.codecarbon_version), r.schema))
            }}
            {r.tool_basis.clone().map(|b| field("Its CO₂ rests on", b))}
            {field("Tracking mode", text(&r.tracking_mode))}
            {match r.source {
                carbon_core::model::RunSource::Collected => field(
                    "Source",
                    format!(
                        "posted live by a CodeCarbon tracker to this server (experiment {}); the project's runs as emissions.csv: /api/v1/projects/{}/emissions.csv",
                        text(&r.experiment_id),
                        text(&r.project_name)
                    ),
                ),
                carbon_core::model::RunSource::File => field("Source files", r.source_files.join(", ")),
            }}
            {(r.run_id_synthetic).then(|| field("Note", "the CSV has no run id for this row: the id is made from the row's content".into()))}
        </dl>
        {(!tags.is_empty()).then(|| view! {
            <h2>{if tool_run { "Tags (from the tracker's logs)" } else { "Tags (your extra columns)" }}</h2>
            <dl class="fields">{tags.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}</dl>
        })}
        <h2>{rows_label}</h2>
        <p class="hint">
            {if cumulative { "Each checkpoint holds the run's totals so far; the run's totals are the last one's. " } else { "Each row is one task's own energy; the run is their sum. " }}
            {note}
        </p>
        <table class="checkpoints">
            <thead>
                <tr>
                    <th>"Time"</th>
                    {(!cumulative).then(|| view! { <th>"Task"</th> })}
                    <th class="num">"Duration"</th>
                    <th class="num">"Energy"</th>
                    <th class="num">"CPU"</th>
                    <th class="num">"GPU"</th>
                    <th class="num">"RAM"</th>
                    <th class="num">"CO₂ reported"</th>
                    <th>"Source"</th>
                </tr>
            </thead>
            <tbody>
                {shown
                    .into_iter()
                    .map(|c| view! {
                        <tr>
                            <td>{seconds(&c.timestamp)}</td>
                            {(!cumulative).then(|| view! { <td>{text(&c.task_name)}</td> })}
                            <td class="num">{duration(c.duration_s)}</td>
                            <td class="num">{energy(c.energy_kwh)}</td>
                            <td class="num">{energy(c.cpu_energy_kwh)}</td>
                            <td class="num">{energy(c.gpu_energy_kwh)}</td>
                            <td class="num">{energy(c.ram_energy_kwh)}</td>
                            <td class="num">{co2(c.co2_kg_reported)}</td>
                            <td class="src">{format!("{}:{}", c.file, c.line)}</td>
                        </tr>
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

fn short(r: &Run) -> String {
    crate::format::short_id(&r.run_id)
}

/// energy × intensity = CO2, each with its range and source, and the gap to the CSV.
#[component]
fn HowComputed(r: Run) -> impl IntoView {
    let reported = if r.tool.is_some() { format!("{} reported", r.tool_name()) } else { "CSV reported".to_string() };
    let a = r.assessment;
    let flagged = a.location_resolution == carbon_core::model::LocationResolution::World;
    view! {
        <section class="how" aria-label="How this was computed">
            <h2>"How this was computed"</h2>
            <table class="how">
                <tbody>
                    <tr>
                        <th>"Energy"</th>
                        <td class="num">{energy(r.energy_kwh)}</td>
                        <td>{format!("range {} – {}: {}", energy(a.energy_kwh_low), energy(a.energy_kwh_high), a.energy_method)}</td>
                    </tr>
                    <tr>
                        <th>"× grid intensity"</th>
                        <td class="num">{intensity(a.intensity_g_per_kwh)}</td>
                        <td class:flag=flagged>
                            {format!(
                                "{} (range {} – {}; {} data, source id {})",
                                a.location_label,
                                intensity(a.intensity_low_g_per_kwh),
                                intensity(a.intensity_high_g_per_kwh),
                                a.dataset.as_str(),
                                a.intensity_source
                            )}
                        </td>
                    </tr>
                    {a.pue_applied.map(|p| view! {
                        <tr><th>"× provider PUE"</th><td class="num">{p.to_string()}</td><td>"applied by carbon-dash on request: this CSV has no pue column"</td></tr>
                    })}
                    <tr class="result">
                        <th>"= CO₂"</th>
                        <td class="num">{co2(a.co2_kg)}</td>
                        <td>{format!("range {}", co2_range(a.co2_kg, a.co2_kg_low, a.co2_kg_high))}</td>
                    </tr>
                    <tr>
                        <th>{reported}</th>
                        <td class="num">{co2(r.co2_kg_reported)}</td>
                        <td>
                            {match (&a.delta_reason, a.implied_intensity_g_per_kwh) {
                                (Some(d), _) => format!("{}: {}", d.kind.label(), d.detail),
                                (None, Some(i)) => format!("implies {}: agrees within 0.5 %", intensity(i)),
                                (None, None) => "nothing to compare".into(),
                            }}
                        </td>
                    </tr>
                </tbody>
            </table>
        </section>
    }
}

/// The run's CO2 at the hours it ran (a provider's history), beside the annual figure; loaded by
/// the browser after the page shows, so a slow provider never holds the page back.
#[component]
fn RunHoursLine(run_id: String) -> impl IntoView {
    let hours = super::gridnow::after_load(move || crate::api::get_run_hours(run_id.clone()));
    move || {
        let v = hours.with(|h| h.clone())?.ok()?;
        let text = match (v.hours, v.note) {
            (Some(h), _) => format!(
                "At the hours it ran: {} for {} ({} on average over {} intervals, a {}{}), against {} for the same energy at the annual figure (a lifecycle average) — {}; the CSV's times read as {}.",
                co2(Some(h.co2_kg)),
                crate::format::energy(Some(h.energy_kwh)),
                crate::format::intensity(h.mean_g_per_kwh),
                h.intervals,
                h.basis.words(),
                if h.estimated { "; some hours are the provider's forecast, not its measurement" } else { "" },
                co2(h.annual_co2_kg),
                h.source,
                h.clock
            ),
            (None, Some(n)) => n,
            (None, None) => return None,
        };
        Some(view! { <p class="run-hours" id="run-hours">{text}</p> })
    }
}
