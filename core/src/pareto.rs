//! A metric against CO2 (or energy): the Pareto front of runs, its knee, the cheapest run close
//! enough to the best, what each step along the front costs, and what the beaten runs spent.
//!
//! - Front: the 2-D maxima sweep (sort by cost, keep a run only if it beats every cheaper one).
//! - Knee: the front point farthest above the chord from its cheapest to its best point, both
//!   axes scaled to [0, 1] (the global maximum of Kneedle's difference curve, without its
//!   threshold; it answers with as few as 3 points, where Kneedle mostly does not). It depends on
//!   the scale, so it is computed on the axis shown (linear or log cost).
//! - δ-rule: the cheapest front run within δ of the best value.
//!
//! Pure: the caller gives each run's cost and metric value.

use serde::{Deserialize, Serialize};

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Higher,
    Lower,
}

/// Names of metrics where lower is better, matched as words of the name (`eval_loss`,
/// `val/perplexity`, `test_wer`, `valLoss`).
const LOWER_IS_BETTER: &[&str] = &[
    "loss",
    "error",
    "err",
    "perplexity",
    "ppl",
    "mae",
    "mse",
    "rmse",
    "msle",
    "rmsle",
    "mape",
    "wer",
    "cer",
    "ter",
    "fid",
    "kid",
    "lpips",
    "nll",
    "bpb",
    "bpc",
    "bpd",
    "xent",
    "entropy",
    "eer",
    "ece",
    "brier",
    "fpr",
    "runtime",
    "latency",
];

/// The direction a metric's name suggests: lower for losses, errors, perplexity, WER …, else
/// higher. Words are split at punctuation and at camelCase; a word ending in `loss` or `error`
/// counts (`logloss`, `merror`); scikit-learn's `neg_…` scores are negated, so they go up.
pub fn direction_of(name: &str) -> Direction {
    let mut spaced = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        spaced.push(c.to_ascii_lowercase());
    }
    let words: Vec<&str> = spaced.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let lower = words.iter().any(|w| LOWER_IS_BETTER.contains(w) || w.ends_with("loss") || w.ends_with("error"));
    let negated = words.first() == Some(&"neg");
    let reduction = words.iter().any(|w| matches!(*w, "reduction" | "decrease" | "drop"));
    if lower != (negated || reduction) {
        Direction::Lower
    } else {
        Direction::Higher
    }
}

/// The cost axis of the view: CO2, or energy (fairer when runs ran on different grids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    #[default]
    Co2,
    Energy,
}

/// What the Pareto view shows: a selection of runs (the Runs page's filters), a metric, and how.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParetoQuery {
    pub project: Option<String>,
    pub experiment: Option<String>,
    pub team: Option<String>,
    pub country: Option<String>,
    pub provider: Option<String>,
    /// The tracker that wrote the runs.
    #[serde(default)]
    pub tool: Option<String>,
    /// The metric; the one most runs have when absent.
    pub metric: Option<String>,
    /// Which way the metric improves; guessed from its name when absent.
    pub direction: Option<Direction>,
    /// CO2 unless the runs ran at different grid intensities (then energy) when absent.
    pub axis: Option<Axis>,
    pub scale: Option<Scale>,
    /// δ for "the cheapest run within δ of the best", in the metric's units.
    pub delta: Option<f64>,
    /// A hyper-parameter whose values colour the points.
    #[serde(default)]
    pub colour: Option<String>,
}

