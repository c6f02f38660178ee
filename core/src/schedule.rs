//! The planner's question and answer: "when (and where) should this job run?". The question
//! comes from a URL's query (`/plan`, `/api/v1/plan`); the answer is what the page and the JSON
//! show, every figure with its unit, source and basis. The search itself is [`crate::plan`].

use crate::live::{Basis, Series, Target};
use crate::plan::{best_window, Ask, NoWindow, Profile, Search, Step};
use crate::time::rfc3339;
use serde::{Deserialize, Serialize};

/// The query of `/plan` and `GET /api/v1/plan`, as written in the URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanQuery {
    /// An Electricity Maps zone key, `GB` or `GB-1` … `GB-17`.
    pub zone: Option<String>,
    /// A cloud region as the map names it, `gcp/europe-west2`.
    pub region: Option<String>,
    /// A past run whose energy, duration and power profile the job repeats.
    pub run_id: Option<String>,
    /// `90m`, `3h`, `1h30m`, `45s`.
    pub duration: Option<String>,
    pub energy_kwh: Option<String>,
    /// RFC 3339: the latest start, and the latest end.
    pub start_by: Option<String>,
    pub finish_by: Option<String>,
    /// Where to look elsewhere: one provider's regions, one continent's.
    pub provider: Option<String>,
    pub continent: Option<String>,
}

impl PlanQuery {
    /// Nothing asked yet (the page shows its form only).
    pub fn is_empty(&self) -> bool {
        self.zone.is_none() && self.region.is_none() && self.run_id.is_none()
    }
}

/// `90m`, `3h`, `1h30m`, `2h15m30s`, `45s`, `1d`: seconds, at least 1 and at most 7 days.
pub fn parse_duration(v: &str) -> Result<i64, String> {
    let bad = || format!("duration '{v}': write it as 90m, 3h, 1h30m or 45s");
    let s = v.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = total.checked_add(n.checked_mul(unit).ok_or_else(bad)?).ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    if !(1..=7 * 86_400).contains(&total) {
        return Err(format!("duration '{v}': between 1 s and 7 days"));
    }
    Ok(total)
}

/// What a past run tells the planner about the job.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFacts {
    pub run_id: String,
    pub target: Option<Target>,
    pub energy_kwh: Option<f64>,
    pub duration_s: Option<f64>,
    /// Its own power profile when it has checkpoints.
    pub profile: Option<Profile>,
    pub checkpoints: usize,
}

#[cfg(feature = "ingest")]
impl RunFacts {
    pub fn of(grid: &crate::grid::Grid, d: &crate::model::RunDetail) -> RunFacts {
        let points: Vec<(f64, f64)> =
            d.checkpoints.iter().filter_map(|c| Some((c.duration_s?, c.energy_kwh?))).collect();
        RunFacts {
            run_id: d.run.run_id.clone(),
            target: Target::of_run(grid, &d.run),
            energy_kwh: d.run.energy_kwh,
            duration_s: d.run.duration_s,
            profile: (points.len() > 1).then(|| Profile::from_checkpoints(&points)).flatten(),
            checkpoints: points.len(),
        }
    }
}

/// The embedded annual figure of a place: what "offline" means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annual {
    pub g_per_kwh: f64,
    pub low_g_per_kwh: f64,
    pub high_g_per_kwh: f64,
    /// "Ember 2024 — Germany".
    pub source: String,
}

/// One value of the forecast, for the chart and the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastPoint {
    pub start: String,
    pub end: String,
    pub g_per_kwh: f64,
}

/// The best start in another place (or the annual figure, where no forecast covers it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Elsewhere {
    pub zone: String,
    pub label: String,
    /// `None`: any time (the annual figure has no hours).
    pub best_start: Option<String>,
    pub mean_g_per_kwh: f64,
    pub co2_kg: Option<f64>,
    /// "forecast" or "annual".
    pub kind: String,
    /// What the figure counts (the annual figures are lifecycle averages).
    pub basis: Basis,
    pub source: String,
}

/// The planner's answer. Times are RFC 3339 UTC; intensities g CO2e/kWh (energy-weighted means
/// over the job when it has a power profile); `saving_*` compare starting now with the best start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanAnswer {
    pub zone: String,
    pub place: String,
    /// What the times rest on, in words: provider, forecast or annual, basis, issue time.
    pub source: String,
    /// A live forecast was used (else the embedded annual figure).
    pub live: bool,
    pub basis: Option<Basis>,
    pub issued_at: Option<String>,
    pub fetched_at: Option<String>,
    pub now: String,
    pub duration_s: i64,
    pub energy_kwh: Option<f64>,
    /// Where the energy and its shape come from, in words.
    pub job: String,
    pub start_by: Option<String>,
    pub finish_by: Option<String>,
    pub best_start: Option<String>,
    pub best_end: Option<String>,
    pub best_mean_g_per_kwh: Option<f64>,
    pub now_mean_g_per_kwh: Option<f64>,
    pub saving_pct: Option<f64>,
    pub saving_kg: Option<f64>,
    pub annual: Annual,
    /// Holes in the forecast that no window was allowed to cross.
    pub gaps: Vec<[String; 2]>,
    /// What the reader should know: no window and why, providers skipped, offline.
    pub notes: Vec<String>,
    pub forecast: Vec<ForecastPoint>,
    /// "Where and when": the best start in each candidate place, best first.
    pub elsewhere: Vec<Elsewhere>,
    /// The grid at the place now, from a live provider.
    pub grid_now: Option<GridNowValue>,
}

