//! The bytes on disk: the file header, the record layout, and the scan that validates a file and finds its
//! records. `docs/store.md` describes the same layout byte by byte.
//!
//! ```text
//! file header (16 bytes)  magic "FLOWMEMS" | version u32 LE = 2 | header flags u32 LE = 0
//! record                  id [16] | word u64 LE | head crc32c u32 LE | payload [n] | crc32c u32 LE
//!                         word = n | flags << 56   (flags: 1 tombstone, 2 zstd)
//!                         head crc32c over id and word; crc32c over id, word and payload
//! bare record             id [16] | n u64 LE | payload [n]        (no file header, no checksum)
//! ```
//!
//! The head checksum is what tells a crash from damage: a record whose head checks out has a trusted
//! length, so its payload is never searched for records (whatever bytes it holds), and a file that ends
//! inside it is an interrupted append. See `scan` and docs/store.md.

use std::fmt;

use uuid::Uuid;

/// The first 8 bytes of a store file.
pub const MAGIC: [u8; 8] = *b"FLOWMEMS";
/// The format version this build writes and reads (version 1 had no head checksum).
pub const VERSION: u32 = 2;
/// Bytes of the file header.
pub const HEADER_LEN: u64 = 16;
/// Bytes of a record before its payload: id, word and head checksum (the bare layout has no checksum:
/// see [`head_len`]).
pub const RECORD_HEAD: u64 = 28;
/// Bytes of id and word, which the head checksum covers.
const ID_WORD: usize = 24;
/// Bytes of a record after its payload: the checksum.
pub const RECORD_TAIL: u64 = 4;
/// The largest payload a record can hold (the length has 56 bits).
pub const MAX_PAYLOAD: u64 = (1 << 56) - 1;

/// Record flag: a tombstone (deletes its id; no payload).
pub(crate) const FLAG_TOMBSTONE: u8 = 1;
/// Record flag: the payload is zstd-compressed (an 8-byte LE uncompressed length, then a zstd frame).
pub(crate) const FLAG_ZSTD: u8 = 2;
const KNOWN_FLAGS: u8 = FLAG_TOMBSTONE | FLAG_ZSTD;

/// Which layout a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// This crate's format: header, flagged and checksummed records.
    Checked,
    /// The bare layout earlier tools write: records of id, u64 LE length, payload; no header, no checksum,
    /// no flags (so no tombstones and no compression).
    Bare,
}

/// What is wrong with the bytes at a record's offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Fewer bytes than a record head remain.
    TruncatedRecordHeader {
        /// Bytes left in the file at the record's offset.
        available: u64,
    },
    /// The record's length runs past the end of the file.
    LengthPastEnd {
        /// The payload length the record claims.
        len: u64,
        /// Bytes left in the file at the record's offset.
        available: u64,
    },
    /// The head checksum does not match the id and word: the length cannot be trusted.
    HeadChecksumMismatch {
        /// The head checksum stored in the record.
        stored: u32,
        /// The checksum of the id and word read.
        computed: u32,
    },
    /// The stored checksum does not match the record's bytes.
    ChecksumMismatch {
        /// The checksum stored in the record.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// Flag bits this build does not know.
    UnknownRecordFlags {
        /// The record's flag byte.
        flags: u8,
    },
    /// A tombstone that carries a payload.
    MalformedTombstone {
        /// The payload length it claims.
        len: u64,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::TruncatedRecordHeader { available } => {
                write!(f, "truncated record head ({available} of 28 bytes)")
            }
            Damage::HeadChecksumMismatch { stored, computed } => write!(
                f,
                "head checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Damage::LengthPastEnd { len, available } => write!(
                f,
                "length past the end: a payload of {len} bytes, {available} bytes left in the file"
            ),
            Damage::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Damage::UnknownRecordFlags { flags } => write!(f, "unknown record flags {flags:#04x}"),
            Damage::MalformedTombstone { len } => {
                write!(f, "a tombstone with a payload of {len} bytes")
            }
        }
    }
}

/// A problem with the file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    Empty,
    Truncated { len: u64 },
    BadMagic,
    UnknownVersion { version: u32 },
    UnknownFlags { flags: u32 },
}

/// The file header this build writes.
pub(crate) fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Checks the file header at the start of `bytes`.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), HeaderProblem> {
    if bytes.is_empty() {
        return Err(HeaderProblem::Empty);
    }
    if bytes.len() < HEADER_LEN as usize {
        // A prefix of the magic is still "not ours" if it differs.
        let n = bytes.len().min(8);
        if bytes[..n] != MAGIC[..n] {
            return Err(HeaderProblem::BadMagic);
        }
        return Err(HeaderProblem::Truncated {
            len: bytes.len() as u64,
        });
    }
    if bytes[..8] != MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(HeaderProblem::UnknownVersion { version });
    }
    let flags = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if flags != 0 {
        return Err(HeaderProblem::UnknownFlags { flags });
    }
    Ok(())
}

