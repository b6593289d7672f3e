//! PostgreSQL only: row-level security shows a tenant only its own rows, and TLS to the
//! database works.

use super::*;

/// Gives `u` at least one row in every tenant table.
async fn fill(meta: &Meta, u: &UserRow, vault: &str) {
    let id = u.id.clone();
    meta.create_session(SessionRow {
        id: format!("s-{id}"),
        token_hash: format!("t-{id}"),
        user_id: id.clone(),
        method: "passphrase".into(),
        created: now(),
        last_seen: now(),
        device: String::new(),
        client: String::new(),
        device_id: None,
    })
    .await
    .expect("session");
    put(meta, u, vault, &format!("obj-{id}"), 1, 10, None)
        .await
        .expect("put");
    tenant::scope(id.clone(), async {
        meta.add_ssh_key(SshKeyRow {
            user_id: id.clone(),
            fingerprint: format!("SHA256:{id}"),
            public_key: "ssh-ed25519 AAAA".into(),
            comment: "c".into(),
            wrapped_keys: None,
            created: now(),
        })
        .await
        .expect("ssh key");
        meta.create_upload(
            UploadRow {
                id: format!("up-{id}"),
                vault_id: vault.into(),
                user_id: id.clone(),
                blob_key: format!("b-up-{id}"),
                size: -1,
                hash: String::new(),
                created: now(),
            },
            64,
        )
        .await
        .expect("upload");
        meta.create_upload(
            UploadRow {
                id: format!("tp-{id}"),
                vault_id: vault.into(),
                user_id: id.clone(),
                blob_key: format!("b-tp-{id}"),
                size: -1,
                hash: String::new(),
                created: now(),
            },
            64,
        )
        .await
        .expect("pack upload");
        meta.complete_upload(&format!("tp-{id}"), 10, "h")
            .await
            .expect("pack complete");
        let appended = meta
            .tree_append(NewTreeCommit {
                vault_id: vault.into(),
                device: None,
                signer_key: None,
                user_id: id.clone(),
                seq: 1,
                hash: format!("c-{id}"),
                prev: String::new(),
                header: vec![1],
                signature: vec![2],
                adds: vec![format!("tp-{id}")],
                releases: vec![],
                body_blob: format!("tp-{id}"),
                body_end: 10,
                quota: None,
                now: now(),
            })
            .await
            .expect("tree commit");
        assert!(matches!(appended, TreeAppend::Appended(_)), "{appended:?}");
        meta.create_token(AccessTokenRow {
            id: format!("tok-{id}"),
            user_id: id.clone(),
            token_hash: format!("th-{id}"),
            kind: enc_store::TokenKind::Restic,
            scope: "main".into(),
            mode: enc_store::TokenMode::Full,
            label: String::new(),
            created: now(),
            expires: None,
            last_used: None,
            device_id: None,
        })
        .await
        .expect("token");
        let device = DeviceRow {
            user_id: id.clone(),
            id: format!("dev-{id}"),
            name: "laptop".into(),
            public_key: "k".into(),
            created: now(),
            last_seen: now(),
            added_seq: 1,
            revoked_seq: None,
            revoked_at: None,
        };
        let link = AccountLinkRow {
            user_id: id.clone(),
            seq: 1,
            hash: format!("h-{id}"),
            prev: String::new(),
            kind: "device-add".into(),
            device_id: device.id.clone(),
            device_name: "laptop".into(),
            device_key: "k".into(),
            created: now(),
            signature: "s".into(),
            version: 2,
            name_salt: String::new(),
            name_commitment: String::new(),
            last_counter: 0,
            last_entry: String::new(),
            commit_ends: String::new(),
        };
        meta.add_device(link, device, None).await.expect("device");
        meta.put_backup(
            BackupRow {
                user_id: id.clone(),
                id: format!("b-{id}"),
                seq: 0,
                device_id: format!("dev-{id}"),
                kind: "backup".into(),
                counter: 1,
                prev: String::new(),
                classification: "Internal".into(),
                size: 3,
                content_hash: "h".into(),
                target: String::new(),
                created: now(),
                signature: "s".into(),
                received: now(),
                chain_seq: 0,
                deleted: None,
                blob_key: None,
            },
            Some(b"abc".to_vec()),
            None,
        )
        .await
        .expect("backup");
        meta.create_restic_repo(&format!("repo-{id}"), &id, "main", now())
            .await
            .expect("repo");
        meta.mercury_reserve(MercuryReservation {
            space: format!("user:{id}"),
            candidates: vec!["a.hecate".into()],
            blob_key: format!("m-{id}"),
            user_id: Some(id.clone()),
            now: now(),
            until: now() + 60,
        })
        .await
        .expect("reserve");
    })
    .await;
    let out = meta
        .restic_write_batch(
            // Reserved first, as every upload of a blob is.
            vec![(format!("r-{id}"), now() + 3600)],
            vec![NewResticObject {
                repo_id: format!("repo-{id}"),
                user_id: id.clone(),
                kind: "data".into(),
                name: format!("{id}-data"),
                size: 5,
                blob_key: format!("r-{id}"),
                data: None,
                quota: None,
                now: now(),
            }],
        )
        .await
        .expect("batch");
    assert!(matches!(out[0], Ok(PutOutcome::Stored)));
    meta.audit_append(NewAudit {
        ts: now(),
        actor: u.name.clone(),
        actor_id: Some(id.clone()),
        action: "test".into(),
        target: String::new(),
        outcome: "ok".into(),
        client: "c".into(),
    })
    .await
    .expect("audit");
}

