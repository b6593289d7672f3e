//! Erasure jobs on both engines: each step runs once and moves the job on, the user's row
//! goes in the `account` step with a tombstone in the audit chain, and a second job for the
//! same user is refused.

use super::*;

#[tokio::test]
async fn an_erasure_runs_each_step_once_and_leaves_a_tombstone() {
    both(|meta| async move {
        let (alice, _vault) = user(&meta, "erasable").await;
        let (bob, _) = user(&meta, "keeper").await;
        let job = meta
            .erasure_begin(
                "0123456789abcdef0123456789abcdef",
                &alice.id,
                true,
                Some("pseudonym"),
            )
            .await
            .expect("begin");
        assert_eq!((job.step, job.next_step()), (0, "records"));
        assert!(job.label.starts_with("(erased "), "{}", job.label);
        assert!(matches!(
            meta.erasure_begin("fedcba9876543210fedcba9876543210", &alice.id, true, None)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            meta.erasure_begin(
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "no-such-user",
                true,
                None
            )
            .await,
            Err(StoreError::NotFound)
        ));
        // Her passphrase stopped working with the start, and a plain removal waits for the
        // erasure.
        let row = meta.user_by_id(&alice.id).await.unwrap().unwrap();
        assert!(row.auth_hash.is_none() && row.invite_hash.is_none());
        assert!(matches!(
            meta.delete_user("erasable").await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(meta.erasures_pending().await.unwrap().len(), 1);

        for step in ERASURE_STEPS.iter().take(ERASURE_STEPS.len() - 1) {
            let after = meta
                .erasure_step(&job.id, step)
                .await
                .unwrap_or_else(|e| panic!("step {step}: {e}"));
            // A second run of the same step (a crash before the caller saw it) does nothing.
            let again = meta.erasure_step(&job.id, step).await.unwrap();
            assert_eq!(
                (again.step, &again.counts),
                (after.step, &after.counts),
                "{step}"
            );
        }
        let done = meta.erasure(&job.id).await.unwrap().unwrap();
        assert!(done.is_done() && done.finished.is_some(), "{done:?}");
        assert!(
            done.user_id.is_none() && done.pseudonym.is_none(),
            "the job forgets whom it erased"
        );
        let mut counts = std::collections::BTreeMap::new();
        for (what, n) in done.count_pairs() {
            *counts.entry(what).or_insert(0) += n;
        }
        assert_eq!(counts.get("vaults"), Some(&1), "{counts:?}");
        assert_eq!(counts.get("account"), Some(&1), "{counts:?}");
        assert!(meta.user_by_id(&alice.id).await.unwrap().is_none());
        assert!(meta.user_by_id(&bob.id).await.unwrap().is_some());
        assert!(meta.erasures_pending().await.unwrap().is_empty());
        let log = meta.audit_list(None).await.unwrap();
        let tomb: Vec<_> = log.iter().filter(|r| r.action == "user.erased").collect();
        assert_eq!(tomb.len(), 1);
        assert_eq!(tomb[0].target, alice.id);
        assert!(
            tomb[0].outcome.starts_with(&done.label),
            "{}",
            tomb[0].outcome
        );
        meta.compact().await.expect("compact");
    })
    .await;
}

/// An erased user who signed a commit (version 2) in a vault another owns leaves their chain
/// under their account key, without their id, device names or salts: found through that
/// vault by the key, before the erasure (their own), during it and after; never through a
/// vault where the key signed nothing.
#[tokio::test]
async fn an_erased_signer_leaves_a_nameless_chain_under_the_key() {
    use super::trees::{append, commit, uploaded};
    both(|meta| async move {
        let (alice, _) = user(&meta, "signer").await;
        let (bob, vault) = user(&meta, "owner").await;
        let (_, other_vault) = user(&meta, "stranger").await;
        tenant::scope(
            bob.id.clone(),
            meta.add_member(&vault, &alice.id, "keys", "sig", Access::Write),
        )
        .await
        .expect("share");
        let key = alice.ed25519_public.clone().expect("account key");
        let link = AccountLinkRow {
            user_id: alice.id.clone(),
            seq: 1,
            hash: "link-1".into(),
            prev: String::new(),
            kind: "device-add".into(),
            device_id: "d1".into(),
            device_name: "signer-phone".into(),
            device_key: "key-d1".into(),
            created: now(),
            signature: "sig".into(),
            version: 2,
            name_salt: "salt".into(),
            name_commitment: "commitment".into(),
            last_counter: 0,
            last_entry: String::new(),
            commit_ends: String::new(),
        };
        let device = DeviceRow {
            user_id: alice.id.clone(),
            id: "d1".into(),
            name: "signer-phone".into(),
            public_key: "key-d1".into(),
            created: now(),
            last_seen: now(),
            added_seq: 1,
            revoked_seq: None,
            revoked_at: None,
        };
        tenant::scope(alice.id.clone(), meta.add_device(link, device, None))
            .await
            .expect("device");
        uploaded(&meta, &alice, &vault, "kp1", 10, 10).await;
        let c = NewTreeCommit {
            signer_key: Some(key.clone()),
            device: Some(("d1".into(), "key-d1".into())),
            ..commit(&alice, &vault, 1, "", &["kp1"], &[], "kp1")
        };
        assert!(matches!(
            append(&meta, &alice, c).await.expect("append"),
            TreeAppend::Appended(_)
        ));
        let (who, links) = meta
            .signer_chain_by_key(&vault, &key)
            .await
            .unwrap()
            .expect("her chain");
        assert_eq!(who.as_deref(), Some(alice.id.as_str()));
        assert_eq!(links[0].device_name, "signer-phone");
        assert!(
            meta.signer_chain_by_key(&other_vault, &key)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            meta.signer_chain_by_key(&vault, "ed-nobody")
                .await
                .unwrap()
                .is_none()
        );

        let job = meta
            .erasure_begin("11112222333344445555666677778888", &alice.id, true, None)
            .await
            .expect("begin: her commit is of version 2");
        for step in ERASURE_STEPS.iter().take(ERASURE_STEPS.len() - 1) {
            meta.erasure_step(&job.id, step)
                .await
                .unwrap_or_else(|e| panic!("step {step}: {e}"));
            let (_, links) = meta
                .signer_chain_by_key(&vault, &key)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("no chain after {step}"));
            assert_eq!(links.len(), 1, "after {step}");
            assert_eq!(links[0].name_commitment, "commitment");
        }
        let (who, links) = meta
            .signer_chain_by_key(&vault, &key)
            .await
            .unwrap()
            .expect("the kept chain");
        assert!(who.is_none());
        let l = &links[0];
        assert_eq!(
            (
                l.user_id.as_str(),
                l.device_name.as_str(),
                l.name_salt.as_str()
            ),
            ("", "", "")
        );
        assert_eq!((l.device_key.as_str(), l.version), ("key-d1", 2));
        let done = meta.erasure(&job.id).await.unwrap().unwrap();
        assert!(
            done.counts.contains("account_links_kept_nameless=1"),
            "{}",
            done.counts
        );

        // Kept while a commit needs it (the upkeep deletes it once none does).
        meta.prune(now(), 600).await.expect("prune");
        assert!(
            meta.signer_chain_by_key(&vault, &key)
                .await
                .unwrap()
                .is_some()
        );
        let _ = bob;
    })
    .await;
}
