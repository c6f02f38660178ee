//! Carbon budgets: an amount of CO₂e (kg) or energy (kWh) a team or project agreed to spend per
//! month or quarter, and where it stands: spent so far (with its range), the projection to the
//! period's end from the recent daily rate, the day the budget runs out at that rate, and the
//! thresholds crossed.
//!
//! Days are the calendar days of the logs' own timestamps (CodeCarbon writes local wall-clock
//! time without a zone), and a period is the calendar month or quarter of those days. "Now" is
//! the server's clock (UTC), or the newest run's end when the logs' clock is ahead of it by up to
//! a zone's offset ([`logs_now`]). A run is
//! spread evenly over the time from its start to its last checkpoint, so a run still going counts
//! what it has spent so far, on the days it spent it.

use crate::model::Run;
use crate::time::Timestamp;
use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

/// What a budget covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Scope {
    Team(String),
    Project(String),
}

impl Scope {
    pub fn label(&self) -> String {
        match self {
            Scope::Team(t) => format!("team {t}"),
            Scope::Project(p) => format!("project {p}"),
        }
    }

    fn holds(&self, run: &Run) -> bool {
        match self {
            Scope::Team(t) => run.team.as_deref() == Some(t.as_str()),
            Scope::Project(p) => run.project_name.as_deref() == Some(p.as_str()),
        }
    }
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Recomputed CO₂e, kg.
    Co2Kg,
    EnergyKwh,
}

impl Quantity {
    pub fn unit(self) -> &'static str {
        match self {
            Quantity::Co2Kg => "kg CO₂e",
            Quantity::EnergyKwh => "kWh",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Month,
    Quarter,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Month => "month",
            Period::Quarter => "quarter",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "month" => Some(Period::Month),
            "quarter" => Some(Period::Quarter),
            _ => None,
        }
    }

    /// The first day of the period holding `day`, and the first day of the next one.
    pub fn bounds(self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        let months = match self {
            Period::Month => 1,
            Period::Quarter => 3,
        };
        let first_month = (day.month0() / months) * months;
        let start = NaiveDate::from_ymd_opt(day.year(), first_month + 1, 1).unwrap_or(day);
        let next = start.checked_add_months(chrono::Months::new(months)).unwrap_or(start);
        (start, next)
    }
}

/// The thresholds alerts fire at, in percent of the amount, unless a budget says otherwise.
pub const DEFAULT_THRESHOLDS: [f64; 2] = [80.0, 100.0];
/// Days the recent daily rate is taken over (fewer at a period's start).
pub const RATE_DAYS: i64 = 7;

/// A budget as set (`budget set`, or `budgets.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub scope: Scope,
    pub quantity: Quantity,
    pub amount: f64,
    pub period: Period,
    /// Percent of `amount`, ascending.
    pub thresholds: Vec<f64>,
    /// Where it was set: "database" or the file's path.
    pub source: String,
}

impl Budget {
    /// What tells it apart: scope, quantity and period (`team:nlp:co2_kg:month`).
    pub fn key(&self) -> String {
        let (kind, name) = match &self.scope {
            Scope::Team(t) => ("team", t),
            Scope::Project(p) => ("project", p),
        };
        let q = match self.quantity {
            Quantity::Co2Kg => "co2_kg",
            Quantity::EnergyKwh => "energy_kwh",
        };
        format!("{kind}:{name}:{q}:{}", self.period.name())
    }
}

/// A value with its range (the recomputation's low and high).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Ranged {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Ranged {
    fn add(&mut self, o: Ranged, f: f64) {
        self.value += o.value * f;
        self.low += o.low * f;
        self.high += o.high * f;
    }

    fn scaled(self, f: f64) -> Ranged {
        Ranged { value: self.value * f, low: self.low * f, high: self.high * f }
    }
}

/// What crossed a threshold: the amount spent, or the projection to the period's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Crossed {
    Spent,
    Projected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossing {
    pub threshold: f64,
    pub by: Crossed,
}

