//! The library's one public error: a kind for callers to branch on, a message that names the thing and
//! where it is, the underlying cause, and an optional hint for the user.

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
    /// A check ran and failed: verification mismatch, unhealthy database.
    CheckFailed,
    /// Interrupted by the user or a signal.
    Cancelled,
}

/// An error of the pgsafe library.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), hint: None, source: None }
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
            FormatError::NotAnArchive { .. } | FormatError::Truncated { .. } | FormatError::Corrupt { .. } => {
                Error::new(ErrorKind::CorruptArchive, e.to_string())
            }
        }
    }
}
