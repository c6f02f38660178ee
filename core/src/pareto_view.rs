//! The Pareto view of a selection of runs: their joined metric against their CO2 (or energy),
//! built with [`crate::pareto::front`], and what it tells in sentences.

use crate::metrics::MetricJoin;
use crate::model::Run;
use crate::pareto::{
    direction_of, front, Axis, Direction, FrontStep, MetricName, ParetoPoint, ParetoQuery, ParetoView, Point,
};
use crate::units::{co2_kg, count, energy_kwh, sig3, sig4};
use std::collections::BTreeMap;

/// Runs whose grid intensities differ by more than this factor "ran in different places": the
/// view then compares energy unless CO2 is asked for.
const PLACES_DIFFER: f64 = 1.05;

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

/// Builds the view of `runs` (the selection) with the metrics of `join`.
pub fn build(q: &ParetoQuery, runs: &[&Run], join: &MetricJoin) -> ParetoView {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in runs {
        for name in join.by_run.get(&r.run_id).into_iter().flat_map(|m| m.keys()) {
            *counts.entry(name).or_default() += 1;
        }
    }
    // Where a study or carbon-dash.toml says which way is better, that; else the name's guess.
    let said = |name: &str| join.directions.get(name).map(|&up| if up { Direction::Higher } else { Direction::Lower });
    let mut metrics: Vec<MetricName> = counts
        .into_iter()
        .map(|(name, runs)| MetricName {
            name: name.to_string(),
            runs,
            direction: said(name).unwrap_or_else(|| direction_of(name)),
            unit: join.units.get(name).cloned(),
        })
        .collect();
    metrics.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.name.cmp(&b.name)));
    let mut view = ParetoView {
        scope: q.scope(),
        query: q.clone(),
        runs_in_scope: runs.len(),
        scale: q.scale.unwrap_or_default(),
        ..ParetoView::default()
    };
    let metric = q.metric.clone().or_else(|| metrics.first().map(|m| m.name.clone()));
    view.metrics = metrics;
    let mut params: BTreeMap<&str, usize> = BTreeMap::new();
    for r in runs {
        for name in join.params.get(&r.run_id).into_iter().flat_map(|m| m.keys()) {
            *params.entry(name).or_default() += 1;
        }
    }
    view.params = params.into_iter().map(|(n, c)| (n.to_string(), c)).collect();
    view.params.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    view.colour = q.colour.clone().filter(|c| view.params.iter().any(|(n, _)| n == c));
    let Some(metric) = metric else {
        view.findings.push(format!(
            "No run of {} has a metric: put a metrics.csv (run_id,name,value) beside the logs, or keep your \
             results tables, the Trainer's, W&B's, MLflow's or Optuna's files there.",
            view.scope
        ));
        view.runs_without_metric = runs.len();
        return view;
    };
    let direction = q.direction.or_else(|| said(&metric)).unwrap_or_else(|| direction_of(&metric));
    view.direction = Some(direction);
    view.direction_guessed = q.direction.is_none();
    view.direction_said = q.direction.is_none() && said(&metric).is_some();
    view.metric_unit = join.units.get(&metric).cloned();
    let with: Vec<(&Run, &crate::metrics::Joined)> =
        runs.iter().filter_map(|r| join.by_run.get(&r.run_id).and_then(|m| m.get(&metric)).map(|j| (*r, j))).collect();
    view.metric = Some(metric.clone());
    view.runs_without_metric = runs.len() - with.len();
    if with.is_empty() {
        view.findings.push(format!("No run of {} has the metric '{metric}'.", view.scope));
        return view;
    }
    // Runs on different grids: energy compares their work, CO2 their footprint.
    let intensities: Vec<f64> = with
        .iter()
        .filter(|(r, _)| r.assessment.co2_kg.is_some())
        .map(|(r, _)| r.assessment.intensity_g_per_kwh)
        .filter(|g| *g > 0.0)
        .collect();
    let (lo, hi) = intensities.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &g| (a.min(g), b.max(g)));
    view.axis = match q.axis {
        Some(a) => a,
        None if hi > lo * PLACES_DIFFER => {
            view.axis_note = Some(format!(
                "These runs ran on grids from {} to {} g CO₂e/kWh: energy compares their work on equal terms; choose \
                 CO₂e to compare their footprint.",
                sig3(lo),
                sig3(hi)
            ));
            Axis::Energy
        }
        None => Axis::Co2,
    };
    let cost = |r: &Run| match view.axis {
        Axis::Co2 => r.assessment.co2_kg,
        Axis::Energy => r.energy_kwh,
    };
    let points: Vec<Point> =
        with.iter().map(|(r, j)| Point { cost: cost(r).unwrap_or(f64::NAN), value: j.value }).collect();
    let good = |v: f64| if direction == Direction::Higher { v } else { -v };
    // δ's default and the step come from the runs that can be placed (a cost and a value).
    let placed = || points.iter().filter(|p| p.cost.is_finite() && p.cost >= 0.0);
    let best_value = placed().map(|p| good(p.value)).fold(f64::NEG_INFINITY, f64::max);
    let unit_interval = placed().all(|p| (0.0..=1.0).contains(&p.value));
    // δ: one point of a score in [0, 1], else 1 % of the best value.
    view.delta = q.delta.unwrap_or(if unit_interval { 0.01 } else { 0.01 * best_value.abs() });
    view.step = if unit_interval { 0.01 } else { 1.0 };
    let f = front(&points, direction, view.scale, view.delta);
    let id = |i: usize| with[i].0.run_id.clone();
    view.points = with
        .iter()
        .enumerate()
        .map(|(i, (r, j))| ParetoPoint {
            run_id: r.run_id.clone(),
            label: format!(
                "{}{}",
                r.experiment_id.as_deref().map(|e| format!("experiment {e}")).unwrap_or_default(),
                r.started_at.map(|t| format!(", started {}", t.format("%Y-%m-%d %H:%M"))).unwrap_or_default()
            ),
            co2_kg: r.assessment.co2_kg,
            co2_kg_low: r.assessment.co2_kg_low,
            co2_kg_high: r.assessment.co2_kg_high,
            energy_kwh: r.energy_kwh,
            energy_kwh_low: r.assessment.energy_kwh_low,
            energy_kwh_high: r.assessment.energy_kwh_high,
            value: j.value,
            on_front: f.on_front[i],
            joined_by_guess: j.guess.clone(),
            metric_file: j.file.clone(),
            group: view.colour.as_ref().and_then(|c| join.params.get(&r.run_id)?.get(c).cloned()),
        })
        .collect();
    view.groups = groups(&view.points);
    view.guessed_joins = view.points.iter().filter(|p| p.joined_by_guess.is_some()).count();
    view.points_total = view.points.len();
    view.front = f.front.iter().map(|&i| id(i)).collect();
    view.knee_run_id = f.knee.map(id);
    view.no_knee = f.no_knee.clone();
    view.within_delta_run_id = f.within_delta.map(id);
    view.best_run_id = f.front.last().map(|&i| id(i));
    view.steps = f
        .front
        .windows(2)
        .zip(&f.cost_per_unit)
        .map(|(w, c)| FrontStep { from_run_id: id(w[0]), to_run_id: id(w[1]), cost_per_unit: *c })
        .collect();
    let mut usable = vec![true; points.len()];
    for &i in &f.unusable {
        usable[i] = false;
    }
    for (i, (r, _)) in with.iter().enumerate() {
        if usable[i] && !f.on_front[i] {
            view.dominated_runs += 1;
            view.dominated_co2_kg += r.assessment.co2_kg.unwrap_or(0.0);
            view.dominated_co2_kg_low += r.assessment.co2_kg_low.unwrap_or(0.0);
            view.dominated_co2_kg_high += r.assessment.co2_kg_high.unwrap_or(0.0);
            view.dominated_energy_kwh += r.energy_kwh.unwrap_or(0.0);
        }
    }
    view.findings = findings(&view, &with, &f);
    view
}

