//! Budgets in force: read from the store (`carbon-dash budget set`) and from `budgets.toml` at the
//! logs folder's top, every few seconds, into the [`Book`] the pages and the API read.

use carbon_core::budget::{file, Book, Listed};
use std::path::{Path, PathBuf};

/// How often budgets are read again (a `budget set` shows within this).
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The budgets of `budgets.toml` under `dir` (none when it is not there), or why not, naming
/// the file, line and column.
pub fn from_file(dir: &Path) -> Result<Vec<carbon_core::budget::Budget>, Vec<String>> {
    use std::io::Read as _;
    let path = dir.join(file::FILE);
    let shown = path.display().to_string();
    // A regular file, opened without following a link or waiting on a pipe, checked as opened,
    // and read no further than the limit (it may grow meanwhile).
    let (f, _) = match carbon_core::ingest::open_store(&path) {
        Ok(opened) => opened,
        Err(carbon_core::ingest::NotRead::Gone) => return Ok(Vec::new()),
        Err(carbon_core::ingest::NotRead::Because(why)) => return Err(vec![format!("{shown}: {why}")]),
    };
    let mut bytes = Vec::new();
    f.take(file::MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| vec![format!("{shown}: cannot read: {e}")])?;
    if bytes.len() > file::MAX_BYTES {
        return Err(vec![format!("{shown}: over {} bytes", file::MAX_BYTES)]);
    }
    let text = String::from_utf8(bytes).map_err(|_| vec![format!("{shown}: not UTF-8 text")])?;
    // Pages and webhooks name the file, not where the server keeps it.
    file::parse(&text, file::FILE).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| format!("{shown} line {}, column {}: {}", p.line, p.column.unwrap_or(1), p.reason))
            .collect()
    })
}

/// Everything in force now: the store's, then the file's (a file's budget for the same scope,
/// quantity and period as the store's is left out, and said so).
pub async fn read(store: Option<&carbon_store::Store>, dir: Option<&Path>) -> Listed {
    let mut listed = Listed::default();
    if let Some(store) = store {
        match store.budgets().await {
            Ok(b) => listed.budgets = b,
            Err(e) => listed.problems.push(format!("the store's budgets: {e}")),
        }
        // The alerts of every webhook, once per threshold (the first to be raised).
        if let Ok(sent) = store.alerts(500).await {
            for a in sent {
                let note = listed.alerts.iter_mut().find(|n: &&mut carbon_core::budget::AlertNote| {
                    n.budget_key == a.budget_key && n.period_start == a.period_start && n.threshold == a.threshold
                });
                let delivered = a.sent_at.is_some();
                match note {
                    Some(n) => {
                        n.delivered &= delivered;
                        if !delivered {
                            n.error = n.error.take().or(a.last_error);
                        }
                    }
                    None => listed.alerts.push(carbon_core::budget::AlertNote {
                        budget_key: a.budget_key,
                        period_start: a.period_start,
                        threshold: a.threshold,
                        crossed: a.crossed,
                        at: carbon_core::time::from_unix_micros(a.claimed_at)
                            .map(|t| carbon_core::time::iso(&t))
                            .unwrap_or_default(),
                        delivered,
                        error: if delivered { None } else { a.last_error },
                    }),
                }
            }
        }
    }
    if let Some(dir) = dir {
        match from_file(dir) {
            Ok(budgets) => {
                for b in budgets {
                    let same = |o: &carbon_core::budget::Budget| {
                        o.scope == b.scope && o.quantity == b.quantity && o.period == b.period
                    };
                    if listed.budgets.iter().any(same) {
                        listed.problems.push(format!(
                            "{}: the {} budget set in the store is the one in force",
                            b.source,
                            b.scope.label()
                        ));
                    } else {
                        listed.budgets.push(b);
                    }
                }
            }
            Err(problems) => listed.problems.extend(problems),
        }
    }
    listed
}

/// Keeps `book` up to date, every [`EVERY`], and sends the alerts due (with `alerts`) beside it:
/// a slow webhook never holds the budgets back, and one check runs at a time.
pub fn spawn(
    store: Option<carbon_store::Store>,
    dir: Option<PathBuf>,
    book: Book,
    catalog: carbon_core::catalog::SharedCatalog,
    alerts: Option<Alerts>,
) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        let mut checking: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            every.tick().await;
            let listed = read(store.as_ref(), dir.as_deref()).await;
            let known = book.get().problems;
            for p in listed.problems.iter().filter(|p| !known.contains(p)) {
                tracing::warn!("budgets: {p}");
            }
            book.set(listed.clone());
            let Some(a) = &alerts else { continue };
            if checking.as_ref().is_some_and(|c| !c.is_finished()) {
                continue;
            }
            // Its own task: a fault in it is logged, and the next round runs.
            if let Some(Some(Err(e))) = checking.take().map(futures_util::FutureExt::now_or_never) {
                tracing::error!("budget alerts: the last check failed: {e}");
            }
            let (a, catalog) = (a.clone(), catalog.current());
            checking = Some(tokio::spawn(async move {
                let now = carbon_core::budget::logs_now(catalog.runs(carbon_core::model::DatasetMode::Latest));
                a.check(&listed, &catalog, now, now_us()).await;
            }));
        }
    });
}

/// Where alerts go: webhooks (`--alert-webhook`), each posted a JSON body whose `text` Slack and
/// Teams show as it is.
#[derive(Clone)]
pub struct Alerts {
    pub store: carbon_store::Store,
    pub hooks: Vec<String>,
    pub http: reqwest::Client,
    /// Where people reach the server, for a link to the team page.
    pub public_url: Option<String>,
}

