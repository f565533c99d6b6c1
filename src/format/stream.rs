//! Sequential reading from any [`Read`], such as a pipe: the catalog arrives first, then chunks in file
//! order, then the manifest, which is checked against everything seen, then the footer.

use std::collections::HashMap;
use std::io::{self, Read};

use super::crypt::{DataKey, Keyring, open_key_frame};
use super::index::{check_manifest, check_manifest_hash, parse_json};
use super::{
    Catalog, ChunkEntry, ChunkSeq, Codec, CopyFormat, Element, FileHeader, Footer, FormatError, FrameHeader, FrameKind,
    Manifest, PartId, crc32,
};

/// One step of a sequential read.
#[derive(Debug)]
pub enum StreamEvent {
    /// The catalog, always first.
    Catalog(Box<Catalog>),
    /// A chunk frame whose header and payload CRC were checked; [`FrameHeader::open_payload`] with the
    /// stream's [`data_key`](FrameStream::data_key) decodes it.
    Chunk { header: FrameHeader, offset: u64, stored: Vec<u8> },
    /// The manifest, last, once it and the footer were checked against every chunk that went by.
    Manifest(Box<Manifest>),
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Start,
    Chunks,
    Done,
}

/// What a sequential reader knows of one part while its chunks go by.
#[derive(Debug)]
struct SeenPart {
    /// The part's position in the catalog's parts.
    info: usize,
    chunks: Vec<ChunkEntry>,
}

/// Reads an archive front to back without seeking.
pub struct FrameStream<R: Read> {
    r: R,
    offset: u64,
    state: State,
    frame_index: u64,
    header: Option<FileHeader>,
    catalog: Option<Catalog>,
    catalog_end: u64,
    catalog_blake3: String,
    /// Per part: its position in the catalog and the chunks seen so far.
    seen: HashMap<PartId, SeenPart>,
    chunk_count: u64,
    keyring: Keyring,
    /// The data key of an encrypted archive, and the kinds of recipient it is wrapped for.
    key: Option<(DataKey, Vec<String>)>,
}

impl<R: Read> FrameStream<R> {
    /// Reads a plain archive; an encrypted one is refused as needing an identity.
    pub fn new(r: R) -> Self {
        Self::with_keyring(r, Keyring::none())
    }

    /// Reads an archive, unwrapping the data key of an encrypted one with `keyring`.
    pub fn with_keyring(r: R, keyring: Keyring) -> Self {
        FrameStream {
            r,
            offset: 0,
            state: State::Start,
            frame_index: 0,
            header: None,
            catalog: None,
            catalog_end: 0,
            catalog_blake3: String::new(),
            seen: HashMap::new(),
            chunk_count: 0,
            keyring,
            key: None,
        }
    }

    /// The data key of an encrypted archive, once its key frame was read: chunks are opened with it.
    pub fn data_key(&self) -> Option<&DataKey> {
        self.key.as_ref().map(|(k, _)| k)
    }

    /// The kinds of recipient an encrypted archive is wrapped for; empty for a plain archive.
    pub fn recipient_kinds(&self) -> &[String] {
        self.key.as_ref().map_or(&[], |(_, kinds)| kinds)
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The file header, once it was read.
    pub fn header(&self) -> Option<&FileHeader> {
        self.header.as_ref()
    }

    /// The file header, read first; frames are only read after it.
    fn file_header(&self) -> FileHeader {
        self.header.unwrap_or_default()
    }

    /// The catalog, once it was read.
    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_ref()
    }

