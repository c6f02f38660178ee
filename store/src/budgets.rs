//! Carbon budgets set with `carbon-dash budget set`, and the alerts sent about them: each alert is
//! claimed by one row (budget, period, threshold, what crossed it) before it is sent, so a restart
//! or a second replica never sends it twice; one not yet delivered is retried.

use super::{now, refused, Result, Store};
use carbon_core::budget::{Budget, Period, Quantity, Scope};
use sqlx::Row;

/// Attempts at delivering an alert before it is given up (with back-off doubling to an hour:
/// about 14 hours).
pub const MAX_ATTEMPTS: i64 = 20;

/// The key a budget's alerts are kept under.
pub fn key(b: &Budget) -> String {
    b.key()
}

fn scope_parts(s: &Scope) -> (&'static str, &str) {
    match s {
        Scope::Team(t) => ("team", t),
        Scope::Project(p) => ("project", p),
    }
}

pub fn quantity_name(q: Quantity) -> &'static str {
    match q {
        Quantity::Co2Kg => "co2_kg",
        Quantity::EnergyKwh => "energy_kwh",
    }
}

pub fn period_name(p: Period) -> &'static str {
    p.name()
}

/// An alert claimed and not yet delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub budget_key: String,
    pub period_start: String,
    pub threshold: f64,
    /// The webhook's URL hash.
    pub target: String,
    pub crossed: String,
    pub attempts: i64,
    /// When the last attempt began (µs; 0: none yet).
    pub attempted_at: i64,
    pub body: String,
}

