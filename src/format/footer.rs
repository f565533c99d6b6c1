//! The 64-byte footer: where the manifest is, its BLAKE3 hash, and the closing magic.

use super::error::checksum_mismatch;
use super::{Element, FormatError, crc32, le_u32, le_u64};

/// The last eight bytes of every complete archive. A file that lacks them was cut short or never finished.
pub const FOOTER_MAGIC: [u8; 8] = *b"\nPGSEND\x89";

/// The footer, the last [`Footer::LEN`] bytes of every archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Absolute offset of the manifest frame's header.
    pub manifest_offset: u64,
    /// Number of chunk frames in the archive.
    pub chunk_count: u64,
    /// BLAKE3 of the manifest's decoded bytes.
    pub manifest_blake3: [u8; 32],
}

impl Footer {
    pub const LEN: usize = 64;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..8].copy_from_slice(&self.manifest_offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.chunk_count.to_le_bytes());
        b[16..48].copy_from_slice(&self.manifest_blake3);
        // 48..52 flags stay zero.
        let crc = crc32(&b[0..52]);
        b[52..56].copy_from_slice(&crc.to_le_bytes());
        b[56..64].copy_from_slice(&FOOTER_MAGIC);
        b
    }

    /// Decodes and checks the footer found at `offset`.
    pub fn decode(b: &[u8; Self::LEN], offset: u64) -> Result<Self, FormatError> {
        if b[56..64] != FOOTER_MAGIC {
            return Err(FormatError::corrupt(
                Element::Footer,
                offset + 56,
                "no footer magic in the last 8 bytes: the archive is incomplete (cut short, or its dump never finished) or has bytes appended",
            ));
        }
        let stored = le_u32(b, 52);
        let computed = crc32(&b[0..52]);
        if stored != computed {
            return Err(FormatError::corrupt(Element::Footer, offset, checksum_mismatch(stored, computed)));
        }
        let flags = le_u32(b, 48);
        if flags != 0 {
            return Err(FormatError::corrupt(
                Element::Footer,
                offset + 48,
                format!("reserved flag bits are set ({flags:#010x}); they must be zero"),
            ));
        }
        let mut manifest_blake3 = [0u8; 32];
        manifest_blake3.copy_from_slice(&b[16..48]);
        Ok(Footer { manifest_offset: le_u64(b, 0), chunk_count: le_u64(b, 8), manifest_blake3 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(manifest_offset in any::<u64>(), chunk_count in any::<u64>(), h in any::<[u8; 32]>()) {
            let f = Footer { manifest_offset, chunk_count, manifest_blake3: h };
            prop_assert_eq!(Footer::decode(&f.encode(), 0).unwrap(), f);
        }

        #[test]
        fn any_flipped_bit_is_an_error(bit in 0usize..512) {
            let mut b = Footer { manifest_offset: 4096, chunk_count: 3, manifest_blake3: [7; 32] }.encode();
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Footer::decode(&b, 0).is_err());
        }
    }
}
