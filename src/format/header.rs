//! The 32-byte file header: magic, version, flags, CRC-32.

use super::error::checksum_mismatch;
use super::{Element, FORMAT_MAJOR, FormatError, crc32, le_u16, le_u32};

/// The file magic. `0x89` catches 7-bit transports, `PGSAFE` names the file, `\n` catches newline
/// translation.
pub const FILE_MAGIC: [u8; 8] = *b"\x89PGSAFE\n";

/// The file header, the first [`FileHeader::LEN`] bytes of every archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub major: u16,
    pub minor: u16,
    /// Flag bit 0 (format 1.1): a key frame follows the header and every other frame is sealed.
    pub encrypted: bool,
}

/// Flag bit 0 of the file header: the archive is encrypted (format 1.1, `format-spec` §17).
const FLAG_ENCRYPTED: u32 = 1;

/// The minor version that defines encryption.
pub const ENCRYPTION_MINOR: u16 = 1;

impl Default for FileHeader {
    /// A plain archive's header. A plain archive uses nothing newer than format 1.0, so it says 1.0 and
    /// stays readable, byte for byte, by readers of 1.0.
    fn default() -> Self {
        FileHeader { major: FORMAT_MAJOR, minor: 0, encrypted: false }
    }
}

impl FileHeader {
    pub const LEN: usize = 32;

    /// An encrypted archive's header: format 1.1 with the encrypted flag.
    pub fn encrypted() -> Self {
        FileHeader { major: FORMAT_MAJOR, minor: ENCRYPTION_MINOR, encrypted: true }
    }

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..8].copy_from_slice(&FILE_MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        let flags = if self.encrypted { FLAG_ENCRYPTED } else { 0 };
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        // 16..28 reserved stay zero.
        let crc = crc32(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header. The magic and the major version are checked before the CRC, so that
    /// a file of another kind or of a future major version gets the error that says so.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        let n = b.len().min(FILE_MAGIC.len());
        if b[..n] != FILE_MAGIC[..n] || n == 0 {
            return Err(FormatError::NotAnArchive { found: describe_bytes(&b[..n]) });
        }
        if b.len() < 12 {
            return Err(truncated(b.len()));
        }
        let major = le_u16(b, 8);
        let minor = le_u16(b, 10);
        if major != FORMAT_MAJOR {
            return Err(FormatError::UnsupportedVersion { major, minor });
        }
        if b.len() < Self::LEN {
            return Err(truncated(b.len()));
        }
        let stored = le_u32(b, 28);
        let computed = crc32(&b[0..28]);
        if stored != computed {
            return Err(FormatError::corrupt(Element::Header, 0, checksum_mismatch(stored, computed)));
        }
        let flags = le_u32(b, 12);
        let known = if minor >= ENCRYPTION_MINOR { FLAG_ENCRYPTED } else { 0 };
        if flags & !known != 0 {
            return Err(FormatError::corrupt(
                Element::Header,
                12,
                format!("reserved flag bits are set ({flags:#010x}); they must be zero in format {major}.x"),
            ));
        }
        if let Some(i) = b[16..28].iter().position(|&x| x != 0) {
            return Err(FormatError::corrupt(Element::Header, 16 + i as u64, "reserved byte is not zero"));
        }
        Ok(FileHeader { major, minor, encrypted: flags & FLAG_ENCRYPTED != 0 })
    }
}

fn truncated(available: usize) -> FormatError {
    FormatError::Truncated {
        element: Element::Header,
        offset: 0,
        needed: FileHeader::LEN as u64,
        available: available as u64,
    }
}

/// Shows the first bytes of a foreign file: as text when printable, else as hex.
fn describe_bytes(b: &[u8]) -> String {
    if b.is_empty() {
        return "nothing (the file is empty)".to_string();
    }
    if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        format!("`{}`", String::from_utf8_lossy(b))
    } else {
        format!("bytes {}", hex::encode(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let h = FileHeader::default();
        assert_eq!(FileHeader::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn future_major_is_named_even_with_a_different_layout() {
        let mut b = FileHeader { major: 2, minor: 3, encrypted: false }.encode();
        b[20] = 0xff; // a v2 header may use bytes v1 reserves
        let err = FileHeader::decode(&b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "archive format version 2.3 is not supported: this pgsafe reads format version 1.x"
        );
    }

    #[test]
    fn encrypted_round_trips_and_needs_minor_1() {
        let h = FileHeader::encrypted();
        assert_eq!((h.minor, h.encrypted), (1, true));
        assert_eq!(FileHeader::decode(&h.encode()).unwrap(), h);
        let mut b = FileHeader { minor: 0, ..h }.encode();
        let err = FileHeader::decode(&b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header at offset 12: reserved flag bits are set (0x00000001); they must be zero in format 1.x"
        );
        b[12] = 2;
        b[10] = 1;
        let crc = crc32(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        assert!(FileHeader::decode(&b).is_err(), "only bit 0 is defined");
    }

    #[test]
    fn a_plain_header_is_format_1_0() {
        let b = FileHeader::default().encode();
        assert_eq!(&b[8..16], &[1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn foreign_file_is_named() {
        let err = FileHeader::decode(b"PGDMP\x01\x0e\x00more").unwrap_err();
        assert!(err.to_string().starts_with("not a pgsafe archive"), "{err}");
    }
}
