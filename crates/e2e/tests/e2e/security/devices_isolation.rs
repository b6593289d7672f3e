//! The isolation matrix, continued for devices, device backups and the account chains of a
//! vault's signers: another tenant's real ids answer exactly as made-up ones do.

use super::{Req, answer_like_made_up_ids, send};
use crate::harness::*;

#[test]
fn isolation_matrix_covers_devices_and_backups() {
    let server = Server::start();
    let alice = server.user("alice", "user");
    let bob = server.user("bob", "user");
    std::fs::write(alice.path("a.txt"), "alice's").expect("write");
    alice.ok(&["backup", "put", "a.txt"]);
    alice.ok(&["backup", "put", "a.txt", "--class", "Restricted"]);
    let devices: serde_json::Value =
        serde_json::from_str(&alice.ok(&["device", "ls", "--json"])).expect("json");
    let device = devices[0]["id"].as_str().expect("device").to_string();
    let at = alice.token();
    let bt = bob.token();
    let page: serde_json::Value = serde_json::from_str(
        &send(
            &server,
            &at,
            &Req {
                method: "GET",
                path: "/v1/backups?limit=1".into(),
                body: None,
            },
        )
        .1,
    )
    .expect("json");
    let backup = page["backups"][0]["id"].as_str().expect("id").to_string();
    let cursor = page["next_cursor"].as_str().expect("cursor").to_string();

    let fake_backup = "ab".repeat(32);
    let fake_device = "11111111-1111-4111-8111-111111111111";
    let fake_cursor = "MTIzLjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw";
    let tomb = "device=X&created=1&counter=1&prev=&signature=AAAA";
    let revoke =
        serde_json::json!({"version": 2, "seq": 2, "prev": "", "created": 1, "signature": "AAAA"});
    let get = |path: String| Req {
        method: "GET",
        path,
        body: None,
    };
    // A vault's signer chains: alice's vault, and alice's chain asked for through bob's,
    // even once bob has shared it with her (which needs no consent of hers).
    let alice_vault = alice.vault_id("default");
    let bob_vault = bob.vault_id("default");
    bob.ok(&["vault", "share", "default", "alice"]);
    let fake_vault = "22222222-2222-4222-8222-222222222222";
    // Signers by account key: alice's key (she signed a commit in her own vault) asked for
    // through her vault, and through bob's, where she signed nothing.
    std::fs::write(alice.path("t.txt"), "alice's tree").expect("write");
    alice.ok(&["push", "t.txt"]);
    let chain: serde_json::Value = serde_json::from_str(
        &send(
            &server,
            &at,
            &Req {
                method: "GET",
                path: "/v1/account/chain".into(),
                body: None,
            },
        )
        .1,
    )
    .expect("json");
    let alice_key = hex::encode(
        enc_crypto::unb64(chain["account_key"].as_str().expect("key")).expect("base64"),
    );
    let fake_key = "cd".repeat(32);
    let cases: Vec<(Req, Req)> = vec![
        (
            get(format!("/v1/vaults/{alice_vault}/signers/{alice_key}")),
            get(format!("/v1/vaults/{fake_vault}/signers/{alice_key}")),
        ),
        (
            get(format!("/v1/vaults/{bob_vault}/signers/{alice_key}")),
            get(format!("/v1/vaults/{bob_vault}/signers/{fake_key}")),
        ),
        (
            get(format!("/v1/vaults/{alice_vault}/chains/alice")),
            get(format!("/v1/vaults/{fake_vault}/chains/alice")),
        ),
        (
            get(format!("/v1/vaults/{bob_vault}/chains/alice")),
            get(format!("/v1/vaults/{bob_vault}/chains/nobody-at-all")),
        ),
        (
            get(format!("/v1/backups/{backup}")),
            get(format!("/v1/backups/{fake_backup}")),
        ),
        (
            get(format!("/v1/backups/{backup}/content")),
            get(format!("/v1/backups/{fake_backup}/content")),
        ),
        (
            Req {
                method: "DELETE",
                path: format!("/v1/backups/{backup}?{tomb}"),
                body: None,
            },
            Req {
                method: "DELETE",
                path: format!("/v1/backups/{fake_backup}?{tomb}"),
                body: None,
            },
        ),
        (
            get(format!("/v1/devices/{device}/chain")),
            get(format!("/v1/devices/{fake_device}/chain")),
        ),
        (
            Req {
                method: "PUT",
                path: format!("/v1/devices/{device}/name"),
                body: Some(serde_json::json!({"name": "mine now"})),
            },
            Req {
                method: "PUT",
                path: format!("/v1/devices/{fake_device}/name"),
                body: Some(serde_json::json!({"name": "mine now"})),
            },
        ),
        (
            Req {
                method: "POST",
                path: format!("/v1/devices/{device}/revoke"),
                body: Some(revoke.clone()),
            },
            Req {
                method: "POST",
                path: format!("/v1/devices/{fake_device}/revoke"),
                body: Some(revoke.clone()),
            },
        ),
    ];
    answer_like_made_up_ids(&server, &bt, &cases);
    // Listings filtered by another tenant's device, or paged with another tenant's cursor,
    // answer as with made-up ones.
    for (real, fake) in [
        (
            format!("/v1/backups?device={device}"),
            format!("/v1/backups?device={fake_device}"),
        ),
        (
            format!("/v1/backups?cursor={cursor}"),
            format!("/v1/backups?cursor={fake_cursor}"),
        ),
    ] {
        let (rs, rb) = send(&server, &bt, &get(real.clone()));
        let (fs, fb) = send(&server, &bt, &get(fake));
        assert_eq!((rs, &rb), (fs, &fb), "GET {real}");
        assert!(!rb.contains(&backup), "{rb}");
    }
    // An entry posted with bob's credential in the name of alice's device is refused as any
    // other device's would be, and alice's devices and backups are untouched.
    let post = |dev: &str| Req {
        method: "POST",
        path: format!(
            "/v1/backups?device={dev}&classification=Internal&created=1&counter=1&prev=&size=0&hash={}&signature=AAAA",
            "0".repeat(64)
        ),
        body: None,
    };
    let (rs, rb) = send(&server, &bt, &post(&device));
    let (fs, fb) = send(&server, &bt, &post(fake_device));
    assert_eq!(rs, 403, "{rb}");
    assert_eq!((rs, &rb), (fs, &fb));
    let mine: serde_json::Value =
        serde_json::from_str(&alice.ok(&["backup", "ls", "--json"])).expect("json");
    assert_eq!(mine.as_array().map(Vec::len), Some(2));
    alice.ok(&["backup", "get", &backup, "-o", "back"]);
    alice.assert_file("back", "alice's");
    let devices_after: serde_json::Value =
        serde_json::from_str(&alice.ok(&["device", "ls", "--json"])).expect("json");
    assert_eq!(devices_after[0]["name"], devices[0]["name"]);
    assert!(devices_after[0]["revoked_seq"].is_null());
}
