//! Browser upload through the whole router: multipart in, a private session out, "save to logs",
//! and read-only servers refusing every write.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use carbon_dash::upload::UploadPolicy;
use common::{build, call, catalog, state};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const GOOD: &[u8] = include_bytes!("../../core/tests/fixtures/checkpoints.csv");
const GOOD_38: &[u8] = include_bytes!("../../core/tests/fixtures/v3_2_38_columns.csv");
const NOT_CODECARBON: &[u8] = include_bytes!("../../core/tests/fixtures/not_codecarbon.csv");
const SHORT_ROW: &[u8] = include_bytes!("../../core/tests/fixtures/short_and_long_rows.csv");

/// A router over the demo logs with these upload rules (and a logs folder to save to, if any).
fn app_with(policy: UploadPolicy, read_only: bool) -> axum::Router {
    let mut s = state(catalog());
    s.read_only = read_only;
    s.upload = policy;
    build(s)
}

fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "carbon-dash-test-boundary-7d41";
    let mut body = Vec::new();
    for (name, data) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload_request(files: &[(&str, &[u8])], cookie: Option<&str>, json: bool) -> Request<Body> {
    let (content_type, body) = multipart(files);
    let mut req = Request::post("/upload").header(header::CONTENT_TYPE, content_type);
    if json {
        req = req.header(header::ACCEPT, "application/json");
    }
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    req.body(Body::from(body)).unwrap()
}

fn with_cookie(method: &str, uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri).header(header::ACCEPT, "application/json");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    req.body(Body::empty()).unwrap()
}

/// `name=value` of the response's session cookie.
fn session_cookie(headers: &axum::http::HeaderMap) -> String {
    let set = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_string()
}

