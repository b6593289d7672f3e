//! Conformance of the restic REST backend: every row of the protocol (methods × paths ×
//! status codes × API versions), malformed names, path tricks and wrong content lengths, as
//! raw HTTP/1.1 on a socket (the server runs with `--insecure-http` so the bytes on the wire
//! are exactly the test's).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;

use crate::harness::*;

const V1: &str = "application/vnd.x.restic.rest.v1";
const V2: &str = "application/vnd.x.restic.rest.v2";
const TYPES: [&str; 5] = ["data", "index", "keys", "locks", "snapshots"];

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Wire {
    port: u16,
    auth: String,
}

impl Wire {
    fn new(server: &Server, user: &str, token: &str) -> Self {
        Self {
            port: server.port,
            auth: base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}")),
        }
    }

    /// Sends raw bytes (the request head is completed with Host, auth and Connection: close
    /// unless `raw_head` is set) and reads the whole answer.
    fn send_raw(&self, bytes: &[u8]) -> Option<Resp> {
        self.send_raw_then(bytes, false)
    }

    /// Like `send_raw`; with `half_close`, ends the sending side after the bytes.
    fn send_raw_then(&self, bytes: &[u8], half_close: bool) -> Option<Resp> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        s.write_all(bytes).ok()?;
        if half_close {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        parse(&buf)
    }

    fn req(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Basic {}\r\nContent-Length: {}\r\n",
            self.auth,
            body.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut all = head.into_bytes();
        all.extend_from_slice(body);
        self.send_raw(&all)
            .unwrap_or_else(|| panic!("no answer to {method} {path}"))
    }
}

fn parse(buf: &[u8]) -> Option<Resp> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n")?;
            let n =
                usize::from_str_radix(std::str::from_utf8(&rest[..nl]).ok()?.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 2 + n + 2..];
        }
        body = out;
    }
    Some(Resp {
        status,
        headers,
        body,
    })
}

/// `Range` values at the edges of 64 bits give the right bytes or 416, never an overflow
/// (a 500, a reset stream, or an empty 206).
fn check_extreme_ranges(full: &Wire, path: &str, accept: &str, body: &[u8]) {
    let max = u64::MAX;
    let len = body.len();
    for (range, status, want) in [
        (format!("bytes=0-{max}"), 206, Some(body)),
        (format!("bytes=10-{max}"), 206, Some(&body[10..])),
        (format!("bytes=-{max}"), 206, Some(body)),
        (
            format!("bytes={}-{max}", len - 1),
            206,
            Some(&body[len - 1..]),
        ),
        (format!("bytes={max}-"), 416, None),
        (format!("bytes={max}-{max}"), 416, None),
        (format!("bytes={len}-{max}"), 416, None),
    ] {
        let r = full.req("GET", path, &[("Accept", accept), ("Range", &range)], b"");
        assert_eq!(
            r.status,
            status,
            "{range} of {len} bytes: {}",
            String::from_utf8_lossy(&r.body)
        );
        if let Some(want) = want {
            assert_eq!(r.body, want, "{range} of {len} bytes");
            assert_eq!(
                r.header("Content-Range"),
                Some(format!("bytes {}-{}/{len}", len - want.len(), len - 1).as_str()),
                "{range}"
            );
        }
    }
}