/// The job: its duration, energy and power shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub profile: Profile,
    pub energy_kwh: Option<f64>,
    pub words: String,
}

/// Words for a provider's series: "UK Carbon Intensity API (NESO): forecast, direct (operational) average, estimated".
pub fn series_words(s: &Series) -> String {
    let mut w = format!("{}: {}, {}", s.provider, if s.forecast { "forecast" } else { "history" }, s.basis.words());
    if let Some(t) = s.issued_at {
        w.push_str(&format!(", issued {}", readable(t)));
    }
    w
}

/// The grid now at the planned place, times in RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridNowValue {
    pub g_per_kwh: f64,
    pub provider: String,
    pub basis: Basis,
    pub estimated: bool,
    pub forecast: bool,
    /// The start of the period the value is for.
    pub at: String,
    pub fetched_at: String,
}

impl From<&crate::live::Reading> for GridNowValue {
    fn from(r: &crate::live::Reading) -> GridNowValue {
        GridNowValue {
            g_per_kwh: r.g_per_kwh,
            provider: r.provider.clone(),
            basis: r.basis,
            estimated: r.estimated,
            forecast: r.forecast,
            at: rfc3339(r.at),
            fetched_at: rfc3339(r.fetched_at),
        }
    }
}

/// `2026-12-01 02:30 UTC`: for sentences (the JSON fields stay RFC 3339).
pub fn readable(t: i64) -> String {
    let s = rfc3339(t);
    if s.len() >= 16 {
        format!("{} {} UTC", &s[..10], &s[11..16])
    } else {
        s
    }
}

fn why_none(n: &NoWindow, duration_s: i64, ask: Ask) -> String {
    let d = crate::units::duration_s(duration_s as f64);
    match n {
        NoWindow::NoData => "the forecast holds no value".into(),
        NoWindow::TooShort { ends } => {
            format!("the forecast ends at {}: too soon for a job of {d} started now", readable(*ends))
        }
        NoWindow::Deadline => match (ask.start_by, ask.finish_by) {
            (Some(b), _) if b < ask.now => format!("the start-by time, {}, has passed", readable(b)),
            (_, Some(f)) if f < ask.now.saturating_add(duration_s) => {
                format!("finish by {} leaves less than the job's {d} from now ({})", readable(f), readable(ask.now))
            }
            _ => format!("no start within the deadlines leaves room for a job of {d}"),
        },
        NoWindow::Gaps => "every start the deadlines allow runs into a gap in the forecast".into(),
    }
}

