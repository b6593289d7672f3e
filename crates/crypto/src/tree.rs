//! The formats of a vault tree (ARCHITECTURE.md, "Vault trees"): directory nodes, commit
//! headers and bodies, in canonical bytes. A node or a body is sealed as one age piece by the
//! caller; a header is public and signed.
//!
//! Every decoder checks what a hostile writer could get wrong on purpose (a member of a shared
//! vault can write any bytes): entries sorted and unique, names single path elements, modes in
//! range, lengths bounded. Encoding is deterministic, so equal directories have equal bytes.

use crate::CryptoError;

/// Longest name of one entry (one path element), in bytes, as most filesystems allow.
pub const MAX_ENTRY_NAME: usize = 255;
/// Longest symlink target, in bytes.
pub const MAX_LINK_TARGET: usize = 4096;
/// Most entries in one directory node.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Longest blob id, in bytes.
const MAX_BLOB_ID: usize = 128;

const NODE_MAGIC: &[u8] = b"enc tree node v1\0";
const HEADER_MAGIC: &[u8] = b"enc tree commit v1\0";
const HEADER_MAGIC_V2: &[u8] = b"enc tree commit v2\0";
const BODY_MAGIC: &[u8] = b"enc tree body v1\0";

/// A 32-byte hash (a content id or a ciphertext hash).
pub type Hash = [u8; 32];

/// Where a piece is stored: a blob, and the piece's offset and length in it (a whole age
/// file; offset 0 and the blob's length when the piece has a blob of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub blob: String,
    pub offset: u64,
    pub len: u64,
}

/// A stored piece: where it is, the keyed hash of its plaintext (`cid`) and the BLAKE3 of its
/// ciphertext (`chash`), so it is checked before and after decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub loc: Loc,
    pub cid: Hash,
    pub chash: Hash,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file of `size` plaintext bytes.
    File { size: u64, piece: Piece },
    /// A directory, whose node is `piece`.
    Dir { piece: Piece },
    /// A symbolic link, stored as its target (never followed).
    Symlink { target: String },
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// One path element.
    pub name: String,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub kind: Kind,
}

/// A directory: its entries, sorted by name (bytewise), each name once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub entries: Vec<Entry>,
}

/// Checks one path element of a tree.
pub fn validate_entry_name(name: &str) -> Result<(), CryptoError> {
    if name.is_empty() || name.len() > MAX_ENTRY_NAME {
        return Err(CryptoError::InvalidName("an entry name has 1 to 255 bytes"));
    }
    if name == "." || name == ".." {
        return Err(CryptoError::InvalidName("`.` and `..` are not entry names"));
    }
    if name.contains('/') || name.contains('\\') || name.chars().any(char::is_control) {
        return Err(CryptoError::InvalidName(
            "an entry name has no `/`, `\\` or control characters",
        ));
    }
    Ok(())
}

impl Node {
    /// Sorts the entries into canonical order; `Malformed` if a name repeats or is invalid.
    pub fn canonical(mut entries: Vec<Entry>) -> Result<Self, CryptoError> {
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let node = Self { entries };
        node.check()?;
        Ok(node)
    }