/// An alert as the team page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub budget_key: String,
    pub period_start: String,
    pub threshold: f64,
    pub crossed: String,
    pub claimed_at: i64,
    pub sent_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl Store {
    /// Sets (or replaces) the budget of its scope, quantity and period.
    pub async fn set_budget(&self, b: &Budget) -> Result<()> {
        let (kind, name) = scope_parts(&b.scope);
        super::check_name(kind, name)?;
        if !(b.amount.is_finite() && b.amount > 0.0) {
            return refused(format!("a budget of {}: give an amount above 0", b.amount));
        }
        let thresholds = b.thresholds.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",");
        let (q, p) = (quantity_name(b.quantity), period_name(b.period));
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM budgets WHERE scope_kind = $1 AND scope_name = $2 AND quantity = $3 AND period = $4")
            .bind(kind)
            .bind(name)
            .bind(q)
            .bind(p)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO budgets (scope_kind, scope_name, quantity, period, amount, thresholds, set_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(kind)
        .bind(name)
        .bind(q)
        .bind(p)
        .bind(b.amount)
        .bind(thresholds)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn budgets(&self) -> Result<Vec<Budget>> {
        let rows = sqlx::query(
            "SELECT scope_kind, scope_name, quantity, period, amount, thresholds FROM budgets \
             ORDER BY scope_kind, scope_name, quantity, period",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let (kind, name): (String, String) = (r.try_get("scope_kind")?, r.try_get("scope_name")?);
            let scope = if kind == "team" { Scope::Team(name) } else { Scope::Project(name) };
            let quantity =
                if r.try_get::<String, _>("quantity")? == "energy_kwh" { Quantity::EnergyKwh } else { Quantity::Co2Kg };
            let period = Period::parse(&r.try_get::<String, _>("period")?).unwrap_or(Period::Month);
            let thresholds: String = r.try_get("thresholds")?;
            out.push(Budget {
                scope,
                quantity,
                amount: r.try_get("amount")?,
                period,
                thresholds: thresholds.split(',').filter_map(|t| t.trim().parse().ok()).collect(),
                source: "database".into(),
            });
        }
        Ok(out)
    }

    /// Removes the budgets of `scope` (of one period, when given): how many.
    pub async fn remove_budget(&self, scope: &Scope, period: Option<Period>) -> Result<u64> {
        let (kind, name) = scope_parts(scope);
        let n = match period {
            Some(p) => {
                sqlx::query("DELETE FROM budgets WHERE scope_kind = $1 AND scope_name = $2 AND period = $3")
                    .bind(kind)
                    .bind(name)
                    .bind(period_name(p))
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM budgets WHERE scope_kind = $1 AND scope_name = $2")
                    .bind(kind)
                    .bind(name)
                    .execute(&self.pool)
                    .await?
            }
        }
        .rows_affected();
        if n == 0 {
            return refused(format!("no budget of {} (see: carbon-dash budget list)", scope.label()));
        }
        Ok(n)
    }

    /// Claims an alert for one webhook: true for the one caller (of every process on this
    /// store) that is to send it, false when it was claimed before.
    pub async fn claim_alert(&self, p: &Pending) -> Result<bool> {
        Ok(sqlx::query(
            "INSERT INTO alerts (budget_key, period_start, threshold, target, crossed, claimed_at, attempted_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&p.budget_key)
        .bind(&p.period_start)
        .bind(p.threshold)
        .bind(&p.target)
        .bind(&p.crossed)
        .bind(now())
        .bind(&p.body)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Alerts not delivered yet to any of `targets`, oldest first; one tried [`MAX_ATTEMPTS`]
    /// times is given up (its last error stays on the page).
    pub async fn undelivered_alerts(&self, targets: &[String]) -> Result<Vec<Pending>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let list = (0..targets.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT budget_key, period_start, threshold, target, crossed, attempts, attempted_at, body FROM alerts \
             WHERE sent_at IS NULL AND attempts < $1 AND target IN ({list}) ORDER BY claimed_at LIMIT 100"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(MAX_ATTEMPTS);
        for t in targets {
            q = q.bind(t);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Pending {
                    budget_key: r.try_get("budget_key")?,
                    period_start: r.try_get("period_start")?,
                    threshold: r.try_get("threshold")?,
                    target: r.try_get("target")?,
                    crossed: r.try_get("crossed")?,
                    attempts: r.try_get("attempts")?,
                    attempted_at: r.try_get("attempted_at")?,
                    body: r.try_get("body")?,
                })
            })
            .collect()
    }

    /// Takes the next attempt at `p` (as read), starting at `at` (µs): the lease for the one
    /// process that is to make it (others' retries wait out its start), `None` for the others.
    pub async fn lease_alert(&self, p: &Pending, at: i64) -> Result<Option<String>> {
        let lease = super::people::secret("")?;
        let taken = sqlx::query(
            "UPDATE alerts SET attempted_at = $1, lease = $2 WHERE budget_key = $3 AND period_start = $4 \
             AND threshold = $5 AND target = $6 AND sent_at IS NULL AND attempted_at = $7",
        )
        .bind(at.max(p.attempted_at + 1))
        .bind(&lease)
        .bind(&p.budget_key)
        .bind(&p.period_start)
        .bind(p.threshold)
        .bind(&p.target)
        .bind(p.attempted_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok((taken == 1).then_some(lease))
    }

    /// Records the attempt made under `lease`: delivered, or why not. An attempt whose lease
    /// another process took since (it ran too long) records nothing.
    pub async fn alert_attempt(&self, p: &Pending, lease: &str, error: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE alerts SET attempts = attempts + 1, last_error = $1, sent_at = $2 \
             WHERE budget_key = $3 AND period_start = $4 AND threshold = $5 AND target = $6 \
             AND lease = $7 AND sent_at IS NULL",
        )
        .bind(error)
        .bind(error.is_none().then(now))
        .bind(&p.budget_key)
        .bind(&p.period_start)
        .bind(p.threshold)
        .bind(&p.target)
        .bind(lease)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The alerts of the newest periods, newest first (at most `limit`).
    pub async fn alerts(&self, limit: i64) -> Result<Vec<Sent>> {
        let rows = sqlx::query(
            "SELECT budget_key, period_start, threshold, crossed, claimed_at, sent_at, attempts, last_error \
             FROM alerts ORDER BY claimed_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Sent {
                    budget_key: r.try_get("budget_key")?,
                    period_start: r.try_get("period_start")?,
                    threshold: r.try_get("threshold")?,
                    crossed: r.try_get("crossed")?,
                    claimed_at: r.try_get("claimed_at")?,
                    sent_at: r.try_get("sent_at")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }
}