    /// The next event, or `None` after the manifest.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, FormatError> {
        match self.state {
            State::Done => Ok(None),
            State::Start => {
                let mut hb = [0u8; FileHeader::LEN];
                let got = self.read_up_to(&mut hb)?;
                let header = FileHeader::decode(&hb[..got])?;
                self.header = Some(header);
                if header.encrypted {
                    let at = self.offset;
                    let (h, stored) = self.read_frame(FrameKind::Key, Element::Key)?;
                    self.key = Some(open_key_frame(&h, &stored, at, &self.keyring)?);
                    self.keyring = Keyring::none();
                }
                let at = self.offset;
                let (h, stored) = self.read_frame(FrameKind::Catalog, Element::Catalog)?;
                let json = h.open_payload(self.data_key(), &stored, at, Element::Catalog)?;
                let catalog: Catalog = parse_json(&json, Element::Catalog, FileHeader::LEN as u64)?;
                self.catalog_blake3 = blake3::hash(&json).to_hex().to_string();
                self.catalog_end = self.offset;
                let positions = catalog.part_positions().map_err(|id| {
                    FormatError::corrupt(Element::Catalog, FileHeader::LEN as u64, format!("part {id} appears twice"))
                })?;
                self.seen =
                    positions.into_iter().map(|(id, info)| (id, SeenPart { info, chunks: Vec::new() })).collect();
                self.catalog = Some(catalog.clone());
                self.state = State::Chunks;
                Ok(Some(StreamEvent::Catalog(Box::new(catalog))))
            }
            State::Chunks => self.next_frame(),
        }
    }

    fn next_frame(&mut self) -> Result<Option<StreamEvent>, FormatError> {
        let at = self.offset;
        let element = Element::Frame { index: self.frame_index };
        let mut hb = [0u8; FrameHeader::LEN];
        self.read_exact(&mut hb, element.clone(), at)?;
        let h = FrameHeader::decode(&hb, &self.file_header(), at, element.clone())?;
        self.frame_index += 1;
        match h.kind {
            FrameKind::Catalog => Err(FormatError::corrupt(element, at + 4, "a second catalog frame")),
            FrameKind::Key => Err(FormatError::corrupt(element, at + 4, "a key frame after the catalog")),
            FrameKind::Chunk => {
                let element = Element::Chunk { part: h.part, seq: h.seq, table: self.table_of(h.part) };
                let Some(SeenPart { chunks, info }) = self.seen.get_mut(&h.part) else {
                    return Err(FormatError::corrupt(
                        element,
                        at + 8,
                        format!("part {} is not in the catalog", h.part),
                    ));
                };
                let expected = ChunkSeq(chunks.len() as u32);
                if h.seq != expected {
                    return Err(FormatError::corrupt(
                        element,
                        at + 12,
                        format!("chunk out of order: expected chunk {expected} of part {}", h.part),
                    ));
                }
                let catalog = self.catalog.as_ref().expect("the catalog is read first");
                if h.codec == Codec::Columnar && catalog.parts[*info].format != CopyFormat::Binary {
                    return Err(super::index::columnar_on_text(element, at));
                }
                chunks.push(ChunkEntry {
                    seq: h.seq,
                    offset: at,
                    stored_len: h.stored_len,
                    raw_len: h.raw_len,
                    rows: 0,
                    crc32: h.payload_crc,
                });
                let stored = self.read_payload(h.stored_len, element.clone(), at)?;
                let computed = crc32(&stored);
                if computed != h.payload_crc {
                    return Err(FormatError::corrupt(
                        element,
                        at + FrameHeader::LEN as u64,
                        format!("payload {}", super::error::checksum_mismatch(h.payload_crc, computed)),
                    ));
                }
                self.chunk_count += 1;
                Ok(Some(StreamEvent::Chunk { header: h, offset: at, stored }))
            }
            FrameKind::Manifest => {
                let manifest = self.finish_manifest(h, at)?;
                self.state = State::Done;
                Ok(Some(StreamEvent::Manifest(Box::new(manifest))))
            }
        }
    }

    fn finish_manifest(&mut self, h: FrameHeader, at: u64) -> Result<Manifest, FormatError> {
        let stored = self.read_payload(h.stored_len, Element::Manifest, at)?;
        let json = h.open_payload(self.data_key(), &stored, at, Element::Manifest)?;
        let footer_at = self.offset;
        let mut fb = [0u8; Footer::LEN];
        self.read_exact(&mut fb, Element::Footer, footer_at)?;
        let footer = Footer::decode(&fb, footer_at)?;
        let mut extra = [0u8; 1];
        if self.read_up_to(&mut extra)? != 0 {
            return Err(FormatError::corrupt(Element::File, self.offset - 1, "bytes follow the footer"));
        }
        if footer.manifest_offset != at {
            return Err(FormatError::corrupt(
                Element::Footer,
                footer_at,
                format!("points at offset {} for the manifest, which is at {at}", footer.manifest_offset),
            ));
        }
        // An encrypted archive's footer hashes the sealed manifest, a plain one's the manifest itself.
        check_manifest_hash(if self.file_header().encrypted { &stored } else { &json }, &footer, at)?;
        let manifest: Manifest = parse_json(&json, Element::Manifest, at)?;
        let catalog = self.catalog.as_ref().expect("the catalog is read first");
        check_manifest(catalog, &self.catalog_blake3, &manifest, &footer, self.catalog_end, at)?;
        // The manifest must describe exactly the frames that went by.
        for p in &manifest.parts {
            let seen = &self.seen[&p.id].chunks;
            let same = seen.len() == p.chunks.len()
                && seen.iter().zip(&p.chunks).all(|(s, m)| ChunkEntry { rows: m.rows, ..*s } == *m);
            if !same {
                return Err(FormatError::corrupt(
                    Element::Manifest,
                    at,
                    format!("its chunk list for part {} differs from the chunk frames in the file", p.id),
                ));
            }
        }
        Ok(manifest)
    }

    fn table_of(&self, part: PartId) -> Option<String> {
        let info = self.seen.get(&part)?.info;
        self.catalog.as_ref().map(|c| c.parts[info].table.to_string())
    }

    /// Reads the frame of `kind` next in the input: its checked header and its stored payload.
    fn read_frame(&mut self, kind: FrameKind, element: Element) -> Result<(FrameHeader, Vec<u8>), FormatError> {
        let at = self.offset;
        let mut hb = [0u8; FrameHeader::LEN];
        self.read_exact(&mut hb, element.clone(), at)?;
        let h = FrameHeader::decode(&hb, &self.file_header(), at, element.clone())?;
        if h.kind != kind {
            return Err(FormatError::corrupt(
                element,
                at + 4,
                format!("expected a {kind:?} frame, found a {:?} frame", h.kind),
            ));
        }
        self.frame_index += 1;
        let stored = self.read_payload(h.stored_len, element, at)?;
        Ok((h, stored))
    }

    /// Reads a payload of `len` bytes. The buffer grows as bytes arrive, so a header that declares a
    /// large payload cannot make the reader allocate it before the bytes exist.
    fn read_payload(&mut self, len: u32, element: Element, element_at: u64) -> Result<Vec<u8>, FormatError> {
        let mut stored = Vec::with_capacity((len as usize).min(1 << 20));
        let got = (&mut self.r)
            .take(u64::from(len))
            .read_to_end(&mut stored)
            .map_err(|source| FormatError::Io { offset: self.offset, source })?;
        self.offset += got as u64;
        if got < len as usize {
            let needed = self.offset - got as u64 + u64::from(len) - element_at;
            return Err(FormatError::Truncated {
                element,
                offset: element_at,
                needed,
                available: self.offset - element_at,
            });
        }
        Ok(stored)
    }

    /// Fills `buf`, or fails with a truncation error naming `element`, which starts at `element_at`.
    fn read_exact(&mut self, buf: &mut [u8], element: Element, element_at: u64) -> Result<(), FormatError> {
        let got = self.read_up_to(buf)?;
        if got < buf.len() {
            let needed = self.offset - got as u64 + buf.len() as u64 - element_at;
            return Err(FormatError::Truncated {
                element,
                offset: element_at,
                needed,
                available: self.offset - element_at,
            });
        }
        Ok(())
    }

    /// Reads until `buf` is full or the input ends; returns the bytes read.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, FormatError> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(FormatError::Io { offset: self.offset + got as u64, source });
                }
            }
        }
        self.offset += got as u64;
        Ok(got)
    }
}
