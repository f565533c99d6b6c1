//! The only module that talks to PostgreSQL through tokio-postgres: connections, sessions with the
//! settings a dump or restore needs, snapshots, COPY streams, identifier quoting.

mod connect;
mod copy;
mod ident;
mod session;

pub use connect::{ConnectOptions, SslMode};
pub use copy::{CopyInSink, CopyOutStream};
pub use ident::{quote_ident, quote_literal, quote_qualified};
pub use session::{Row, Session};
pub use tokio_postgres::types::ToSql;