/// The answer for `target`, from its forecast when there is one, else from the annual figure.
pub fn answer(
    target: &Target,
    forecast: Option<&Series>,
    annual: Annual,
    job: &Job,
    ask: Ask,
    mut notes: Vec<String>,
) -> PlanAnswer {
    let duration_s = job.profile.duration();
    let mut a = PlanAnswer {
        zone: target.zone.clone(),
        place: target.label.clone(),
        source: format!("annual average, not live: {}", annual.source),
        live: false,
        basis: None,
        issued_at: None,
        fetched_at: None,
        now: rfc3339(ask.now),
        duration_s,
        energy_kwh: job.energy_kwh,
        job: job.words.clone(),
        start_by: ask.start_by.map(rfc3339),
        finish_by: ask.finish_by.map(rfc3339),
        best_start: None,
        best_end: None,
        best_mean_g_per_kwh: None,
        now_mean_g_per_kwh: None,
        saving_pct: None,
        saving_kg: None,
        annual,
        gaps: Vec::new(),
        notes: Vec::new(),
        forecast: Vec::new(),
        elsewhere: Vec::new(),
        grid_now: None,
    };
    let Some(series) = forecast else {
        notes.push(format!(
            "no forecast for {}: the annual average ({:.0} g/kWh) is the same at every hour, so it cannot say when",
            target.label, a.annual.g_per_kwh
        ));
        a.notes = notes;
        return a;
    };
    a.live = true;
    a.basis = Some(series.basis);
    a.source = series_words(series);
    a.issued_at = series.issued_at.map(rfc3339);
    a.fetched_at = Some(rfc3339(series.fetched_at));
    a.forecast = series
        .steps
        .iter()
        .map(|s| ForecastPoint { start: rfc3339(s.start), end: rfc3339(s.end), g_per_kwh: s.g_per_kwh })
        .collect();
    let Search { best, now, gaps, none } = best_window(&series.steps, &job.profile, ask);
    a.gaps = gaps.iter().map(|&(x, y)| [rfc3339(x), rfc3339(y)]).collect();
    if !gaps.is_empty() {
        notes.push(format!("{} gap(s) in the forecast: no window crosses one", gaps.len()));
    }
    if let Some(n) = none {
        notes.push(format!("no start found: {}", why_none(&n, duration_s, ask)));
    }
    a.now_mean_g_per_kwh = now;
    if now.is_none() {
        notes.push("the forecast does not cover a start now, so there is nothing to compare with".into());
    }
    if let Some((s, mean)) = best {
        a.best_start = Some(rfc3339(s));
        a.best_end = Some(rfc3339(s + duration_s));
        a.best_mean_g_per_kwh = Some(mean);
        if let Some(n) = now {
            a.saving_pct = (n > 0.0).then(|| (n - mean) / n * 100.0);
            a.saving_kg = job.energy_kwh.map(|e| e * (n - mean) / 1000.0);
        }
        if job.energy_kwh.is_none() {
            notes.push("give energy_kwh (or a run) to turn the saving into kg CO2e".into());
        }
    }
    if series.basis != Basis::Lifecycle {
        notes.push(format!(
            "the forecast is a {}; the annual figure is a lifecycle average: compare hours with hours, not with it",
            series.basis.words()
        ));
    }
    a.notes = notes;
    a
}

/// The best a candidate place offers, for "where and when".
pub fn elsewhere(target: &Target, forecast: Option<&Series>, annual: &Annual, job: &Job, ask: Ask) -> Elsewhere {
    let best = forecast.and_then(|s| best_window(&s.steps, &job.profile, ask).best.map(|b| (b, s)));
    let (best_start, mean, kind, basis, source) = match best {
        Some(((start, mean), s)) => (Some(rfc3339(start)), mean, "forecast", s.basis, series_words(s)),
        None => {
            (None, annual.g_per_kwh, "annual", Basis::Lifecycle, format!("annual average, not live: {}", annual.source))
        }
    };
    Elsewhere {
        zone: target.zone.clone(),
        label: target.label.clone(),
        best_start,
        mean_g_per_kwh: mean,
        co2_kg: job.energy_kwh.map(|e| e * mean / 1000.0),
        kind: kind.into(),
        basis,
        source,
    }
}

/// A series' steps for a chart: (start, end, g/kWh) in Unix seconds.
pub fn steps_of(points: &[ForecastPoint]) -> Vec<Step> {
    points
        .iter()
        .filter_map(|p| {
            Some(Step {
                start: crate::time::parse_rfc3339(&p.start)?,
                end: crate::time::parse_rfc3339(&p.end)?,
                g_per_kwh: p.g_per_kwh,
            })
        })
        .collect()
}

/// What the planner page shows: the answer (or what to change in the query) and its chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub answer: Result<PlanAnswer, String>,
    pub chart: Option<crate::pages::Chart>,
    /// Set when no provider is configured.
    pub offline: Option<String>,
}

/// The grid now, per cloud region (`provider/region`), for the map and the regions page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GridNow {
    pub regions: Vec<(String, crate::live::Reading)>,
    pub notes: Vec<String>,
    pub offline: Option<String>,
    /// When this was put together (Unix seconds): ages are counted from it.
    pub at: i64,
}

/// A run's CO2 at the hours it ran, from a provider's history, beside the annual figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHours {
    pub co2_kg: f64,
    /// The same energy at the run's annual figure, for comparison.
    pub annual_co2_kg: Option<f64>,
    pub basis: Basis,
    /// How the CSV's clock times were read ("UTC", "UK clock time").
    pub clock: String,
    pub mean_g_per_kwh: f64,
    pub energy_kwh: f64,
    pub intervals: usize,
    pub source: String,
    pub estimated: bool,
}

/// What a run page shows about its hours: the figure, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHoursView {
    pub hours: Option<RunHours>,
    pub note: Option<String>,
}

