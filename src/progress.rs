//! How long-running operations report progress. The library never prints: it calls a [`Progress`],
//! which the command line renders as a bar on a terminal or as periodic lines otherwise.

use crate::format::PartId;

/// Receives progress events from any worker thread.
pub trait Progress: Send + Sync {
    /// The work is planned: this many bytes and rows are expected (the catalog's estimates).
    fn start(&self, _phase: &str, _estimated_bytes: u64, _estimated_rows: u64) {}
    /// A part moved forward by `bytes` and `rows`.
    fn advance(&self, _part: PartId, _bytes: u64, _rows: u64) {}
    /// A part is complete.
    fn part_done(&self, _part: PartId) {}
    /// The phase is over.
    fn finish(&self) {}
    /// A step of a workflow begins (`verifying snapshot ...`): one line, between phases.
    fn step(&self, _what: &str) {}
}

/// Reports nothing (`--quiet`, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {}
