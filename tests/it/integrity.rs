//! Any single flipped bit and any truncation of a valid archive is reported as an error by both
//! readers: never a panic, never a wrong answer.

use std::fs;

use crate::vectors::{identity, random_access, random_access_with, sequential, sequential_with, vectors_dir};

fn valid_archives() -> Vec<(String, Vec<u8>)> {
    ["valid-two-tables.pgsafe", "valid-uncompressed.pgsafe", "valid-minimal.pgsafe"]
        .iter()
        .map(|f| (f.to_string(), fs::read(vectors_dir().join(f)).expect("reading a vector")))
        .collect()
}

#[test]
fn every_flipped_bit_is_detected() {
    for (name, bytes) in valid_archives() {
        for bit in 0..bytes.len() * 8 {
            let mut v = bytes.clone();
            v[bit / 8] ^= 1 << (bit % 8);
            assert!(random_access(&v).is_err(), "{name}: bit {bit} flipped, random access reader saw nothing");
            assert!(sequential(&v).is_err(), "{name}: bit {bit} flipped, sequential reader saw nothing");
        }
    }
}

#[test]
fn every_changed_byte_is_detected() {
    // Whole-byte changes other than single bits: CRC-32 catches every burst up to 32 bits.
    for (name, bytes) in valid_archives() {
        for at in 0..bytes.len() {
            for x in [0xffu8, 0x5a] {
                let mut v = bytes.clone();
                v[at] ^= x;
                assert!(random_access(&v).is_err(), "{name}: byte {at} ^ {x:#x} went unnoticed");
                assert!(sequential(&v).is_err(), "{name}: byte {at} ^ {x:#x} went unnoticed (sequential)");
            }
        }
    }
}

#[test]
fn every_truncation_is_detected() {
    for (name, bytes) in valid_archives() {
        for len in 0..bytes.len() {
            assert!(random_access(&bytes[..len]).is_err(), "{name}: cut to {len} bytes went unnoticed");
            assert!(sequential(&bytes[..len]).is_err(), "{name}: cut to {len} bytes went unnoticed (sequential)");
        }
    }
}

/// The encrypted vector: with its identity both readers find every flipped bit and truncation; without
/// it, the structure check (`verify` without `--identity`) finds them too.
#[test]
fn every_flipped_bit_and_truncation_of_an_encrypted_archive_is_detected() {
    let bytes = fs::read(vectors_dir().join("valid-encrypted.pgsafe")).unwrap();
    let keyring = identity("encrypted.identity.txt");
    random_access_with(&bytes, &keyring).unwrap();
    pgsafe::format::check_structure(&bytes).unwrap();
    for bit in 0..bytes.len() * 8 {
        let mut v = bytes.clone();
        v[bit / 8] ^= 1 << (bit % 8);
        assert!(random_access_with(&v, &keyring).is_err(), "bit {bit} flipped, random access reader saw nothing");
        assert!(sequential_with(&v, identity("encrypted.identity.txt")).is_err(), "bit {bit} flipped (sequential)");
        assert!(pgsafe::format::check_structure(&v).is_err(), "bit {bit} flipped, the structure check saw nothing");
    }
    for len in 0..bytes.len() {
        assert!(random_access_with(&bytes[..len], &keyring).is_err(), "cut to {len} bytes went unnoticed");
        assert!(pgsafe::format::check_structure(&bytes[..len]).is_err(), "cut to {len} bytes (structure check)");
    }
}
