//! Sign-in with OpenID Connect (`--auth oidc`): the authorization code flow with PKCE, its
//! `state` bound to the browser that began it (a cookie whose hash the store keeps beside the
//! state, the nonce and the PKCE verifier, each sign-in taken once), the ID token checked against
//! the issuer's keys, audience, expiry and nonce by `openidconnect`. A signed-in person gets a new
//! session (never one they came with), kept in the store by its hash and named by an `HttpOnly;
//! Secure; SameSite=Lax` cookie; sign-out is a POST that ends it. `?next=` leads only to this
//! server's own paths.

use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use carbon_store::people::{self, SignIn};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The signed-in person's session cookie. `__Host-`: only this host sets it, for all its paths
/// (a sibling subdomain cannot plant one).
pub const SESSION_COOKIE: &str = "__Host-carbon_dash_signed_in";
/// The cookies binding a sign-in under way to the browser that began it, one per sign-in (two
/// tabs signing in at once do not undo each other): this, then the first 16 hex digits of the
/// state's hash.
const SIGN_IN_COOKIE: &str = "__Host-carbon_dash_sign_in_";
/// Sign-ins one client address may begin per minute (each keeps a row until its callback).
const STARTS_PER_MINUTE: u32 = 20;
/// The issuer's keys are read again at most this often (when a token is signed with a key not
/// known yet: the provider rotated its keys).
const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// `--auth oidc`'s flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Where people reach this server, base path included.
    pub public_url: String,
    pub base_path: String,
    pub groups_claim: String,
    pub session_lifetime: Duration,
}

type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// A configured OpenID Connect client.
pub struct Oidc {
    settings: Settings,
    http: reqwest::Client,
    /// The client made from the provider's configuration and keys, and when they were read.
    client: RwLock<(Arc<Client>, Instant)>,
    /// Sign-ins begun per client address in the current minute.
    starts: std::sync::Mutex<(Instant, HashMap<String, u32>)>,
}

fn sign_in_cookie(state: &str) -> String {
    format!("{SIGN_IN_COOKIE}{}", &people::hash(state)[..16])
}

/// Claims beside the standard ones (the groups claim among them), as userinfo gives them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Extra(HashMap<String, serde_json::Value>);
impl AdditionalClaims for Extra {}

/// A group claim's value: a list of names, or one string of names.
fn group_names(value: &serde_json::Value) -> BTreeSet<String> {
    match value {
        serde_json::Value::Array(items) => {
            items.iter().filter_map(|v| v.as_str()).map(str::trim).filter(|g| !g.is_empty()).map(String::from).collect()
        }
        serde_json::Value::String(s) => crate::auth::groups(s),
        _ => BTreeSet::new(),
    }
}

