//! The archive reader: a memory map of the file (or ranged requests to an object in a bucket, see
//! [`ObjectSource`]), opened and cross-checked by [`ArchiveIndex`].
//!
//! This module holds the crate's one `unsafe` block. Mapping a file is unsafe because another process
//! could truncate or rewrite it while it is mapped; pgsafe's archives are written once under a
//! `.partial` name, renamed into place complete, created with mode 0600, and never modified afterwards,
//! so a change under the map means someone is tampering with the file. Every byte read from the map is
//! still checked (CRC-32, BLAKE3), so a modification shows up as a corrupt archive, not a wrong answer;
//! only a truncation while mapped can end the process (SIGBUS). Random access through the map is what
//! lets a restore read any part's chunks in parallel without copying the archive into memory.
//!
//! The second `unsafe` call releases a chunk's pages once it was read (`MADV_DONTNEED`). Touched pages of
//! a map count as the process's resident memory, which would otherwise grow to the archive's size. On a
//! read-only file mapping the advice only drops this process's page table entries: the bytes stay in
//! the page cache and fault back in, unchanged, if anything reads them again, so no reader can see
//! anything else.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::object::{ObjectLocation, ObjectSource};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{ArchiveIndex, ArchiveSource, ChunkRef, FormatError, FrameHeader, Keyring, SealedLayout};

/// An archive opened for random access. `Sync`: share it across threads to read chunks in parallel.
#[derive(Debug)]
pub struct ArchiveReader {
    path: PathBuf,
    index: ArchiveIndex<Source>,
}

/// Where an opened archive's bytes come from.
#[derive(Debug)]
pub enum Source {
    /// A file, mapped: reads lend the map's bytes, copying nothing.
    Map(Mmap),
    /// An object in a bucket, read by ranged requests.
    Object(ObjectSource),
}

impl ArchiveSource for Source {
    fn len(&self) -> u64 {
        match self {
            Source::Map(map) => ArchiveSource::len(map),
            Source::Object(object) => object.len(),
        }
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        match self {
            Source::Map(map) => map.read_at(offset, len),
            Source::Object(object) => object.read_at(offset, len),
        }
    }
}

impl ArchiveReader {
    /// Maps the file and checks its header, catalog, manifest and footer.
    pub fn open(path: &Path) -> Result<Self> {
        ArchiveReader::open_with(path, &Keyring::none())
    }

    /// Like [`open`](Self::open), unwrapping the data key of an encrypted archive with `keyring`.
    pub fn open_with(path: &Path, keyring: &Keyring) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        ArchiveReader::from_file_with(file, path, keyring)
    }

    /// Maps an open file (one without a name: a temporary copy of a pipe) and checks it; `path` names it
    /// in messages.
    pub fn from_file(file: File, path: &Path) -> Result<Self> {
        ArchiveReader::from_file_with(file, path, &Keyring::none())
    }

    /// Like [`from_file`](Self::from_file), unwrapping the data key of an encrypted archive with `keyring`.
    pub fn from_file_with(file: File, path: &Path, keyring: &Keyring) -> Result<Self> {
        let map = map(&file, path)?;
        let index = ArchiveIndex::open_with(Source::Map(map), keyring)
            .map_err(|e| Error::from(e).context(format!("`{}`", path.display())))?;
        Ok(ArchiveReader { path: path.to_path_buf(), index })
    }

    /// Opens an archive in object storage: its size, then its footer, manifest and catalog, by ranged
    /// requests; chunks are fetched when read.
    pub fn open_object(location: &ObjectLocation) -> Result<Self> {
        ArchiveReader::open_object_with(location, &Keyring::none())
    }

    /// Like [`open_object`](Self::open_object), unwrapping the data key of an encrypted archive with
    /// `keyring`.
    pub fn open_object_with(location: &ObjectLocation, keyring: &Keyring) -> Result<Self> {
        let source = ObjectSource::open(location)?;
        let index = ArchiveIndex::open_with(Source::Object(source), keyring)
            .map_err(|e| Error::from(e).context(format!("`{location}`")))?;
        Ok(ArchiveReader { path: PathBuf::from(location.to_string()), index })
    }

    /// Checks what can be checked of an encrypted archive file without its identity: its structure and
    /// every checksum (see [`crate::format::check_structure`]).
    pub fn check_structure(path: &Path) -> Result<SealedLayout> {
        let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let map = map(&file, path)?;
        crate::format::check_structure(&map).map_err(|e| Error::from(e).context(format!("`{}`", path.display())))
    }

    /// [`ArchiveReader::check_structure`] of an archive in object storage: it is read front to back once,
    /// by ranged requests of a few MiB.
    pub fn check_object_structure(location: &ObjectLocation) -> Result<SealedLayout> {
        let source = ObjectSource::open(location)?;
        crate::format::check_structure(&source).map_err(|e| Error::from(e).context(format!("`{location}`")))
    }

    /// The archive's path, or its `s3://` URL.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn index(&self) -> &ArchiveIndex<Source> {
        &self.index
    }

    /// Reads, checks and decodes one chunk, then releases its pages.
    pub fn read_chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, FormatError> {
        let raw = self.index.read_chunk(chunk);
        self.release(chunk);
        raw
    }

    fn release(&self, chunk: &ChunkRef) {
        let Source::Map(map) = self.index.bytes() else { return };
        let len = FrameHeader::LEN + chunk.entry.stored_len as usize;
        // SAFETY: see the module documentation. The advice is only a hint: an error changes nothing.
        #[allow(unsafe_code)]
        let _ =
            unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, chunk.entry.offset as usize, len) };
    }
}

/// Maps a regular file; `path` names it in messages.
fn map(file: &File, path: &Path) -> Result<Mmap> {
    let meta = file.metadata().map_err(|e| Error::io("reading the size of", path, e))?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("`{}` is not a regular file", path.display()))
            .with_hint("to read an archive from a pipe, pass `-` and send it on standard input"));
    }
    // SAFETY: see the module documentation.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(file) }.map_err(|e| Error::io("mapping", path, e))?;
    Ok(map)
}
