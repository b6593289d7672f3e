//! restic's REST routes: a request's path, `Authorization` and `Range` headers, and the size
//! of the object it reads, split out of one input at 0xFF bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == 0xff);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let authorization = parts.next().unwrap_or_default();
    let range = parts.next().unwrap_or_default();
    let size = parts.next().map_or(0, |s| {
        s.iter().take(8).fold(0u64, |n, b| n << 8 | u64::from(*b))
    });
    enc_server::fuzzing::restic_request(&path, authorization, range, size);
});
