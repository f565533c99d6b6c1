//! The order-independent content digest of a set of rows.

use std::fmt;
use std::ops::AddAssign;

/// The sum, modulo 2^128, of XXH3-128 over each row's bytes.
///
/// Addition commutes, so the digest of a table does not depend on the order its rows come back in after a
/// reload, and the digest of a table is the sum of the digests of its parts. Serialized as 32 lowercase
/// hex digits, most significant first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ContentDigest(pub u128);

impl ContentDigest {
    /// Adds one row, given as its exact bytes in the COPY stream (see [`super::TupleScanner`]).
    #[inline]
    pub fn add_row(&mut self, row: &[u8]) {
        self.0 = self.0.wrapping_add(xxhash_rust::xxh3::xxh3_128(row));
    }
}

impl AddAssign for ContentDigest {
    fn add_assign(&mut self, rhs: Self) {
        self.0 = self.0.wrapping_add(rhs.0);
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl serde::Serialize for ContentDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ContentDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if !is_lower_hex(&s, 32) {
            return Err(serde::de::Error::custom(format!("content digest `{s}` is not 32 lowercase hex digits")));
        }
        u128::from_str_radix(&s, 16)
            .map(ContentDigest)
            .map_err(|_| serde::de::Error::custom(format!("content digest `{s}` is not 32 lowercase hex digits")))
    }
}

/// True when `s` is exactly `len` lowercase hex digits, the one spelling the format allows.
pub(crate) fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn order_does_not_matter(rows in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..30), seed in any::<u64>()) {
            let mut a = ContentDigest::default();
            rows.iter().for_each(|r| a.add_row(r));
            let mut shuffled = rows.clone();
            let n = shuffled.len();
            if n > 1 { shuffled.swap((seed as usize) % n, 0); shuffled.reverse(); }
            let mut b = ContentDigest::default();
            shuffled.iter().for_each(|r| b.add_row(r));
            prop_assert_eq!(a, b);
        }

        #[test]
        fn serde_round_trips(v in any::<u128>()) {
            let d = ContentDigest(v);
            let s = serde_json::to_string(&d).unwrap();
            prop_assert_eq!(serde_json::from_str::<ContentDigest>(&s).unwrap(), d);
        }
    }

    #[test]
    fn a_changed_row_changes_the_digest() {
        let mut a = ContentDigest::default();
        a.add_row(b"1\talice\t100");
        a.add_row(b"2\tbob\t50");
        let mut b = ContentDigest::default();
        b.add_row(b"1\talice\t100");
        b.add_row(b"2\tbob\t51");
        assert_ne!(a, b);
    }
}
