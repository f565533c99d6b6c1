//! The manifest and catalog documents from arbitrary bytes: a document that parses survives a
//! serialize-and-parse round trip unchanged, and serializing it is deterministic.
//!
//! Both documents are JSON written by one pgsafe and read by another (and by `pgsafe inspect --json`
//! users), so anything a reader accepts must be written back the same way.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use pgsafe::format::{Catalog, Manifest};
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    round_trip::<Manifest>(data);
    round_trip::<Catalog>(data);
});

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let json = serde_json::to_vec(&doc).expect("a parsed document serializes");
    let again: T = serde_json::from_slice(&json)
        .unwrap_or_else(|e| panic!("a serialized document does not parse: {e}\n{}", String::from_utf8_lossy(&json)));
    assert_eq!(again, doc, "a round trip changed the document");
    let json_again = serde_json::to_vec(&again).expect("a parsed document serializes");
    assert_eq!(json_again, json, "serializing the same document twice gives different bytes");
}
