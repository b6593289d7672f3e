//! Load generator for device backups (`POST /v1/backups`): one thread per device, each
//! posting its share of COUNT backups of SIZE random bytes in its own chain (each signed by
//! the device's key as the next entry), all devices at once. Prints one JSON line with the
//! count, failures, seconds, ops/s and the p50/p99 latency. Used by
//! `scripts/bench_backups.py`.
//!
//! `backup_post_load keygen DIR N`: N device keys, `DIR/K.key` (secret) and `DIR/K.pub`
//! (public, base64), for `enc device add --public-key DIR/K.pub`.
//! `backup_post_load run URL COUNT SIZE DEVICES_JSON`: DEVICES_JSON is a file holding
//! `[{"device": ID, "token": TOKEN, "key": "DIR/K.key"}, …]`, one thread each (certificates are
//! not checked: loopback benchmarks only).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use enc_crypto::device::{DeviceKey, Entry, EntryKind};
use rand::RngCore as _;
use sha2::Digest as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("keygen") if args.len() == 4 => keygen(&args[2], args[3].parse().expect("N")),
        Some("run") if args.len() == 6 => run(
            args[2].trim_end_matches('/'),
            args[3].parse().expect("COUNT"),
            args[4].parse().expect("SIZE"),
            &args[5],
        ),
        _ => {
            eprintln!("usage: backup_post_load keygen DIR N | run URL COUNT SIZE DEVICES_JSON");
            std::process::exit(2);
        }
    }
}

fn keygen(dir: &str, n: usize) {
    std::fs::create_dir_all(dir).expect("dir");
    for k in 0..n {
        let key = DeviceKey::generate();
        std::fs::write(format!("{dir}/{k}.key"), key.secret_b64().as_bytes()).expect("key");
        std::fs::write(format!("{dir}/{k}.pub"), key.public_b64()).expect("pub");
    }
}

fn run(url: &str, count: usize, size: usize, devices: &str) {
    let devices: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(devices).expect("devices")).expect("json");
    let devices = devices.as_array().expect("array");
    let per = count / devices.len();
    let latencies = Mutex::new(Vec::with_capacity(count));
    let failed = std::sync::atomic::AtomicUsize::new(0);
    // Bodies, and each device's chain ids, are made as the load runs (the chain needs the
    // signature of the one before); the signing is part of what a device does.
    let start = Instant::now();
    std::thread::scope(|s| {
        for d in devices {
            let (latencies, failed) = (&latencies, &failed);
            s.spawn(move || {
                let device = d["device"].as_str().expect("device");
                let token = d["token"].as_str().expect("token");
                let key = std::fs::read_to_string(d["key"].as_str().expect("key")).expect("key");
                let key = DeviceKey::from_secret_b64(key.trim()).expect("device key");
                let client = reqwest::blocking::Client::builder()
                    .tls_danger_accept_invalid_certs(true)
                    .build()
                    .expect("client");
                let chain: serde_json::Value = client
                    .get(format!("{url}/v1/devices/{device}/chain"))
                    .bearer_auth(token)
                    .send()
                    .and_then(|r| r.json())
                    .expect("chain");
                let user_id = chain["user_id"].as_str().expect("user").to_string();
                let server_id = chain["server_id"].as_str().expect("server").to_string();
                let last = chain["entries"].as_array().and_then(|e| e.last()).cloned();
                let mut counter = last
                    .as_ref()
                    .map_or(0, |l| l["counter"].as_u64().unwrap_or(0));
                let mut prev = last
                    .as_ref()
                    .and_then(|l| l["id"].as_str())
                    .unwrap_or("")
                    .to_string();
                let mut rng = rand::thread_rng();
                let mut mine = Vec::with_capacity(per);
                for _ in 0..per {
                    let mut body = vec![0u8; size];
                    rng.fill_bytes(&mut body);
                    let hash = hex::encode(sha2::Sha256::digest(&body));
                    counter += 1;
                    let entry = Entry {
                        user_id: &user_id,
                        server_id: &server_id,
                        device_id: device,
                        kind: EntryKind::Backup,
                        counter,
                        prev: &prev,
                        classification: "Confidential",
                        size: size as u64,
                        content_hash: &hash,
                        target: "",
                        created: 1_700_000_000,
                    };
                    let signature = key.sign_b64(&entry.message());
                    let t = Instant::now();
                    let query = [
                        ("device", device),
                        ("classification", "Confidential"),
                        ("created", "1700000000"),
                        ("counter", &counter.to_string()),
                        ("prev", &prev),
                        ("size", &size.to_string()),
                        ("hash", &hash),
                        ("signature", &signature),
                    ]
                    .iter()
                    .map(|(k, v)| format!("{k}={}", escape(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                    let ok = client
                        .post(format!("{url}/v1/backups?{query}"))
                        .bearer_auth(token)
                        .body(body)
                        .send()
                        .map(|r| r.status().as_u16() == 201)
                        .unwrap_or(false);
                    mine.push(t.elapsed());
                    if ok {
                        prev = entry.hash();
                    } else {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        counter -= 1;
                    }
                }
                latencies.lock().expect("latencies").extend(mine);
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let mut l: Vec<Duration> = latencies.into_inner().expect("latencies");
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64() * 1e3;
    let done = per * devices.len();
    println!(
        "{{\"count\":{done},\"failed\":{},\"seconds\":{secs:.3},\"ops_per_sec\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
        failed.load(std::sync::atomic::Ordering::Relaxed),
        done as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
}

/// Percent-encodes all but unreserved characters.
fn escape(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
