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
