//! Certificate pinning: the client trusts exactly the certificate whose SHA-256 fingerprint
//! it pinned at `register`/`login` (trust on first use with confirmation, or `--fingerprint`).
//! Handshake signatures are still verified, so only the holder of that certificate's key can
//! answer.

use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::Digest as _;

use crate::{ClientError, Result};

/// `SHA256:<hex>` of a DER certificate.
pub fn fingerprint(cert: &[u8]) -> String {
    format!("SHA256:{}", hex::encode(sha2::Sha256::digest(cert)))
}

#[derive(Debug)]
pub(crate) struct Pinned {
    /// `None`: accept any certificate (probing only).
    pinned: Option<String>,
    /// The fingerprint last presented by the server.
    pub(crate) seen: Arc<Mutex<Option<String>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity.as_ref());
        *self.seen.lock().expect("not poisoned") = Some(fp.clone());
        match &self.pinned {
            None => Ok(ServerCertVerified::assertion()),
            Some(p) if p.eq_ignore_ascii_case(&fp) => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(rustls::Error::General(
                "certificate fingerprint mismatch".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client configuration pinned to `fingerprint` (any certificate if `None`), and the
/// cell where the presented fingerprint is recorded.
pub(crate) fn pinned_config(
    fingerprint: Option<String>,
) -> (rustls::ClientConfig, Arc<Mutex<Option<String>>>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let seen = Arc::new(Mutex::new(None));
    let verifier = Pinned {
        pinned: fingerprint,
        seen: seen.clone(),
        provider: provider.clone(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default versions are supported")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (config, seen)
}

/// Connects once and returns the fingerprint of the certificate the server presents.
pub fn probe_fingerprint(server: &str) -> Result<String> {
    let (config, seen) = pinned_config(None);
    let client = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| ClientError::Transport {
            server: server.into(),
            detail: e.to_string(),
        })?;
    let url = format!("{}/healthz", server.trim_end_matches('/'));
    client
        .get(&url)
        .send()
        .map_err(|e| ClientError::Transport {
            server: server.into(),
            detail: crate::api::transport_detail(server, &e),
        })?;
    let fp = seen.lock().expect("not poisoned").clone();
    fp.ok_or_else(|| ClientError::Usage(format!("{server} did not present a TLS certificate")))
}
