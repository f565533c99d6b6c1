//! The archive reader: positioned reads of the file (or ranged requests to an object in a bucket, see
//! [`ObjectSource`]), opened and cross-checked by [`ArchiveIndex`].
//!
//! A chunk is read with one `pread` of its frame into its own buffer, so any number of threads read any
//! parts' chunks at once, and what the process holds is the chunks in flight, nothing of the file
//! itself. (A memory map, which this replaced, lent its bytes without a copy, but the pages the kernel
//! maps around each fault, in the neighbouring chunks, stayed in the process's resident memory after the
//! chunk's own were released: restoring a 197.5 MiB archive at `-j 1`, 53 MB of it by the end, a peak of
//! 86 MB against 44 MB now. The copy of a chunk's stored bytes costs little beside decompressing them.)

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::object::{ObjectLocation, ObjectSource};
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{ArchiveIndex, ArchiveSource, ChunkRef, FormatError, Keyring, SealedLayout};

/// An archive opened for random access. `Sync`: share it across threads to read chunks in parallel.
#[derive(Debug)]
pub struct ArchiveReader {
    path: PathBuf,
    index: ArchiveIndex<Source>,
}

/// Where an opened archive's bytes come from.
#[derive(Debug)]
pub enum Source {
    /// A regular file and its length, read at offsets.
    File(File, u64),
    /// An object in a bucket, read by ranged requests.
    Object(ObjectSource),
}

impl ArchiveSource for Source {
    fn len(&self) -> u64 {
        match self {
            Source::File(_, len) => *len,
            Source::Object(object) => object.len(),
        }
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        match self {
            Source::File(file, _) => {
                let mut bytes = vec![0; len];
                file.read_exact_at(&mut bytes, offset).map_err(|e| match e.kind() {
                    // Its length was read when it was opened: it shrank since.
                    io::ErrorKind::UnexpectedEof => io::Error::new(
                        e.kind(),
                        format!(
                            "the file ends before byte {}, which it held when it was opened: it was truncated while being read",
                            offset + len as u64
                        ),
                    ),
                    _ => e,
                })?;
                Ok(Cow::Owned(bytes))
            }
            Source::Object(object) => object.read_at(offset, len),
        }
    }
}

impl ArchiveReader {
    /// Opens the file and checks its header, catalog, manifest and footer.
    pub fn open(path: &Path) -> Result<Self> {
        ArchiveReader::open_with(path, &Keyring::none())
    }

