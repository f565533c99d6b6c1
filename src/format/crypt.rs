//! Encrypted archives (format 1.1): a random data key per archive, wrapped with `age` for the recipients
//! in a key frame right after the file header, and every other frame's payload sealed on its own with
//! XChaCha20-Poly1305 under that key.
//!
//! Each frame is sealed independently, so a restore still reads any chunk alone and in parallel, and
//! `verify` still checks each frame's CRC-32 (over the sealed bytes) without the key. age's own STREAM
//! construction would seal the archive as one sequence of 64 KiB pieces: random access within it needs
//! the piece counter of every offset, and it could not bind a piece to the frame it sits in. Here each
//! frame gets a random 24-byte nonce (stored in front of its ciphertext; XChaCha's nonce is long enough
//! that random nonces never repeat in practice) and its header's kind, codec, flags, part, chunk sequence
//! and decoded size as associated data, so a sealed payload moved to another frame, another place or
//! another archive (another data key) fails to open. `format-spec/archive-v1.md` §17 is the normative
//! description and says what an attacker who can change the file can and cannot do.
//!
//! Parsing recipients and identities works on text the caller read: this module does no file I/O.

use std::borrow::Cow;
use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload, rand_core::RngCore};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::error::checksum_mismatch;
use super::{ArchiveSource, Codec, Element, FormatError, FrameHeader, FrameKind, crc32};

/// Bytes a sealed payload has beyond its plain one: the nonce in front and the tag behind.
pub const SEAL_OVERHEAD: u32 = (NONCE_LEN + TAG_LEN) as u32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Associated data starts with this, so that a sealed payload means nothing to another protocol.
const AAD_CONTEXT: &[u8; 16] = b"pgsafe frame 1.1";

/// An archive's data key: 32 random bytes, never written anywhere but wrapped for the recipients.
#[derive(Clone)]
pub struct DataKey(Box<[u8; KEY_LEN]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.0);
    }
}

impl DataKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> DataKey {
        let mut key = Box::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(&mut key[..]);
        DataKey(key)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.0).into())
    }

    /// Seals `plain`, the stored bytes of the frame `header` describes (its `sealed` flag set, its sizes
    /// those of the sealed payload: they are not part of the associated data).
    pub(crate) fn seal(&self, header: &FrameHeader, plain: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(header);
        let sealed = self
            .cipher()
            .encrypt(&nonce, Payload { msg: plain, aad: &aad })
            .expect("XChaCha20-Poly1305 seals any payload shorter than 256 GiB");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a sealed payload; `None` when it was modified or belongs to another frame or archive.
    pub(crate) fn open(&self, header: &FrameHeader, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < SEAL_OVERHEAD as usize {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let aad = associated_data(header);
        self.cipher().decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: &aad }).ok()
    }

    /// Wraps the key for `recipients` as an age file (the key frame's payload).
    pub fn wrap(&self, recipients: &Recipients) -> Result<Vec<u8>, String> {
        let boxed = recipients.to_age()?;
        let encryptor = age::Encryptor::with_recipients(boxed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut w = encryptor.wrap_output(&mut out).map_err(|e| e.to_string())?;
        w.write_all(&self.0[..]).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Unwraps the key frame's payload with `keyring`.
    pub fn unwrap(wrapped: &[u8], keyring: &Keyring) -> Result<DataKey, UnwrapError> {
        if keyring.identities.is_empty() {
            return Err(UnwrapError::NoIdentity);
        }
        let decryptor = age::Decryptor::new_buffered(wrapped).map_err(|e| UnwrapError::Damaged(e.to_string()))?;
        let mut reader = match decryptor.decrypt(keyring.identities.iter().map(|i| i.as_ref() as &dyn age::Identity)) {
            Ok(r) => r,
            Err(age::DecryptError::NoMatchingKeys) => return Err(UnwrapError::WrongIdentity),
            Err(e) => return Err(UnwrapError::Damaged(e.to_string())),
        };
        let mut key = Box::new([0u8; KEY_LEN]);
        let mut rest = Vec::new();
        reader.read_exact(&mut key[..]).map_err(|e| UnwrapError::Damaged(e.to_string()))?;
        reader.read_to_end(&mut rest).map_err(|e| UnwrapError::Damaged(e.to_string()))?;
        if !rest.is_empty() {
            return Err(UnwrapError::Damaged(format!(
                "the wrapped key is {} bytes, not {KEY_LEN}",
                KEY_LEN + rest.len()
            )));
        }
        Ok(DataKey(key))
    }
}

/// Why the data key could not be unwrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnwrapError {
    /// No identity was given.
    NoIdentity,
    /// None of the identities is one of the archive's recipients.
    WrongIdentity,
    /// The age file in the key frame is not well formed, or its MAC or payload does not check.
    Damaged(String),
}

