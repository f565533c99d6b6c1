//! The deep check of one part: decode every chunk, walk its tuples, recount rows, recompute the BLAKE3 of
//! the stream and the content digest, and compare all of it with the manifest.

use super::{ArchiveIndex, CopyFormat, Element, FormatError, PartId, TupleScanner};

impl<B: AsRef<[u8]>> ArchiveIndex<B> {
    /// Checks one part completely. `Ok` means every byte of its chunks was read and matched the manifest.
    pub fn check_part(&self, part: PartId) -> Result<(), FormatError> {
        let table = self.table_of(part);
        let part_err = |problem: String| FormatError::corrupt(Element::Part { part, table: table.clone() }, 0, problem);
        let info = self.catalog().part(part).ok_or_else(|| part_err("not in the catalog".into()))?;
        let record = self.part(part).ok_or_else(|| part_err("not in the manifest".into()))?;
        let mut hasher = blake3::Hasher::new();
        let mut scanner = TupleScanner::new(info.format).with_fields(info.columns.len());
        for chunk in self.chunks(part) {
            let raw = self.read_chunk(&chunk)?;
            hasher.update(&raw);
            let before = scanner.rows();
            let element = self.chunk_element(&chunk);
            let at = chunk.entry.offset;
            let used = scanner.scan(&raw).map_err(|e| {
                FormatError::corrupt(element.clone(), at, format!("decoded byte {}: {}", e.offset, e.problem))
            })?;
            if used != raw.len() {
                return Err(FormatError::corrupt(
                    element,
                    at,
                    format!(
                        "ends inside a tuple (decoded byte {used} of {}); chunks must end on tuple boundaries",
                        raw.len()
                    ),
                ));
            }
            let rows = scanner.rows() - before;
            if rows != chunk.entry.rows {
                return Err(FormatError::corrupt(
                    element,
                    at,
                    format!("holds {rows} rows, the manifest says {}", chunk.entry.rows),
                ));
            }
        }
        let stream_complete = match info.format {
            CopyFormat::Binary => scanner.at_end(),
            CopyFormat::Text => true,
        };
        if !stream_complete {
            return Err(part_err("the binary COPY stream has no end marker".into()));
        }
        let blake3 = hasher.finalize();
        if blake3.to_hex().as_str() != record.blake3 {
            return Err(part_err(format!(
                "BLAKE3 mismatch (manifest {}, computed {})",
                record.blake3,
                blake3.to_hex()
            )));
        }
        if scanner.digest() != record.digest {
            return Err(part_err(format!(
                "content digest mismatch (manifest {}, computed {})",
                record.digest,
                scanner.digest()
            )));
        }
        Ok(())
    }
}
