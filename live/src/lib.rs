//! Live and forecast grid carbon intensity: Electricity Maps (with a token) and the UK Carbon
//! Intensity API (no key), behind one interface.
//!
//! - One shared HTTP client with a time limit per call: a provider that does not answer in time
//!   is skipped and the answer says so; nothing waits on a missing network for longer.
//! - A cache per provider, question and area (one fetch in flight per key, concurrent askers
//!   wait for it), for as long as the data stays current: Electricity Maps' latest 10 min, its
//!   forecasts and history 60 min, the UK API's half-hourly data 30 min.
//! - Back-off: a 401/403 pauses that question for that area for an hour (Electricity Maps answers
//!   quota and plan limits with 401), a refused token pauses the provider; 429, 5xx and network
//!   failures pause the provider, doubling from 30 s up to 15 min.
//! - A budget of calls per provider and hour (Electricity Maps 120, the UK API 600), whatever
//!   visitors ask for: past it, answers come from the cache or not at all, so a public page cannot
//!   spend a token's quota. Lists of places ("where and when") read Electricity Maps' cache only.
//! - No redirect is followed (the token header would travel with it).
//! - The token is sent in a header only, and never logged or shown (`Config`'s `Debug` hides it).
//! - Every value carries its provider, basis, whether estimated or forecast, its own time and
//!   when it was fetched ([`carbon_core::live`]).

mod em;
mod http;
pub mod mlflow;
pub mod planner;
mod uk;

use carbon_core::live::{Reading, Series, Target, UkArea};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use http::Failure;

