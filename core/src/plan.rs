//! "When to run": the start of a job, within a forecast and its deadlines, at which the job's
//! energy meets the least carbon-intensive grid.
//!
//! A forecast is a step function of time (each value holds for its interval). Weighted by the
//! job's power profile (a step function over the job's own time), the mean intensity a job
//! meets is piecewise linear in its start `s`, with breaks only where `s + τ` meets a data
//! boundary for some profile boundary `τ`. So the exact optimum lies at `b − τ` for a data
//! boundary `b` and a profile boundary `τ`, or at an end of the allowed range: those candidates
//! are the whole search. They are visited in order (a k-way merge of sorted lists), and each is
//! evaluated with prefix sums through cursors that only move forward: linear in the number of
//! candidates for a flat profile (`2n + 2` of them for `n` forecast values).
//!
//! Times are Unix seconds (UTC); intensities g CO2e/kWh. Pure: no clock, no I/O.

use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One value of a series: `g_per_kwh` from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub start: i64,
    pub end: i64,
    pub g_per_kwh: f64,
}

/// The most segments a power profile keeps: neighbouring checkpoints are joined beyond it.
pub const MAX_SEGMENTS: usize = 48;

/// The longest job planned: a week (forecasts reach 72 h; longer is still answered, "too short").
pub const MAX_DURATION_S: i64 = 7 * 86_400;

/// How a job draws its energy over its duration: consecutive segments from its start, each
/// with its share of the energy.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Offsets from the start, `0 = τ0 < τ1 < … < τm = duration`.
    bounds: Vec<i64>,
    /// Share of the energy in `[τj, τj+1)`; they add up to 1.
    shares: Vec<f64>,
}

impl Profile {
    /// Constant power for `duration_s` seconds (at least 1).
    pub fn flat(duration_s: i64) -> Profile {
        Profile { bounds: vec![0, duration_s.clamp(1, MAX_DURATION_S)], shares: vec![1.0] }
    }

    /// A run's own profile from its checkpoints: `(seconds since its start, energy so far in
    /// kWh)`, in order. Times are rounded to the second; a checkpoint that does not move time
    /// forward is joined to the next; energy that goes down (a reset counter) counts as none.
    /// `None` when there is no energy or no time to spread it over.
    pub fn from_checkpoints(points: &[(f64, f64)]) -> Option<Profile> {
        let mut bounds = vec![0i64];
        let mut energy = vec![0.0f64];
        // A counter that goes down was reset: what it reads after counts on top of before.
        let (mut offset, mut previous) = (0.0f64, 0.0f64);
        for &(t, e) in points {
            if !t.is_finite() || !e.is_finite() || !(0.0..=1e15).contains(&t) {
                continue;
            }
            let t = t.round() as i64;
            if e < previous {
                offset += previous;
            }
            previous = e;
            let last = *energy.last().unwrap_or(&0.0);
            let e = (e + offset).max(last);
            if t <= *bounds.last().unwrap_or(&0) {
                if let Some(x) = energy.last_mut() {
                    if bounds.len() > 1 {
                        *x = e;
                    }
                }
                continue;
            }
            bounds.push(t);
            energy.push(e);
        }
        let total = *energy.last()?;
        if bounds.len() < 2 || total <= 0.0 {
            return None;
        }
        // Join neighbours so that at most MAX_SEGMENTS remain: cumulative energy keeps the
        // total exact.
        let step = (bounds.len() - 1).div_ceil(MAX_SEGMENTS);
        let keep: Vec<usize> = (0..bounds.len()).filter(|&i| i % step == 0 || i == bounds.len() - 1).collect();
        let b: Vec<i64> = keep.iter().map(|&i| bounds[i]).collect();
        let shares = keep.windows(2).map(|w| (energy[w[1]] - energy[w[0]]) / total).collect();
        Some(Profile { bounds: b, shares })
    }

    pub fn duration(&self) -> i64 {
        *self.bounds.last().unwrap_or(&0)
    }

    pub fn segments(&self) -> usize {
        self.shares.len()
    }

    /// Whether the power is the same throughout.
    pub fn is_flat(&self) -> bool {
        self.segments() == 1
    }

