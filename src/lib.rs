//! pgsafe: a native PostgreSQL logical backup engine with a migration-safety workflow.
//!
//! ```text
//! dump:    connect -> export snapshot -> catalog -> plan -> workers
//!          (COPY OUT -> chunk -> compress -> checksum) -> bounded channel -> one archive writer -> file
//! restore: archive reader (header, catalog, manifest) -> plan -> pre-data DDL -> workers
//!          (chunks -> check -> decompress -> COPY IN) -> post-data -> verify
//! ```
//!
//! [`format`](mod@format) is the on-disk codec (pure, synchronous); [`archive`] puts it on files: atomic writes, memory
//! mapped random access, sequential reads from a pipe.

pub mod archive;
pub mod cancel;
pub mod catalog;
pub mod cluster;
pub mod dump;
mod error;
pub mod format;
pub mod inspect;
pub mod pg;
pub mod plan;
mod pool;
pub mod progress;
pub mod restore;
pub mod schema;
pub mod sql;
pub mod verify;

pub use error::{Error, ErrorKind, Result, SqlState};