/// Electricity Maps' API, without the version (`/v4`, falling back to `/v3`, is added).
pub const ELECTRICITYMAPS_URL: &str = "https://api.electricitymaps.com";
/// The UK Carbon Intensity API (NESO).
pub const UK_INTENSITY_URL: &str = "https://api.carbonintensity.org.uk";
/// How long one provider call may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What to ask and where.
#[derive(Clone)]
pub struct Config {
    pub electricitymaps_token: Option<String>,
    pub electricitymaps_url: String,
    /// Ask the UK Carbon Intensity API (no key) about Great Britain.
    pub uk: bool,
    pub uk_url: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("electricitymaps_token", &self.electricitymaps_token.as_ref().map(|_| "<hidden>"))
            .field("electricitymaps_url", &self.electricitymaps_url)
            .field("uk", &self.uk)
            .field("uk_url", &self.uk_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for Config {
    /// Offline: no provider is asked.
    fn default() -> Config {
        Config {
            electricitymaps_token: None,
            electricitymaps_url: ELECTRICITYMAPS_URL.into(),
            uk: false,
            uk_url: UK_INTENSITY_URL.into(),
            timeout: TIMEOUT,
        }
    }
}

/// A value, or none, and what the reader should know about how it was got: providers skipped,
/// paused or refused, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    pub value: Option<T>,
    pub notes: Vec<String>,
}

impl<T> Outcome<T> {
    fn none(notes: Vec<String>) -> Outcome<T> {
        Outcome { value: None, notes }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Provider {
    ElectricityMaps,
    Uk,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::ElectricityMaps => em::NAME,
            Provider::Uk => uk::NAME,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Question {
    Latest,
    Forecast,
    /// Hour-aligned range.
    History(i64, i64),
}

/// What a provider answered, as cached.
#[derive(Debug, Clone)]
enum Answer {
    Reading(Reading),
    Series(Series),
    /// The UK API's latest value for every region at once.
    Regions(Vec<Reading>),
}

type Key = (Provider, Question, String);

struct Slot {
    fetched: std::time::Instant,
    answer: Answer,
}

/// Calls a provider may make per hour, and in a burst.
fn budget_of(p: Provider) -> (f64, f64) {
    match p {
        Provider::ElectricityMaps => (120.0, 30.0),
        Provider::Uk => (600.0, 60.0),
    }
}

/// Why and until when a provider (or one question of it) is not asked.
#[derive(Debug, Clone)]
struct Pause {
    until: std::time::Instant,
    why: String,
    /// Failures in a row, for the doubling.
    strikes: u32,
}

/// The most cache keys kept: areas come from users' requests, so an attacker could otherwise
/// grow the table without end.
const MAX_KEYS: usize = 512;
/// The most pauses kept (expired ones are dropped first).
const MAX_PAUSES: usize = 1024;
const AUTH_PAUSE: Duration = Duration::from_secs(3600);
const FIRST_PAUSE: Duration = Duration::from_secs(30);
const LONGEST_PAUSE: Duration = Duration::from_secs(900);

/// The live grid: ask it about a place; it answers from its cache, a provider, or says why not.
pub struct Live {
    cfg: Config,
    client: reqwest::Client,
    slots: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Option<Slot>>>>>,
    /// By provider name, or provider + question + area.
    pauses: Mutex<HashMap<String, Pause>>,
    /// Electricity Maps' API version that answered (`v4`, or `v3` once v3 answered after a 404 on v4).
    em_version: Mutex<&'static str>,
    /// Calls left per provider, and when they were counted.
    budget: Mutex<HashMap<Provider, (f64, std::time::Instant)>>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

/// Unix seconds now.
pub fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Live {
    pub fn new(cfg: Config) -> Live {
        Live::with_clock(cfg, Arc::new(now_s))
    }

    /// With a clock of the caller's (tests).
    pub fn with_clock(cfg: Config, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Live {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .user_agent(concat!("carbon-dash/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Live {
            cfg,
            client,
            slots: Mutex::new(HashMap::new()),
            pauses: Mutex::new(HashMap::new()),
            em_version: Mutex::new("v4"),
            budget: Mutex::new(HashMap::new()),
            clock,
        }
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// How long one provider call may take.
    pub fn timeout(&self) -> Duration {
        self.cfg.timeout
    }

    /// No provider is configured: everything is the embedded annual data.
    pub fn offline(&self) -> bool {
        !self.cfg.uk && self.cfg.electricitymaps_token.is_none()
    }

    /// What a reader can do to get live data, in words; `None` when some provider is on.
    pub fn offline_advice(&self) -> Option<String> {
        self.offline().then(|| {
            "annual average, not live: start carbon-dash with --live for Great Britain's live grid and 48-hour forecast (UK Carbon Intensity API, no key), or with an Electricity Maps token in ELECTRICITYMAPS_TOKEN for its live grid worldwide and, with a plan that includes them, its forecasts".into()
        })
    }

    /// The providers that can answer about `t`, in the order they are asked: for Great Britain
    /// the UK API first (keyless, half-hourly, a real 48-hour forecast), then Electricity Maps.
    fn providers(&self, t: &Target) -> Vec<Provider> {
        let mut v = Vec::new();
        if self.cfg.uk && t.uk.is_some() {
            v.push(Provider::Uk);
        }
        if self.cfg.electricitymaps_token.is_some() && t.em.is_some() {
            v.push(Provider::ElectricityMaps);
        }
        v
    }

    fn coverage_note(&self, t: &Target) -> Option<String> {
        if self.offline() || !self.providers(t).is_empty() {
            return None;
        }
        Some(if t.uk.is_some() {
            format!(
                "no live provider covers {}: --live (UK Carbon Intensity API) or an Electricity Maps token would",
                t.label
            )
        } else {
            format!("no live provider covers {}: an Electricity Maps token (--electricitymaps-token) would", t.label)
        })
    }

    /// The grid now at `t`.
    pub async fn latest(&self, t: &Target) -> Outcome<Reading> {
        let mut out = self
            .first(t, Question::Latest, false, |a| match a {
                Answer::Reading(r) => Some(r),
                _ => None,
            })
            .await;
        // Answers are shared between places in one area: each asker gets its own name on it.
        if let Some(r) = out.value.as_mut() {
            r.zone = t.zone.clone();
        }
        out
    }

    /// The forecast for `t`, from the current period on.
    pub async fn forecast(&self, t: &Target) -> Outcome<Series> {
        let mut out = self.first(t, Question::Forecast, false, series).await;
        if let Some(s) = out.value.as_mut() {
            s.zone = t.zone.clone();
        }
        out
    }

    /// The forecast for `t` as a candidate among many: keyless providers are asked, Electricity
    /// Maps only answers from its cache.
    pub async fn forecast_if_cheap(&self, t: &Target) -> Outcome<Series> {
        self.first(t, Question::Forecast, true, series).await
    }

    /// What the grid at `t` was from `from` to `to` (Unix seconds; widened to whole hours).
    /// Electricity Maps' history is its last 24 hours, fetched whole and cut here.
    pub async fn history(&self, t: &Target, from: i64, to: i64) -> Outcome<Series> {
        let (a, b) = (from.div_euclid(3600) * 3600, (to + 3599).div_euclid(3600) * 3600);
        let mut out = self.first(t, Question::History(a, b), false, series).await;
        if let Some(s) = out.value.as_mut() {
            s.steps.retain(|x| x.end > a && x.start < b);
        }
        out
    }

    /// The grid now in every UK region, from one call (the map and the regions page); `None`
    /// without `--live`.
    pub async fn uk_regions(&self) -> Outcome<Vec<Reading>> {
        if !self.cfg.uk {
            return Outcome::none(Vec::new());
        }
        match self.ask(Provider::Uk, Question::Latest, "regions", || uk::regions(self)).await {
            Ok(Answer::Regions(v)) => Outcome { value: Some(v), notes: Vec::new() },
            Ok(_) => Outcome::none(Vec::new()),
            Err(why) => Outcome::none(vec![why]),
        }
    }

    /// What the cache holds for `t` now, without asking anyone (pages that list many places
    /// must not spend a provider's quota).
    pub fn cached_latest(&self, t: &Target) -> Option<Reading> {
        let slots = self.slots.lock().ok()?;
        for p in self.providers(t) {
            let key = (p, Question::Latest, place_key(p, t)?);
            if let Some(slot) = slots.get(&key) {
                if let Ok(guard) = slot.try_lock() {
                    if let Some(Slot { answer: Answer::Reading(r), fetched }) = guard.as_ref() {
                        if fetched.elapsed() < ttl(p, &Question::Latest) {
                            return Some(r.clone());
                        }
                    }
                }
            }
        }
        None
    }

    async fn first<T>(&self, t: &Target, q: Question, cheap: bool, pick: impl Fn(Answer) -> Option<T>) -> Outcome<T> {
        let mut notes: Vec<String> = self.coverage_note(t).into_iter().collect();
        for p in self.providers(t) {
            let Some(place) = place_key(p, t) else { continue };
            if cheap && p == Provider::ElectricityMaps {
                if let Some(a) = self.cached(p, &q, &place).and_then(&pick) {
                    return Outcome { value: Some(a), notes };
                }
                continue;
            }
            // Electricity Maps' history is one answer per area (its last 24 hours).
            let q = match (p, &q) {
                (Provider::ElectricityMaps, Question::History(a, _)) => {
                    if *a < self.now() - 25 * 3600 {
                        notes.push(format!(
                            "{}: no data (its history covers the last 24 hours; older hours need a commercial plan)",
                            p.name()
                        ));
                        continue;
                    }
                    Question::History(0, 0)
                }
                _ => q.clone(),
            };
            let fetch = || async {
                match p {
                    Provider::Uk => uk::fetch(self, t, &q).await,
                    Provider::ElectricityMaps => em::fetch(self, t, &q).await,
                }
            };
            match self.ask(p, q.clone(), &place, fetch).await {
                Ok(a) => {
                    if let Some(v) = pick(a) {
                        return Outcome { value: Some(v), notes };
                    }
                }
                Err(why) => notes.push(why),
            }
        }
        Outcome::none(notes)
    }

    /// A fresh cached answer, without waiting or asking.
    fn cached(&self, p: Provider, q: &Question, place: &str) -> Option<Answer> {
        let slots = self.slots.lock().ok()?;
        let slot = slots.get(&(p, q.clone(), place.to_string()))?;
        let guard = slot.try_lock().ok()?;
        guard.as_ref().filter(|s| s.fetched.elapsed() < ttl(p, q)).map(|s| s.answer.clone())
    }

    /// Takes one call from `p`'s budget; `false` when it is spent.
    fn spend(&self, p: Provider) -> bool {
        let (per_hour, burst) = budget_of(p);
        let Ok(mut b) = self.budget.lock() else { return false };
        let now = std::time::Instant::now();
        let (left, at) = b.entry(p).or_insert((burst, now));
        *left = (*left + now.duration_since(*at).as_secs_f64() * per_hour / 3600.0).min(burst);
        *at = now;
        if *left >= 1.0 {
            *left -= 1.0;
            true
        } else {
            false
        }
    }

    /// The cached answer, or one fetch (one at a time per key), with pauses honoured and set.
    async fn ask<F, Fut>(&self, p: Provider, q: Question, place: &str, fetch: F) -> Result<Answer, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Answer, Failure>>,
    {
        let key: Key = (p, q.clone(), place.to_string());
        let slot = {
            let mut slots = self.slots.lock().map_err(|_| "the live cache is unusable".to_string())?;
            if slots.len() >= MAX_KEYS && !slots.contains_key(&key) {
                // Drop what no one is using and is too old to be served, stale or not.
                slots.retain(|(p, q, _), s| {
                    Arc::strong_count(s) > 1
                        || s.try_lock()
                            .map_or(true, |g| g.as_ref().is_some_and(|x| x.fetched.elapsed() < 2 * ttl(*p, q)))
                });
                if slots.len() >= MAX_KEYS {
                    return Err(format!("{}: too many places asked about at once; try again shortly", p.name()));
                }
            }
            slots.entry(key).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(s) = guard.as_ref() {
            if s.fetched.elapsed() < ttl(p, &q) {
                return Ok(s.answer.clone());
            }
        }
        // A stale answer (up to twice its life) beats none while the provider cannot be asked;
        // the value carries when it was fetched.
        let stale = guard.as_ref().filter(|s| s.fetched.elapsed() < 2 * ttl(p, &q)).map(|s| s.answer.clone());
        let pause_keys = [p.name().to_string(), format!("{}|{:?}|{place}", p.name(), q)];
        if let Some(why) = self.paused(&pause_keys) {
            return stale.ok_or(why);
        }
        if !self.spend(p) {
            let (per_hour, _) = budget_of(p);
            return stale.ok_or_else(|| {
                format!("{}: this server's budget of {per_hour:.0} calls an hour is spent; skipped", p.name())
            });
        }
        match fetch().await {
            Ok(answer) => {
                if let Ok(mut pauses) = self.pauses.lock() {
                    pauses.remove(&pause_keys[0]);
                }
                *guard = Some(Slot { fetched: std::time::Instant::now(), answer: answer.clone() });
                Ok(answer)
            }
            Err(f) => {
                let (key, length) = match f {
                    Failure::Refused { whole_provider: true, .. } => (&pause_keys[0], Some(AUTH_PAUSE)),
                    Failure::Refused { .. } => (&pause_keys[1], Some(AUTH_PAUSE)),
                    Failure::Unavailable(_) => (&pause_keys[0], None),
                    Failure::NoData(_) => (&pause_keys[1], Some(FIRST_PAUSE)),
                };
                let why = format!("{}: {}", p.name(), f.words(self.cfg.timeout));
                tracing::warn!(provider = p.name(), %why, "live grid data not fetched");
                let next = self.pause(key, length, &why);
                stale.ok_or_else(|| {
                    format!(
                        "{why}; skipped, and not asked again for {}",
                        carbon_core::units::duration_s(next.as_secs_f64().round())
                    )
                })
            }
        }
    }

    fn paused(&self, keys: &[String]) -> Option<String> {
        let pauses = self.pauses.lock().ok()?;
        keys.iter().find_map(|k| {
            let p = pauses.get(k)?;
            let left = p.until.checked_duration_since(std::time::Instant::now())?;
            Some(format!(
                "{}; skipped, resting for another {}",
                p.why,
                carbon_core::units::duration_s(left.as_secs().max(1) as f64)
            ))
        })
    }

    /// Pause `key`: for `length`, or doubling from [`FIRST_PAUSE`]. Returns the pause.
    fn pause(&self, key: &str, length: Option<Duration>, why: &str) -> Duration {
        let Ok(mut pauses) = self.pauses.lock() else { return FIRST_PAUSE };
        if pauses.len() >= MAX_PAUSES {
            let now = std::time::Instant::now();
            pauses.retain(|_, p| p.until > now);
            if pauses.len() >= MAX_PAUSES && !pauses.contains_key(key) {
                return FIRST_PAUSE;
            }
        }
        let strikes = pauses.get(key).map_or(0, |p| p.strikes) + 1;
        let d = length.unwrap_or_else(|| (FIRST_PAUSE * 2u32.saturating_pow(strikes - 1).min(64)).min(LONGEST_PAUSE));
        // A little jitter so that replicas do not come back at the same second.
        let jitter = Duration::from_millis(u64::from(std::process::id() % 1000));
        pauses.insert(
            key.to_string(),
            Pause { until: std::time::Instant::now() + d + jitter, why: why.to_string(), strikes },
        );
        d
    }
}

fn ttl(p: Provider, q: &Question) -> Duration {
    match (p, q) {
        (Provider::Uk, _) => Duration::from_secs(1800),
        (Provider::ElectricityMaps, Question::Latest) => Duration::from_secs(600),
        (Provider::ElectricityMaps, _) => Duration::from_secs(3600),
    }
}

/// The area as a provider is asked about it (the cache key).
fn place_key(p: Provider, t: &Target) -> Option<String> {
    match p {
        Provider::Uk => t.uk.map(|a| match a {
            UkArea::National => "national".to_string(),
            UkArea::Region(id) => format!("region {id}"),
        }),
        Provider::ElectricityMaps => t.em.as_ref().map(|e| format!("{e:?}")),
    }
}

fn series(a: Answer) -> Option<Series> {
    match a {
        Answer::Series(s) => Some(s),
        _ => None,
    }
}