#[test]
fn restic_protocol_conformance() {
    let server = Server::start_with("", &["--insecure-http"]);
    let alice = server.user("alice", "user");
    let full = Wire::new(&server, "alice", &restic_token(&alice, "repo", "full"));
    let base = "/restic/alice/repo";
    let mut rows = 0;
    let mut expect = |r: &Resp, status: u16, what: &str| {
        assert_eq!(
            r.status,
            status,
            "{what}: body {}",
            String::from_utf8_lossy(&r.body)
        );
        rows += 1;
    };

    // A fresh repository per API version, so both see the state before `init`.
    for (accept, name) in [(V1, "repo"), (V2, "repo-v2")] {
        let h: &[(&str, &str)] = &[("Accept", accept)];
        let base = format!("/restic/alice/{name}");
        let full = Wire::new(&server, "alice", &restic_token(&alice, name, "full"));
        // Before the repository exists.
        expect(
            &full.req("HEAD", &format!("{base}/config"), h, b""),
            404,
            "HEAD config before init",
        );
        expect(
            &full.req("GET", &format!("{base}/config"), h, b""),
            404,
            "GET config before init",
        );
        expect(
            &full.req("GET", &format!("{base}/keys/"), h, b""),
            404,
            "list before init",
        );
        let obj = b"before init";
        expect(
            &full.req("POST", &format!("{base}/keys/{}", sha256_hex(obj)), h, obj),
            404,
            "POST object before init",
        );
        // The repository root.
        expect(
            &full.req("POST", &format!("{base}/"), h, b""),
            400,
            "POST / without create",
        );
        expect(
            &full.req("POST", &format!("{base}/?create=false"), h, b""),
            400,
            "create=false",
        );
        for m in ["GET", "HEAD", "DELETE", "PUT"] {
            let r = full.req(m, &format!("{base}/"), h, b"");
            expect(&r, 405, &format!("{m} /"));
            assert_eq!(r.header("Allow"), Some("POST"));
        }
        expect(
            &full.req("POST", &format!("{base}/?create=true"), h, b""),
            200,
            "create",
        );
        expect(
            &full.req("POST", &format!("{base}?create=true"), h, b""),
            200,
            "create again (no slash)",
        );
    }

    // config: written once, read whole or in ranges.
    let config = b"restic config: 0123456789";
    expect(
        &full.req("POST", &format!("{base}/config"), &[], config),
        200,
        "POST config",
    );
    expect(
        &full.req("POST", &format!("{base}/config"), &[], b"other"),
        403,
        "second POST config",
    );
    for accept in [V1, V2] {
        let h = [("Accept", accept)];
        let r = full.req("HEAD", &format!("{base}/config"), &h, b"");
        expect(&r, 200, "HEAD config");
        assert_eq!(
            r.header("Content-Length"),
            Some(config.len().to_string().as_str())
        );
        assert!(r.body.is_empty());
        let r = full.req("GET", &format!("{base}/config"), &h, b"");
        expect(&r, 200, "GET config");
        assert_eq!(r.body, config);
        let r = full.req(
            "GET",
            &format!("{base}/config"),
            &[("Accept", accept), ("Range", "bytes=0-")],
            b"",
        );
        expect(&r, 206, "GET config bytes=0-");
        assert_eq!(r.body, config);
        let r = full.req(
            "GET",
            &format!("{base}/config"),
            &[("Accept", accept), ("Range", "bytes=7-12")],
            b"",
        );
        expect(&r, 206, "GET config bytes=7-12");
        assert_eq!(r.body, &config[7..13]);
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes 7-12/{}", config.len()).as_str())
        );
        let r = full.req(
            "GET",
            &format!("{base}/config"),
            &[("Accept", accept), ("Range", "bytes=-5")],
            b"",
        );
        expect(&r, 206, "GET config suffix range");
        assert_eq!(r.body, &config[config.len() - 5..]);
        let r = full.req(
            "GET",
            &format!("{base}/config"),
            &[("Accept", accept), ("Range", "bytes=500-")],
            b"",
        );
        expect(&r, 416, "GET config unsatisfiable range");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes */{}", config.len()).as_str())
        );
        let r = full.req("PUT", &format!("{base}/config"), &h, b"x");
        expect(&r, 405, "PUT config");
        assert_eq!(r.header("Allow"), Some("HEAD, GET, POST, DELETE"));
    }

    // Every type: list, write, idempotent re-write, head, get, range, delete (idempotent).
    for t in TYPES {
        for (i, accept) in [V1, V2].into_iter().enumerate() {
            let h = [("Accept", accept)];
            let body = format!("{t} object {i} {}", "z".repeat(1000 * i + 10)).into_bytes();
            let name = sha256_hex(&body);
            let path = format!("{base}/{t}/{name}");
            expect(&full.req("HEAD", &path, &h, b""), 404, "HEAD missing");
            expect(&full.req("GET", &path, &h, b""), 404, "GET missing");
            expect(&full.req("POST", &path, &h, &body), 200, "POST object");
            expect(
                &full.req("POST", &path, &h, &body),
                200,
                "POST same object again",
            );
            let r = full.req("HEAD", &path, &h, b"");
            expect(&r, 200, "HEAD object");
            assert_eq!(
                r.header("Content-Length"),
                Some(body.len().to_string().as_str())
            );
            let r = full.req("GET", &path, &h, b"");
            expect(&r, 200, "GET object");
            assert_eq!(r.body, body);
            let r = full.req(
                "GET",
                &path,
                &[("Accept", accept), ("Range", "bytes=3-8")],
                b"",
            );
            expect(&r, 206, "GET object range");
            assert_eq!(r.body, &body[3..9]);
            check_extreme_ranges(&full, &path, accept, &body);
            if t == "data" {
                // A pack large enough to live in a blob rather than its row.
                let big: Vec<u8> = (0..100_000u32).map(|n| (n % 251) as u8).collect();
                let big_path = format!("{base}/data/{}", sha256_hex(&big));
                expect(
                    &full.req("POST", &big_path, &h, &big),
                    200,
                    "POST a large pack",
                );
                check_extreme_ranges(&full, &big_path, accept, &big);
                expect(
                    &full.req("DELETE", &big_path, &h, b""),
                    200,
                    "DELETE the large pack",
                );
            }
            // The listing, in the requested version.
            let r = full.req("GET", &format!("{base}/{t}/"), &h, b"");
            expect(&r, 200, "list");
            assert_eq!(r.header("Content-Type"), Some(accept));
            let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json list");
            let items = v.as_array().expect("array");
            if accept == V1 {
                assert!(items.iter().any(|x| x == &serde_json::json!(name)), "{v}");
            } else {
                assert!(
                    items
                        .iter()
                        .any(|x| x["name"] == name.as_str() && x["size"] == body.len() as u64),
                    "{v}"
                );
            }
            for m in ["POST", "DELETE", "PUT", "HEAD"] {
                let r = full.req(m, &format!("{base}/{t}/"), &h, b"");
                expect(&r, 405, &format!("{m} on a listing"));
                assert_eq!(r.header("Allow"), Some("GET"));
            }
            for m in ["PUT", "PATCH", "OPTIONS"] {
                let r = full.req(m, &path, &h, b"");
                expect(&r, 405, &format!("{m} on an object"));
                assert_eq!(r.header("Allow"), Some("HEAD, GET, POST, DELETE"));
            }
            // Content that does not hash to the name is refused and not stored.
            let other = format!("{name}-tampered");
            let wrong = format!("{base}/{t}/{}", sha256_hex(other.as_bytes()));
            expect(
                &full.req("POST", &wrong, &h, &body),
                400,
                "POST with wrong hash",
            );
            expect(
                &full.req("HEAD", &wrong, &h, b""),
                404,
                "wrong-hash object absent",
            );
            // Deletion, twice.
            if t != "data" || i == 0 {
                expect(&full.req("DELETE", &path, &h, b""), 200, "DELETE");
                expect(&full.req("DELETE", &path, &h, b""), 200, "DELETE again");
                expect(&full.req("GET", &path, &h, b""), 404, "GET deleted");
            }
        }
    }

    // Malformed names and path tricks.
    let h = [("Accept", V2)];
    let hash = "a".repeat(64);
    for (path, status) in [
        (format!("{base}/data/abc"), 400),
        (format!("{base}/data/{}", "A".repeat(64)), 400),
        (format!("{base}/data/{}", "a".repeat(63)), 400),
        (format!("{base}/data/{}", "a".repeat(65)), 400),
        (format!("{base}/data/{}g", "a".repeat(63)), 400),
        (format!("{base}/data/{hash}/extra"), 404),
        (format!("{base}/data//{hash}"), 404),
        (format!("{base}//data/{hash}"), 404),
        (format!("{base}/bogus/{hash}"), 404),
        (format!("{base}/bogus/"), 404),
        (format!("{base}/data"), 404),
        (format!("{base}/config/"), 404),
        (format!("{base}/data/../config"), 404),
        (format!("{base}/data/..%2Fconfig"), 400),
        (format!("{base}/data%2F{hash}"), 404),
        (format!("{base}/%2E%2E/config"), 404),
        (format!("{base}/./config"), 404),
        ("/restic/alice/../alice/repo/config".to_string(), 401),
        ("/restic/alice//repo/config".to_string(), 401),
        ("/restic/alice/repo%2Fx/config".to_string(), 401),
        ("/restic//repo/config".to_string(), 401),
        ("/restic/".to_string(), 401),
        ("/restic".to_string(), 401),
    ] {
        for m in ["GET", "POST"] {
            expect(
                &full.req(m, &path, &h, b"x"),
                status,
                &format!("{m} {path}"),
            );
        }
    }

    // Wrong content lengths: a body shorter than declared (the connection ends), longer than
    // declared (the excess is not part of the object), and an unparsable length.
    let body = b"declared content".to_vec();
    let name = sha256_hex(&body);
    let path = format!("{base}/data/{name}");
    let head = |len: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {}\r\nContent-Length: {len}\r\n\r\n",
            full.auth
        )
    };
    let mut short = head(&(body.len() + 10).to_string()).into_bytes();
    short.extend_from_slice(&body);
    if let Some(r) = full.send_raw_then(&short, true) {
        assert_eq!(r.status, 400, "body shorter than Content-Length");
    }
    let mut long = head(&(body.len() - 3).to_string()).into_bytes();
    long.extend_from_slice(&body);
    let r = full.send_raw(&long).expect("answer");
    expect(
        &r,
        400,
        "body longer than Content-Length (hash of the declared part differs)",
    );
    let mut bad = head("12x").into_bytes();
    bad.extend_from_slice(&body);
    let r = full.send_raw(&bad).expect("answer");
    expect(&r, 400, "unparsable Content-Length");
    expect(
        &full.req("HEAD", &path, &h, b""),
        404,
        "nothing stored by broken uploads",
    );

    // Modes: append-only deletes only locks and never rewrites config; read-only never
    // writes.
    let append = Wire::new(
        &server,
        "alice",
        &restic_token(&alice, "repo", "append-only"),
    );
    let ro = Wire::new(&server, "alice", &restic_token(&alice, "repo", "read-only"));
    let data = b"kept data".to_vec();
    let data_path = format!("{base}/data/{}", sha256_hex(&data));
    let lock = b"a lock".to_vec();
    let lock_path = format!("{base}/locks/{}", sha256_hex(&lock));
    expect(
        &append.req("POST", &data_path, &h, &data),
        200,
        "append-only POST data",
    );
    expect(
        &append.req("POST", &lock_path, &h, &lock),
        200,
        "append-only POST lock",
    );
    expect(
        &append.req("DELETE", &data_path, &h, b""),
        403,
        "append-only DELETE data",
    );
    expect(
        &append.req("DELETE", &format!("{base}/config"), &h, b""),
        403,
        "append-only DELETE config",
    );
    expect(
        &append.req("POST", &format!("{base}/config"), &h, b"new"),
        403,
        "append-only rewrite config",
    );
    expect(
        &append.req("DELETE", &lock_path, &h, b""),
        200,
        "append-only DELETE lock",
    );
    expect(
        &append.req("GET", &data_path, &h, b""),
        200,
        "append-only GET",
    );
    expect(&ro.req("GET", &data_path, &h, b""), 200, "read-only GET");
    expect(
        &ro.req("GET", &format!("{base}/data/"), &h, b""),
        200,
        "read-only list",
    );
    expect(
        &ro.req("POST", &lock_path, &h, &lock),
        403,
        "read-only POST lock",
    );
    expect(
        &ro.req("DELETE", &data_path, &h, b""),
        403,
        "read-only DELETE",
    );
    expect(
        &ro.req("POST", &format!("{base}/?create=true"), &h, b""),
        403,
        "read-only create",
    );
    expect(&full.req("HEAD", &data_path, &h, b""), 200, "data kept");
    expect(
        &full.req("DELETE", &format!("{base}/config"), &h, b""),
        200,
        "full DELETE config",
    );
    expect(
        &full.req("HEAD", &format!("{base}/config"), &h, b""),
        404,
        "config gone",
    );

    // Authentication.
    let r = Wire {
        port: server.port,
        auth: String::new(),
    };
    let mut no_auth =
        format!("GET {base}/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes();
    let resp = r.send_raw(&no_auth).expect("answer");
    expect(&resp, 401, "no credentials");
    assert!(
        resp.header("WWW-Authenticate")
            .is_some_and(|v| v.starts_with("Basic"))
    );
    no_auth.clear();
    let wrong = Wire::new(&server, "alice", "enc_0123456789abcdef_wrong");
    expect(
        &wrong.req("GET", &format!("{base}/config"), &h, b""),
        401,
        "wrong token",
    );
    let other_repo = Wire::new(&server, "alice", &restic_token(&alice, "elsewhere", "full"));
    expect(
        &other_repo.req("GET", &format!("{base}/keys/"), &h, b""),
        401,
        "token of another repo",
    );
    let mut garbage = format!("GET {base}/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic !!!\r\n\r\n").into_bytes();
    expect(
        &r.send_raw(&garbage).expect("answer"),
        401,
        "undecodable credentials",
    );
    garbage.clear();
    assert!(rows > 250, "only {rows} rows checked");
}