/// The head of a record (id, word, head checksum) for a payload of `len` bytes with `flags`, and the
/// checksum state to continue over the payload (the checksum of id and word).
pub(crate) fn record_head(id: &Uuid, len: u64, flags: u8) -> ([u8; RECORD_HEAD as usize], u32) {
    debug_assert!(len <= MAX_PAYLOAD);
    let mut head = [0u8; RECORD_HEAD as usize];
    head[..16].copy_from_slice(id.as_bytes());
    head[16..ID_WORD].copy_from_slice(&(len | (u64::from(flags) << 56)).to_le_bytes());
    let crc = crc32c::crc32c(&head[..ID_WORD]);
    head[ID_WORD..].copy_from_slice(&crc.to_le_bytes());
    (head, crc)
}

/// Bytes before the payload in `layout`.
pub fn head_len(layout: Layout) -> u64 {
    match layout {
        Layout::Checked => RECORD_HEAD,
        Layout::Bare => 24,
    }
}

/// Bytes after the payload in `layout`.
pub fn tail_len(layout: Layout) -> u64 {
    match layout {
        Layout::Checked => RECORD_TAIL,
        Layout::Bare => 0,
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// One record found by a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) id: Uuid,
    /// Offset of the record's first byte.
    pub(crate) offset: u64,
    /// Offset of the payload.
    pub(crate) payload: u64,
    /// Stored payload length.
    pub(crate) len: u64,
    pub(crate) flags: u8,
}

impl Found {
    pub(crate) fn is_tombstone(&self) -> bool {
        self.flags & FLAG_TOMBSTONE != 0
    }
    pub(crate) fn is_compressed(&self) -> bool {
        self.flags & FLAG_ZSTD != 0
    }
}

/// Reads the record of `layout` at `pos` of `bytes`: `Ok(record)` with its end, or what is wrong there.
///
/// Checked records are checked in this order: a whole head, the head checksum, the flags, the length
/// against the end of `bytes`, a tombstone's length, the checksum of the whole record. Every damage after
/// the head checksum comes from a head that checks out, so its length can be trusted ([`trusted_end`]).
pub(crate) fn read_record(bytes: &[u8], pos: u64, layout: Layout) -> Result<(Found, u64), Damage> {
    let end = bytes.len() as u64;
    let available = end - pos;
    let head = head_len(layout);
    if available < head {
        return Err(Damage::TruncatedRecordHeader { available });
    }
    let p = pos as usize;
    let id = Uuid::from_bytes(bytes[p..p + 16].try_into().expect("16 bytes"));
    let word = u64_at(bytes, p + 16);
    let (len, flags, tail) = match layout {
        Layout::Checked => {
            let stored = u32_at(bytes, p + ID_WORD);
            let computed = crc32c::crc32c(&bytes[p..p + ID_WORD]);
            if stored != computed {
                return Err(Damage::HeadChecksumMismatch { stored, computed });
            }
            (word & MAX_PAYLOAD, (word >> 56) as u8, RECORD_TAIL)
        }
        Layout::Bare => (word, 0, 0),
    };
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Damage::UnknownRecordFlags { flags });
    }
    let record_end = len
        .checked_add(head + tail)
        .and_then(|n| n.checked_add(pos))
        .filter(|e| *e <= end)
        .ok_or(Damage::LengthPastEnd { len, available })?;
    if flags & FLAG_TOMBSTONE != 0 && len != 0 {
        return Err(Damage::MalformedTombstone { len });
    }
    let payload = pos + head;
    if layout == Layout::Checked {
        let crc_at = (payload + len) as usize;
        let stored = u32_at(bytes, crc_at);
        let head_crc = u32_at(bytes, p + ID_WORD);
        let computed = crc32c::crc32c_append(head_crc, &bytes[payload as usize..crc_at]);
        if stored != computed {
            return Err(Damage::ChecksumMismatch { stored, computed });
        }
    }
    Ok((
        Found {
            id,
            offset: pos,
            payload,
            len,
            flags,
        },
        record_end,
    ))
}

