//! What the client decodes of what a server sends back (a malicious server is in the threat
//! model): tree nodes, commit headers and bodies, age files, account chains and commit
//! listings, key bundles and records. The first byte picks the decoder.
#![no_main]

use std::str::FromStr as _;
use std::sync::LazyLock;

use enc_crypto::age::x25519::Identity;
use enc_crypto::tree::{CommitBody, CommitHeader, Node};
use libfuzzer_sys::fuzz_target;

/// A fixed identity: the seed corpus's age files are encrypted to it.
static IDENTITY: LazyLock<Identity> = LazyLock::new(|| {
    Identity::from_str("AGE-SECRET-KEY-1VYC8W4CQXZDW6E2MTFCDGF22LHVKCXCMSM5ZPDLCNHHWRQUA0JEQW02TGM")
        .expect("identity")
});

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 7 {
        // Decoders take only canonical bytes: what they accept encodes back to itself.
        0 => {
            if let Ok(node) = Node::decode(rest) {
                assert_eq!(node.encode(), rest);
            }
        }
        1 => {
            if let Ok(header) = CommitHeader::decode(rest) {
                assert_eq!(header.message(), rest);
            }
        }
        2 => {
            let Some(split) = rest.iter().position(|b| *b == 0xff) else {
                return;
            };
            if let Ok(header) = CommitHeader::decode(&rest[..split]) {
                let body = &rest[split + 1..];
                if let Ok(b) = CommitBody::decode(body, &header) {
                    assert_eq!(b.encode(), body);
                }
            }
        }
        // The two ways the client opens an age file agree.
        3 => {
            let id: &dyn enc_crypto::age::Identity = &*IDENTITY;
            let whole = enc_crypto::open_piece(&[id], rest);
            let mut streamed = Vec::new();
            let stream = enc_crypto::decrypt_stream(&[id], rest, 1, |chunk| {
                streamed.extend_from_slice(chunk);
                Ok(())
            });
            match (whole, stream) {
                (Ok(a), Ok(n)) => assert!(a == streamed && n == a.len() as u64),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("open {:?} but decrypt {:?}", a.is_ok(), b.is_ok()),
            }
        }
        4 => {
            if let Ok(chain) = serde_json::from_slice::<enc_proto::AccountChain>(rest) {
                let key = chain.account_key.clone();
                let _ = enc_client::devices::verify_chain(&chain.user_id, &key, &chain);
            }
            if let Ok(page) = serde_json::from_slice::<enc_proto::TreeCommits>(rest) {
                for c in page.commits {
                    if let Ok(bytes) = enc_crypto::unb64(&c.header) {
                        let _ = CommitHeader::decode(&bytes);
                    }
                }
            }
        }
        5 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = enc_crypto::UserKeys::unwrap(&[7; 32], text);
                let _ = enc_crypto::record::RecordKey::from_hex(text);
            }
        }
        _ => {
            let key = enc_crypto::record::RecordKey::from_hex(&"ab".repeat(32)).expect("key");
            let _ = enc_crypto::record::open_record(&key, "0123", rest);
        }
    }
});
