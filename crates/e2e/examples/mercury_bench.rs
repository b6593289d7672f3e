//! One timed transfer for `scripts/bench_mercury.py`: Mercury's text dialect on `/ws` or the
//! native `/v1` API, with the same TLS stack (rustls) and 1 MiB writes on both sides, so the
//! comparison is of the server's two paths. Prints one JSON line: bytes, seconds, MB/s.
//!
//! ```text
//! mercury_bench ws-up   WS_URL KEY NAME MIB
//! mercury_bench ws-down WS_URL KEY NAME
//! mercury_bench v1-up   BASE_URL SESSION_TOKEN VAULT_ID MIB
//! mercury_bench v1-down BASE_URL SESSION_TOKEN VAULT_ID VERSION_ID
//! ```
//!
//! Certificates are not checked: loopback benchmarks only.

use std::io::Read as _;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore as _;
use tungstenite::Message;

const CHUNK: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str {
        args.get(i).map(String::as_str).unwrap_or_else(|| {
            eprintln!("usage: see the header of examples/mercury_bench.rs");
            std::process::exit(2)
        })
    };
    let mut chunk = vec![0u8; CHUNK];
    rand::thread_rng().fill_bytes(&mut chunk);
    let start = Instant::now();
    let bytes = match arg(0) {
        "ws-up" => ws_up(arg(1), arg(2), arg(3), arg(4).parse().expect("MIB"), &chunk),
        "ws-down" => ws_down(arg(1), arg(2), arg(3)),
        "v1-up" => v1_up(arg(1), arg(2), arg(3), arg(4).parse().expect("MIB"), &chunk),
        "v1-down" => v1_down(arg(1), arg(2), arg(3), arg(4)),
        other => panic!("unknown mode {other}"),
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"bytes\":{bytes},\"seconds\":{secs:.3},\"mb_s\":{:.1}}}",
        bytes as f64 / secs / 1e6
    );
}

type Ws = tungstenite::WebSocket<Box<dyn ReadWrite>>;

trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

fn connect(url: &str) -> Ws {
    let (tls, rest) = match url.split_once("://") {
        Some(("wss", r)) => (true, r),
        Some(("ws", r)) => (false, r),
        _ => panic!("ws:// or wss:// URL expected"),
    };
    let host_port = rest.split('/').next().expect("host");
    let tcp = TcpStream::connect(host_port).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let stream: Box<dyn ReadWrite> = if tls {
        let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
        let config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(
                rustls::crypto::aws_lc_rs::default_provider(),
            )))
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.to_string()).expect("name");
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("tls");
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    let cfg = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(8 << 20))
        .max_frame_size(Some(8 << 20));
    let (ws, _) = tungstenite::client::client_with_config(url, stream, Some(cfg))
        .map_err(|e| e.to_string())
        .expect("websocket handshake");
    ws
}

fn text(ws: &mut Ws) -> String {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return t.to_string(),
            Message::Binary(b) => panic!("unexpected binary frame of {}", b.len()),
            _ => {}
        }
    }
}

fn expect(ws: &mut Ws, send: String, want: &str) {
    ws.send(Message::text(send)).expect("send");
    let got = text(ws);
    assert!(got.starts_with(want), "expected {want:?}, got {got:?}");
}

fn ws_up(url: &str, key: &str, name: &str, mib: u64, chunk: &[u8]) -> u64 {
    let mut ws = connect(url);
    expect(&mut ws, format!("AUTH {key}"), "OK");
    expect(&mut ws, format!("NAME {name}"), "ACCEPT");
    ws.send(Message::text("DATA")).expect("send");
    let data = bytes::Bytes::copy_from_slice(chunk);
    for _ in 0..mib {
        ws.write(Message::Binary(data.clone())).expect("write");
    }
    expect(&mut ws, "END".into(), "OK ");
    mib * CHUNK as u64
}

fn ws_down(url: &str, key: &str, name: &str) -> u64 {
    let mut ws = connect(url);
    expect(&mut ws, format!("AUTH {key}"), "OK");
    expect(&mut ws, format!("GET {name}"), "DATA");
    let mut total = 0u64;
    loop {
        match ws.read().expect("read") {
            Message::Binary(b) => total += b.len() as u64,
            Message::Text(t) if t.as_str() == "END" => return total,
            Message::Text(t) => panic!("{t}"),
            _ => {}
        }
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .expect("client")
}

/// A body of `mib` copies of one random MiB, read in 1 MiB pieces.
struct Repeat {
    chunk: Vec<u8>,
    left: u64,
    pos: usize,
}

impl std::io::Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.chunk.len() {
            self.pos = 0;
            self.left -= 1;
        }
        Ok(n)
    }
}

fn v1_up(base: &str, token: &str, vault: &str, mib: u64, chunk: &[u8]) -> u64 {
    let size = mib * CHUNK as u64;
    let body = reqwest::blocking::Body::sized(
        Repeat {
            chunk: chunk.to_vec(),
            left: mib,
            pos: 0,
        },
        size,
    );
    let resp = http()
        .put(format!("{base}/v1/vaults/{vault}/uploads"))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .expect("upload");
    assert!(resp.status().is_success(), "upload: {}", resp.status());
    size
}

fn v1_down(base: &str, token: &str, vault: &str, version: &str) -> u64 {
    let mut resp = http()
        .get(format!("{base}/v1/vaults/{vault}/blobs/{version}"))
        .bearer_auth(token)
        .send()
        .expect("download");
    assert!(resp.status().is_success(), "download: {}", resp.status());
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = resp.read(&mut buf).expect("read");
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

/// Accepts any certificate (loopback benchmarks only); signatures are still checked.
#[derive(Debug)]
struct AnyCert(rustls::crypto::CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