/// Each tenant table with the expression naming the user a row belongs to.
const TENANT_TABLES: &[(&str, &str)] = &[
    ("users", "id"),
    ("sessions", "user_id"),
    ("ssh_keys", "user_id"),
    ("vaults", "owner_id"),
    ("vault_members", "user_id"),
    (
        "objects",
        "(SELECT owner_id FROM vaults v WHERE v.id = vault_id)",
    ),
    ("versions", "author_id"),
    ("uploads", "user_id"),
    ("access_tokens", "user_id"),
    ("restic_repos", "user_id"),
    ("restic_objects", "substr(repo_id, 6)"),
    ("mercury_files", "user_id"),
    ("audit", "actor_id"),
    ("tree_commits", "author_id"),
    ("account_links", "user_id"),
    ("devices", "user_id"),
    ("backups", "user_id"),
    (
        "tree_blobs",
        "(SELECT owner_id FROM vaults v WHERE v.id = vault_id)",
    ),
];

/// The owners of the rows an unfiltered `SELECT` shows, in a transaction with `settings`.
async fn visible(url: &str, table: &str, owner: &str, settings: &str) -> Vec<Option<String>> {
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    let mut tx = c.begin().await.expect("begin");
    if !settings.is_empty() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(settings.to_string()))
            .execute(&mut *tx)
            .await
            .expect("settings");
    }
    let sql = format!("SELECT {owner} FROM {table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await
        .expect("select")
}

#[tokio::test]
async fn postgres_row_level_security_shows_a_tenant_only_its_own_rows() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let pg = db.open().await;
    let (_, checks) = postgres::connect(&db.app_url).await.expect("connect");
    assert_eq!(checks.pending_migrations, 0);
    let role = checks.role;
    assert!(!role.bypasses_rls && !role.owns_tables, "{role:?}");
    let meta: Meta = Arc::new(pg);
    let (alice, alice_vault) = user(&meta, "alice").await;
    let (bob, bob_vault) = user(&meta, "bob").await;
    fill(&meta, &alice, &alice_vault).await;
    fill(&meta, &bob, &bob_vault).await;

    for (table, owner) in TENANT_TABLES {
        let all = visible(
            &db.app_url,
            table,
            owner,
            "SELECT set_config('app.system', 'on', true)",
        )
        .await;
        for u in [&alice.id, &bob.id] {
            assert!(
                all.contains(&Some(u.clone())),
                "{table}: no row of {u} at all"
            );
        }
        let scoped = visible(
            &db.app_url,
            table,
            owner,
            &format!("SELECT set_config('app.user_id', '{}', true)", alice.id),
        )
        .await;
        assert!(!scoped.is_empty(), "{table}: alice sees nothing of her own");
        assert!(
            scoped
                .iter()
                .all(|o| o.as_deref() == Some(alice.id.as_str())),
            "{table}: alice sees {scoped:?}"
        );
        let unset = visible(&db.app_url, table, owner, "").await;
        assert!(unset.is_empty(), "{table}: with no tenant set, {unset:?}");
    }
    // The chains an erasure keeps (no user's: under an account key) are the system's only.
    let mut c = sqlx::PgConnection::connect(&db.app_url)
        .await
        .expect("connect");
    sqlx::raw_sql(
        "BEGIN; SELECT set_config('app.system', 'on', true); \
         INSERT INTO kept_links (account_key, seq, hash, prev, kind, device_id, \
         name_commitment, device_key, created, signature, last_counter, last_entry, \
         commit_ends) VALUES ('k', 1, 'h', '', 'device-add', 'd', 'c', 'dk', 1, 's', 0, '', ''); \
         COMMIT",
    )
    .execute(&mut c)
    .await
    .expect("insert as the system");
    let scoped = visible(
        &db.app_url,
        "kept_links",
        "account_key",
        &format!("SELECT set_config('app.user_id', '{}', true)", alice.id),
    )
    .await;
    assert!(scoped.is_empty(), "a tenant sees kept links: {scoped:?}");
    let all = visible(
        &db.app_url,
        "kept_links",
        "account_key",
        "SELECT set_config('app.system', 'on', true)",
    )
    .await;
    assert_eq!(all, vec![Some("k".to_string())]);
    // The role cannot turn the policies off.
    let mut c = sqlx::PgConnection::connect(&db.app_url)
        .await
        .expect("connect");
    let refused = sqlx::raw_sql("ALTER TABLE vaults DISABLE ROW LEVEL SECURITY")
        .execute(&mut c)
        .await;
    assert!(refused.is_err(), "the server's role could disable RLS");
    drop(c);
    drop(meta);
    db.drop_db().await;
}

/// `sslmode=require` in `database_url` gives the server TLS connections to PostgreSQL.
#[tokio::test]
async fn postgres_connections_can_use_tls() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let _ = db.open().await;
    let sep = if db.app_url.contains('?') { '&' } else { '?' };
    let meta: Meta = Arc::new(
        postgres::connect(&format!("{}{sep}sslmode=require", db.app_url))
            .await
            .expect("connect with sslmode=require")
            .0,
    );
    let (alice, _) = user(&meta, "alice").await;
    assert_eq!(alice.state, "active");
    let mut c = sqlx::PgConnection::connect(&db.owner_url)
        .await
        .expect("owner");
    let encrypted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.usename = $1 AND a.datname = $2 AND s.ssl",
    )
    .bind(APP_LOGIN)
    .bind(&db.name)
    .fetch_one(&mut c)
    .await
    .expect("pg_stat_ssl");
    assert!(encrypted >= 1, "the server's connections are not encrypted");
    drop(meta);
    db.drop_db().await;
}