impl ParetoQuery {
    /// Reads the query from URL parameters; a value that is not one of the choices is refused,
    /// with what to write instead.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Result<ParetoQuery, String> {
        let field = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let choice = |k: &str, opts: &[&str]| -> Result<Option<usize>, String> {
            match field(k) {
                None => Ok(None),
                Some(v) => opts
                    .iter()
                    .position(|o| o.eq_ignore_ascii_case(&v))
                    .map(Some)
                    .ok_or_else(|| format!("{k} '{v}': one of {}", opts.join(", "))),
            }
        };
        let delta = match field("delta") {
            None => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d >= 0.0)
                    .ok_or_else(|| format!("delta '{v}': a number, 0 or more, in the metric's units"))?,
            ),
        };
        Ok(ParetoQuery {
            project: field("project"),
            experiment: field("experiment"),
            team: field("team"),
            country: field("country"),
            provider: field("provider"),
            tool: field("tool"),
            metric: field("metric"),
            direction: choice("direction", &["higher", "lower"])?.map(|i| {
                if i == 0 {
                    Direction::Higher
                } else {
                    Direction::Lower
                }
            }),
            axis: choice("axis", &["co2", "energy"])?.map(|i| if i == 0 { Axis::Co2 } else { Axis::Energy }),
            scale: choice("scale", &["linear", "log"])?.map(|i| if i == 0 { Scale::Linear } else { Scale::Log }),
            delta,
            colour: field("colour"),
        })
    }

    /// The selection in words ("experiment e1", "project p, team t", "all runs").
    pub fn scope(&self) -> String {
        let parts: Vec<String> = [
            ("experiment", &self.experiment),
            ("project", &self.project),
            ("team", &self.team),
            ("country", &self.country),
            ("provider", &self.provider),
            ("tool", &self.tool),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
        .collect();
        if parts.is_empty() {
            "all runs".into()
        } else {
            parts.join(", ")
        }
    }

    /// The selection as URL parameters (`project=p&experiment=e`), encoded.
    pub fn selection_params(&self) -> Vec<(&'static str, String)> {
        [
            ("project", &self.project),
            ("experiment", &self.experiment),
            ("team", &self.team),
            ("country", &self.country),
            ("provider", &self.provider),
            ("tool", &self.tool),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
    }
}

/// A metric the selection's runs have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricName {
    pub name: String,
    pub runs: usize,
    pub direction: Direction,
    /// Its unit, where declared.
    #[serde(default)]
    pub unit: Option<String>,
}

/// One run in the view.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParetoPoint {
    pub run_id: String,
    /// Experiment and start, for tooltips.
    pub label: String,
    pub co2_kg: Option<f64>,
    pub co2_kg_low: Option<f64>,
    pub co2_kg_high: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub energy_kwh_low: Option<f64>,
    pub energy_kwh_high: Option<f64>,
    pub value: f64,
    pub on_front: bool,
    /// Set when the metric was joined by the run's folder, not by its id: why.
    pub joined_by_guess: Option<String>,
    /// The metrics file the value came from.
    pub metric_file: String,
    /// The run's value of the hyper-parameter colouring the view.
    #[serde(default)]
    pub group: Option<String>,
}

/// One step along the front: what the next better run costs per unit of metric gained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontStep {
    pub from_run_id: String,
    pub to_run_id: String,
    /// Cost (kg CO2e or kWh, as the axis) per unit of the metric.
    pub cost_per_unit: f64,
}

/// The Pareto view of a selection: its points, front, knee, δ-rule and the CO2 of beaten runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParetoView {
    pub scope: String,
    pub query: ParetoQuery,
    pub metrics: Vec<MetricName>,
    pub metric: Option<String>,
    pub direction: Option<Direction>,
    pub direction_guessed: bool,
    /// The direction not asked for came from the metric's study or `carbon-dash.toml`, not its
    /// name.
    #[serde(default)]
    pub direction_said: bool,
    /// The metric's unit, where declared.
    #[serde(default)]
    pub metric_unit: Option<String>,
    /// Hyper-parameters the selection's runs have, with how many runs have each.
    #[serde(default)]
    pub params: Vec<(String, usize)>,
    /// The hyper-parameter colouring the points, and its values in the legend's order (the
    /// most common first; numbers in order).
    #[serde(default)]
    pub colour: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub axis: Axis,
    /// Why the axis is what it is when it was not asked for.
    pub axis_note: Option<String>,
    pub scale: Scale,
    pub delta: f64,
    /// The metric step costs are told for: 0.01 (one point) for a score in [0, 1], else 1.
    pub step: f64,
    pub runs_in_scope: usize,
    pub runs_without_metric: usize,
    /// Runs whose metric was joined by folder, not by id.
    pub guessed_joins: usize,
    pub points: Vec<ParetoPoint>,
    /// Run ids on the front, cheapest first.
    pub front: Vec<String>,
    pub knee_run_id: Option<String>,
    pub no_knee: Option<String>,
    pub within_delta_run_id: Option<String>,
    pub best_run_id: Option<String>,
    pub steps: Vec<FrontStep>,
    /// CO2 and energy of the runs the front beats (as cheap or cheaper, and better).
    pub dominated_co2_kg: f64,
    pub dominated_co2_kg_low: f64,
    pub dominated_co2_kg_high: f64,
    pub dominated_energy_kwh: f64,
    pub dominated_runs: usize,
    /// What the view tells, in sentences.
    pub findings: Vec<String>,
    /// Points in the view before [`ParetoView::trimmed`] left some out (the figures count all).
    pub points_total: usize,
}