    /// Like [`open`](Self::open), unwrapping the data key of an encrypted archive with `keyring`.
    pub fn open_with(path: &Path, keyring: &Keyring) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        ArchiveReader::from_file_with(file, path, keyring)
    }

    /// Reads an open file (one without a name: a temporary copy of a pipe) and checks it; `path` names it
    /// in messages.
    pub fn from_file(file: File, path: &Path) -> Result<Self> {
        ArchiveReader::from_file_with(file, path, &Keyring::none())
    }

    /// Like [`from_file`](Self::from_file), unwrapping the data key of an encrypted archive with `keyring`.
    pub fn from_file_with(file: File, path: &Path, keyring: &Keyring) -> Result<Self> {
        let source = regular_file(file, path)?;
        let index = ArchiveIndex::open_with(source, keyring)
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
        ArchiveReader::open_object_cancelled_by(location, keyring, &Cancel::new())
    }

    /// Like [`open_object_with`](Self::open_object_with), every wait for the endpoint (the opening's and
    /// every later read's) ended by `cancel`, with [`ErrorKind::Cancelled`]: an operation reading the
    /// archive stops at a signal even when the endpoint does not answer.
    pub fn open_object_cancelled_by(location: &ObjectLocation, keyring: &Keyring, cancel: &Cancel) -> Result<Self> {
        let source = ObjectSource::open(location, cancel)?;
        let index = ArchiveIndex::open_with(Source::Object(source), keyring)
            .map_err(|e| Error::from(e).context(format!("`{location}`")))?;
        Ok(ArchiveReader { path: PathBuf::from(location.to_string()), index })
    }

    /// Checks what can be checked of an encrypted archive file without its identity: its structure and
    /// every checksum (see [`crate::format::check_structure`]).
    pub fn check_structure(path: &Path) -> Result<SealedLayout> {
        let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        structure_of(file, path)
    }

    /// [`ArchiveReader::check_structure`] of an archive in an open file (a pipe's copy), named `name`.
    pub fn check_file_structure(file: &File, name: &Path) -> Result<SealedLayout> {
        structure_of(reopen(file)?, name)
    }

    /// [`ArchiveReader::check_structure`] of an archive in object storage: it is read front to back once,
    /// by ranged requests of a few MiB.
    pub fn check_object_structure(location: &ObjectLocation) -> Result<SealedLayout> {
        let source = ObjectSource::open(location, &Cancel::new())?;
        crate::format::check_structure(&source).map_err(|e| Error::from(e).context(format!("`{location}`")))
    }

    /// The archive's path, or its `s3://` URL.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn index(&self) -> &ArchiveIndex<Source> {
        &self.index
    }

    /// Whether the archive is a file (or a pipe's copy in one), whose chunks are read at disk speed, not
    /// an object in a bucket, whose every read is a request.
    pub fn is_file(&self) -> bool {
        matches!(self.index.bytes(), Source::File(..))
    }

    /// Reads, checks and decodes one chunk.
    pub fn read_chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, FormatError> {
        self.index.read_chunk(chunk)
    }

    /// Checks `chunks` (frame headers against the manifest, payload CRCs; nothing decoded) on `threads`
    /// threads. The error names the damaged chunk first in the file; the check stops at the first found.
    pub fn check_chunks(&self, chunks: &[ChunkRef], threads: usize) -> Result<()> {
        let next = AtomicUsize::new(0);
        let failed = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads.clamp(1, chunks.len().max(1)) {
                s.spawn(|| {
                    while let Some(chunk) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if let Err(e) = self.index.check_chunk(chunk) {
                            failed.lock().unwrap_or_else(|p| p.into_inner()).push((chunk.entry.offset, e));
                            next.store(chunks.len(), Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
        match failed.into_iter().min_by_key(|(offset, _)| *offset) {
            Some((_, e)) => Err(Error::from(e).context(format!("`{}`", self.path.display()))),
            None => Ok(()),
        }
    }
}

/// Copies an archive from a pipe (`source` names it) into a temporary file in `TMPDIR` that has no name:
/// it is gone with the process, however it ends (the copy may hold a whole database). For what reads an
/// archive out of order (a restore: the catalog at its end first; an encrypted archive's check without its
/// identity: the footer first); `command` is the one to run on a file instead.
pub fn spool(mut input: impl std::io::Read, source: &str, command: &str) -> Result<File> {
    let dir = std::env::temp_dir();
    let hint = format!("set TMPDIR to a folder with room for the whole archive, or {command} a file");
    let mut file = tempfile::tempfile_in(&dir).map_err(|e| {
        Error::new(ErrorKind::Io, format!("cannot make a temporary file in `{}` for the archive", dir.display()))
            .with_source(e)
            .with_hint(hint.clone())
    })?;
    std::io::copy(&mut input, &mut file).map_err(|e| {
        Error::new(ErrorKind::Io, format!("copying `{source}` into a temporary file in `{}` failed", dir.display()))
            .with_source(e)
            .with_hint(hint)
    })?;
    Ok(file)
}

/// Another handle on an open file, such as a pipe's copy from [`spool`], which has no name to open again.
pub fn reopen(file: &File) -> Result<File> {
    file.try_clone().map_err(|e| Error::new(ErrorKind::Io, "opening the archive's copy again").with_source(e))
}

/// [`crate::format::check_structure`] of the archive in `file`, named `name` in messages.
fn structure_of(file: File, name: &Path) -> Result<SealedLayout> {
    let source = regular_file(file, name)?;
    crate::format::check_structure(&source).map_err(|e| Error::from(e).context(format!("`{}`", name.display())))
}

/// A regular file to read an archive from; `path` names it in messages.
fn regular_file(file: File, path: &Path) -> Result<Source> {
    let meta = file.metadata().map_err(|e| Error::io("reading the size of", path, e))?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("`{}` is not a regular file", path.display()))
            .with_hint("to read an archive from a pipe, pass `-` and send it on standard input"));
    }
    Ok(Source::File(file, meta.len()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::format::{Compression, CopyFormat, PartId, sample};

    /// Resident kilobytes of the process's mappings of `path`, from `/proc/self/smaps`.
    fn resident_kb_of(path: &Path) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut mapped = false;
        let mut kb = 0;
        for line in smaps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.first().is_some_and(|f| f.contains('-') && !f.ends_with(':')) {
                mapped = fields.get(5).is_some_and(|name| Path::new(name) == path);
            } else if mapped && fields.first() == Some(&"Rss:") {
                kb += fields[1].parse::<u64>().unwrap();
            }
        }
        kb
    }

    /// `n` chunks of 1 MiB of text that does not compress, each one line per 64 KiB.
    fn incompressible(n: usize, seed: &mut u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                let mut raw: Vec<u8> = (0..1 << 20)
                    .map(|_| {
                        *seed ^= *seed << 13;
                        *seed ^= *seed >> 7;
                        *seed ^= *seed << 17;
                        b'a' + (*seed % 26) as u8
                    })
                    .collect();
                for line in raw.chunks_mut(64 << 10) {
                    *line.last_mut().unwrap() = b'\n';
                }
                raw
            })
            .collect()
    }

    /// Reading a whole archive keeps none of the file in the process's memory: what a reader holds is
    /// the chunks in flight, whatever the archive's size. Two parts whose chunks alternate in the file,
    /// as a dump's workers write them, read one part after the other, as a restore does.
    #[test]
    fn reading_every_chunk_leaves_none_of_the_file_resident() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resident.pgsafe");
        let catalog = sample::catalog(vec![
            sample::part(PartId(0), "one", CopyFormat::Text, &[]),
            sample::part(PartId(1), "two", CopyFormat::Text, &[]),
        ]);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let parts = [incompressible(12, &mut seed), incompressible(12, &mut seed)];
        let encoded = parts
            .iter()
            .enumerate()
            .map(|(p, chunks)| sample::encode_part(PartId(p as u32), CopyFormat::Text, chunks, Compression::None))
            .collect::<Vec<_>>();
        sample::write_file(&path, &catalog, Compression::None, &encoded);

        let reader = ArchiveReader::open(&path).unwrap();
        for (p, chunks) in parts.iter().enumerate() {
            let refs: Vec<ChunkRef> = reader.index().chunks(PartId(p as u32)).collect();
            assert_eq!(refs.len(), chunks.len());
            for (chunk, raw) in refs.iter().zip(chunks) {
                assert_eq!(&reader.read_chunk(chunk).unwrap(), raw);
            }
        }
        assert_eq!(resident_kb_of(&path.canonicalize().unwrap()), 0, "kB of the archive resident after the reads");
    }

    /// An archive cut short while it is read is an error naming where, not a crash (a memory map of it
    /// would end the process with SIGBUS).
    #[test]
    fn an_archive_truncated_while_open_is_an_error_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.pgsafe");
        let catalog = sample::catalog(vec![sample::part(PartId(0), "one", CopyFormat::Text, &[])]);
        let chunks = incompressible(3, &mut 7);
        let part = sample::encode_part(PartId(0), CopyFormat::Text, &chunks, Compression::None);
        sample::write_file(&path, &catalog, Compression::None, &[part]);

        let reader = ArchiveReader::open(&path).unwrap();
        let last = reader.index().chunks(PartId(0)).last().unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(last.entry.offset + 100).unwrap();
        let e = reader.read_chunk(&last).unwrap_err();
        let e = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(e.contains(&format!("at offset {}", last.entry.offset)) && e.contains("truncated"), "{e}");
    }
}
