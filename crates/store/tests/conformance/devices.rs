//! Devices, the account chain and device backups, on both engines: links and entries append
//! only in order, a revocation ends its device's sessions and tokens and its later entries,
//! a tombstone gives the space back, and listings page newest first.

use super::*;

fn link(user: &str, seq: i64, prev: &str, kind: &str, device: &str) -> AccountLinkRow {
    AccountLinkRow {
        user_id: user.into(),
        seq,
        hash: format!("link-{seq}"),
        prev: prev.into(),
        kind: kind.into(),
        device_id: device.into(),
        device_name: "laptop".into(),
        device_key: "key".into(),
        created: now(),
        signature: "sig".into(),
        version: 2,
        name_salt: String::new(),
        name_commitment: String::new(),
        last_counter: 0,
        last_entry: String::new(),
        commit_ends: String::new(),
    }
}

fn device(user: &str, id: &str, seq: i64) -> DeviceRow {
    DeviceRow {
        user_id: user.into(),
        id: id.into(),
        name: "laptop".into(),
        public_key: "key".into(),
        created: now(),
        last_seen: now(),
        added_seq: seq,
        revoked_seq: None,
        revoked_at: None,
    }
}

fn entry(user: &str, dev: &str, counter: i64, prev: &str, received: i64) -> BackupRow {
    BackupRow {
        user_id: user.into(),
        id: format!("{dev}-{counter}"),
        seq: 0,
        device_id: dev.into(),
        kind: "backup".into(),
        counter,
        prev: prev.into(),
        classification: "Confidential".into(),
        size: 10,
        content_hash: "h".into(),
        target: String::new(),
        created: received,
        signature: "sig".into(),
        received,
        chain_seq: 0,
        deleted: None,
        blob_key: None,
    }
}

