//! Writes the fuzz targets' seed corpora in `DIR/<target>/` (`fuzz/seeds`, committed):
//! requests and frames as restic, Hecate's client and `enc` send them (their documented
//! shapes), the configuration files the project ships, and what the real encoders make of a
//! vault tree, an age file, a key bundle and a record.
//!
//!     cargo run -p enc-e2e --example fuzz_seeds -- fuzz/seeds

use std::path::Path;
use std::str::FromStr as _;

use enc_crypto::age::x25519::Identity;
use enc_crypto::tree::*;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/seeds".into());
    let dir = Path::new(&root).join(target);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn joined(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&0xffu8)
}

fn main() {
    // restic: path, Authorization, Range, object size (8 bytes, big-endian).
    let hex = "0123456789abcdef".repeat(4);
    let auth = format!("Basic {}", enc_crypto::b64(b"alice:token-of-alice"));
    let size = 1_000_000u64.to_be_bytes();
    for (i, (path, range)) in [
        ("/restic/alice/laptop/".to_string(), ""),
        ("/restic/alice/laptop/config".to_string(), "bytes=0-"),
        ("/restic/alice/laptop/data/".to_string(), ""),
        (format!("/restic/alice/laptop/data/{hex}"), "bytes=100-199"),
        (format!("/restic/alice/laptop/keys/{hex}"), "bytes=-500"),
        (format!("/restic/alice/laptop/locks/{hex}"), ""),
        ("/restic/alice/laptop/snapshots/".to_string(), "bytes=0-0"),
    ]
    .iter()
    .enumerate()
    {
        let seed = joined(&[path.as_bytes(), auth.as_bytes(), range.as_bytes(), &size]);
        write("restic_request", &format!("{i}"), &seed);
    }

    // Mercury: both dialects, as README.md's table gives them.
    for (i, frame) in [
        "AUTH client-1:password",
        "NAME backup-2026.hecate",
        "DATA",
        "END",
        "LIST",
        "GET backup-2026.hecate",
        "PING",
        r#"{"type":"Auth","key":"client-1:password"}"#,
        r#"{"type":"UploadRequest","name":"backup.hecate","size":3}"#,
        r#"{"type":"DataChunk","data":[1,2,255],"is_final":false}"#,
        r#"{"type":"DataChunk","data":"AQL/","is_final":true}"#,
        r#"{"type":"ListRequest"}"#,
        r#"{"type":"GetRequest","name":"backup.hecate"}"#,
        r#"{"type":"Ping"}"#,
    ]
    .iter()
    .enumerate()
    {
        write("mercury_frame", &format!("{i}"), frame.as_bytes());
    }

    // /v1 bodies and queries: the kind byte, then what `enc` sends.
    for (kind, body) in [
        (
            0u8,
            r#"{"auth_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}"#,
        ),
        (
            1,
            r#"{"version":2,"seq":1,"prev":"","device_id":"11111111-1111-4111-8111-111111111111","device_name":"laptop","name_salt":"00112233445566778899aabbccddeeff","device_key":"AAAA","created":1,"signature":"AAAA"}"#,
        ),
        (8, r#"{"name":"team"}"#),
        (
            10,
            r#"{"user":"alice","auth_key":"AAAA","device":"laptop"}"#,
        ),
        (11, r#"{"id":"0123abcd","data":"hello"}"#),
        (12, r#"{"records":[{"id":"0123abcd","data":"hello"}]}"#),
        (13, r#"{"user":"alice"}"#),
        (14, r#"{"ranges":[{"blob":"b1","offset":0,"len":10}]}"#),
        (24, r#"{"header":"AAAA","signature":"AAAA"}"#),
        (26, "limit=10&before=5"),
        (27, "after=0&limit=100"),
        (29, "limit=50&cursor=abc"),
        (31, "erase=true"),
    ] {
        let mut seed = vec![kind];
        seed.extend_from_slice(body.as_bytes());
        write("v1_request", &format!("{kind}"), &seed);
    }

    // The configuration files the project ships.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let deploy = std::fs::read(root.join("deploy/enc-server.toml")).expect("deploy config");
    write("config", "deploy", &deploy);
    // What `enc-server --generate-config` prints, as built next to this example.
    let generated = std::process::Command::new(root.join("target/debug/enc-server"))
        .arg("--generate-config")
        .output()
        .expect("enc-server --generate-config (build it first)");
    write("config", "generated", &generated.stdout);

    // What the client decodes, as the real encoders make it.
    let piece = |n: u8| Piece {
        loc: Loc {
            blob: format!("blob-{n}"),
            offset: u64::from(n) * 100,
            len: 100,
        },
        cid: [n; 32],
        chash: [n ^ 0x55; 32],
    };
    let node = Node::canonical(vec![
        Entry {
            name: "docs".into(),
            mode: 0o755,
            mtime_ns: 1,
            kind: Kind::Dir { piece: piece(1) },
        },
        Entry {
            name: "link".into(),
            mode: 0o777,
            mtime_ns: 2,
            kind: Kind::Symlink {
                target: "docs/a.txt".into(),
            },
        },
        Entry {
            name: "report.pdf".into(),
            mode: 0o644,
            mtime_ns: 3,
            kind: Kind::File {
                size: 42,
                piece: piece(2),
            },
        },
    ])
    .expect("node");
    let mut seed = vec![0u8];
    seed.extend(node.encode());
    write("client_decode", "node", &seed);
    let header = CommitHeader {
        vault: "vault-1".into(),
        seq: 2,
        prev: Some([9; 32]),
        signer: Signer {
            account: Account::Key(enc_crypto::b64(&[3; 32])),
            key: enc_crypto::b64(&[4; 32]),
            certificate: Some("11111111-1111-4111-8111-111111111111".into()),
        },
        body: piece(5).loc,
        body_hash: [5; 32],
        adds: vec!["b1".into()],
        releases: vec!["b0".into()],
    };
    let mut seed = vec![1u8];
    seed.extend(header.message());
    write("client_decode", "header", &seed);
    let body = CommitBody {
        vault: header.vault.clone(),
        seq: header.seq,
        prev: header.prev,
        generation: 1,
        root: piece(6),
        time_ns: 7,
        host: "laptop".into(),
        changes: vec![Change {
            path: "docs/a.txt".into(),
            previous: None,
        }],
    };
    let mut seed = vec![2u8];
    seed.extend(header.message());
    seed.push(0xff);
    seed.extend(body.encode());
    write("client_decode", "body", &seed);
    let identity = Identity::from_str(
        "AGE-SECRET-KEY-1VYC8W4CQXZDW6E2MTFCDGF22LHVKCXCMSM5ZPDLCNHHWRQUA0JEQW02TGM",
    )
    .expect("identity");
    for (name, len) in [("age-small", 100usize), ("age-chunks", 70_000)] {
        let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut seed = vec![3u8];
        seed.extend(enc_crypto::seal_piece(&identity.to_public(), &plain).expect("seal"));
        write("client_decode", name, &seed);
    }
    let chain = serde_json::json!({
        "user_id": "u1",
        "account_key": enc_crypto::b64(&[3; 32]),
        "links": [{"version": 2, "seq": 1, "hash": "h", "prev": "", "kind": "device-add",
            "device_id": "d1", "device_name": "", "name_salt": "", "name_commitment": "c",
            "device_key": enc_crypto::b64(&[4; 32]), "created": 1, "signature": "AAAA"}],
    });
    let mut seed = vec![4u8];
    seed.extend(serde_json::to_vec(&chain).expect("json"));
    write("client_decode", "chain", &seed);
    let commits = serde_json::json!({"commits": [{"seq": 2, "hash": "h",
        "header": enc_crypto::b64(&header.message()), "signature": "AAAA", "created": 1,
        "author": "alice"}]});
    let mut seed = vec![4u8];
    seed.extend(serde_json::to_vec(&commits).expect("json"));
    write("client_decode", "commits", &seed);
    let mut seed = vec![5u8];
    seed.extend(enc_crypto::UserKeys::generate().wrap(&[7; 32]).as_bytes());
    write("client_decode", "bundle", &seed);
    let key = enc_crypto::record::RecordKey::from_hex(&"ab".repeat(32)).expect("key");
    let mut seed = vec![6u8];
    seed.extend(enc_crypto::record::seal_record(&key, "0123", b"a record"));
    write("client_decode", "record", &seed);
}
