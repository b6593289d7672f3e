//! Load generator for `/records`: records of SIZE bytes created and read back, either one
//! call per record at a given concurrency (each worker: `POST /records`, then `GET
//! /records/{id}` with the key), or all of them in batch calls of up to 1,000 (`POST
//! /records/batch`, then `POST /records/batch/get`). Prints one JSON line: the count, seconds,
//! records per second (create + get of each counted once), p50/p99 latency of the calls.
//! Used by `scripts/bench_records.py`.
//!
//! `records_load URL TOKEN COUNT SIZE single CONCURRENCY` or
//! `records_load URL TOKEN COUNT SIZE batch` (certificates are not checked: loopback
//! benchmarks only).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::RngCore as _;
use serde_json::{Value, json};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .expect("client")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: records_load URL TOKEN COUNT SIZE single CONCURRENCY | batch");
        std::process::exit(2);
    }
    let url = args[1].trim_end_matches('/').to_string();
    let token = args[2].clone();
    let count: usize = args[3].parse().expect("COUNT");
    let size: usize = args[4].parse().expect("SIZE");
    let mode = args[5].as_str();
    // Ids and data (hex, as enc-server-go's client sends them) are made before the clock.
    let mut rng = rand::thread_rng();
    let prefix = rng.next_u32();
    let records: Vec<(String, String)> = (0..count)
        .map(|i| {
            let mut b = vec![0u8; size];
            rng.fill_bytes(&mut b);
            (format!("{prefix:08x}{i:08x}"), hex::encode(b))
        })
        .collect();
    let failed = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(count * 2));
    let start = Instant::now();
    match mode {
        "single" => {
            let conc: usize = args
                .get(6)
                .and_then(|c| c.parse().ok())
                .expect("CONCURRENCY");
            let next = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..conc {
                    s.spawn(|| {
                        let c = client();
                        let mut mine = Vec::new();
                        while let Some((id, data)) =
                            records.get(next.fetch_add(1, Ordering::Relaxed))
                        {
                            let t = Instant::now();
                            let made = c
                                .post(format!("{url}/records"))
                                .bearer_auth(&token)
                                .json(&json!({ "id": id, "data": data }))
                                .send()
                                .ok()
                                .filter(|r| r.status().as_u16() == 201)
                                .and_then(|r| r.json::<Value>().ok());
                            mine.push(t.elapsed());
                            let Some(key) = made.as_ref().and_then(|m| m["key"].as_str()) else {
                                failed.fetch_add(1, Ordering::Relaxed);
                                continue;
                            };
                            let t = Instant::now();
                            let ok = c
                                .get(format!("{url}/records/{id}"))
                                .bearer_auth(&token)
                                .header("X-Record-Key", key)
                                .send()
                                .ok()
                                .filter(|r| r.status().is_success())
                                .and_then(|r| r.json::<Value>().ok())
                                .is_some_and(|v| v["data_hex"] == data.as_str());
                            mine.push(t.elapsed());
                            if !ok {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        latencies.lock().expect("latencies").extend(mine);
                    });
                }
            });
        }
        "batch" => {
            // Typed answers, bodies written straight to text: the client's own work stays
            // small next to the server's.
            #[derive(serde::Deserialize)]
            struct Made {
                id: String,
                key: String,
            }
            #[derive(serde::Deserialize)]
            struct Opened {
                #[serde(default)]
                data_hex: String,
            }
            #[derive(serde::Deserialize)]
            struct List<T> {
                records: Vec<T>,
            }
            let c = client();
            let mut mine = Vec::new();
            for chunk in records.chunks(1000) {
                let mut body = String::with_capacity(chunk.len() * (size * 2 + 40));
                body.push_str("{\"records\":[");
                for (i, (id, data)) in chunk.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&format!("{{\"id\":\"{id}\",\"data\":\"{data}\"}}"));
                }
                body.push_str("]}");
                let t = Instant::now();
                let made: List<Made> = c
                    .post(format!("{url}/records/batch"))
                    .bearer_auth(&token)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .expect("batch create")
                    .error_for_status()
                    .expect("batch create status")
                    .json()
                    .expect("batch create answer");
                mine.push(t.elapsed());
                let mut refs = String::with_capacity(made.records.len() * 120);
                refs.push_str("{\"records\":[");
                for (i, m) in made.records.iter().enumerate() {
                    if i > 0 {
                        refs.push(',');
                    }
                    refs.push_str(&format!("{{\"id\":\"{}\",\"key\":\"{}\"}}", m.id, m.key));
                }
                refs.push_str("]}");
                let t = Instant::now();
                let got: List<Opened> = c
                    .post(format!("{url}/records/batch/get"))
                    .bearer_auth(&token)
                    .header("Content-Type", "application/json")
                    .body(refs)
                    .send()
                    .expect("batch get")
                    .error_for_status()
                    .expect("batch get status")
                    .json()
                    .expect("batch get answer");
                mine.push(t.elapsed());
                for ((_, data), r) in chunk.iter().zip(&got.records) {
                    if r.data_hex != *data {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if got.records.len() != chunk.len() {
                    failed.fetch_add(chunk.len(), Ordering::Relaxed);
                }
            }
            latencies.lock().expect("latencies").extend(mine);
        }
        other => panic!("mode {other:?}: single or batch"),
    }
    let secs = start.elapsed().as_secs_f64();
    let mut l: Vec<Duration> = latencies.into_inner().expect("latencies");
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "{{\"count\":{count},\"failed\":{},\"seconds\":{secs:.3},\"records_per_sec\":{:.1},\"calls\":{},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
        failed.load(Ordering::Relaxed),
        count as f64 / secs,
        l.len(),
        pct(0.50),
        pct(0.99)
    );
}
