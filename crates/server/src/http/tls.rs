//! TLS: a self-signed P-256 certificate made at first start and reused, or the operator's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;

use crate::config::TlsConfig;

/// Paths of the self-signed certificate inside the data directory.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"), dir.join("names"))
}

/// Names every self-signed certificate covers.
const BASE_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// This machine's host name, if it is one a certificate can name (so clients such as restic
/// can reach `https://HOST:8443` without `--tls-name`).
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name != "localhost"
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    valid.then_some(name)
}

/// Whether the self-signed certificate exists already.
pub fn self_signed_exists(data_dir: &Path) -> bool {
    let (cert_path, key_path, _) = self_signed_paths(data_dir);
    cert_path.exists() && key_path.exists()
}

/// Makes sure a self-signed certificate covering `extra` names exists; regenerates it (with a
/// warning, since pinned clients will notice) only when a new name is asked for. A new one
/// also covers the machine's host name (an existing one is not regenerated for it).
pub fn ensure_self_signed(data_dir: &Path, extra: &[String]) -> anyhow::Result<()> {
    let (cert_path, key_path, names_path) = self_signed_paths(data_dir);
    let mut names: Vec<String> = BASE_NAMES.iter().map(|s| s.to_string()).collect();
    for n in extra {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    if cert_path.exists() && key_path.exists() {
        let have = std::fs::read_to_string(&names_path).unwrap_or_default();
        let have: Vec<&str> = have.lines().collect();
        if names.iter().all(|n| have.contains(&n.as_str())) {
            return Ok(());
        }
        // Keep whatever it covered (the host name included) when adding a name.
        for n in have {
            if !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        }
        tracing::warn!(
            "regenerating the self-signed certificate to cover {:?}; clients that pinned the old fingerprint must re-pin it",
            names
        );
    }
    if let Some(host) = host_name()
        && !names.contains(&host)
    {
        names.push(host);
    }
    let dir = cert_path.parent().expect("has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(names.clone())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "enc-server");
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let cert = params.self_signed(&key)?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    write_atomic(&cert_path, cert.pem().as_bytes())?;
    write_atomic(&names_path, names.join("\n").as_bytes())?;
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Writes a file readable by its owner only (0600), atomically and durably.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The certificate and key files in use for this configuration.
pub fn cert_files(data_dir: &Path, tls: &TlsConfig) -> (PathBuf, PathBuf) {
    match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let (c, k, _) = self_signed_paths(data_dir);
            (c, k)
        }
    }
}

/// Reads the certificate chain.
pub fn load_chain(cert: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    Ok(chain)
}

/// `SHA256:<hex>` of the leaf certificate's DER, the value clients pin.
pub fn fingerprint(leaf: &CertificateDer<'_>) -> String {
    let digest = sha2::Sha256::digest(leaf.as_ref());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("SHA256:{hex}")
}

/// A rustls server configuration (HTTP/2 and HTTP/1.1 by ALPN).
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = load_chain(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
