//! Mercury (Hecate's WebSocket archive protocol), driven over TLS by a client built on
//! Python's `websockets` (`tests/mercury_client.py`), in both dialects, on `/ws` and on the
//! dedicated listener, with each of the three kinds of credentials.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

mod lifetimes;

const PSK: &str = "preshared key of the tests";
const CAROL_PASSWORD: &str = "carol's password";

/// A server with Mercury on `/ws` and a dedicated listener, a client list (carol, and viewer
/// who may not upload), a preshared key, and the server's certificate exported.
struct Fixture {
    server: Server,
    tmp: tempfile::TempDir,
    cafile: PathBuf,
}

/// `upload --dialect D --key K --name N --file F`, the client's arguments for one upload.
fn upload<'a>(dialect: &'a str, key: &'a str, name: &'a str, file: &'a str) -> Vec<&'a str> {
    vec![
        "upload",
        "--dialect",
        dialect,
        "--key",
        key,
        "--name",
        name,
        "--file",
        file,
    ]
}

/// `wss://…/ws` on a server's main listener.
fn ws_url(server: &Server) -> String {
    format!("{}/ws", server.url.replacen("https://", "wss://", 1))
}

impl Fixture {
    /// A server (on the backend `ENC_TEST_BACKEND` picks) with `mercury` added to its
    /// `[mercury]` section.
    fn new(mercury: &str) -> Option<Self> {
        Self::on(mercury, |config, envs| {
            Some(Server::start_with_env(config, &[], envs))
        })
    }

    /// The same on PostgreSQL + Garage, ready for [`Server::replica`].
    fn scaled_out(mercury: &str) -> Option<Self> {
        Self::on(mercury, Server::start_scaled_out_with_env)
    }

    fn on(
        mercury: &str,
        start: impl FnOnce(&str, &[(&str, &str)]) -> Option<Server>,
    ) -> Option<Self> {
        if !have_python_websockets() {
            return None;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let hash = |pw: &str| {
            let mut c = Command::new(bin("enc-server"))
                .arg("hash-password")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("hash-password");
            use std::io::Write as _;
            writeln!(c.stdin.take().expect("stdin"), "{pw}").expect("write");
            let out = c.wait_with_output().expect("wait");
            assert!(out.status.success());
            String::from_utf8(out.stdout)
                .expect("utf8")
                .trim()
                .to_string()
        };
        let clients = serde_json::json!([
            { "client_id": "carol", "key_hash": hash(CAROL_PASSWORD),
              "permissions": { "can_upload": true, "can_download": true, "can_list": true,
                               "max_file_size": null, "max_total_storage": null } },
            { "client_id": "viewer", "key_hash": hash("viewer's password"),
              "permissions": { "can_upload": false, "can_download": true, "can_list": true } }
        ]);
        let auth = tmp.path().join("auth.json");
        std::fs::write(&auth, clients.to_string()).expect("write auth.json");
        let config = format!(
            "[mercury]\nlisten = \"127.0.0.1:0\"\nauth_config = \"{}\"\n{mercury}\n",
            auth.display()
        );
        let server = start(&config, &[("MERCURY_AUTH_KEY", PSK)])?;
        let cafile = tmp.path().join("server.pem");
        let out = server.admin_cmd(&["cert", "export"]);
        assert!(out.status.success(), "cert export failed");
        std::fs::write(&cafile, out.stdout).expect("write cacert");
        Some(Self {
            server,
            tmp,
            cafile,
        })
    }

    /// `wss://…/ws` on the main listener.
    fn ws_url(&self) -> String {
        ws_url(&self.server)
    }

    /// The dedicated listener, at `/` as Hecate's client connects.
    fn dedicated_url(&self) -> String {
        format!(
            "{}/",
            self.server.mercury_url.as_ref().expect("mercury listener")
        )
    }

    fn client(&self, url: &str, args: &[&str]) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mercury_client.py");
        let mut c = Command::new("python3");
        c.arg(script)
            .args(["--url", url, "--cafile", &self.cafile.display().to_string()])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, url: &str, args: &[&str]) -> Output {
        self.client(url, args)
            .output()
            .expect("running the python client")
    }

