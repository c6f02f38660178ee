//! Who may see what (`--auth proxy`): a trusted reverse proxy (oauth2-proxy, nginx
//! `auth_request`, a company's SSO gateway) signs people in and names them and their groups in
//! headers; this server believes those headers only from the proxy's addresses. A person sees
//! the runs of the teams named by their groups (all of them in `--admin-group`); every page and
//! JSON answer is computed over those runs alone (see [`carbon_core::catalog::Catalog::visible_to`]),
//! so a run they may not see answers as one that does not exist.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use carbon_core::catalog::SharedCatalog;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// How people are signed in.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Nobody is: everyone sees everything (a server on loopback, or `--public`).
    #[default]
    Open,
    Proxy(Proxy),
}

/// A trusted proxy's settings.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub user_header: HeaderName,
    pub groups_header: HeaderName,
    pub trusted: Vec<ipnet::IpNet>,
    /// Members of this group see every team.
    pub admin_group: Option<String>,
}

/// What a request may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Visible {
    All,
    Teams(BTreeSet<String>),
}

/// The person a request comes from, put in its extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Who {
    pub user: String,
    pub visible: Visible,
}

/// Longest user name or group list taken from a header.
const MAX_HEADER: usize = 4096;

/// Paths anyone may ask for: the health check and the browser bundle and styles. The collection
/// API's posts keep their own write tokens.
fn open_path(method: &Method, path: &str) -> bool {
    // Only plain paths: no climbing out of /pkg/, no doubled or encoded separators.
    if path.contains("..") || path.contains("//") || path.contains('%') || path.contains('\\') {
        return false;
    }
    path == "/healthz"
        || path.starts_with("/pkg/")
        || path == "/favicon.ico"
        || path == "/favicon.svg"
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
    /// The person a request from `peer` with `headers` is, or why it is refused.
    pub fn who(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<Who, String> {
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
        let admin = self.admin_group.as_ref().is_some_and(|a| groups.contains(a));
        Ok(Who { user, visible: if admin { Visible::All } else { Visible::Teams(groups) } })
    }
}

/// Signs each request in (see the module's comment): refused with 401 when it cannot be, but
/// for the open paths.
pub async fn authenticate(State(s): State<crate::AppState>, mut req: Request, next: Next) -> Response {
    let Auth::Proxy(proxy) = &*s.auth else { return next.run(req).await };
    // The router under a base path sees paths without it already.
    let path = req.uri().path().to_string();
    let peer = req.extensions().get::<crate::conn::Client>().map(|c| c.0.to_canonical());
    match proxy.who(peer, req.headers()) {
        Ok(who) => {
            req.extensions_mut().insert(who);
            let mut res = next.run(req).await;
            // One person's answer: no shared cache on the way keeps it for another.
            res.headers_mut()
                .insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("private, no-store"));
            res
        }
        Err(_) if open_path(req.method(), &path) => next.run(req).await,
        Err(why) => {
            tracing::warn!(target: "audit", route = %path, method = %req.method(), outcome = "refused", reason = %why);
            (StatusCode::UNAUTHORIZED, "sign-in required: this server shows runs to people its sign-in proxy names\n")
                .into_response()
        }
    }
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
            admin_group: Some("carbon-admins".into()),
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
        let who = p.who(Some("10.1.2.3".parse().expect("ip")), &ok).expect("signed in");
        assert_eq!(who.user, "ada@example.org");
        assert_eq!(who.visible, Visible::Teams(["nlp", "speech", "vision"].map(String::from).into()));
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
        let admin = headers(&[("x-forwarded-email", "root@example.org"), ("x-forwarded-groups", "carbon-admins")]);
        assert_eq!(p.who(Some("::1".parse().expect("ip")), &admin).expect("admin").visible, Visible::All);
    }
}