/// Where a budget stands on a day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standing {
    pub budget: Budget,
    /// The alerts raised about it this period (filled in by whoever keeps them).
    #[serde(default)]
    pub alerts: Vec<AlertNote>,
    /// `YYYY-MM-DD`: the period's first day and the first day after it.
    pub period_start: String,
    pub period_end: String,
    /// The instant it was worked out at (the logs' wall clock).
    pub now: String,
    pub spent: Ranged,
    pub percent_spent: f64,
    /// The days the rate is taken over (`YYYY-MM-DD`, from and to, inclusive of the part of
    /// today gone) and the rate per day.
    pub rate_from: String,
    pub rate_to: String,
    pub daily_rate: Ranged,
    pub projected: Ranged,
    pub percent_projected: f64,
    /// The day the amount is (or was) reached at this rate; `None` when it is not reached in
    /// the period.
    pub runs_out_on: Option<String>,
    pub crossed: Vec<Crossing>,
    /// Spent by the end of each day of the period so far (cumulative), for the burn-down.
    pub days: Vec<DaySpent>,
    pub runs: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaySpent {
    pub day: String,
    pub cumulative: Ranged,
}

/// A run's amount of `q`, with its range; `None` when it has none.
fn amount_of(run: &Run, q: Quantity) -> Option<Ranged> {
    match q {
        Quantity::Co2Kg => {
            let a = &run.assessment;
            let v = a.co2_kg?;
            Some(Ranged { value: v, low: a.co2_kg_low.unwrap_or(v), high: a.co2_kg_high.unwrap_or(v) })
        }
        Quantity::EnergyKwh => {
            let v = run.energy_kwh?;
            let a = &run.assessment;
            Some(Ranged { value: v, low: a.energy_kwh_low.unwrap_or(v), high: a.energy_kwh_high.unwrap_or(v) })
        }
    }
}

/// The run's time span: from its start to its last checkpoint (an instant when it has no
/// duration).
fn span(run: &Run) -> Option<(Timestamp, Timestamp)> {
    let end = run.ended_at.or(run.started_at)?;
    let start = match run.started_at {
        Some(s) => s,
        None => {
            // A duration beyond any calendar (a damaged row) leaves the run out.
            let secs = run.duration_s.filter(|d| d.is_finite() && *d > 0.0).unwrap_or(0.0).min(1e12);
            end.checked_sub_signed(Duration::try_milliseconds((secs * 1000.0) as i64)?)?
        }
    };
    Some((start.min(end), end))
}

/// How far ahead of the server's clock (UTC) the logs' wall clock may be: the largest zone
/// offset. A log written at 14:00 in UTC+2 is "now" at 12:00 UTC.
pub const AHEAD: i64 = 14 * 3600;

fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// The share of `[from, to)` inside `[a, b)`, of `b - a` (1 for an instant inside).
fn share(run: (Timestamp, Timestamp), from: Timestamp, to: Timestamp) -> f64 {
    let (a, b) = run;
    if b <= a {
        return f64::from(u8::from(a >= from && a < to));
    }
    let overlap = secs(b.min(to) - a.max(from));
    (overlap / secs(b - a)).clamp(0.0, 1.0)
}

