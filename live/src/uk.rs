//! The UK Carbon Intensity API (NESO, CC BY 4.0): Great Britain and its 17 regions, half-hourly,
//! with a 48-hour forecast, no key. Its figures count generation (with imports and losses)
//! only: a direct average, not a lifecycle one.

use crate::http::{get, Failure};
use crate::{Answer, Live, Question};
use carbon_core::live::{Basis, Reading, Series, Target, UkArea};
use carbon_core::plan::Step;
use serde::Deserialize;

pub const NAME: &str = "UK Carbon Intensity API (NESO)";

/// Periods per call: the API takes at most 14 days a range.
const MAX_RANGE_S: i64 = 13 * 86_400;
/// The longest history asked for (a run longer than this gets no hourly figure).
const MAX_HISTORY_S: i64 = 62 * 86_400;

#[derive(Debug, Deserialize)]
struct Intensity {
    forecast: Option<f64>,
    actual: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Period {
    from: String,
    to: String,
    intensity: Option<Intensity>,
    #[serde(default)]
    regions: Vec<RegionNow>,
}

#[derive(Debug, Deserialize)]
struct RegionNow {
    regionid: Option<u8>,
    intensity: Option<Intensity>,
}

#[derive(Debug, Deserialize)]
struct Region {
    #[serde(default)]
    data: Vec<Period>,
}

/// `data` is an object for some regional routes and an array for others.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(x) => vec![x],
        }
    }
}

#[derive(Debug, Deserialize)]
struct Periods {
    data: Vec<Period>,
}

#[derive(Debug, Deserialize)]
struct Regional {
    data: OneOrMany<Region>,
}

/// `2018-01-20T12:00Z`: minutes, no seconds (not RFC 3339); RFC 3339 is taken too.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%MZ")
        .ok()
        .map(|d| d.and_utc().timestamp())
        .or_else(|| carbon_core::time::parse_rfc3339(s))
}

pub fn format_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%dT%H:%MZ").to_string()).unwrap_or_default()
}

fn not_understood(e: serde_json::Error) -> Failure {
    Failure::NoData(format!("an answer not understood: {e}"))
}

async fn call(live: &Live, path: &str) -> Result<Vec<u8>, Failure> {
    let url = format!("{}/{path}", live.cfg.uk_url.trim_end_matches('/'));
    get(&live.client, &url, &[], &[]).await
}

/// Periods as steps: the measured value where there is one (`prefer_actual`), else the forecast.
fn steps(periods: &[Period], prefer_actual: bool) -> (Vec<Step>, bool) {
    let mut estimated = false;
    let steps = periods
        .iter()
        .filter_map(|p| {
            let (start, end) = (parse_time(&p.from)?, parse_time(&p.to)?);
            let i = p.intensity.as_ref()?;
            let g = match (prefer_actual, i.actual, i.forecast) {
                (true, Some(a), _) => a,
                (_, _, Some(f)) => {
                    estimated |= prefer_actual;
                    f
                }
                (false, Some(a), None) => a,
                _ => return None,
            };
            (g.is_finite() && g >= 0.0 && end > start).then_some(Step { start, end, g_per_kwh: g })
        })
        .collect();
    (steps, estimated)
}

fn series(t: &Target, steps: Vec<Step>, forecast: bool, estimated: bool, fetched_at: i64) -> Result<Answer, Failure> {
    if steps.is_empty() {
        return Err(Failure::NoData("an empty series".into()));
    }
    Ok(Answer::Series(Series {
        zone: t.zone.clone(),
        provider: NAME.into(),
        basis: Basis::Direct,
        forecast,
        estimated,
        steps,
        issued_at: None,
        fetched_at,
    }))
}

fn region_periods(body: &[u8]) -> Result<Vec<Period>, Failure> {
    let r: Regional = serde_json::from_slice(body).map_err(not_understood)?;
    Ok(r.data.into_vec().into_iter().flat_map(|r| r.data).collect())
}