    fn check(&self) -> Result<(), CryptoError> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(CryptoError::Malformed("too many entries in one directory"));
        }
        for (i, e) in self.entries.iter().enumerate() {
            validate_entry_name(&e.name)?;
            if i > 0 && self.entries[i - 1].name.as_bytes() >= e.name.as_bytes() {
                return Err(CryptoError::Malformed(
                    "directory entries unsorted or repeated",
                ));
            }
            if e.mode > 0o7777 {
                return Err(CryptoError::Malformed("mode beyond 0o7777"));
            }
            match &e.kind {
                Kind::Symlink { target } => check_target(target)?,
                Kind::File { piece, .. } | Kind::Dir { piece } => check_loc(&piece.loc)?,
            }
        }
        Ok(())
    }

    /// The node's canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(NODE_MAGIC);
        w.u64(self.entries.len() as u64);
        for e in &self.entries {
            w.str(&e.name);
            w.u64(e.mode.into());
            w.u64(e.mtime_ns as u64);
            match &e.kind {
                Kind::File { size, piece } => {
                    w.u8(1);
                    w.u64(*size);
                    w.piece(piece);
                }
                Kind::Dir { piece } => {
                    w.u8(2);
                    w.piece(piece);
                }
                Kind::Symlink { target } => {
                    w.u8(3);
                    w.str(target);
                }
            }
        }
        w.0
    }

    /// Reads a node, refusing anything that is not exactly canonical.
    pub fn decode(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader::new(bytes, NODE_MAGIC)?;
        let n = r.count(MAX_ENTRIES)?;
        let mut entries = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let name = r.str(MAX_ENTRY_NAME)?;
            let mode = u32::try_from(r.u64()?).map_err(|_| CryptoError::Malformed("mode"))?;
            let mtime_ns = r.u64()? as i64;
            let kind = match r.u8()? {
                1 => Kind::File {
                    size: r.u64()?,
                    piece: r.piece()?,
                },
                2 => Kind::Dir { piece: r.piece()? },
                3 => Kind::Symlink {
                    target: r.str(MAX_LINK_TARGET)?,
                },
                _ => return Err(CryptoError::Malformed("entry kind")),
            };
            entries.push(Entry {
                name,
                mode,
                mtime_ns,
                kind,
            });
        }
        r.end()?;
        let node = Self { entries };
        node.check()?;
        Ok(node)
    }
}

fn check_target(target: &str) -> Result<(), CryptoError> {
    if target.is_empty() || target.len() > MAX_LINK_TARGET || target.contains('\0') {
        return Err(CryptoError::Malformed(
            "a link target has 1 to 4096 bytes, no NUL",
        ));
    }
    Ok(())
}

fn check_loc(loc: &Loc) -> Result<(), CryptoError> {
    let ok = !loc.blob.is_empty()
        && loc.blob.len() <= MAX_BLOB_ID
        && loc
            .blob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && loc.offset.checked_add(loc.len).is_some();
    if ok {
        Ok(())
    } else {
        Err(CryptoError::Malformed("piece location"))
    }
}

/// The account that signed a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// Version 1: the user's name, in the signed bytes, where an erasure could not take it
    /// out without breaking the vault's history. Still read, no longer written.
    Name(String),
    /// Version 2: the account's Ed25519 public key (base64). Its chain is found by the key,
    /// and neither names the user, so the commit outlives an erasure of its author.
    Key(String),
}

/// Who signed a commit: the account, the key that signed, and the certificate the account's
/// key gave that device key (the device id). A version-1 header may have no certificate (the
/// account key signed itself, before devices); a version-2 header always has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub account: Account,
    /// The Ed25519 public key that made the signature (base64).
    pub key: String,
    /// The device certificate.
    pub certificate: Option<String>,
}

/// The public part of a commit: what the server checks and the signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitHeader {
    /// The vault's owner-signed id.
    pub vault: String,
    /// 1 for the first commit of a vault, then one more each.
    pub seq: u64,
    /// The previous commit's hash; `None` for the first.
    pub prev: Option<Hash>,
    pub signer: Signer,
    /// The sealed body, and the BLAKE3 of its ciphertext.
    pub body: Loc,
    pub body_hash: Hash,
    /// Blobs this commit makes part of the vault.
    pub adds: Vec<String>,
    /// Blobs no path keeps any more after this commit.
    pub releases: Vec<String>,
}

impl CommitHeader {
    /// The canonical bytes the signer signs.
    pub fn message(&self) -> Vec<u8> {
        let (magic, account) = match &self.signer.account {
            Account::Name(name) => (HEADER_MAGIC, name),
            Account::Key(key) => (HEADER_MAGIC_V2, key),
        };
        let mut w = Writer::new(magic);
        w.str(&self.vault);
        w.u64(self.seq);
        w.opt_hash(self.prev.as_ref());
        w.str(account);
        w.str(&self.signer.key);
        w.opt_str(self.signer.certificate.as_deref());
        w.loc(&self.body);
        w.hash(&self.body_hash);
        for list in [&self.adds, &self.releases] {
            w.u64(list.len() as u64);
            for id in list {
                w.str(id);
            }
        }
        w.0
    }