/// The associated data of a frame: a context string, then the header's bytes 4..16 (kind, codec, flags,
/// part, chunk sequence) and 20..24 (decoded size). The sizes and CRC of the sealed payload are left out:
/// they are computed from it.
fn associated_data(header: &FrameHeader) -> [u8; 32] {
    let h = header.encode();
    let mut aad = [0u8; 32];
    aad[0..16].copy_from_slice(AAD_CONTEXT);
    aad[16..28].copy_from_slice(&h[4..16]);
    aad[28..32].copy_from_slice(&h[20..24]);
    aad
}

/// Checks a key frame (found at `at`, its payload `stored`) and unwraps the data key in it with
/// `keyring`. Also returns the kinds of recipient the key is wrapped for.
pub(crate) fn open_key_frame(
    h: &FrameHeader,
    stored: &[u8],
    at: u64,
    keyring: &Keyring,
) -> Result<(DataKey, Vec<String>), FormatError> {
    let kinds = check_key_frame(h, stored, at)?;
    let recipients = format!(" to {}", describe_kinds(&kinds));
    match DataKey::unwrap(stored, keyring) {
        Ok(key) => Ok((key, kinds)),
        Err(UnwrapError::NoIdentity) => Err(FormatError::NeedsIdentity { recipients }),
        Err(UnwrapError::WrongIdentity) => Err(FormatError::WrongIdentity { recipients }),
        Err(UnwrapError::Damaged(problem)) => Err(FormatError::corrupt(
            Element::Key,
            at + FrameHeader::LEN as u64,
            format!("the wrapped data key does not open: {problem}"),
        )),
    }
}

/// Checks a key frame's header and CRC without unwrapping it; returns the kinds of recipient it names.
pub(crate) fn check_key_frame(h: &FrameHeader, stored: &[u8], at: u64) -> Result<Vec<String>, FormatError> {
    if h.kind != FrameKind::Key || h.codec != Codec::None {
        return Err(FormatError::corrupt(
            Element::Key,
            at + 4,
            format!("expected the key frame after the header of an encrypted archive, found a {:?} frame", h.kind),
        ));
    }
    let computed = crc32(stored);
    if computed != h.payload_crc {
        return Err(FormatError::corrupt(
            Element::Key,
            at + FrameHeader::LEN as u64,
            format!("payload {}", checksum_mismatch(h.payload_crc, computed)),
        ));
    }
    let kinds = recipient_kinds(stored);
    if kinds.is_empty() {
        return Err(FormatError::corrupt(
            Element::Key,
            at + FrameHeader::LEN as u64,
            "the key frame holds no age recipient stanza",
        ));
    }
    Ok(kinds)
}

/// What [`check_structure`] found in an encrypted archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedLayout {
    /// The kinds of recipient the data key is wrapped for, one per recipient.
    pub recipient_kinds: Vec<String>,
    /// Chunk frames.
    pub chunks: u64,
    /// Parts that have chunks (parts without rows have none, so the catalog may list more).
    pub parts_with_chunks: usize,
    /// The footer's BLAKE3 of the sealed manifest, checked: it names the archive's content.
    pub manifest_blake3: [u8; 32],
    /// The format version the header gives, `major.minor`.
    pub format_version: String,
}

/// Checks everything of an encrypted archive that can be checked without its data key: the header, the
/// key frame, every frame header and every payload's CRC-32 front to back, chunks in sequence within
/// their part, the footer, its chunk count, and the BLAKE3 of the sealed manifest. What it cannot check
/// (the catalog, the manifest, row counts, digests) needs the identity.
///
/// It reads the archive front to back once, in windows of 8 MiB (a frame larger than
/// that is read whole): a file is read at offsets, an object in a bucket by ranged requests,
/// and memory stays bounded either way.
pub fn check_structure<S: ArchiveSource + ?Sized>(source: &S) -> Result<SealedLayout, FormatError> {
    check_structure_in(source, STRUCTURE_WINDOW)
}