/// How long after an attempt began the next may: 30 s (an attempt in flight holds it that
/// long: the webhook's 10 s and more), doubling after each failure, an hour at most.
pub fn backoff(attempts: i64) -> std::time::Duration {
    std::time::Duration::from_secs((30u64 << attempts.clamp(1, 20).saturating_sub(1) as u32).min(3600))
}

/// Microseconds since 1970, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// A webhook's name in the store: its URL's hash (the URL may hold a secret).
fn target(hook: &str) -> String {
    carbon_store::people::hash(hook)[..16].to_string()
}

/// What an alert says, as JSON with a `text` line.
fn body(s: &carbon_core::budget::Standing, c: &carbon_core::budget::Crossing, link: Option<String>) -> String {
    use carbon_core::budget::{Crossed, Quantity};
    let fmt = |v: f64| match s.budget.quantity {
        Quantity::Co2Kg => carbon_core::units::co2_kg(v),
        Quantity::EnergyKwh => carbon_core::units::energy_kwh(v),
    };
    let what = match c.by {
        Crossed::Spent => format!("{} % spent", c.threshold),
        Crossed::Projected => format!("{} % projected by {}", c.threshold, s.period_end),
    };
    let text = format!(
        "Budget of {} ({} per {} from {}): {what}. Spent {} ({:.0} %, range {} – {}); projected {} ({:.0} %){}.{}",
        s.budget.scope.label(),
        fmt(s.budget.amount),
        s.budget.period.name(),
        s.period_start,
        fmt(s.spent.value),
        s.percent_spent,
        fmt(s.spent.low),
        fmt(s.spent.high),
        fmt(s.projected.value),
        s.percent_projected,
        s.runs_out_on.as_ref().map(|d| format!("; runs out on {d} at the last days' rate")).unwrap_or_default(),
        link.as_ref().map(|l| format!(" {l}")).unwrap_or_default()
    );
    serde_json::json!({
        "text": text,
        "budget": s.budget,
        "threshold": c.threshold,
        "crossed": c.by,
        "period_start": s.period_start,
        "period_end": s.period_end,
        "spent": s.spent,
        "projected": s.projected,
        "runs_out_on": s.runs_out_on,
        "link": link,
    })
    .to_string()
}

impl Alerts {
    /// Claims an alert for each threshold newly crossed (once per budget, period, threshold and
    /// webhook, across restarts and replicas), then delivers what is due.
    /// `now`: the logs' wall clock; `now_us`: the clock alerts' attempts are timed by.
    pub async fn check(
        &self,
        listed: &Listed,
        catalog: &carbon_core::catalog::Catalog,
        now: carbon_core::time::Timestamp,
        now_us: i64,
    ) {
        let runs = catalog.runs(carbon_core::model::DatasetMode::Latest);
        for b in &listed.budgets {
            let s = carbon_core::budget::standing(b, runs, now);
            for c in &s.crossed {
                let link = match (&self.public_url, &b.scope) {
                    (Some(u), carbon_core::budget::Scope::Team(t)) => {
                        Some(format!("{}/teams/{}", u.trim_end_matches('/'), urlencode(t)))
                    }
                    _ => None,
                };
                let text = body(&s, c, link);
                for hook in &self.hooks {
                    let p = carbon_store::budgets::Pending {
                        budget_key: b.key(),
                        period_start: s.period_start.clone(),
                        threshold: c.threshold,
                        target: target(hook),
                        crossed: serde_json::to_value(c.by)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default(),
                        attempts: 0,
                        attempted_at: 0,
                        body: text.clone(),
                    };
                    match self.store.claim_alert(&p).await {
                        Ok(true) => {
                            tracing::info!(budget = %p.budget_key, threshold = p.threshold, "budget alert: {}", p.crossed)
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!("budget alert not claimed: {e}"),
                    }
                }
            }
        }
        self.deliver(now_us).await;
    }

    /// Posts each alert that is due (never attempted, or its back-off waited out), one process
    /// at a time per alert.
    pub async fn deliver(&self, now_us: i64) {
        let targets: Vec<String> = self.hooks.iter().map(|h| target(h)).collect();
        let pending = match self.store.undelivered_alerts(&targets).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("budget alerts: cannot read those to send: {e}");
                return;
            }
        };
        for p in pending {
            let Some(hook) = self.hooks.iter().find(|h| target(h) == p.target) else { continue };
            let due = p.attempted_at == 0 || p.attempted_at + backoff(p.attempts).as_micros() as i64 <= now_us;
            if !due {
                continue;
            }
            let Ok(Some(lease)) = self.store.lease_alert(&p, now_us).await else { continue };
            let sent = self
                .http
                .post(hook)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(p.body.clone())
                .send()
                .await;
            // Never the URL: it may hold the webhook's secret.
            let error = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("the webhook answered {}", r.status())),
                Err(e) => Some(format!("the webhook did not answer: {}", e.without_url())),
            };
            if let Some(e) = &error {
                tracing::warn!(budget = %p.budget_key, threshold = p.threshold, attempt = p.attempts + 1, "budget alert not delivered: {e}");
            }
            if let Err(e) = self.store.alert_attempt(&p, &lease, error.as_deref()).await {
                tracing::warn!("budget alert: the attempt is not recorded: {e}");
            }
        }
    }
}

/// `s` as a URL's path segment or query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