    /// The same shape stretched or shrunk to `duration_s`.
    pub fn scaled_to(&self, duration_s: i64) -> Profile {
        let duration_s = duration_s.clamp(1, MAX_DURATION_S);
        let d = self.duration().max(1) as f64;
        let mut bounds: Vec<i64> =
            self.bounds.iter().map(|&b| (b as f64 * duration_s as f64 / d).round() as i64).collect();
        bounds.dedup();
        if bounds.len() != self.bounds.len() {
            return Profile::flat(duration_s);
        }
        Profile { bounds, shares: self.shares.clone() }
    }

    /// Energy share per second in each segment: the weight of the intensity there.
    fn density(&self) -> Vec<f64> {
        self.shares.iter().zip(self.bounds.windows(2)).map(|(s, w)| s / (w[1] - w[0]) as f64).collect()
    }
}

/// What the job allows: not before `now`, starting by `start_by`, ending by `finish_by`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ask {
    pub now: i64,
    pub start_by: Option<i64>,
    pub finish_by: Option<i64>,
}

/// Why no window was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NoWindow {
    /// The series has no value.
    NoData,
    /// The series ends (at `ends`) before a job started now could finish.
    TooShort { ends: i64 },
    /// A deadline passes before the job can start or finish.
    Deadline,
    /// Every start the deadlines allow runs into a gap in the data.
    Gaps,
}

/// The answer of [`best_window`].
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The best start and the energy-weighted mean intensity the job meets from there.
    pub best: Option<(i64, f64)>,
    /// The mean intensity starting now, when the data covers that window.
    pub now: Option<f64>,
    /// Holes in the data (between its first and last value) that windows were kept out of.
    pub gaps: Vec<(i64, i64)>,
    pub none: Option<NoWindow>,
}

/// Steps in order, without overlaps, empty or non-finite values: what the search reads.
pub fn normalise(steps: &[Step]) -> Vec<Step> {
    let mut v: Vec<Step> =
        steps.iter().copied().filter(|s| s.end > s.start && s.g_per_kwh.is_finite() && s.g_per_kwh >= 0.0).collect();
    v.sort_by_key(|s| (s.start, s.end));
    let mut out: Vec<Step> = Vec::with_capacity(v.len());
    for mut s in v {
        if let Some(p) = out.last() {
            s.start = s.start.max(p.end);
            if s.start >= s.end {
                continue;
            }
        }
        out.push(s);
    }
    out
}

/// The holes between consecutive steps of a normalised series.
pub fn gaps(steps: &[Step]) -> Vec<(i64, i64)> {
    steps.windows(2).filter(|w| w[1].start > w[0].end).map(|w| (w[0].end, w[1].start)).collect()
}

/// The integral of a normalised series up to `t`, by a cursor that only moves forward.
struct Integral<'a> {
    steps: &'a [Step],
    /// `prefix[i]`: the integral up to `steps[i].start`.
    prefix: &'a [f64],
    i: usize,
}

impl Integral<'_> {
    fn at(&mut self, t: i64) -> f64 {
        while self.i < self.steps.len() && self.steps[self.i].end <= t {
            self.i += 1;
        }
        match self.steps.get(self.i) {
            Some(s) if t > s.start => self.prefix[self.i] + s.g_per_kwh * (t - s.start) as f64,
            _ => self.prefix[self.i],
        }
    }
}

/// Whether `[s, s + w)` lies within one stretch of data without a hole, by a forward cursor
/// over the stretches.
struct Covered<'a> {
    blocks: &'a [(i64, i64)],
    i: usize,
}

impl Covered<'_> {
    fn covers(&mut self, s: i64, w: i64) -> bool {
        while self.i < self.blocks.len() && self.blocks[self.i].1 <= s {
            self.i += 1;
        }
        self.blocks.get(self.i).is_some_and(|&(a, b)| a <= s && s.saturating_add(w) <= b)
    }
}

/// Maximal stretches of data without a hole.
fn blocks(steps: &[Step]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for s in steps {
        match out.last_mut() {
            Some(b) if b.1 == s.start => b.1 = s.end,
            _ => out.push((s.start, s.end)),
        }
    }
    out
}