/// [`check_structure`] reading `window` bytes at a time (tests make it small, to slide it often).
pub(crate) fn check_structure_in<S: ArchiveSource + ?Sized>(
    source: &S,
    window: usize,
) -> Result<SealedLayout, FormatError> {
    let len = source.len();
    let mut window = Window { source, size: window, start: 0, bytes: Cow::Borrowed(&[]) };
    let head = window.get(0, super::FileHeader::LEN.min(len as usize))?;
    let header = super::FileHeader::decode(head)?;
    if !header.encrypted {
        return Err(FormatError::corrupt(Element::Header, 12, "the archive is not encrypted"));
    }
    let min = (super::FileHeader::LEN + 3 * FrameHeader::LEN + super::Footer::LEN) as u64;
    if len < min {
        return Err(FormatError::Truncated { element: Element::File, offset: 0, needed: min, available: len });
    }
    let footer_at = len - super::Footer::LEN as u64;
    let footer = super::Footer::decode(fixed(window.get(footer_at, super::Footer::LEN)?), footer_at)?;
    let mut at = super::FileHeader::LEN as u64;
    let mut index = 0u64;
    let mut kinds = Vec::new();
    let mut next_seq: std::collections::HashMap<super::PartId, u32> = std::collections::HashMap::new();
    let mut chunks = 0u64;
    loop {
        let element = match index {
            0 => Element::Key,
            1 => Element::Catalog,
            _ => Element::Frame { index },
        };
        if at + FrameHeader::LEN as u64 > footer_at {
            return Err(FormatError::corrupt(
                element,
                at,
                format!("frames run into the footer at offset {footer_at} before the manifest frame"),
            ));
        }
        let h = FrameHeader::decode(fixed(window.get(at, FrameHeader::LEN)?), &header, at, element.clone())?;
        let end = at + h.frame_len();
        if end > footer_at {
            return Err(FormatError::corrupt(element, at, format!("frame ends at offset {end}, inside the footer")));
        }
        let stored = window.get(at + FrameHeader::LEN as u64, (end - at) as usize - FrameHeader::LEN)?;
        let expected = match index {
            0 => FrameKind::Key,
            1 => FrameKind::Catalog,
            _ if at == footer.manifest_offset => FrameKind::Manifest,
            _ => FrameKind::Chunk,
        };
        if h.kind != expected {
            return Err(FormatError::corrupt(
                element,
                at + 4,
                format!("expected a {expected:?} frame, found a {:?} frame", h.kind),
            ));
        }
        if h.kind == FrameKind::Key {
            kinds = check_key_frame(&h, stored, at)?;
        } else {
            let computed = crc32(stored);
            if computed != h.payload_crc {
                return Err(FormatError::corrupt(
                    element,
                    at + FrameHeader::LEN as u64,
                    format!("payload {}", checksum_mismatch(h.payload_crc, computed)),
                ));
            }
        }
        if h.kind == FrameKind::Chunk {
            let next = next_seq.entry(h.part).or_insert(0);
            if h.seq.0 != *next {
                return Err(FormatError::corrupt(
                    Element::Chunk { part: h.part, seq: h.seq, table: None },
                    at + 12,
                    format!("chunk out of order: expected chunk {next} of part {}", h.part),
                ));
            }
            *next += 1;
            chunks += 1;
        }
        if h.kind == FrameKind::Manifest {
            if end != footer_at {
                return Err(FormatError::corrupt(
                    Element::Manifest,
                    at,
                    format!("frame ends at offset {end} but the footer starts at {footer_at}"),
                ));
            }
            super::index::check_manifest_hash(stored, &footer, at)?;
            break;
        }
        at = end;
        index += 1;
    }
    if chunks != footer.chunk_count {
        return Err(FormatError::corrupt(
            Element::Footer,
            footer_at,
            format!("counts {} chunks, the file holds {chunks}", footer.chunk_count),
        ));
    }
    Ok(SealedLayout {
        recipient_kinds: kinds,
        chunks,
        parts_with_chunks: next_seq.len(),
        manifest_blake3: footer.manifest_blake3,
        format_version: format!("{}.{}", header.major, header.minor),
    })
}

fn fixed<const N: usize>(bytes: &[u8]) -> &[u8; N] {
    bytes[..N].try_into().expect("the window holds what was asked for")
}

/// How many bytes [`check_structure`] reads at once.
pub const STRUCTURE_WINDOW: usize = 8 << 20;

