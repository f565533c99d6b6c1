//! pgsafe: a native PostgreSQL logical backup engine with a migration-safety workflow.
//!
//! ```text
//! dump:    connect -> export snapshot -> catalog -> plan (pure) -> pool of workers
//!          (COPY OUT -> chunk -> compress -> checksum) -> bounded channel -> one archive writer -> file
//! restore: archive reader (header, catalog, manifest) -> RestorePlan (pure) -> pre-data DDL -> pool of
//!          workers (chunks read ahead -> check -> decompress -> COPY IN) -> post-data -> verify
//! ```
//!
//! [`format`](mod@format) is the on-disk codec (pure, synchronous); [`archive`] puts it on files: atomic
//! writes, random access by positioned reads, sequential reads from a pipe. [`pg`] is the only module that talks
//! to PostgreSQL; [`sql`] is the pure SQL text both sides share. Every operation takes a
//! [`cancel::Cancel`], so that an interruption stops the server's statements and still cleans up.
//! [`store`] keeps snapshots (archives taken before a change), their metadata and the audit log;
//! [`notify`] posts a message to a webhook when an operation ends; [`check`] tells whether a database is
//! healthy, and whether it still holds what a snapshot held; [`rollback`] puts a database back to a
//! snapshot, saying first what that loses; [`dryrun`] rehearses SQL migrations in a transaction that is
//! rolled back, and says what each statement would lock, rewrite and lose.

pub mod archive;
pub mod budget;
pub mod cancel;
pub mod catalog;
pub mod check;
pub mod cluster;
pub mod dryrun;
pub mod dump;
mod error;
pub mod format;
mod graph;
pub mod inspect;
pub mod lint;
pub mod migrate;
pub mod notify;
pub mod pg;
pub mod plan;
mod pool;
pub mod progress;
pub mod restore;
pub mod rollback;
pub mod schema;
pub mod sql;
pub mod store;
pub mod verify;

pub use error::{Error, ErrorKind, Result, ServerObject, SqlState};
pub use pool::cores;
