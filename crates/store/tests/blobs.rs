//! One blob-store conformance suite, run against every blob backend: the local filesystem (the
//! embedded default) and an S3-compatible store (scale-out), here a single-node Garage on
//! loopback that `enc-testkit` starts. With `CI=true` a missing `garage` fails the suite
//! instead of skipping it.

use bytes::Bytes;
use enc_store::blob::{ObjectBlobs, S3Settings};
use enc_store::{Blobs, StoreError};
use futures::StreamExt as _;
use std::sync::Arc;

/// Deterministic bytes that differ at every offset that matters.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn read_all(blobs: &Blobs, key: &str, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let mut s = blobs.read_range(key, range).await.expect("read");
    let mut out = Vec::new();
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b.expect("chunk"));
    }
    out
}

async fn is_missing(blobs: &Blobs, key: &str) -> bool {
    match blobs.read(key).await {
        Err(StoreError::NotFound) => true,
        Ok(mut s) => match s.next().await {
            Some(Err(StoreError::NotFound)) => true,
            other => panic!(
                "{key} should be missing, read gave {:?}",
                other.map(|r| r.is_ok())
            ),
        },
        Err(e) => panic!("{key}: {e}"),
    }
}

/// Writes `data` in pieces of `piece` bytes; until `finish`, readers still see `before`
/// (nothing, for a new key).
async fn write(blobs: &Blobs, key: &str, data: &[u8], piece: usize, before: Option<&[u8]>) {
    let mut w = blobs.writer(key).await.expect("writer");
    for p in data.chunks(piece.max(1)) {
        w.write(Bytes::copy_from_slice(p)).await.expect("write");
    }
    match before {
        None => assert!(is_missing(blobs, key).await, "{key} visible before finish"),
        Some(old) => assert!(
            read_all(blobs, key, None).await == old,
            "{key} changed early"
        ),
    }
    w.finish().await.expect("finish");
}

async fn suite(blobs: Blobs, label: &str) {
    blobs.ping().await.expect("ping");
    // Sizes around every boundary of both backends: one buffered put (≤ 1 MiB), direct
    // writes in 2 MiB parts with an unaligned tail, S3 multipart in 5 MiB parts.
    for (i, len) in [
        0usize,
        1,
        4096,
        (1 << 20) - 1,
        1 << 20,
        (1 << 20) + 1,
        (2 << 20) + 4097,
        (5 << 20) + 1,
        13 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("blobs/v{i}/{len}");
        let data = pattern(len, i as u8);
        write(&blobs, &key, &data, 300_001, None).await;
        let back = read_all(&blobs, &key, None).await;
        assert!(back == data, "{label}: {len} bytes came back different");
        if len > 10 {
            for r in [0..1, 1..len as u64 - 1, len as u64 / 2..len as u64] {
                let part = read_all(&blobs, &key, Some(r.clone())).await;
                assert!(
                    part == data[r.start as usize..r.end as usize],
                    "{label}: range {r:?} of {len}"
                );
            }
        }
        blobs.delete(&key).await.expect("delete");
        assert!(
            is_missing(&blobs, &key).await,
            "{label}: {key} after delete"
        );
    }

    // A missing blob, and deleting it twice.
    assert!(is_missing(&blobs, "blobs/none/at-all").await);
    blobs
        .delete("blobs/none/at-all")
        .await
        .expect("delete missing");

    // Aborted and dropped writers leave nothing, small or large.
    for len in [10usize, 7 << 20] {
        let key = format!("blobs/aborted/{len}");
        let mut w = blobs.writer(&key).await.expect("writer");
        w.write(Bytes::from(pattern(len, 3))).await.expect("write");
        w.abort().await.expect("abort");
        assert!(is_missing(&blobs, &key).await, "{label}: aborted {len}");
        let key = format!("blobs/dropped/{len}");
        let mut w = blobs.writer(&key).await.expect("writer");
        w.write(Bytes::from(pattern(len, 4))).await.expect("write");
        drop(w);
        assert!(is_missing(&blobs, &key).await, "{label}: dropped {len}");
    }

    // Writing a key again replaces it whole.
    let first = pattern(3 << 20, 5);
    write(&blobs, "blobs/again/x", &first, 1 << 20, None).await;
    write(&blobs, "blobs/again/x", &pattern(100, 6), 100, Some(&first)).await;
    assert_eq!(
        read_all(&blobs, "blobs/again/x", None).await,
        pattern(100, 6)
    );

    // Concurrent writers of different keys do not mix.
    let tasks: Vec<_> = (0..6u8)
        .map(|i| {
            let blobs = blobs.clone();
            tokio::spawn(async move {
                let key = format!("blobs/concurrent/{i}");
                let data = pattern((3 << 20) + usize::from(i) * 1001, 10 + i);
                write(&blobs, &key, &data, 65_536, None).await;
                assert!(read_all(&blobs, &key, None).await == data, "writer {i}");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
}

#[tokio::test]
async fn local_filesystem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs: Blobs = Arc::new(ObjectBlobs::local(dir.path()).expect("local"));
    suite(blobs, "local").await;
    // Nothing but finished blobs is left on disk: no staging file survives.
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                assert!(
                    !p.to_string_lossy().contains('#'),
                    "staging file left: {}",
                    p.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn s3_compatible_store() {
    if !enc_testkit::have_tool("garage") {
        return;
    }
    let g = enc_testkit::garage();
    let blobs: Blobs = Arc::new(
        ObjectBlobs::s3(&S3Settings {
            bucket: g.bucket.clone(),
            prefix: Some(format!("conformance-{}", hex(rand::random::<u64>()))),
            endpoint: Some(g.endpoint.clone()),
            region: "garage".into(),
            access_key_id: g.key_id.clone(),
            secret_access_key: g.secret.clone(),
            path_style: true,
        })
        .expect("s3"),
    );
    suite(blobs, "s3").await;
}

fn hex(x: u64) -> String {
    format!("{x:016x}")
}