async fn json_of(app: &axum::Router, uri: &str, cookie: Option<&str>) -> Value {
    let (status, _, body) = call(app, with_cookie("GET", uri, cookie)).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walk(dir)
        .into_iter()
        .map(|p| (p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn an_upload_becomes_a_private_session_with_a_result_per_file() {
    let policy = UploadPolicy { max_file_bytes: 1300, ..UploadPolicy::default() };
    let app = app_with(policy, false);
    let binary = [b"timestamp,duration\n".as_slice(), &[0, 159, 146, 150]].concat();
    let files: &[(&str, &[u8])] = &[
        ("runs/emissions.csv", GOOD_38),
        ("short.csv", SHORT_ROW),
        ("notes.csv", NOT_CODECARBON),
        ("photo.png", b"\x89PNG\r\n"),
        ("binary.csv", &binary),
        ("big.csv", GOOD), // 1,431 bytes: over this server's 1,300-byte limit
        ("emissions.csv", GOOD_38),
    ];
    let (status, headers, body) = call(&app, upload_request(files, None, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = session_cookie(&headers);
    let v: Value = serde_json::from_str(&body).unwrap();
    let results = v["files"].as_array().unwrap();
    let by = |name: &str| results.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name}: {body}"));
    assert_eq!(results.len(), 7);
    // Folders in the browser's name are dropped; a second file of the same name is kept, renamed.
    assert_eq!(by("emissions.csv")["accepted"], true);
    assert_eq!(by("emissions.csv")["runs"], 1);
    assert_eq!(by("emissions-2.csv")["accepted"], true);
    assert_eq!(by("short.csv")["accepted"], true, "{body}");
    assert!(by("short.csv")["rows_rejected"].as_u64().unwrap() > 0);
    assert!(by("notes.csv")["message"].as_str().unwrap().contains("not a CodeCarbon file"));
    assert!(by("photo.png")["message"].as_str().unwrap().contains("not a CSV file"));
    assert!(by("binary.csv")["message"].as_str().unwrap().contains("binary content"));
    assert_eq!(by("big.csv")["bytes"], 1431);
    assert!(by("big.csv")["message"].as_str().unwrap().contains("larger than the 1.3 kB limit"));
    for refused in ["notes.csv", "photo.png", "binary.csv", "big.csv"] {
        assert_eq!(by(refused)["accepted"], false, "{refused}");
    }

    // The session sees only the uploaded files; everyone else still sees the logs.
    let mine = json_of(&app, "/api/v1/files", Some(&cookie)).await;
    let mut names: Vec<&str> = mine.as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["emissions-2.csv", "emissions.csv", "short.csv"]);
    let logs = json_of(&app, "/api/v1/summary", None).await;
    assert!(logs["totals"]["runs"].as_u64().unwrap() > 20);
    let (_, _, page) = call(&app, with_cookie("GET", "/runs", Some(&cookie))).await;
    assert!(page.contains("Your upload") && !page.contains("resnet50-imagenet"), "the page shows the session");
    let (_, _, page) = call(&app, with_cookie("GET", "/upload", Some(&cookie))).await;
    assert!(page.contains("binary content") && page.contains("emissions-2.csv"), "the upload page lists results");

    // A second upload adds to the same session; the session link opens it; leaving forgets it.
    let (status, _, _) = call(&app, upload_request(&[("more.csv", GOOD)], Some(&cookie), true)).await;
    assert_eq!(status, StatusCode::OK);
    let mine = json_of(&app, "/api/v1/files", Some(&cookie)).await;
    assert_eq!(mine.as_array().unwrap().len(), 3, "more.csv is over this server's file limit");
    let id = cookie.split_once('=').unwrap().1;
    // The link asks first (opening replaces the visitor's own session); its button posts back.
    let (status, headers, page) = call(&app, with_cookie("GET", &format!("/sessions/{id}"), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::SET_COOKIE).is_none(), "nothing replaced yet");
    assert!(page.contains(&format!("action=\"/sessions/{id}\"")) && page.contains("3 files"), "{page}");
    let (status, headers, _) = call(&app, with_cookie("POST", &format!("/sessions/{id}"), None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(session_cookie(&headers), cookie);
    assert!(!headers[header::SET_COOKIE].to_str().unwrap().contains("Secure"), "plain HTTP");
    // Another site cannot put a visitor into a session of its choosing.
    let mut cross = with_cookie("POST", &format!("/sessions/{id}"), None);
    cross.headers_mut().insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    cross.headers_mut().insert(header::HOST, "localhost:3000".parse().unwrap());
    let (status, headers, _) = call(&app, cross).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get(header::SET_COOKIE).is_none());
    // Behind a TLS proxy the cookie is Secure.
    let mut tls = with_cookie("POST", &format!("/sessions/{id}"), None);
    tls.headers_mut().insert("x-forwarded-proto", "https".parse().unwrap());
    let (_, headers, _) = call(&app, tls).await;
    assert!(headers[header::SET_COOKIE].to_str().unwrap().ends_with("; Secure"));
    let (status, _, _) = call(&app, with_cookie("POST", "/upload/leave", Some(&cookie))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let after = json_of(&app, "/api/v1/summary", Some(&cookie)).await;
    assert_eq!(after["totals"]["runs"], logs["totals"]["runs"], "after leaving, the logs again");
    let (status, _, body) = call(&app, with_cookie("GET", &format!("/sessions/{id}"), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("expired"));
}

#[tokio::test]
async fn oversized_and_malformed_requests_get_a_clear_answer() {
    let policy = UploadPolicy { max_request_bytes: 2000, ..UploadPolicy::default() };
    let app = app_with(policy, false);
    // Declared too large: refused before the body is read.
    let req = Request::post("/upload")
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=x")
        .header(header::CONTENT_LENGTH, "1000000000")
        .header(header::ACCEPT, "application/json")
        .body(Body::from(vec![0u8; 10]))
        .unwrap();
    let (status, _, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body.contains("the limit is 2 kB a request"), "{body}");
    // Not declared (streamed): refused when the count passes the limit, naming the file.
    let (content_type, data) = multipart(&[("a.csv", GOOD), ("b.csv", GOOD)]);
    let stream =
        futures_util::stream::iter(data.chunks(256).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    let req =
        Request::post("/upload").header(header::CONTENT_TYPE, content_type).body(Body::from_stream(stream)).unwrap();
    let (status, _, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body.contains("2 kB limit a request while sending b.csv") && body.contains("<a href=\"/upload\">"),
        "{body}"
    );
    // Not multipart, and multipart without a file.
    let req = Request::post("/upload").header(header::ACCEPT, "application/json").body(Body::from("x=1")).unwrap();
    let (status, _, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("multipart/form-data"));
    let (status, _, body) = call(&app, upload_request(&[], None, true)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("no file"));
    // A page from another site cannot post into the server.
    let mut req = upload_request(&[("a.csv", GOOD)], None, true);
    req.headers_mut().insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    req.headers_mut().insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
    let (status, _, _) = call(&app, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn save_to_logs_writes_the_files_as_given_under_uploads_and_never_overwrites() {
    let logs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(logs.path().join("uploads")).unwrap();
    std::fs::write(logs.path().join("uploads/emissions.csv"), b"already here").unwrap();
    let policy = UploadPolicy { save_root: Some(logs.path().to_path_buf()), ..UploadPolicy::default() };
    let app = app_with(policy, false);
    let (status, headers, _) =
        call(&app, upload_request(&[("emissions.csv", GOOD), ("notes.csv", NOT_CODECARBON)], None, true)).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = session_cookie(&headers);
    let (status, _, body) = call(&app, with_cookie("POST", "/upload/save", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["saved"][0]["saved_as"], "uploads/emissions-2.csv");
    assert_eq!(v["saved"].as_array().unwrap().len(), 1, "a refused file is not saved");
    assert_eq!(
        files_under(logs.path()),
        [
            ("uploads/emissions-2.csv".to_string(), GOOD.to_vec()),
            ("uploads/emissions.csv".to_string(), b"already here".to_vec())
        ],
        "byte for byte, beside the file that was there"
    );
    // Saving again writes nothing more; without a session there is nothing to save.
    let (status, _, _) = call(&app, with_cookie("POST", "/upload/save", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(files_under(logs.path()).len(), 2);
    let (status, _, body) = call(&app, with_cookie("POST", "/upload/save", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no upload session"));
    let (_, _, page) = call(&app, with_cookie("GET", "/upload", Some(&cookie))).await;
    assert!(page.contains("uploads/emissions-2.csv"), "the upload page says where each file went");
}

#[tokio::test]
async fn a_session_expires() {
    let policy = UploadPolicy { ttl: Duration::from_millis(300), ..UploadPolicy::default() };
    let app = app_with(policy, false);
    let (_, headers, _) = call(&app, upload_request(&[("emissions.csv", GOOD)], None, true)).await;
    let cookie = session_cookie(&headers);
    let mine = json_of(&app, "/api/v1/summary", Some(&cookie)).await;
    assert_eq!(mine["files"], 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = json_of(&app, "/api/v1/summary", Some(&cookie)).await;
    assert!(later["files"].as_u64().unwrap() > 1, "expired: the logs again");
}

/// Every route and method a client could try to write with.
async fn try_every_write(app: &axum::Router, cookie: Option<&str>) -> Vec<(String, StatusCode)> {
    let mut out = Vec::new();
    for &uri in common::EVERY_ROUTE {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let req = if uri == "/upload" && method == "POST" {
                upload_request(&[("emissions.csv", GOOD)], cookie, true)
            } else {
                with_cookie(method, uri, cookie)
            };
            let (status, _, _) = call(app, req).await;
            out.push((format!("{method} {uri}"), status));
        }
    }
    out
}

#[tokio::test]
async fn a_read_only_server_refuses_every_write() {
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(logs.path().join("emissions.csv"), GOOD).unwrap();
    let before = files_under(logs.path());
    let off =
        UploadPolicy { disabled_reason: Some("This server is read-only: upload is off.".into()), ..Default::default() };
    let app = app_with(off, true);
    for (what, status) in try_every_write(&app, None).await {
        // Leaving a session only clears the visitor's cookie: it writes nothing.
        if what == "POST /upload/leave" {
            assert_eq!(status, StatusCode::SEE_OTHER);
            continue;
        }
        assert!(status.is_client_error(), "{what}: {status}");
    }
    let (_, _, page) = call(&app, with_cookie("GET", "/upload", None)).await;
    assert!(page.contains("upload is off"), "{page}");

    // With --allow-upload-preview: a private session, still nothing saved.
    let app = app_with(UploadPolicy::default(), true);
    let (status, headers, _) = call(&app, upload_request(&[("emissions.csv", GOOD)], None, true)).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = session_cookie(&headers);
    for (what, status) in try_every_write(&app, Some(&cookie)).await {
        if what == "POST /upload" || what == "POST /upload/leave" {
            continue;
        }
        assert!(status.is_client_error(), "{what}: {status}");
    }
    assert_eq!(files_under(logs.path()), before, "the logs folder is untouched");
}

#[tokio::test]
async fn a_csv_with_10_000_columns_is_refused_with_its_reason_and_the_session_goes_on() {
    let app = app_with(UploadPolicy::default(), false);
    let header: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
    let wide = format!("duration,{}\n1,{}\n", header.join(","), vec!["1"; 10_000].join(","));
    let files: &[(&str, &[u8])] = &[("wide.csv", wide.as_bytes()), ("emissions.csv", GOOD)];
    let (status, _, body) = call(&app, upload_request(files, None, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["files"][0]["accepted"], false);
    assert!(v["files"][0]["message"].as_str().unwrap().contains("the header has 10001 columns"), "{body}");
    assert_eq!(v["files"][1]["accepted"], true);
}

#[tokio::test]
async fn a_full_server_ends_the_session_idle_longest_to_open_a_new_one() {
    let mut s = state(catalog());
    s.upload = UploadPolicy { max_sessions: 1, ..UploadPolicy::default() };
    let sessions = s.sessions.clone();
    let app = build(s);
    let (status, headers, _) = call(&app, upload_request(&[("a.csv", GOOD)], None, true)).await;
    assert_eq!(status, StatusCode::OK);
    let first = session_cookie(&headers);
    let (status, headers, body) = call(&app, upload_request(&[("b.csv", GOOD)], None, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = session_cookie(&headers);
    assert_eq!(sessions.len(), 1, "never more than the limit");
    // The first (idle longest) ended: its cookie opens a new session, the second one goes on.
    let (_, headers, _) = call(&app, upload_request(&[("c.csv", GOOD)], Some(&first), true)).await;
    assert_ne!(session_cookie(&headers), first);
    let (status, _, _) = call(&app, upload_request(&[("d.csv", GOOD)], Some(&second), true)).await;
    assert_eq!(status, StatusCode::OK);
}

/// An upload request from `ip` (the address the server saw).
fn from(ip: &str, mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut().insert(carbon_dash::conn::Client(ip.parse().unwrap()));
    req
}

#[tokio::test]
async fn uploads_from_one_address_cannot_take_the_sessions_of_another() {
    let mut s = state(catalog());
    s.upload = UploadPolicy::default();
    let sessions = s.sessions.clone();
    let app = build(s);
    // 64 tiny uploads from one address, each a new session (as many as the server holds).
    for i in 0..64 {
        let (status, _, body) =
            call(&app, from("10.0.0.2", upload_request(&[(&format!("t{i}.csv"), GOOD)], None, true))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(sessions.len(), 8, "an address holds an eighth of the sessions: its new ones replace its old");
    // Another address still uploads, and so do 50 more.
    for i in 0..50 {
        let ip = format!("10.0.1.{i}");
        let (status, _, body) = call(&app, from(&ip, upload_request(&[("mine.csv", GOOD)], None, true))).await;
        assert_eq!(status, StatusCode::OK, "{ip}: {body}");
    }
    assert_eq!(sessions.len(), 58);
}

#[tokio::test]
async fn a_full_server_ends_an_idle_session_of_the_address_holding_the_most() {
    let mut s = state(catalog());
    s.upload = UploadPolicy { max_sessions: 4, max_sessions_per_client: 3, ..UploadPolicy::default() };
    let sessions = s.sessions.clone();
    let app = build(s);
    let mut cookies = Vec::new();
    for (ip, name) in [("10.0.0.9", "b.csv"), ("10.0.0.2", "a1.csv"), ("10.0.0.2", "a2.csv"), ("10.0.0.2", "a3.csv")] {
        let (status, headers, body) = call(&app, from(ip, upload_request(&[(name, GOOD)], None, true))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        cookies.push(session_cookie(&headers));
    }
    assert_eq!(sessions.len(), 4);
    // A newcomer: room is made at the expense of the address holding three, not of the one
    // whose session is the oldest.
    let (status, _, _) = call(&app, from("10.0.0.7", upload_request(&[("c.csv", GOOD)], None, true))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions.len(), 4);
    let (_, headers, _) =
        call(&app, from("10.0.0.9", upload_request(&[("b2.csv", GOOD)], Some(&cookies[0]), true))).await;
    assert_eq!(session_cookie(&headers), cookies[0], "the lone session of 10.0.0.9 goes on");
    let (_, headers, _) =
        call(&app, from("10.0.0.2", upload_request(&[("a4.csv", GOOD)], Some(&cookies[1]), true))).await;
    assert_ne!(session_cookie(&headers), cookies[1], "the oldest of 10.0.0.2's ended");
}

#[tokio::test]
async fn a_refused_or_empty_upload_frees_its_slot_at_once() {
    let mut s = state(catalog());
    s.upload = UploadPolicy { max_sessions: 1, ..UploadPolicy::default() };
    let sessions = s.sessions.clone();
    let app = build(s);
    let (status, headers, body) = call(&app, upload_request(&[("notes.csv", NOT_CODECARBON)], None, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["session"].clone(), v["files"][0]["accepted"].clone()), (Value::Null, Value::Bool(false)));
    assert!(v["files"][0]["message"].as_str().unwrap().contains("not a CodeCarbon file"), "{body}");
    assert!(headers.get(header::SET_COOKIE).is_none());
    // A form post is told why on a page.
    let (status, _, page) = call(&app, upload_request(&[("notes.csv", NOT_CODECARBON)], None, false)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("notes.csv: ") && page.contains("not a CodeCarbon file"), "{page}");
    let (status, _, _) = call(&app, upload_request(&[], None, true)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(sessions.len(), 0);
}

#[tokio::test]
async fn on_a_network_address_without_allowed_names_upload_is_off_against_dns_rebinding() {
    let addr: std::net::SocketAddr = "0.0.0.0:3000".parse().unwrap();
    // A page of evil.example whose name now points at this server: same "origin" as its Host.
    let rebound = || {
        let mut req = upload_request(&[("e.csv", GOOD)], None, true);
        req.headers_mut().insert(header::HOST, "evil.example:3000".parse().unwrap());
        req.headers_mut().insert(header::ORIGIN, "http://evil.example:3000".parse().unwrap());
        req
    };
    let serve_with = |names: &[String]| {
        let mut s = state(catalog());
        s.allowed_hosts = carbon_dash::allowed_hosts(addr, names);
        s.upload = UploadPolicy::default().needing_names(s.allowed_hosts.as_deref(), addr);
        build(s)
    };
    let open = serve_with(&[]);
    let (status, _, body) = call(&open, rebound()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("DNS rebinding") && body.contains("--allow-host"), "{body}");
    let (status, _, body) = call(&open, with_cookie("POST", "/sessions/0123456789abcdef0123456789abcdef", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // With the names it answers to: the rebound name is refused, its own name uploads.
    let named = serve_with(&["dash.example".to_string()]);
    let (status, _, _) = call(&named, rebound()).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    let mut own = upload_request(&[("e.csv", GOOD)], None, true);
    own.headers_mut().insert(header::HOST, "dash.example:3000".parse().unwrap());
    own.headers_mut().insert(header::ORIGIN, "http://dash.example:3000".parse().unwrap());
    let (status, _, body) = call(&named, own).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_plain_form_post_is_sent_on_to_the_upload_page_which_lists_the_results() {
    let app = app_with(UploadPolicy::default(), false);
    let (status, headers, _) =
        call(&app, upload_request(&[("emissions.csv", GOOD), ("notes.csv", NOT_CODECARBON)], None, false)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/upload");
    let cookie = session_cookie(&headers);
    let (_, _, page) = call(&app, with_cookie("GET", "/upload", Some(&cookie))).await;
    assert!(page.contains("emissions.csv") && page.contains("not a CodeCarbon file"), "{page}");
    assert!(page.contains("2 files, ") && page.contains("the 1 file you uploaded"), "counted in words: {page}");
}

#[tokio::test]
async fn a_saved_file_whose_last_line_has_no_newline_keeps_that_line() {
    let logs = tempfile::tempdir().unwrap();
    let mut s = state(catalog());
    s.upload = UploadPolicy { save_root: Some(logs.path().to_path_buf()), ..UploadPolicy::default() };
    let shared = s.catalog.clone();
    let app = build(s);
    let text = std::str::from_utf8(GOOD).unwrap().trim_end();
    let rows = text.lines().count() - 1;
    let (_, headers, _) = call(&app, upload_request(&[("last.csv", text.as_bytes())], None, true)).await;
    let cookie = session_cookie(&headers);
    let (status, _, body) = call(&app, with_cookie("POST", "/upload/save", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows_of = |files: &Value| {
        files.as_array().unwrap().iter().find(|f| f["path"] == "uploads/last.csv").map(|f| f["rows_read"].clone())
    };
    // In the logs at once (no cookie: the server's logs), every row, the last one too.
    let files = json_of(&app, "/api/v1/files?limit=1000", None).await;
    assert_eq!(rows_of(&files), Some(Value::from(rows)), "{files}");
    // The watcher's event for the saved file finds it read as it is: the line stays.
    let changed = carbon_dash::watch::refresh(logs.path(), &logs.path().join("uploads/last.csv"), &shared);
    assert!(!changed);
    let files = json_of(&app, "/api/v1/files?limit=1000", None).await;
    assert_eq!(rows_of(&files), Some(Value::from(rows)));
}

#[tokio::test]
async fn two_tabs_uploading_the_same_name_keep_both_files_and_two_saves_write_each_once() {
    let logs = tempfile::tempdir().unwrap();
    let policy = UploadPolicy { save_root: Some(logs.path().to_path_buf()), ..UploadPolicy::default() };
    let app = app_with(policy, false);
    let (_, headers, _) = call(&app, upload_request(&[("first.csv", GOOD)], None, true)).await;
    let cookie = session_cookie(&headers);
    // Two tabs, the same file name, at once.
    let (a, b) = tokio::join!(
        call(&app, upload_request(&[("emissions.csv", GOOD)], Some(&cookie), true)),
        call(&app, upload_request(&[("emissions.csv", GOOD_38)], Some(&cookie), true)),
    );
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    let mine = json_of(&app, "/api/v1/files", Some(&cookie)).await;
    let mut names: Vec<&str> = mine.as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["emissions-2.csv", "emissions.csv", "first.csv"], "both kept");
    // Two saves at once: every file written once.
    let (a, b) = tokio::join!(
        call(&app, with_cookie("POST", "/upload/save", Some(&cookie))),
        call(&app, with_cookie("POST", "/upload/save", Some(&cookie))),
    );
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    let written = files_under(logs.path());
    assert_eq!(written.len(), 3, "{:?}", written.iter().map(|(n, _)| n).collect::<Vec<_>>());
    let contents: Vec<&[u8]> = written.iter().map(|(_, b)| b.as_slice()).collect();
    assert!(contents.contains(&GOOD) && contents.contains(&GOOD_38));
}

#[tokio::test]
async fn new_sessions_hold_their_slot_while_their_files_are_read() {
    let mut s = state(catalog());
    s.upload = UploadPolicy { max_sessions: 2, ..UploadPolicy::default() };
    let sessions = s.sessions.clone();
    let app = build(s);
    let uploads = (0..6).map(|_| call(&app, upload_request(&[("e.csv", GOOD)], None, true)));
    let answers = futures_util::future::join_all(uploads).await;
    let ok = answers.iter().filter(|a| a.0 == StatusCode::OK).count();
    let refused = answers.iter().filter(|a| a.0 == StatusCode::SERVICE_UNAVAILABLE).count();
    // A session being filled is never ended for another; a finished one may be.
    assert!(ok >= 2 && ok + refused == 6, "{ok} taken, {refused} refused");
    assert_eq!(sessions.len(), 2, "never more sessions than the limit, however the requests interleave");
}

#[tokio::test]
async fn many_files_of_one_name_get_unique_names_and_too_many_files_are_refused() {
    let app = app_with(UploadPolicy::default(), false);
    let files: Vec<(&str, &[u8])> = (0..1000).map(|_| ("a.csv", &b"x,y\n1,2\n"[..])).collect();
    let (status, _, body) = call(&app, upload_request(&files, None, true)).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    let names: std::collections::HashSet<&str> =
        v["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 1000);
    assert!(names.contains("a.csv") && names.contains("a-1000.csv"));
    let files: Vec<(&str, &[u8])> =
        (0..=carbon_dash::upload::MAX_FILES_PER_REQUEST).map(|_| ("b.csv", &b"x"[..])).collect();
    let (status, _, body) = call(&app, upload_request(&files, None, true)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body.contains("more than 1000 files"), "{body}");
}

#[tokio::test]
async fn metrics_files_uploaded_with_a_log_join_its_runs() {
    let app = app_with(UploadPolicy::default(), false);
    let files: &[(&str, &[u8])] = &[
        ("emissions.csv", GOOD_38),
        ("metrics.csv", b"run_id,accuracy,loss\nr1,0.91,0.3\nnot-here,0.5,0.9\n"),
        ("all_results.json", br#"{"eval_f1": 0.8}"#),
        ("wandb-summary.json", b"{not json"),
    ];
    let (status, headers, body) = call(&app, upload_request(files, None, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = session_cookie(&headers);
    let v: Value = serde_json::from_str(&body).unwrap();
    let by = |name: &str| v["files"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap().clone();
    assert_eq!(by("metrics.csv")["accepted"], true);
    assert!(by("metrics.csv")["message"]
        .as_str()
        .unwrap()
        .contains("metrics.csv: 4 final values of 2 metrics for 2 runs"));
    assert_eq!(by("wandb-summary.json")["accepted"], false);
    assert!(by("wandb-summary.json")["message"].as_str().unwrap().contains("wandb-summary.json"), "{body}");
    // The session's files say how they joined; its Pareto view has the run.
    let mine = json_of(&app, "/api/v1/files", Some(&cookie)).await;
    let join = |path: &str| {
        mine.as_array().unwrap().iter().find(|f| f["path"] == path).unwrap()["join"].as_str().unwrap().to_string()
    };
    assert!(join("metrics.csv").starts_with("joined to 1 run by run_id; 1 run id is not in the logs (not-here)"));
    assert!(join("all_results.json").contains("by its folder, a guess: the only run logged in the top folder"));
    let p = json_of(&app, "/api/v1/pareto?metric=accuracy", Some(&cookie)).await;
    assert_eq!(p["points"][0]["run_id"], "r1");
    assert_eq!(p["points"][0]["value"], 0.91);
    let f1 = json_of(&app, "/api/v1/pareto?metric=eval_f1", Some(&cookie)).await;
    assert!(f1["points"][0]["joined_by_guess"].is_string());
    // Nobody else sees them.
    let (status, _, _) = call(&app, with_cookie("GET", "/api/v1/pareto?metric=accuracy", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_uploaded_mlflow_database_joins_the_uploaded_logs_and_a_file_that_is_no_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(include_str!("../../core/tests/fixtures/mlflow_schema.sql")).unwrap();
    c.execute_batch(
        "INSERT INTO runs VALUES ('m1', 'a', 'active', 1, 0), ('m2', 'b', 'active', 1, 1);
         INSERT INTO tags VALUES ('codecarbon.run_id', 'u1', 'm1'), ('codecarbon.run_id', 'u2', 'm2');
         INSERT INTO params VALUES ('lr', '0.1', 'm1');
         INSERT INTO latest_metrics VALUES ('accuracy', 0.8, 0, 3, 0, 'm1'), ('accuracy', 0.9, 0, 3, 0, 'm2');",
    )
    .unwrap();
    drop(c);
    let bytes = std::fs::read(&db).unwrap();
    let log = "timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n\
               2026-10-01T10:00:00,p,u1,600,0.01,0.03,FRA\n2026-10-01T11:00:00,p,u2,600,0.02,0.06,FRA\n";
    let app = app_with(UploadPolicy::default(), false);
    let files: &[(&str, &[u8])] =
        &[("emissions.csv", log.as_bytes()), ("mlflow.db", &bytes), ("other.db", b"SQLite? no, words")];
    let (status, headers, body) = call(&app, upload_request(files, None, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let by = |name: &str| v["files"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap().clone();
    assert_eq!(by("mlflow.db")["accepted"], true, "{body}");
    assert!(by("mlflow.db")["message"].as_str().unwrap().contains("MLflow database"), "{body}");
    assert_eq!(by("other.db")["accepted"], false, "{body}");
    assert!(by("other.db")["message"].as_str().unwrap().contains("neither MLflow's"), "{body}");
    let cookie = session_cookie(&headers);
    let run = json_of(&app, "/api/v1/runs/u1", Some(&cookie)).await;
    assert_eq!(run["metrics"]["accuracy"].as_f64(), Some(0.8), "{run}");
    assert_eq!(run["params"]["lr"], "0.1");
    // Nothing of it is left in the temporary folder.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("carbon-dash-store-{}-", std::process::id())))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Other trackers' logs uploaded together: each named by its tool on the result line, the pair
/// of carbontracker logs one run, a `.log` no tracker wrote refused with why, and the Runs page
/// filtered by tracker.
#[tokio::test]
async fn other_trackers_logs_are_told_by_content_and_filtered_by_tracker() {
    let app = app_with(UploadPolicy::default(), false);
    let std_log = b"2026-12-05 13:22:21 - carbontracker version 2.4.7\n\
        2026-12-05 13:22:22 - The following components were found: GPU with device(s) NVIDIA A100. CPU with device(s) Intel(R) Xeon(R) CPU @ 2.20GHz.\n\
        2026-12-05 13:22:23 - Epoch 1:\n2026-12-05 13:22:23 - Duration: 0:10:00.00\n\
        2026-12-05 13:22:23 - Average power usage (W) for gpu: [300.0]\n\
        2026-12-05 13:22:23 - Average power usage (W) for cpu: 50.0\n\
        2026-12-05 13:32:25 - Carbon intensities (gCO2eq/kWh) fetched every 900 s at detected location: Aarhus, Central Jutland, DK: [150.0]\n";
    let out_log = b"2026-12-05 13:32:25 - CarbonTracker: \nActual consumption for 1 epoch(s):\n\tTime:\t0:10:00\n\
        \tEnergy:\t0.092166666667 kWh\n\tCO2eq:\t13.825000000000 g\n";
    let files: &[(&str, &[u8])] = &[
        ("42.1_2026-12-05T132221Z_carbontracker.log", std_log),
        ("42.1_2026-12-05T132221Z_carbontracker_output.log", out_log),
        ("train.log", b"epoch 1 loss 0.3\n"),
        ("emissions.csv", GOOD_38),
    ];
    let (status, headers, body) = call(&app, upload_request(files, None, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = session_cookie(&headers);
    let v: Value = serde_json::from_str(&body).unwrap();
    let by = |name: &str| v["files"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap().clone();
    assert_eq!(by("42.1_2026-12-05T132221Z_carbontracker.log")["accepted"], true, "{body}");
    assert!(by("42.1_2026-12-05T132221Z_carbontracker.log")["message"]
        .as_str()
        .unwrap()
        .contains("carbontracker log 2.4.7"));
    assert_eq!(by("train.log")["accepted"], false);
    assert!(by("train.log")["message"].as_str().unwrap().contains("neither a carbontracker log"), "{body}");

    let runs = json_of(&app, "/api/v1/runs?tool=carbontracker", Some(&cookie)).await;
    let rows = runs["rows"].as_array().unwrap_or_else(|| runs.as_array().unwrap());
    assert_eq!(rows.len(), 1, "{runs}");
    let r = &rows[0];
    assert_eq!(r["tool"], "carbontracker");
    assert!((r["energy_kwh"].as_f64().unwrap() - 0.092166666667).abs() < 1e-12, "the actual, as the tool wrote it");
    assert_eq!(r["country_iso_code"], "DNK", "the standard log's location, on the run");
    assert_eq!(r["gpu_model"], "NVIDIA A100");
    assert_eq!(r["delta_reason"]["kind"], "other_tool");
    let (_, _, page) = call(&app, with_cookie("GET", "/runs?tool=carbontracker", Some(&cookie))).await;
    assert!(page.contains("class=\"tool\">carbontracker 2.4.7</td>"), "the Runs table names the tracker");
    let (_, _, page) = call(&app, with_cookie("GET", "/runs?tool=CodeCarbon", Some(&cookie))).await;
    assert!(!page.contains("class=\"tool\">carbontracker") && page.contains("class=\"tool\">CodeCarbon"), "filtered");
}