/// The claims of a JWT whose signature was checked already (to read claims the standard set
/// does not name).
fn payload(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let body = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `next` when it is a path of this server (`/runs?x=1`), else `/`: never another site
/// (`//evil`, `/\evil`, `https://…`) nor a header-splitting value.
pub fn local_path(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2000
        && !next.chars().any(|c| c.is_control() || c.is_whitespace())
        && !next.starts_with("/signin")
        && !next.starts_with("/signout");
    if ok {
        next.to_string()
    } else {
        "/".to_string()
    }
}

fn encode(s: &str) -> String {
    openidconnect::url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn escape(s: &str) -> String {
    charts::map::escape_xml(s)
}

impl Oidc {
    /// Reads the provider's configuration and keys; fails (the server does not start) when it
    /// cannot, or when a URL is not one.
    pub async fn discover(settings: Settings) -> anyhow::Result<Oidc> {
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer send this server anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        let public = openidconnect::url::Url::parse(&settings.public_url)
            .map_err(|e| anyhow::anyhow!("--public-url {}: {e}", settings.public_url))?;
        let local = matches!(public.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if public.scheme() != "https" && !local {
            anyhow::bail!(
                "--public-url {}: sign-in cookies are Secure, so people must reach this server over https",
                settings.public_url
            );
        }
        if public.path().trim_end_matches('/') != settings.base_path {
            anyhow::bail!(
                "--public-url {} ends in '{}' but --base-path is '{}': give the same path to both",
                settings.public_url,
                public.path(),
                settings.base_path
            );
        }
        let client = Self::client(&settings, &http).await?;
        Ok(Oidc {
            settings,
            http,
            client: RwLock::new((Arc::new(client), Instant::now())),
            starts: std::sync::Mutex::new((Instant::now(), HashMap::new())),
        })
    }

    /// Whether `client` may begin another sign-in this minute.
    fn may_start(&self, client: &str) -> bool {
        let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        if starts.0.elapsed() >= Duration::from_secs(60) {
            *starts = (Instant::now(), HashMap::new());
        }
        let n = starts.1.entry(client.to_string()).or_default();
        *n += 1;
        *n <= STARTS_PER_MINUTE
    }

    async fn client(settings: &Settings, http: &reqwest::Client) -> anyhow::Result<Client> {
        // As given: an issuer may end in '/', and its ID tokens name it so.
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| anyhow::anyhow!("--oidc-issuer {}: {e}", settings.issuer))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, http)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read {}'s OpenID configuration: {e}", settings.issuer))?;
        let redirect = format!("{}/signin/callback", settings.public_url.trim_end_matches('/'));
        let redirect =
            RedirectUrl::new(redirect).map_err(|e| anyhow::anyhow!("--public-url {}: {e}", settings.public_url))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    fn current(&self) -> Arc<Client> {
        self.client.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The provider's configuration and keys read again, unless they were a short while ago.
    async fn refresh(&self) -> Option<Arc<Client>> {
        if self.client.read().unwrap_or_else(|e| e.into_inner()).1.elapsed() < REFRESH_EVERY {
            return None;
        }
        let fresh = Arc::new(Self::client(&self.settings, &self.http).await.ok()?);
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = (fresh.clone(), Instant::now());
        Some(fresh)
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    pub fn groups_claim(&self) -> &str {
        &self.settings.groups_claim
    }

    pub fn session_lifetime(&self) -> Duration {
        self.settings.session_lifetime
    }

    /// To the sign-in page, coming back to `next` after.
    pub fn to_sign_in(&self, base: &str, next: &str) -> Response {
        see_other(&format!("{base}/signin?next={}", encode(&local_path(next))), None)
    }

    fn cookie(&self, name: &str, value: &str, max_age: Duration) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
            max_age.as_secs()
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The person the code names, their groups, after the ID token checks out.
    async fn person(&self, code: &str, pending: &SignIn) -> Result<(String, BTreeSet<String>), String> {
        let mut client = self.current();
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| format!("the provider names no token endpoint: {e}"))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| format!("the provider refused the code: {}", token_error(&e)))?;
        let id_token = tokens.id_token().ok_or("the provider sent no ID token")?;
        let nonce = Nonce::new(pending.nonce.clone());
        let first = id_token.claims(&client.id_token_verifier(), &nonce).cloned();
        let claims = match first {
            Ok(c) => c,
            Err(first) => match self.refresh().await {
                // Signed with a key read only now (the provider rotated its keys)?
                Some(fresh) => {
                    client = fresh;
                    id_token
                        .claims(&client.id_token_verifier(), &nonce)
                        .map_err(|e| format!("the ID token does not check out: {e}"))?
                        .clone()
                }
                None => return Err(format!("the ID token does not check out: {first}")),
            },
        };
        if let Some(expected) = claims.access_token_hash() {
            let verifier = client.id_token_verifier();
            let alg = id_token.signing_alg().map_err(|e| format!("the ID token's algorithm: {e}"))?;
            let key = id_token.signing_key(&verifier).map_err(|e| format!("the ID token's key: {e}"))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| format!("the access token's hash: {e}"))?;
            if actual != *expected {
                return Err("the access token is not the one the ID token names".into());
            }
        }
        let raw = payload(&id_token.to_string()).unwrap_or_default();
        let claim = self.settings.groups_claim.as_str();
        let mut groups = raw.get(claim).map(group_names);
        let verified =
            |email: Option<&str>, verified: Option<bool>| email.filter(|_| verified != Some(false)).map(str::to_string);
        let mut email = verified(claims.email().map(|e| e.as_str()), claims.email_verified());
        // What the ID token leaves out, the userinfo endpoint may say (for the same subject).
        if groups.is_none() || email.is_none() {
            if let Ok(request) = client.user_info(tokens.access_token().clone(), Some(claims.subject().clone())) {
                let info: Result<UserInfoClaims<Extra, CoreGenderClaim>, _> = request.request_async(&self.http).await;
                if let Ok(info) = info {
                    if groups.is_none() {
                        groups = info.additional_claims().0.get(claim).map(group_names);
                    }
                    if email.is_none() {
                        email = verified(info.email().map(|e| e.as_str()), info.email_verified());
                    }
                }
            }
        }
        let person = email.unwrap_or_else(|| claims.subject().as_str().to_string());
        Ok((people::person_key(&person), groups.unwrap_or_default()))
    }
}

/// A token endpoint's refusal in its own words (`invalid_grant: …`), never the code.
fn token_error<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text.chars().take(300).collect()
}

