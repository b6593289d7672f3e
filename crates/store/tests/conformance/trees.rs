//! Vault trees: commits appended only on the head, in one transaction with the blobs they add
//! and release; every refusal changes nothing.

use super::*;

/// A finished upload of `size` bytes by `u` to `vault`, charged `charged` while it streamed.
pub(super) async fn uploaded(
    meta: &Meta,
    u: &UserRow,
    vault: &str,
    id: &str,
    size: i64,
    charged: i64,
) {
    tenant::scope(u.id.clone(), async {
        meta.create_upload(
            UploadRow {
                id: id.into(),
                vault_id: vault.into(),
                user_id: u.id.clone(),
                blob_key: format!("blob-{id}"),
                size: -1,
                hash: String::new(),
                created: now(),
            },
            64,
        )
        .await
        .expect("upload");
        if charged > 0 {
            meta.charge_upload(id, charged, None).await.expect("charge");
        }
        meta.complete_upload(id, size, "h").await.expect("complete");
    })
    .await;
}

/// A commit of `u` on `prev` (`seq` after it), its body at the start of `body`.
pub(super) fn commit(
    u: &UserRow,
    vault: &str,
    seq: i64,
    prev: &str,
    adds: &[&str],
    releases: &[&str],
    body: &str,
) -> NewTreeCommit {
    NewTreeCommit {
        vault_id: vault.into(),
        device: None,
        signer_key: None,
        user_id: u.id.clone(),
        seq,
        hash: format!("hash-{seq}-{}", uuid::Uuid::new_v4().simple()),
        prev: prev.into(),
        header: vec![seq as u8; 40],
        signature: vec![9; 64],
        adds: adds.iter().map(|s| s.to_string()).collect(),
        releases: releases.iter().map(|s| s.to_string()).collect(),
        body_blob: body.into(),
        body_end: 10,
        quota: None,
        now: now(),
    }
}

pub(super) async fn append(meta: &Meta, u: &UserRow, c: NewTreeCommit) -> Result<TreeAppend> {
    tenant::scope(u.id.clone(), meta.tree_append(c)).await
}

async fn head(meta: &Meta, u: &UserRow, vault: &str) -> Option<TreeCommitRow> {
    tenant::scope(u.id.clone(), meta.tree_head(vault))
        .await
        .expect("head")
}

