//! The real server on a socket: slow clients, oversized heads and a 1 GB upload each get a clear
//! answer while other clients are served as usual.
#![allow(clippy::unwrap_used)]

mod common;

use common::{build, catalog, server_runtime, state};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Serves the demo with these timeouts on a free port of the shared runtime.
fn start(request_timeout: Duration, header_timeout: Duration) -> SocketAddr {
    start_stoppable(request_timeout, header_timeout).0
}

/// [`start`], with what stops it and the server's task.
fn start_stoppable(
    request_timeout: Duration,
    header_timeout: Duration,
) -> (SocketAddr, tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    start_limited(request_timeout, |l| l.header_timeout = header_timeout)
}

/// Serves the demo with these connection limits.
fn start_limited(
    request_timeout: Duration,
    limit: impl FnOnce(&mut carbon_dash::conn::Limits),
) -> (SocketAddr, tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let mut s = state(catalog());
    s.request_timeout = request_timeout;
    let stopping = s.stopping.clone();
    let mut limits = carbon_dash::conn::Limits::new(Duration::from_secs(10), s.connections.clone());
    limit(&mut limits);
    let app = build(s);
    let listener = server_runtime().block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let task = server_runtime().spawn(carbon_dash::serve(listener, app, limits, stopping.subscribe()));
    (addr, stopping, task)
}

/// A connection from another loopback address (127.0.0.2: another client to the server),
/// receiving into a small buffer.
fn connect_from(local: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    socket.bind(format!("{local}:0").parse().unwrap())?;
    let stream = server_runtime()
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), socket.connect(addr)).await })??;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(stream)
}