/// Where the damaged checked record at `pos` ends, if its head checks out: `Some(end)` (which may lie past
/// the end of `bytes`), or `None` if the head itself is damaged or cut short, so its length means nothing.
fn trusted_end(bytes: &[u8], pos: u64, damage: &Damage) -> Option<u64> {
    match damage {
        Damage::TruncatedRecordHeader { .. } | Damage::HeadChecksumMismatch { .. } => None,
        Damage::LengthPastEnd { len, .. } => Some(
            pos.saturating_add(RECORD_HEAD + RECORD_TAIL)
                .saturating_add(*len),
        ),
        Damage::UnknownRecordFlags { .. }
        | Damage::MalformedTombstone { .. }
        | Damage::ChecksumMismatch { .. } => {
            let len = u64_at(bytes, pos as usize + 16) & MAX_PAYLOAD;
            Some(pos + RECORD_HEAD + RECORD_TAIL + len)
        }
    }
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// Every byte belongs to a whole, valid record.
    Clean,
    /// The bytes from `offset` to the end are not a whole valid record, and no valid record starts after
    /// them: an incomplete last append (a crash, or a write in progress).
    TornTail { offset: u64, damage: Damage },
    /// The record at `offset` is damaged and a valid record starts later, at `next_valid`: not a torn tail.
    Corrupt {
        offset: u64,
        damage: Damage,
        next_valid: u64,
    },
}

/// Scans the records of `bytes` from `start`, calling `found` for each whole, valid record, and says how the
/// scan ended. For the bare layout (no checksums) any damage is `Corrupt`: a torn tail cannot be told from
/// a bad length.
///
/// For the checked layout, damage at the end of the valid records is a torn tail exactly when no valid
/// record starts after it, where "after" respects the damaged record's own extent when its head checks
/// out: a record whose head is intact owns the bytes up to its (trusted) end, so records that its payload
/// happens to contain are never taken for records of the file. Only after a damaged head (which a crash
/// cannot leave: an interrupted append cuts the file short, and a head cut short is
/// [`Damage::TruncatedRecordHeader`]) is every later offset searched. Linear in the size of `bytes` on any
/// input.
pub(crate) fn scan(
    bytes: &[u8],
    start: u64,
    layout: Layout,
    mut found: impl FnMut(Found),
) -> ScanEnd {
    let end = bytes.len() as u64;
    let mut pos = start;
    while pos < end {
        match read_record(bytes, pos, layout) {
            Ok((record, next)) => {
                found(record);
                pos = next;
            }
            Err(damage) => {
                if layout == Layout::Bare {
                    return ScanEnd::Corrupt {
                        offset: pos,
                        damage,
                        next_valid: end,
                    };
                }
                return match next_valid_after(bytes, pos, &damage) {
                    Some(next_valid) => ScanEnd::Corrupt {
                        offset: pos,
                        damage,
                        next_valid,
                    },
                    None => ScanEnd::TornTail {
                        offset: pos,
                        damage,
                    },
                };
            }
        }
    }
    ScanEnd::Clean
}

/// The offset of the first whole, valid checked record after the damaged record at `pos`, if any. Follows
/// trusted lengths from record to record; searches every offset only past a damaged head.
fn next_valid_after(bytes: &[u8], pos: u64, damage: &Damage) -> Option<u64> {
    let end = bytes.len() as u64;
    let mut at = match trusted_end(bytes, pos, damage) {
        Some(e) => e,
        None => return search(bytes, pos + 1),
    };
    loop {
        if at >= end {
            return None;
        }
        match read_record(bytes, at, Layout::Checked) {
            Ok(_) => return Some(at),
            Err(d) => match trusted_end(bytes, at, &d) {
                Some(e) => at = e,
                None => return search(bytes, at + 1),
            },
        }
    }
}

