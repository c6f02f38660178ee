//! The binary itself: JSON request logs a collector can read.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

#[test]
fn json_logs_carry_each_request_with_its_method_path_and_status() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carbon-dash"))
        .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the server ended before serving");
        if let Some(rest) = line.trim().strip_prefix("Serving on http://") {
            break rest.to_string();
        }
    };
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    s.read_to_string(&mut String::new()).unwrap();
    let finished = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no log line for the request");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if v["span"]["uri"] == "/healthz" && v["fields"]["status"].is_number() {
                break v;
            }
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(finished["level"], "INFO");
    assert_eq!(finished["span"]["method"], "GET");
    assert_eq!(finished["fields"]["status"], 200);
    assert!(finished["fields"]["latency"].is_string() && finished["timestamp"].is_string(), "{finished}");
}