/// Where `budget` stands at `now`, from `runs` (those outside its scope are skipped).
pub fn standing<R: std::borrow::Borrow<Run>>(budget: &Budget, runs: &[R], now: Timestamp) -> Standing {
    let (start, end) = budget.period.bounds(now.date());
    let start_t = start.and_hms_opt(0, 0, 0).unwrap_or(now);
    let end_t = end.and_hms_opt(0, 0, 0).unwrap_or(now);
    let now = now.clamp(start_t, end_t);
    // The rate of the last 7 days, reaching back before the period's start (a period's first
    // hours alone would make a wild rate).
    let rate_from = now.checked_sub_signed(Duration::days(RATE_DAYS)).unwrap_or(now);
    let n_days = (end - start).num_days().max(1) as usize;
    let today = ((now.date() - start).num_days().max(0) as usize).min(n_days - 1);
    let mut per_day = vec![Ranged::default(); today + 1];
    let (mut spent, mut recent, mut count) = (Ranged::default(), Ranged::default(), 0);
    for run in runs.iter().map(|r| r.borrow()) {
        if !budget.scope.holds(run) {
            continue;
        }
        let (Some(amount), Some(sp)) = (amount_of(run, budget.quantity), span(run)) else { continue };
        let inside = share(sp, start_t, now);
        if inside <= 0.0 {
            continue;
        }
        count += 1;
        spent.add(amount, inside);
        recent.add(amount, share(sp, rate_from, now));
        // Only the days the run spans (a run is hours long; a quarter is 92 days).
        let day_of = |t: Timestamp| (t.date() - start).num_days().clamp(0, today as i64) as usize;
        let (first, last) = (day_of(sp.0), day_of(sp.1));
        for (i, d) in per_day.iter_mut().enumerate().skip(first).take(last + 1 - first) {
            let from = start_t + Duration::days(i as i64);
            d.add(amount, share(sp, from, (from + Duration::days(1)).min(now)));
        }
    }
    let window_days = (secs(now - rate_from) / 86_400.0).max(1.0);
    let daily_rate = recent.scaled(1.0 / window_days);
    let left_days = secs(end_t - now) / 86_400.0;
    let mut projected = spent;
    projected.add(daily_rate, left_days);
    let mut cumulative = Ranged::default();
    let days: Vec<DaySpent> = per_day
        .iter()
        .enumerate()
        .map(|(i, d)| {
            cumulative.add(*d, 1.0);
            DaySpent { day: crate::time::day(start + Duration::days(i as i64)), cumulative }
        })
        .collect();
    let amount = budget.amount;
    let runs_out_on = if spent.value >= amount {
        // The first day the running total reached it (the last, should rounding miss it).
        days.iter().find(|d| d.cumulative.value >= amount * (1.0 - 1e-12)).or(days.last()).map(|d| d.day.clone())
    } else if daily_rate.value > 0.0 && projected.value >= amount {
        let secs = ((amount - spent.value) / daily_rate.value * 86_400.0).min(400.0 * 86_400.0);
        now.checked_add_signed(Duration::seconds(secs as i64)).map(|at| crate::time::day(at.date()))
    } else {
        None
    };
    let pct = |v: f64| if amount > 0.0 { v / amount * 100.0 } else { 0.0 };
    let mut crossed = Vec::new();
    for t in &budget.thresholds {
        if pct(spent.value) >= *t {
            crossed.push(Crossing { threshold: *t, by: Crossed::Spent });
        } else if pct(projected.value) >= *t {
            crossed.push(Crossing { threshold: *t, by: Crossed::Projected });
        }
    }
    Standing {
        budget: budget.clone(),
        alerts: Vec::new(),
        period_start: crate::time::day(start),
        period_end: crate::time::day(end),
        now: crate::time::iso(&now),
        spent,
        percent_spent: pct(spent.value),
        rate_from: crate::time::day(rate_from.date()),
        rate_to: crate::time::day(now.date()),
        daily_rate,
        projected,
        percent_projected: pct(projected.value),
        runs_out_on,
        crossed,
        days,
        runs: count,
    }
}

/// The budgets in force and what is wrong with them, shared by the server (which reads them
/// from the store and `budgets.toml`) and the pages and API (which show where they stand).
#[derive(Clone, Default)]
pub struct Book(std::sync::Arc<std::sync::RwLock<Listed>>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Listed {
    pub budgets: Vec<Budget>,
    /// Why some could not be read ("budgets.toml line 4, column 10: …").
    pub problems: Vec<String>,
    /// Alerts sent (or being sent), newest first.
    #[serde(default)]
    pub alerts: Vec<AlertNote>,
}

/// An alert about a budget, as its team page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNote {
    /// [`Budget::key`].
    pub budget_key: String,
    pub period_start: String,
    pub threshold: f64,
    /// "spent" or "projected".
    pub crossed: String,
    /// When it was raised (UTC, `YYYY-MM-DDTHH:MM:SS`).
    pub at: String,
    pub delivered: bool,
    /// Why the last delivery failed, while it is not delivered.
    pub error: Option<String>,
}

impl Listed {
    /// The alerts raised about `s`'s budget in its period.
    pub fn alerts_of(&self, s: &Standing) -> Vec<AlertNote> {
        let key = s.budget.key();
        self.alerts.iter().filter(|a| a.budget_key == key && a.period_start == s.period_start).cloned().collect()
    }
}

