//! Archives on files and streams: [`ArchiveWriter`] writes one atomically (`NAME.partial`, fsync, rename,
//! fsync the folder, mode 0600) from many producers through one owner thread; [`ArchiveReader`] maps one
//! into memory for random access to any chunk from any thread; [`ChunkPrefetch`] decodes a part's next
//! chunks ahead of its reader within a budget of bytes.

mod prefetch;
mod reader;
mod writer;

pub(crate) use prefetch::panic_message;
pub use prefetch::{ChunkPrefetch, DecodedChunk};
pub use reader::ArchiveReader;
pub use writer::{
    ArchiveTarget, ArchiveWriter, FrameSender, WRITER_GONE, WriterMessage, WriterTask, WrittenArchive, now_rfc3339,
    partial_path, staging_path,
};
