//! Load generator for the restic REST protocol: N POSTs of fresh random objects (named by
//! their SHA-256) at a given concurrency, against any restic REST server. Prints one JSON line
//! with the count, seconds and ops/s. Used by `scripts/bench_restic.py`.
//!
//! `cargo run --release -p enc-e2e --example restic_post_load -- URL COUNT SIZE CONCURRENCY`
//! where URL is the repository URL with credentials, e.g.
//! `https://alice:TOKEN@127.0.0.1:8443/restic/alice/repo/` (certificates are not checked:
//! loopback benchmarks only).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

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
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..conc {
            s.spawn(|| {
                let client = reqwest::blocking::Client::builder()
                    .tls_danger_accept_invalid_certs(true)
                    .build()
                    .expect("client");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, body)) = bodies.get(i) else {
                        return;
                    };
                    let ok = client
                        .post(format!("{url}/data/{name}"))
                        .body(body.clone())
                        .send()
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"count\":{count},\"failed\":{},\"seconds\":{secs:.3},\"ops_per_sec\":{:.1}}}",
        failed.load(Ordering::Relaxed),
        count as f64 / secs
    );
}
