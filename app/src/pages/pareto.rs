use super::{ChartView, LoadError};
use crate::api::get_pareto;
use crate::format::{co2_range, energy, run_href, short_id};
use carbon_core::pages::Chart;
use carbon_core::pareto::{Axis, Direction, ParetoQuery, ParetoView, Scale};
use carbon_core::units::{co2_kg, energy_kwh, sig4};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// A report of the selection in `format`, from the API.
pub(crate) fn report_href(selection: &[(&str, String)], metric: Option<&str>, format: &str) -> String {
    let mut params: Vec<(&str, String)> = selection.to_vec();
    if let Some(m) = metric {
        params.push(("metric", m.to_string()));
    }
    params.push(("format", format.to_string()));
    crate::format::url(&crate::format::href("/api/v1/report"), params)
}

/// Links to the report of a selection in each format.
#[component]
pub(crate) fn ReportLinks(selection: Vec<(&'static str, String)>, metric: Option<String>) -> impl IntoView {
    let m = metric.as_deref();
    let link = |format: &str| report_href(&selection, m, format);
    view! {
        <p class="report-links">
            <a class="button report-button" href=link("html") target="_blank" rel="noopener">"Report (HTML)"</a>
            " statements: "
            <a href=link("tex")>"LaTeX"</a> " · "
            <a href=link("md")>"Markdown"</a> " · "
            <a href=link("yaml")>"model card YAML"</a> " · "
            <a href=link("bib")>"BibTeX"</a>
        </p>
    }
}

/// A metric against CO2 for a selection of runs: the front, its knee, the cheapest run within δ
/// of the best, and the CO2 of beaten runs. The form is a plain GET: every view has a URL.
#[component]
pub fn Pareto() -> impl IntoView {
    let q = use_query_map();
    let query = Memo::new(move |_| {
        let m = q.read();
        ParetoQuery::from_params(|k| m.get(k))
    });
    let page = Resource::new(
        move || query.get(),
        |q| async move {
            match q {
                Ok(q) => get_pareto(q).await.map(Ok),
                Err(why) => Ok(Err(why)),
            }
        },
    );
    view! {
        <Title text="Metric against CO₂e"/>
        <h1>"Metric against CO₂e: which runs were worth it"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(Ok((v, chart))) => view! { <ParetoBody v chart report_links=true/> }.into_any(),
                    Ok(Err(why)) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The Pareto view of one experiment, on its page.
#[component]
pub(crate) fn ExperimentPareto(experiment_id: String) -> impl IntoView {
    let q = ParetoQuery { experiment: Some(experiment_id), ..ParetoQuery::default() };
    let page = Resource::new(move || q.clone(), get_pareto);
    view! {
        <Suspense fallback=|| view! { <p>"Loading the metrics…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok((v, chart)) => view! { <h2>"Metric against CO₂e"</h2> <ParetoBody v chart/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ParetoBody(v: ParetoView, chart: Option<Chart>, #[prop(optional)] report_links: bool) -> impl IntoView {
    let selection = v.query.selection_params();
    let metric = v.metric.clone();
    let hidden =
        selection.iter().map(|(k, val)| view! { <input type="hidden" name=*k value=val.clone()/> }).collect_view();
    let guessed = v.direction.map(|d| match d {
        Direction::Higher => "higher is better",
        Direction::Lower => "lower is better",
    });
    let dir_value = if v.direction_guessed {
        ""
    } else {
        if v.direction == Some(Direction::Lower) {
            "lower"
        } else {
            "higher"
        }
    };
    let axis_value = if v.query.axis.is_none() {
        ""
    } else if v.axis == Axis::Energy {
        "energy"
    } else {
        "co2"
    };
    let cost = |p: &carbon_core::pareto::ParetoPoint| match v.axis {
        Axis::Co2 => co2_range(p.co2_kg, p.co2_kg_low, p.co2_kg_high),
        Axis::Energy => energy(p.energy_kwh),
    };
    let per_step = |c: f64| match v.axis {
        Axis::Co2 => co2_kg(c),
        Axis::Energy => energy_kwh(c),
    };
    let front_rows: Vec<_> = v
        .front
        .iter()
        .enumerate()
        .filter_map(|(i, id)| v.points.iter().find(|p| &p.run_id == id).map(|p| (i, p.clone())))
        .collect();
    let step_of = |i: usize| if i == 0 { None } else { v.steps.get(i - 1).map(|s| s.cost_per_unit * v.step) };
    let mark = |id: &str| v.marks(id).join(", ");
    let no_metrics = v.metrics.is_empty();
    view! {
        <section class="pareto" data-knee=v.knee_run_id.clone().unwrap_or_default()>
            <p class="hint">
                {format!("{}: {} runs", v.scope, v.runs_in_scope)}
                {v.metric.as_ref().map(|m| format!(", {} with {m}", v.points.len()))}
                ". Each run is a point with its CO₂e range as a bar; the front joins the runs no other run beats on both cost and metric."
            </p>
            {(!no_metrics).then(|| view! {
                <form class="pareto-form" method="get" action=crate::format::href("/pareto")>
                    {hidden}
                    <label>"Metric "
                        <select name="metric">
                            {v.metrics.iter().map(|m| view! {
                                <option value=m.name.clone() selected=v.metric.as_deref() == Some(m.name.as_str())>{format!("{}{} ({})", m.name, m.unit.as_ref().map(|u| format!(" [{u}]")).unwrap_or_default(), carbon_core::units::count(m.runs, "run"))}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Better is "
                        <select name="direction">
                            <option value="" selected=dir_value.is_empty()>{format!("{}: {}", if v.direction_said { "as its study or carbon-dash.toml says" } else { "guessed from the name" }, guessed.unwrap_or("–"))}</option>
                            <option value="higher" selected=dir_value == "higher">"higher"</option>
                            <option value="lower" selected=dir_value == "lower">"lower"</option>
                        </select>
                    </label>
                    <label>"Cost "
                        <select name="axis">
                            <option value="" selected=axis_value.is_empty()>"CO₂e, or energy when the grids differ"</option>
                            <option value="co2" selected=axis_value == "co2">"CO₂e"</option>
                            <option value="energy" selected=axis_value == "energy">"energy (kWh)"</option>
                        </select>
                    </label>
                    <label>"Scale "
                        <select name="scale">
                            <option value="linear" selected=v.scale == Scale::Linear>"linear"</option>
                            <option value="log" selected=v.scale == Scale::Log>"log"</option>
                        </select>
                    </label>
                    {(!v.params.is_empty()).then(|| view! {
                        <label>"Colour by "
                            <select name="colour">
                                <option value="" selected=v.colour.is_none()>"on the front or not"</option>
                                {v.params.iter().map(|(name, runs)| view! {
                                    <option value=name.clone() selected=v.colour.as_deref() == Some(name.as_str())>{format!("{name} ({})", carbon_core::units::count(*runs, "run"))}</option>
                                }).collect_view()}
                            </select>
                        </label>
                    })}
                    <label>"δ " <input name="delta" size="8" value=v.query.delta.map(sig4).unwrap_or_default() placeholder=sig4(v.delta) title="the cheapest run within δ of the best value, in the metric's units (empty: the default for the metric)"/></label>
                    <button type="submit">"Show"</button>
                </form>
            }.into_any())}
            {v.axis_note.clone().map(|n| view! { <p class="hint">{n}</p> })}
            {(v.points.len() < v.points_total).then(|| view! {
                <p class="hint">{format!("The chart shows every run on the front and {} of the beaten ones, spread over their cost; the figures count all {} (GET /api/v1/pareto lists every point).", v.points.len() - v.front.len(), v.points_total)}</p>
            })}
            <ul class="findings">{v.findings.iter().map(|f| view! { <li>{f.clone()}</li> }).collect_view()}</ul>
            {chart.map(|c| view! { <ChartView chart=c/> }.into_any())}
            {v.no_knee.is_none().then_some(()).and(v.knee_run_id.as_ref()).map(|_| view! {
                <p class="hint">"The knee is the front's run farthest above the line from its cheapest to its best run, both axes scaled to the same range: it moves with the scale (linear or log) and the cost (CO₂e or energy)."</p>
            })}
            {(!front_rows.is_empty()).then(|| view! {
                <h2>"Along the front"</h2>
                <table class="pareto-front">
                    <thead><tr><th>"Run"</th><th class="num">{v.metric.clone().unwrap_or_default()}</th><th class="num">{if v.axis == Axis::Co2 { "CO₂e (range)" } else { "Energy" }}</th><th class="num">{format!("Step cost per {}{} of {}", if v.direction == Some(Direction::Lower) { "−" } else { "+" }, sig4(v.step), v.metric.clone().unwrap_or_default())}</th><th>"Note"</th></tr></thead>
                    <tbody>
                        {front_rows.into_iter().map(|(i, p)| view! {
                            <tr data-run=p.run_id.clone()>
                                <td><a href=run_href(&p.run_id)>{short_id(&p.run_id)}</a>{p.joined_by_guess.as_ref().map(|g| view! { <span class="guess" title=g.clone()>" (joined by folder)"</span> })}</td>
                                <td class="num">{sig4(p.value)}</td>
                                <td class="num">{cost(&p)}</td>
                                <td class="num">{step_of(i).map(per_step).unwrap_or_else(|| "–".into())}</td>
                                <td class="mark">{mark(&p.run_id)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any())}
            {report_links.then(|| view! { <ReportLinks selection=selection.clone() metric=metric/> }.into_any())}
        </section>
    }
}
