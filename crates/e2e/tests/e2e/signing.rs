//! Who signs what (issue 16): devices keep no account signing key; tree commits are signed
//! by the pushing device, which the server accepts only while it stands and readers check
//! through the signer's account chain; a revoked device's commits count up to the end its
//! revocation signed, and one forged with its stolen key after that end is refused.

use serde_json::Value;

use crate::harness::*;

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("json")
}

fn get(server: &Server, user: &User, path: &str) -> Value {
    http()
        .get(format!("{}{path}", server.url))
        .bearer_auth(user.token())
        .send()
        .expect("request")
        .json()
        .expect("json")
}

/// A byte string as a literal of the server's SQL engine.
fn bytes_literal(server: &Server, bytes: &[u8]) -> String {
    if server.pg.is_some() {
        format!("'\\x{}'::bytea", hex::encode(bytes))
    } else {
        format!("X'{}'", hex::encode(bytes))
    }
}

/// Puts `header`, signed by `sign`, into the vault's tree behind the server's back (as a
/// malicious server would), `device` named as its signer on the server's side.
fn slip_in(
    server: &Server,
    vault: &str,
    author: &str,
    device: Option<&str>,
    header: &enc_crypto::tree::CommitHeader,
    sign: impl Fn(&[u8]) -> String,
) {
    let message = header.message();
    let signature = enc_crypto::unb64(&sign(&message)).expect("signature");
    let hash = hex::encode(enc_crypto::tree::commit_hash(&message, &signature));
    let prev = header.prev.map(hex::encode).unwrap_or_default();
    let device = device.map_or_else(|| "NULL".to_string(), |d| format!("'{d}'"));
    // As the server stores a commit of version 2: with the account key it names.
    let signer_key = match &header.signer.account {
        enc_crypto::tree::Account::Key(k) => format!("'{k}'"),
        enc_crypto::tree::Account::Name(_) => "NULL".to_string(),
    };
    server.operator_sql(&format!(
        "INSERT INTO tree_commits (vault_id, device_id, signer_key, seq, hash, prev, header, \
         signature, author_id, created) VALUES ('{vault}', {device}, {signer_key}, {}, \
         '{hash}', '{prev}', {}, {}, '{author}', 1)",
        header.seq,
        bytes_literal(server, &message),
        bytes_literal(server, &signature),
    ));
}

/// The account's whole key bundle, unwrapped with the passphrase as a client does.
fn account_keys(server: &Server, user: &User) -> enc_crypto::UserKeys {
    let pre: Value = http()
        .post(format!("{}/v1/auth/prelogin", server.url))
        .json(&serde_json::json!({"user": user.name}))
        .send()
        .expect("prelogin")
        .json()
        .expect("json");
    let salt = enc_crypto::unb64(pre["salt"].as_str().expect("salt")).expect("base64");
    let param = |k: &str| pre["kdf"][k].as_u64().expect("kdf") as u32;
    let derived = enc_crypto::kdf::derive(
        user.passphrase.as_bytes(),
        &salt,
        enc_crypto::KdfParams {
            m_kib: param("m_kib"),
            t: param("t"),
            p: param("p"),
        },
    )
    .expect("derive");
    let wrapped: Value = http()
        .post(format!("{}/v1/account/keys", server.url))
        .bearer_auth(user.token())
        .json(&serde_json::json!({"auth_key": enc_crypto::b64(derived.auth_key.as_ref())}))
        .send()
        .expect("keys")
        .json()
        .expect("json");
    enc_crypto::UserKeys::unwrap(
        &derived.kek,
        wrapped["wrapped_keys"].as_str().expect("wrapped"),
    )
    .expect("unwrap")
}

