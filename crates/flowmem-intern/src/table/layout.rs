//! Where things are in a pool's storage: the chunk of a record's offset, the position that names a
//! record by its chunk and its place in it, and the anchor segment of a symbol. Pure arithmetic, tested
//! exhaustively near the boundaries.

/// Chunks doubling from 256 bytes before the pages.
pub(super) const SMALL_CHUNKS: u32 = 9;
/// Size of a page, the chunk size after the small chunks.
pub(super) const PAGE: u32 = 64 * 1024;
/// Offset of the first page.
pub(super) const SMALL_END: u32 = 256 * ((1 << SMALL_CHUNKS) - 1);
/// Chunks reached without the directory (the nine small ones and 55 pages: the first 3.7 MB of
/// strings).
pub(super) const NEAR: usize = 64;
/// Chunk pointers per directory leaf.
pub(super) const LEAF: usize = 256;
/// Chunks a [position](position_of) can name: its chunk takes 16 bits. Offsets stop where chunk
/// `MAX_CHUNKS` would start (4 GiB less half a megabyte).
pub(super) const MAX_CHUNKS: usize = 0xffff;
/// Bits of a position that hold the offset in its chunk (a chunk is at most 64 KiB).
const POSITION_BITS: u32 = 16;
/// Directory leaves: enough for every offset below `u32::MAX`.
pub(super) const LEAVES: usize = ((u32::MAX - SMALL_END) / PAGE) as usize / LEAF + 2;
/// Symbols per anchor: the position of every eighth symbol's record is kept, and a resolve walks at most
/// seven records on from it.
pub(super) const ANCHOR_EVERY: usize = 8;
/// Entries of each of the first anchor segments.
pub(super) const ANCHOR_BASE: usize = 64;
/// Anchor segments of one size; the next ones are twice as long.
pub(super) const ANCHOR_STEPS: usize = 4;
/// Anchor segments: enough for `u32::MAX` anchors (more than the symbols need).
pub(super) const ANCHOR_SEGMENTS: usize = 25 * ANCHOR_STEPS;
/// Entries of the segments of one size, for the first size (`PER_SIZE << k` for the `k`-th).
const PER_SIZE: usize = ANCHOR_BASE * ANCHOR_STEPS;

/// The chunk of `offset` and the offset where that chunk starts.
#[inline]
pub(super) fn chunk_of(offset: u32) -> (usize, u32) {
    let k = chunk_index(offset);
    (k, chunk_start(k))
}

/// The chunk of `offset`, without a branch (look-ups meet offsets either side of the first page in any
/// order, and a mispredicted branch costs more than computing both).
#[inline]
pub(super) fn chunk_index(offset: u32) -> usize {
    let small = 31 - (offset / 256 + 1).leading_zeros();
    let page = SMALL_CHUNKS.wrapping_add(offset.wrapping_sub(SMALL_END) / PAGE);
    let mask = 0u32.wrapping_sub(u32::from(offset < SMALL_END));
    ((small & mask) | (page & !mask)) as usize
}

/// The *position* of `offset`, which must lie below [`chunk_start`]`(MAX_CHUNKS)`: its chunk's index in
/// the high 16 bits, its offset in that chunk in the low 16 (a chunk holds at most 64 KiB, and the
/// record of a string longer than a chunk starts at the first of its own pages). A look-up turns a
/// position into an address with a shift, a mask and the chunk's address, where an offset needs the
/// chunk's index computed from the chunk sizes first.
#[inline]
pub(super) fn position_of(offset: u32) -> u32 {
    let (k, start) = chunk_of(offset);
    debug_assert!(k < MAX_CHUNKS, "offset {offset} is past the last chunk");
    ((k as u32) << POSITION_BITS) | (offset - start)
}

/// The chunk of `position` and the offset in that chunk.
#[inline]
pub(super) fn split_position(position: u32) -> (usize, usize) {
    (
        (position >> POSITION_BITS) as usize,
        (position & ((1 << POSITION_BITS) - 1)) as usize,
    )
}

/// The offset where chunk `k` starts.
pub(super) fn chunk_start(k: usize) -> u32 {
    if (k as u32) < SMALL_CHUNKS {
        256 * ((1 << k) - 1)
    } else {
        SMALL_END + (k as u32 - SMALL_CHUNKS) * PAGE
    }
}

pub(super) fn chunk_size(k: usize) -> u32 {
    if (k as u32) < SMALL_CHUNKS {
        256 << k
    } else {
        PAGE
    }
}

/// The anchor segment of anchor `index` and its place in it.
#[cfg(test)]
pub(super) fn anchor_of(index: usize) -> (usize, usize) {
    let j = anchor_segment(index);
    (j, index - anchor_start(j))
}

