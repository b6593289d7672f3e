//! `enc vault …`, `key …`, `user …`, `session …`, `audit`.

use anyhow::bail;
use enc_client::{ChainCheck, Profile, check_chain};

use crate::{KeyCmd, ResticCmd, SessionCmd, TokenCmd, UserCmd, VaultCmd, ui};

pub fn vault(profile: &Profile, cmd: VaultCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        VaultCmd::Create { name, id } => {
            let v = acct.create_vault(&name, id.as_deref())?;
            ui::note!("created vault {}", v.name);
        }
        VaultCmd::Ls => {
            let me = acct.user().to_string();
            let vaults = acct.vaults()?;
            if json {
                let rows: Vec<_> = vaults
                    .iter()
                    .map(|v| {
                        let name = if v.owner == me { v.name.clone() } else { format!("{}/{}", v.owner, v.name) };
                        serde_json::json!({"name": name, "owner": v.owner, "objects": v.objects, "bytes": v.bytes, "id": v.id, "signed_id": v.signed_id, "access": v.access})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows: Vec<Vec<String>> = vaults
                    .iter()
                    .map(|v| {
                        let (name, right) = if v.owner == me {
                            (v.name.clone(), "owner")
                        } else if v.access == "read" {
                            (format!("{}/{}", v.owner, v.name), "read-only")
                        } else {
                            (format!("{}/{}", v.owner, v.name), "read-write")
                        };
                        vec![
                            name,
                            right.to_string(),
                            v.objects.to_string(),
                            ui::size(v.bytes),
                        ]
                    })
                    .collect();
                ui::table(&["NAME", "RIGHT", "OBJECTS", "STORED"], &rows);
            }
        }
        VaultCmd::Share {
            name,
            user,
            read_only,
        } => {
            acct.share(&name, &user, read_only)?;
            let members = acct.members(&name)?;
            let key = members
                .iter()
                .find(|m| m.user == user)
                .map(|m| enc_client::key_fingerprint(&m.ed25519_public))
                .unwrap_or_default();
            let right = if read_only {
                "read-only: pull and ls"
            } else {
                "read and write"
            };
            ui::note!(
                "shared {name} with {user}, {right} (their key {key}; `enc status` shows it on their side — compare once)"
            );
        }
        VaultCmd::Unshare { name, user } => {
            acct.unshare(&name, &user)?;
            ui::note!("{user} no longer has access to {name}; new writes use new keys");
        }
        VaultCmd::Members { name } => {
            let members = acct.members(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&members)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = members
                .iter()
                .map(|m| {
                    let right = match (m.owner, m.access.as_str()) {
                        (true, _) => "owner",
                        (false, "read") => "read-only",
                        _ => "read-write",
                    };
                    vec![
                        m.user.clone(),
                        right.to_string(),
                        enc_client::key_fingerprint(&m.ed25519_public),
                    ]
                })
                .collect();
            ui::table(&["USER", "RIGHT", "KEY"], &rows);
        }
        VaultCmd::Rm { name, yes } => {
            if !yes && !ui::confirm(&format!("Remove vault {name} and everything in it?"))? {
                bail!("not removed (pass --yes to confirm without a terminal)");
            }
            acct.remove_vault(&name)?;
            ui::note!("removed vault {name}");
        }
    }
    Ok(())
}

pub fn key(profile: &Profile, cmd: KeyCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        KeyCmd::Export { vault } => {
            let v = acct.vault(vault.as_deref())?;
            eprintln!(
                "# secret: anyone with this can read vault {}",
                v.display_name(acct.user())
            );
            print!("{}", *v.keys.export_identity_file());
        }
        KeyCmd::AddSsh { public_key } => {
            let (info, with_keys) = acct.add_ssh_key(&public_key)?;
            ui::note!(
                "added {} {}{}",
                info.fingerprint,
                info.comment,
                if with_keys {
                    "; logins with it need no passphrase"
                } else {
                    "; its private key was not next to it, so the first login on a device also asks for the passphrase"
                }
            );
        }
        KeyCmd::LsSsh => {
            let keys = acct.ssh_keys()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.fingerprint.clone(),
                        ui::time(k.created),
                        k.comment.clone(),
                    ]
                })
                .collect();
            ui::table(&["FINGERPRINT", "ADDED", "COMMENT"], &rows);
        }
    }
    Ok(())
}