/// Sorted lists merged into one sorted, deduplicated list.
fn merge(lists: Vec<Vec<i64>>) -> Vec<i64> {
    let mut heap: BinaryHeap<Reverse<(i64, usize, usize)>> =
        lists.iter().enumerate().filter(|(_, l)| !l.is_empty()).map(|(k, l)| Reverse((l[0], k, 0))).collect();
    let mut out: Vec<i64> = Vec::with_capacity(lists.iter().map(Vec::len).sum());
    while let Some(Reverse((v, k, i))) = heap.pop() {
        if out.last() != Some(&v) {
            out.push(v);
        }
        if let Some(&next) = lists[k].get(i + 1) {
            heap.push(Reverse((next, k, i + 1)));
        }
    }
    out
}

/// The profile-weighted mean intensity of a start, from integrals at `s + τk`.
fn weighted(density: &[f64], integrals: impl Iterator<Item = f64>) -> f64 {
    let f: Vec<f64> = integrals.collect();
    density.iter().enumerate().map(|(j, d)| d * (f[j + 1] - f[j])).sum()
}

/// Relative tolerance under which two means are a tie (the earlier start wins).
const TIE: f64 = 1e-9;

/// The start that minimises the energy-weighted mean intensity of a job with `profile`,
/// exactly, never before `ask.now`, within both deadlines, over windows the data covers
/// without a hole; the earliest of equal ones.
pub fn best_window(steps: &[Step], profile: &Profile, ask: Ask) -> Search {
    let steps = normalise(steps);
    let holes = gaps(&steps);
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return Search { best: None, now: None, gaps: holes, none: Some(NoWindow::NoData) };
    };
    let w = profile.duration();
    let mut prefix = Vec::with_capacity(steps.len() + 1);
    let mut acc = 0.0;
    for s in &steps {
        prefix.push(acc);
        acc += s.g_per_kwh * (s.end - s.start) as f64;
    }
    prefix.push(acc);
    let stretches = blocks(&steps);
    let density = profile.density();
    let taus = &profile.bounds;

    // The mean starting now, deadlines aside: the baseline.
    let now = {
        let mut cov = Covered { blocks: &stretches, i: 0 };
        cov.covers(ask.now, w).then(|| {
            weighted(&density, taus.iter().map(|t| Integral { steps: &steps, prefix: &prefix, i: 0 }.at(ask.now + t)))
        })
    };

    let lo = ask.now.max(first.start);
    let mut hi = last.end.saturating_sub(w);
    if let Some(b) = ask.start_by {
        hi = hi.min(b);
    }
    if let Some(f) = ask.finish_by {
        hi = hi.min(f.saturating_sub(w));
    }
    if lo > hi {
        let series_short = ask.now.max(first.start).saturating_add(w) > last.end;
        let none = if series_short { NoWindow::TooShort { ends: last.end } } else { NoWindow::Deadline };
        return Search { best: None, now, gaps: holes, none: Some(none) };
    }

    // Candidates: b − τk for every boundary b and profile offset τk, and the range's ends.
    let mut bounds: Vec<i64> = steps.iter().flat_map(|s| [s.start, s.end]).collect();
    bounds.dedup();
    let mut lists: Vec<Vec<i64>> =
        taus.iter().map(|t| bounds.iter().map(|b| b - t).filter(|&s| s >= lo && s <= hi).collect()).collect();
    lists.push(vec![lo, hi]);
    let candidates = merge(lists);

    let mut cursors: Vec<Integral> = taus.iter().map(|_| Integral { steps: &steps, prefix: &prefix, i: 0 }).collect();
    let mut cov = Covered { blocks: &stretches, i: 0 };
    let mut best: Option<(i64, f64)> = None;
    for s in candidates {
        if !cov.covers(s, w) {
            continue;
        }
        let mean = weighted(&density, cursors.iter_mut().zip(taus).map(|(c, t)| c.at(s + t)));
        match best {
            Some((_, b)) if mean >= b - TIE * b.abs().max(1.0) => {}
            _ => best = Some((s, mean)),
        }
    }
    let none = best.is_none().then_some(NoWindow::Gaps);
    Search { best, now, gaps: holes, none }
}

