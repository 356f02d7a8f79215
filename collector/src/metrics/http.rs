//! A minimal HTTP/1.1 responder over std::net for scrapes: one request per connection
//! (`Connection: close`), GET and HEAD only, no body read. Everything a hostile or slow peer
//! could hold is bounded: the request's size, the time it may take (a deadline over the
//! whole exchange, reads and writes included), and the connections served at once (more are
//! closed on accept). It runs on its own threads; ingest never waits for it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Limits {
    /// The request line and headers, at most (a scrape's are a few hundred bytes).
    pub max_request: usize,
    /// The whole exchange, reading the request to writing the last byte.
    pub deadline: Duration,
    /// Connections served at once; more are closed as they come.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request: 8 * 1024,
            deadline: Duration::from_secs(5),
            max_connections: 8,
        }
    }
}

/// What the handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Answers a GET (or HEAD) of a path (the query string removed).
pub type Handler = dyn Fn(&str) -> Response + Send + Sync;

/// A running responder; [`HttpServer::stop`] ends it.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

impl HttpServer {
    pub fn start(
        listener: TcpListener,
        handler: Arc<Handler>,
        limits: Limits,
    ) -> std::io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("metrics-accept".into())
            .spawn(move || accept_loop(listener, handler, limits, flag))?;
        Ok(HttpServer { addr, stop, accept })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (a connection of its own wakes the blocked accept); connections being
    /// served end within the deadline.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = self.accept.join();
        }
        // Not woken: the thread is left blocked in accept; it ends with the process.
    }
}

/// Blocking accepts: a scrape is answered at once, and an idle endpoint costs nothing.
fn accept_loop(
    listener: TcpListener,
    handler: Arc<Handler>,
    limits: Limits,
    stop: Arc<AtomicBool>,
) {
    let busy = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                if busy.load(Ordering::Relaxed) >= limits.max_connections {
                    crate::warn_limited!(
                        "metrics-busy",
                        "metrics: {peer}: refused: {} scrapes being served already",
                        limits.max_connections
                    );
                    continue;
                }
                busy.fetch_add(1, Ordering::Relaxed);
                let (handler, limits, done) =
                    (Arc::clone(&handler), limits.clone(), Arc::clone(&busy));
                let spawned = std::thread::Builder::new()
                    .name("metrics-conn".into())
                    .stack_size(256 * 1024)
                    .spawn(move || {
                        serve(stream, &*handler, &limits);
                        done.fetch_sub(1, Ordering::Relaxed);
                    });
                if let Err(e) = spawned {
                    busy.fetch_sub(1, Ordering::Relaxed);
                    crate::warn_limited!("metrics-spawn", "metrics: cannot start a thread: {e}");
                }
            }
            Err(e) => {
                crate::warn_limited!("metrics-accept", "metrics: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// What a request line and headers amount to.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// `GET` or `HEAD` (`head`: no body in the answer) of a path.
    Get { path: String, head: bool },
    /// Answered at once with this status.
    Refuse(u16, &'static str),
}

/// Judges the head of a request (everything before the blank line).
fn parse(head: &[u8]) -> Request {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let Ok(line) = std::str::from_utf8(line) else {
        return Request::Refuse(400, "bad request line");
    };
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Request::Refuse(400, "bad request line");
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b))
    };
    if !token(method) || !target.starts_with('/') || !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Request::Refuse(400, "bad request line");
    }
    if target.bytes().any(|b| b.is_ascii_control()) {
        return Request::Refuse(400, "bad request line");
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Request::Refuse(405, "only GET and HEAD"),
    };
    let path = target.split('?').next().unwrap_or(target).to_string();
    Request::Get { path, head }
}

/// Where the head of the request ends (after the blank line), if it has arrived.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Why no request head was read: the peer went away (nothing to answer), or an answer.
#[derive(Debug)]
enum NoHead {
    Gone,
    Refuse(u16, &'static str),
}

/// Reads the request's head within the deadline and the size bound.
fn read_head(stream: &mut TcpStream, limits: &Limits, until: Instant) -> Result<Vec<u8>, NoHead> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if head_end(&buf).is_some() {
            return Ok(buf);
        }
        if buf.len() >= limits.max_request {
            return Err(NoHead::Refuse(431, "request too large"));
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(NoHead::Refuse(408, "request too slow"));
        }
        let room = chunk.len().min(limits.max_request - buf.len());
        match stream.read(&mut chunk[..room]) {
            // Closed before a whole head: whatever came is judged (a bare line is a bad one).
            Ok(0) if buf.is_empty() => return Err(NoHead::Gone),
            Ok(0) => return Err(NoHead::Refuse(400, "incomplete request")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(NoHead::Refuse(408, "request too slow"))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(NoHead::Gone),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// One connection: read the head, answer, close.
fn serve(mut stream: TcpStream, handler: &Handler, limits: &Limits) {
    let until = Instant::now() + limits.deadline;
    let (response, head_only) = match read_head(&mut stream, limits, until) {
        Ok(head) => match parse(&head) {
            Request::Get { path, head } => (handler(&path), head),
            Request::Refuse(status, why) => (Response::text(status, format!("{why}\n")), false),
        },
        Err(NoHead::Gone) => return,
        Err(NoHead::Refuse(status, why)) => (Response::text(status, format!("{why}\n")), false),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    if response.status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&response.body);
    }
    // A slow reader gets the deadline's remainder, in pieces, then is cut off.
    let mut bytes = out.as_bytes();
    while !bytes.is_empty() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_write_timeout(Some(left)).is_err() {
            return;
        }
        match stream.write(bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    linger(&mut stream, until);
}

/// Reads what the peer still sends (a request cut off at the size bound), briefly, before
/// closing: closing with unread bytes makes the kernel send a reset, which can destroy the
/// answer before the peer has read it.
fn linger(stream: &mut TcpStream, until: Instant) {
    let until = until.min(Instant::now() + Duration::from_secs(1));
    let mut sink = [0u8; 4096];
    for _ in 0..64 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let get = |p: &str| Request::Get {
            path: p.into(),
            head: false,
        };
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            get("/metrics")
        );
        assert_eq!(parse(b"GET /metrics?x=1 HTTP/1.0\n\n"), get("/metrics"));
        assert_eq!(
            parse(b"HEAD /healthz HTTP/1.1\r\n\r\n"),
            Request::Get {
                path: "/healthz".into(),
                head: true
            }
        );
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"G(T /metrics HTTP/1.1\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
            b"GET /a\x01b HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Request::Refuse(400, "bad request line"),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Request::Refuse(405, _)
        ));
    }

    #[test]
    fn heads_end_at_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