/// A sliding window over an archive read front to back.
struct Window<'s, S: ?Sized> {
    source: &'s S,
    /// Bytes read at once, unless a frame is larger.
    size: usize,
    /// The offset of `bytes`' first byte.
    start: u64,
    bytes: Cow<'s, [u8]>,
}

impl<'s, S: ArchiveSource + ?Sized> Window<'s, S> {
    /// The `len` bytes at `at`, which the caller has checked lie inside the source.
    fn get(&mut self, at: u64, len: usize) -> Result<&[u8], FormatError> {
        let held = self.start..self.start + <[u8]>::len(&self.bytes) as u64;
        if at < held.start || at + len as u64 > held.end {
            let want = (len.max(self.size) as u64).min(self.source.len() - at) as usize;
            self.bytes = self.source.read_at(at, want).map_err(|source| FormatError::Io { offset: at, source })?;
            self.start = at;
        }
        let from = (at - self.start) as usize;
        Ok(&self.bytes[from..from + len])
    }
}

/// The kinds of recipient an age file's stanzas name (`X25519`, `ssh-ed25519`, `ssh-rsa`, ...), one per
/// stanza, in order. age stanzas say what kind of key opens them, never which key (an `ssh-ed25519` or
/// `ssh-rsa` stanza does carry a 4-byte tag of the public key's hash, enough to confirm a guess).
pub fn recipient_kinds(wrapped: &[u8]) -> Vec<String> {
    let end = wrapped.windows(4).position(|w| w == b"\n---").unwrap_or(wrapped.len());
    String::from_utf8_lossy(&wrapped[..end])
        .lines()
        .filter_map(|l| l.strip_prefix("-> "))
        .filter_map(|l| l.split(' ').next())
        // age adds a stanza of a random kind ending in `-grease` to every file, so that readers learn to
        // skip kinds they do not know: it is no recipient.
        .filter(|kind| !kind.ends_with("-grease"))
        .map(str::to_string)
        .collect()
}

/// Describes recipient kinds for people: `2 recipients (X25519, ssh-ed25519)`.
pub fn describe_kinds(kinds: &[String]) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for k in kinds {
        if !distinct.contains(&k.as_str()) {
            distinct.push(k);
        }
    }
    let s = if kinds.len() == 1 { "" } else { "s" };
    format!("{} recipient{s} ({})", kinds.len(), distinct.join(", "))
}

/// Public keys to encrypt an archive to: age X25519 recipients (`age1...`) and SSH public keys
/// (`ssh-ed25519 ...`, `ssh-rsa ...`). Kept as the checked text, so that the list is `Clone` and can be
/// shown; turned into age's recipients when a key is wrapped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients {
    keys: Vec<String>,
}

impl Recipients {
    /// Adds one recipient; `source` names where it came from, for the error.
    pub fn add(&mut self, text: &str, source: &str) -> Result<(), String> {
        let text = text.trim();
        parse_recipient(text).map_err(|problem| format!("{source}: {problem}"))?;
        self.keys.push(text.to_string());
        Ok(())
    }

    /// Adds the recipients of a recipients file's text, as age's `-R` reads it: one a line, blank lines
    /// and lines starting with `#` skipped. `source` names the file in errors.
    pub fn add_file(&mut self, text: &str, source: &str) -> Result<(), String> {
        let before = self.keys.len();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            self.add(line, &format!("{source} line {}", n + 1))?;
        }
        if self.keys.len() == before {
            return Err(format!("{source}: no recipient in the file"));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    fn to_age(&self) -> Result<Vec<Box<dyn age::Recipient + Send>>, String> {
        if self.keys.is_empty() {
            return Err("no recipient to encrypt to".into());
        }
        self.keys.iter().map(|k| parse_recipient(k)).collect()
    }
}

fn parse_recipient(text: &str) -> Result<Box<dyn age::Recipient + Send>, String> {
    if text.starts_with("age1") {
        return age::x25519::Recipient::from_str(text)
            .map(|r| Box::new(r) as _)
            .map_err(|e| format!("`{text}` is not a valid age X25519 recipient: {e}"));
    }
    if text.starts_with("ssh-") {
        return age::ssh::Recipient::from_str(text)
            .map(|r| Box::new(r) as _)
            .map_err(|e| format!("`{text}` is not a usable SSH public key: {e:?}"));
    }
    if text.starts_with("AGE-SECRET-KEY-") {
        // Never echo a secret key back.
        return Err(
            "this is an age identity (a secret key), not a recipient: pass its public key (`age-keygen -y`)".into()
        );
    }
    Err(format!(
        "`{text}` is not a recipient: expected an age public key (`age1...`) or an SSH public key (`ssh-ed25519 ...`, `ssh-rsa ...`)"
    ))
}

/// Identities that may open an archive's data key: age X25519 identities (`AGE-SECRET-KEY-1...`) and
/// unencrypted SSH private keys. Empty when none was given.
#[derive(Default)]
pub struct Keyring {
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring({} identities)", self.identities.len())
    }
}