/// The server's open connections, as `/healthz` tells them.
fn open_connections(addr: SocketAddr) -> u64 {
    let mut s = connect(addr);
    write!(s, "GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let answer = read_all(s);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    v["connections"]["open"].as_u64().unwrap()
}

/// `/healthz` times from 127.0.0.1 while `for_how_long` passes: every time, sorted.
fn healthz_times(addr: SocketAddr, for_how_long: Duration) -> Vec<Duration> {
    let start = Instant::now();
    let mut times = Vec::new();
    while start.elapsed() < for_how_long {
        let (status, took) = quick_get(addr, "/healthz");
        assert_eq!(status, "HTTP/1.1 200 OK");
        times.push(took);
        std::thread::sleep(Duration::from_millis(50));
    }
    times.sort();
    times
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Reads until the server closes the connection (or resets it); what it sent.
fn read_all(mut s: TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Sends the head of an upload (`POST /upload`, multipart) with one more header line.
fn upload_head(s: &mut TcpStream, length_or_encoding: &str) {
    write!(
        s,
        "POST /upload HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n\
         {length_or_encoding}\r\nAccept: application/json\r\n\r\n"
    )
    .unwrap();
}

/// A plain `GET` on its own connection: status line and how long it took.
fn quick_get(addr: SocketAddr, path: &str) -> (String, Duration) {
    let start = Instant::now();
    let mut s = connect(addr);
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let answer = read_all(s);
    (answer.lines().next().unwrap_or("").to_string(), start.elapsed())
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected_and_others_are_served() {
    let addr = start(Duration::from_secs(30), Duration::from_secs(1));
    let mut slow: Vec<TcpStream> = (0..50).map(|_| connect(addr)).collect();
    for s in &mut slow {
        s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ").unwrap();
    }
    let (status, took) = quick_get(addr, "/healthz");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(took < Duration::from_secs(5), "served beside 50 stalled clients in {took:?}");
    let start = Instant::now();
    let answer = read_all(slow.pop().unwrap());
    assert!(start.elapsed() < Duration::from_secs(5), "disconnected after the header timeout");
    // There is no request to answer yet: the connection is closed.
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[test]
fn a_connection_that_sends_nothing_or_the_http2_preface_gives_its_slot_back() {
    let addr = start(Duration::from_secs(30), Duration::from_secs(1));
    let silent = connect(addr);
    let mut h2 = connect(addr);
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    let start = Instant::now();
    let (a, b) = (read_all(silent), read_all(h2));
    assert!(start.elapsed() < Duration::from_secs(5), "closed after the header timeout, not held");
    assert!(!a.contains("HTTP/2") && !b.starts_with("HTTP/1.1 200"), "{a} {b}");
}

#[test]
fn a_body_that_stops_coming_gets_408_with_a_reason() {
    // Uploads get 20 times the request timeout: 0.1 s → 2 s.
    let addr = start(Duration::from_millis(100), Duration::from_secs(10));
    let mut s = connect(addr);
    upload_head(&mut s, "Content-Length: 100000");
    s.write_all(b"--b\r\n").unwrap();
    let start = Instant::now();
    let answer = read_all(s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("not complete after 2 s"), "{answer}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_oversized_request_head_gets_431() {
    let addr = start(Duration::from_secs(30), Duration::from_secs(10));
    let mut s = connect(addr);
    let big = "a".repeat(carbon_dash::MAX_HEADER_BYTES * 2);
    // The server may answer and close before the whole head is written.
    let _ = write!(s, "GET / HTTP/1.1\r\nHost: test\r\nX-Big: {big}\r\n\r\n");
    let answer = read_all(s);
    assert!(answer.starts_with("HTTP/1.1 431"), "{}", &answer[..answer.len().min(200)]);
}

#[test]
fn a_1_gb_upload_is_refused_early_without_hurting_other_clients() {
    let addr = start(Duration::from_secs(30), Duration::from_secs(10));
    // Declared: refused before a byte of the body is read.
    let mut s = connect(addr);
    upload_head(&mut s, "Content-Length: 1000000000");
    let answer = read_all(s);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("the upload is 1 GB: the limit is 200 MB a request"), "{answer}");

    // Streamed (chunked, no length): refused once 200 MB have come, long before 1 GB.
    let mut s = connect(addr);
    upload_head(&mut s, "Transfer-Encoding: chunked");
    let reader = s.try_clone().unwrap();
    let answer = std::thread::spawn(move || read_all(reader));
    let part = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.csv\"\r\n\r\n";
    write!(s, "{:x}\r\n", part.len()).unwrap();
    s.write_all(part).unwrap();
    s.write_all(b"\r\n").unwrap();
    let chunk = vec![b'1'; 1 << 20];
    let mut sent = 0usize;
    let mut others = Vec::new();
    while sent < 1_000_000_000 {
        let ok =
            write!(s, "{:x}\r\n", chunk.len()).is_ok() && s.write_all(&chunk).is_ok() && s.write_all(b"\r\n").is_ok();
        if !ok {
            break;
        }
        sent += chunk.len();
        if sent.is_multiple_of(50 << 20) {
            others.push(quick_get(addr, "/healthz"));
        }
    }
    let answer = answer.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("passed the 200 MB limit a request while sending huge.csv"), "{answer}");
    assert!(sent < 400_000_000, "stopped reading at the limit ({sent} bytes sent)");
    for (status, took) in &others {
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(*took < Duration::from_secs(5), "{took:?}");
    }
    eprintln!(
        "1 GB upload: refused after {} MB were sent; {} other requests served meanwhile",
        sent >> 20,
        others.len()
    );
}

#[test]
fn a_stopping_server_ends_event_streams_and_returns_without_waiting_for_a_kill() {
    let (addr, stopping, task) = start_stoppable(Duration::from_secs(30), Duration::from_secs(10));
    let mut stream = connect(addr);
    stream.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the stream is open");
    let asked = Instant::now();
    stopping.send(true).unwrap();
    // The open page's stream ends (it would otherwise hold the server until a kill)…
    read_all(stream);
    // …and the server returns, well before a container's kill timeout.
    while !task.is_finished() {
        assert!(asked.elapsed() < Duration::from_secs(9), "still serving after {:?}", asked.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(asked.elapsed() < Duration::from_secs(5), "stopped after {:?}", asked.elapsed());
    // Nothing listens any more.
    assert!(TcpStream::connect(addr).is_err(), "the socket is closed");
}

#[test]
fn clients_that_never_read_their_answers_are_cut_and_cannot_take_the_server() {
    let write_timeout = Duration::from_secs(2);
    let (addr, _stop, _task) = start_limited(Duration::from_secs(30), |l| {
        l.write_timeout = write_timeout;
        l.max_connections = 100;
        l.per_client = 40;
    });
    // 150 connections from one address, each asking for 30 maps at once and reading nothing.
    let pipelined = "GET /map HTTP/1.1\r\nHost: test\r\n\r\n".repeat(30);
    let mut attackers = Vec::new();
    for _ in 0..150 {
        if let Ok(mut s) = connect_from("127.0.0.2", addr) {
            let _ = s.write_all(pipelined.as_bytes());
            attackers.push(s);
        }
    }
    assert_eq!(attackers.len(), 150, "every attacker connected from 127.0.0.2");
    let attacked = Instant::now();
    // Another address is served at once, all along.
    let times = healthz_times(addr, Duration::from_secs(3));
    let p95 = times[times.len() * 95 / 100];
    assert!(p95 < Duration::from_millis(100), "/healthz p95 {p95:?} during the attack ({:?} at most)", times.last());
    // The attackers over their address's share were told so; the others are cut once they
    // have taken nothing for the write timeout.
    let told = attackers
        .iter_mut()
        .filter_map(|s| {
            let mut head = [0u8; 12];
            s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            (s.read_exact(&mut head).is_ok() && &head == b"HTTP/1.1 503").then_some(())
        })
        .count();
    assert!(told >= 100, "{told} of 150 told 503");
    while open_connections(addr) > 1 {
        assert!(
            attacked.elapsed() < write_timeout * 5,
            "{} still open after {:?}",
            open_connections(addr),
            attacked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("never-reading clients cut within {:?}; /healthz p95 {p95:?}", attacked.elapsed());
}

#[test]
fn slow_headers_from_one_address_leave_another_address_served() {
    let (addr, _stop, _task) = start_limited(Duration::from_secs(30), |l| {
        l.header_timeout = Duration::from_secs(30);
        l.max_connections = 100;
        l.per_client = 40;
    });
    let mut slow = Vec::new();
    for _ in 0..150 {
        if let Ok(mut s) = connect_from("127.0.0.2", addr) {
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: a");
            slow.push(s);
        }
    }
    assert_eq!(slow.len(), 150, "every slow client connected from 127.0.0.2");
    // Trickling on: a byte a connection now and then, never the end of the head.
    for s in &mut slow {
        let _ = s.write_all(b"a");
    }
    let times = healthz_times(addr, Duration::from_secs(2));
    assert!(*times.last().unwrap() < Duration::from_secs(1), "{times:?}");
    let p95 = times[times.len() * 95 / 100];
    assert!(p95 < Duration::from_millis(100), "/healthz p95 {p95:?}");
    let (status, _) = quick_get(addr, "/api/v1/summary");
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[test]
fn a_client_reading_a_trickle_is_cut_too() {
    let (addr, _stop, _task) = start_limited(Duration::from_secs(30), |l| l.write_timeout = Duration::from_secs(2));
    let mut s = connect_from("127.0.0.2", addr).unwrap();
    s.write_all("GET /map HTTP/1.1\r\nHost: test\r\n\r\n".repeat(30).as_bytes()).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 100];
    // 100 bytes every 200 ms: 1 KB in a 2 s period, where 16 KiB are needed.
    while open_connections(addr) > 1 {
        assert!(started.elapsed() < Duration::from_secs(20), "still held after {:?}", started.elapsed());
        let _ = s.read(&mut buf);
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("a trickling reader was cut after {:?}", started.elapsed());
}

#[test]
fn one_address_holds_only_its_share_of_live_update_streams() {
    let (addr, _stop, _task) = start_limited(Duration::from_secs(30), |_| {});
    let mut answers = Vec::new();
    let mut held = Vec::new();
    for _ in 0..(carbon_dash::conn::MAX_STREAMS_PER_CLIENT + 8) {
        let mut s = connect_from("127.0.0.2", addr).unwrap();
        s.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        answers.push(String::from_utf8_lossy(&head).to_string());
        held.push(s);
    }
    let open = answers.iter().filter(|a| *a == "HTTP/1.1 200").count();
    let refused = answers.iter().filter(|a| *a == "HTTP/1.1 503").count();
    assert_eq!((open, refused), (carbon_dash::conn::MAX_STREAMS_PER_CLIENT, 8));
    // Another address still follows live updates.
    let mut mine = connect(addr);
    mine.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    mine.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
}