pub fn user(profile: &Profile, cmd: UserCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        UserCmd::Create { name, role } => {
            let inv = acct.create_user(&name, &role)?;
            ui::note!(
                "invitation for {name} (role {role}), valid until {}",
                ui::time(inv.expires_at)
            );
            println!("{}", inv.invitation);
        }
        UserCmd::Ls => {
            let users = acct.users()?;
            if json {
                let rows: Vec<_> = users
                    .iter()
                    .map(|u| serde_json::json!({"name": u.name, "role": u.role, "state": u.state, "usage_bytes": u.usage_bytes, "quota_bytes": u.quota_bytes, "created": u.created}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.role.clone(),
                            u.state.clone(),
                            ui::size(u.usage_bytes),
                            u.quota_bytes.map_or_else(|| "unlimited".into(), ui::size),
                        ]
                    })
                    .collect();
                ui::table(&["NAME", "ROLE", "STATE", "USED", "QUOTA"], &rows);
            }
        }
        UserCmd::Rm { name, erase, yes } => {
            let what = if erase { "Erase" } else { "Remove" };
            if !yes && !ui::confirm(&format!("{what} user {name} and everything they own?"))? {
                bail!("not removed (pass --yes to confirm without a terminal)");
            }
            if erase {
                let job = acct.erase_user(&name)?;
                crate::account::follow(&acct.api, &job, json)?;
            } else {
                acct.remove_user(&name)?;
                ui::note!("removed user {name}");
            }
        }
        UserCmd::SetRole { name, role } => {
            acct.set_role(&name, &role)?;
            ui::note!("{name} now has role {role}");
        }
        UserCmd::SetQuota { name, quota } => {
            let bytes = match quota.to_ascii_lowercase().as_str() {
                "unlimited" | "none" => Some(enc_proto::UNLIMITED_QUOTA),
                "default" => None,
                _ => Some(ui::parse_size(&quota).map_err(|e| {
                    anyhow::anyhow!("{e}; or `unlimited` (no limit) or `default` (the role's)")
                })?),
            };
            acct.set_quota(&name, bytes)?;
            match bytes {
                Some(enc_proto::UNLIMITED_QUOTA) => {
                    ui::note!("{name} may now store without limit")
                }
                Some(b) => ui::note!("{name} may now store {}", ui::size(b)),
                None => ui::note!("{name} now has their role's default quota"),
            }
        }
    }
    Ok(())
}

pub fn session(profile: &Profile, cmd: SessionCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        SessionCmd::Ls => {
            let sessions = acct.sessions()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&sessions)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = sessions
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        if s.device.is_empty() {
                            "-".into()
                        } else {
                            s.device.clone()
                        },
                        if s.client.is_empty() {
                            "-".into()
                        } else {
                            s.client.clone()
                        },
                        s.method.clone(),
                        ui::time(s.created),
                        ui::time(s.last_seen),
                        if s.current {
                            "this session".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            ui::table(
                &[
                    "ID",
                    "DEVICE",
                    "CLIENT",
                    "METHOD",
                    "CREATED",
                    "LAST SEEN",
                    "",
                ],
                &rows,
            );
        }
        SessionCmd::Revoke { id } => {
            acct.revoke_session(&id)?;
            ui::note!("revoked session {id}");
        }
    }
    Ok(())
}

pub fn audit(profile: &Profile, all: bool, verify: bool, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    let resp = acct.audit(all)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&resp.entries)?);
    } else {
        let rows: Vec<Vec<String>> = resp
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    ui::time(e.ts),
                    e.actor.clone(),
                    e.action.clone(),
                    e.outcome.clone(),
                    e.target.clone(),
                ]
            })
            .collect();
        ui::table(
            &["SEQ", "TIME", "ACTOR", "ACTION", "OUTCOME", "TARGET"],
            &rows,
        );
    }
    if verify {
        match (check_chain(&resp.entries, all), resp.chain_verified) {
            (ChainCheck::BrokenAt(seq), _) => bail!("audit chain broken at entry {seq}"),
            (_, Some(false)) => bail!("the server reports the audit chain is broken"),
            (ChainCheck::Intact, _) => ui::note!(
                "audit chain intact: {} entries verified from the first",
                resp.entries.len()
            ),
            (ChainCheck::EntriesIntact, _) => ui::note!(
                "{} entries verified (their hashes match; `--all` as admin checks the whole chain)",
                resp.entries.len()
            ),
        }
    }
    Ok(())
}