    /// Reads what [`CommitHeader::message`] wrote, refusing anything else.
    pub fn decode(bytes: &[u8]) -> Result<Self, CryptoError> {
        let v2 = bytes.starts_with(HEADER_MAGIC_V2);
        let mut r = Reader::new(bytes, if v2 { HEADER_MAGIC_V2 } else { HEADER_MAGIC })?;
        let vault = r.str(MAX_BLOB_ID)?;
        let seq = r.u64()?;
        let prev = r.opt_hash()?;
        let account = if v2 {
            Account::Key(r.str(MAX_BLOB_ID)?)
        } else {
            Account::Name(r.str(MAX_ENTRY_NAME)?)
        };
        let signer = Signer {
            account,
            key: r.str(MAX_BLOB_ID)?,
            certificate: r.opt_str(MAX_LINK_TARGET)?,
        };
        if v2 && signer.certificate.is_none() {
            return Err(CryptoError::Malformed(
                "a version-2 commit is signed by a device, named by its certificate",
            ));
        }
        let body = r.loc()?;
        let body_hash = r.hash()?;
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            for _ in 0..r.count(MAX_ENTRIES)? {
                list.push(r.str(MAX_BLOB_ID)?);
            }
        }
        r.end()?;
        let [adds, releases] = lists;
        if seq == 0 || (seq == 1) != prev.is_none() {
            return Err(CryptoError::Malformed(
                "a first commit has no previous one, every other has",
            ));
        }
        check_loc(&body)?;
        Ok(Self {
            vault,
            seq,
            prev,
            signer,
            body,
            body_hash,
            adds,
            releases,
        })
    }
}

/// The hash that names a commit (and that the next one's `prev` holds): SHA-256 of the signed
/// message and its signature.
pub fn commit_hash(message: &[u8], signature: &[u8]) -> Hash {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update((message.len() as u64).to_be_bytes());
    h.update(message);
    h.update(signature);
    h.finalize().into()
}

/// A path the commit changed, with the content id it had before (`None`: it is new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub previous: Option<Hash>,
}

/// The sealed part of a commit, which only members read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitBody {
    /// The header's vault, sequence number and previous hash again, so a body cannot be
    /// served under another header.
    pub vault: String,
    pub seq: u64,
    pub prev: Option<Hash>,
    /// The vault key generation the commit's new pieces are encrypted to.
    pub generation: u32,
    /// The root directory's node.
    pub root: Piece,
    /// When the commit was made, nanoseconds since the Unix epoch, and on which host.
    pub time_ns: i64,
    pub host: String,
    pub changes: Vec<Change>,
}

impl CommitBody {
    /// The body's canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(BODY_MAGIC);
        w.str(&self.vault);
        w.u64(self.seq);
        w.opt_hash(self.prev.as_ref());
        w.u64(self.generation.into());
        w.piece(&self.root);
        w.u64(self.time_ns as u64);
        w.str(&self.host);
        w.u64(self.changes.len() as u64);
        for c in &self.changes {
            w.str(&c.path);
            w.opt_hash(c.previous.as_ref());
        }
        w.0
    }

    /// Reads a body and checks that it belongs under `header`.
    pub fn decode(bytes: &[u8], header: &CommitHeader) -> Result<Self, CryptoError> {
        let mut r = Reader::new(bytes, BODY_MAGIC)?;
        let vault = r.str(MAX_BLOB_ID)?;
        let seq = r.u64()?;
        let prev = r.opt_hash()?;
        let generation =
            u32::try_from(r.u64()?).map_err(|_| CryptoError::Malformed("generation"))?;
        let root = r.piece()?;
        let time_ns = r.u64()? as i64;
        let host = r.str(MAX_ENTRY_NAME)?;
        let mut changes = Vec::new();
        for _ in 0..r.count(MAX_ENTRIES)? {
            changes.push(Change {
                path: r.str(crate::MAX_NAME_LEN)?,
                previous: r.opt_hash()?,
            });
        }
        r.end()?;
        if vault != header.vault || seq != header.seq || prev != header.prev {
            return Err(CryptoError::Malformed(
                "commit body does not belong to its header",
            ));
        }
        check_loc(&root.loc)?;
        Ok(Self {
            vault,
            seq,
            prev,
            generation,
            root,
            time_ns,
            host,
            changes,
        })
    }
}

