//! The library's one public error: a kind for callers to branch on, a message that names the thing and
//! where it is, the underlying cause, and an optional hint for the user.
//!
//! A server error also keeps its SQLSTATE ([`Error::sqlstate`]): pgsafe decides by that code (retry a
//! deadlock, report a lock wait that timed out), never by the message, which the server translates into
//! the language of `lc_messages`.

use std::fmt;

use crate::format::FormatError;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Could not reach or log in to the server.
    Connect,
    /// The server refused a statement.
    Database,
    /// A file or stream failed.
    Io,
    /// The archive's bytes are damaged, incomplete, or not an archive at all.
    CorruptArchive,
    /// The archive is sound but this pgsafe cannot read it (a newer format major version).
    IncompatibleArchive,
    /// The user's input (options, patterns, names) is wrong.
    InvalidInput,
    /// The archive is encrypted and no identity was given, or none of those given is one of its recipients.
    Identity,
    /// A check ran and failed: verification mismatch, unhealthy database.
    CheckFailed,
    /// Interrupted by the user or a signal.
    Cancelled,
    /// An operation failed part way and could not undo what it had done: the database needs a person
    /// (a rollback whose swap could not be completed nor undone). The message says what state it is in.
    NeedsAttention,
}

/// A PostgreSQL error code (SQLSTATE): five digits or upper-case letters, the first two its class.
///
/// The constants are the codes pgsafe decides on; any other code the server sends is kept as it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// `40001`: a serializable transaction must be retried.
    pub const SERIALIZATION_FAILURE: SqlState = SqlState(*b"40001");
    /// `40P01`: the server aborted this statement to break a deadlock; running it again may succeed.
    pub const DEADLOCK_DETECTED: SqlState = SqlState(*b"40P01");
    /// `55P03`: a lock was not granted within `lock_timeout` (or `NOWAIT`).
    pub const LOCK_NOT_AVAILABLE: SqlState = SqlState(*b"55P03");
    /// `57014`: cancelled, by a cancel request or by `statement_timeout`.
    pub const QUERY_CANCELED: SqlState = SqlState(*b"57014");
    /// `57P01`: the server is shutting down (or `pg_terminate_backend`).
    pub const ADMIN_SHUTDOWN: SqlState = SqlState(*b"57P01");
    /// `57P02`: another server process crashed and this one was ended with it.
    pub const CRASH_SHUTDOWN: SqlState = SqlState(*b"57P02");
    /// `57P03`: the server is starting up or in recovery and takes no connections yet.
    pub const CANNOT_CONNECT_NOW: SqlState = SqlState(*b"57P03");
    /// `53200`: out of shared memory, usually too many locks for `max_locks_per_transaction`.
    pub const OUT_OF_SHARED_MEMORY: SqlState = SqlState(*b"53200");
    /// `23503`: rows break a foreign key (adding one whose rows do not hold, too).
    pub const FOREIGN_KEY_VIOLATION: SqlState = SqlState(*b"23503");
    /// `2BP01`: other objects depend on the one a `DROP` (without `CASCADE`) would drop.
    pub const DEPENDENT_OBJECTS_STILL_EXIST: SqlState = SqlState(*b"2BP01");
    /// `42809`: the wrong kind of object for the command (a partitioned table's foreign key added NOT VALID,
    /// before PostgreSQL 18).
    pub const WRONG_OBJECT_TYPE: SqlState = SqlState(*b"42809");
    /// `42P01`: no such table.
    pub const UNDEFINED_TABLE: SqlState = SqlState(*b"42P01");
    /// `55006`: the object is in use (a database others are connected to).
    pub const OBJECT_IN_USE: SqlState = SqlState(*b"55006");
    /// `42704`: an object the statement names (a role, a type) does not exist.
    pub const UNDEFINED_OBJECT: SqlState = SqlState(*b"42704");
    /// `42501`: permission denied.
    pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState(*b"42501");
    /// `0A000`: a feature the statement needs is not supported (`TRUNCATE` of a table a foreign key
    /// refers to, `COPY FREEZE` into a partitioned table).
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState(*b"0A000");
    /// `25P02`: an earlier statement failed, and the transaction ignores commands until it ends.
    pub const IN_FAILED_SQL_TRANSACTION: SqlState = SqlState(*b"25P02");
    /// `28000`: `pg_hba.conf` (or the role) turned the connection away.
    pub const INVALID_AUTHORIZATION_SPECIFICATION: SqlState = SqlState(*b"28000");
    /// `28P01`: the password was wrong.
    pub const INVALID_PASSWORD: SqlState = SqlState(*b"28P01");
    /// `3D000`: no such database.
    pub const INVALID_CATALOG_NAME: SqlState = SqlState(*b"3D000");
    /// `55P04`: a value added to an enum type is used before the transaction that added it committed.
    pub const UNSAFE_NEW_ENUM_VALUE_USAGE: SqlState = SqlState(*b"55P04");

    /// The code of `text`, or `None` when it is not five digits or upper-case letters.
    pub fn parse(text: &str) -> Option<SqlState> {
        let bytes: [u8; 5] = text.as_bytes().try_into().ok()?;
        bytes.iter().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()).then_some(SqlState(bytes))
    }

    /// The five characters, such as `40P01`.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and letters get in (see `parse` and the constants).
        std::str::from_utf8(&self.0).unwrap_or("?????")
    }

    /// The class: the first two characters, such as `08` for connection exceptions.
    pub fn class(&self) -> &str {
        self.as_str().get(..2).unwrap_or("??")
    }

    /// Class `08`: the connection failed or broke.
    pub fn is_connection_exception(&self) -> bool {
        self.class() == "08"
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlState({})", self.as_str())
    }
}

