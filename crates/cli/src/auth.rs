//! `enc register`, `login`, `logout`, `status`.

use std::path::Path;

use anyhow::{Context as _, bail};
use enc_client::{Account, Api, LoginMethod, Profile, SavedSession};

use crate::{Cli, ui};

fn server_and_user(cli: &Cli, profile: &Profile) -> anyhow::Result<(String, String)> {
    let saved = profile.config()?;
    let server = cli
        .server
        .clone()
        .or(saved.server)
        .context("no server: pass --server https://HOST:8443 (or set ENC_SERVER)")?;
    let user = cli
        .user
        .clone()
        .or(saved.user)
        .context("no user: pass --user NAME (or set ENC_USER)")?;
    let server = server.trim_end_matches('/').to_string();
    if !server.starts_with("https://") && !server.starts_with("http://") {
        bail!(
            "the server URL needs its scheme: try --server https://{}",
            server.split("://").last().unwrap_or(&server)
        );
    }
    Ok((server, user))
}

/// Refuses a `--server`/`ENC_SERVER` or `--user`/`ENC_USER` that names another server or user
/// than the session stored on this device, rather than silently using the stored one.
pub fn check_session_matches(cli: &Cli, profile: &Profile) -> anyhow::Result<()> {
    let Some(session) = profile.session()? else {
        return Ok(());
    };
    let other_config = "keep a second identity with another ENC_CONFIG_DIR";
    if let Some(server) = &cli.server
        && server.trim_end_matches('/') != session.server.trim_end_matches('/')
    {
        bail!(
            "this device is logged in to {} as {}, not to {server} (--server or ENC_SERVER): run `enc logout` then `enc login --server {server}`, or {other_config}",
            session.server,
            session.user
        );
    }
    if let Some(user) = &cli.user
        && *user != session.user
    {
        bail!(
            "this device is logged in as {}, not {user} (--user or ENC_USER): run `enc logout` then `enc login --user {user}`, or {other_config}",
            session.user
        );
    }
    Ok(())
}

fn check_fingerprint_format(fp: &str) -> anyhow::Result<String> {
    let hex = fp
        .strip_prefix("SHA256:")
        .or_else(|| fp.strip_prefix("sha256:"))
        .unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "--fingerprint must look like SHA256:<64 hex digits> (see `enc-server cert fingerprint`)"
        );
    }
    Ok(format!("SHA256:{}", hex.to_ascii_lowercase()))
}

/// The fingerprint to pin: `--fingerprint`, the saved one, or the presented one confirmed on
/// the terminal (trust on first use).
fn fingerprint(cli: &Cli, profile: &Profile, server: &str) -> anyhow::Result<Option<String>> {
    if server.starts_with("http://") {
        return Ok(None);
    }
    if let Some(fp) = &cli.fingerprint {
        return Ok(Some(check_fingerprint_format(fp)?));
    }
    if let Some(fp) = profile.config()?.fingerprints.get(server) {
        return Ok(Some(fp.clone()));
    }
    let seen = enc_client::probe_fingerprint(server)?;
    eprintln!(
        "The server {server} presents the certificate\n  {seen}\nCompare it with `enc-server cert fingerprint` on the server."
    );
    if ui::confirm("Trust this certificate?")? {
        Ok(Some(seen))
    } else {
        bail!(
            "certificate not trusted; after checking it, pass --fingerprint {seen} (no terminal to confirm on, or you declined)"
        )
    }
}

fn save(
    profile: &Profile,
    server: &str,
    user: &str,
    fp: Option<String>,
    session: &SavedSession,
) -> anyhow::Result<()> {
    let mut config = profile.config()?;
    config.server = Some(server.to_string());
    config.user = Some(user.to_string());
    if let Some(fp) = fp {
        config.fingerprints.insert(server.to_string(), fp);
    }
    profile.save_config(&config)?;
    profile.save_session(session)?;
    Ok(())
}

pub fn register(cli: &Cli, profile: &Profile, token: &str) -> anyhow::Result<()> {
    let (server, user) = server_and_user(cli, profile)?;
    let fp = fingerprint(cli, profile, &server)?;
    let api = Api::new(&server, fp.as_deref())?;
    // Reach the server before asking anyone for a passphrase.
    api.reachable()?;
    let pass = ui::new_passphrase(cli.passphrase_file.as_deref(), "Passphrase")?;
    let session = enc_client::register(&api, profile, &user, token, &pass)?;
    save(profile, &server, &user, fp, &session)?;
    ui::note!(
        "registered {user} on {server} (role {}); you are logged in",
        session.role
    );
    Ok(())
}

