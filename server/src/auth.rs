//! Who may see what. People sign in with the organisation's OpenID Connect provider
//! (`--auth oidc`, see [`crate::oidc`]) or through a trusted reverse proxy (`--auth proxy`:
//! oauth2-proxy, nginx `auth_request`, a company's SSO gateway, which names them and their groups
//! in headers this server believes only from the proxy's addresses); scripts read with a read
//! token (`Authorization: Bearer cdr_…`). A person sees the runs of the teams their groups name
//! and of those the store makes them a member of (all of them in `--admin-group`); every page and
//! JSON answer is computed over those runs alone (see
//! [`carbon_core::catalog::Catalog::visible_to`]), so a run they may not see answers as one that
//! does not exist. Each sign-in, sign-out, refusal and token use is one `audit` log line.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use carbon_core::catalog::SharedCatalog;
use carbon_store::people::Scope;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// How people are signed in, and where members, read tokens and sessions are kept.
#[derive(Clone, Default)]
pub struct Auth {
    pub mode: Mode,
    /// Members of this group see every team.
    pub admin_group: Option<String>,
    /// The store (`--db`): members, read tokens, sessions. Always there when `mode` signs in.
    pub store: Option<carbon_store::Store>,
}

#[derive(Clone, Default)]
pub enum Mode {
    /// Nobody is: everyone sees everything (a server on loopback, or `--public`).
    #[default]
    Open,
    Proxy(Proxy),
    Oidc(Arc<crate::oidc::Oidc>),
}

impl Auth {
    /// People sign in to see anything.
    pub fn signs_in(&self) -> bool {
        !matches!(self.mode, Mode::Open)
    }

    pub fn oidc(&self) -> Option<&crate::oidc::Oidc> {
        match &self.mode {
            Mode::Oidc(o) => Some(o),
            _ => None,
        }
    }

    /// What `person`, in `groups`, may see: every team for the admin group, else the teams
    /// their groups name and those the store makes them a member of.
    pub async fn visible(&self, person: &str, groups: &BTreeSet<String>) -> Result<Visible, String> {
        if self.admin_group.as_ref().is_some_and(|a| groups.contains(a)) {
            return Ok(Visible::All);
        }
        let mut teams = groups.clone();
        if let Some(store) = &self.store {
            teams.extend(store.teams_of(person).await.map_err(|e| format!("members: {e}"))?);
        }
        Ok(Visible::Teams(teams))
    }
}

/// A trusted proxy's settings.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub user_header: HeaderName,
    pub groups_header: HeaderName,
    pub trusted: Vec<ipnet::IpNet>,
}

/// What a request may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Visible {
    All,
    Teams(BTreeSet<String>),
}

/// How a request was signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Proxy,
    /// An OpenID Connect session (the person may sign out here).
    Session,
    /// A read token.
    Token,
}

/// The person a request comes from, put in its extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Who {
    pub user: String,
    pub visible: Visible,
    pub how: How,
}

/// Longest user name or group list taken from a header.
const MAX_HEADER: usize = 4096;

/// Paths anyone may ask for: the health check, the browser bundle and styles, and signing in.
/// The collection API's posts keep their own write tokens.
fn open_path(method: &Method, path: &str) -> bool {
    // Only plain paths: no climbing out of /pkg/, no doubled or encoded separators.
    if path.contains("..") || path.contains("//") || path.contains('%') || path.contains('\\') {
        return false;
    }
    path == "/healthz"
        || path.starts_with("/pkg/")
        || path == "/favicon.ico"
        || path == "/favicon.svg"
        || (method == Method::GET && ["/signin", "/signin/start", "/signin/callback"].contains(&path))
        || (method == Method::POST && path == "/signout")
        || (method == Method::POST && ["/runs", "/emissions", "/api/runs", "/api/emissions"].contains(&path))
}

/// The one value of `name`, when there is exactly one and it is printable text.
fn single(headers: &HeaderMap, name: &HeaderName) -> Result<Option<String>, &'static str> {
    let mut all = headers.get_all(name).iter();
    let Some(first) = all.next() else { return Ok(None) };
    if all.next().is_some() {
        return Err("the header is given twice");
    }
    let text = first.to_str().map_err(|_| "the header is not plain text")?;
    if text.len() > MAX_HEADER || text.chars().any(|c| c.is_control()) {
        return Err("the header is too long or holds control characters");
    }
    Ok(Some(text.trim().to_string()))
}

/// Groups as proxies write them: separated by commas or spaces.
pub fn groups(value: &str) -> BTreeSet<String> {
    value.split([',', ' ', '\t']).map(str::trim).filter(|g| !g.is_empty()).map(str::to_string).collect()
}