/// Beaten runs a page or a chart shows at most (every front run is always shown).
pub const BEATEN_SHOWN: usize = 300;

impl ParetoView {
    /// What a front run is, in words: "knee", "cheapest within δ", "best" (each that applies).
    pub fn marks(&self, run_id: &str) -> Vec<&'static str> {
        let is = |id: &Option<String>| id.as_deref() == Some(run_id);
        [(&self.knee_run_id, "knee"), (&self.within_delta_run_id, "cheapest within δ"), (&self.best_run_id, "best")]
            .into_iter()
            .filter(|(id, _)| is(id))
            .map(|(_, word)| word)
            .collect()
    }

    /// The view with every front point and at most `max` of the others, spread evenly over their
    /// cost (the cheapest and the dearest kept): what a page carries and a chart draws. The
    /// figures and findings still count every run.
    pub fn trimmed(mut self, max: usize) -> ParetoView {
        let (front, mut beaten): (Vec<ParetoPoint>, Vec<ParetoPoint>) =
            std::mem::take(&mut self.points).into_iter().partition(|p| p.on_front);
        if beaten.len() > max {
            let cost = |p: &ParetoPoint| match self.axis {
                Axis::Co2 => p.co2_kg,
                Axis::Energy => p.energy_kwh,
            };
            beaten.sort_by(|a, b| cost(a).unwrap_or(f64::INFINITY).total_cmp(&cost(b).unwrap_or(f64::INFINITY)));
            let last = beaten.len() - 1;
            let keep: Vec<usize> = match max {
                0 => Vec::new(),
                1 => vec![0],
                _ => (0..max).map(|i| i * last / (max - 1)).collect(),
            };
            beaten = keep.into_iter().map(|i| beaten[i].clone()).collect();
        }
        self.points = front;
        self.points.extend(beaten);
        self
    }
}

/// One run: its cost (kg CO2e or kWh) and its metric value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub cost: f64,
    pub value: f64,
}

/// The front and what it tells.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Front {
    /// Indices into the points, cheapest first, each better than the one before.
    pub front: Vec<usize>,
    /// Per point: on the front.
    pub on_front: Vec<bool>,
    /// Points left out: no cost or no finite value.
    pub unusable: Vec<usize>,
    /// The knee's index, when the front has at least 3 points and bends.
    pub knee: Option<usize>,
    /// Why there is no knee, in words.
    pub no_knee: Option<String>,
    /// The cheapest front point within δ of the best value.
    pub within_delta: Option<usize>,
    /// Per step along the front (from `front[i]` to `front[i + 1]`): cost per unit of metric gained.
    pub cost_per_unit: Vec<f64>,
    /// The summed cost of the points the front beats (cheaper or as cheap, and better).
    pub dominated_cost: f64,
}

/// How the cost axis is scaled for the knee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    #[default]
    Linear,
    Log,
}

