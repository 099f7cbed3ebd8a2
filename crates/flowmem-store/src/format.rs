//! The bytes on disk: the file header, the record layout, and the scan that validates a file and finds its
//! records. `docs/store.md` describes the same layout byte by byte.
//!
//! ```text
//! file header (16 bytes)  magic "FLOWMEMS" | version u32 LE = 1 | header flags u32 LE = 0
//! record                  id [16] | word u64 LE | payload [n] | crc32c u32 LE
//!                         word = n | flags << 56   (flags: 1 tombstone, 2 zstd)
//!                         crc32c over id, word and payload
//! bare record             id [16] | n u64 LE | payload [n]        (no file header, no checksum)
//! ```

use std::fmt;

use uuid::Uuid;

/// The first 8 bytes of a store file.
pub const MAGIC: [u8; 8] = *b"FLOWMEMS";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the file header.
pub const HEADER_LEN: u64 = 16;
/// Bytes of a record before its payload: id and word.
pub const RECORD_HEAD: u64 = 24;
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
    /// Fewer bytes than a record header remain.
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
                write!(f, "truncated record header ({available} of 24 bytes)")
            }
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

/// The head of a record (id and word) for a payload of `len` bytes with `flags`, and the checksum state
/// after it (to be continued over the payload).
pub(crate) fn record_head(id: &Uuid, len: u64, flags: u8) -> ([u8; RECORD_HEAD as usize], u32) {
    debug_assert!(len <= MAX_PAYLOAD);
    let mut head = [0u8; RECORD_HEAD as usize];
    head[..16].copy_from_slice(id.as_bytes());
    head[16..].copy_from_slice(&(len | (u64::from(flags) << 56)).to_le_bytes());
    let crc = crc32c::crc32c(&head);
    (head, crc)
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
pub(crate) fn read_record(bytes: &[u8], pos: u64, layout: Layout) -> Result<(Found, u64), Damage> {
    let end = bytes.len() as u64;
    let available = end - pos;
    if available < RECORD_HEAD {
        return Err(Damage::TruncatedRecordHeader { available });
    }
    let p = pos as usize;
    let id = Uuid::from_bytes(bytes[p..p + 16].try_into().expect("16 bytes"));
    let word = u64::from_le_bytes(bytes[p + 16..p + 24].try_into().expect("8 bytes"));
    let (len, flags, tail) = match layout {
        Layout::Checked => (word & MAX_PAYLOAD, (word >> 56) as u8, RECORD_TAIL),
        Layout::Bare => (word, 0, 0),
    };
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Damage::UnknownRecordFlags { flags });
    }
    let record_end = len
        .checked_add(RECORD_HEAD + tail)
        .and_then(|n| n.checked_add(pos))
        .filter(|e| *e <= end)
        .ok_or(Damage::LengthPastEnd { len, available })?;
    if flags & FLAG_TOMBSTONE != 0 && len != 0 {
        return Err(Damage::MalformedTombstone { len });
    }
    let payload = pos + RECORD_HEAD;
    if layout == Layout::Checked {
        let crc_at = (payload + len) as usize;
        let stored = u32::from_le_bytes(bytes[crc_at..crc_at + 4].try_into().expect("4 bytes"));
        let computed = crc32c::crc32c(&bytes[p..crc_at]);
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
                return match next_valid_record(bytes, pos + 1) {
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

/// The first offset at or after `from` where a whole, valid checked record starts, if any. Only called on
/// damage; cheap in the usual case (most offsets fail on the flag byte or the length at once).
fn next_valid_record(bytes: &[u8], from: u64) -> Option<u64> {
    let end = bytes.len() as u64;
    (from..end.saturating_sub(RECORD_HEAD + RECORD_TAIL - 1))
        .find(|&p| read_record(bytes, p, Layout::Checked).is_ok())
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
        flipped[26] ^= 1;
        assert!(matches!(
            read_record(&flipped, 0, Layout::Checked),
            Err(Damage::ChecksumMismatch { .. })
        ));
        let mut flags = r.clone();
        flags[23] = 0x80;
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
        let mut v2 = header();
        v2[8] = 2;
        assert_eq!(
            check_header(&v2),
            Err(HeaderProblem::UnknownVersion { version: 2 })
        );
        let mut flags = header();
        flags[12] = 1;
        assert_eq!(
            check_header(&flags),
            Err(HeaderProblem::UnknownFlags { flags: 1 })
        );
    }
}