impl Proxy {
    /// The person a request from `peer` with `headers` is, and their groups, or why it is refused.
    pub fn who(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<(String, BTreeSet<String>), String> {
        let peer = peer.ok_or("no client address")?;
        if !self.trusted.iter().any(|n| n.contains(&peer)) {
            return Err(format!("{peer} is not a trusted proxy (--auth-proxy-trusted)"));
        }
        let user = single(headers, &self.user_header)
            .map_err(|why| format!("{}: {why}", self.user_header))?
            .filter(|u| !u.is_empty())
            .ok_or_else(|| format!("no {} header: nobody is signed in", self.user_header))?;
        let groups =
            match single(headers, &self.groups_header).map_err(|why| format!("{}: {why}", self.groups_header))? {
                Some(v) => groups(&v),
                None => BTreeSet::new(),
            };
        Ok((user, groups))
    }
}

/// The value of cookie `name` in `headers`, if it is `digits` hex digits (a secret this server
/// made).
pub fn hex_cookie(headers: &HeaderMap, name: &str, digits: usize) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == digits && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The value of cookie `name` in `headers`, if it is a 64-hex-digit secret.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    hex_cookie(headers, name, 64)
}

/// The read token a request carries (`Authorization: Bearer cdr_…`): `Ok(None)` without one.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    let Some(value) = single(headers, &header::AUTHORIZATION)? else { return Ok(None) };
    let Some((scheme, token)) = value.split_once(' ') else { return Err("the Authorization header is not Bearer …") };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("the Authorization header is not Bearer …");
    }
    let token = token.trim();
    if !(token.starts_with("cdr_") && token.len() == 68 && token[4..].bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err("not a read token (carbon-dash token add --read)");
    }
    Ok(Some(token.to_string()))
}

/// Why a request is not signed in.
enum Refused {
    /// Its credentials are missing, wrong, revoked or expired (401).
    Denied(String),
    /// The store did not answer: nothing can be said of the request (503).
    Unavailable(String),
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused::Denied(why)
    }
}