    fn ok(&self, url: &str, args: &[&str]) -> String {
        let out = self.run(url, args);
        assert!(
            out.status.success(),
            "mercury client {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a script of steps on one connection; what the server sent, one line each.
    fn script(&self, steps: &[&str]) -> Vec<String> {
        self.ok(&self.ws_url(), &[&["script"], steps].concat())
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Names (first column) a key lists.
    fn names(&self, key: &str, dialect: &str) -> Vec<String> {
        self.ok(
            &self.ws_url(),
            &["list", "--key", key, "--dialect", dialect],
        )
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
    }

    /// Bytes of Mercury blobs on disk (waits up to 60 s for the collector to reach `want`).
    fn stored_bytes(&self, want: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.server.blob_bytes("mercury") != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        self.server.blob_bytes("mercury")
    }
}

/// The three kinds of credentials: an enc token, a listed client, the preshared key.
fn keys(f: &Fixture) -> Vec<(&'static str, String)> {
    let alice = f.server.user("alice", "user");
    let token = alice
        .ok(&["token", "create", "--mercury", "--label", "hecate"])
        .trim()
        .to_string();
    assert!(token.starts_with("enc_"), "token: {token}");
    vec![
        ("token", token),
        ("client list", format!("carol:{CAROL_PASSWORD}")),
        ("preshared key", PSK.to_string()),
    ]
}

#[test]
fn mercury_200mib_in_both_dialects_with_every_kind_of_key() {
    let Some(f) = Fixture::new("") else { return };
    let src = f.path("archive.hecate");
    let size: u64 = 200 << 20;
    random_file(&src, size);
    let src_s = src.display().to_string();
    let want = sha256_file(&src);
    for (kind, key) in keys(&f) {
        for (i, dialect) in ["text", "json"].into_iter().enumerate() {
            // Alternate the main listener's /ws and the dedicated listener's /.
            let url = if i == 0 {
                f.ws_url()
            } else {
                f.dedicated_url()
            };
            let name = format!("big-{dialect}.hecate");
            let started = Instant::now();
            let accepted = f.ok(&url, &upload(dialect, &key, &name, &src_s));
            assert_eq!(accepted.trim(), name, "{kind}/{dialect}");
            let listing = f.ok(&url, &["list", "--dialect", "json", "--key", &key]);
            assert!(
                listing
                    .lines()
                    .any(|l| l.starts_with(&format!("{name}\t{size}\t"))),
                "{kind}/{dialect}: {name} of {size} bytes not listed: {listing}"
            );
            assert!(f.names(&key, "text").contains(&name), "{kind}: text LIST");
            let out = f.path("back.hecate");
            let got = f.ok(
                &url,
                &[
                    "download",
                    "--dialect",
                    dialect,
                    "--key",
                    &key,
                    "--name",
                    &name,
                    "--out",
                    &out.display().to_string(),
                ],
            );
            assert_eq!(
                got.trim(),
                format!("{size} {want}"),
                "{kind}/{dialect}: every byte back"
            );
            assert!(same_file(&src, &out), "{kind}/{dialect}: download differs");
            std::fs::remove_file(&out).expect("rm");
            eprintln!(
                "{kind}/{dialect}: 200 MiB up, listed and down in {:?}",
                started.elapsed()
            );
        }
    }
    // Each key has its own archives: the token's are alice's, charged to her.
    let spaces: Vec<Vec<String>> = keys_listing(&f);
    assert!(spaces.iter().all(|names| names.len() == 2), "{spaces:?}");
    let admin = f.server.user("root", "admin");
    let users: serde_json::Value =
        serde_json::from_str(&admin.ok(&["user", "ls", "--json"])).expect("json");
    let alice = users
        .as_array()
        .expect("array")
        .iter()
        .find(|u| u["name"] == "alice")
        .expect("alice");
    assert_eq!(alice["usage_bytes"].as_u64(), Some(2 * size));
    assert_eq!(f.stored_bytes(6 * size), 6 * size);
}

fn sha256_file(p: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(p)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

fn keys_listing(f: &Fixture) -> Vec<Vec<String>> {
    [format!("carol:{CAROL_PASSWORD}"), PSK.to_string()]
        .iter()
        .map(|k| f.names(k, "json"))
        .collect()
}

fn spawn_upload(f: &Fixture, dialect: &str, name: &str, file: &Path) -> Child {
    f.client(
        &f.ws_url(),
        &upload(dialect, PSK, name, &file.display().to_string()),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn client")
}

#[test]
fn mercury_dropped_uploads_leave_nothing_and_concurrent_names_never_collide() {
    let Some(f) = Fixture::new("") else { return };
    let src = f.path("src.hecate");
    random_file(&src, 12 << 20);
    for dialect in ["text", "json"] {
        let out = f.ok(
            &f.ws_url(),
            &[
                upload(dialect, PSK, "dropped.hecate", &src.display().to_string()),
                vec!["--drop-after", "5"],
            ]
            .concat(),
        );
        assert!(out.contains("dropped after 5242880 bytes"), "{out}");
    }
    assert!(
        f.names(PSK, "text").is_empty(),
        "a dropped upload is listed"
    );
    assert_eq!(f.stored_bytes(0), 0, "a dropped upload left bytes behind");

    // Six uploads of one name at once, each with its own content.
    let files: Vec<PathBuf> = (0..6)
        .map(|i| {
            let p = f.path(&format!("c{i}"));
            random_file(&p, (3 << 20) + i * 1000);
            p
        })
        .collect();
    let children: Vec<Child> = files
        .iter()
        .enumerate()
        .map(|(i, p)| spawn_upload(&f, ["text", "json"][i % 2], "same.hecate", p))
        .collect();
    let mut accepted = Vec::new();
    for (c, p) in children.into_iter().zip(&files) {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "concurrent upload failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            name.starts_with("same") && name.ends_with(".hecate"),
            "{name}"
        );
        accepted.push((name, p.clone()));
    }
    let mut names: Vec<&String> = accepted.iter().map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 6, "two uploads got one name: {accepted:?}");
    assert!(names.iter().any(|n| n.as_str() == "same.hecate"));
    for (name, p) in &accepted {
        let out = f.path("back");
        f.ok(
            &f.ws_url(),
            &[
                "download",
                "--key",
                PSK,
                "--name",
                name,
                "--out",
                &out.display().to_string(),
            ],
        );
        assert!(
            same_file(p, &out),
            "{name} does not hold its own upload's bytes"
        );
    }
    let listed = f.names(PSK, "text");
    assert_eq!(listed.len(), 6, "{listed:?}");
}

#[test]
fn mercury_refuses_bad_input_with_the_protocols_error_and_stores_nothing() {
    let Some(f) = Fixture::new(
        "max_file_size = \"4MiB\"\nmax_total_storage = \"6MiB\"\nmax_connections = 3\n\
         declared_size = \"exact\"\n",
    ) else {
        return;
    };
    let auth = format!("text:AUTH {PSK}");
    let jauth = format!("json:{}", serde_json::json!({"type": "Auth", "key": PSK}));

    // Wrong keys, in both dialects; the connection is closed.
    let r = f.script(&["text:AUTH wrong", "recvall:5"]);
    assert_eq!(r, ["ERROR Invalid authentication", "<closed 1008>"]);
    let r = f.script(&["text:AUTH carol:wrong", "recvall:5"]);
    assert_eq!(r[0], "ERROR Invalid authentication");
    let r = f.script(&[
        r#"json:{"type":"Auth","key":"enc_0123456789abcdef_nope"}"#,
        "recvall:5",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r[0]).expect("json");
    assert_eq!(
        (v["type"].as_str(), v["success"].as_bool()),
        (Some("AuthResult"), Some(false))
    );
    assert_eq!(r[1], "<closed 1008>");
    // Nothing but PING before AUTH.
    let r = f.script(&[
        "text:PING",
        "recv",
        "text:LIST",
        "recv",
        "text:NAME x.hecate",
        "recv",
    ]);
    assert_eq!(
        r,
        [
            "PONG",
            "ERROR Authentication required",
            "ERROR Authentication required"
        ]
    );
    let r = f.script(&[r#"json:{"type":"ListRequest"}"#, "recv"]);
    assert!(r[0].contains(r#""code":"AuthRequired""#), "{r:?}");

    // Unknown commands and message types, bad names, binary frames before DATA.
    let long = format!("text:NAME {}", "a".repeat(256));
    let r = f.script(&[
        &auth,
        "recv",
        "text:FROB x",
        "recv",
        "text:NAME ../etc/passwd",
        "recv",
        "text:NAME a/b.hecate",
        "recv",
        "text:NAME a\\b",
        "recv",
        "text:NAME bell\u{7}.hecate",
        "recv",
        &long,
        "recv",
        "bin:100",
        "recv",
        "text:NAME ok.hecate",
        "recv",
        "bin:100",
        "recv",
        "text:PING",
        "recv",
    ]);
    assert_eq!(r[0], "OK");
    assert!(r[1].starts_with("ERROR Invalid command"), "{r:?}");
    for line in &r[2..7] {
        assert!(line.starts_with("ERROR invalid filename"), "{r:?}");
    }
    assert!(r[7].starts_with("ERROR binary frame before DATA"), "{r:?}");
    assert_eq!(r[8], "ACCEPT ok.hecate");
    assert!(r[9].starts_with("ERROR binary frame before DATA"), "{r:?}");
    assert_eq!(r[10], "PONG", "the connection still serves after refusals");
    let r = f.script(&[
        &jauth,
        "recv",
        r#"json:{"type":"Frobnicate"}"#,
        "recv",
        "json:{not json",
        "recv",
        r#"json:{"type":"UploadRequest","name":"../x","size":1}"#,
        "recv",
        "bin:10",
        "recv",
        r#"json:{"type":"DataChunk","data":[1,2],"is_final":true}"#,
        "recv",
    ]);
    assert!(
        r[1].contains(r#""code":"InvalidRequest""#) && r[1].contains("Frobnicate"),
        "{r:?}"
    );
    assert!(r[2].contains(r#""code":"InvalidRequest""#), "{r:?}");
    assert!(r[3].contains(r#""type":"UploadRejected""#), "{r:?}");
    assert!(r[4].contains(r#""code":"InvalidRequest""#), "{r:?}");
    assert!(r[5].contains("No upload in progress"), "{r:?}");

    // Over-size: declared, then actual (text has no declared size; JSON lies).
    let r = f.script(&[
        &jauth,
        "recv",
        r#"json:{"type":"UploadRequest","name":"big.hecate","size":5000000}"#,
        "recv",
    ]);
    assert!(r[1].contains(r#""code":"FileTooLarge""#), "{r:?}");
    let big = f.path("big.hecate");
    random_file(&big, 5 << 20);
    for (dialect, declared) in [("text", None), ("json", Some("1000"))] {
        let mut args = upload(dialect, PSK, "big.hecate", big.to_str().expect("utf8"));
        if let Some(d) = declared {
            args.extend(["--declared", d]);
        }
        let out = f.run(&f.ws_url(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{dialect}: {err}");
        assert!(
            err.contains("File too large") || err.contains("more bytes than the 1000 declared"),
            "{dialect}: {err}"
        );
    }
    // Declared more than arrives.
    let small = f.path("small.hecate");
    random_file(&small, 1 << 20);
    let out = f.run(
        &f.ws_url(),
        &[
            upload("json", PSK, "short.hecate", small.to_str().expect("utf8")),
            vec!["--declared", "2000000"],
        ]
        .concat(),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("declared 2000000 bytes but received 1048576")
    );
    // A frame over 1 MiB.
    let r = f.script(&[
        &auth,
        "recv",
        "text:NAME huge-frame.hecate",
        "recv",
        "text:DATA",
        "bin:1048577",
        "recvall:5",
    ]);
    assert!(r[2].starts_with("ERROR chunk of 1048577 bytes"), "{r:?}");
    assert_eq!(f.stored_bytes(0), 0, "refused uploads left bytes behind");
    assert!(f.names(PSK, "text").is_empty());

    // Quota: 6 MiB for the preshared key; 4 MiB fit, the next 4 MiB do not (text: while
    // streaming; JSON: up front).
    let four = f.path("four.hecate");
    random_file(&four, 4 << 20);
    f.ok(
        &f.ws_url(),
        &upload("text", PSK, "four.hecate", four.to_str().unwrap()),
    );
    for dialect in ["text", "json"] {
        let out = f.run(
            &f.ws_url(),
            &upload(dialect, PSK, "more.hecate", four.to_str().unwrap()),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Quota exceeded") || err.contains("QuotaExceeded"),
            "{dialect}: {err}"
        );
    }
    assert_eq!(f.names(PSK, "text"), ["four.hecate"]);
    assert_eq!(f.stored_bytes(4 << 20), 4 << 20);

    // Permissions of the client list: viewer may list and download, not upload.
    let r = f.script(&[
        "text:AUTH viewer:viewer's password",
        "recv",
        "text:NAME v.hecate",
        "recv",
        "text:LIST",
        "recv",
    ]);
    assert_eq!(r[0], "OK");
    assert!(r[1].starts_with("ERROR Permission denied"), "{r:?}");
    assert_eq!(r[2], "END");

    // Connections: three held open, the fourth is told why and closed; others still served.
    let holders: Vec<Child> = (0..3)
        .map(|_| {
            f.client(&f.ws_url(), &["script", &auth, "recv", "sleep:6"])
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let r = f.script(&[&auth, "recvall:5"]);
    assert!(
        r[0].starts_with("ERROR too many connections (limit 3)"),
        "{r:?}"
    );
    assert_eq!(r[1], "<closed 1013>");
    for mut h in holders {
        h.wait().expect("wait");
    }
    let r = f.script(&[&auth, "recv", "text:PING", "recv"]);
    assert_eq!(
        r,
        ["OK", "PONG"],
        "the server serves again once connections close"
    );
    assert_eq!(health(&http(), &f.server), 200);
    assert_eq!(f.names(PSK, "json"), ["four.hecate"]);
}

#[test]
fn mercury_memory_stays_flat_through_a_2gib_archive() {
    let Some(f) = Fixture::new("") else { return };
    let src = f.path("2g.hecate");
    let size: u64 = 2 << 30;
    random_file(&src, size);
    let want = sha256_file(&src);
    let rss = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb << 10)
    };
    let pid = f.server.pid();
    // Warm up (TLS, database, one small upload) before taking the idle size.
    let r = f.script(&[&format!("text:AUTH {PSK}"), "recv", "text:PING", "recv"]);
    assert_eq!(r, ["OK", "PONG"]);
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss(pid);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(idle));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    f.ok(
        &f.ws_url(),
        &upload("text", PSK, "2g.hecate", src.to_str().unwrap()),
    );
    let got = f.ok(
        &f.ws_url(),
        &[
            "download",
            "--key",
            PSK,
            "--name",
            "2g.hecate",
            "--out",
            "/dev/null",
        ],
    );
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().expect("sampler");
    assert_eq!(got.trim(), format!("{size} {want}"), "every byte back");
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "server RSS idle {} MiB, peak {} MiB",
        idle >> 20,
        peak >> 20
    );
    assert!(
        peak <= idle + (32 << 20),
        "RSS grew from {} MiB to {} MiB during a 2 GiB transfer",
        idle >> 20,
        peak >> 20
    );
}
