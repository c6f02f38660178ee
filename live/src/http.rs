//! One GET, its answer read up to a limit, and its failures in words a reader can act on.

use std::time::Duration;

/// The most bytes read of an answer: a 48-hour regional forecast is about 60 KB.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Why a provider gave nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 401/403: the token, its plan or its quota. `whole_provider`: the token itself was refused.
    Refused { status: u16, message: String, whole_provider: bool },
    /// No answer in time, no network, 429 or a server error: try again later.
    Unavailable(String),
    /// An answer, but not one with a value for this question (404, an empty list, a shape not
    /// understood).
    NoData(String),
}

impl Failure {
    pub fn words(&self, timeout: Duration) -> String {
        match self {
            Failure::Refused { status, message, .. } => {
                format!("refused ({status}: {message}); Electricity Maps answers 401 for a wrong token, a zone or endpoint outside the plan, and a spent quota")
            }
            Failure::Unavailable(why) if why == "timeout" => {
                format!("no answer within {} s", timeout.as_secs_f64())
            }
            Failure::Unavailable(why) => format!("unavailable ({why})"),
            Failure::NoData(why) => format!("no data ({why})"),
        }
    }
}

/// GET `url` with `headers`; the body of a 2xx answer.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    query: &[(&str, String)],
    headers: &[(&str, &str)],
) -> Result<Vec<u8>, Failure> {
    let mut req = client.get(url).query(query).header("accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut res = req.send().await.map_err(|e| Failure::Unavailable(network(e)))?;
    let status = res.status().as_u16();
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| Failure::Unavailable(network(e)))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Failure::NoData(format!("an answer over {} MB", MAX_ANSWER_BYTES >> 20)));
        }
        body.extend_from_slice(&chunk);
    }
    match status {
        200..=299 => Ok(body),
        401 | 403 => {
            let message = message(&body);
            let lower = message.to_ascii_lowercase();
            let whole_provider = lower.contains("invalid auth-token")
                || lower.contains("token is invalid")
                || lower.contains("provide a valid authentication");
            Err(Failure::Refused { status, message, whole_provider })
        }
        429 => Err(Failure::Unavailable("429, too many requests".into())),
        500..=599 => Err(Failure::Unavailable(format!("{status}, {}", message(&body)))),
        _ => Err(Failure::NoData(format!("{status}, {}", message(&body)))),
    }
}

/// What an error answer says: `error`/`message` (Electricity Maps), `error.message` (the UK
/// API), else the start of the text; cut short and stripped of control characters.
fn message(body: &[u8]) -> String {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let text = v
        .as_ref()
        .and_then(|v| {
            let e = v.get("error");
            let m = v.get("message").and_then(|m| m.as_str());
            let em = e.and_then(|e| e.as_str());
            let uk = e.and_then(|e| e.get("message")).and_then(|m| m.as_str());
            match (em, m) {
                (Some(a), Some(b)) => Some(format!("{a}: {b}")),
                (a, b) => a.or(b).or(uk).map(str::to_string),
            }
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let clean: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    if clean.is_empty() {
        "no message".into()
    } else {
        clean
    }
}

pub(crate) fn network(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        // Without the URL: a proxy's address is not for every visitor of a page.
        e.without_url().to_string().chars().take(200).collect()
    }
}