impl Book {
    pub fn get(&self) -> Listed {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// No budget in force (read without copying the list: asked on every team page).
    pub fn is_empty(&self) -> bool {
        self.0.read().unwrap_or_else(|e| e.into_inner()).budgets.is_empty()
    }

    pub fn set(&self, listed: Listed) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = listed;
    }
}

/// Now, by the server's clock (UTC).
pub fn now() -> Timestamp {
    let micros =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
    crate::time::from_unix_micros(micros).unwrap_or_default()
}

/// Now as the logs' wall clock reads it: the server's clock, or the newest run's end when the
/// logs are ahead of it by at most a zone's offset ([`AHEAD`]; a log written at 14:00 in UTC+2
/// is already there at 12:00 UTC).
pub fn logs_now<R: std::borrow::Borrow<Run>>(runs: &[R]) -> Timestamp {
    let clock = now();
    let ahead = clock.checked_add_signed(Duration::seconds(AHEAD)).unwrap_or(clock);
    runs.iter().filter_map(|r| r.borrow().ended_at).filter(|e| *e > clock && *e <= ahead).max().unwrap_or(clock)
}

/// Whether a person whose view holds `runs` sees `budget`: its team's or project's runs are
/// among them.
pub fn in_view<R: std::borrow::Borrow<Run>>(budget: &Budget, runs: &[R]) -> bool {
    runs.iter().any(|r| budget.scope.holds(r.borrow()))
}

/// Budgets kept beside the logs, for setups without a database: `budgets.toml` at the logs
/// folder's top.
///
/// ```toml
/// [[budget]]
/// team = "nlp"            # or project = "bert-sst2"
/// co2_kg = 500            # or energy_kwh = 1200
/// period = "month"        # or "quarter"; month when left out
/// thresholds = [80, 100]  # percent of the amount; these when left out
/// ```
#[cfg(feature = "ingest")]
pub mod file {
    use super::*;
    use crate::declare::problem;
    use crate::model::Problem;