/// The CO2 of energy used in `intervals` (start, end in Unix seconds, kWh) at the intensity of
/// each interval's own hours in `history`; `None` unless the history covers every interval.
/// O((intervals + steps) log steps): integrals by binary search over prefix sums.
pub fn realised(intervals: &[(i64, i64, f64)], history: &Series) -> Option<RunHours> {
    let steps = crate::plan::normalise(&history.steps);
    // Prefix sums of g·s and of covered seconds up to each step's start.
    let mut g_prefix = Vec::with_capacity(steps.len() + 1);
    let mut t_prefix = Vec::with_capacity(steps.len() + 1);
    let (mut g, mut t) = (0.0f64, 0i64);
    for s in &steps {
        g_prefix.push(g);
        t_prefix.push(t);
        g += s.g_per_kwh * (s.end - s.start) as f64;
        t += s.end - s.start;
    }
    g_prefix.push(g);
    t_prefix.push(t);
    // (integral of g, seconds covered) from the start of the data up to `x`.
    let upto = |x: i64| -> (f64, i64) {
        let i = steps.partition_point(|s| s.end <= x);
        match steps.get(i) {
            Some(s) if x > s.start => (g_prefix[i] + s.g_per_kwh * (x - s.start) as f64, t_prefix[i] + (x - s.start)),
            _ => (g_prefix[i], t_prefix[i]),
        }
    };
    let mut grams = 0.0;
    let mut energy = 0.0;
    for &(a, b, kwh) in intervals {
        if b <= a || !kwh.is_finite() {
            continue;
        }
        let ((ga, ta), (gb, tb)) = (upto(a), upto(b));
        if tb - ta < b - a {
            return None;
        }
        grams += kwh * (gb - ga) / (b - a) as f64;
        energy += kwh;
    }
    (energy > 0.0).then(|| RunHours {
        co2_kg: grams / 1000.0,
        annual_co2_kg: None,
        basis: history.basis,
        clock: String::new(),
        mean_g_per_kwh: grams / energy,
        energy_kwh: energy,
        intervals: intervals.len(),
        source: series_words(history),
        estimated: history.estimated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("3h"), Ok(10_800));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration(" 2H15m30s "), Ok(8130));
        for bad in ["", "90", "1.5h", "h", "-3h", "8d", "0m", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    fn target() -> Target {
        Target { zone: "GB".into(), label: "Great Britain".into(), em: None, uk: None, country_iso3: None }
    }

    fn annual() -> Annual {
        Annual { g_per_kwh: 200.0, low_g_per_kwh: 150.0, high_g_per_kwh: 250.0, source: "Ember 2024".into() }
    }

    #[test]
    fn the_answer_compares_now_with_the_best_start_in_percent_and_kg() {
        let steps: Vec<Step> = [300.0, 100.0, 60.0, 250.0]
            .iter()
            .enumerate()
            .map(|(i, &g)| Step { start: 1800 * i as i64, end: 1800 * (i as i64 + 1), g_per_kwh: g })
            .collect();
        let s = Series {
            zone: "GB".into(),
            provider: "UK".into(),
            basis: Basis::Direct,
            forecast: true,
            estimated: true,
            steps,
            issued_at: None,
            fetched_at: 0,
        };
        let job = Job { profile: Profile::flat(1800), energy_kwh: Some(10.0), words: "given".into() };
        let a = answer(&target(), Some(&s), annual(), &job, Ask { now: 0, start_by: None, finish_by: None }, vec![]);
        assert_eq!(a.best_start.as_deref(), Some("1970-01-01T01:00:00Z"));
        assert_eq!(a.best_mean_g_per_kwh, Some(60.0));
        assert_eq!(a.now_mean_g_per_kwh, Some(300.0));
        assert_eq!(a.saving_pct, Some(80.0));
        assert_eq!(a.saving_kg, Some(2.4));
        assert!(a.live);
        // Offline: the annual figure, said to be one, and no start.
        let off = answer(&target(), None, annual(), &job, Ask { now: 0, start_by: None, finish_by: None }, vec![]);
        assert!(!off.live && off.best_start.is_none());
        assert!(off.source.starts_with("annual average, not live"));
    }

    #[test]
    fn a_runs_hours_weigh_its_energy_by_the_intensity_of_each_interval() {
        let s = Series {
            zone: "GB".into(),
            provider: "UK".into(),
            basis: Basis::Direct,
            forecast: false,
            estimated: false,
            steps: vec![
                Step { start: 0, end: 1800, g_per_kwh: 100.0 },
                Step { start: 1800, end: 3600, g_per_kwh: 300.0 },
            ],
            issued_at: None,
            fetched_at: 0,
        };
        // 1 kWh in the first half hour, 3 kWh straddling both halves (mean 200).
        let h = realised(&[(0, 1800, 1.0), (900, 2700, 3.0)], &s).expect("covered");
        assert!((h.co2_kg - (100.0 + 600.0) / 1000.0).abs() < 1e-12);
        assert!((h.mean_g_per_kwh - 175.0).abs() < 1e-12);
        // An interval outside the history: no figure rather than a wrong one.
        assert_eq!(realised(&[(0, 1800, 1.0), (3000, 4000, 1.0)], &s), None);
    }
}