fn see_other(location: &str, cookies: Option<Vec<HeaderValue>>) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies.unwrap_or_default() {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// The sign-in page: what this server is, a way to sign in, and why the last try failed.
fn page(s: &AppState, status: StatusCode, next: &str, message: Option<(&str, &str)>) -> Response {
    let base = &s.base_path;
    let provider = s
        .auth
        .oidc()
        .and_then(|o| openidconnect::url::Url::parse(o.issuer()).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "your organisation".into());
    let note = match message {
        Some((class, text)) => format!("<p class=\"{class}\" role=\"status\">{}</p>", escape(text)),
        None => String::new(),
    };
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign in · carbon-dash</title>\
         <link rel=\"icon\" href=\"{base}/favicon.svg\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"{base}/pkg/{css}.css\"></head>\
         <body><header class=\"top\"><span class=\"brand\">carbon-dash</span></header>\
         <main class=\"signin\"><h1>Sign in</h1>\
         <p>This dashboard shows the energy and carbon footprint of machine-learning runs to the teams that made them. \
         Sign in with your organisation's account to see your teams' runs.</p>{note}\
         <p><a class=\"button\" href=\"{base}/signin/start?next={next}\">Sign in with {provider}</a></p></main></body></html>",
        css = app::OUTPUT_NAME,
        next = escape(&encode(next)),
        provider = escape(&provider),
    );
    let mut res = (status, axum::response::Html(html)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

type Params = Query<HashMap<String, String>>;

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found: this server signs nobody in (--auth oidc)\n").into_response()
}

/// `GET /signin`: the sign-in page (a person signed in already goes on to `next`).
pub async fn sign_in_page(State(s): State<AppState>, headers: HeaderMap, Query(q): Params) -> Response {
    if s.auth.oidc().is_none() {
        return not_found();
    }
    let next = local_path(q.get("next").map(String::as_str).unwrap_or("/"));
    if let (Some(c), Some(store)) = (crate::auth::cookie(&headers, SESSION_COOKIE), &s.auth.store) {
        if let Ok(Some(_)) = store.session(&c).await {
            return see_other(&format!("{}{next}", s.base_path), None);
        }
    }
    let message = q.contains_key("signed_out").then_some(("note", "You are signed out."));
    page(&s, StatusCode::OK, &next, message)
}

/// `GET /signin/start`: to the provider, with a new state, nonce and PKCE challenge.
pub async fn start(
    State(s): State<AppState>,
    client: Option<axum::Extension<crate::conn::Client>>,
    Query(q): Params,
) -> Response {
    let (Some(oidc), Some(store)) = (s.auth.oidc(), &s.auth.store) else { return not_found() };
    let next = local_path(q.get("next").map(String::as_str).unwrap_or("/"));
    let address = client.map(|c| format!("{:?}", c.0.key())).unwrap_or_default();
    if !oidc.may_start(&address) {
        tracing::warn!(target: "audit", route = "/signin/start", outcome = "refused", reason = "too many sign-ins from one address");
        let why = "Too many sign-ins from your address: try again in a minute.";
        return page(&s, StatusCode::TOO_MANY_REQUESTS, &next, Some(("error", why)));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = oidc
        .current()
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let Ok(browser) = people::secret("") else {
        return page(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            &next,
            Some(("error", "No randomness for a sign-in: try again.")),
        );
    };
    let pending = SignIn {
        browser_hash: people::hash(&browser),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        next: next.clone(),
    };
    if let Err(e) = store.add_sign_in(state.secret(), &pending).await {
        tracing::warn!(target: "audit", route = "/signin/start", outcome = "refused", reason = %e);
        let why = match e {
            carbon_store::StoreError::Busy => "Too many sign-ins under way: try again in a minute.",
            _ => "Sign-in is not available just now (the server's log says why).",
        };
        return page(&s, StatusCode::SERVICE_UNAVAILABLE, &next, Some(("error", why)));
    }
    let cookie = oidc.cookie(&sign_in_cookie(state.secret()), &browser, Duration::from_secs(600));
    see_other(url.as_str(), Some(vec![cookie]))
}

/// `GET /signin/callback`: the provider sends the person back with a code (or an error).
pub async fn callback(State(s): State<AppState>, headers: HeaderMap, Query(q): Params) -> Response {
    let (Some(oidc), Some(store)) = (s.auth.oidc(), &s.auth.store) else { return not_found() };
    let refuse = |status: StatusCode, why: &str, shown: &str| {
        tracing::warn!(target: "audit", route = "/signin/callback", outcome = "sign-in refused", reason = ?why);
        page(&s, status, "/", Some(("error", shown)))
    };
    let state = q.get("state").map(String::as_str).unwrap_or_default();
    let browser = crate::auth::cookie(&headers, &sign_in_cookie(state)).map(|b| people::hash(&b)).unwrap_or_default();
    let pending = match store.take_sign_in(state, &browser).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "unknown, used or expired state, or another browser's",
                "This sign-in link was used already, is over 10 minutes old, or did not begin in this browser. Sign in again.",
            )
        }
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), "Sign-in is not available just now."),
    };
    if let Some(error) = q.get("error") {
        // The provider's error code only (its description may name its internals).
        let code: String = error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(60).collect();
        let said = q.get("error_description").map(|d| d.chars().take(200).collect::<String>()).unwrap_or_default();
        return refuse(
            StatusCode::UNAUTHORIZED,
            &format!("the provider said {code}: {said:?}"),
            &format!("The sign-in was refused ({code})."),
        );
    }
    let Some(code) = q.get("code") else {
        return refuse(StatusCode::BAD_REQUEST, "no code", "The provider sent no code back. Sign in again.");
    };
    let (person, groups) = match oidc.person(code, &pending).await {
        Ok(p) => p,
        Err(why) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                &why,
                &format!("Sign-in failed: {}.", why.split(": ").next().unwrap_or("")),
            )
        }
    };
    // A new session, whatever the browser came with (no fixation).
    if let Some(old) = crate::auth::cookie(&headers, SESSION_COOKIE) {
        let _ = store.end_session(&old).await;
    }
    let lifetime = oidc.session_lifetime();
    let expires = (std::time::SystemTime::now() + lifetime)
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(i64::MAX);
    let list: Vec<String> = groups.iter().cloned().collect();
    let session = match store.add_session(&person, &list, expires).await {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), "Sign-in is not available just now."),
    };
    tracing::info!(target: "audit", who = %person, groups = %list.join(","), route = "/signin/callback", outcome = "signed in");
    let cookies =
        vec![oidc.cookie(SESSION_COOKIE, &session, lifetime), oidc.cookie(&sign_in_cookie(state), "", Duration::ZERO)];
    see_other(&format!("{}{}", s.base_path, local_path(&pending.next)), Some(cookies))
}

