//! One Mercury text frame, of either dialect (Hecate's text commands, or its client's JSON
//! messages).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = std::str::from_utf8(data) {
        enc_server::fuzzing::mercury_frame(frame);
    }
});