impl Keyring {
    /// A keyring with no identity: reads plain archives, and the structure of encrypted ones.
    pub fn none() -> Keyring {
        Keyring::default()
    }

    /// Parses an identity file's text: an age identity file (`#` comments, one `AGE-SECRET-KEY-1` a line)
    /// or an SSH private key in OpenSSH format. `source` names the file in errors, which never quote it.
    pub fn parse(text: &str, source: &str) -> Result<Keyring, String> {
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") || text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            let id = age::ssh::Identity::from_buffer(text.as_bytes(), Some(source.to_string()))
                .map_err(|e| format!("{source}: not a usable SSH private key: {e}"))?;
            return match id {
                age::ssh::Identity::Unencrypted(_) => Ok(Keyring { identities: vec![Box::new(id)] }),
                age::ssh::Identity::Encrypted(_) => Err(format!(
                    "{source}: the SSH private key is protected by a passphrase, which pgsafe does not ask for: use an age identity or an unencrypted copy of the key"
                )),
                age::ssh::Identity::Unsupported(_) => Err(format!("{source}: this kind of SSH key is not supported")),
            };
        }
        let file = age::IdentityFile::from_buffer(text.as_bytes()).map_err(|e| format!("{source}: {e}"))?;
        let identities = file.into_identities().map_err(|e| format!("{source}: {e}"))?;
        if identities.is_empty() {
            return Err(format!("{source}: no identity in the file"));
        }
        Ok(Keyring { identities })
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// A keyring of one identity, for tests and tools that make their own keys.
    pub fn of(identity: Box<dyn age::Identity + Send + Sync>) -> Keyring {
        Keyring { identities: vec![identity] }
    }
}

/// What an encoder needs to seal an archive: a fresh data key and its wrapping for the recipients.
#[derive(Debug, Clone)]
pub struct Sealing {
    pub(crate) key: DataKey,
    pub(crate) wrapped: Vec<u8>,
}

impl Sealing {
    /// A fresh data key wrapped for `recipients`.
    pub fn to(recipients: &Recipients) -> Result<Sealing, String> {
        let key = DataKey::generate();
        let wrapped = key.wrap(recipients)?;
        Ok(Sealing { key, wrapped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ChunkSeq, Codec, FrameKind, PartId};
    use age::secrecy::ExposeSecret;

    fn header(part: u32, seq: u32) -> FrameHeader {
        FrameHeader {
            kind: FrameKind::Chunk,
            codec: Codec::None,
            sealed: true,
            part: PartId(part),
            seq: ChunkSeq(seq),
            stored_len: 0,
            raw_len: 5,
            payload_crc: 0,
        }
    }

    #[test]
    fn a_sealed_payload_opens_only_in_its_own_frame_and_with_its_own_key() {
        let key = DataKey::generate();
        let sealed = key.seal(&header(1, 2), b"hello");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD as usize);
        assert_eq!(key.open(&header(1, 2), &sealed).unwrap(), b"hello");
        assert!(key.open(&header(1, 3), &sealed).is_none(), "moved to another chunk");
        assert!(key.open(&header(2, 2), &sealed).is_none(), "moved to another part");
        assert!(key.open(&FrameHeader { kind: FrameKind::Catalog, ..header(0, 0) }, &sealed).is_none());
        assert!(key.open(&FrameHeader { raw_len: 6, ..header(1, 2) }, &sealed).is_none(), "size changed");
        assert!(DataKey::generate().open(&header(1, 2), &sealed).is_none(), "another archive's key");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(key.open(&header(1, 2), &bad).is_none(), "flipped byte {i}");
        }
        // Nonces are random: the same payload seals differently every time.
        assert_ne!(key.seal(&header(1, 2), b"hello"), sealed);
    }