pub fn token(profile: &Profile, cmd: TokenCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        TokenCmd::Create {
            restic,
            mercury,
            records,
            mode,
            expires,
            label,
        } => {
            let expires_in = match expires {
                Some(e) => Some(
                    humantime::parse_duration(&e)
                        .map_err(|err| anyhow::anyhow!("--expires {e:?}: {err} (try 90d or 12h)"))?
                        .as_secs(),
                ),
                None => None,
            };
            let (kind, scope) = match (&restic, mercury, records) {
                (Some(repo), false, false) => ("restic", repo.clone()),
                (None, false, true) => ("records", String::new()),
                _ => ("mercury", String::new()),
            };
            let made = acct.create_token(&enc_proto::CreateTokenRequest {
                kind: kind.into(),
                scope,
                mode,
                expires_in,
                label,
            })?;
            let base = acct.api.base().trim_end_matches('/');
            let (scheme, host) = base.split_once("://").unwrap_or(("https", base));
            let expiry = made
                .info
                .expires
                .map_or_else(String::new, |e| format!(", expires {}", ui::time(e)));
            match restic {
                None if records => ui::note!(
                    "token {} ({}) for your records{expiry}; it is shown only this once.\nApps send it as `Authorization: Bearer TOKEN` to {base}/records.",
                    made.info.id,
                    made.info.mode,
                ),
                Some(repo) => ui::note!(
                    "token {} ({}) for restic repository {repo}{expiry}; it is shown only this once.\nrestic -r rest:{scheme}://{}:TOKEN@{host}/restic/{}/{repo}/ --cacert server.pem …  (server.pem from `enc-server cert export`)",
                    made.info.id,
                    made.info.mode,
                    acct.user(),
                    acct.user(),
                ),
                None => ui::note!(
                    "token {} ({}) for your Mercury archives{expiry}; it is shown only this once.\nUse it as the key on {}://{host}/ws (e.g. `AUTH TOKEN`, or Hecate's --auth-key).",
                    made.info.id,
                    made.info.mode,
                    if scheme == "http" { "ws" } else { "wss" },
                ),
            }
            println!("{}", made.token);
        }
        TokenCmd::Ls => {
            let tokens = acct.tokens()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.kind.clone(),
                            t.scope.clone(),
                            t.mode.clone(),
                            ui::time(t.created),
                            t.expires.map_or_else(|| "never".into(), ui::time),
                            t.last_used.map_or_else(|| "never".into(), ui::time),
                            t.label.clone(),
                        ]
                    })
                    .collect();
                ui::table(
                    &[
                        "ID",
                        "KIND",
                        "SCOPE",
                        "MODE",
                        "CREATED",
                        "EXPIRES",
                        "LAST USED",
                        "LABEL",
                    ],
                    &rows,
                );
            }
        }
        TokenCmd::Revoke { id } => {
            acct.revoke_token(&id)?;
            ui::note!("revoked token {id}");
        }
    }
    Ok(())
}

pub fn restic(profile: &Profile, cmd: ResticCmd, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    match cmd {
        ResticCmd::Ls => {
            let repos = acct.restic_repos()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&repos)?);
            } else {
                let rows: Vec<Vec<String>> = repos
                    .iter()
                    .map(|r| vec![r.name.clone(), r.objects.to_string(), ui::size(r.bytes)])
                    .collect();
                ui::table(&["NAME", "FILES", "SIZE"], &rows);
            }
        }
        ResticCmd::Rm { name, yes } => {
            if !yes
                && !ui::confirm(&format!(
                    "Delete restic repository {name} and every snapshot in it?"
                ))?
            {
                bail!("not removed (pass --yes to confirm without a terminal)");
            }
            acct.remove_restic_repo(&name)?;
            ui::note!("deleted restic repository {name}");
        }
    }
    Ok(())
}
