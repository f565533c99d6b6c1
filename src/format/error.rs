//! Errors of the codec: each names the element of the archive and its byte offset.

use std::fmt;

use super::{ChunkSeq, FORMAT_MAJOR, FORMAT_MINOR, PartId};

/// The element of an archive an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// The fixed-size file header at offset 0.
    Header,
    /// The key frame of an encrypted archive, right after the header.
    Key,
    /// The catalog frame that follows the header (and the key frame).
    Catalog,
    /// A chunk frame. `table` is filled in when the catalog is known.
    Chunk { part: PartId, seq: ChunkSeq, table: Option<String> },
    /// A frame whose kind is not known yet (its header is unreadable), by position in the file.
    Frame { index: u64 },
    /// The manifest frame.
    Manifest,
    /// The fixed-size footer at the end of the file.
    Footer,
    /// A part as a whole (its stream, counts or digests).
    Part { part: PartId, table: Option<String> },
    /// The file as a whole.
    File,
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Header => f.write_str("header"),
            Element::Key => f.write_str("key frame"),
            Element::Catalog => f.write_str("catalog frame"),
            Element::Chunk { part, seq, table } => {
                write!(f, "chunk {seq} of part {part}")?;
                if let Some(t) = table {
                    write!(f, " (`{t}`)")?;
                }
                Ok(())
            }
            Element::Frame { index } => write!(f, "frame {index}"),
            Element::Manifest => f.write_str("manifest frame"),
            Element::Footer => f.write_str("footer"),
            Element::Part { part, table } => {
                write!(f, "part {part}")?;
                if let Some(t) = table {
                    write!(f, " (`{t}`)")?;
                }
                Ok(())
            }
            Element::File => f.write_str("archive"),
        }
    }
}

/// A reason an archive cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The first bytes are not the pgsafe magic: this is some other kind of file.
    #[error("not a pgsafe archive: the file starts with {found}, not the pgsafe magic")]
    NotAnArchive { found: String },
    /// The header names a major version this code does not read.
    #[error(
        "archive format version {major}.{minor} is not supported: this pgsafe reads format version {FORMAT_MAJOR}.x"
    )]
    UnsupportedVersion { major: u16, minor: u16 },
    /// A frame names a codec this code does not know, in an archive of a newer minor version, which may
    /// define it (format-spec §4.3 F4): the archive is not damaged, this reader is too old for it.
    #[error(
        "{element} at offset {offset}: codec {codec} is not known to this pgsafe: the archive is format version {major}.{minor}, this pgsafe reads format version {FORMAT_MAJOR}.{FORMAT_MINOR}"
    )]
    NewerCodec { element: Element, offset: u64, codec: u8, major: u16, minor: u16 },
    /// The archive is encrypted and no identity was given. `recipients` describes the kinds of recipient
    /// it is encrypted to, when known.
    #[error("the archive is encrypted{recipients}: reading its content needs an identity of one of its recipients")]
    NeedsIdentity { recipients: String },
    /// None of the identities given is one of the archive's recipients.
    #[error("none of the identities given opens the archive, which is encrypted{recipients}")]
    WrongIdentity { recipients: String },
    /// The archive ends before an element is complete.
    #[error("{element} at offset {offset}: cut short (needs {needed} bytes, {available} available)")]
    Truncated { element: Element, offset: u64, needed: u64, available: u64 },
    /// An element's bytes are inconsistent: a checksum, a field, an order.
    #[error("{element} at offset {offset}: {problem}")]
    Corrupt { element: Element, offset: u64, problem: String },
    /// Reading the underlying source failed.
    #[error("reading the archive at offset {offset}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

impl FormatError {
    pub(crate) fn corrupt(element: Element, offset: u64, problem: impl Into<String>) -> Self {
        FormatError::Corrupt { element, offset, problem: problem.into() }
    }

    /// The element this error is about, when it is about one.
    pub fn element(&self) -> Option<&Element> {
        match self {
            FormatError::Truncated { element, .. }
            | FormatError::Corrupt { element, .. }
            | FormatError::NewerCodec { element, .. } => Some(element),
            _ => None,
        }
    }
}

/// Formats a checksum mismatch the same way everywhere.
pub(crate) fn checksum_mismatch(stored: u32, computed: u32) -> String {
    format!("checksum mismatch (stored {stored:08x}, computed {computed:08x})")
}
