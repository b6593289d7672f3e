//! Connection-level limits: slow clients are dropped, the connection cap holds, oversized
//! request heads are refused, and the server keeps serving others throughout.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Reads until the server closes the connection; returns how long that took.
fn time_until_closed(mut s: TcpStream, limit: Duration) -> Duration {
    s.set_read_timeout(Some(limit)).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("connection still open after {limit:?}")
            }
            Err(_) => return start.elapsed(),
        }
    }
}

#[test]
fn slow_clients_are_dropped_and_others_served() {
    let server = Server::start_with(
        "[limits]\nheader_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"\n",
        &[],
    );
    let alice = server.user("alice", "user");
    // TLS handshake never started: one byte, then silence.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(&[0x16]).unwrap();
    let took = time_until_closed(slow, Duration::from_secs(10));
    assert!(
        took < Duration::from_secs(5),
        "slow handshake dropped after {took:?}"
    );
    // Meanwhile and afterwards, normal requests work.
    alice.ok(&["object", "ls"]);
}

#[test]
fn slow_request_heads_and_bodies_are_dropped() {
    let server = Server::start_with(
        "[limits]\nheader_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"\n",
        &["--insecure-http"],
    );
    // A request head trickling in, one byte a second.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let start = Instant::now();
    let mut dropped = false;
    for b in b"host: x\r\nx-slow: yes\r\n\r\n" {
        std::thread::sleep(Duration::from_millis(400));
        if s.write_all(&[*b]).is_err() {
            dropped = true;
            break;
        }
        if start.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let mut buf = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(
        dropped || !text.contains("200 OK"),
        "a trickled head must not be served: {text}"
    );
    // A body that stops arriving.
    let alice = User {
        server: server.url.clone(),
        ..User::new(&server, "alice")
    };
    let token = server.invite("alice", "user");
    alice.ok(&["register", "--token", &token]);
    let vid = alice.vault_id("default");
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(s, "PUT /v1/vaults/{vid}/uploads HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: 100000\r\n\r\nabc", alice.token()).unwrap();
    let took = time_until_closed(s, Duration::from_secs(10));
    assert!(
        took < Duration::from_secs(5),
        "stalled body dropped after {took:?}"
    );
    assert_eq!(alice.ok(&["object", "ls"]), "");
}

#[test]
fn connection_cap_and_header_size() {
    let server = Server::start_with(
        "[limits]\nmax_connections = 2\nmax_header_size = \"8KiB\"\n",
        &["--insecure-http"],
    );
    let c = http();
    // Two idle connections take both slots; a third is closed at once.
    let a = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let b = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let third = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let took = time_until_closed(third, Duration::from_secs(5));
    assert!(took < Duration::from_secs(2));
    drop((a, b));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(health(&c, &server), 200);
    // A request head over the limit is refused with a 4xx.
    let resp = c
        .get(format!("{}/healthz", server.url))
        .header("x-big", "a".repeat(20_000))
        .send();
    match resp {
        Ok(r) => assert!(r.status().is_client_error(), "{}", r.status()),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    assert_eq!(health(&c, &server), 200);
}

/// Every connection must make progress or go: sockets that finished the TLS handshake and
/// then sent nothing, one byte, only an HTTP/2 preface and SETTINGS, or that idle after a
/// request, fill `max_connections` for no longer than the timeouts, and a fresh `/healthz`
/// is served within the timeout plus a second.
#[test]
fn idle_tls_connections_cannot_keep_others_out() {
    let server = Server::start_with(
        "[limits]\nmax_connections = 8\nheader_read_timeout = \"2s\"\nidle_timeout = \"3s\"\n",
        &[],
    );
    let out = server.admin_cmd(&["cert", "export"]);
    assert!(out.status.success());
    let pem = out.stdout;
    let mut idle = Vec::new();
    for i in 0..8 {
        let h2 = i % 4 == 2;
        let mut s = tls_connection(&server, &pem, h2.then_some(b"h2".as_slice()));
        match i % 4 {
            0 => {}
            1 => s.write_all(b"G").expect("one byte"),
            2 => {
                s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                    .expect("preface");
                s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).expect("SETTINGS");
            }
            _ => {
                s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                    .expect("request");
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).expect("response");
                assert!(
                    String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
                    "keep-alive request"
                );
            }
        }
        s.flush().expect("flush");
        idle.push(s);
    }
    let filled = Instant::now();
    // Every slot is held now: a new connection is turned away.
    let c = http();
    let refused = c
        .get(format!("{}/healthz", server.url))
        .timeout(Duration::from_secs(1))
        .send();
    assert!(refused.is_err(), "all slots should be taken: {refused:?}");
    let deadline = filled + Duration::from_secs(3 + 1);
    loop {
        let ok = c
            .get(format!("{}/healthz", server.url))
            .timeout(Duration::from_secs(1))
            .send()
            .is_ok_and(|r| r.status() == 200);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz still refused {:?} after the slots filled",
            filled.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The server closed the idle ones (a read sees the end, or the close_notify).
    for mut s in idle {
        s.sock
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break false,
                Err(_) => break true,
            }
        };
        assert!(closed, "an idle connection is still open");
    }
}
