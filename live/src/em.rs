//! Electricity Maps: `carbon-intensity/latest` and `history` (free tier, one zone), `forecast`
//! (plans that include it). Always asked about an explicit zone or data centre, with the
//! caller-location fallback off, so the server's own IP address never picks the zone.

use crate::http::{get, Failure};
use crate::{Answer, Live, Question};
use carbon_core::live::{Basis, EmPlace, Reading, Series, Target};
use carbon_core::plan::Step;
use carbon_core::time::parse_rfc3339;
use serde::Deserialize;

pub const NAME: &str = "Electricity Maps";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Point {
    zone: Option<String>,
    carbon_intensity: Option<f64>,
    datetime: Option<String>,
    updated_at: Option<String>,
    is_estimated: Option<bool>,
    emission_factor_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Many {
    zone: Option<String>,
    history: Option<Vec<Point>>,
    forecast: Option<Vec<Point>>,
    data: Option<Vec<Point>>,
    updated_at: Option<String>,
    emission_factor_type: Option<String>,
    temporal_granularity: Option<String>,
}

fn basis(t: Option<&str>) -> Basis {
    match t {
        Some("direct") => Basis::Direct,
        _ => Basis::Lifecycle,
    }
}

fn granularity_s(g: Option<&str>) -> i64 {
    match g {
        Some("5_minutes") => 300,
        Some("15_minutes") => 900,
        _ => 3600,
    }
}

fn location(place: &EmPlace, version: &str) -> Vec<(&'static str, String)> {
    let mut q = match place {
        EmPlace::Zone(z) => vec![("zone", z.clone())],
        EmPlace::DataCenter { provider, region } => {
            vec![("dataCenterProvider", provider.clone()), ("dataCenterRegion", region.clone())]
        }
    };
    if version == "v3" {
        q.push(("shouldUseFallbackCallerLookup", "false".into()));
    } else {
        q.push(("disableCallerLookup", "true".into()));
    }
    q
}

/// The base URL with its version: a URL that names one is used as it is.
fn base(live: &Live) -> (String, Option<&'static str>) {
    let url = live.cfg.electricitymaps_url.trim_end_matches('/');
    if url.ends_with("/v3") || url.ends_with("/v4") {
        return (url.to_string(), None);
    }
    let v = live.em_version.lock().map(|v| *v).unwrap_or("v4");
    (format!("{url}/{v}"), Some(v))
}

async fn call(live: &Live, path: &str, place: &EmPlace, extra: &[(&'static str, String)]) -> Result<Vec<u8>, Failure> {
    let token = live.cfg.electricitymaps_token.as_deref().unwrap_or("");
    let ask = |url: String, version: &'static str| {
        let mut q = location(place, version);
        q.extend(extra.iter().cloned());
        async move { get(&live.client, &format!("{url}/{path}"), &q, &[("auth-token", token)]).await }
    };
    let (url, version) = base(live);
    let named = if url.ends_with("/v3") { "v3" } else { "v4" };
    match (ask(url, version.unwrap_or(named)).await, version) {
        // v4 unknown here (an older proxy or deployment): v3 for this call, and for the next ones
        // only once v3 has answered (a 404 can also be about the zone).
        (Err(Failure::NoData(why)), Some("v4")) if why.starts_with("404") => {
            let v3 = format!("{}/v3", live.cfg.electricitymaps_url.trim_end_matches('/'));
            let answer = ask(v3, "v3").await;
            if answer.is_ok() {
                if let Ok(mut v) = live.em_version.lock() {
                    *v = "v3";
                }
            }
            answer
        }
        (answer, _) => answer,
    }
}

pub async fn fetch(live: &Live, t: &Target, q: &Question) -> Result<Answer, Failure> {
    let place = t.em.as_ref().ok_or_else(|| Failure::NoData("not an Electricity Maps place".into()))?;
    let fetched_at = live.now();
    match q {
        Question::Latest => {
            let body = call(live, "carbon-intensity/latest", place, &[]).await?;
            let p: Point =
                serde_json::from_slice(&body).map_err(|e| Failure::NoData(format!("an answer not understood: {e}")))?;
            same_zone(place, p.zone.as_deref())?;
            let g = p.carbon_intensity.filter(|g| g.is_finite() && *g >= 0.0);
            let (Some(g), Some(at)) = (g, p.datetime.as_deref().and_then(parse_rfc3339)) else {
                return Err(Failure::NoData("no carbonIntensity in the answer".into()));
            };
            Ok(Answer::Reading(Reading {
                zone: t.zone.clone(),
                g_per_kwh: g,
                provider: NAME.into(),
                basis: basis(p.emission_factor_type.as_deref()),
                estimated: p.is_estimated.unwrap_or(false),
                forecast: false,
                at,
                fetched_at,
            }))
        }
        Question::Forecast => {
            let body = call(live, "carbon-intensity/forecast", place, &[("horizonHours", "48".into())]).await?;
            series(t, place, &body, true, fetched_at)
        }
        // Its last 24 hours, whole (cut to a run's hours by the caller).
        Question::History(..) => {
            let body = call(live, "carbon-intensity/history", place, &[]).await?;
            series(t, place, &body, false, fetched_at)
        }
    }
}

/// An answer about another zone than the one asked for (a fallback to the caller's location,
/// say) is no answer.
fn same_zone(place: &EmPlace, answered: Option<&str>) -> Result<(), Failure> {
    match (place, answered) {
        (EmPlace::Zone(z), Some(a)) if !a.eq_ignore_ascii_case(z) => {
            Err(Failure::NoData(format!("the answer is about zone {a}, not {z}")))
        }
        _ => Ok(()),
    }
}

fn series(t: &Target, place: &EmPlace, body: &[u8], forecast: bool, fetched_at: i64) -> Result<Answer, Failure> {
    let m: Many =
        serde_json::from_slice(body).map_err(|e| Failure::NoData(format!("an answer not understood: {e}")))?;
    same_zone(place, m.zone.as_deref())?;
    let step = granularity_s(m.temporal_granularity.as_deref());
    let points = m.forecast.or(m.history).or(m.data).unwrap_or_default();
    let mut timed: Vec<(i64, Option<f64>, &Point)> = points
        .iter()
        .filter_map(|p| Some((p.datetime.as_deref().and_then(parse_rfc3339)?, p.carbon_intensity, p)))
        .collect();
    timed.sort_by_key(|x| x.0);
    let estimated = points.iter().any(|p| p.is_estimated == Some(true));
    let basis =
        basis(m.emission_factor_type.as_deref().or(points.iter().find_map(|p| p.emission_factor_type.as_deref())));
    // Each value holds until the next one, or one period; a null is a hole.
    let steps: Vec<Step> = timed
        .iter()
        .enumerate()
        .filter_map(|(i, &(start, g, _))| {
            let g = g.filter(|g| g.is_finite() && *g >= 0.0)?;
            let end = timed.get(i + 1).map(|n| n.0).filter(|&e| e - start <= step).unwrap_or(start + step);
            Some(Step { start, end, g_per_kwh: g })
        })
        .collect();
    if steps.is_empty() {
        return Err(Failure::NoData("an empty series".into()));
    }
    let issued_at = m
        .updated_at
        .as_deref()
        .and_then(parse_rfc3339)
        .or_else(|| points.iter().filter_map(|p| p.updated_at.as_deref().and_then(parse_rfc3339)).max());
    Ok(Answer::Series(Series {
        zone: t.zone.clone(),
        provider: NAME.into(),
        basis,
        forecast,
        estimated,
        steps,
        issued_at,
        fetched_at,
    }))
}