    pub const FILE: &str = "budgets.toml";
    /// Largest budgets file read.
    pub const MAX_BYTES: usize = 1 << 20;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FileDe {
        #[serde(default)]
        budget: Vec<toml::Spanned<BudgetDe>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct BudgetDe {
        team: Option<String>,
        project: Option<String>,
        co2_kg: Option<f64>,
        energy_kwh: Option<f64>,
        period: Option<toml::Spanned<String>>,
        thresholds: Option<Vec<f64>>,
    }

    /// The budgets `text` sets, or every mistake with its line and column.
    pub fn parse(text: &str, source: &str) -> Result<Vec<Budget>, Vec<Problem>> {
        let file: FileDe = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            vec![problem(text, at, e.message().to_string())]
        })?;
        let (mut out, mut problems) = (Vec::new(), Vec::new());
        for block in &file.budget {
            let at = block.span().start;
            let b = block.get_ref();
            let scope = match (&b.team, &b.project) {
                (Some(t), None) if !t.trim().is_empty() => Scope::Team(t.trim().into()),
                (None, Some(p)) if !p.trim().is_empty() => Scope::Project(p.trim().into()),
                _ => {
                    problems.push(problem(text, at, "give one of team = \"…\" or project = \"…\"".into()));
                    continue;
                }
            };
            let (quantity, amount) = match (b.co2_kg, b.energy_kwh) {
                (Some(kg), None) => (Quantity::Co2Kg, kg),
                (None, Some(kwh)) => (Quantity::EnergyKwh, kwh),
                _ => {
                    problems.push(problem(text, at, "give one of co2_kg = … or energy_kwh = …".into()));
                    continue;
                }
            };
            if !(amount.is_finite() && amount > 0.0) {
                problems.push(problem(text, at, format!("an amount of {amount}: give one above 0")));
                continue;
            }
            let period = match &b.period {
                None => Period::Month,
                Some(p) => match Period::parse(p.get_ref().trim()) {
                    Some(p) => p,
                    None => {
                        let why = format!("period = \"{}\": give \"month\" or \"quarter\"", p.get_ref());
                        problems.push(problem(text, p.span().start, why));
                        continue;
                    }
                },
            };
            let mut thresholds = b.thresholds.clone().unwrap_or_else(|| DEFAULT_THRESHOLDS.to_vec());
            if thresholds.iter().any(|t| !(t.is_finite() && *t > 0.0 && *t <= 1000.0)) || thresholds.len() > 10 {
                problems.push(problem(
                    text,
                    at,
                    "thresholds: up to 10 percentages, each above 0 and at most 1000".into(),
                ));
                continue;
            }
            thresholds.sort_by(f64::total_cmp);
            thresholds.dedup();
            if out.iter().any(|o: &Budget| o.scope == scope && o.quantity == quantity && o.period == period) {
                problems.push(problem(
                    text,
                    at,
                    format!("a second {:?} budget of {} for the {:?}", quantity, scope.label(), period).to_lowercase(),
                ));
                continue;
            }
            out.push(Budget { scope, quantity, amount, period, thresholds, source: source.to_string() });
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn budgets_are_read_with_their_defaults_and_mistakes_named_where_they_are() {
            let text = "[[budget]]\nteam = \"nlp\"\nco2_kg = 500\n\n[[budget]]\nproject = \"bert\"\nenergy_kwh = 1200\nperiod = \"quarter\"\nthresholds = [100, 50]\n";
            let b = parse(text, "budgets.toml").expect("read");
            assert_eq!(b.len(), 2);
            assert_eq!(
                (b[0].scope.clone(), b[0].quantity, b[0].period),
                (Scope::Team("nlp".into()), Quantity::Co2Kg, Period::Month)
            );
            assert_eq!(b[0].thresholds, DEFAULT_THRESHOLDS.to_vec());
            assert_eq!((b[1].period, b[1].thresholds.clone()), (Period::Quarter, vec![50.0, 100.0]));
            let bad = "[[budget]]\nteam = \"nlp\"\nco2_kg = 5\nperiod = \"week\"\n";
            let p = parse(bad, "budgets.toml").expect_err("a week");
            assert_eq!((p[0].line, p[0].column), (4, Some(10)), "{:?}", p[0]);
            assert!(p[0].reason.contains("month"));
            let both = parse("[[budget]]\nteam = \"a\"\nproject = \"b\"\nco2_kg = 1\n", "f").expect_err("both");
            assert_eq!(both[0].line, 1);
            assert!(parse("[[budget]]\nteam = \"a\"\nco2_kg = -1\n", "f").is_err());
            assert!(parse("[[budget]]\nteam = \"a\"\nco2_kg = 1\ncolour = 2\n", "f").expect_err("unknown")[0]
                .reason
                .contains("colour"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        crate::time::parse_iso(s).expect("time")
    }

    fn run(team: &str, start: &str, end: &str, kg: f64) -> Run {
        let mut r =
            Run { team: Some(team.into()), started_at: Some(t(start)), ended_at: Some(t(end)), ..Run::default() };
        r.energy_kwh = Some(kg * 4.0);
        r.assessment.co2_kg = Some(kg);
        r.assessment.co2_kg_low = Some(kg * 0.8);
        r.assessment.co2_kg_high = Some(kg * 1.3);
        r
    }

    fn budget(kg: f64, period: Period) -> Budget {
        Budget {
            scope: Scope::Team("nlp".into()),
            quantity: Quantity::Co2Kg,
            amount: kg,
            period,
            thresholds: DEFAULT_THRESHOLDS.to_vec(),
            source: "test".into(),
        }
    }

    #[test]
    fn a_quiet_start_then_steady_runs_project_from_the_last_seven_days() {
        // Nothing until the 10th, then 10 kg a day (one run a day, 02:00–04:00).
        let runs: Vec<Run> = (10..=20)
            .map(|d| run("nlp", &format!("2026-11-{d:02}T02:00:00"), &format!("2026-11-{d:02}T04:00:00"), 10.0))
            .chain([run("vision", "2026-11-12T00:00:00", "2026-11-12T01:00:00", 500.0)])
            .collect();
        let s = standing(&budget(300.0, Period::Month), &runs, t("2026-11-21T00:00:00"));
        assert_eq!((s.period_start.as_str(), s.period_end.as_str()), ("2026-11-01", "2026-12-01"));
        assert!((s.spent.value - 110.0).abs() < 1e-9, "{:?}", s.spent);
        assert!((s.spent.low - 88.0).abs() < 1e-9 && (s.spent.high - 143.0).abs() < 1e-9);
        assert_eq!((s.rate_from.as_str(), s.runs), ("2026-11-14", 11));
        assert!((s.daily_rate.value - 10.0).abs() < 1e-9, "{:?}", s.daily_rate);
        // 110 + 10 × 10 days left = 210: 70 % of 300, under both thresholds.
        assert!((s.projected.value - 210.0).abs() < 1e-9, "{:?}", s.projected);
        assert!((s.percent_projected - 70.0).abs() < 1e-9);
        assert!(s.crossed.is_empty() && s.runs_out_on.is_none());
        assert_eq!(s.days.len(), 21);
        assert!((s.days[9].cumulative.value - 10.0).abs() < 1e-9 && s.days[8].cumulative.value == 0.0);
        // A smaller budget: projected over 80 % (144) and 100 % (210 ≥ 180), spent under both.
        let s = standing(&budget(180.0, Period::Month), &runs, t("2026-11-21T00:00:00"));
        assert_eq!(
            s.crossed,
            vec![
                Crossing { threshold: 80.0, by: Crossed::Projected },
                Crossing { threshold: 100.0, by: Crossed::Projected }
            ]
        );
        // 180 − 110 = 70 kg left at 10 a day: 7 days after the 21st.
        assert_eq!(s.runs_out_on.as_deref(), Some("2026-11-28"));
    }

    #[test]
    fn a_big_run_at_the_end_and_a_run_in_progress_count_what_they_spent() {
        let runs = vec![
            run("nlp", "2026-11-02T00:00:00", "2026-11-02T01:00:00", 20.0),
            // Going on: started 12 h ago, its last checkpoint now, 60 kg so far.
            run("nlp", "2026-11-29T12:00:00", "2026-11-30T00:00:00", 60.0),
        ];
        let s = standing(&budget(100.0, Period::Month), &runs, t("2026-11-30T00:00:00"));
        assert!((s.spent.value - 80.0).abs() < 1e-9);
        // The last 7 days saw 60 kg: 60/7 a day, one day left.
        assert!((s.daily_rate.value - 60.0 / 7.0).abs() < 1e-9);
        assert!((s.projected.value - (80.0 + 60.0 / 7.0)).abs() < 1e-9);
        assert_eq!(s.crossed, vec![Crossing { threshold: 80.0, by: Crossed::Spent }]);
        assert!((s.days[28].cumulative.value - 80.0).abs() < 1e-9, "{:?}", s.days[28]);
    }

    #[test]
    fn a_run_across_a_period_boundary_is_split_and_quarters_hold_three_months() {
        // 24 h from 12:00 on 31 October: half in October, half in November.
        let runs = vec![run("nlp", "2026-10-31T12:00:00", "2026-11-01T12:00:00", 48.0)];
        let nov = standing(&budget(100.0, Period::Month), &runs, t("2026-11-15T00:00:00"));
        assert!((nov.spent.value - 24.0).abs() < 1e-9, "{:?}", nov.spent);
        let oct = standing(&budget(100.0, Period::Month), &runs, t("2026-10-31T18:00:00"));
        // Only what was spent by "now" (18:00): 6 of the 24 hours.
        assert!((oct.spent.value - 12.0).abs() < 1e-9, "{:?}", oct.spent);
        let q = standing(&budget(100.0, Period::Quarter), &runs, t("2026-11-15T00:00:00"));
        assert_eq!((q.period_start.as_str(), q.period_end.as_str()), ("2026-10-01", "2027-01-01"));
        assert!((q.spent.value - 48.0).abs() < 1e-9);
        assert_eq!(
            Period::Quarter.bounds(NaiveDate::from_ymd_opt(2026, 12, 31).expect("day")).1.to_string(),
            "2027-01-01"
        );
        // At the period's first instant: nothing spent, a rate over the hour floor, no panic.
        let first = standing(&budget(100.0, Period::Month), &runs, t("2026-12-01T00:00:00"));
        assert_eq!((first.spent.value, first.days.len()), (0.0, 1));
    }

    /// A scripted month (November 2026, the 1st a Sunday): two 5 kg runs each weekday, and one
    /// 150 kg run on Friday the 20th, against 400 kg. Seen each evening at 23:00.
    #[test]
    fn a_scripted_month_crosses_its_thresholds_on_the_days_its_runs_say() {
        let mut runs = Vec::new();
        for d in 1..=30u32 {
            let day = NaiveDate::from_ymd_opt(2026, 11, d).expect("day");
            if day.weekday().number_from_monday() <= 5 {
                for h in [9, 14] {
                    runs.push(run(
                        "nlp",
                        &format!("2026-11-{d:02}T{h:02}:00:00"),
                        &format!("2026-11-{d:02}T{:02}:00:00", h + 1),
                        5.0,
                    ));
                }
            }
        }
        runs.push(run("nlp", "2026-11-20T02:00:00", "2026-11-20T12:00:00", 150.0));
        let b = budget(400.0, Period::Month);
        let mut first = std::collections::BTreeMap::new();
        eprintln!("day        spent kg (range)          rate kg/day  projected kg (range)      runs out");
        for d in 1..=30u32 {
            let s = standing(&b, &runs, t(&format!("2026-11-{d:02}T23:00:00")));
            eprintln!(
                "2026-11-{d:02} {:6.1} ({:5.1}–{:5.1}) {:5.1} % {:8.2}   {:6.1} ({:5.1}–{:5.1}) {:5.1} %  {}",
                s.spent.value,
                s.spent.low,
                s.spent.high,
                s.percent_spent,
                s.daily_rate.value,
                s.projected.value,
                s.projected.low,
                s.projected.high,
                s.percent_projected,
                s.runs_out_on.as_deref().unwrap_or("-")
            );
            for c in &s.crossed {
                first.entry((c.threshold as u32, c.by)).or_insert(d);
            }
        }
        // Until the 19th the pace (140 kg spent, 50 kg in the last 7 days) projects 219 kg; the
        // big run makes the projection pass both thresholds on the 20th; what is spent passes
        // 80 % (320 kg) on the 24th and never 100 % (360 kg in all).
        assert_eq!(first.get(&(80, Crossed::Projected)), Some(&20));
        assert_eq!(first.get(&(100, Crossed::Projected)), Some(&20));
        assert_eq!(first.get(&(80, Crossed::Spent)), Some(&24));
        assert_eq!(first.get(&(100, Crossed::Spent)), None);
        let end = standing(&b, &runs, t("2026-11-30T23:00:00"));
        assert!((end.spent.value - 360.0).abs() < 1e-9, "{:?}", end.spent);
    }

    /// Runs at the instants around midnight and the month's turn land on their own day.
    #[test]
    fn instants_at_midnight_belong_to_the_day_they_start() {
        let runs = vec![
            // An instant run (no duration) exactly at the month's first instant: December's.
            run("nlp", "2026-12-01T00:00:00", "2026-12-01T00:00:00", 7.0),
            // One ending on the last second of November: all November's.
            run("nlp", "2026-11-30T23:00:00", "2026-11-30T23:59:59", 3.0),
        ];
        let dec = standing(&budget(100.0, Period::Month), &runs, t("2026-12-01T12:00:00"));
        assert!((dec.spent.value - 7.0).abs() < 1e-9, "{:?}", dec.spent);
        assert!((dec.days[0].cumulative.value - 7.0).abs() < 1e-9);
        let nov = standing(&budget(100.0, Period::Month), &runs, t("2026-11-30T23:59:59"));
        // "Now" is the last second: the run is counted up to it (3599 of its 3599 s).
        assert!((nov.spent.value - 3.0).abs() < 1e-9, "{:?}", nov.spent);
    }

    #[test]
    fn budgets_of_energy_and_of_projects_count_their_own() {
        let mut b = budget(100.0, Period::Month);
        b.quantity = Quantity::EnergyKwh;
        b.scope = Scope::Project("bert".into());
        let mut r = run("nlp", "2026-11-02T00:00:00", "2026-11-02T01:00:00", 5.0);
        r.project_name = Some("bert".into());
        let other = run("nlp", "2026-11-02T00:00:00", "2026-11-02T01:00:00", 5.0);
        let s = standing(&b, &[r, other], t("2026-11-03T00:00:00"));
        assert!((s.spent.value - 20.0).abs() < 1e-9 && s.runs == 1);
    }
}
