//! Who may see what: team members kept here (beside the teams a person's groups name), read
//! tokens for scripts, the sessions of people signed in with OpenID Connect, and sign-ins under
//! way. Secrets (tokens, session cookies, sign-in states) are kept only as their hash.

use super::{lock, now, refused, token_hash, Result, Store, StoreError};
use sqlx::Row;
use std::time::Instant;

/// How long a sign-in may take from leaving for the identity provider to coming back.
pub const SIGN_IN_TTL_S: i64 = 600;
/// Sign-ins under way at once, at most (a flood of sign-in starts fills no disk).
pub const MAX_SIGN_INS: i64 = 10_000;

/// A read token as listed: never the token, which is shown once.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadTokenInfo {
    pub prefix: String,
    /// `None`: every team.
    pub team: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// What a read token or a session may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Team(String),
}

/// A sign-in under way, as its callback takes it back.
#[derive(Debug, Clone, PartialEq)]
pub struct SignIn {
    pub browser_hash: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
}

/// A signed-in person, as their session keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub person: String,
    /// The groups the identity provider named at sign-in.
    pub groups: Vec<String>,
    pub expires_at: i64,
}

/// 32 random bytes as hex, after `prefix`.
pub fn secret(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Refused(format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// The hash a secret is kept as (see `token_hash`).
pub fn hash(secret: &str) -> String {
    token_hash(secret)
}

/// E-mail addresses are matched without regard to case (as providers spell them); other names
/// (an OpenID subject) exactly.
pub fn person_key(person: &str) -> String {
    let p = person.trim();
    if p.contains('@') {
        p.to_lowercase()
    } else {
        p.to_string()
    }
}

fn check_team(team: &str) -> Result<()> {
    super::check_name("team", team)
}

fn check_person(person: &str) -> Result<()> {
    if person.trim().is_empty() || person.len() > 320 || person.chars().any(char::is_control) {
        return refused(format!("user '{person}': give the e-mail address (or subject) people sign in with"));
    }
    Ok(())
}

impl Store {
    // ---- members ----

    /// Puts `person` in `team`; false when they were in it already.
    pub async fn add_member(&self, team: &str, person: &str) -> Result<bool> {
        check_team(team)?;
        check_person(person)?;
        let key = person_key(person);
        let there = sqlx::query("SELECT 1 AS one FROM members WHERE team = $1 AND person = $2")
            .bind(team)
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?;
        if there.is_some() {
            return Ok(false);
        }
        sqlx::query("INSERT INTO members (team, person, added_at) VALUES ($1, $2, $3)")
            .bind(team)
            .bind(&key)
            .bind(now())
            .execute(&self.pool)
            .await?;
        lock(&self.people).clear();
        Ok(true)
    }

    /// Takes `person` out of `team`; how many were taken out (0 or 1).
    pub async fn remove_member(&self, team: &str, person: &str) -> Result<u64> {
        let n = sqlx::query("DELETE FROM members WHERE team = $1 AND person = $2")
            .bind(team)
            .bind(person_key(person))
            .execute(&self.pool)
            .await?
            .rows_affected();
        lock(&self.people).clear();
        if n == 0 {
            return refused(format!("'{person}' is not a member of team '{team}' (see: carbon-dash member list)"));
        }
        Ok(n)
    }

    /// Members as (team, person, added at), of one team or all.
    pub async fn members(&self, team: Option<&str>) -> Result<Vec<(String, String, i64)>> {
        let rows = match team {
            Some(t) => {
                sqlx::query("SELECT team, person, added_at FROM members WHERE team = $1 ORDER BY team, person")
                    .bind(t)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT team, person, added_at FROM members ORDER BY team, person")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(|r| Ok((r.try_get("team")?, r.try_get("person")?, r.try_get("added_at")?))).collect()
    }

    /// The teams `person` is a member of here, remembered for [`super::TOKEN_TTL`] (a page's
    /// every request asks; a member added or removed by this process counts at once).
    pub async fn teams_of(&self, person: &str) -> Result<Vec<String>> {
        let key = person_key(person);
        if let Some((teams, at)) = lock(&self.people).get(&key) {
            if at.elapsed() < super::TOKEN_TTL {
                return Ok(teams.clone());
            }
        }
        let rows = sqlx::query("SELECT team FROM members WHERE person = $1 ORDER BY team")
            .bind(&key)
            .fetch_all(&self.pool)
            .await?;
        let teams: Vec<String> = rows.iter().map(|r| r.try_get("team")).collect::<Result<_, _>>()?;
        let mut people = lock(&self.people);
        if people.len() >= 10_000 {
            people.retain(|_, (_, at)| at.elapsed() < super::TOKEN_TTL);
        }
        people.insert(key, (teams.clone(), Instant::now()));
        Ok(teams)
    }

    // ---- read tokens ----

    /// A new read token for `team` (`None`: every team), returned once and kept hashed.
    pub async fn add_read_token(&self, team: Option<&str>) -> Result<String> {
        if let Some(t) = team {
            check_team(t)?;
        }
        let token = secret("cdr_")?;
        sqlx::query("INSERT INTO read_tokens (hash, prefix, team, created_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash(&token))
            .bind(&token[..12])
            .bind(team)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(token)
    }

    pub async fn read_tokens(&self) -> Result<Vec<ReadTokenInfo>> {
        let rows =
            sqlx::query("SELECT prefix, team, created_at, revoked_at FROM read_tokens ORDER BY created_at, prefix")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(ReadTokenInfo {
                    prefix: r.try_get("prefix")?,
                    team: r.try_get("team")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes the read tokens starting with `prefix` (12 characters at least, or the whole token).
    pub async fn revoke_read_token(&self, prefix: &str) -> Result<u64> {
        let n = self.revoke_by_prefix("read_tokens", None, prefix, "`token list --read`").await?;
        if n == 0 {
            return refused(format!("no live read token starts with '{prefix}'"));
        }
        lock(&self.read_scopes).clear();
        Ok(n)
    }

    /// What a live read token may see (`None`: no such token, or revoked), remembered like a
    /// tracker's token (see [`Store::token_project`]).
    pub async fn read_token_scope(&self, token: &str) -> Result<Option<Scope>> {
        let h = token_hash(token);
        if let Some((scope, at)) = lock(&self.read_scopes).get(&h) {
            if at.elapsed() < super::TOKEN_TTL {
                return Ok(Some(scope.clone()));
            }
        }
        let row = sqlx::query("SELECT team FROM read_tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(&h)
            .fetch_optional(&self.pool)
            .await?;
        let scope = match row {
            Some(r) => Some(r.try_get::<Option<String>, _>("team")?.map(Scope::Team).unwrap_or(Scope::All)),
            None => None,
        };
        let mut scopes = lock(&self.read_scopes);
        match &scope {
            Some(s) => {
                if scopes.len() >= 10_000 {
                    scopes.retain(|_, (_, at)| at.elapsed() < super::TOKEN_TTL);
                }
                scopes.insert(h, (s.clone(), Instant::now()));
            }
            None => {
                scopes.remove(&h);
            }
        }
        Ok(scope)
    }

    // ---- sign-ins and sessions ----

    /// Keeps a sign-in under way until its callback (or [`SIGN_IN_TTL_S`]). Refused while
    /// [`MAX_SIGN_INS`] are under way.
    pub async fn add_sign_in(&self, state: &str, s: &SignIn) -> Result<()> {
        let cutoff = now() - SIGN_IN_TTL_S * 1_000_000;
        sqlx::query("DELETE FROM sign_ins WHERE created_at < $1").bind(cutoff).execute(&self.pool).await?;
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM sign_ins").fetch_one(&self.pool).await?.try_get("n")?;
        if n >= MAX_SIGN_INS {
            return Err(StoreError::Busy);
        }
        sqlx::query(
            "INSERT INTO sign_ins (state_hash, browser_hash, nonce, verifier, next, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash(state))
        .bind(&s.browser_hash)
        .bind(&s.nonce)
        .bind(&s.verifier)
        .bind(&s.next)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the sign-in `state` names, begun by the browser whose cookie hashes to
    /// `browser_hash`, once: a second callback with the same state finds none, and a state
    /// someone learned cannot be spent from another browser.
    pub async fn take_sign_in(&self, state: &str, browser_hash: &str) -> Result<Option<SignIn>> {
        let h = token_hash(state);
        let row = sqlx::query(
            "SELECT nonce, verifier, next, created_at FROM sign_ins WHERE state_hash = $1 AND browser_hash = $2",
        )
        .bind(&h)
        .bind(browser_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let taken = sqlx::query("DELETE FROM sign_ins WHERE state_hash = $1 AND browser_hash = $2")
            .bind(&h)
            .bind(browser_hash)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let created: i64 = r.try_get("created_at")?;
        // Another request took it meanwhile, or it is too old.
        if taken == 0 || created < now() - SIGN_IN_TTL_S * 1_000_000 {
            return Ok(None);
        }
        Ok(Some(SignIn {
            browser_hash: browser_hash.to_string(),
            nonce: r.try_get("nonce")?,
            verifier: r.try_get("verifier")?,
            next: r.try_get("next")?,
        }))
    }

    /// A new session for `person` in `groups` until `expires_at` (µs since 1970): its cookie
    /// value, returned once and kept hashed. Expired sessions are dropped on the way.
    pub async fn add_session(&self, person: &str, groups: &[String], expires_at: i64) -> Result<String> {
        check_person(person)?;
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now()).execute(&self.pool).await?;
        let cookie = secret("")?;
        let list = serde_json::to_string(groups).map_err(|e| StoreError::Refused(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sessions (hash, person, team_list, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash(&cookie))
        .bind(person)
        .bind(list)
        .bind(now())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(cookie)
    }

    /// The person a session cookie names, unless it expired or was ended.
    pub async fn session(&self, cookie: &str) -> Result<Option<Session>> {
        let row = sqlx::query("SELECT person, team_list, expires_at FROM sessions WHERE hash = $1 AND expires_at > $2")
            .bind(token_hash(cookie))
            .bind(now())
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let list: String = r.try_get("team_list")?;
        Ok(Some(Session {
            person: r.try_get("person")?,
            groups: serde_json::from_str(&list).unwrap_or_default(),
            expires_at: r.try_get("expires_at")?,
        }))
    }

    /// Ends every session of `person` (someone who left, or lost a group): how many.
    pub async fn end_sessions_of(&self, person: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE person = $1")
            .bind(person_key(person))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Signed-in people: (person, sessions, the latest expiry).
    pub async fn sessions(&self) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT person, COUNT(*) AS n, MAX(expires_at) AS until FROM sessions WHERE expires_at > $1 \
             GROUP BY person ORDER BY person",
        )
        .bind(now())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("person")?, r.try_get("n")?, r.try_get("until")?))).collect()
    }

    /// Ends a session (sign-out); true when there was one.
    pub async fn end_session(&self, cookie: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(token_hash(cookie))
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }
}