/// The values of the colouring hyper-parameter: in numeric order when all are numbers, else
/// the most common first.
fn groups(points: &[ParetoPoint]) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for g in points.iter().filter_map(|p| p.group.as_deref()) {
        *count.entry(g).or_default() += 1;
    }
    let mut out: Vec<(&str, usize)> = count.into_iter().collect();
    if out.iter().all(|(g, _)| g.parse::<f64>().is_ok()) {
        out.sort_by(|a, b| a.0.parse::<f64>().unwrap_or(0.0).total_cmp(&b.0.parse::<f64>().unwrap_or(0.0)));
    } else {
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    }
    out.into_iter().map(|(g, _)| g.to_string()).collect()
}

/// What the view tells, in sentences, with units.
fn findings(v: &ParetoView, with: &[(&Run, &crate::metrics::Joined)], f: &crate::pareto::Front) -> Vec<String> {
    let metric = v.metric.as_deref().unwrap_or_default();
    let at = |i: usize| {
        let r = with[i].0;
        let c = match v.axis {
            Axis::Co2 => r.assessment.co2_kg.map(co2_kg),
            Axis::Energy => r.energy_kwh.map(energy_kwh),
        };
        format!("run {} ({metric} {} at {})", short(&r.run_id), sig4(with[i].1.value), c.unwrap_or_else(|| "–".into()))
    };
    let cost_of = |i: usize| match v.axis {
        Axis::Co2 => with[i].0.assessment.co2_kg,
        Axis::Energy => with[i].0.energy_kwh,
    };
    let mut out = Vec::new();
    let best = f.front.last().copied();
    if let (Some(b), true) = (best, f.front.len() > 1) {
        let cheapest = f.front[0];
        out.push(format!(
            "The front holds {} of {} runs, from {} to the best, {}.",
            f.front.len(),
            with.len(),
            at(cheapest),
            at(b)
        ));
    } else if let Some(b) = best {
        out.push(format!("One run is on the front: {}.", at(b)));
    }
    match (f.knee, best) {
        (Some(k), Some(b)) => {
            let share = match (cost_of(k), cost_of(b)) {
                (Some(ck), Some(cb)) if cb > 0.0 => format!(", {} % of the best run's cost", sig3(100.0 * ck / cb)),
                _ => String::new(),
            };
            let gap = (with[b].1.value - with[k].1.value).abs();
            out.push(format!(
                "Knee (on a {} axis): {}{share}, {} from the best.",
                if v.scale == crate::pareto::Scale::Log { "log" } else { "linear" },
                at(k),
                sig4(gap)
            ));
        }
        _ => {
            if let Some(why) = &f.no_knee {
                out.push(format!("No knee: {why}."));
            }
        }
    }
    if let Some(d) = f.within_delta {
        out.push(format!("The cheapest run within δ = {} of the best: {}.", sig4(v.delta), at(d)));
    }
    if let (Some(&last), Some(c)) = (f.front.last(), f.cost_per_unit.last()) {
        // Better is up or down: a step of the metric is said the way it improves.
        let sign = if v.direction == Some(Direction::Lower) { "−" } else { "+" };
        let (step, per) = (v.step, format!("{sign}{}", sig4(v.step)));
        let unit = match v.axis {
            Axis::Co2 => co2_kg(c * step),
            Axis::Energy => energy_kwh(c * step),
        };
        let prev = f.front[f.front.len() - 2];
        out.push(format!(
            "The last step along the front, from run {} to run {}, cost {unit} per {per} of {metric}.",
            short(&with[prev].0.run_id),
            short(&with[last].0.run_id)
        ));
    }
    if v.dominated_runs > 0 {
        let energy = match v.axis {
            Axis::Energy => format!("{} of electricity, ", energy_kwh(v.dominated_energy_kwh)),
            Axis::Co2 => String::new(),
        };
        out.push(format!(
            "This selection spent {energy}{} ({}–{}), on {} that another run matched or beat for no more {}.",
            co2_kg(v.dominated_co2_kg),
            co2_kg(v.dominated_co2_kg_low),
            co2_kg(v.dominated_co2_kg_high),
            count(v.dominated_runs, "run"),
            match v.axis {
                Axis::Co2 => "CO₂e",
                Axis::Energy => "energy",
            }
        ));
    } else if !f.front.is_empty() {
        out.push("Every run is on the front: none was matched or beaten for less.".into());
    }
    if v.guessed_joins > 0 {
        out.push(format!(
            "{} got {metric} from a file that does not name its run (joined by folder, a guess; marked on the chart).",
            count(v.guessed_joins, "run")
        ));
    }
    if v.runs_without_metric > 0 {
        out.push(format!(
            "{} of {} {} no {metric} and are not shown.",
            v.runs_without_metric,
            v.runs_in_scope,
            if v.runs_without_metric == 1 { "has" } else { "have" }
        ));
    }
    if !f.unusable.is_empty() {
        let n = f.unusable.len();
        let what = match v.axis {
            Axis::Co2 => "CO₂e figure",
            Axis::Energy => "energy figure",
        };
        let who = if n == 1 { "1 run has".to_string() } else { format!("{n} runs have") };
        out.push(format!("{who} no {what} and {} left out.", if n == 1 { "is" } else { "are" }));
    }
    out
}
