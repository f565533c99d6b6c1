//! Archives on files, streams and object storage: [`ArchiveWriter`] writes one atomically (`NAME.partial`,
//! fsync, rename, fsync the folder, mode 0600; or a multipart upload completed at the end) from many
//! producers through one owner thread; [`ArchiveReader`] maps one into memory (or reads an object by
//! ranged requests) for random access to any chunk from any thread; [`ChunkPrefetch`] decodes a part's next
//! chunks ahead of its reader within a budget of bytes.

pub(crate) mod object;
mod prefetch;
mod profile;
mod reader;
mod writer;

pub use object::{ObjectLocation, ObjectSource, ObjectUpload, Service};
pub(crate) use prefetch::panic_message;
pub use prefetch::{ChunkPrefetch, DecodedChunk};
pub use reader::{ArchiveReader, Source, reopen, spool};
pub use writer::{
    ArchiveTarget, ArchiveWriter, FrameSender, WRITER_GONE, WriterMessage, WriterTask, WrittenArchive, now_rfc3339,
    partial_path, remove_unheld, staging_path,
};
