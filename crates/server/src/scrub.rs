//! `enc-server scrub`: every blob the metadata references, checked against the blob store
//! (that it is there, and of the size recorded), each damaged one reported with whose it is
//! and what it holds, as the server knows them without any key. It only reads, so it runs
//! beside a serving server (a blob deleted between the listing and the check, by a prune in
//! flight, may then be reported; run it again to confirm). With `--unreferenced` it also
//! lists the blob store and reports each blob that nothing references, holds or reserves.

use futures::StreamExt as _;
use serde::Serialize;

use crate::config::Config;

/// Blobs listed per page, and checked at once.
const PAGE: i64 = 1000;
const IN_FLIGHT: usize = 16;

/// One damaged blob.
#[derive(Debug, Serialize)]
struct Damage {
    /// `missing`, `size` (another size than recorded), `unreadable`, or `unreferenced` (no
    /// damage: stored, and nothing references or holds it).
    problem: &'static str,
    /// What was found instead: the stored size, or the store's error.
    found: String,
    /// The size the metadata records.
    size: i64,
    /// Whose it is (a user's name, or a Mercury space).
    owner: String,
    /// What it holds, as the server names it.
    what: String,
    blob_key: String,
}

/// Checks every referenced blob; prints each damaged one (a tab-separated line, or with
/// `json` one JSON object per line) and a summary on stderr. `Err` when any is damaged.
/// With `unreferenced`, each blob stored that nothing references or holds is printed too
/// (problem `unreferenced`); those are space to reclaim, not damage.
pub(crate) async fn scrub(config: &Config, json: bool, unreferenced: bool) -> anyhow::Result<()> {
    // Only reads: no migration, even with an owner's URL configured.
    let config = Config {
        database_owner_url: None,
        ..config.clone()
    };
    let meta = crate::open_meta(&config).await?;
    let blobs = crate::open_blobs(&config, false).await?;
    let (mut checked, mut bytes, mut damaged) = (0u64, 0u64, 0u64);
    let mut known = std::collections::HashSet::new();
    // With `unreferenced`: the store is listed first, then what is held, then what is
    // referenced, so a blob written while this runs is either not listed or known by the
    // time it is compared (an upload reserves its blob before writing it, and its commit
    // references it before taking the reservation back).
    let mut stored = Vec::new();
    if unreferenced {
        let mut listing = blobs.list();
        while let Some(item) = listing.next().await {
            stored.push(item?);
        }
        let mut after = String::new();
        loop {
            let held = meta.held_blobs(&after, PAGE).await?;
            let Some(last) = held.last() else { break };
            after = last.clone();
            known.extend(held);
        }
    }
    let mut cursor = Some(String::new());
    while let Some(at) = cursor {
        let (page, next) = meta.blob_refs(&at, PAGE).await?;
        cursor = next;
        let results: Vec<_> = futures::stream::iter(page)
            .map(|r| {
                let blobs = blobs.clone();
                async move {
                    let got = blobs.size(&r.blob_key).await;
                    (r, got)
                }
            })
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        for (r, got) in results {
            checked += 1;
            if unreferenced {
                known.insert(r.blob_key.clone());
            }
            bytes += r.size.max(0) as u64;
            let (problem, found) = match got {
                Ok(Some(n)) if n == r.size as u64 => continue,
                Ok(Some(n)) => ("size", format!("{n} bytes")),
                Ok(None) => ("missing", String::new()),
                Err(e) => ("unreadable", e.to_string()),
            };
            damaged += 1;
            report(
                &Damage {
                    problem,
                    found,
                    size: r.size,
                    owner: r.owner,
                    what: r.what,
                    blob_key: r.blob_key,
                },
                json,
            )?;
        }
    }
    eprintln!("scrub: {checked} blobs ({bytes} bytes) checked, {damaged} damaged");
    if unreferenced {
        let (mut listed, mut loose, mut loose_bytes) = (0u64, 0u64, 0u64);
        for (key, size) in stored {
            listed += 1;
            // The readiness probe's blob, written and deleted by each `/readyz`.
            if known.contains(&key) || key.starts_with("health/") {
                continue;
            }
            // Deleted since the listing (the collector, a prune): not left over.
            if blobs.size(&key).await? != Some(size) {
                continue;
            }
            loose += 1;
            loose_bytes += size;
            report(
                &Damage {
                    problem: "unreferenced",
                    found: String::new(),
                    size: size as i64,
                    owner: String::new(),
                    what: String::new(),
                    blob_key: key,
                },
                json,
            )?;
        }
        eprintln!(
            "scrub: {listed} blobs stored, {loose} ({loose_bytes} bytes) that nothing references or holds"
        );
    }
    anyhow::ensure!(
        damaged == 0,
        "{damaged} damaged blob(s): restore them from a copy of the blob store, or have their \
         owners push or back up again"
    );
    Ok(())
}

/// Prints one line: tab-separated, or a JSON object.
fn report(d: &Damage, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(d)?);
    } else {
        let found = if d.found.is_empty() {
            String::new()
        } else {
            format!(" ({})", d.found)
        };
        println!(
            "{}{found}\t{}\t{}\t{} bytes\t{}",
            d.problem, d.owner, d.what, d.size, d.blob_key
        );
    }
    Ok(())
}