pub async fn fetch(live: &Live, t: &Target, q: &Question) -> Result<Answer, Failure> {
    let area = t.uk.ok_or_else(|| Failure::NoData("not in Great Britain".into()))?;
    let now = live.now();
    match (q, area) {
        (Question::Latest, UkArea::National) => {
            let p: Periods = serde_json::from_slice(&call(live, "intensity").await?).map_err(not_understood)?;
            let (steps, _) = steps(&p.data, true);
            let measured = p.data.first().and_then(|p| p.intensity.as_ref()).is_some_and(|i| i.actual.is_some());
            let s = steps.first().ok_or_else(|| Failure::NoData("no value for now".into()))?;
            Ok(Answer::Reading(Reading {
                zone: t.zone.clone(),
                g_per_kwh: s.g_per_kwh,
                provider: NAME.into(),
                basis: Basis::Direct,
                estimated: !measured,
                forecast: !measured,
                at: s.start,
                fetched_at: now,
            }))
        }
        (Question::Latest, UkArea::Region(id)) => {
            let all = live.uk_regions().await;
            let found = all.value.into_iter().flatten().find(|r| r.zone == area.zone());
            found
                .map(|mut r| {
                    r.zone = t.zone.clone();
                    Answer::Reading(r)
                })
                .ok_or_else(|| {
                    Failure::NoData(all.notes.first().cloned().unwrap_or_else(|| format!("no value for region {id}")))
                })
        }
        (Question::Forecast, _) => {
            // `from` names the period that ends there: a minute on is the period now.
            let from = format_time(now + 60);
            let path = match area {
                UkArea::National => format!("intensity/{from}/fw48h"),
                UkArea::Region(id) => format!("regional/intensity/{from}/fw48h/regionid/{id}"),
            };
            let body = call(live, &path).await?;
            let periods = match area {
                UkArea::National => serde_json::from_slice::<Periods>(&body).map_err(not_understood)?.data,
                UkArea::Region(_) => region_periods(&body)?,
            };
            let (steps, _) = steps(&periods, false);
            series(t, steps, true, true, now)
        }
        (Question::History(a, b), _) => {
            if b - a > MAX_HISTORY_S {
                return Err(Failure::NoData(format!("a range over {} days", MAX_HISTORY_S / 86_400)));
            }
            let (a, b) = (*a, (*b).min(now + 3600));
            let mut all = Vec::new();
            let mut estimated = false;
            let mut from = a;
            while from < b {
                // At most 13 days a call, and never across 1 January (the API refuses both).
                let next_year = chrono::DateTime::from_timestamp(from, 0)
                    .and_then(|d| chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&d) + 1, 1, 1))
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map_or(i64::MAX, |d| d.and_utc().timestamp());
                let to = (from + MAX_RANGE_S).min(b).min(next_year);
                let (f, t2) = (format_time(from + 60), format_time(to));
                let path = match area {
                    UkArea::National => format!("intensity/{f}/{t2}"),
                    UkArea::Region(id) => format!("regional/intensity/{f}/{t2}/regionid/{id}"),
                };
                let body = call(live, &path).await?;
                let periods = match area {
                    UkArea::National => serde_json::from_slice::<Periods>(&body).map_err(not_understood)?.data,
                    UkArea::Region(_) => region_periods(&body)?,
                };
                let (s, e) = steps(&periods, true);
                estimated |= e;
                all.extend(s);
                from = to;
            }
            series(t, all, false, estimated, now)
        }
    }
}

/// The latest value of every region, from `GET /regional`.
pub async fn regions(live: &Live) -> Result<Answer, Failure> {
    let body = call(live, "regional").await?;
    let p: Periods = serde_json::from_slice(&body).map_err(not_understood)?;
    let now = live.now();
    let mut out = Vec::new();
    for period in &p.data {
        let Some(at) = parse_time(&period.from) else { continue };
        for r in &period.regions {
            let (Some(id @ 1..=17), Some(g)) = (r.regionid, r.intensity.as_ref().and_then(|i| i.forecast)) else {
                continue;
            };
            out.push(Reading {
                zone: UkArea::Region(id).zone(),
                g_per_kwh: g,
                provider: NAME.into(),
                basis: Basis::Direct,
                estimated: true,
                forecast: true,
                at,
                fetched_at: now,
            });
        }
    }
    if out.is_empty() {
        return Err(Failure::NoData("no region in the answer".into()));
    }
    Ok(Answer::Regions(out))
}
