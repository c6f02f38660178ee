//! The planner's question answered: the place and the job from the query (and a past run), the
//! forecast from the providers, the best start by [`carbon_core::plan`], and the same for the
//! cleanest candidate regions ("where and when").

use crate::Live;
use carbon_core::grid::Grid;
use carbon_core::live::Target;
use carbon_core::plan::{Ask, Profile};
use carbon_core::schedule::{answer, elsewhere, parse_duration, Job, PlanAnswer, PlanQuery, RunFacts};
use carbon_core::time::parse_rfc3339;
use carbon_core::units;

/// Candidate regions looked at besides the place asked about: the cleanest by annual figure.
pub const CANDIDATES: usize = 6;

/// The query's place, job and deadlines, or what to change in it.
fn job(q: &PlanQuery, run: Option<&RunFacts>) -> Result<Job, String> {
    let duration = match (&q.duration, run.and_then(|r| r.duration_s)) {
        (Some(d), _) => parse_duration(d)?,
        (None, Some(d)) if d >= 1.0 => (d.round() as i64).min(carbon_core::plan::MAX_DURATION_S),
        _ => return Err("duration: say how long the job runs (90m, 3h, 1h30m), or give a run_id".into()),
    };
    let given = match &q.energy_kwh {
        Some(e) => Some(
            e.trim()
                .parse::<f64>()
                .ok()
                .filter(|e| e.is_finite() && (0.0..=1e9).contains(e))
                .ok_or_else(|| format!("energy_kwh '{e}': a number of kWh, 0 or more"))?,
        ),
        None => None,
    };
    let Some(r) = run else {
        return Ok(Job {
            profile: Profile::flat(duration),
            energy_kwh: given,
            words: match given {
                Some(e) => format!(
                    "{} over {}, at constant power (as given)",
                    units::energy_kwh(e),
                    units::duration_s(duration as f64)
                ),
                None => format!("{} at constant power; no energy given", units::duration_s(duration as f64)),
            },
        });
    };
    // A run repeated: its energy, scaled to the duration asked for (the same power), and its
    // own power profile.
    let scale = match (&q.duration, r.duration_s) {
        (Some(_), Some(d)) if d > 0.0 => duration as f64 / d,
        _ => 1.0,
    };
    let energy = given.or(r.energy_kwh.map(|e| e * scale));
    let (profile, shape) = match r.profile.as_ref().map(|p| p.scaled_to(duration)) {
        Some(p) if !p.is_flat() => {
            let words = format!("its own power profile ({} segments from {} checkpoints)", p.segments(), r.checkpoints);
            (p, words)
        }
        Some(p) => (p, "constant power (its profile does not fit that duration)".to_string()),
        None => (Profile::flat(duration), "constant power (the run has one checkpoint)".to_string()),
    };
    Ok(Job {
        profile,
        energy_kwh: energy,
        words: format!(
            "run {}: {} over {}, {shape}",
            r.run_id,
            energy.map_or("no energy".to_string(), units::energy_kwh),
            units::duration_s(duration as f64)
        ),
    })
}

fn deadline(v: &Option<String>, name: &str) -> Result<Option<i64>, String> {
    v.as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_rfc3339(s).ok_or_else(|| format!("{name} '{s}': an RFC 3339 time, e.g. 2026-12-01T06:00:00Z")))
        .transpose()
}

/// The place the query names: `zone`, else `region`, else the run's.
pub fn target(grid: &Grid, q: &PlanQuery, run: Option<&RunFacts>) -> Result<Target, String> {
    let given = |v: &Option<String>| v.as_deref().is_some_and(|z| !z.trim().is_empty());
    if given(&q.zone) && given(&q.region) {
        return Err("give a zone or a cloud region, not both".into());
    }
    if let Some(z) = q.zone.as_deref().filter(|z| !z.trim().is_empty()) {
        return Target::of_zone(grid, z).map_err(|e| e.to_string());
    }
    if let Some(r) = q.region.as_deref().filter(|z| !z.trim().is_empty()) {
        return Target::of_region(grid, r).map_err(|e| e.to_string());
    }
    match run {
        Some(r) => r
            .target
            .clone()
            .ok_or_else(|| format!("run {} does not say where it ran: add zone=… or region=… to the query", r.run_id)),
        None => {
            Err("say where: zone=GB (or DE, FR, US-CAL-CISO, GB-13 …), region=gcp/europe-west2, or run_id=…".into())
        }
    }
}

