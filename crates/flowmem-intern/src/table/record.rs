//! The byte format of the pool's strings: each string is stored once as a *record*, its length plus
//! one (a LEB128 varint), its bytes, then its symbol less the first symbol of the chunk it starts in (a
//! `u16`, little-endian: a chunk of at most 64 KiB holds at most 21,845 records of three bytes or more;
//! a lookup reads it only once the string matched, with no branch); where the writer leaves the rest of a chunk
//! unused it writes a *gap*: a zero byte (which no record starts with: its first varint is at least
//! one) and the position of the next record (`u32`, little-endian). A chunk always has room left for a gap
//! after its last record.
//!
//! Writing is for the writer, under the pool's lock, into bytes nobody reads yet; reading is for
//! anyone who found a published record or walked to it from one.

use std::{ptr, slice, str};

/// The first byte of a gap.
const GAP: u8 = 0;
/// Bytes of a gap: the marker and the next record's position.
pub(super) const GAP_LEN: u32 = 5;

/// Bytes of the LEB128 varint of `n`.
pub(super) fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Bytes of a record's symbol (less its chunk's first).
const DELTA_LEN: usize = 2;

/// Bytes of the record of a string of `len` bytes.
pub(super) fn record_len(len: usize) -> usize {
    varint_len(len + 1) + len + DELTA_LEN
}

/// A published record, read from its start.
pub(super) struct Record<'a> {
    /// Its first byte.
    start: *const u8,
    /// Bytes of its length's varint.
    head: usize,
    /// Its string.
    pub(super) text: &'a str,
}

impl Record<'_> {
    /// The address of its symbol (less its chunk's first), after the text.
    fn tail(&self) -> *const u8 {
        self.start.wrapping_add(self.head + self.text.len())
    }

    /// Its symbol less its chunk's first symbol.
    #[inline(always)]
    pub(super) fn delta(&self) -> u32 {
        // SAFETY: the record was written whole before it was published (`read_record`'s promise): its
        // symbol follows the text, never written again.
        let bytes = unsafe { ptr::read_unaligned(self.tail().cast::<[u8; DELTA_LEN]>()) };
        u16::from_le_bytes(bytes).into()
    }

    /// Its bytes, all told: where the next record (or a gap) starts.
    pub(super) fn len(&self) -> usize {
        self.head + self.text.len() + DELTA_LEN
    }
}

/// What a reader walking the chunks finds at the offset of a record or a gap.
pub(super) enum Entry<'a> {
    Record(Record<'a>),
    /// Unused bytes to a chunk's end; the next record is at this position.
    Gap(u32),
}

/// Writes `n` as a LEB128 varint at `p`; returns the byte after it.
///
/// # Safety
///
/// `varint_len(n)` bytes from `p` are writable and read by nobody yet.
unsafe fn write_varint(mut p: *mut u8, mut n: usize) -> *mut u8 {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        // SAFETY: within the `varint_len(n)` bytes the caller gave.
        unsafe {
            *p = if n == 0 { byte } else { byte | 0x80 };
            p = p.add(1);
        }
        if n == 0 {
            return p;
        }
    }
}

/// Reads the LEB128 varint at `p`: its value and its bytes.
///
/// # Safety
///
/// A varint written by [`write_varint`] is at `p`, and its bytes are never written again.
#[inline(always)]
unsafe fn read_varint(p: *const u8) -> (usize, usize) {
    // SAFETY: the varint's first byte.
    let first = unsafe { *p };
    if first < 0x80 {
        return (first.into(), 1);
    }
    let mut value = usize::from(first & 0x7f);
    let mut at = 1;
    loop {
        // SAFETY: the first byte had its continuation bit set: the varint goes on.
        let b = unsafe { *p.add(at) };
        value |= usize::from(b & 0x7f) << (7 * at);
        at += 1;
        if b & 0x80 == 0 {
            return (value, at);
        }
    }
}

