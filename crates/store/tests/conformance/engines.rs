//! The drift the two engines once had, checked on both (statement counts, not timing).

use super::*;

/// The drift the two engines once had, checked on both: a session lookup is one transaction
/// and writes at most once, a duplicate vault id is the same `Conflict`, and every write
/// method runs in exactly one write transaction, serialised on SQLite however many run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engines_agree_on_transactions_and_conflicts() {
    both(|meta| async move {
        let (alice, vault) = user(&meta, "shape").await;
        let t = now();
        meta.create_session(SessionRow {
            id: "shape-s".into(),
            token_hash: "shape-t".into(),
            user_id: alice.id.clone(),
            method: "passphrase".into(),
            created: t - 5,
            last_seen: t - 5,
            device: String::new(),
            client: String::new(),
            device_id: None,
        })
        .await
        .expect("session");

        let delta = |before: EngineCounts, after: EngineCounts| {
            (
                after.transactions - before.transactions,
                after.writes - before.writes,
            )
        };
        // Stale: refreshed by one write transaction (a read that finds it must write may
        // give way to it first).
        let before = meta.engine_counts();
        let found = meta.touch_session("shape-t", t, 600).await.expect("touch");
        let SessionLookup::Valid(found) = found else {
            panic!("{found:?}")
        };
        assert_eq!(found.0.last_seen, t);
        let (txs, writes) = delta(before, meta.engine_counts());
        assert_eq!(writes, 1, "a stale session is refreshed in one write");
        assert!(txs <= 2, "{txs} transactions");
        // Fresh: one read transaction, no write.
        let before = meta.engine_counts();
        assert!(matches!(
            meta.touch_session("shape-t", t, 600).await.expect("touch"),
            SessionLookup::Valid(_)
        ));
        assert_eq!(delta(before, meta.engine_counts()), (1, 0));
        // Expired: deleted in one write.
        let before = meta.engine_counts();
        assert!(matches!(
            meta.touch_session("shape-t", t + 601, 600)
                .await
                .expect("touch"),
            SessionLookup::Expired
        ));
        assert_eq!(delta(before, meta.engine_counts()).1, 1);
        assert!(meta.list_sessions(&alice.id).await.expect("ls").is_empty());

        // The same id twice is the same refusal on both engines, and changes nothing.
        let again = tenant::scope(
            alice.id.clone(),
            meta.create_vault(NewVault {
                id: vault.clone(),
                signed_id: vault.clone(),
                owner_id: alice.id.clone(),
                name: "another-name".into(),
                wrapped_keys: "k".into(),
                signature: "s".into(),
                now: t,
            }),
        )
        .await;
        match again {
            Err(StoreError::Conflict(why)) => assert_eq!(why, "vault id in use; choose another"),
            other => panic!("{other:?}"),
        }
        let vaults = tenant::scope(alice.id.clone(), meta.vaults_for(&alice.id))
            .await
            .expect("vaults");
        assert_eq!(vaults.len(), 1);

        // Sixty-four writes at once, of several kinds: each is one write transaction, and
        // none fails for a busy database.
        let before = meta.engine_counts();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let m = meta.clone();
            tasks.spawn(async move {
                m.throttle_fail(&format!("shape:{i}"), now(), |n| n).await?;
                Ok::<_, StoreError>(())
            });
            let m = meta.clone();
            tasks.spawn(async move {
                m.rate_take("shape-rate", now(), 60, 1000).await?;
                Ok(())
            });
            let m = meta.clone();
            tasks.spawn(async move { m.queue_blob(&format!("shape-blob-{i}"), now()).await });
            let (m, owner) = (meta.clone(), alice.id.clone());
            tasks.spawn(tenant::scope(owner.clone(), async move {
                m.create_vault(NewVault {
                    id: format!("shape-vault-{i}"),
                    signed_id: format!("shape-vault-{i}"),
                    owner_id: owner,
                    name: format!("v{i}"),
                    wrapped_keys: "k".into(),
                    signature: "s".into(),
                    now: now(),
                })
                .await?;
                Ok(())
            }));
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task").expect("write");
        }
        let after = meta.engine_counts();
        assert_eq!(
            delta(before, after).1,
            64,
            "one write transaction per write"
        );
        assert!(after.most_writing_at_once >= 1);
    })
    .await;
}

/// SQLite runs one write transaction at a time in this process, whatever method writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_serialises_its_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta: Meta = Arc::new(
        sqlite::open(&dir.path().join("meta.sqlite"))
            .await
            .expect("sqlite"),
    );
    let (alice, vault) = user(&meta, "serial").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let (m, u, v) = (meta.clone(), alice.clone(), vault.clone());
        tasks.spawn(async move {
            put(&m, &u, &v, &format!("f{i}"), 1, 10, None).await?;
            m.throttle_fail(&format!("serial:{i}"), now(), |n| n)
                .await?;
            m.queue_blob(&format!("serial-{i}"), now()).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("write");
    }
    let counts = meta.engine_counts();
    assert!(counts.writes >= 32 * 5, "{counts:?}");
    assert_eq!(counts.most_writing_at_once, 1, "{counts:?}");
}
