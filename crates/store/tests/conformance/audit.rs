//! The audit chain on both engines: entries of version 2 verify, and redacting a user (their
//! name and id out of every entry they acted in or that names them) keeps the chain
//! verifiable.

use enc_crypto::audit::{AuditFields, ChainEntry, Sealing, verify_chain};

use super::*;

fn entry(actor: &str, actor_id: Option<&str>, target: &str) -> NewAudit {
    NewAudit {
        ts: now(),
        actor: actor.into(),
        actor_id: actor_id.map(str::to_string),
        action: "vault.share".into(),
        target: target.into(),
        outcome: "ok".into(),
        client: "client-hash".into(),
    }
}

fn verifies(rows: &[AuditRow]) -> Result<(), i64> {
    verify_chain(
        rows.iter().map(|r| ChainEntry {
            fields: AuditFields {
                seq: r.seq,
                ts: r.ts,
                actor: &r.actor,
                action: &r.action,
                target: &r.target,
                outcome: &r.outcome,
                client: &r.client,
                sealing: Some(
                    Sealing::stored(
                        r.salt.as_deref(),
                        r.actor_commit.as_deref(),
                        r.target_commit.as_deref(),
                        r.client_commit.as_deref(),
                    )
                    .expect("version 2"),
                ),
            },
            prev_hash: &r.prev_hash,
            hash: &r.hash,
        }),
        true,
    )
}

#[tokio::test]
async fn a_redacted_user_leaves_the_chain_verifiable() {
    both(|meta| async move {
        let (alice, _) = user(&meta, "alice").await;
        let (bob, _) = user(&meta, "bob").await;
        let one = meta
            .audit_append(entry("alice", Some(&alice.id), "vault v1"))
            .await
            .unwrap();
        assert!(one.salt.is_some() && one.actor_commit.is_some());
        meta.audit_append_many(vec![
            entry("bob", Some(&bob.id), "vault v2 shared with alice"),
            entry("alice", Some(&alice.id), &format!("user {}", alice.id)),
            entry("bob", Some(&bob.id), "vault v3"),
        ])
        .await
        .unwrap();
        let before = meta.audit_list(None).await.unwrap();
        assert_eq!(before.len(), 4);
        assert_eq!(verifies(&before), Ok(()));

        // A name is matched as a whole word where names stand: redacting "al" leaves
        // alice's entries alone, and a template's value that happens to be the name too.
        let (al, _) = user(&meta, "al").await;
        meta.audit_append(entry("root", None, "carol role=al"))
            .await
            .unwrap();
        assert_eq!(
            meta.audit_redact(&al.id, &["al", &al.id]).await.unwrap(),
            (0, 0)
        );
        let (redacted, left) = meta
            .audit_redact(&alice.id, &["alice", &alice.id])
            .await
            .unwrap();
        assert_eq!((redacted, left), (3, 0));
        let after = meta.audit_list(None).await.unwrap();
        assert_eq!(verifies(&after), Ok(()));
        for r in &after {
            for text in [&r.actor, &r.target] {
                assert!(
                    !text.contains("alice") && !text.contains(&alice.id),
                    "{r:?}"
                );
            }
        }
        // Bob's entry that named her as its target keeps its actor (checked still): only
        // the field that named her went.
        assert_eq!(
            (after[1].actor.as_str(), after[1].target.as_str()),
            ("bob", "")
        );
        // Bob's own entry that did not name her is as it was.
        assert_eq!(after[3].actor, "bob");
        assert_eq!(after[3].target, "vault v3");
        assert_eq!(after[4].target, "carol role=al");
        assert!(meta.audit_list(Some(&alice.id)).await.unwrap().is_empty());
        // An edit after the redaction is still caught.
        let mut edited = after.clone();
        edited[3].target = "vault v4".into();
        assert_eq!(verifies(&edited), Err(4));
    })
    .await;
}