/// The anchor segment of anchor `index`, in a few instructions and no branch: the segments of one size
/// hold `ANCHOR_STEPS` of them, so the top bit of `index` shifted by the first size's entries names the
/// size, and the next two bits the segment of that size.
#[inline]
pub(super) fn anchor_segment(index: usize) -> usize {
    let x = index + PER_SIZE;
    let top = (usize::BITS - 1 - x.leading_zeros()) as usize;
    let size = top - PER_SIZE.trailing_zeros() as usize;
    size * ANCHOR_STEPS
        + ((x >> (top - ANCHOR_STEPS.trailing_zeros() as usize)) & (ANCHOR_STEPS - 1))
}

/// The first anchor of anchor segment `j`.
pub(super) fn anchor_start(j: usize) -> usize {
    let size = j / ANCHOR_STEPS;
    PER_SIZE * ((1 << size) - 1) + (j % ANCHOR_STEPS) * anchor_len(j)
}

/// Entries of anchor segment `j`.
pub(super) fn anchor_len(j: usize) -> usize {
    ANCHOR_BASE << (j / ANCHOR_STEPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_their_chunks() {
        assert_eq!(chunk_of(0), (0, 0));
        assert_eq!(chunk_of(255), (0, 0));
        assert_eq!(chunk_of(256), (1, 256));
        assert_eq!(chunk_of(767), (1, 256));
        assert_eq!(chunk_of(768), (2, 768));
        assert_eq!(chunk_of(SMALL_END - 1), (8, SMALL_END - PAGE));
        assert_eq!(chunk_of(SMALL_END), (9, SMALL_END));
        assert_eq!(chunk_of(SMALL_END + PAGE), (10, SMALL_END + PAGE));
        assert!(chunk_of(u32::MAX - 1).0 / LEAF < LEAVES);
        for k in 0..12 {
            let start: u32 = (0..k).map(chunk_size).sum();
            assert_eq!(chunk_start(k), start);
            assert_eq!(chunk_of(start), (k, start));
            assert_eq!(chunk_of(start + chunk_size(k) - 1).0, k);
        }
        for offset in (0..SMALL_END + 3 * PAGE).step_by(97).chain([
            SMALL_END - 1,
            SMALL_END,
            u32::MAX - 1,
            u32::MAX,
        ]) {
            assert_eq!(chunk_index(offset), chunk_of(offset).0, "offset {offset}");
        }
    }

    #[test]
    fn positions_name_a_chunk_and_an_offset_in_it() {
        assert_eq!(position_of(0), 0);
        assert_eq!(position_of(255), 255);
        assert_eq!(position_of(256), 1 << 16);
        assert_eq!(position_of(SMALL_END - 1), (8 << 16) | (PAGE - 1));
        assert_eq!(position_of(SMALL_END + PAGE + 7), (10 << 16) | 7);
        let last = chunk_start(MAX_CHUNKS) - 1;
        assert_eq!(
            position_of(last),
            ((MAX_CHUNKS as u32 - 1) << 16) | (PAGE - 1)
        );
        // Room for the slots' + 1.
        assert!(position_of(last) < u32::MAX);
        for offset in (0..SMALL_END + 3 * PAGE).step_by(89).chain([
            SMALL_END - 1,
            SMALL_END,
            last - PAGE,
            last,
        ]) {
            let (k, at) = split_position(position_of(offset));
            assert_eq!(k, chunk_index(offset), "offset {offset}");
            assert_eq!(chunk_start(k) + at as u32, offset, "offset {offset}");
        }
    }

    #[test]
    fn anchors_map_to_their_segments() {
        assert_eq!(anchor_of(0), (0, 0));
        assert_eq!(anchor_of(63), (0, 63));
        assert_eq!(anchor_of(64), (1, 0));
        assert_eq!(anchor_of(255), (3, 63));
        assert_eq!(anchor_of(256), (4, 0));
        assert_eq!(anchor_of(256 + 127), (4, 127));
        assert_eq!(anchor_of(256 + 128), (5, 0));
        assert_eq!(anchor_of(256 + 512), (8, 0));
        assert!(anchor_of(u32::MAX as usize).0 < ANCHOR_SEGMENTS);
        for index in [1 << 20, (1 << 31) + 12_345, u32::MAX as usize - 1] {
            let (j, i) = anchor_of(index);
            assert_eq!(anchor_segment(index), j, "index {index}");
            assert_eq!(anchor_start(j) + i, index, "index {index}");
        }
        // Every index has its own place, segment after segment.
        let mut expected = (0, 0);
        for index in 0..20_000 {
            assert_eq!(anchor_of(index), expected, "index {index}");
            assert_eq!(anchor_segment(index), expected.0, "index {index}");
            assert_eq!(
                anchor_start(expected.0) + expected.1,
                index,
                "index {index}"
            );
            expected.1 += 1;
            if expected.1 == anchor_len(expected.0) {
                expected = (expected.0 + 1, 0);
            }
        }
    }
}
