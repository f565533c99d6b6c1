//! A connection with the session settings a dump or restore depends on.

use futures_util::StreamExt;
use tokio_postgres::error::ErrorPosition;
use tokio_postgres::row::RowIndex;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{CancelToken, Client, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::ConnectOptions;
use super::copy::{CopyInSink, CopyOutStream};
use crate::cancel::{Cancel, Watch};
use crate::error::{Error, ErrorKind, Result, ServerObject, SqlState};
use crate::format::CopyFormat;

pub use tokio_postgres::Row;

/// Settings every session pins. Text COPY output of dates, intervals and floats depends on them, so a
/// restore parses exactly what a dump wrote and its verification reads back the dump's bytes; row
/// security off makes a policy that would hide rows an error instead of a silently partial dump; XML
/// content that is not a whole document loads whatever the target's xmloption (as pg_restore has it). No
/// timeout of the role or database may end a long dump or restore (`transaction_timeout` exists from 17).
const COMMON: &str = "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3; \
    SET TimeZone = 'UTC'; SET statement_timeout = 0; SET lock_timeout = 0; \
    SET idle_in_transaction_session_timeout = 0; SET row_security = off; SET xmloption = content; \
    SELECT pg_catalog.set_config('transaction_timeout', '0', false) \
    WHERE pg_catalog.current_setting('server_version_num')::int >= 170000";

/// The `search_path` a part's rows are written, loaded and read back under, where it matters: the names in
/// a text part's values (a `regclass`, a `regtype`) and an extension configuration table's filter are
/// resolved through it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchPath {
    /// The one the archive records (an empty one, for what pgsafe writes).
    Recorded(String),
    /// The session's own (`RESET`): an archive written before pgsafe recorded it wrote the text under the
    /// dumping session's own, and pg_restore-like restores loaded it under theirs.
    Own,
}

impl SearchPath {
    /// Where the path matters for a part of `format` with `filter`, written under `recorded`.
    pub fn of_part(recorded: Option<&str>, format: CopyFormat, filter: Option<&str>) -> Option<SearchPath> {
        match recorded {
            Some(path) => Some(SearchPath::Recorded(path.to_owned())),
            None if format == CopyFormat::Text || filter.is_some() => Some(SearchPath::Own),
            None => None,
        }
    }
}

/// One connection to the server.
pub struct Session {
    client: Client,
    target: String,
    /// The client encoding of the rows its `COPY`s move (the archive's, or the server's when dumping), when
    /// it is not UTF-8: a `COPY` switches to it, so that text crosses as the archive holds it, and any other
    /// statement switches back, so that names and catalog text cross as the UTF-8 Rust holds them.
    copy_encoding: Option<String>,
    /// Whether `client_encoding` is `copy_encoding` at the moment.
    in_copy_encoding: std::sync::atomic::AtomicBool,
    /// How to cancel its running statement: the connection's key, and TLS as the connection used it.
    cancel_token: CancelToken,
    tls: Option<MakeRustlsConnect>,
    /// While set, cancelling that [`Cancel`] cancels the session's running statement.
    watch: Option<Watch>,
    /// The [`Cancel`] of `watch`, which [`Session::until_cancelled`] follows.
    cancel: Option<Cancel>,
    /// `server_version_num`, read when the session opened.
    server_version: u32,
}

impl Session {
    /// Connects and pins the session settings. Statements and their results cross in UTF-8; the rows of
    /// its `COPY`s in `copy_encoding` (the archive's, or the server's when dumping), so that their text
    /// crosses without conversion.
    pub async fn open(options: &ConnectOptions, copy_encoding: Option<&str>) -> Result<Self> {
        let client = options.connect().await?;
        let cancel_token = client.cancel_token();
        let session = Session {
            client,
            target: options.describe(),
            copy_encoding: copy_encoding.filter(|e| !is_utf8(e)).map(str::to_owned),
            in_copy_encoding: Default::default(),
            cancel_token,
            tls: options.tls(),
            watch: None,
            cancel: None,
            server_version: 0,
        };
        let mut sql = COMMON.to_string();
        sql.push_str("; SET client_encoding = 'UTF8'; SELECT pg_catalog.current_setting('server_version_num')");
        let version = session.batch_value(&sql).await?;
        let server_version = version.as_deref().and_then(|v| v.parse().ok()).ok_or_else(|| {
            Error::new(
                ErrorKind::Database,
                format!("{}: the server gave `{version:?}` for its `server_version_num`", session.target),
            )
        })?;
        Ok(Session { server_version, ..session })
    }

