use super::{ChartView, LoadError, Stat};
use crate::api::{get_team_page, get_teams};
use crate::format::{co2, co2_range, encode, energy, run_href, short_id, text, when};
use carbon_core::model::Totals;
use carbon_core::pages::TeamPage;
use carbon_core::query::ViewFilter;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

fn trend(now: &Totals, before: &Totals) -> String {
    if before.co2_kg <= 0.0 {
        return "no runs the month before".into();
    }
    let pct = (now.co2_kg - before.co2_kg) / before.co2_kg * 100.0;
    format!(
        "{}{:.0} % against the month before ({})",
        if pct < 0.0 { "−" } else { "+" },
        pct.abs(),
        co2(Some(before.co2_kg))
    )
}

/// The organisation: every team, and the organisation's own view.
#[component]
pub fn Teams() -> impl IntoView {
    let (dataset, live) = (crate::use_dataset(), crate::live::live_version());
    let teams = Resource::new(move || (dataset.get(), live()), |(d, _)| get_teams(d));
    view! {
        <Title text="Teams"/>
        <h1>"Teams"</h1>
        <p class="hint">"Teams come from the folder layout under the logs directory (logs/<team>/<project>/…) or from teams.csv there; a collected run belongs to its project's team."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match teams.await {
                    Ok(ts) => view! {
                        <table class="teams">
                            <thead><tr><th>"Team"</th><th class="num">"Runs"</th><th class="num">"Energy"</th><th class="num">"CO₂"</th><th>"Projects"</th><th>"Last run"</th></tr></thead>
                            <tbody>
                                {ts.into_iter().map(|t| view! {
                                    <tr>
                                        <td><a href=crate::format::href(&format!("/teams/{}", encode(&t.team)))>{t.team.clone()}</a></td>
                                        <td class="num">{t.totals.runs}</td>
                                        <td class="num">{energy(Some(t.totals.energy_kwh))}</td>
                                        <td class="num">{co2_range(Some(t.totals.co2_kg), Some(t.totals.co2_kg_low), Some(t.totals.co2_kg_high))}</td>
                                        <td>{t.projects.join(", ")}</td>
                                        <td>{when(&t.last_run)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Suspense>
        <TeamView org=true/>
    }
}

/// One team's page (`/teams/:team`), or the organisation's (`org`), with the shared filters.
#[component]
pub fn TeamView(#[prop(optional)] org: bool) -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        let q = query.read();
        let mut f = ViewFilter::from_params(|k| q.get(k));
        if !org {
            f.team = params.read().get("team");
        }
        f
    });
    let (dataset, live) = (crate::use_dataset(), crate::live::live_version());
    let page = Resource::new(move || (filter.get(), dataset.get(), live()), |(f, d, _)| get_team_page(f, d));
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <TeamBody p filter org/> }.into_any(),
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn TeamBody(p: TeamPage, filter: Memo<ViewFilter>, org: bool) -> impl IntoView {
    let f = filter.get_untracked();
    let navigate = use_navigate();
    let base = if org { "/teams".to_string() } else { format!("/teams/{}", encode(&p.title)) };
    let set = {
        let base = base.clone();
        move |key: &str, value: String| {
            let mut f = filter.get_untracked();
            let v = (!value.is_empty()).then_some(value);
            match key {
                "project" => f.project = v,
                "place" => f.place = v,
                "provider" => f.provider = v,
                "tool" => f.tool = v,
                "from" => f.from = v,
                _ => f.to = v,
            }
            let params = [
                ("project", &f.project),
                ("place", &f.place),
                ("provider", &f.provider),
                ("tool", &f.tool),
                ("from", &f.from),
                ("to", &f.to),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)));
            navigate(&crate::format::url(&base, params), Default::default());
        }
    };
    let input = |key: &'static str, label: &'static str, kind: &'static str, current: Option<String>| {
        let set = set.clone();
        view! {
            <label>{label}<input type=kind name=key value=current.unwrap_or_default() on:change=move |ev| set(key, event_target_value(&ev))/></label>
        }
    };
    let projects = p.projects.clone();
    let project_select = {
        let set = set.clone();
        let current = f.project.clone().unwrap_or_default();
        view! {
            <label>
                "Project"
                <select name="project" on:change=move |ev| set("project", event_target_value(&ev))>
                    <option value="" selected=current.is_empty()>"all"</option>
                    {projects.into_iter().map(|o| view! { <option value=o.clone() selected=o == current>{o.clone()}</option> }).collect_view()}
                </select>
            </label>
        }
    };
    let t = p.totals.clone();
    view! {
        <Title text=p.title.clone()/>
        <h1>{if org { "Organisation".to_string() } else { format!("Team {}", p.title) }}</h1>
        <form class="filters" method="get" action=crate::format::href(&base)>
            {project_select}
            {input("place", "Country or region", "text", f.place.clone())}
            {input("provider", "Cloud provider", "text", f.provider.clone())}
            {input("tool", "Tracker", "text", f.tool.clone())}
            {input("from", "Ended from", "date", f.from.clone())}
            {input("to", "to", "date", f.to.clone())}
            <noscript><button type="submit">"Apply"</button></noscript>
            <a href=crate::format::href(&base)>"Clear"</a>
        </form>
        {(!org).then(|| view! {
            <p>
                <a href=crate::format::href(&crate::format::url("/pareto", [("team", p.title.clone())]))>"Accuracy against CO₂e for this team's runs →"</a>
            </p>
            <super::ReportLinks selection=vec![("team", p.title.clone())] metric=None/>
        }.into_any())}
        <section class="stats">
            <Stat label="Runs" value=t.runs.to_string() note=format!("{} projects", p.top_projects.len())/>
            <Stat label="Energy" value=energy(Some(t.energy_kwh)) note=format!("range {} – {}", energy(Some(t.energy_kwh_low)), energy(Some(t.energy_kwh_high)))/>
            <Stat label="CO₂ (recomputed)" value=co2(Some(t.co2_kg)) note=format!("range {} – {}", co2(Some(t.co2_kg_low)), co2(Some(t.co2_kg_high)))/>
            <Stat
                label="This month"
                value=co2(Some(p.this_period_totals.co2_kg))
                note=format!("{}: {}", p.this_period, trend(&p.this_period_totals, &p.previous_period_totals))
            />
        </section>
        {(!p.budgets.is_empty()).then(|| view! { <Budgets budgets=p.budgets.clone()/> })}
        {p.charts.into_iter().map(|chart| view! { <ChartView chart/> }).collect_view()}
        <h2>"Top projects"</h2>
        <table class="top">
            <thead><tr><th>"Project"</th><th class="num">"Runs"</th><th class="num">"Energy"</th><th class="num">"CO₂"</th></tr></thead>
            <tbody>
                {p.top_projects.into_iter().take(10).map(|x| view! {
                    <tr>
                        <td><a href=crate::format::href(&format!("/runs?project={}", encode(&x.project_name)))>{x.project_name.clone()}</a></td>
                        <td class="num">{x.totals.runs}</td>
                        <td class="num">{energy(Some(x.totals.energy_kwh))}</td>
                        <td class="num">{co2_range(Some(x.totals.co2_kg), Some(x.totals.co2_kg_low), Some(x.totals.co2_kg_high))}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <h2>"Top runs"</h2>
        <table class="top">
            <thead><tr><th>"Run"</th><th>"Project"</th><th>"Ended"</th><th class="num">"Energy"</th><th class="num">"CO₂"</th></tr></thead>
            <tbody>
                {p.top_runs.into_iter().map(|r| view! {
                    <tr>
                        <td><a href=run_href(&r.run_id)>{short_id(&r.run_id)}</a></td>
                        <td>{text(&r.project_name)}</td>
                        <td>{when(&r.ended_at)}</td>
                        <td class="num">{energy(r.energy_kwh)}</td>
                        <td class="num">{co2_range(r.co2_kg, r.co2_kg_low, r.co2_kg_high)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Where each budget stands: spent, projected, the day it runs out, thresholds crossed, and its
/// burn-down.
#[component]
fn Budgets(budgets: Vec<carbon_core::pages::BudgetView>) -> impl IntoView {
    use carbon_core::budget::{Crossed, Quantity};
    view! {
        <h2>"Budgets"</h2>
        {budgets.into_iter().map(|b| {
            let s = b.standing;
            let q = s.budget.quantity;
            let fmt = move |v: f64| match q {
                Quantity::Co2Kg => co2(Some(v)),
                Quantity::EnergyKwh => energy(Some(v)),
            };
            let period = format!("{} to {}", s.period_start, s.period_end);
            let crossed = s.crossed.iter().map(|c| format!("{} % {}", c.threshold, match c.by {
                Crossed::Spent => "spent",
                Crossed::Projected => "projected",
            })).collect::<Vec<_>>().join(", ");
            view! {
                <section class="budget">
                    <h3>{format!("{}: {} per {}", s.budget.scope.label(), fmt(s.budget.amount), s.budget.period.name())}</h3>
                    <section class="stats">
                        <Stat label="Spent" value=format!("{} ({:.0} %)", fmt(s.spent.value), s.percent_spent) note=format!("range {} – {}; {period}", fmt(s.spent.low), fmt(s.spent.high))/>
                        <Stat label="Projected" value=format!("{} ({:.0} %)", fmt(s.projected.value), s.percent_projected) note=format!("by {}: range {} – {}; at {}/day, the rate of {} to {}", s.period_end, fmt(s.projected.low), fmt(s.projected.high), fmt(s.daily_rate.value), s.rate_from, s.rate_to)/>
                        <Stat label="Runs out" value=s.runs_out_on.clone().unwrap_or_else(|| "not this period".into()) note=if crossed.is_empty() { "no threshold crossed".to_string() } else { format!("crossed: {crossed}") }/>
                    </section>
                    {(!s.alerts.is_empty()).then(|| view! {
                        <ul class="alerts">
                            {s.alerts.iter().map(|a| view! {
                                <li>{format!("{} % {} — alert raised {} UTC, {}", a.threshold, a.crossed, a.at.replace('T', " "), if a.delivered { "delivered".to_string() } else { format!("not delivered yet ({})", a.error.clone().unwrap_or_else(|| "first attempt due".into())) })}</li>
                            }).collect_view()}
                        </ul>
                    })}
                    <ChartView chart=b.chart/>
                    <p class="muted">{format!("Recomputed {} of {} runs; set in {}.", q.unit(), s.runs, s.budget.source)}</p>
                </section>
            }
        }).collect_view()}
    }
}