#[tokio::test]
async fn tree_commits_append_only_on_the_head_with_their_blobs() {
    both(|meta| async move {
        let (alice, vault) = user(&meta, "alice").await;
        let (bob, bob_vault) = user(&meta, "bob").await;
        assert_eq!(head(&meta, &alice, &vault).await, None);
        uploaded(&meta, &alice, &vault, "p1", 100, 100).await;
        uploaded(&meta, &alice, &vault, "p2", 50, 50).await;
        let first = match append(
            &meta,
            &alice,
            commit(&alice, &vault, 1, "", &["p1", "p2"], &[], "p1"),
        )
        .await
        .expect("first")
        {
            TreeAppend::Appended(row) => row,
            other => panic!("{other:?}"),
        };
        assert_eq!(head(&meta, &alice, &vault).await.as_ref(), Some(&first));
        assert_eq!(usage(&meta, &alice.id).await, 150);

        // Not on the head: told which one it is, nothing changes.
        uploaded(&meta, &alice, &vault, "p3", 30, 30).await;
        for (seq, prev) in [(1, ""), (2, "other"), (3, first.hash.as_str())] {
            let got = append(
                &meta,
                &alice,
                commit(&alice, &vault, seq, prev, &["p3"], &[], "p3"),
            )
            .await
            .expect("behind");
            assert_eq!(got, TreeAppend::Behind(Some(first.clone())), "{seq} {prev}");
        }
        // Refusals, each changing nothing.
        uploaded(&meta, &bob, &bob_vault, "b1", 10, 10).await;
        tenant::scope(alice.id.clone(), async {
            meta.create_upload(
                UploadRow {
                    id: "streaming".into(),
                    vault_id: vault.clone(),
                    user_id: alice.id.clone(),
                    blob_key: "blob-streaming".into(),
                    size: -1,
                    hash: String::new(),
                    created: now(),
                },
                64,
            )
            .await
            .expect("streaming");
        })
        .await;
        let prev = first.hash.clone();
        let mut outside = commit(&alice, &vault, 2, &prev, &["p3"], &[], "p3");
        outside.body_end = 31;
        for (what, c) in [
            (
                "another's upload",
                commit(&alice, &vault, 2, &prev, &["b1"], &[], "p1"),
            ),
            (
                "an unfinished upload",
                commit(&alice, &vault, 2, &prev, &["streaming"], &[], "p1"),
            ),
            (
                "an unknown release",
                commit(&alice, &vault, 2, &prev, &["p3"], &["nope"], "p1"),
            ),
            (
                "a body in no blob",
                commit(&alice, &vault, 2, &prev, &["p3"], &[], "nope"),
            ),
            (
                "a body in a released blob",
                commit(&alice, &vault, 2, &prev, &["p3"], &["p1"], "p1"),
            ),
            ("a body past its blob's end", outside),
            (
                "a blob named twice",
                commit(&alice, &vault, 2, &prev, &["p3"], &["p3"], "p1"),
            ),
        ] {
            let got = append(&meta, &alice, c).await;
            assert!(
                matches!(got, Err(StoreError::Conflict(_))),
                "{what}: {got:?}"
            );
        }
        // Someone who may not write to the vault.
        let got = append(
            &meta,
            &bob,
            commit(&bob, &vault, 2, &prev, &["b1"], &[], "b1"),
        )
        .await;
        assert!(matches!(got, Err(StoreError::NotFound)), "{got:?}");
        // The quota counts what an add was not charged while it streamed.
        uploaded(&meta, &alice, &vault, "uncharged", 500, 0).await;
        let mut over = commit(&alice, &vault, 2, &prev, &["uncharged"], &[], "p1");
        over.quota = Some(400);
        let got = append(&meta, &alice, over).await;
        assert!(matches!(got, Err(StoreError::QuotaExceeded)), "{got:?}");
        assert_eq!(head(&meta, &alice, &vault).await.as_ref(), Some(&first));
        assert_eq!(usage(&meta, &alice.id).await, 180);

        // The next commit adds one blob and releases another: usage and collection follow.
        let second = match append(
            &meta,
            &alice,
            commit(&alice, &vault, 2, &prev, &["p3"], &["p2"], "p3"),
        )
        .await
        .expect("second")
        {
            TreeAppend::Appended(row) => row,
            other => panic!("{other:?}"),
        };
        assert_eq!(second.prev, first.hash);
        assert_eq!(usage(&meta, &alice.id).await, 130);
        let due = meta.gc_pending(now() + 1, 100).await.expect("gc");
        assert!(due.contains(&"blob-p2".to_string()), "{due:?}");
        assert!(
            !due.iter().any(|k| k == "blob-p1" || k == "blob-p3"),
            "{due:?}"
        );
        tenant::scope(alice.id.clone(), async {
            let all = meta.tree_commits(&vault, 0, 10).await.expect("commits");
            assert_eq!(all, [first.clone(), second.clone()]);
            assert_eq!(
                meta.tree_commits(&vault, 1, 10).await.expect("after"),
                std::slice::from_ref(&second)
            );
            assert_eq!(
                meta.tree_commits(&vault, 0, 1).await.expect("limit"),
                std::slice::from_ref(&first)
            );
            let ids: Vec<String> = ["p1", "p2", "p3", "nope"].map(String::from).into();
            let mut live = meta.tree_blobs(&vault, &ids).await.expect("blobs");
            live.sort_by(|a, b| a.id.cmp(&b.id));
            assert_eq!(
                live.iter()
                    .map(|b| (b.id.as_str(), b.size, b.added_seq))
                    .collect::<Vec<_>>(),
                [("p1", 100, 1), ("p3", 30, 2)]
            );
            assert_eq!(live[0].blob_key, "blob-p1");
        })
        .await;

        // Two appends racing for one place: exactly one lands.
        uploaded(&meta, &alice, &vault, "r1", 10, 10).await;
        uploaded(&meta, &alice, &vault, "r2", 10, 10).await;
        let (a, b) = tokio::join!(
            append(
                &meta,
                &alice,
                commit(&alice, &vault, 3, &second.hash, &["r1"], &[], "r1")
            ),
            append(
                &meta,
                &alice,
                commit(&alice, &vault, 3, &second.hash, &["r2"], &[], "r2")
            ),
        );
        let landed = [a.expect("a"), b.expect("b")];
        assert_eq!(
            landed
                .iter()
                .filter(|r| matches!(r, TreeAppend::Appended(_)))
                .count(),
            1,
            "{landed:?}"
        );
        assert!(
            landed
                .iter()
                .any(|r| matches!(r, TreeAppend::Behind(Some(h)) if h.seq == 3))
        );

        // Removing the vault gives its bytes back and queues its blobs, uploads included.
        tenant::scope(alice.id.clone(), meta.delete_vault(&vault))
            .await
            .expect("rm vault");
        assert_eq!(usage(&meta, &alice.id).await, 0);
        let due = meta.gc_pending(now() + 1, 100).await.expect("gc");
        for key in ["blob-p1", "blob-p3", "blob-r1", "blob-r2", "blob-uncharged"] {
            assert!(due.contains(&key.to_string()), "{key}: {due:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn device_commits_need_a_standing_device_and_a_revocation_names_where_they_end() {
    both(|meta| async move {
        let (alice, vault) = user(&meta, "alice").await;
        let (bob, bob_vault) = user(&meta, "bob").await;
        let link = |seq: i64, prev: &str, kind: &str, ends: &str| AccountLinkRow {
            user_id: alice.id.clone(),
            seq,
            hash: format!("link-{seq}"),
            prev: prev.into(),
            kind: kind.into(),
            device_id: "d1".into(),
            device_name: "laptop".into(),
            device_key: "key-d1".into(),
            created: now(),
            signature: "sig".into(),
            version: 2,
            name_salt: String::new(),
            name_commitment: String::new(),
            last_counter: 0,
            last_entry: String::new(),
            commit_ends: ends.into(),
        };
        tenant::scope(alice.id.clone(), async {
            meta.add_device(
                link(1, "", "device-add", ""),
                DeviceRow {
                    user_id: alice.id.clone(),
                    id: "d1".into(),
                    name: "laptop".into(),
                    public_key: "key-d1".into(),
                    created: now(),
                    last_seen: now(),
                    added_seq: 1,
                    revoked_seq: None,
                    revoked_at: None,
                },
                None,
            )
            .await
            .expect("device");
        })
        .await;
        let by = |device: &str, key: &str, seq: i64, prev: &str, add: &str| NewTreeCommit {
            device: Some((device.into(), key.into())),
            ..commit(&alice, &vault, seq, prev, &[add], &[], add)
        };
        uploaded(&meta, &alice, &vault, "p1", 10, 10).await;
        // Another key than the certified one, or another device: refused, nothing changes.
        for (device, key) in [("d1", "other-key"), ("d9", "key-d1")] {
            let got = append(&meta, &alice, by(device, key, 1, "", "p1")).await;
            assert!(matches!(got, Err(StoreError::Conflict(_))), "{got:?}");
        }
        let first = match append(&meta, &alice, by("d1", "key-d1", 1, "", "p1"))
            .await
            .expect("first")
        {
            TreeAppend::Appended(row) => row,
            other => panic!("{other:?}"),
        };
        let ends = tenant::scope(alice.id.clone(), meta.commit_ends(&alice.id))
            .await
            .expect("ends");
        assert_eq!(
            ends,
            vec![("d1".to_string(), vault.clone(), 1, first.hash.clone())]
        );
        // A signer's chain is shown to readers of a vault the signer committed to, only.
        let chain = meta.signer_chain(&vault, &alice.id).await.expect("chain");
        assert_eq!(chain.map(|c| c.len()), Some(1));
        for (v, u) in [(&vault, &bob.id), (&bob_vault, &alice.id)] {
            assert!(meta.signer_chain(v, u).await.expect("chain").is_none());
        }
        // A revocation must name where the device's commits end.
        let right = format!("{vault} 1 {}", first.hash);
        for wrong in [String::new(), format!("{vault} 1 {}", "0".repeat(64))] {
            let got = tenant::scope(
                alice.id.clone(),
                meta.revoke_device(link(2, "link-1", "device-revoke", &wrong), now()),
            )
            .await;
            assert!(matches!(got, Err(StoreError::Conflict(_))), "{got:?}");
        }
        tenant::scope(
            alice.id.clone(),
            meta.revoke_device(link(2, "link-1", "device-revoke", &right), now()),
        )
        .await
        .expect("revoke");
        // Revoked, the device appends nothing more.
        uploaded(&meta, &alice, &vault, "p2", 10, 10).await;
        let got = append(&meta, &alice, by("d1", "key-d1", 2, &first.hash, "p2")).await;
        assert!(matches!(got, Err(StoreError::Conflict(_))), "{got:?}");
        assert_eq!(head(&meta, &alice, &vault).await, Some(first));
    })
    .await;
}

/// `blob_refs` pages through every referenced blob, each once, whatever the page size, with
/// whose it is and what it holds.
#[tokio::test]
async fn blob_refs_page_through_every_referenced_blob_once() {
    both(|meta| async move {
        let (alice, vault) = user(&meta, "alice").await;
        let (bob, bob_vault) = user(&meta, "bob").await;
        for (u, v, ids) in [
            (&alice, &vault, ["a1", "a2", "a3"]),
            (&bob, &bob_vault, ["b1", "b2", "b3"]),
        ] {
            for id in ids {
                uploaded(&meta, u, v, id, 10, 10).await;
            }
            let c = commit(u, v, 1, "", &ids, &[], ids[0]);
            assert!(matches!(
                append(&meta, u, c).await.expect("append"),
                TreeAppend::Appended(_)
            ));
        }
        let all = |limit: i64| {
            let meta = meta.clone();
            async move {
                let mut out = Vec::new();
                let mut cursor = Some(String::new());
                while let Some(at) = cursor {
                    let (page, next) = meta.blob_refs(&at, limit).await.expect("page");
                    assert!(page.len() as i64 <= limit);
                    out.extend(page);
                    cursor = next;
                }
                out
            }
        };
        let one = all(1).await;
        let many = all(1000).await;
        let keys: Vec<&str> = one.iter().map(|r| r.blob_key.as_str()).collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 6, "{keys:?}");
        assert_eq!(keys.len(), 6, "each once: {keys:?}");
        assert_eq!(one, many);
        let a1 = one.iter().find(|r| r.blob_key == "blob-a1").expect("a1");
        assert_eq!((a1.owner.as_str(), a1.size), ("alice", 10));
        assert!(
            a1.what.starts_with("vault default tree blob "),
            "{}",
            a1.what
        );
    })
    .await;
}