    /// Gives back to the role's and database's own values (or the server's) the settings `COMMON` pins
    /// that change what SQL means: how a date or time is read and written (`DateStyle`, `IntervalStyle`,
    /// `TimeZone`: `ALTER COLUMN ... TYPE timestamptz` reads the old values in the session's zone), float
    /// and XML text. For a session that runs a user's migration, which must do what it does under psql.
    /// Timeouts and row security stay pinned: a migration is not cut short by a role's timeout, and a
    /// statement a row security policy would narrow fails rather than change some of the rows.
    pub async fn use_own_settings(&self) -> Result<()> {
        self.batch("RESET DateStyle; RESET IntervalStyle; RESET TimeZone; RESET extra_float_digits; RESET xmloption")
            .await
    }

    /// The server's `server_version_num` (`150018` for 15.18).
    pub fn server_version(&self) -> u32 {
        self.server_version
    }

    /// Has `cancel` cancel the statement this session is running (on the server, with the protocol's
    /// cancel request) when it fires; a session opened after the cancellation is not touched, as it is
    /// the operation's cleanup.
    pub fn cancelled_by(mut self, cancel: &Cancel) -> Self {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return self };
        let (token, tls) = (self.cancel_token.clone(), self.tls.clone());
        self.watch = Some(cancel.watch(move || {
            let (token, tls) = (token.clone(), tls.clone());
            runtime.spawn(send_cancel(token, tls));
        }));
        self.cancel = Some(cancel.clone());
        self
    }

    /// Runs `statement`, a statement this session sends. One that began before the cancellation is
    /// cancelled on the server, whenever the cancellation comes: the cancel request the watch sends at
    /// once reaches a backend that has not yet started it (sent a moment before, still on its way) as a
    /// request to cancel nothing, and the statement would then run to its end (a wait for a lock another
    /// session holds for minutes: found under load, a SIGINT that stopped nothing), so the request is sent
    /// again each second until the statement ends. One begun after it (the operation's cleanup) runs.
    async fn until_cancelled<T>(&self, statement: impl std::future::Future<Output = T>) -> T {
        let mut statement = std::pin::pin!(statement);
        let Some(cancel) = self.cancel.as_ref().filter(|c| !c.is_cancelled()) else { return statement.await };
        tokio::select! {
            done = &mut statement => return done,
            _ = cancel.cancelled() => {}
        }
        loop {
            tokio::select! {
                done = &mut statement => return done,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                    send_cancel(self.cancel_token.clone(), self.tls.clone()).await;
                }
            }
        }
    }

    /// `user@host:port/db`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs statements with the simple protocol. When one fails, the error names that statement.
    pub async fn batch(&self, sql: &str) -> Result<()> {
        self.batch_value(sql).await.map(drop)
    }

    /// [`Session::batch`], returning the first column of the last row the statements returned.
    async fn batch_value(&self, sql: &str) -> Result<Option<String>> {
        self.encoding_for(false).await?;
        // The server reports each statement it finished before the error, which tells which one
        // failed when the error carries no position.
        let mut finished = 0;
        let run = async {
            let mut last = None;
            let mut messages = std::pin::pin!(self.client.simple_query_raw(sql).await?);
            while let Some(message) = messages.next().await.transpose()? {
                match message {
                    SimpleQueryMessage::CommandComplete(_) => finished += 1,
                    SimpleQueryMessage::Row(row) => last = row.get(0).map(str::to_owned),
                    _ => {}
                }
            }
            Ok(last)
        };
        let done = self.until_cancelled(run).await;
        done.map_err(|e| Failed { target: &self.target, sql, finished: Some(finished) }.error(e))
    }

    /// Runs one statement as it is written (the simple protocol, no parameters) and returns the rows its
    /// command tag counts (`UPDATE 42`), 0 for a tag that counts none (`CREATE TABLE`).
    pub async fn execute_simple(&self, sql: &str) -> Result<u64> {
        self.encoding_for(false).await?;
        let mut rows = 0;
        let run = async {
            let mut messages = std::pin::pin!(self.client.simple_query_raw(sql).await?);
            while let Some(message) = messages.next().await.transpose()? {
                if let SimpleQueryMessage::CommandComplete(count) = message {
                    rows = count;
                }
            }
            Ok(())
        };
        self.until_cancelled(run).await.map_err(|e| db_error(&self.target, sql, e))?;
        Ok(rows)
    }

    pub async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.encoding_for(false).await?;
        self.until_cancelled(self.client.query(sql, params)).await.map_err(|e| db_error(&self.target, sql, e))
    }

    pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        self.encoding_for(false).await?;
        self.until_cancelled(self.client.query_one(sql, params)).await.map_err(|e| db_error(&self.target, sql, e))
    }

    /// A `COPY` statement as it must be sent in the copy encoding: its names and literals outside ASCII
    /// written as Unicode escapes, since pgsafe can only send UTF-8. Not for `SQL_ASCII`, which takes the
    /// bytes as they come (the UTF-8 of the names the catalog gave) and refuses escapes beyond ASCII.
    fn in_copy_encoding_text<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.copy_encoding {
            Some(encoding) if !encoding.eq_ignore_ascii_case("SQL_ASCII") => crate::sql::ascii_escaped(sql),
            _ => std::borrow::Cow::Borrowed(sql),
        }
    }

    /// Sets `client_encoding` for a `COPY` (`copy`) or for any other statement, when the session has a
    /// `copy_encoding` and is not in the one it needs.
    async fn encoding_for(&self, copy: bool) -> Result<()> {
        use std::sync::atomic::Ordering;
        let Some(encoding) = &self.copy_encoding else { return Ok(()) };
        if self.in_copy_encoding.load(Ordering::Acquire) == copy {
            return Ok(());
        }
        let sql = format!("SET client_encoding = {}", super::quote_literal(if copy { encoding } else { "UTF8" }));
        self.client.batch_execute(&sql).await.map_err(|e| db_error(&self.target, &sql, e))?;
        self.in_copy_encoding.store(copy, Ordering::Release);
        Ok(())
    }

    /// Runs `work` under `path`, then sets the `search_path` it replaced back; with no `path`, `work` runs
    /// under whatever the session has.
    pub async fn under_search_path<T>(
        &self,
        path: Option<&SearchPath>,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(path) = path else { return work.await };
        const CURRENT: &str = "SELECT pg_catalog.current_setting('search_path')";
        let previous: String = value(&self.query_one(CURRENT, &[]).await?, 0, CURRENT)?;
        match path {
            SearchPath::Recorded(path) => self.set_search_path(path).await?,
            SearchPath::Own => self.batch("RESET search_path").await?,
        }
        let done = work.await?;
        self.set_search_path(&previous).await?;
        Ok(done)
    }

    /// Sets `search_path` to `path`, for the rest of the session (or of its transaction, if that rolls back).
    async fn set_search_path(&self, path: &str) -> Result<()> {
        self.query("SELECT pg_catalog.set_config('search_path', $1, false)", &[&path]).await?;
        Ok(())
    }

    /// Starts `COPY ... TO STDOUT`.
    pub async fn copy_out(&self, sql: &str) -> Result<CopyOutStream> {
        self.encoding_for(true).await?;
        let sql = &*self.in_copy_encoding_text(sql);
        let stream = self.client.copy_out(sql).await.map_err(|e| db_error(&self.target, sql, e))?;
        Ok(CopyOutStream::new(stream, sql, &self.target))
    }

    /// Starts `COPY ... FROM STDIN`. Dropping the sink without `finish` aborts the COPY.
    pub async fn copy_in(&self, sql: &str) -> Result<CopyInSink> {
        self.encoding_for(true).await?;
        let sql = &*self.in_copy_encoding_text(sql);
        let sink = self.client.copy_in(sql).await.map_err(|e| db_error(&self.target, sql, e))?;
        Ok(CopyInSink::new(sink, sql, &self.target))
    }

    /// Runs `sql`, a `COPY ... FROM STDIN`, with `rows` (text or CSV, each line with its end) as its data, as
    /// psql does with the rows after it in a file. Returns the rows the server loaded; a row it refuses
    /// fails the statement, the message naming the row as the server does (`COPY plan, line 2, ...`).
    pub async fn copy_rows(&self, sql: &str, rows: &str) -> Result<u64> {
        // In pieces, as a restore sends its chunks: the connection's write buffer keeps the largest size.
        const PIECE: usize = 256 * 1024;
        let rows = bytes::Bytes::copy_from_slice(rows.as_bytes());
        self.until_cancelled(async {
            let mut sink = self.copy_in(sql).await?;
            for at in (0..rows.len()).step_by(PIECE) {
                sink.send(rows.slice(at..rows.len().min(at + PIECE))).await?;
            }
            sink.finish().await
        })
        .await
    }

    /// Runs `sql`, a `COPY ... TO STDOUT`, handing each piece of its output to `out` (a migration's,
    /// which psql would print). Returns the bytes it wrote.
    pub async fn copy_out_to(&self, sql: &str, mut out: impl FnMut(&[u8])) -> Result<u64> {
        self.until_cancelled(async {
            let mut stream = self.copy_out(sql).await?;
            let mut bytes = 0;
            while let Some(piece) = stream.next().await? {
                bytes += piece.len() as u64;
                out(&piece);
            }
            Ok(bytes)
        })
        .await
    }

    /// True while the connection is open.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// Reads `column` (a name or an index) of `row`, which `query` returned. A NULL where `T` has none, a
