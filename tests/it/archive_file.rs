//! The archive file writer: many producers through one owner, `.partial` until complete, mode 0600,
//! atomic replacement; and the memory-mapped reader on what it wrote.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pgsafe::archive::{ArchiveReader, ArchiveTarget, ArchiveWriter, WriterMessage};
use pgsafe::format::{Catalog, ChunkSeq, Compression, CopyFormat, PartId, encode_chunk, sample};

/// A catalog of `parts` text parts, `public.t0` to `public.tN`.
fn catalog(parts: u32) -> Catalog {
    sample::catalog((0..parts).map(|i| sample::part(PartId(i), &format!("t{i}"), CopyFormat::Text, &[])).collect())
}

/// A text COPY stream of `rows` lines for part `part`, sent as chunks of 100 rows.
fn produce(tx: &pgsafe::archive::FrameSender, part: u32, rows: u32) {
    let lines: Vec<String> = (0..rows).map(|r| format!("{part}\t{r}\tsome text for row {r}\n")).collect();
    let stream = lines.chunks(100).map(|lines| lines.concat());
    let (chunks, summary) = sample::encode_part(PartId(part), CopyFormat::Text, stream, Compression::default());
    for chunk in chunks {
        tx.blocking_send(WriterMessage::Chunk(chunk)).unwrap();
    }
    tx.blocking_send(WriterMessage::PartDone(summary)).unwrap();
}

fn partial(path: &Path) -> std::path::PathBuf {
    path.with_file_name(format!("{}.partial", path.file_name().unwrap().to_string_lossy()))
}

#[test]
fn parallel_producers_write_one_complete_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.pgsafe");
    let writer = ArchiveWriter::create(ArchiveTarget::File(path.clone()), &catalog(4), Compression::default()).unwrap();
    let (tx, task) = writer.spawn(2, pgsafe::cancel::Cancel::new()); // a tiny channel: producers wait for the writer
    std::thread::scope(|s| {
        for part in 0..4 {
            let tx = tx.clone();
            s.spawn(move || produce(&tx, part, 1000 + part * 37));
        }
    });
    drop(tx);
    let written = task.join().unwrap();
    assert_eq!(written.path.as_deref(), Some(path.as_path()));
    assert!(!partial(&path).exists(), "the .partial name must be gone once complete");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "archives hold the whole database: mode {mode:o}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), written.bytes);

    let reader = ArchiveReader::open(&path).unwrap();
    let index = reader.index();
    for part in 0..4u32 {
        index.check_part(PartId(part)).unwrap();
        assert_eq!(index.part(PartId(part)).unwrap().rows, u64::from(1000 + part * 37));
    }
}

#[test]
fn a_pipe_or_a_device_is_written_in_place_and_never_replaced() {
    // `-f /dev/null` once renamed a regular file over the device. A named pipe stands for every file that
    // is not a regular file (a test must not risk the machine's /dev/null).
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.pgsafe");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::fs::File::open(&fifo).unwrap().read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let writer = ArchiveWriter::create(ArchiveTarget::File(fifo.clone()), &catalog(2), Compression::default()).unwrap();
    let (tx, task) = writer.spawn(2, pgsafe::cancel::Cancel::new());
    produce(&tx, 0, 300);
    produce(&tx, 1, 50);
    drop(tx);
    let written = task.join().unwrap();
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "the pipe must still be a pipe");
    assert!(!partial(&fifo).exists(), "nothing is staged beside a pipe");
    let bytes = reader.join().unwrap();
    assert_eq!(bytes.len() as u64, written.bytes);

    // What went through the pipe is the whole archive.
    let copy = dir.path().join("copy.pgsafe");
    std::fs::write(&copy, &bytes).unwrap();
    let archive = ArchiveReader::open(&copy).unwrap();
    assert_eq!(archive.index().part(PartId(0)).unwrap().rows, 300);
    archive.index().check_part(PartId(1)).unwrap();
}

#[test]
fn a_dropped_writer_leaves_only_the_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.pgsafe");
    let mut writer = ArchiveWriter::create(ArchiveTarget::File(path.clone()), &catalog(1), Compression::None).unwrap();
    writer.write_chunk(&encode_chunk(PartId(0), ChunkSeq(0), b"1\n", 1, Compression::None)).unwrap();
    drop(writer);
    assert!(!path.exists(), "an unfinished archive must never appear under its final name");
    assert!(partial(&path).exists());
    let err = ArchiveReader::open(&partial(&path)).unwrap_err();
    assert!(err.to_string().contains("cut short") || err.to_string().contains("incomplete"), "{err}");
}

#[test]
fn a_producer_that_gives_up_never_yields_a_complete_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.pgsafe");
    let writer = ArchiveWriter::create(ArchiveTarget::File(path.clone()), &catalog(2), Compression::None).unwrap();
    let (tx, task) = writer.spawn(4, pgsafe::cancel::Cancel::new());
    produce(&tx, 0, 10);
    // Part 1 fails midway: one chunk sent, never finished.
    tx.blocking_send(WriterMessage::Chunk(encode_chunk(PartId(1), ChunkSeq(0), b"x\n", 1, Compression::None))).unwrap();
    drop(tx);
    let err = task.join().unwrap_err();
    assert!(err.to_string().contains("db.pgsafe.partial"), "{err}");
    assert!(format!("{:?}", err).contains("part 1 was never finished"), "{err:?}");
    assert!(!path.exists());
}

#[test]
fn an_existing_archive_stays_intact_until_its_replacement_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.pgsafe");
    std::fs::write(&path, b"the previous archive").unwrap();
    let mut writer = ArchiveWriter::create(ArchiveTarget::File(path.clone()), &catalog(1), Compression::None).unwrap();
    writer.write_chunk(&encode_chunk(PartId(0), ChunkSeq(0), b"1\n", 1, Compression::None)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"the previous archive");
    drop(writer);
    assert_eq!(std::fs::read(&path).unwrap(), b"the previous archive");
}

#[test]
fn opening_a_missing_file_names_it() {
    let err = ArchiveReader::open(Path::new("/nonexistent/x.pgsafe")).unwrap_err();
    assert_eq!(err.to_string(), "opening `/nonexistent/x.pgsafe`");
    assert_eq!(err.kind(), pgsafe::ErrorKind::Io);
}