/// What a server's error names, as its fields give it (for a NOT NULL violation, the column; for a
/// unique or check violation, the constraint): unquoted names, without the schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerObject {
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
}

/// An error of the pgsafe library.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    /// The server's code, when the server refused something.
    sqlstate: Option<SqlState>,
    /// The object the server's error names, when it names one.
    object: Option<Box<ServerObject>>,
    /// This error only reports that another task stopped first (see [`Error::consequence`]).
    consequence: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            sqlstate: None,
            object: None,
            consequence: false,
            source: None,
        }
    }

    /// Records the server's SQLSTATE for this error.
    pub fn with_sqlstate(mut self, sqlstate: SqlState) -> Self {
        self.sqlstate = Some(sqlstate);
        self
    }

    /// Records the object the server's error names (its `table`, `column` and `constraint` fields).
    pub fn with_object(mut self, object: ServerObject) -> Self {
        self.object = Some(Box::new(object));
        self
    }

    /// The object the server's error names, found as [`Error::sqlstate`] is.
    pub fn server_object(&self) -> Option<&ServerObject> {
        self.chain().find_map(|e| e.object.as_deref())
    }

    /// Marks an error that only reports that another task stopped first, such as a worker that finds
    /// the archive writer gone: the other task's own error is the cause, and a caller collecting errors
    /// reports that one instead.
    pub fn consequence(mut self) -> Self {
        self.consequence = true;
        self
    }

    /// Whether this error only reports that another task stopped first (see [`Error::consequence`]).
    pub fn is_consequence(&self) -> bool {
        self.consequence
    }

    /// The server's SQLSTATE when the server refused something: this error's own, or that of the first
    /// pgsafe error among its causes, so that adding context keeps it.
    pub fn sqlstate(&self) -> Option<SqlState> {
        self.chain().find_map(|e| e.sqlstate)
    }

    /// This error, then each pgsafe error among its causes, in order.
    fn chain(&self) -> impl Iterator<Item = &Error> {
        std::iter::successors(Some(self), |e| e.source.as_deref().and_then(|source| source.downcast_ref::<Error>()))
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Attaches advice for the user.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Keeps the lines of its hint that `keep` accepts (a hint written for another command's options).
    pub fn retain_hint(mut self, keep: impl Fn(&str) -> bool) -> Self {
        let kept: Vec<&str> = self.hint.as_deref().unwrap_or_default().lines().filter(|l| keep(l)).collect();
        self.hint = (!kept.is_empty()).then(|| kept.join("\n"));
        self
    }

    /// Adds a hint after the one the error may have already.
    pub fn and_hint(mut self, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        self.hint = Some(match self.hint.take() {
            Some(first) => format!("{first}\n{hint}"),
            None => hint,
        });
        self
    }

    /// An I/O failure on `path` while `doing` something (`"writing"`, `"opening"`).
    pub fn io(doing: &str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{doing} `{}`", path.display())).with_source(source)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether a disk or a quota ran out of room (ENOSPC, EDQUOT) somewhere in the causes: the one
    /// failure that freeing room cures, told from a network's or a server's.
    pub fn is_out_of_space(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && (matches!(io.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
                    || matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)))
            {
                return true;
            }
            if let Some(inner) = e.downcast_ref::<Error>() {
                return inner.is_out_of_space();
            }
            cause = e.source();
        }
        false
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Prefixes the message with where the error happened, such as the archive's path.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::UnsupportedVersion { .. } => Error::new(ErrorKind::IncompatibleArchive, e.to_string())
                .with_hint("this archive was written by a newer pgsafe; read it with that version"),
            FormatError::NewerCodec { major, minor, .. } => {
                Error::new(ErrorKind::IncompatibleArchive, e.to_string()).with_hint(format!(
                    "the archive was written by a newer pgsafe, in format version {major}.{minor}: upgrade pgsafe to read it"
                ))
            }
            FormatError::Io { offset, source } => {
                Error::new(ErrorKind::Io, format!("reading the archive at offset {offset}")).with_source(source)
            }
            FormatError::NeedsIdentity { .. } => Error::new(ErrorKind::Identity, e.to_string()).with_hint(
                "pass `--identity FILE` (or set `PGSAFE_IDENTITY`) naming an age identity file of one of the archive's recipients",
            ),
            FormatError::WrongIdentity { .. } => Error::new(ErrorKind::Identity, e.to_string())
                .with_hint("the archive can only be read with the secret key of a recipient named at `pgsafe dump --encrypt-to`"),
            FormatError::NotAnArchive { .. } | FormatError::Truncated { .. } | FormatError::Corrupt { .. } => {
                Error::new(ErrorKind::CorruptArchive, e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_from_an_endpoint_that_stopped_answering() {
        let full = Error::io("writing", std::path::Path::new("a"), std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(full.is_out_of_space());
        let wrapped = Error::new(ErrorKind::Io, "dumping").with_source(full).context("the snapshot");
        assert!(wrapped.is_out_of_space(), "through another error");
        let quota = Error::new(ErrorKind::Io, "x").with_source(std::io::Error::from_raw_os_error(libc::EDQUOT));
        assert!(quota.is_out_of_space());
        let timeout = Error::new(ErrorKind::Io, "reading `s3://b/k`: the storage endpoint did not answer")
            .with_source(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"));
        assert!(!timeout.is_out_of_space());
        assert!(!Error::new(ErrorKind::Io, "no space left on device (as text only)").is_out_of_space());
    }

    #[test]
    fn sqlstates_parse_only_five_digits_or_capitals() {
        assert_eq!(SqlState::parse("40P01"), Some(SqlState::DEADLOCK_DETECTED));
        assert_eq!(SqlState::parse("08006").map(|s| s.is_connection_exception()), Some(true));
        assert_eq!(SqlState::DEADLOCK_DETECTED.class(), "40");
        assert_eq!(SqlState::LOCK_NOT_AVAILABLE.to_string(), "55P03");
        for bad in ["", "4001", "400011", "40p01", "40-01", "4ü01"] {
            assert_eq!(SqlState::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_hint_keeps_the_lines_asked_for() {
        let e = Error::new(ErrorKind::Database, "x").with_hint("add `--clean`").and_hint("raise the setting");
        assert_eq!(e.retain_hint(|l| !l.contains("--clean")).hint(), Some("raise the setting"));
        let none = Error::new(ErrorKind::Database, "x").with_hint("add `--clean`");
        assert_eq!(none.retain_hint(|l| !l.contains("--clean")).hint(), None);
    }

    #[test]
    fn the_sqlstate_survives_context_and_wrapping() {
        let server = Error::new(ErrorKind::Database, "`LOCK t` failed").with_sqlstate(SqlState::LOCK_NOT_AVAILABLE);
        let server = server.context("reading the catalog");
        assert_eq!(server.sqlstate(), Some(SqlState::LOCK_NOT_AVAILABLE));
        let wrapped = Error::new(ErrorKind::Database, "dumping `db`").with_source(server);
        assert_eq!(wrapped.sqlstate(), Some(SqlState::LOCK_NOT_AVAILABLE));
        assert_eq!(Error::new(ErrorKind::Io, "disk").sqlstate(), None);
    }

    #[test]
    fn a_consequence_stays_one_whatever_its_message_becomes() {
        let gone = Error::new(ErrorKind::Io, "the archive writer stopped").consequence();
        assert!(gone.context("part 3 (`public.t`)").is_consequence());
        assert!(!Error::new(ErrorKind::Io, "the archive writer stopped").is_consequence());
    }
}
