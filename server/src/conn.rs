//! Limits a client cannot stretch: connections per client address as well as per server, a
//! client that takes nothing of its answer for a while is cut, and an answer has a time limit
//! of its own.

use axum::body::{Body, Bytes};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Connections open at once, at most; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 4096;

/// Connections one client address may hold at once: a browser opens at most 6 to a server
/// (plus one event stream a tab), so this leaves room for an office of about 40 behind one
/// address, while one address takes no more than a sixteenth of [`MAX_CONNECTIONS`]. More are
/// answered 503 and closed at once.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 256;

/// How long a client may take too little of its answer before its connection is cut.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client must take of its answer per [`WRITE_TIMEOUT`] while the server waits on it:
/// 16 KiB (1.6 KB/s, a slow mobile link), so one reading a byte now and then is cut too.
pub const MIN_BYTES_PER_TIMEOUT: usize = 16 * 1024;

/// Live-update streams one client address may hold (a stream is an open tab).
pub const MAX_STREAMS_PER_CLIENT: usize = 32;

/// What a client address counts as: an IPv4 address, or an IPv6 /64 (the block one subscriber
/// gets, so one client cannot take a fresh address per connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(u128);

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey(u32::from(v4) as u128),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(u32::from(v4) as u128),
                None => ClientKey((u128::from(v6) >> 64 << 64) | 1),
            },
        }
    }
}

/// The address a request came from (set by [`crate::serve`] on every request).
#[derive(Debug, Clone, Copy)]
pub struct Client(pub IpAddr);

impl Client {
    pub fn key(&self) -> ClientKey {
        ClientKey::of(self.0)
    }
}

/// The connection limits of a server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A client that has not sent its request head within this is disconnected.
    pub header_timeout: Duration,
    /// A client that takes nothing of its answer for this long is disconnected.
    pub write_timeout: Duration,
    pub max_connections: usize,
    /// Connections one client address may hold (0: no limit of its own, e.g. behind a proxy
    /// that is every client's address).
    pub per_client: usize,
    /// Open connections, by client address (shown by `/healthz`).
    pub open: Connections,
}

impl Limits {
    pub fn new(header_timeout: Duration, open: Connections) -> Limits {
        Limits {
            header_timeout,
            write_timeout: WRITE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            per_client: MAX_CONNECTIONS_PER_CLIENT,
            open,
        }
    }
}

/// Connections open now, per client address.
#[derive(Clone, Default, Debug)]
pub struct Connections(Arc<Mutex<HashMap<ClientKey, usize>>>);

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a connection from `key` unless the address holds `per_client` already (0: no
    /// limit); the count goes when the returned guard does.
    pub fn open(&self, key: ClientKey, per_client: usize) -> Option<Open> {
        let mut map = self.lock();
        let n = map.entry(key).or_insert(0);
        if per_client > 0 && *n >= per_client {
            return None;
        }
        *n += 1;
        Some(Open { open: self.clone(), key })
    }

    /// Open connections, and the most one address holds.
    pub fn counts(&self) -> (usize, usize) {
        let map = self.lock();
        (map.values().sum(), map.values().copied().max().unwrap_or(0))
    }
}

/// One counted connection (see [`Connections::open`]).
pub struct Open {
    open: Connections,
    key: ClientKey,
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut map = self.open.lock();
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// What a client over its connection limit is told before its connection is closed.
pub const OVER_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\n\
retry-after: 5\r\ncontent-length: 59\r\n\r\ntoo many connections from your address: close some and retry";

/// A connection whose writes fail once the client, while the server waits on it, takes less
/// than [`MIN_BYTES_PER_TIMEOUT`] in `timeout`: the server's memory and the connection's slot
/// are never held by a client that does not read, or reads a trickle.
pub struct Guarded<S> {
    io: S,
    timeout: Duration,
    /// Runs while the server waits on the client: started by a write that could not proceed,
    /// ended once everything is handed to the kernel (a flush that completes).
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes the client took since the timer last started.
    taken: usize,
}

impl<S> Guarded<S> {
    pub fn new(io: S, timeout: Duration) -> Guarded<S> {
        Guarded { io, timeout, stalled: None, taken: 0 }
    }

    /// After a write that could not proceed: the error once the client took too little in time.
    fn stall(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let timeout = self.timeout;
        loop {
            let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            if timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            if self.taken < MIN_BYTES_PER_TIMEOUT {
                return Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client took {} bytes of its answer in {} s", self.taken, timeout.as_secs_f64()),
                ));
            }
            // Enough this time: the next period starts now.
            self.taken = 0;
            timer.as_mut().reset(tokio::time::Instant::now() + timeout);
        }
    }

    fn after<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => match self.stall(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            ready => ready,
        }
    }

    fn wrote(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = r {
            self.taken += n;
        }
        self.after(cx, r)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = r {
            // Everything is the kernel's now: the server waits on the client no longer.
            this.stalled = None;
            this.taken = 0;
        }
        this.after(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_shutdown(cx);
        this.after(cx, r)
    }
}

/// A response body that fails (and so ends its connection) when it is still being sent at
/// `until`: a client reading a trickle cannot hold its connection for ever.
pub struct TimedBody {
    inner: Body,
    until: Instant,
}

impl TimedBody {
    pub fn wrap(inner: Body, limit: Duration) -> Body {
        Body::new(TimedBody { inner, until: Instant::now() + limit })
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if Instant::now() > this.until {
            return Poll::Ready(Some(Err(axum::Error::new("the answer was not taken within its time limit"))));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_64_block_and_a_mapped_ipv4_is_the_ipv4() {
        let k = |s: &str| ClientKey::of(s.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)));
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:10.0.0.1"), k("10.0.0.1"));
        assert_ne!(k("10.0.0.1"), k("10.0.0.2"));
        // No IPv6 block is taken for an IPv4 address.
        assert_ne!(k("::"), k("0.0.0.0"));
    }

    #[test]
    fn an_address_holds_its_share_of_connections_and_gives_them_back() {
        let c = Connections::default();
        let a = ClientKey::of("10.0.0.1".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)));
        let b = ClientKey::of("10.0.0.2".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)));
        let held: Vec<Open> = (0..3).filter_map(|_| c.open(a, 3)).collect();
        assert_eq!(held.len(), 3);
        assert!(c.open(a, 3).is_none());
        let other = c.open(b, 3);
        assert!(other.is_some());
        assert_eq!(c.counts(), (4, 3));
        drop(held);
        assert_eq!(c.counts(), (1, 1));
        assert!(c.open(a, 3).is_some());
    }
}
