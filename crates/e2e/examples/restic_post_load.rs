//! Load generator for the restic REST protocol: N POSTs of fresh random objects (named by
//! their SHA-256) at a given concurrency, against any restic REST server. Prints one JSON line
//! with the count, seconds, ops/s and the p50/p99 latency. Used by `scripts/bench_restic.py`
//! and `scripts/bench_backups.py`.
//!
//! `cargo run --release -p enc-e2e --example restic_post_load -- URL COUNT SIZE CONCURRENCY`
//! where URL is the repository URL with credentials, e.g.
//! `https://alice:TOKEN@127.0.0.1:8443/restic/alice/repo/` (certificates are not checked:
//! loopback benchmarks only).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::RngCore as _;
use sha2::Digest as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: restic_post_load URL COUNT SIZE CONCURRENCY");
        std::process::exit(2);
    }
    let url = args[1].trim_end_matches('/').to_string();
    let count: usize = args[2].parse().expect("COUNT");
    let size: usize = args[3].parse().expect("SIZE");
    let conc: usize = args[4].parse().expect("CONCURRENCY");
    // Bodies and names are made before the clock starts.
    let mut rng = rand::thread_rng();
    let bodies: Vec<(String, Vec<u8>)> = (0..count)
        .map(|_| {
            let mut b = vec![0u8; size];
            rng.fill_bytes(&mut b);
            (hex::encode(sha2::Sha256::digest(&b)), b)
        })
        .collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(count));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..conc {
            s.spawn(|| {
                let client = reqwest::blocking::Client::builder()
                    .tls_danger_accept_invalid_certs(true)
                    .build()
                    .expect("client");
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, body)) = bodies.get(i) else {
                        latencies.lock().expect("latencies").extend(mine);
                        return;
                    };
                    let t = Instant::now();
                    let ok = client
                        .post(format!("{url}/data/{name}"))
                        .body(body.clone())
                        .send()
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    mine.push(t.elapsed());
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let mut l: Vec<Duration> = latencies.into_inner().expect("latencies");
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "{{\"count\":{count},\"failed\":{},\"seconds\":{secs:.3},\"ops_per_sec\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
        failed.load(Ordering::Relaxed),
        count as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
}