/// The front of `points` for a metric going `dir`, its knee on `scale`, and the δ-rule with
/// `delta` (in the metric's units, ≥ 0).
pub fn front(points: &[Point], dir: Direction, scale: Scale, delta: f64) -> Front {
    let good = |v: f64| if dir == Direction::Higher { v } else { -v };
    // Zero cost is a cost: such a run is on the front or not whatever the axis; only the knee,
    // on a log axis, leaves it out.
    let usable = |p: &Point| p.cost.is_finite() && p.value.is_finite() && p.cost >= 0.0;
    let mut order: Vec<usize> = (0..points.len()).filter(|&i| usable(&points[i])).collect();
    let unusable: Vec<usize> = (0..points.len()).filter(|&i| !usable(&points[i])).collect();
    // Cheapest first; at equal cost, the better first (the worse one is beaten by it).
    order.sort_by(|&a, &b| {
        // + 0.0: -0.0 and 0.0 are one cost.
        (points[a].cost + 0.0)
            .total_cmp(&(points[b].cost + 0.0))
            .then(good(points[b].value).total_cmp(&good(points[a].value)))
            .then(a.cmp(&b))
    });
    let mut f = Front { on_front: vec![false; points.len()], unusable, ..Front::default() };
    let mut best = f64::NEG_INFINITY;
    for &i in &order {
        let v = good(points[i].value);
        if v > best {
            best = v;
            f.front.push(i);
            f.on_front[i] = true;
        } else {
            f.dominated_cost += points[i].cost;
        }
    }
    f.cost_per_unit = f
        .front
        .windows(2)
        .map(|w| (points[w[1]].cost - points[w[0]].cost) / (good(points[w[1]].value) - good(points[w[0]].value)))
        .collect();
    if let Some(&top) = f.front.last() {
        let best = good(points[top].value);
        let slack = delta.max(0.0) + 1e-9 * best.abs().max(1.0);
        f.within_delta = f.front.iter().copied().find(|&i| best - good(points[i].value) <= slack);
    }
    let x = |i: usize| if scale == Scale::Log { points[i].cost.log10() } else { points[i].cost };
    // On a log axis a zero cost has no place: the knee is looked for among the others.
    let bend: Vec<usize> =
        f.front.iter().copied().filter(|&i| scale == Scale::Linear || points[i].cost > 0.0).collect();
    if bend.len() < 3 {
        f.no_knee = Some(format!("too few points for a knee ({} on the front; 3 needed)", bend.len()));
        return f;
    }
    let (x0, x1) = (x(bend[0]), x(*bend.last().unwrap_or(&0)));
    let (y0, y1) = (good(points[bend[0]].value), good(points[*bend.last().unwrap_or(&0)].value));
    if x1 <= x0 || y1 <= y0 {
        f.no_knee = Some("the front has no width to bend in".into());
        return f;
    }
    let distance = |i: usize| (good(points[i].value) - y0) / (y1 - y0) - (x(i) - x0) / (x1 - x0);
    let (mut arg, mut max) = (None, 0.0);
    for &i in &bend[1..bend.len() - 1] {
        let d = distance(i);
        if d > max + 1e-12 {
            (arg, max) = (Some(i), d);
        }
    }
    f.knee = arg;
    if arg.is_none() {
        f.no_knee = Some(
            "the front does not bend: each step costs as much or more per unit as the last (no point above the chord)"
                .into(),
        );
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(f64, f64)]) -> Vec<Point> {
        v.iter().map(|&(cost, value)| Point { cost, value }).collect()
    }

    #[test]
    fn a_trimmed_view_keeps_the_front_and_spreads_the_beaten_runs_over_their_cost() {
        let point = |i: usize, on_front: bool| ParetoPoint {
            run_id: format!("r{i}"),
            co2_kg: Some(i as f64),
            value: i as f64,
            on_front,
            ..ParetoPoint::default()
        };
        let mut v = ParetoView { points: (0..1000).map(|i| point(i, i % 100 == 0)).collect(), ..ParetoView::default() };
        v.points_total = v.points.len();
        let t = v.trimmed(5);
        assert_eq!(t.points.iter().filter(|p| p.on_front).count(), 10, "every front point");
        let beaten: Vec<&str> = t.points.iter().filter(|p| !p.on_front).map(|p| p.run_id.as_str()).collect();
        assert_eq!(beaten.len(), 5);
        assert_eq!((beaten[0], beaten[4]), ("r1", "r999"), "the cheapest and the dearest kept");
        assert_eq!(t.points_total, 1000);
    }

    #[test]
    fn a_concave_sweep_bends_where_returns_start_to_diminish() {
        // Accuracy against kg: steep up to 0.4 kg, then flat. Run 2 (0.4 kg, 90.9) is the knee.
        let p = pts(&[(0.1, 80.0), (0.2, 87.0), (0.4, 90.9), (1.0, 91.0), (2.1, 91.2), (1.5, 90.0), (0.3, 85.0)]);
        let f = front(&p, Direction::Higher, Scale::Linear, 0.25);
        assert_eq!(f.front, vec![0, 1, 2, 3, 4]);
        assert_eq!(f.knee, Some(2));
        // Beaten: 1.5 kg for 90.0 (0.4 kg reached 90.9), 0.3 kg for 85.0 (0.2 kg reached 87).
        assert!((f.dominated_cost - 1.8).abs() < 1e-12);
        // Within 0.25 of the best (91.2): the cheapest is run 3 (91.0 at 1 kg); within 0.5, run 2.
        assert_eq!(f.within_delta, Some(3));
        assert_eq!(front(&p, Direction::Higher, Scale::Linear, 0.5).within_delta, Some(2));
        // The last step: 1.1 kg for 0.2 points.
        assert!((f.cost_per_unit[3] - 5.5).abs() < 1e-9);
    }

    #[test]
    fn a_straight_or_convex_front_has_no_knee_and_few_points_say_so() {
        let straight = pts(&[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]);
        let f = front(&straight, Direction::Higher, Scale::Linear, 0.0);
        assert_eq!(f.front.len(), 4);
        assert_eq!(f.knee, None);
        assert!(f.no_knee.as_deref().is_some_and(|w| w.contains("does not bend")));
        for n in [0usize, 1, 2] {
            let p = pts(&[(1.0, 1.0), (2.0, 2.0)][..n]);
            let f = front(&p, Direction::Higher, Scale::Linear, 0.0);
            assert!(f.knee.is_none() && f.no_knee.as_deref().is_some_and(|w| w.contains("too few points")), "{n}");
        }
        assert_eq!(front(&pts(&[(1.0, 5.0)]), Direction::Higher, Scale::Linear, 0.0).within_delta, Some(0));
    }

    #[test]
    fn losses_go_down_ties_and_noise_are_handled() {
        // Loss: lower is better. Equal cost: the better one is on the front, the other beaten.
        let p = pts(&[(1.0, 2.0), (1.0, 1.5), (2.0, 1.0), (4.0, 0.9), (3.0, f64::NAN), (f64::INFINITY, 0.1)]);
        let f = front(&p, Direction::Lower, Scale::Linear, 0.0);
        assert_eq!(f.front, vec![1, 2, 3]);
        assert_eq!(f.unusable, vec![4, 5]);
        assert!((f.dominated_cost - 1.0).abs() < 1e-12);
        assert_eq!(f.knee, Some(2));
        // Equal values at a higher cost are beaten too (strictly better is needed).
        let same = front(&pts(&[(1.0, 0.5), (2.0, 0.5)]), Direction::Higher, Scale::Linear, 0.0);
        assert_eq!(same.front, vec![0]);
        assert_eq!(direction_of("eval_loss"), Direction::Lower);
        assert_eq!(direction_of("val/perplexity"), Direction::Lower);
        assert_eq!(direction_of("test_wer"), Direction::Lower);
        assert_eq!(direction_of("accuracy"), Direction::Higher);
        assert_eq!(direction_of("f1"), Direction::Higher);
        assert_eq!(direction_of("errorless_rate"), Direction::Higher, "whole words only");
        for lower in [
            "valLoss",
            "evalLoss",
            "logloss",
            "mlogloss",
            "merror",
            "mape",
            "rmsle",
            "cross_entropy",
            "eer",
            "top1_err",
            "val_ppl",
            "mean_error_rate",
        ] {
            assert_eq!(direction_of(lower), Direction::Lower, "{lower}");
        }
        for higher in [
            "accuracy",
            "bleu",
            "rouge",
            "auc",
            "mAP",
            "f1",
            "exact_match",
            "neg_log_loss",
            "neg_mean_squared_error",
            "error_reduction",
        ] {
            assert_eq!(direction_of(higher), Direction::Higher, "{higher}");
        }
    }

    #[test]
    fn the_knee_is_computed_on_the_axis_shown() {
        // Costs spanning decades: on a log axis the bend is elsewhere than on a linear one.
        let p = pts(&[(0.01, 70.0), (0.1, 85.0), (1.0, 90.0), (10.0, 91.0), (100.0, 91.5)]);
        let lin = front(&p, Direction::Higher, Scale::Linear, 0.0);
        let log = front(&p, Direction::Higher, Scale::Log, 0.0);
        assert_eq!(lin.knee, Some(2), "linear: 1 kg");
        assert_eq!(log.knee, Some(1), "log: 0.1 kg");
        // A zero cost is still a cost on a log axis: the front is the same, the knee leaves it out.
        let z = pts(&[(0.0, 90.0), (1.0, 80.0)]);
        assert_eq!(front(&z, Direction::Higher, Scale::Log, 0.0).front, vec![0]);
        assert_eq!(front(&z, Direction::Higher, Scale::Linear, 0.0).front, vec![0]);
        // -0.0 and 0.0 are one cost; δ at a float boundary still holds.
        let signed = front(&pts(&[(-0.0, 1.0), (0.0, 2.0)]), Direction::Higher, Scale::Linear, 0.0);
        assert_eq!(signed.front, vec![1]);
        let edge = front(&pts(&[(1.0, 0.7), (2.0, 0.8)]), Direction::Higher, Scale::Linear, 0.1);
        assert_eq!(edge.within_delta, Some(0));
    }
}