/// The first offset at or after `from` where a whole, valid checked record starts, if any.
///
/// One pass finds the candidates: offsets whose head checks out and whose record fits. Their payload
/// checksums then come from a second, single pass over the bytes (the checksum of each payload from the
/// running checksum at its two ends, [`crc::suffix`](crate::crc::suffix)), so crafted bytes full of valid
/// heads with long lengths cost a pass, not a pass per head.
fn search(bytes: &[u8], from: u64) -> Option<u64> {
    let end = bytes.len() as u64;
    let min = RECORD_HEAD + RECORD_TAIL;
    if end < min || from > end - min {
        return None;
    }
    // (offset, payload length) of each offset whose head checks out.
    let mut candidates: Vec<(u64, u64)> = Vec::new();
    for q in from..=end - min {
        let p = q as usize;
        // Cheap rejections first: flag bits this format does not have, then a length past the end.
        let flags = bytes[p + 23];
        if flags & !KNOWN_FLAGS != 0 {
            continue;
        }
        let len = u64_at(bytes, p + 16) & MAX_PAYLOAD;
        if len > end - q - min || (flags & FLAG_TOMBSTONE != 0 && len != 0) {
            continue;
        }
        if crc32c::crc32c(&bytes[p..p + ID_WORD]) == u32_at(bytes, p + ID_WORD) {
            candidates.push((q, len));
        }
    }
    // A single candidate is checked directly; many share one pass.
    if let [(q, _)] = candidates[..] {
        return read_record(bytes, q, Layout::Checked).ok().map(|_| q);
    }
    if candidates.is_empty() {
        return None;
    }
    // The running checksum from `from` at every payload start and end.
    let mut marks: Vec<u64> = candidates
        .iter()
        .flat_map(|&(q, len)| [q + RECORD_HEAD, q + RECORD_HEAD + len])
        .collect();
    marks.sort_unstable();
    marks.dedup();
    let mut running = Vec::with_capacity(marks.len());
    let (mut at, mut crc) = (from, 0u32);
    for &m in &marks {
        crc = crc32c::crc32c_append(crc, &bytes[at as usize..m as usize]);
        at = m;
        running.push(crc);
    }
    let running_at = |m: u64| running[marks.binary_search(&m).expect("every mark was taken")];
    candidates.into_iter().find_map(|(q, len)| {
        let start = q + RECORD_HEAD;
        let payload = crate::crc::suffix(running_at(start), running_at(start + len), len);
        let head = u32_at(bytes, q as usize + ID_WORD);
        let whole = crate::crc::concat(head, payload, len);
        (whole == u32_at(bytes, (start + len) as usize)).then_some(q)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u128, payload: &[u8], flags: u8) -> Vec<u8> {
        let (head, crc) = record_head(&Uuid::from_u128(id), payload.len() as u64, flags);
        let crc = crc32c::crc32c_append(crc, payload);
        [&head[..], payload, &crc.to_le_bytes()].concat()
    }

    #[test]
    fn a_record_reads_back_and_every_damage_is_named() {
        let r = record(7, b"payload", 0);
        let (found, end) = read_record(&r, 0, Layout::Checked).unwrap();
        assert_eq!(
            (found.id, found.len, end),
            (Uuid::from_u128(7), 7, r.len() as u64)
        );
        assert!(matches!(
            read_record(&r[..10], 0, Layout::Checked),
            Err(Damage::TruncatedRecordHeader { available: 10 })
        ));
        assert!(matches!(
            read_record(&r[..30], 0, Layout::Checked),
            Err(Damage::LengthPastEnd { len: 7, .. })
        ));
        let mut flipped = r.clone();
        flipped[30] ^= 1;
        assert!(matches!(
            read_record(&flipped, 0, Layout::Checked),
            Err(Damage::ChecksumMismatch { .. })
        ));
        let mut head = r.clone();
        head[20] ^= 1;
        assert!(matches!(
            read_record(&head, 0, Layout::Checked),
            Err(Damage::HeadChecksumMismatch { .. })
        ));
        let mut flags = r.clone();
        flags[23] = 0x80;
        let crc = crc32c::crc32c(&flags[..24]);
        flags[24..28].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            read_record(&flags, 0, Layout::Checked),
            Err(Damage::UnknownRecordFlags { flags: 0x80 })
        ));
        let tomb = record(1, b"x", FLAG_TOMBSTONE);
        assert!(matches!(
            read_record(&tomb, 0, Layout::Checked),
            Err(Damage::MalformedTombstone { len: 1 })
        ));
    }

    #[test]
    fn scan_tells_a_torn_tail_from_damage_followed_by_valid_records() {
        let a = record(1, b"first", 0);
        let b = record(2, b"second", 0);
        let whole = [a.clone(), b.clone()].concat();
        let torn = &whole[..whole.len() - 3];
        assert!(matches!(
            scan(torn, 0, Layout::Checked, |_| {}),
            ScanEnd::TornTail { offset, .. } if offset == a.len() as u64
        ));
        let mut corrupt = whole.clone();
        corrupt[30] ^= 0xff;
        assert_eq!(
            scan(&corrupt, 0, Layout::Checked, |_| {}),
            ScanEnd::Corrupt {
                offset: 0,
                damage: read_record(&corrupt, 0, Layout::Checked).unwrap_err(),
                next_valid: a.len() as u64
            }
        );
        let mut ids = Vec::new();
        assert_eq!(
            scan(&whole, 0, Layout::Checked, |f| ids.push(f.id)),
            ScanEnd::Clean
        );
        assert_eq!(ids, [Uuid::from_u128(1), Uuid::from_u128(2)]);
    }

    #[test]
    fn header_problems_are_told_apart() {
        assert_eq!(check_header(&header()), Ok(()));
        assert_eq!(check_header(&[]), Err(HeaderProblem::Empty));
        assert_eq!(
            check_header(&header()[..5]),
            Err(HeaderProblem::Truncated { len: 5 })
        );
        assert_eq!(
            check_header(b"NOTASTOREFILE..."),
            Err(HeaderProblem::BadMagic)
        );
        let mut v1 = header();
        v1[8] = 1;
        assert_eq!(
            check_header(&v1),
            Err(HeaderProblem::UnknownVersion { version: 1 })
        );
        let mut flags = header();
        flags[12] = 1;
        assert_eq!(
            check_header(&flags),
            Err(HeaderProblem::UnknownFlags { flags: 1 })
        );
    }
}
