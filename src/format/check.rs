//! The deep check of one part: decode every chunk, walk its tuples, recount rows, recompute the BLAKE3 of
//! the stream and the content digest, and compare all of it with the manifest. [`PartCheck`] does it
//! chunk by chunk, so the random-access reader and a sequential reader of a pipe share it.

use super::{ArchiveIndex, ChunkSeq, CopyFormat, Element, FormatError, PartId, PartInfo, PartRecord, TupleScanner};

/// The running check of one part's stream, fed its decoded chunks in stream order.
pub struct PartCheck {
    part: PartId,
    table: String,
    format: CopyFormat,
    scanner: TupleScanner,
    hasher: blake3::Hasher,
    chunk_rows: Vec<u64>,
}

impl PartCheck {
    pub fn new(info: &PartInfo) -> Self {
        PartCheck {
            part: info.id,
            table: info.table.to_string(),
            format: info.format,
            scanner: TupleScanner::new(info.format).with_fields(info.columns.len()),
            hasher: blake3::Hasher::new(),
            chunk_rows: Vec::new(),
        }
    }

    /// Names chunk `seq` of this part, with its table, for errors.
    pub fn chunk_element(&self, seq: ChunkSeq) -> Element {
        Element::Chunk { part: self.part, seq, table: Some(self.table.clone()) }
    }

    /// Adds the next decoded chunk, found at `offset`: it must hold whole tuples only.
    pub fn chunk(&mut self, raw: &[u8], offset: u64) -> Result<(), FormatError> {
        let element = self.chunk_element(ChunkSeq(self.chunk_rows.len() as u32));
        self.hasher.update(raw);
        let before = self.scanner.rows();
        let used = self.scanner.scan(raw).map_err(|e| e.in_chunk(element.clone(), offset))?;
        if used != raw.len() {
            return Err(FormatError::corrupt(
                element,
                offset,
                format!(
                    "ends inside a tuple (decoded byte {used} of {}); chunks must end on tuple boundaries",
                    raw.len()
                ),
            ));
        }
        self.chunk_rows.push(self.scanner.rows() - before);
        Ok(())
    }

    /// Compares the whole stream with the part's manifest record.
    pub fn finish(self, record: &PartRecord) -> Result<(), FormatError> {
        let at = record.chunks.first().map_or(0, |c| c.offset);
        let part_err = |problem: String| {
            FormatError::corrupt(Element::Part { part: self.part, table: Some(self.table.clone()) }, at, problem)
        };
        if self.chunk_rows.len() != record.chunks.len() {
            return Err(part_err(format!(
                "{} chunks read, the manifest lists {}",
                self.chunk_rows.len(),
                record.chunks.len()
            )));
        }
        for (rows, entry) in self.chunk_rows.iter().zip(&record.chunks) {
            if *rows != entry.rows {
                return Err(FormatError::corrupt(
                    self.chunk_element(entry.seq),
                    entry.offset,
                    format!("holds {rows} rows, the manifest says {}", entry.rows),
                ));
            }
        }
        if self.format == CopyFormat::Binary && !self.scanner.at_end() {
            return Err(part_err("the binary COPY stream has no end marker".into()));
        }
        let blake3 = self.hasher.finalize();
        if blake3.to_hex().as_str() != record.blake3 {
            return Err(part_err(format!(
                "BLAKE3 mismatch (manifest {}, computed {})",
                record.blake3,
                blake3.to_hex()
            )));
        }
        if self.scanner.digest() != record.digest {
            return Err(part_err(format!(
                "content digest mismatch (manifest {}, computed {})",
                record.digest,
                self.scanner.digest()
            )));
        }
        Ok(())
    }
}

impl<B: super::ArchiveSource> ArchiveIndex<B> {
    /// Checks one part completely. `Ok` means every byte of its chunks was read and matched the manifest.
    pub fn check_part(&self, part: PartId) -> Result<(), FormatError> {
        let missing = |what: &str| {
            FormatError::corrupt(Element::Part { part, table: self.table_of(part) }, 0, format!("not in the {what}"))
        };
        let info = self.part_info(part).ok_or_else(|| missing("catalog"))?;
        let record = self.part(part).ok_or_else(|| missing("manifest"))?;
        let mut check = PartCheck::new(info);
        for chunk in self.chunks(part) {
            check.chunk(&self.read_chunk(&chunk)?, chunk.entry.offset)?;
        }
        check.finish(record)
    }
}
