//! Small display helpers shared by the pages.

use carbon_core::time::Timestamp;
use carbon_core::units;

pub fn energy(x: Option<f64>) -> String {
    units::or_dash(x, units::energy_kwh)
}

pub fn co2(x: Option<f64>) -> String {
    units::or_dash(x, units::co2_kg)
}

pub fn duration(x: Option<f64>) -> String {
    units::or_dash(x, units::duration_s)
}

pub fn power(x: Option<f64>) -> String {
    units::or_dash(x, units::power_w)
}

pub fn text(x: &Option<String>) -> String {
    x.clone().unwrap_or_else(|| "–".into())
}

/// `2024-05-18 12:04`, or a dash.
pub fn when(x: &Option<Timestamp>) -> String {
    x.as_ref().map_or_else(|| "–".into(), carbon_core::time::minutes)
}

/// `2024-05-18 12:04:08`, or a dash.
pub fn seconds(x: &Option<Timestamp>) -> String {
    x.as_ref().map_or_else(|| "–".into(), |t| carbon_core::time::iso(t).replace('T', " "))
}

/// First 8 characters of an id, enough to tell runs apart.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// A link to one of the app's paths: under the base path when served behind a reverse proxy.
/// (`use_navigate` adds the base itself: give it the bare path.)
pub fn href(path: &str) -> String {
    crate::under(&crate::base_path(), path)
}

/// Link to a run page.
pub fn run_href(id: &str) -> String {
    href(&format!("/runs/{}", encode(id)))
}

/// `path?k=v&…` with the values percent-encoded; just `path` without parameters.
pub fn url<K: AsRef<str>, V: AsRef<str>>(path: &str, params: impl IntoIterator<Item = (K, V)>) -> String {
    let q: Vec<String> = params.into_iter().map(|(k, v)| format!("{}={}", k.as_ref(), encode(v.as_ref()))).collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// "4.2 kg CO₂e (3.1 kg CO₂e – 5.6 kg CO₂e)": a CO2 figure with its range.
pub fn co2_range(v: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    match (v, low, high) {
        (Some(v), Some(l), Some(h)) => format!("{} ({} – {})", units::co2_kg(v), units::co2_kg(l), units::co2_kg(h)),
        (Some(v), _, _) => units::co2_kg(v),
        _ => "–".into(),
    }
}

/// "37.5 g/kWh".
pub fn intensity(g: f64) -> String {
    units::intensity(g)
}