/// The whole answer. `Err` is a message about the query (a 400).
pub async fn plan(live: &Live, grid: &Grid, q: &PlanQuery, run: Option<&RunFacts>) -> Result<PlanAnswer, String> {
    let target = target(grid, q, run)?;
    let job = job(q, run)?;
    let ask = Ask {
        now: live.now(),
        start_by: deadline(&q.start_by, "start_by")?,
        finish_by: deadline(&q.finish_by, "finish_by")?,
    };
    let mut notes: Vec<String> = live.offline_advice().into_iter().collect();
    // The forecast and the grid now together, each provider within its time limit; the whole
    // within twice that (a provider tried after another that timed out).
    let limit = live.timeout() * 2 + std::time::Duration::from_secs(1);
    let both =
        tokio::time::timeout(limit, futures_util::future::join(live.forecast(&target), live.latest(&target))).await;
    let (fc, now) = match both {
        Ok((fc, now)) => (fc, now.value),
        Err(_) => (
            crate::Outcome {
                value: None,
                notes: vec![format!("no provider answered within {} s; skipped", limit.as_secs())],
            },
            None,
        ),
    };
    notes.extend(fc.notes.iter().cloned());
    let mut a = answer(&target, fc.value.as_ref(), target.annual(grid), &job, ask, notes);
    a.grid_now = now.as_ref().map(carbon_core::schedule::GridNowValue::from);

    // Where and when: the cleanest regions (by annual figure, within the filters), each at its
    // best start where a forecast covers it, and the place asked about.
    let mut rows = carbon_core::whatif::regions(grid);
    for (name, value, known) in [
        ("provider", &q.provider, rows.iter().map(|r| r.provider.as_str()).collect::<Vec<_>>()),
        ("continent", &q.continent, rows.iter().map(|r| r.continent.as_str()).collect::<Vec<_>>()),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(v)) {
                let mut k = known.clone();
                k.sort_unstable();
                k.dedup();
                return Err(format!("{name} '{v}': one of {}", k.join(", ")));
            }
        }
    }
    rows.retain(|r| q.provider.as_deref().is_none_or(|p| r.provider.eq_ignore_ascii_case(p)));
    rows.retain(|r| q.continent.as_deref().is_none_or(|c| r.continent.eq_ignore_ascii_case(c)));
    rows.sort_by(|a, b| a.intensity_g_per_kwh.total_cmp(&b.intensity_g_per_kwh));
    let mut places: Vec<Target> = rows
        .iter()
        .filter_map(|r| Target::of_region(grid, &format!("{}/{}", r.provider, r.region)).ok())
        .filter(|t| t.zone != target.zone)
        .take(CANDIDATES)
        .collect();
    places.insert(0, target.clone());
    // Candidates ask keyless providers only (Electricity Maps from its cache), within one limit.
    let forecasts = tokio::time::timeout(
        live.timeout() + std::time::Duration::from_secs(1),
        futures_util::future::join_all(places.iter().skip(1).map(|t| live.forecast_if_cheap(t))),
    )
    .await
    .unwrap_or_default();
    let mut rows: Vec<_> = places
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let f = if i == 0 { fc.value.as_ref() } else { forecasts.get(i - 1).and_then(|f| f.value.as_ref()) };
            elsewhere(t, f, &t.annual(grid), &job, ask)
        })
        .collect();
    rows.sort_by(|a, b| a.mean_g_per_kwh.total_cmp(&b.mean_g_per_kwh));
    let mut bases: Vec<_> = rows.iter().map(|r| r.basis).collect();
    bases.sort_by_key(|b| *b as u8);
    bases.dedup();
    if bases.len() > 1 {
        a.notes.push(
            "where and when compares figures of different bases (direct and lifecycle averages): a direct figure leaves out what building and fuelling the plants emits, so it reads lower".into(),
        );
    }
    a.elsewhere = rows;
    Ok(a)
}

/// A run's CO2 at the hours it ran, where a provider's history covers them, beside the same
/// energy at its annual figure. The CSV's times carry no time zone: runs in a cloud region are
/// read as UTC (the clock cloud machines keep), others in Great Britain as UK clock time; hours
/// are matched only in Great Britain (the UK API's history covers years), and elsewhere the note
/// says why not.
pub async fn run_hours(
    live: &Live,
    grid: &Grid,
    d: &carbon_core::model::RunDetail,
) -> carbon_core::schedule::RunHoursView {
    use carbon_core::schedule::{realised, RunHoursView};
    let none = |note: &str| RunHoursView { hours: None, note: Some(note.to_string()) };
    let Some(target) = Target::of_run(grid, &d.run).filter(|t| t.uk.is_some()) else {
        return none("no hourly figure: the CSV's times carry no time zone, so hours are matched only for runs in Great Britain (UK Carbon Intensity history)");
    };
    let cloud = d.run.cloud_region.is_some();
    let clock = if cloud { "UTC (a cloud machine's clock)" } else { "UK clock time" };
    let instant = |ts: &carbon_core::time::Timestamp| {
        if cloud {
            ts.and_utc().timestamp()
        } else {
            carbon_core::time::gb_local_to_unix(ts)
        }
    };
    // Each checkpoint's energy since the one before, over the time between them; the first
    // over its own duration. A counter that goes down was reset: its reading is the energy since.
    let mut intervals: Vec<(i64, i64, f64)> = Vec::new();
    let (mut last_t, mut last_e): (Option<i64>, f64) = (None, 0.0);
    for c in &d.checkpoints {
        let (Some(ts), Some(e)) = (c.timestamp.as_ref(), c.energy_kwh) else { continue };
        let mut end = instant(ts);
        let start = last_t.unwrap_or_else(|| end - c.duration_s.unwrap_or(0.0).clamp(0.0, 1e9).round() as i64);
        if end <= start && !cloud {
            // The hour the clocks go back: the same reading an hour later, in GMT.
            end += 3600;
        }
        if end <= start {
            continue;
        }
        let delta = if e < last_e { e } else { e - last_e };
        intervals.push((start, end, delta.max(0.0)));
        (last_t, last_e) = (Some(end), e);
    }
    let (Some(from), Some(to)) = (intervals.first().map(|i| i.0), intervals.last().map(|i| i.1)) else {
        return none("no hourly figure: the run's rows carry no times");
    };
    let h = live.history(&target, from, to).await;
    match h.value.as_ref().and_then(|s| realised(&intervals, s)) {
        Some(mut hours) => {
            hours.clock = clock.to_string();
            hours.annual_co2_kg = Some(d.run.assessment.intensity_g_per_kwh * hours.energy_kwh / 1000.0)
                .filter(|x| x.is_finite() && d.run.assessment.intensity_g_per_kwh > 0.0);
            RunHoursView { hours: Some(hours), note: None }
        }
        None => {
            none(&h.notes.first().cloned().unwrap_or_else(|| {
                "no hourly figure: the provider's history does not cover every hour of the run".into()
            }))
        }
    }
}