/// Who a request is, `Ok(None)` for nobody, or why it is refused.
async fn identify(auth: &Auth, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<Option<Who>, Refused> {
    let store = auth.store.as_ref().ok_or_else(|| Refused::Unavailable("no store for sign-in".into()))?;
    let unavailable = |what: &str, e: carbon_store::StoreError| Refused::Unavailable(format!("{what}: {e}"));
    if let Some(token) = bearer(headers).map_err(|e| Refused::Denied(e.to_string()))? {
        let scope = store.read_token_scope(&token).await.map_err(|e| unavailable("read tokens", e))?;
        let visible = match scope.ok_or_else(|| Refused::Denied("an unknown or revoked read token".into()))? {
            Scope::All => Visible::All,
            Scope::Team(t) => Visible::Teams([t].into()),
        };
        return Ok(Some(Who { user: format!("token {}…", &token[..12]), visible, how: How::Token }));
    }
    let (user, groups, how) = match &auth.mode {
        Mode::Open => return Ok(None),
        Mode::Proxy(proxy) => {
            let (user, groups) = proxy.who(peer, headers)?;
            (user, groups, How::Proxy)
        }
        Mode::Oidc(_) => {
            let Some(c) = cookie(headers, crate::oidc::SESSION_COOKIE) else { return Ok(None) };
            let Some(session) = store.session(&c).await.map_err(|e| unavailable("sessions", e))? else {
                return Err(Refused::Denied("the session expired or was ended: sign in again".into()));
            };
            (session.person, session.groups.into_iter().collect(), How::Session)
        }
    };
    let visible = auth.visible(&user, &groups).await.map_err(Refused::Unavailable)?;
    Ok(Some(Who { user, visible, how }))
}

/// Signs each request in (see the module's comment). Refused with 401 when it cannot be, but
/// for the open paths; a person's browser asking for a page is sent to sign in.
pub async fn authenticate(State(s): State<crate::AppState>, mut req: Request, next: Next) -> Response {
    if !s.auth.signs_in() {
        return next.run(req).await;
    }
    // The router under a base path sees paths without it already.
    let path = req.uri().path().to_string();
    let peer = req.extensions().get::<crate::conn::Client>().map(|c| c.0.to_canonical());
    let refusal = match identify(&s.auth, req.headers(), peer).await {
        Ok(Some(who)) => {
            if who.how == How::Token {
                tracing::info!(target: "audit", who = %who.user, route = %path, method = %req.method(), outcome = "token");
            }
            req.extensions_mut().insert(who);
            let mut res = next.run(req).await;
            // One person's answer: no shared cache on the way keeps it for another.
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            return res;
        }
        Ok(None) => "nobody is signed in".to_string(),
        Err(Refused::Denied(why)) => why,
        Err(Refused::Unavailable(why)) => {
            tracing::error!(route = %path, "sign-in cannot be checked: {why}");
            if open_path(req.method(), &path) {
                return next.run(req).await;
            }
            let mut res = (StatusCode::SERVICE_UNAVAILABLE, "sign-in cannot be checked just now: try again shortly\n")
                .into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return res;
        }
    };
    if open_path(req.method(), &path) {
        return next.run(req).await;
    }
    tracing::warn!(target: "audit", route = %path, method = %req.method(), outcome = "refused", reason = %refusal);
    // A browser asking for a page signs in and comes back.
    if let Some(oidc) = s.auth.oidc() {
        let html =
            req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
        if req.method() == Method::GET && html && !path.starts_with("/api/") {
            let next = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            return oidc.to_sign_in(&s.base_path, next);
        }
    }
    let hint = match s.auth.oidc() {
        Some(_) => format!("sign in at {}/signin, or send a read token as Authorization: Bearer …", s.base_path),
        None => {
            "this server shows runs to people signed in (scripts: a read token, sent as Authorization: Bearer …)".into()
        }
    };
    let mut res = (StatusCode::UNAUTHORIZED, format!("sign-in required: {hint}\n")).into_response();
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

/// Catalogs as each set of teams sees them, made on first use and kept while the logs do not
/// change.
#[derive(Default, Clone)]
pub struct Scoped(Arc<Mutex<ScopedInner>>);

#[derive(Default)]
struct ScopedInner {
    /// The catalog they were made from (held, so its address is never another's).
    of: Option<Arc<carbon_core::catalog::Catalog>>,
    views: Vec<(BTreeSet<String>, SharedCatalog)>,
}

/// Views kept at most (distinct sets of teams seen since the logs last changed).
const MAX_VIEWS: usize = 64;

impl Scoped {
    /// `all` as `teams` sees it.
    pub fn view(&self, all: &SharedCatalog, teams: &BTreeSet<String>) -> SharedCatalog {
        let current = all.current();
        let lock = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut inner = lock();
            if !inner.of.as_ref().is_some_and(|of| Arc::ptr_eq(of, &current)) {
                inner.of = Some(current.clone());
                inner.views.clear();
            }
            if let Some((_, v)) = inner.views.iter().find(|(t, _)| t == teams) {
                return v.clone();
            }
        }
        // Made outside the lock: other teams' requests do not wait for it.
        let view = SharedCatalog::new(current.visible_to(teams));
        let mut inner = lock();
        if !inner.of.as_ref().is_some_and(|of| Arc::ptr_eq(of, &current)) {
            // The logs changed meanwhile: this view is for this request only.
            return view;
        }
        if let Some((_, v)) = inner.views.iter().find(|(t, _)| t == teams) {
            return v.clone();
        }
        if inner.views.len() >= MAX_VIEWS {
            inner.views.remove(0);
        }
        inner.views.push((teams.clone(), view.clone()));
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> Proxy {
        Proxy {
            user_header: HeaderName::from_static("x-forwarded-email"),
            groups_header: HeaderName::from_static("x-forwarded-groups"),
            trusted: vec!["10.0.0.0/8".parse().expect("cidr"), "::1/128".parse().expect("cidr")],
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn the_proxy_is_believed_only_from_its_addresses_and_only_once() {
        let p = proxy();
        let ok = headers(&[("x-forwarded-email", "ada@example.org"), ("x-forwarded-groups", "vision, nlp  speech")]);
        let (user, groups) = p.who(Some("10.1.2.3".parse().expect("ip")), &ok).expect("signed in");
        assert_eq!(user, "ada@example.org");
        assert_eq!(groups, ["nlp", "speech", "vision"].map(String::from).into());
        assert!(p.who(Some("192.168.1.1".parse().expect("ip")), &ok).expect_err("untrusted").contains("not a trusted"));
        assert!(p.who(None, &ok).is_err());
        let twice = headers(&[("x-forwarded-email", "ada@example.org"), ("x-forwarded-email", "eve@example.org")]);
        assert!(p.who(Some("::1".parse().expect("ip")), &twice).expect_err("twice").contains("twice"));
        assert!(p.who(Some("::1".parse().expect("ip")), &headers(&[])).expect_err("nobody").contains("nobody"));
        for sneaky in ["/pkg/../api/v1/runs", "/pkg/%2e%2e/api/v1/runs", "//healthz/../runs", "/pkg/..\\runs"] {
            assert!(!open_path(&Method::GET, sneaky), "{sneaky}");
        }
        assert!(open_path(&Method::GET, "/pkg/carbon-dash.css") && open_path(&Method::POST, "/emissions"));
        assert!(!open_path(&Method::GET, "/emissions"), "the collection API is open to its posts only");
        assert!(open_path(&Method::GET, "/signin/callback") && !open_path(&Method::POST, "/signin/start"));
    }

    #[test]
    fn only_a_well_formed_read_token_is_looked_up() {
        let token = format!("cdr_{}", "ab".repeat(32));
        assert_eq!(bearer(&headers(&[("authorization", &format!("Bearer {token}"))])), Ok(Some(token.clone())));
        assert_eq!(bearer(&headers(&[("authorization", &format!("bearer  {token}"))])), Ok(Some(token.clone())));
        assert_eq!(bearer(&headers(&[])), Ok(None));
        for bad in ["Basic YWRhOnB3", "Bearer cdt_0123", &format!("Bearer {token}x"), "Bearer"] {
            assert!(bearer(&headers(&[("authorization", bad)])).is_err(), "{bad}");
        }
        let twice = headers(&[("authorization", &format!("Bearer {token}")), ("authorization", "Bearer x")]);
        assert!(bearer(&twice).is_err());
    }
}