/// type that does not fit or a column that is not there is an error naming the query and the column,
/// not the panic of `Row::get`.
pub fn value<'a, T, I>(row: &'a Row, column: I, query: &str) -> Result<T>
where
    T: FromSql<'a>,
    I: RowIndex + std::fmt::Display,
{
    let name = column.to_string();
    row.try_get(column).map_err(|e| {
        let reason = std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
        Error::new(ErrorKind::Database, format!("column `{name}` of `{}`: {reason}", first_line(query))).with_source(e)
    })
}

/// Turns a driver error into a message that says what the server said, and about which statement.
pub(crate) fn db_error(target: &str, sql: &str, e: tokio_postgres::Error) -> Error {
    Failed { target, sql, finished: None }.error(e)
}

/// Where a statement failed: the session, its SQL, and for a batch how many of its statements the
/// server finished first.
struct Failed<'a> {
    target: &'a str,
    sql: &'a str,
    finished: Option<usize>,
}

impl Failed<'_> {
    fn error(&self, e: tokio_postgres::Error) -> Error {
        let target = self.target;
        if let Some(db) = e.as_db_error() {
            let position = match db.position() {
                Some(ErrorPosition::Original(position)) => usize::try_from(*position).ok(),
                // A position inside a query the statement ran (a function's body) says nothing of
                // where the statement is in the batch.
                Some(ErrorPosition::Internal { .. }) | None => None,
            };
            let statement = self.statement(position);
            let mut message = format!("{statement} failed on `{target}`: {}", db.message());
            if let Some(detail) = db.detail() {
                message.push_str(&format!(" ({detail})"));
            }
            // A COPY's context is the row it stopped at (`COPY plan, line 2, column price: "x"`).
            if let Some(context) = db.where_().filter(|_| is_copy(self.sql)) {
                message.push_str(&format!(" ({context})"));
            }
            let mut err = Error::new(ErrorKind::Database, message);
            if let Some(code) = SqlState::parse(db.code().code()) {
                err = err.with_sqlstate(code);
            }
            if let Some(hint) = db.hint() {
                err = err.with_hint(hint.to_string());
            }
            let object = ServerObject {
                table: db.table().map(str::to_owned),
                column: db.column().map(str::to_owned),
                constraint: db.constraint().map(str::to_owned),
            };
            if object != ServerObject::default() {
                err = err.with_object(object);
            }
            return err;
        }
        let statement = self.statement(None);
        if e.is_closed() {
            return Error::new(ErrorKind::Connect, format!("the connection to `{target}` closed during {statement}"))
                .with_hint("the server may have stopped or restarted; nothing was reported as done that was not");
        }
        Error::new(ErrorKind::Database, format!("{statement} failed on `{target}`")).with_source(e)
    }

    /// The statement that failed, for messages: the SQL itself when it is one statement; for a batch,
    /// the one at the server's error `position`, or else the one after those the server finished, or
    /// else an honest "a statement of this batch".
    fn statement(&self, position: Option<usize>) -> String {
        let statements = crate::sql::statements(self.sql);
        let count = statements.len();
        if count <= 1 {
            return format!("`{}`", first_line(self.sql));
        }
        let at_position = position.and_then(|p| statements.index_at_position(p));
        // The server runs a batch in order and stops at the error, so the failed statement cannot come
        // before the finished ones; a position that says otherwise was misread, and the count wins.
        let index = match (at_position, self.finished) {
            (Some(at), Some(finished)) if at >= finished => Some(at),
            (Some(at), None) => Some(at),
            (_, Some(finished)) if finished < count => Some(finished),
            _ => None,
        };
        match index.and_then(|i| Some((i, statements.get(i)?))) {
            Some((i, statement)) => format!("`{}` (statement {} of {count})", first_line(statement), i + 1),
            None => format!(
                "a statement of this batch of {count} (the first: `{}`)",
                statements.get(0).map(first_line).unwrap_or_default()
            ),
        }
    }
}