#[tokio::test]
async fn devices_and_backups_append_in_order_and_revocation_ends_everything() {
    both(|meta| async move {
        let (alice, _) = user(&meta, "alice").await;
        let u = alice.id.clone();
        tenant::scope(u.clone(), async {
            meta.create_session(SessionRow {
                id: "s1".into(),
                token_hash: "th1".into(),
                user_id: u.clone(),
                method: "passphrase".into(),
                created: now(),
                last_seen: now(),
                device: String::new(),
                client: String::new(),
                device_id: None,
            })
            .await
            .expect("session");
            meta.add_device(
                link(&u, 1, "", "device-add", "d1"),
                device(&u, "d1", 1),
                Some("s1"),
            )
            .await
            .expect("first link");
            // Not the next link: a replay of seq 1, a wrong prev, a gap.
            for bad in [
                link(&u, 1, "", "device-add", "d2"),
                link(&u, 2, "wrong", "device-add", "d2"),
                link(&u, 3, "link-1", "device-add", "d2"),
            ] {
                let got = meta.add_device(bad, device(&u, "d2", 2), None).await;
                assert!(matches!(got, Err(StoreError::Conflict(_))), "{got:?}");
            }
            meta.add_device(
                link(&u, 2, "link-1", "device-add", "d2"),
                device(&u, "d2", 2),
                None,
            )
            .await
            .expect("second link");
            assert_eq!(meta.account_chain(&u).await.expect("chain").len(), 2);
            meta.create_token(AccessTokenRow {
                id: "tok1".into(),
                user_id: u.clone(),
                token_hash: "x".into(),
                kind: TokenKind::Backups,
                scope: String::new(),
                mode: TokenMode::Full,
                label: String::new(),
                created: now(),
                expires: None,
                last_used: None,
                device_id: Some("d1".into()),
            })
            .await
            .expect("token");

            // Backups: in order only; the chain position is recorded.
            let t = now();
            meta.put_backup(
                entry(&u, "d1", 1, "", t),
                Some(b"0123456789".to_vec()),
                None,
            )
            .await
            .expect("first backup");
            for bad in [
                entry(&u, "d1", 1, "", t),
                entry(&u, "d1", 3, "d1-1", t),
                entry(&u, "d1", 2, "x", t),
            ] {
                let got = meta.put_backup(bad, None, None).await;
                assert!(matches!(got, Err(StoreError::Conflict(_))), "{got:?}");
            }
            meta.put_backup(entry(&u, "d1", 2, "d1-1", t + 1), None, Some(15))
                .await
                .expect_err("over the quota");
            meta.put_backup(entry(&u, "d1", 2, "d1-1", t + 1), None, None)
                .await
                .expect("second backup");
            meta.put_backup(entry(&u, "d2", 1, "", t + 2), None, None)
                .await
                .expect("other device");
            let head = meta
                .backup_head(&u, "d1")
                .await
                .expect("head")
                .expect("some");
            assert_eq!((head.counter, head.chain_seq), (2, 2));
            assert_eq!(
                meta.backup_data(&u, "d1-1").await.expect("data").as_deref(),
                Some(&b"0123456789"[..])
            );

            // Newest first, filtered, paged by (received, id).
            let all = meta
                .list_backups(
                    &u,
                    BackupFilter {
                        limit: 10,
                        ..Default::default()
                    },
                )
                .await
                .expect("list");
            let ids: Vec<_> = all.iter().map(|b| b.id.as_str()).collect();
            assert_eq!(ids, ["d2-1", "d1-2", "d1-1"]);
            let page = meta
                .list_backups(
                    &u,
                    BackupFilter {
                        device_id: Some("d1".into()),
                        before: Some(all[1].seq),
                        limit: 10,
                        ..Default::default()
                    },
                )
                .await
                .expect("page");
            assert_eq!(page.len(), 1);
            assert_eq!(page[0].id, "d1-1");

            // A tombstone deletes the content and gives the bytes back; it is an entry too.
            let before = usage(&meta, &u).await;
            let mut tomb = entry(&u, "d2", 2, "d2-1", t + 3);
            tomb.id = "tomb".into();
            tomb.kind = "tombstone".into();
            tomb.size = 0;
            tomb.target = "d1-1".into();
            meta.tombstone_backup(tomb.clone())
                .await
                .expect("tombstone");
            let after = usage(&meta, &u).await;
            assert_eq!(before - after, 10);
            assert_eq!(meta.backup_data(&u, "d1-1").await.expect("data"), None);
            assert!(
                meta.backup(&u, "d1-1")
                    .await
                    .expect("row")
                    .expect("kept")
                    .deleted
                    .is_some()
            );
            let mut again = entry(&u, "d2", 3, "tomb", t + 4);
            again.kind = "tombstone".into();
            again.target = "d1-1".into();
            assert!(matches!(
                meta.tombstone_backup(again).await,
                Err(StoreError::NotFound)
            ));
            assert_eq!(meta.backup_chain(&u, "d2").await.expect("chain").len(), 2);

            // Revocation: a signed link, the device's sessions and tokens gone, its entries
            // refused from then on.
            // The revocation names where the device's chain ends: a wrong end is refused.
            let stale = link(&u, 3, "link-2", "device-revoke", "d1");
            let got = meta.revoke_device(stale, now()).await;
            assert!(matches!(got, Err(StoreError::Conflict(_))), "{got:?}");
            let mut revoke = link(&u, 3, "link-2", "device-revoke", "d1");
            revoke.last_counter = 2;
            revoke.last_entry = "d1-2".into();
            let revoked = meta.revoke_device(revoke, now()).await.expect("revoke");
            assert_eq!(revoked.sessions, 1);
            assert_eq!(revoked.tokens, ["tok1"]);
            assert!(meta.token("tok1").await.expect("token").is_none());
            let got = meta
                .put_backup(entry(&u, "d1", 3, "d1-2", t + 5), None, None)
                .await;
            assert!(matches!(got, Err(StoreError::Conflict(_))), "{got:?}");
            let got = meta
                .revoke_device(link(&u, 4, "link-3", "device-revoke", "d1"), now())
                .await;
            assert!(matches!(got, Err(StoreError::NotFound)), "{got:?}");
            let d1 = meta.device(&u, "d1").await.expect("device").expect("kept");
            assert_eq!(d1.revoked_seq, Some(3));
            // Group commit: each item on its own, an audit entry with each one stored.
            let audits = meta.audit_list(None).await.expect("audit").len();
            let item = |row: BackupRow| NewBackup {
                row,
                data: Some(b"0123456789".to_vec()),
                quota: None,
                audit: NewAudit {
                    ts: now(),
                    actor: "alice".into(),
                    actor_id: Some(u.clone()),
                    action: "backup.put".into(),
                    target: "t".into(),
                    outcome: "ok".into(),
                    client: "c".into(),
                },
            };
            let out = meta
                .put_backups(vec![
                    item(entry(&u, "d2", 3, "tomb", t + 6)),
                    item(entry(&u, "d2", 3, "tomb", t + 6)),
                    item(entry(&u, "d1", 3, "d1-2", t + 6)),
                    item(entry(&u, "d2", 4, "d2-3", t + 7)),
                    // A device the user does not have stands nowhere.
                    item(entry(&u, "ghost", 1, "", t + 7)),
                ])
                .await
                .expect("batch");
            assert!(out[0].is_ok() && out[3].is_ok(), "{out:?}");
            assert!(matches!(out[1], Err(StoreError::Conflict(_))), "{out:?}");
            assert!(matches!(out[2], Err(StoreError::Conflict(_))), "{out:?}");
            assert!(matches!(out[4], Err(StoreError::Conflict(_))), "{out:?}");
            assert_eq!(
                meta.audit_list(None).await.expect("audit").len(),
                audits + 2
            );
            assert_eq!(
                meta.backup_head(&u, "d2")
                    .await
                    .expect("head")
                    .expect("some")
                    .counter,
                4
            );
            // Near the quota the batch decides item by item: what fits is kept, the first
            // that does not is refused, and the device's later items with it.
            let used = usage(&meta, &u).await;
            let near = |row: BackupRow| NewBackup {
                quota: Some(used + 15),
                ..item(row)
            };
            let out = meta
                .put_backups(vec![
                    near(entry(&u, "d2", 5, "d2-4", t + 8)),
                    near(entry(&u, "d2", 6, "d2-5", t + 8)),
                    near(entry(&u, "d2", 7, "d2-6", t + 8)),
                ])
                .await
                .expect("batch");
            assert!(out[0].is_ok(), "{out:?}");
            assert!(matches!(out[1], Err(StoreError::QuotaExceeded)), "{out:?}");
            assert!(matches!(out[2], Err(StoreError::Conflict(_))), "{out:?}");
            let after = usage(&meta, &u).await;
            assert_eq!(after, used + 10);
            let head = meta
                .backup_head(&u, "d2")
                .await
                .expect("head")
                .expect("some");
            assert_eq!(head.counter, 5);
            assert!(meta.rename_device(&u, "d2", "phone").await.expect("rename"));
            assert_eq!(meta.devices(&u).await.expect("devices")[1].name, "phone");
        })
        .await;
        let usage = meta.backup_usage().await.expect("usage");
        // d1's second, d2's first and the three of the group commits (d1's first was
        // deleted).
        assert_eq!(usage.iter().map(|r| r.backups).sum::<i64>(), 5);
        assert!(
            usage
                .iter()
                .all(|r| r.classification == "Confidential" && r.day.len() == 10)
        );
    })
    .await;
}