/// The search carbon-aware-sdk (Green Software Foundation) does, for comparison: starts only on
/// the grid of the data's own spacing (of its first two points) from `data_start`, by default
/// its first point (which may be in the past), windows fully covered by the data and ending by
/// `finish_by`, a flat profile, the earliest of ties.
pub fn grid_search(
    steps: &[Step],
    duration_s: i64,
    data_start: Option<i64>,
    finish_by: Option<i64>,
) -> Option<(i64, f64)> {
    let steps = normalise(steps);
    let first = steps.first()?;
    let tick = steps.get(1).map(|s| s.start - first.start).unwrap_or(first.end - first.start).max(1);
    let end = finish_by.unwrap_or(i64::MAX).min(steps.last()?.end);
    let stretches = blocks(&steps);
    let mut best: Option<(i64, f64)> = None;
    let mut s = data_start.unwrap_or(first.start);
    while s + duration_s <= end {
        if stretches.iter().any(|&(a, b)| a <= s && s + duration_s <= b) {
            let mean = mean_over(&steps, s, s + duration_s);
            if best.is_none_or(|(_, b)| mean < b) {
                best = Some((s, mean));
            }
        }
        s += tick;
    }
    best
}

/// The time-weighted mean of a normalised series over `[a, b)` (holes count as nothing).
pub fn mean_over(steps: &[Step], a: i64, b: i64) -> f64 {
    let sum: f64 = steps
        .iter()
        .map(|s| {
            let overlap = (s.end.min(b) - s.start.max(a)).max(0);
            s.g_per_kwh * overlap as f64
        })
        .sum();
    sum / (b - a).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series(values: &[(i64, i64, f64)]) -> Vec<Step> {
        values.iter().map(|&(start, end, g)| Step { start, end, g_per_kwh: g }).collect()
    }

    fn hourly(values: &[f64]) -> Vec<Step> {
        values
            .iter()
            .enumerate()
            .map(|(i, &g)| Step { start: i as i64 * 3600, end: (i as i64 + 1) * 3600, g_per_kwh: g })
            .collect()
    }

    /// The mean a job with `profile` meets from `s`, straight from the definition.
    fn direct(steps: &[Step], profile: &Profile, s: i64) -> f64 {
        profile
            .bounds
            .windows(2)
            .zip(&profile.shares)
            .map(|(w, share)| share * mean_over(steps, s + w[0], s + w[1]))
            .sum()
    }

    /// Every whole-second start, checked one by one.
    fn brute(steps: &[Step], profile: &Profile, ask: Ask) -> Option<(i64, f64)> {
        let steps = normalise(steps);
        let w = profile.duration();
        let stretches = blocks(&steps);
        let mut best: Option<(i64, f64)> = None;
        let lo = ask.now;
        let hi = steps.last()?.end;
        for s in lo..=hi {
            if ask.start_by.is_some_and(|b| s > b) || ask.finish_by.is_some_and(|f| s + w > f) {
                continue;
            }
            if !stretches.iter().any(|&(a, b)| a <= s && s + w <= b) {
                continue;
            }
            let m = direct(&steps, profile, s);
            if best.is_none_or(|(_, b)| m < b - TIE * b.abs().max(1.0)) {
                best = Some((s, m));
            }
        }
        best
    }

    #[test]
    fn the_best_start_is_between_hours_when_the_job_straddles_a_dip() {
        // 100 · 50 · 300: a 30-minute job fits in the cheap hour (the earliest start of it); a
        // 90-minute job does best from 0:30 (30 min at 100, 60 at 50), between the hours.
        let s = hourly(&[100.0, 50.0, 300.0, 300.0]);
        let r = best_window(&s, &Profile::flat(1800), Ask { now: 0, start_by: None, finish_by: None });
        assert_eq!(r.best, Some((3600, 50.0)));
        assert_eq!(r.now, Some(100.0));
        let r = best_window(&s, &Profile::flat(5400), Ask { now: 0, start_by: None, finish_by: None });
        let (start, mean) = r.best.expect("a window");
        assert_eq!(start, 1800);
        assert!((mean - (1800.0 * 100.0 + 3600.0 * 50.0) / 5400.0).abs() < 1e-9);
        // An hourly grid picks 0:00 (83.3 g/kWh).
        let grid = grid_search(&s, 5400, None, None).expect("a window");
        assert_eq!(grid.0, 0);
        assert!(grid.1 > mean + 16.0, "grid {grid:?} vs exact {mean}");
    }

    #[test]
    fn never_starts_in_the_past_and_respects_both_deadlines() {
        // The cheapest hour has passed: the forecast starts at the top of the hour before now.
        let s = hourly(&[10.0, 200.0, 100.0, 400.0, 20.0]);
        let ask = Ask { now: 3000, start_by: None, finish_by: None };
        let r = best_window(&s, &Profile::flat(3600), ask);
        assert_eq!(r.best.map(|b| b.0), Some(4 * 3600));
        // The SDK's grid starts at the first point, in the past.
        assert_eq!(grid_search(&s, 3600, None, None).map(|b| b.0), Some(0));
        // Start by 3 h: the 100 hour; finish by 4 h: the same.
        let by = best_window(&s, &Profile::flat(3600), Ask { start_by: Some(3 * 3600), ..ask });
        assert_eq!(by.best, Some((2 * 3600, 100.0)));
        let fin = best_window(&s, &Profile::flat(3600), Ask { finish_by: Some(4 * 3600), ..ask });
        assert_eq!(fin.best, Some((2 * 3600, 100.0)));
        // A deadline already past, and a forecast too short for the job.
        let late = best_window(&s, &Profile::flat(3600), Ask { start_by: Some(2000), ..ask });
        assert_eq!(late.none, Some(NoWindow::Deadline));
        let long = best_window(&s, &Profile::flat(6 * 3600), ask);
        assert_eq!(long.none, Some(NoWindow::TooShort { ends: 5 * 3600 }));
        assert_eq!(long.best, None);
    }

    #[test]
    fn windows_stay_out_of_gaps_and_the_gaps_are_told() {
        // 0–2 h at 100, nothing 2–3 h, 3–4 h at 5, 4–6 h at 300.
        let s = series(&[(0, 7200, 100.0), (10800, 14400, 5.0), (14400, 21600, 300.0)]);
        let r = best_window(&s, &Profile::flat(5400), Ask { now: 0, start_by: None, finish_by: None });
        assert_eq!(r.gaps, vec![(7200, 10800)]);
        // Across the hole is not allowed: from 3 h, 1 h at 5 and 30 min at 300.
        let (start, mean) = r.best.expect("a window");
        assert_eq!(start, 0);
        assert!((mean - 100.0).abs() < 1e-9, "{mean}");
        let only_gaps = best_window(
            &series(&[(0, 600, 1.0), (1200, 1800, 1.0)]),
            &Profile::flat(900),
            Ask { now: 0, start_by: None, finish_by: None },
        );
        assert_eq!(only_gaps.none, Some(NoWindow::Gaps));
        assert_eq!(
            best_window(&[], &Profile::flat(60), Ask { now: 0, start_by: None, finish_by: None }).none,
            Some(NoWindow::NoData)
        );
    }

    #[test]
    fn ties_go_to_the_earliest_start() {
        let s = hourly(&[80.0, 80.0, 80.0, 80.0]);
        let r = best_window(&s, &Profile::flat(3600), Ask { now: 100, start_by: None, finish_by: None });
        assert_eq!(r.best, Some((100, 80.0)));
    }

    #[test]
    fn a_jobs_own_power_profile_moves_its_heavy_part_onto_the_clean_hours() {
        // A job of 2 h that draws 90 % of its energy in its second hour: its second hour should
        // meet the clean hour (hour 2), so it starts at 1 h, where a flat job would split it.
        let s = hourly(&[300.0, 300.0, 20.0, 300.0, 300.0]);
        let heavy_end = Profile::from_checkpoints(&[(3600.0, 0.1), (7200.0, 1.0)]).expect("a profile");
        assert_eq!(heavy_end.segments(), 2);
        let ask = Ask { now: 0, start_by: None, finish_by: None };
        let r = best_window(&s, &heavy_end, ask);
        let (start, mean) = r.best.expect("a window");
        assert_eq!(start, 3600);
        assert!((mean - (0.1 * 300.0 + 0.9 * 20.0)).abs() < 1e-9, "{mean}");
        // Flat, both hours count alike: 160 from 1 h or from 2 h, the earlier wins.
        let flat = best_window(&s, &Profile::flat(7200), ask).best.expect("a window");
        assert_eq!(flat, (3600, 160.0));
        // The profile's energy shares are kept when it is stretched, and its segments are capped.
        let many: Vec<(f64, f64)> = (1..=500).map(|i| (f64::from(i) * 10.0, f64::from(i) * 0.001)).collect();
        let p = Profile::from_checkpoints(&many).expect("a profile");
        assert!(p.segments() <= MAX_SEGMENTS);
        assert!((p.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(p.duration(), 5000);
        assert_eq!(p.scaled_to(10_000).duration(), 10_000);
        assert_eq!(Profile::from_checkpoints(&[(10.0, 0.0)]), None);
        // A counter reset: 2 kWh, then it reads 0.5 after a reset (2.5 in all).
        let reset = Profile::from_checkpoints(&[(10.0, 2.0), (20.0, 0.5)]).expect("a profile");
        assert!((reset.shares[0] - 0.8).abs() < 1e-12 && (reset.shares[1] - 0.2).abs() < 1e-12, "{reset:?}");
        // Extreme durations stay within a week instead of overflowing.
        assert_eq!(Profile::flat(i64::MAX).duration(), MAX_DURATION_S);
        let far = best_window(
            &hourly(&[1.0]),
            &Profile::flat(i64::MAX),
            Ask { now: i64::MAX - 10, start_by: Some(i64::MIN), finish_by: Some(i64::MIN) },
        );
        assert!(far.best.is_none());
    }

    fn arb_series() -> impl Strategy<Value = Vec<Step>> {
        // 1–12 steps of 1–40 s, some with a hole before them, values 0–500.
        prop::collection::vec((1i64..40, 0i64..3, 0u32..500), 1..12).prop_map(|parts| {
            let mut t = 0;
            parts
                .into_iter()
                .map(|(len, hole, g)| {
                    t += if hole == 0 { 5 } else { 0 };
                    let s = Step { start: t, end: t + len, g_per_kwh: f64::from(g) };
                    t += len;
                    s
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// The exact search finds the brute-force optimum (mean and earliest start) on random
        /// step functions, with random profiles, deadlines and holes.
        #[test]
        fn matches_brute_force(
            steps in arb_series(),
            duration in 1i64..60,
            shape in prop::collection::vec(0u32..10, 1..5),
            now in 0i64..30,
            start_by in prop::option::of(0i64..200),
            finish_by in prop::option::of(0i64..300),
        ) {
            // A profile of len(shape) equal segments over `duration` (when it divides).
            let profile = if duration as usize >= shape.len() && shape.iter().any(|&x| x > 0) {
                let k = shape.len() as i64;
                let pts: Vec<(f64, f64)> = (1..=k).map(|j| {
                    let e: u32 = shape[..j as usize].iter().sum();
                    ((duration * j / k) as f64, f64::from(e))
                }).collect();
                Profile::from_checkpoints(&pts).map(|p| p.scaled_to(duration)).unwrap_or(Profile::flat(duration))
            } else {
                Profile::flat(duration)
            };
            let ask = Ask { now, start_by, finish_by };
            let fast = best_window(&steps, &profile, ask);
            let slow = brute(&steps, &profile, ask);
            match (fast.best, slow) {
                (None, None) => {}
                (Some((s, m)), Some((bs, bm))) => {
                    prop_assert!((m - bm).abs() <= 1e-6 * bm.abs().max(1.0), "mean {m} at {s} vs brute {bm} at {bs}");
                    prop_assert_eq!(s, bs);
                    prop_assert!((direct(&normalise(&steps), &profile, s) - m).abs() <= 1e-6 * m.abs().max(1.0));
                }
                (f, b) => prop_assert!(false, "fast {f:?} vs brute {b:?}"),
            }
        }
    }
}