/// Writes the record of `s`, whose symbol is `delta` past its chunk's first, at `p`.
///
/// # Safety
///
/// [`record_len`]`(s.len())` bytes from `p` are writable, inside one allocation, and read by
/// nobody until the record is published (a release store the reader acquires).
pub(super) unsafe fn write_record(p: *mut u8, delta: u16, s: &str) {
    // SAFETY: the record's bytes, as the caller promised: the length, the string (which cannot overlap
    // the pool's own chunk), then the symbol.
    unsafe {
        let p = write_varint(p, s.len() + 1);
        ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        ptr::write_unaligned(
            p.add(s.len()).cast::<[u8; DELTA_LEN]>(),
            delta.to_le_bytes(),
        );
    }
}

/// Writes a gap at `p`, leading to the record at position `next`.
///
/// # Safety
///
/// [`GAP_LEN`] bytes from `p` are writable, inside one allocation, and read by nobody until a record
/// after them is published.
pub(super) unsafe fn write_gap(p: *mut u8, next: u32) {
    // SAFETY: as the caller promised.
    unsafe {
        *p = GAP;
        ptr::write_unaligned(p.add(1).cast::<[u8; 4]>(), next.to_le_bytes());
    }
}

/// The record at `p`.
///
/// # Safety
///
/// `p` is the address of a published record: its bytes are never written again and live as long as
/// `'a`.
#[inline(always)]
pub(super) unsafe fn read_record<'a>(p: *const u8) -> Record<'a> {
    // SAFETY: a record: its length's varint, then its bytes, a `&str`'s, written once.
    unsafe {
        let (len, head) = read_varint(p);
        let text = str::from_utf8_unchecked(slice::from_raw_parts(p.add(head), len - 1));
        Record {
            start: p,
            head,
            text,
        }
    }
}

/// The record or gap at `p`.
///
/// # Safety
///
/// `p` is the address of a published record, or of a gap before a published record; such bytes are
/// never written again and live as long as `'a`.
#[inline(always)]
pub(super) unsafe fn read<'a>(p: *const u8) -> Entry<'a> {
    // SAFETY: a record or a gap starts at `p`, as the caller promised.
    if unsafe { *p } == GAP {
        // SAFETY: a gap's position follows its marker.
        let next = unsafe { ptr::read_unaligned(p.add(1).cast::<[u8; 4]>()) };
        Entry::Gap(u32::from_le_bytes(next))
    } else {
        // SAFETY: not a gap: a record, as the caller promised.
        Entry::Record(unsafe { read_record(p) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_take_seven_bits_a_byte() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(1 << 14), 3);
        assert_eq!(varint_len(u32::MAX as usize), 5);
    }

    #[test]
    fn records_and_gaps_read_back_as_written() {
        let mut buf = vec![0u8; 4096];
        let cases: Vec<(u16, String)> = [0, 1, 126, 127, 128, 16_383, 16_384, u16::MAX]
            .into_iter()
            .zip([
                "",
                "a",
                "ab",
                "x".repeat(127).as_str(),
                "é",
                "name",
                "y".repeat(200).as_str(),
                "z",
            ])
            .map(|(d, s)| (d, s.to_owned()))
            .collect();
        for (delta, s) in &cases {
            let p = buf.as_mut_ptr();
            // SAFETY: the buffer holds any of these records (at most 2 + 200 + 2 bytes).
            unsafe { write_record(p, *delta, s) };
            // SAFETY: a record was just written there.
            match unsafe { read(p) } {
                Entry::Record(r) => {
                    assert_eq!(
                        (r.delta(), r.text, r.len()),
                        (u32::from(*delta), s.as_str(), record_len(s.len()))
                    );
                }
                Entry::Gap(_) => panic!("record {delta} {s:?} read as a gap"),
            }
        }
        // SAFETY: the buffer holds a gap.
        unsafe { write_gap(buf.as_mut_ptr(), 0x0102_0304) };
        // SAFETY: a gap was just written there.
        let entry = unsafe { read(buf.as_ptr()) };
        assert!(matches!(entry, Entry::Gap(0x0102_0304)));
    }
}