    #[test]
    fn the_key_unwraps_with_a_recipients_identity_only() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let mut recipients = Recipients::default();
        recipients.add(&id.to_public().to_string(), "test").unwrap();
        let key = DataKey::generate();
        let wrapped = key.wrap(&recipients).unwrap();
        assert_eq!(recipient_kinds(&wrapped), vec!["X25519".to_string()]);
        let keyring = Keyring::parse(&format!("# test\n{}\n", id.to_string().expose_secret()), "test").unwrap();
        assert_eq!(*DataKey::unwrap(&wrapped, &keyring).unwrap().0, *key.0);
        let wrong = Keyring::of(Box::new(other));
        assert_eq!(DataKey::unwrap(&wrapped, &wrong).unwrap_err(), UnwrapError::WrongIdentity);
        assert_eq!(DataKey::unwrap(&wrapped, &Keyring::none()).unwrap_err(), UnwrapError::NoIdentity);
        let mut bad = wrapped.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(DataKey::unwrap(&bad, &keyring), Err(UnwrapError::Damaged(_))));
    }

    #[test]
    fn recipients_files_read_as_age_reads_them() {
        let a = age::x25519::Identity::generate().to_public().to_string();
        let b = age::x25519::Identity::generate().to_public().to_string();
        let mut r = Recipients::default();
        r.add_file(&format!("# team\n{a}\n\n  {b}  \n"), "keys.txt").unwrap();
        assert_eq!(r.len(), 2);
        let err = r.add_file("# nothing\n", "empty.txt").unwrap_err();
        assert_eq!(err, "empty.txt: no recipient in the file");
        let err = r.add_file("# x\nage1notakey\n", "bad.txt").unwrap_err();
        assert!(err.starts_with("bad.txt line 2: `age1notakey` is not a valid age X25519 recipient"), "{err}");
        let secret = age::x25519::Identity::generate().to_string().expose_secret().to_string();
        let err = r.add(&secret, "--encrypt-to").unwrap_err();
        assert!(!err.contains(&secret[15..]), "a secret key is never echoed: {err}");
    }

    /// A throwaway key made for this test with `ssh-keygen -t ed25519 -N ""`: it protects nothing.
    const SSH_SECRET: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACCQmSAP503PdWjvRueOLAqbAFJzc7QIUJtUgOXOpnjKtgAAAJiNoSmijaEp
ogAAAAtzc2gtZWQyNTUxOQAAACCQmSAP503PdWjvRueOLAqbAFJzc7QIUJtUgOXOpnjKtg
AAAEDn48CrrOrK3D2JZcFLyXgkSs/LF+xXV7dIFtUWXAuomJCZIA/nTc91aO9G544sCpsA
UnNztAhQm1SA5c6meMq2AAAAD3Bnc2FmZSB0ZXN0IGtleQECAwQFBg==
-----END OPENSSH PRIVATE KEY-----
";
    const SSH_PUBLIC: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJCZIA/nTc91aO9G544sCpsAUnNztAhQm1SA5c6meMq2 pgsafe test key";

    #[test]
    fn ssh_keys_are_recipients_and_identities() {
        let age_id = age::x25519::Identity::generate();
        let mut recipients = Recipients::default();
        recipients.add(SSH_PUBLIC, "test").unwrap();
        recipients.add(&age_id.to_public().to_string(), "test").unwrap();
        let key = DataKey::generate();
        let wrapped = key.wrap(&recipients).unwrap();
        assert_eq!(recipient_kinds(&wrapped), vec!["ssh-ed25519".to_string(), "X25519".to_string()]);
        assert_eq!(describe_kinds(&recipient_kinds(&wrapped)), "2 recipients (ssh-ed25519, X25519)");
        let keyring = Keyring::parse(SSH_SECRET, "id_ed25519").unwrap();
        assert_eq!(*DataKey::unwrap(&wrapped, &keyring).unwrap().0, *key.0);
        assert_eq!(*DataKey::unwrap(&wrapped, &Keyring::of(Box::new(age_id))).unwrap().0, *key.0);
    }

    #[test]
    fn a_secret_is_never_in_an_identity_files_error() {
        let secret = age::x25519::Identity::generate().to_string().expose_secret().to_string();
        let err = Keyring::parse(&format!("{secret}\nnot a key\n"), "id.txt").unwrap_err();
        assert!(err.contains("id.txt") && !err.contains(&secret[15..]), "{err}");
        assert!(Keyring::parse("# only a comment\n", "id.txt").unwrap_err().contains("no identity"));
    }
}
