//! A local stand-in for Electricity Maps and the UK Carbon Intensity API, answering with
//! responses in each provider's format (`live/tests/fixtures/`), their odd cases included. Times
//! in the fixtures are around 2026-11-30T10:17Z; `shift` moves them (to now, for a server on the
//! real clock). Every request is logged for the tests to look at.

#![allow(dead_code)]

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

/// The fixtures' "now": 2026-11-30T10:17:00Z.
pub const FIXTURE_NOW: i64 = 1_796_033_820;

#[derive(Clone, Default)]
pub struct Fake {
    pub log: Arc<Mutex<Vec<Logged>>>,
    /// Seconds added to every time in the answers.
    pub shift: i64,
    /// Answer this late (ms): a provider that hangs.
    pub delay_ms: Arc<Mutex<u64>>,
    /// Answer 404 to every `/v4/` path (an API that only has v3).
    pub only_v3: bool,
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub query: String,
    pub token: Option<String>,
}

fn fixture(name: &str) -> String {
    let p = format!("{}/../live/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn shift_times(v: &mut serde_json::Value, by: i64) {
    match v {
        serde_json::Value::String(s) => {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%MZ") {
                *s = (t + chrono::Duration::seconds(by)).format("%Y-%m-%dT%H:%MZ").to_string();
            } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                *s = (t + chrono::Duration::seconds(by)).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| shift_times(x, by)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| shift_times(x, by)),
        _ => {}
    }
}

impl Fake {
    fn answer(&self, status: StatusCode, name: &str) -> Response {
        let mut v: serde_json::Value = serde_json::from_str(&fixture(name)).expect("fixture JSON");
        shift_times(&mut v, self.shift);
        (status, [("content-type", "application/json")], v.to_string()).into_response()
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().expect("log").clone()
    }

    pub fn count(&self, path_part: &str) -> usize {
        self.requests().iter().filter(|r| r.path.contains(path_part)).count()
    }

    async fn handle(self, uri: Uri, headers: HeaderMap) -> Response {
        let path = uri.path().to_string();
        let query = uri.query().unwrap_or("").to_string();
        let token = headers.get("auth-token").and_then(|v| v.to_str().ok()).map(str::to_string);
        self.log.lock().expect("log").push(Logged { path: path.clone(), query: query.clone(), token: token.clone() });
        let delay = *self.delay_ms.lock().expect("delay");
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        if let Some(rest) = path.strip_prefix("/em/") {
            let (version, endpoint) = rest.split_once('/').unwrap_or(("", ""));
            if version == "v4" && self.only_v3 {
                return (StatusCode::NOT_FOUND, "Not Found").into_response();
            }
            if !matches!(version, "v3" | "v4") {
                return (StatusCode::NOT_FOUND, "Not Found").into_response();
            }
            match token.as_deref() {
                Some("good") => {}
                _ => return self.answer(StatusCode::UNAUTHORIZED, "em_401_bad_token.json"),
            }
            // The free tier: one zone (DE), no forecast elsewhere.
            let zone = query.split('&').find_map(|kv| kv.strip_prefix("zone=")).unwrap_or("");
            // AT: the answer of another zone (an API that fell back to the caller's location).
            if zone == "AT" {
                return self.answer(StatusCode::OK, "em_latest_de.json");
            }
            // PL: a redirect elsewhere, which must not be followed with the token.
            if zone == "PL" {
                return (StatusCode::FOUND, [("location", "/leak")], "").into_response();
            }
            return match (endpoint, zone) {
                ("carbon-intensity/latest", "DE") => self.answer(StatusCode::OK, "em_latest_de.json"),
                ("carbon-intensity/history", "DE") => self.answer(StatusCode::OK, "em_history_de.json"),
                ("carbon-intensity/forecast", "DE") => self.answer(StatusCode::OK, "em_forecast_de.json"),
                _ => self.answer(StatusCode::UNAUTHORIZED, "em_401_plan.json"),
            };
        }
        let Some(p) = path.strip_prefix("/uk/") else { return self.answer(StatusCode::BAD_REQUEST, "uk_400.json") };
        let parts: Vec<&str> = p.split('/').collect();
        match parts.as_slice() {
            ["intensity"] => self.answer(StatusCode::OK, "uk_intensity_now.json"),
            ["regional"] => self.answer(StatusCode::OK, "uk_regional_now.json"),
            ["intensity", _from, "fw48h"] => self.answer(StatusCode::OK, "uk_national_fw48h.json"),
            ["regional", "intensity", _from, "fw48h", "regionid", "13"] => {
                self.answer(StatusCode::OK, "uk_region13_fw48h.json")
            }
            ["intensity", _from, _to] => self.answer(StatusCode::OK, "uk_national_history.json"),
            _ => self.answer(StatusCode::BAD_REQUEST, "uk_400.json"),
        }
    }

    /// Serve on a free local port; the base URLs for Electricity Maps and the UK API.
    pub async fn start(self) -> (String, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let me = self.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| me.clone().handle(uri, headers));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        (format!("http://{addr}/em"), format!("http://{addr}/uk"))
    }
}