/// The length a piece of `len` bytes is padded to (Padmé: at most 12 % more, and a padded
/// length reveals O(log log n) bits of the real one).
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - u64::from(len.leading_zeros());
    let s = 64 - u64::from(e.leading_zeros());
    let z = e - s;
    let mask = (1u64 << z) - 1;
    (len + mask) & !mask
}

/// Canonical writer: fixed-width big-endian integers, length-prefixed strings.
struct Writer(Vec<u8>);

impl Writer {
    fn new(magic: &[u8]) -> Self {
        Self(magic.to_vec())
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn hash(&mut self, h: &Hash) {
        self.0.extend_from_slice(h);
    }
    fn opt_hash(&mut self, h: Option<&Hash>) {
        match h {
            Some(h) => {
                self.u8(1);
                self.hash(h);
            }
            None => self.u8(0),
        }
    }
    fn loc(&mut self, l: &Loc) {
        self.str(&l.blob);
        self.u64(l.offset);
        self.u64(l.len);
    }
    fn piece(&mut self, p: &Piece) {
        self.loc(&p.loc);
        self.hash(&p.cid);
        self.hash(&p.chash);
    }
}

/// The reader of what [`Writer`] wrote; any deviation is `Malformed`.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], magic: &[u8]) -> Result<Self, CryptoError> {
        match bytes.strip_prefix(magic) {
            Some(rest) => Ok(Self(rest)),
            None => Err(CryptoError::Malformed("not a tree record of this version")),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        if self.0.len() < n {
            return Err(CryptoError::Malformed("tree record truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, CryptoError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, CryptoError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn count(&mut self, max: usize) -> Result<usize, CryptoError> {
        match usize::try_from(self.u64()?) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(CryptoError::Malformed("count out of range")),
        }
    }
    fn str(&mut self, max: usize) -> Result<String, CryptoError> {
        let n = self.count(max)?;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| CryptoError::Malformed("text is not UTF-8"))
    }
    fn flag(&mut self) -> Result<bool, CryptoError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CryptoError::Malformed("flag")),
        }
    }
    fn opt_str(&mut self, max: usize) -> Result<Option<String>, CryptoError> {
        Ok(if self.flag()? {
            Some(self.str(max)?)
        } else {
            None
        })
    }
    fn hash(&mut self) -> Result<Hash, CryptoError> {
        Ok(self.take(32)?.try_into().expect("32 bytes"))
    }
    fn opt_hash(&mut self) -> Result<Option<Hash>, CryptoError> {
        Ok(if self.flag()? {
            Some(self.hash()?)
        } else {
            None
        })
    }
    fn loc(&mut self) -> Result<Loc, CryptoError> {
        Ok(Loc {
            blob: self.str(MAX_BLOB_ID)?,
            offset: self.u64()?,
            len: self.u64()?,
        })
    }
    fn piece(&mut self) -> Result<Piece, CryptoError> {
        Ok(Piece {
            loc: self.loc()?,
            cid: self.hash()?,
            chash: self.hash()?,
        })
    }
    fn end(&self) -> Result<(), CryptoError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CryptoError::Malformed("trailing bytes after a tree record"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(n: u8) -> Piece {
        Piece {
            loc: Loc {
                blob: format!("b{n}"),
                offset: u64::from(n) * 10,
                len: 7,
            },
            cid: [n; 32],
            chash: [n ^ 0xff; 32],
        }
    }

    fn entry(name: &str, kind: Kind) -> Entry {
        Entry {
            name: name.into(),
            mode: 0o644,
            mtime_ns: 1_700_000_000_123_456_789,
            kind,
        }
    }

    fn sample() -> Node {
        Node::canonical(vec![
            entry("src", Kind::Dir { piece: piece(2) }),
            entry(
                "README.md",
                Kind::File {
                    size: 12,
                    piece: piece(1),
                },
            ),
            entry(
                "link",
                Kind::Symlink {
                    target: "../elsewhere".into(),
                },
            ),
        ])
        .expect("canonical")
    }

    #[test]
    fn nodes_round_trip_in_canonical_order() {
        let node = sample();
        let names: Vec<&str> = node.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["README.md", "link", "src"]);
        let bytes = node.encode();
        assert_eq!(Node::decode(&bytes).expect("decode"), node);
        // Deterministic: the same directory is the same bytes.
        assert_eq!(sample().encode(), bytes);
    }

    #[test]
    fn hostile_nodes_are_refused() {
        let good = sample();
        let mut unsorted = good.clone();
        unsorted.entries.swap(0, 2);
        let mut repeated = good.clone();
        repeated.entries[1].name = "README.md".into();
        repeated.entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut high_mode = good.clone();
        high_mode.entries[0].mode = 0o10000;
        for (what, node) in [
            ("unsorted", unsorted),
            ("repeated", repeated),
            ("mode", high_mode),
        ] {
            assert!(Node::decode(&node.encode()).is_err(), "{what} accepted");
        }
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb", &"x".repeat(256)] {
            let mut n = good.clone();
            n.entries[0].name = bad.to_string();
            assert!(Node::decode(&n.encode()).is_err(), "name {bad:?} accepted");
            assert!(validate_entry_name(bad).is_err());
        }
        let bytes = good.encode();
        assert!(
            Node::decode(&bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Node::decode(&longer).is_err(), "trailing byte");
        assert!(
            Node::decode(b"enc tree node v2\0").is_err(),
            "other version"
        );
    }

    fn header(seq: u64) -> CommitHeader {
        CommitHeader {
            vault: "vault-1".into(),
            seq,
            prev: (seq > 1).then_some([9; 32]),
            signer: Signer {
                account: Account::Name("alice".into()),
                key: "a2V5".into(),
                certificate: None,
            },
            body: piece(5).loc,
            body_hash: [5; 32],
            adds: vec!["b1".into(), "b2".into()],
            releases: vec!["b0".into()],
        }
    }

    #[test]
    fn headers_and_bodies_round_trip_and_bind_each_other() {
        for seq in [1, 2] {
            let h = header(seq);
            assert_eq!(CommitHeader::decode(&h.message()).expect("header"), h);
            let body = CommitBody {
                vault: h.vault.clone(),
                seq: h.seq,
                prev: h.prev,
                generation: 3,
                root: piece(4),
                time_ns: 1,
                host: "laptop".into(),
                changes: vec![Change {
                    path: "src/main.rs".into(),
                    previous: Some([1; 32]),
                }],
            };
            assert_eq!(CommitBody::decode(&body.encode(), &h).expect("body"), body);
            // A body moved under another commit's header is refused.
            let mut other = h.clone();
            other.seq += 1;
            other.prev = Some([8; 32]);
            assert!(CommitBody::decode(&body.encode(), &other).is_err());
        }
        // Version 2 names the account by its key, and always has a device certificate.
        let mut h = header(2);
        h.signer.account = Account::Key("YWNjb3VudA==".into());
        assert!(
            CommitHeader::decode(&h.message()).is_err(),
            "no certificate"
        );
        h.signer.certificate = Some("device-1".into());
        assert!(h.message().starts_with(b"enc tree commit v2\0"));
        assert_eq!(CommitHeader::decode(&h.message()).expect("v2"), h);
        assert_ne!(h.message(), {
            let mut v1 = h.clone();
            v1.signer.account = Account::Name("YWNjb3VudA==".into());
            v1.message()
        });
        // A first commit with a parent, or a later one without, is refused.
        let mut h = header(1);
        h.prev = Some([1; 32]);
        assert!(CommitHeader::decode(&h.message()).is_err());
        let mut h = header(2);
        h.prev = None;
        assert!(CommitHeader::decode(&h.message()).is_err());
        // The hash changes with the message and with the signature.
        let m = header(2).message();
        assert_ne!(commit_hash(&m, b"sig"), commit_hash(&m, b"sih"));
        assert_ne!(
            commit_hash(&m, b"sig"),
            commit_hash(&header(3).message(), b"sig")
        );
    }

    #[test]
    fn padme_pads_little_and_never_shrinks() {
        for len in [
            0u64,
            1,
            2,
            3,
            100,
            4096,
            65_537,
            1 << 20,
            (1 << 20) + 1,
            1 << 40,
        ] {
            let p = padme(len);
            assert!(p >= len, "{len} → {p}");
            assert!(p as f64 <= len as f64 * 1.12 + 1.0, "{len} → {p}");
        }
        assert_eq!(padme(100), 104);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(1024), 1024);
    }
}
