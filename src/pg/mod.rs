//! The only module that talks to PostgreSQL through tokio-postgres: connections, sessions with the
//! settings a dump or restore needs, snapshots, COPY streams.

pub mod compare;
mod connect;
mod copy;
pub mod sequence;
mod session;

pub use connect::{ChildEnv, ConnectOptions, SslMode};
pub use copy::{CopyInSink, CopyOutStream};
// The quoting lives in the pure `sql` module, so that planning needs nothing of `pg`; these keep the
// callers that quote beside their queries working.
pub use crate::sql::{quote_ident, quote_literal, quote_qualified};
pub use session::{Row, SearchPath, Session, value};
pub use tokio_postgres::types::{FromSql, ToSql};
