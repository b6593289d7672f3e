//! Outages (issue 18): the database or the blob store stops under load and comes back. Each
//! test runs a PostgreSQL cluster or a Garage of its own, never the machine's shared one:
//! requests in flight fail cleanly (a 503 that says the storage is not answering, or
//! Mercury's error; never a hang), `/readyz` says not ready meanwhile, and the same server
//! works again once the storage is back, without a restart, with nothing acknowledged lost.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

/// The longest any request may take while the storage is down: the pool's wait for a
/// connection (10 s) or the blob store's retries (15 s), and a margin.
const ANSWER_WITHIN: Duration = Duration::from_secs(25);

/// What one request of the background load got.
#[derive(Debug)]
struct Answer {
    status: Option<u16>,
    took: Duration,
    body: String,
}

/// restic's POST of data files of `size` bytes in a loop until told to stop: every answer,
/// and the bodies the server acknowledged (to be read back afterwards). Up to 32 KiB they
/// are kept in the database, larger ones in the blob store.
struct ResticLoad {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    acked: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ResticLoad {
    fn start(server: &Server, user: &str, token: &str, size: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (url, user, token) = (
            format!("{}/restic/{user}/laptop", server.url),
            user.to_string(),
            token.to_string(),
        );
        let (s, a, k) = (stop.clone(), answers.clone(), acked.clone());
        let thread = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .danger_accept_invalid_certs(true)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client");
            let mut n = 0u64;
            while !s.load(Ordering::SeqCst) {
                n += 1;
                let mut body = format!("restic data {n} ").into_bytes();
                body.resize(size.max(body.len()), 0);
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut body[12..]);
                let began = Instant::now();
                let resp = client
                    .post(format!("{url}/data/{}", sha256_hex(&body)))
                    .basic_auth(&user, Some(&token))
                    .body(body.clone())
                    .send();
                let took = began.elapsed();
                let answer = match resp {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        if status == 200 {
                            k.lock().unwrap().push(body);
                        }
                        Answer {
                            status: Some(status),
                            took,
                            body: r.text().unwrap_or_default(),
                        }
                    }
                    Err(e) => Answer {
                        status: None,
                        took,
                        body: e.to_string(),
                    },
                };
                let failed = answer.status != Some(200);
                a.lock().unwrap().push(answer);
                if failed {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        });
        Self {
            stop,
            answers,
            acked,
            thread: Some(thread),
        }
    }

    /// Once the storage is back: waits until the server is ready and twenty more bodies are
    /// acknowledged, stops the loop, and checks every answer it got ([`check_load`]).
    fn after_recovery(mut self, server: &Server, user: &str, token: &str) {
        wait_ready(server);
        self.wait_acked(20);
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().expect("running").join().expect("load");
        let answers = std::mem::take(&mut *self.answers.lock().unwrap());
        let acked = std::mem::take(&mut *self.acked.lock().unwrap());
        eprintln!(
            "restic's POSTs: {} answered 200, {} a 503, the slowest in {:?}",
            acked.len(),
            answers.iter().filter(|a| a.status == Some(503)).count(),
            answers.iter().map(|a| a.took).max().unwrap_or_default()
        );
        check_load(server, user, token, &answers, &acked);
    }

    /// Waits until `more` further bodies have been acknowledged (a 200), for a minute at
    /// most.
    fn wait_acked(&self, more: usize) {
        let target = self.acked.lock().unwrap().len() + more;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.acked.lock().unwrap().len() < target {
            assert!(
                Instant::now() < deadline,
                "restic's POSTs were not answered 200 again: {:?}",
                self.answers.lock().unwrap().last()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ResticLoad {
    /// A test that fails midway stops its load too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// `/readyz`: its status and body, and how long it took.
fn readyz(server: &Server) -> (u16, String, Duration) {
    let began = Instant::now();
    let r = http()
        .get(format!("{}/readyz", server.url))
        .send()
        .expect("readyz answers");
    let status = r.status().as_u16();
    (status, r.text().unwrap_or_default(), began.elapsed())
}

/// Waits until `/readyz` says ready.
fn wait_ready(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body, _) = readyz(server);
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server never became ready again: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The load's answers: each a 200 or a 503 that says the storage is not answering (never a
/// 500, a cut connection or a wait past [`ANSWER_WITHIN`]), some of each; every body
/// acknowledged reads back the same.
fn check_load(server: &Server, user: &str, token: &str, answers: &[Answer], acked: &[Vec<u8>]) {
    for a in answers {
        assert!(
            a.took < ANSWER_WITHIN,
            "a request waited {:?} while the storage was down: {a:?}",
            a.took
        );
        match a.status {
            Some(200) => {}
            Some(503) => assert!(a.body.contains("not answering"), "{a:?}"),
            _ => panic!("a request during the outage got neither 200 nor 503: {a:?}"),
        }
    }
    let refused = answers.iter().filter(|a| a.status == Some(503)).count();
    assert!(refused > 0, "no request met the outage: {answers:?}");
    for body in acked {
        let back = http()
            .get(format!(
                "{}/restic/{user}/laptop/data/{}",
                server.url,
                sha256_hex(body)
            ))
            .basic_auth(user, Some(token))
            .send()
            .expect("read back");
        assert_eq!(back.status(), 200);
        assert_eq!(back.bytes().expect("body").as_ref(), body.as_slice());
    }
}

fn restic_repo(server: &Server, user: &User) -> String {
    let token = restic_token(user, "laptop", "full");
    let created = http()
        .post(format!(
            "{}/restic/{}/laptop/?create=true",
            server.url, user.name
        ))
        .basic_auth(&user.name, Some(&token))
        .send()
        .expect("restic create");
    assert!(created.status().is_success(), "{}", created.status());
    token
}

/// PostgreSQL crashes (`pg_ctl -m immediate`) under restic's writes and comes back: requests
/// get a 503 within the pool's timeout, `/readyz` says the database is not ready at once,
/// `enc push` says the storage is not answering; once PostgreSQL is back the same server
/// answers without a restart and nothing acknowledged is lost.
#[test]
fn postgres_restarting_under_load_is_a_503_and_the_server_recovers() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let server = Server::start_on_storage(&format!(
        "database_url = \"{}\"\ndatabase_owner_url = \"{}\"\n",
        pg.app_url(),
        pg.owner_url()
    ));
    let alice = server.user("alice", "user");
    std::fs::write(alice.path("a.txt"), "pushed before the outage").unwrap();
    alice.ok(&["push", "a.txt"]);
    let token = restic_repo(&server, &alice);
    let load = ResticLoad::start(&server, "alice", &token, 1000);
    load.wait_acked(20);

    pg.crash();
    eprintln!("postgres stopped");
    let (status, body, took) = readyz(&server);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database not ready"), "{body}");
    assert!(took < Duration::from_secs(3), "readyz took {took:?}");
    std::fs::write(alice.path("b.txt"), "pushed during the outage").unwrap();
    let began = Instant::now();
    let err = alice.fail(&["push", "b.txt"]);
    assert!(err.contains("not answering"), "{err}");
    assert!(began.elapsed() < ANSWER_WITHIN, "{:?}", began.elapsed());
    eprintln!("enc push refused in {:?}", began.elapsed());
    std::thread::sleep(Duration::from_secs(2));

    pg.start_again();
    load.after_recovery(&server, "alice", &token);
    alice.ok(&["push", "b.txt"]);
    alice.ok(&["pull", "a.txt", "-o", "a-back.txt"]);
    alice.assert_file("a-back.txt", "pushed before the outage");
    alice.ok(&["pull", "b.txt", "-o", "b-back.txt"]);
    alice.assert_file("b-back.txt", "pushed during the outage");
}

/// Garage is killed during uploads (restic's, a large `enc push`, a Mercury upload) and
/// started again: each upload fails within the blob store's retry bound with a 503 or the
/// protocol's error, `/readyz` names the blob store, and afterwards the same server stores
/// and serves again, with what was acknowledged intact.
#[test]
fn garage_stopping_during_uploads_is_a_503_and_the_server_recovers() {
    if !have_tool("garage") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let garage = Garage::launch(&dir.path().join("garage"));
    let server = Server::start_on_storage(&garage_blob_config(&garage, dir.path(), "enc"));
    let alice = server.user("alice", "user");
    random_file(&alice.path("first.bin"), 3 << 20);
    alice.ok(&["push", "first.bin"]);
    let token = restic_repo(&server, &alice);
    let mercury_token = alice
        .ok(&["token", "create", "--mercury"])
        .trim()
        .to_string();
    let load = ResticLoad::start(&server, "alice", &token, 256 << 10);
    load.wait_acked(20);

    // A large push in flight when Garage goes.
    random_file(&alice.path("big.bin"), 64 << 20);
    let mut push = alice
        .cmd(&["push", "big.bin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("enc push");
    std::thread::sleep(Duration::from_millis(700));
    garage.kill();
    let began = Instant::now();
    let (status, body, took) = readyz(&server);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("blob store not ready"), "{body}");
    assert!(took < Duration::from_secs(3), "readyz took {took:?}");
    let deadline = Instant::now() + ANSWER_WITHIN + Duration::from_secs(30);
    let pushed = loop {
        if let Some(status) = push.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "enc push hung after Garage stopped"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let said =
        String::from_utf8_lossy(&push.wait_with_output().expect("output").stderr).into_owned();
    eprintln!(
        "enc push after Garage stopped: {pushed} in {:?}: {said}",
        began.elapsed()
    );
    // The push may have finished before Garage went; if not, it says why.
    if !pushed.success() {
        assert!(said.contains("not answering"), "{said}");
    }
    random_file(&alice.path("archive.hecate"), 2 << 20);
    let mercury = crate::erasure::mercury_try_upload(
        &server,
        &mercury_token,
        "archive.hecate",
        &alice.path("archive.hecate"),
        alice.dir.path(),
    );
    if let Some(out) = &mercury {
        let said = crate::erasure::assert_mercury_refused(out, "not answering");
        eprintln!("mercury upload refused after {:?}: {said}", began.elapsed());
    }
    assert!(began.elapsed() < Duration::from_secs(90));

    garage.start();
    garage.wait_for_s3();
    load.after_recovery(&server, "alice", &token);
    alice.ok(&["push", "big.bin"]);
    alice.ok(&["pull", "big.bin", "-o", "big-back.bin"]);
    assert!(same_file(
        &alice.path("big.bin"),
        &alice.path("big-back.bin")
    ));
    alice.ok(&["pull", "first.bin", "-o", "first-back.bin"]);
    assert!(same_file(
        &alice.path("first.bin"),
        &alice.path("first-back.bin")
    ));
    if mercury.is_some() {
        assert!(crate::erasure::mercury_upload(
            &server,
            &mercury_token,
            "archive.hecate",
            &alice.path("archive.hecate"),
            alice.dir.path(),
        ));
    }
}
