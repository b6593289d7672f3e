//! Records on both engines: stored all or none under their owner's pseudonym, charged to the
//! user and given back on deletion, deleted only with a matching key check (or by an admin's
//! unconditional deletion); on PostgreSQL a transaction sees only its own pseudonym's rows.

use super::*;

fn record(owner: &str, id: &str, check: &str) -> RecordRow {
    RecordRow {
        owner: owner.into(),
        id: id.into(),
        sealed: vec![1; 40],
        key_check: check.into(),
        size: 40,
        created: now(),
    }
}

/// Runs `work` as user `u` under `pseudonym`, as the `/records` routes do.
async fn as_owner<T>(
    u: &UserRow,
    pseudonym: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    tenant::scope(
        u.id.clone(),
        tenant::pseudonymous(pseudonym.to_string(), work),
    )
    .await
}

#[tokio::test]
async fn records_are_stored_all_or_none_and_deleted_only_with_their_check() {
    both(|meta| async move {
        let (alice, _) = user(&meta, "alice").await;
        let (bob, _) = user(&meta, "bob").await;
        let (pa, pb) = ("pseudo-alice", "pseudo-bob");
        as_owner(&alice, pa, async {
            let rows = vec![record(pa, "01", "c1"), record(pa, "02", "c2")];
            assert_eq!(meta.put_records(&alice.id, rows, None).await.unwrap(), None);
            // A batch with a taken id stores nothing of it.
            let again = vec![record(pa, "03", "c3"), record(pa, "02", "cx")];
            assert_eq!(
                meta.put_records(&alice.id, again, None).await.unwrap(),
                Some("02".to_string())
            );
            let wanted = [("01", "c1"), ("02", "c2"), ("03", "c3"), ("02", "cx")];
            let wanted: Vec<(String, String)> = wanted
                .iter()
                .map(|(i, c)| (i.to_string(), c.to_string()))
                .collect();
            let found = meta.records(pa, &wanted).await.unwrap();
            let mut ids: Vec<&str> = found.iter().map(|r| r.id.as_str()).collect();
            ids.sort();
            assert_eq!(ids, ["01", "02"]);
            assert_eq!(found.iter().find(|r| r.id == "02").unwrap().key_check, "c2");
        })
        .await;
        assert_eq!(usage(&meta, &alice.id).await, 80);
        // The quota holds for the whole batch.
        as_owner(&alice, pa, async {
            let big = vec![record(pa, "04", "c4"), record(pa, "05", "c5")];
            assert!(matches!(
                meta.put_records(&alice.id, big, Some(100)).await,
                Err(StoreError::QuotaExceeded)
            ));
            let four = [("04".to_string(), "c4".to_string())];
            assert!(meta.records(pa, &four).await.unwrap().is_empty());
        })
        .await;
        // Bob's pseudonym has the same ids free, and sees none of alice's.
        as_owner(&bob, pb, async {
            assert_eq!(
                meta.put_records(&bob.id, vec![record(pb, "01", "b1")], None)
                    .await
                    .unwrap(),
                None
            );
            let wanted = [
                ("01".to_string(), "b1".to_string()),
                ("01".into(), "c1".into()),
            ];
            let mine = meta.records(pb, &wanted).await.unwrap();
            assert_eq!(mine.len(), 1);
            assert_eq!(mine[0].key_check, "b1");
        })
        .await;
        // Deletion: a wrong check deletes nothing, the right one deletes and gives back.
        as_owner(&alice, pa, async {
            let gone = meta
                .delete_records(
                    &alice.id,
                    pa,
                    &[
                        ("01".into(), Some("wrong".into())),
                        ("02".into(), Some("c2".into())),
                    ],
                )
                .await
                .unwrap();
            assert_eq!(gone, ["02"]);
            let gone = meta
                .delete_records(&alice.id, pa, &[("01".into(), None), ("09".into(), None)])
                .await
                .unwrap();
            assert_eq!(gone, ["01"]);
        })
        .await;
        assert_eq!(usage(&meta, &alice.id).await, 0);
        assert_eq!(usage(&meta, &bob.id).await, 40);
        // A removed user's records go with the pseudonym, in system scope.
        assert_eq!(meta.erase_records(pb).await.unwrap(), 1);
        let gone = [("01".to_string(), "b1".to_string())];
        let left = as_owner(&bob, pb, async { meta.records(pb, &gone).await.unwrap() }).await;
        assert!(left.is_empty());
    })
    .await;
}

#[tokio::test]
async fn postgres_shows_a_transaction_only_its_own_pseudonyms_records() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let meta: Meta = Arc::new(db.open().await);
    let (alice, _) = user(&meta, "alice").await;
    let (bob, _) = user(&meta, "bob").await;
    for (u, p) in [(&alice, "pa"), (&bob, "pb")] {
        as_owner(u, p, async {
            meta.put_records(&u.id, vec![record(p, "01", "c")], None)
                .await
                .unwrap();
        })
        .await;
    }
    // Alice's scope with bob's pseudonym named in the query still sees only her own.
    let seen = as_owner(&alice, "pa", async {
        meta.records("pb", &[("01".into(), "c".into())])
            .await
            .unwrap()
    })
    .await;
    assert!(seen.is_empty(), "alice's scope sees bob's records");
    let mut c = sqlx::PgConnection::connect(&db.app_url).await.unwrap();
    for (settings, want) in [
        ("SELECT set_config('app.system', 'on', true)", 2),
        ("SELECT set_config('app.pseudonym', 'pa', true)", 0),
        (
            &format!("SELECT set_config('app.user_id', '{}', true)", alice.id) as &str,
            0,
        ),
        (
            &format!(
                "SELECT set_config('app.user_id', '{}', true), \
                 set_config('app.pseudonym', 'pa', true)",
                alice.id
            ) as &str,
            1,
        ),
        ("SELECT 1", 0),
    ] {
        let mut tx = c.begin().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(settings.to_string()))
            .execute(&mut *tx)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, want, "with {settings}");
    }
    drop(c);
    drop(meta);
    db.drop_db().await;
}
