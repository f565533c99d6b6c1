//! COPY streams in both directions, fail-safe like tokio-postgres's own: a sink dropped without
//! `finish` aborts its COPY, and `finish` returns the row count the server reports.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};

use super::session::db_error;
use crate::error::Result;

/// The data of a `COPY ... TO STDOUT`, as the server sends it (usually one message per row).
pub struct CopyOutStream {
    inner: Pin<Box<tokio_postgres::CopyOutStream>>,
    sql: String,
    target: String,
}

impl CopyOutStream {
    pub(super) fn new(inner: tokio_postgres::CopyOutStream, sql: &str, target: &str) -> Self {
        CopyOutStream { inner: Box::pin(inner), sql: sql.to_string(), target: target.to_string() }
    }

    /// The next piece of the stream, or `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        match self.inner.next().await {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => Err(db_error(&self.target, &self.sql, e)),
        }
    }
}

/// The input of a `COPY ... FROM STDIN`.
pub struct CopyInSink {
    inner: Pin<Box<tokio_postgres::CopyInSink<Bytes>>>,
    sql: String,
    target: String,
}

impl CopyInSink {
    pub(super) fn new(inner: tokio_postgres::CopyInSink<Bytes>, sql: &str, target: &str) -> Self {
        CopyInSink { inner: Box::pin(inner), sql: sql.to_string(), target: target.to_string() }
    }

    pub async fn send(&mut self, data: Bytes) -> Result<()> {
        self.inner.send(data).await.map_err(|e| db_error(&self.target, &self.sql, e))
    }

    /// Ends the COPY and returns the number of rows the server loaded.
    pub async fn finish(mut self) -> Result<u64> {
        self.inner.as_mut().finish().await.map_err(|e| db_error(&self.target, &self.sql, e))
    }
}