/// Whether `sql` is one `COPY` statement.
fn is_copy(sql: &str) -> bool {
    sql.trim_start().get(..5).is_some_and(|w| w.eq_ignore_ascii_case("copy ")) && crate::sql::statements(sql).len() == 1
}

/// Whether `encoding` (as `pg_encoding_to_char` names it) is UTF-8.
fn is_utf8(encoding: &str) -> bool {
    encoding.eq_ignore_ascii_case("UTF8") || encoding.eq_ignore_ascii_case("UTF-8")
}

/// The statement, shortened for messages.
fn first_line(sql: &str) -> String {
    let line = sql.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("--")).unwrap_or("");
    if line.chars().count() > 120 {
        format!("{}...", line.chars().take(117).collect::<String>())
    } else {
        line.to_string()
    }
}

/// Asks the server to cancel the statement the session of `token` runs. Best effort: a server that is
/// gone has nothing left to cancel.
async fn send_cancel(token: CancelToken, tls: Option<MakeRustlsConnect>) {
    let _ = match tls {
        Some(tls) => token.cancel_query(tls).await,
        None => token.cancel_query(NoTls).await,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_path_matters_for_text_and_filters_and_a_recorded_one_wins() {
        let recorded = |p: &str| Some(SearchPath::Recorded(p.to_owned()));
        assert_eq!(SearchPath::of_part(Some(""), CopyFormat::Text, None), recorded(""));
        assert_eq!(SearchPath::of_part(Some("app"), CopyFormat::Binary, Some("WHERE x")), recorded("app"));
        assert_eq!(SearchPath::of_part(None, CopyFormat::Text, None), Some(SearchPath::Own));
        assert_eq!(SearchPath::of_part(None, CopyFormat::Binary, Some("WHERE x")), Some(SearchPath::Own));
        assert_eq!(SearchPath::of_part(None, CopyFormat::Binary, None), None);
    }
}