#[test]
fn commits_are_signed_by_devices_and_a_revoked_device_signs_no_more() {
    let server = Server::start();
    let alice = server.user("alice", "admin");
    let bob = server.user("bob", "user");

    // The session file keeps the account's public key, never its signing key.
    let session = json(&std::fs::read_to_string(alice.path("config/session.json")).expect("read"));
    let held = json(session["keys"].as_str().expect("keys"));
    assert!(held.get("ed25519").is_none(), "{held}");
    assert!(held["ed25519_public"].is_string(), "{held}");

    // Acts of the account need the passphrase again: none given, a wrong one.
    let refused = alice
        .cmd(&["vault", "create", "team"])
        .env_remove("ENC_PASSPHRASE")
        .output()
        .expect("enc");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("ENC_PASSPHRASE"), "{said}");
    let refused = alice
        .cmd(&["vault", "create", "team"])
        .env("ENC_PASSPHRASE", "not the passphrase")
        .output()
        .expect("enc");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("wrong passphrase"), "{said}");
    // A session alone (say, a stolen one) gets no wrapped bundle to guess against offline.
    let refused = http()
        .post(format!("{}/v1/account/keys", server.url))
        .bearer_auth(alice.token())
        .json(&serde_json::json!({"auth_key": enc_crypto::b64(&[7u8; 32])}))
        .send()
        .expect("keys");
    assert_eq!(refused.status(), 401);
    assert!(!refused.text().expect("body").contains("wrapped"));
    alice.ok(&["vault", "create", "team"]);
    alice.ok(&["vault", "share", "team", "bob"]);

    // A second device of alice pushes; bob checks its commit through alice's chain.
    let phone = User::new(&server, "alice");
    phone.ok(&["login"]);
    std::fs::create_dir_all(phone.path("w")).expect("mkdir");
    std::fs::write(phone.path("w/plan.txt"), b"from the phone\n").expect("write");
    phone.ok(&["push", "w/.", "--vault", "team"]);
    let me = get(&server, &phone, "/v1/me");
    let phone_id = me["device_id"].as_str().expect("device").to_string();
    let vault = alice.vault_id("team");

    // Two devices may not answer to one name; a file that is no key certifies nothing.
    let listed = json(&alice.ok(&["device", "ls", "--json"]));
    let laptop_name = listed[0]["name"].as_str().expect("name").to_string();
    let taken = alice.fail(&["device", "rename", &phone_id, &laptop_name]);
    assert!(taken.contains("another device is named"), "{taken}");
    std::fs::write(alice.path("not-a-key.pub"), "hello\n").expect("write");
    let refused = alice.fail(&[
        "device",
        "add",
        "--public-key",
        "not-a-key.pub",
        "--name",
        "app",
    ]);
    assert!(refused.contains("public key must be"), "{refused}");
    assert_eq!(
        json(&alice.ok(&["device", "ls", "--json"]))
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let commits = get(&server, &alice, &format!("/v1/vaults/{vault}/commits"));
    let header = enc_crypto::unb64(commits["commits"][0]["header"].as_str().expect("header"))
        .expect("base64");
    let header = enc_crypto::tree::CommitHeader::decode(&header).expect("header");
    assert_eq!(
        header.signer.certificate.as_deref(),
        Some(phone_id.as_str())
    );
    bob.ok(&["pull", "-o", "w", "--vault", "alice/team"]);
    bob.assert_file("w/plan.txt", "from the phone\n");

    // Revoked, the phone's commit still counts (its revocation signed where its commits
    // end); the phone signs nothing more.
    alice.ok(&["device", "revoke", &phone_id]);
    let chain = get(&server, &alice, "/v1/account/chain");
    let last = chain["links"]
        .as_array()
        .expect("links")
        .last()
        .expect("link");
    let first_hash = commits["commits"][0]["hash"].as_str().expect("hash");
    assert_eq!(
        last["commit_ends"],
        format!("{vault} 1 {first_hash}"),
        "{last}"
    );
    std::fs::write(phone.path("w/plan.txt"), b"after the revocation\n").expect("write");
    phone.fail(&["push", "w/.", "--vault", "team"]);
    std::fs::remove_dir_all(bob.path("w")).expect("rm");
    bob.ok(&["pull", "-o", "w", "--vault", "alice/team"]);
    bob.assert_file("w/plan.txt", "from the phone\n");

    // A server holding the phone's stolen key forges commit 2 with it: refused by readers.
    let stolen = json(&std::fs::read_to_string(phone.path("config/session.json")).expect("read"));
    let key = enc_crypto::device::DeviceKey::from_secret_b64(
        stolen["device_key"].as_str().expect("device key"),
    )
    .expect("key");
    let head = &commits["commits"][0];
    let mut forged = header.clone();
    forged.seq = 2;
    forged.prev = Some(
        hex::decode(head["hash"].as_str().expect("hash"))
            .expect("hex")
            .try_into()
            .expect("32 bytes"),
    );
    forged.adds = Vec::new();
    forged.releases = Vec::new();
    let author = server.operator_sql("SELECT id FROM users WHERE name = 'alice'");
    let author = author.trim();
    slip_in(&server, &vault, author, Some(&phone_id), &forged, |m| {
        key.sign_b64(m)
    });
    let caught = bob.fail(&["pull", "-o", "forged", "--vault", "alice/team"]);
    assert!(caught.contains("after its revocation"), "{caught}");
    server.operator_sql(&format!(
        "DELETE FROM tree_commits WHERE vault_id = '{vault}' AND seq = 2"
    ));

    // Nor does the account key sign again once devices do: a copy of it left on a device
    // of an earlier build (here unwrapped with the passphrase, as such a file held it).
    let account = account_keys(&server, &alice);
    let mut old_style = forged.clone();
    old_style.signer.account = enc_crypto::tree::Account::Name("alice".into());
    old_style.signer.key = account.verifying_key_b64();
    old_style.signer.certificate = None;
    slip_in(&server, &vault, author, None, &old_style, |m| {
        account.sign_b64(m)
    });
    let caught = bob.fail(&["pull", "-o", "forged", "--vault", "alice/team"]);
    assert!(caught.contains("after devices began signing"), "{caught}");
    // The server itself takes no commit of version 1 (it names its signer), nor a link of
    // version 1 (it signs the user id and the device's name), from anyone.
    let message = old_style.message();
    let refused = http()
        .post(format!("{}/v1/vaults/{vault}/commits", server.url))
        .bearer_auth(alice.token())
        .json(&serde_json::json!({
            "header": enc_crypto::b64(&message),
            "signature": account.sign_b64(&message),
        }))
        .send()
        .expect("POST commit");
    assert_eq!(refused.status(), 400);
    assert!(refused.text().unwrap().contains("version 2"));
    let refused = http()
        .post(format!("{}/v1/devices", server.url))
        .bearer_auth(alice.token())
        .json(&serde_json::json!({
            "version": 1, "seq": 9, "prev": "", "device_id": "11111111-1111-4111-8111-111111111111",
            "device_name": "old", "device_key": enc_crypto::device::DeviceKey::generate().public_b64(),
            "created": 1, "signature": "AAAA",
        }))
        .send()
        .expect("POST device");
    assert_eq!(refused.status(), 400);
    assert!(refused.text().unwrap().contains("version 2"));

    // And alice's own device signs on.
    server.operator_sql(&format!(
        "DELETE FROM tree_commits WHERE vault_id = '{vault}' AND seq = 2"
    ));
    std::fs::create_dir_all(alice.path("w")).expect("mkdir");
    std::fs::write(alice.path("w/notes.txt"), b"from the laptop\n").expect("write");
    alice.ok(&["push", "w/.", "--vault", "team"]);
    std::fs::remove_dir_all(bob.path("w")).expect("rm");
    bob.ok(&["pull", "-o", "w", "--vault", "alice/team"]);
    bob.assert_file("w/notes.txt", "from the laptop\n");
}