/// `POST /signout`: ends the session and forgets its cookie. A cross-site form cannot sign
/// anyone out: the cookie is `SameSite=Lax`, and a foreign `Origin` is refused.
pub async fn sign_out(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (Some(oidc), Some(store)) = (s.auth.oidc(), &s.auth.store) else { return not_found() };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let public = openidconnect::url::Url::parse(&oidc.settings.public_url).ok();
    // The page's origin is this server's: as people reach it, or as the request names it.
    let same = |o: &str| {
        openidconnect::url::Url::parse(o).ok().is_some_and(|o| {
            public.as_ref().is_some_and(|p| p.origin() == o.origin())
                || o.host_str().is_some_and(|h| {
                    let named = match o.port() {
                        Some(port) => format!("{h}:{port}"),
                        None => h.to_string(),
                    };
                    named.eq_ignore_ascii_case(host)
                })
        })
    };
    if origin.is_some_and(|o| !same(o)) {
        tracing::warn!(target: "audit", route = "/signout", outcome = "refused", reason = "a foreign origin");
        return (StatusCode::FORBIDDEN, "sign-out is asked from this server's own pages\n").into_response();
    }
    let mut who = None;
    if let Some(c) = crate::auth::cookie(&headers, SESSION_COOKIE) {
        who = store.session(&c).await.ok().flatten().map(|s| s.person);
        let _ = store.end_session(&c).await;
    }
    tracing::info!(target: "audit", who = %who.as_deref().unwrap_or("-"), route = "/signout", outcome = "signed out");
    let cookie = oidc.cookie(SESSION_COOKIE, "", Duration::ZERO);
    see_other(&format!("{}/signin?signed_out=1", s.base_path), Some(vec![cookie]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_leads_only_to_this_servers_paths() {
        assert_eq!(local_path("/runs?project=a"), "/runs?project=a");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "runs",
            "/a\r\nSet-Cookie: x",
            "/signin/start",
            "/a b",
        ] {
            assert_eq!(local_path(bad), "/", "{bad}");
        }
    }

    #[test]
    fn groups_come_as_a_list_or_one_string() {
        assert_eq!(
            group_names(&serde_json::json!(["nlp", " vision ", "", 3])),
            ["nlp", "vision"].map(String::from).into()
        );
        assert_eq!(group_names(&serde_json::json!("nlp, vision")), ["nlp", "vision"].map(String::from).into());
        assert!(group_names(&serde_json::json!({"a": 1})).is_empty());
        let jwt = "e30.eyJncm91cHMiOlsibmxwIl19.c2ln";
        assert_eq!(payload(jwt).and_then(|p| p.get("groups").cloned()), Some(serde_json::json!(["nlp"])));
    }
}
