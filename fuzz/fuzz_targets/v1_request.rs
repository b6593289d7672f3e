//! Every `/v1` (and `/records`) request body and query string: the first byte picks the
//! type, the rest is the body or query.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&kind, input)) = data.split_first() {
        enc_server::fuzzing::v1_request(kind, input);
    }
});