pub fn login(cli: &Cli, profile: &Profile, ssh_key: Option<&Path>) -> anyhow::Result<()> {
    let (server, user) = server_and_user(cli, profile)?;
    let fp = fingerprint(cli, profile, &server)?;
    let api = Api::new(&server, fp.as_deref())?;
    api.reachable()?;
    let pass_file = cli.passphrase_file.clone();
    let ask = move || -> enc_client::Result<zeroize::Zeroizing<String>> {
        ui::passphrase(pass_file.as_deref())
            .map_err(|e| enc_client::ClientError::Usage(e.to_string()))
    };
    let method = match ssh_key {
        Some(path) => LoginMethod::Ssh {
            key_path: path,
            passphrase: &ask,
        },
        None => LoginMethod::Passphrase(ui::passphrase(cli.passphrase_file.as_deref())?),
    };
    let session = enc_client::login(&api, profile, &user, method)?;
    save(profile, &server, &user, fp, &session)?;
    ui::note!("logged in as {user} on {server}");
    Ok(())
}

pub fn logout(profile: &Profile) -> anyhow::Result<()> {
    match Account::open(profile.clone()) {
        Ok(acct) => {
            let user = acct.user().to_string();
            match acct.logout() {
                Ok(()) => ui::note!("logged out {user}; the session is ended on the server"),
                // The session is forgotten here either way; the server's ends by itself.
                Err(e @ enc_client::ClientError::Transport { .. }) => eprintln!(
                    "logged out {user} on this device; {e}, so the server's session was not ended: it expires after its idle timeout (10 minutes by default), or revoke it later with `enc session revoke`"
                ),
                Err(e) => return Err(e.into()),
            }
        }
        Err(enc_client::ClientError::NotLoggedIn) => ui::note!("not logged in"),
        Err(e) => {
            profile.clear_session()?;
            return Err(e.into());
        }
    }
    Ok(())
}

pub fn status(profile: &Profile, json: bool) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    let me = acct.me()?;
    let key = enc_client::key_fingerprint(&acct.keys.verifying_key_b64());
    // This device: its id and its own key's fingerprint (as `enc device ls` shows them).
    let device_key = acct
        .session
        .device_key
        .as_deref()
        .and_then(|k| enc_crypto::device::DeviceKey::from_secret_b64(k).ok())
        .map(|k| enc_client::key_fingerprint(&k.public_b64()));
    if json {
        let out = serde_json::json!({
            "server": acct.api.base(),
            "user": me.user,
            "role": me.role,
            "session_id": me.session_id,
            "idle_timeout_secs": me.idle_timeout_secs,
            "key_fingerprint": key,
            "device_id": me.device_id,
            "device_key_fingerprint": device_key,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("server:  {}", acct.api.base());
    println!("user:    {} (role {})", me.user, me.role);
    println!(
        "session: {} (ends after {} s idle)",
        me.session_id, me.idle_timeout_secs
    );
    println!("key:     {key} (others see this when they share with you)");
    match (&me.device_id, &device_key) {
        (Some(id), Some(fp)) => println!("device:  {id} (key {fp}; see `enc device ls`)"),
        _ => println!("device:  none (a login from before devices: run `enc login` again)"),
    }
    Ok(())
}

pub fn change_passphrase(
    profile: &Profile,
    current_file: Option<&Path>,
    new_file: Option<&Path>,
    end_other_sessions: bool,
) -> anyhow::Result<()> {
    let acct = ui::account(profile)?;
    let current = ui::passphrase(current_file)?;
    let new = match new_file {
        Some(f) => ui::new_passphrase(Some(f), "New passphrase")?,
        None => ui::new_passphrase_prompt("New passphrase")?,
    };
    if *new == *current {
        bail!("the new passphrase is the current one");
    }
    let ended = acct.change_passphrase(&current, &new, end_other_sessions)?;
    if end_other_sessions {
        ui::note!("passphrase changed; {ended} other session(s) ended");
    } else {
        ui::note!(
            "passphrase changed; other sessions go on (end them with `enc session revoke`, or next time with --end-other-sessions)"
        );
    }
    Ok(())
}
