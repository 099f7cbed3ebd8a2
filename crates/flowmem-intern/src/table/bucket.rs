//! The table of a pool: buckets of tagged slots in groups, and the directory that finds a hash's
//! bucket. What a look-up reads and what the writer places; [`Storage`] splits.

use std::{
    alloc::{Layout, alloc, dealloc},
    marker::PhantomData,
    sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*},
};

use super::Storage;

/// Slots of a bucket.
pub(super) const BUCKET_SLOTS: usize = 256;
/// Tags read at once: one `u64` of eight tag bytes.
pub(super) const GROUP: usize = 8;
/// Groups of a bucket.
pub(super) const GROUPS: usize = BUCKET_SLOTS / GROUP;
/// Each byte of a `u64` set to one.
pub(super) const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// The low seven bits of each byte of a `u64`.
pub(super) const LOW7: u64 = ONES * 0x7f;
/// A bucket splits rather than take more than this many symbols.
pub(super) const SPLIT_AT: usize = BUCKET_SLOTS * 7 / 8;
/// Most directory bits (a directory of 2^28 buckets holds far more than 2^32 symbols).
pub(super) const MAX_DEPTH: u32 = 28;

/// The tag of a hash: seven bits the directory and the first group do not use, and the top bit set (0
/// marks an empty slot).
#[inline]
pub(super) fn tag_of(hash: u64) -> u8 {
    0x80 | ((hash >> 8) as u8 & 0x7f)
}

/// The first group a hash probes.
#[inline]
pub(super) fn group_of(hash: u64) -> usize {
    hash as usize % GROUPS
}

/// A bit (the top bit of the byte) for each byte of `word` that is zero, exactly.
#[inline]
pub(super) fn zero_bytes(word: u64) -> u64 {
    !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7)
}

/// The place in its group of the byte a bit of [`zero_bytes`] marks.
#[inline]
pub(super) fn byte_index(bit: u64) -> usize {
    // Tags are read with `from_ne_bytes`: byte `i` of the group is the `i`-th in memory order.
    if cfg!(target_endian = "little") {
        bit.trailing_zeros() as usize / 8
    } else {
        bit.leading_zeros() as usize / 8
    }
}

/// The slots of a group whose tag is `tag` (bit `i` for slot `i`), and whether the group has an empty
/// slot (which ends a look-up). On x86-64 two SSE2 byte compares (part of the architecture's baseline);
/// elsewhere the same from [`zero_bytes`].
#[inline]
pub(super) fn group_match(tags: u64, tag: u8) -> (u32, bool) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_cvtsi64_si128, _mm_movemask_epi8, _mm_set1_epi8, _mm_setzero_si128,
        };
        // SAFETY: these intrinsics need SSE2, which the build enables (the cfg above): register
        // arithmetic only, no memory access. Byte `i` of `tags` in memory order is lane `i` (x86-64 is
        // little-endian).
        let (hits, empty) = unsafe {
            let lanes = _mm_cvtsi64_si128(tags as i64);
            (
                _mm_movemask_epi8(_mm_cmpeq_epi8(lanes, _mm_set1_epi8(tag as i8))) as u32,
                _mm_movemask_epi8(_mm_cmpeq_epi8(lanes, _mm_setzero_si128())) as u32,
            )
        };
        // The upper eight lanes are zero: empty, never a tag (a tag has its top bit set).
        (hits & 0xff, empty & 0xff != 0)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    group_match_portable(tags, tag)
}

/// [`group_match`] without SIMD: the marks of [`zero_bytes`] (bit 7 of each byte), in memory order,
/// gathered into the low eight bits by one multiplication.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline]
fn group_match_portable(tags: u64, tag: u8) -> (u32, bool) {
    let gather =
        |marks: u64| ((marks.to_le() >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
    (
        gather(zero_bytes(tags ^ (ONES * u64::from(tag)))),
        zero_bytes(tags) != 0,
    )
}

/// [`GROUP`] slots and their tags, side by side: a look-up that finds its string in the group it
/// starts from reads one cache line of the bucket, or two where the group straddles lines (40 bytes).
#[repr(C)]
pub(super) struct Group {
    /// Slot `i`'s tag is byte `i` (memory order); written after the slot.
    pub(super) tags: AtomicU64,
    /// Each a symbol + 1, or 0 where empty.
    pub(super) slots: [AtomicU32; GROUP],
}

/// Up to [`SPLIT_AT`] symbols whose hashes share their top `depth` bits.
#[repr(C)]
pub(super) struct Bucket {
    pub(super) groups: [Group; GROUPS],
    /// Its local depth (only the writer reads and writes it).
    pub(super) depth: AtomicU32,
    /// Symbols it holds (only the writer reads and writes it).
    pub(super) len: AtomicU32,
}

impl Bucket {
    pub(super) fn new(depth: u32) -> Box<Bucket> {
        Box::new(Bucket {
            groups: [const {
                Group {
                    tags: AtomicU64::new(0),
                    slots: [const { AtomicU32::new(0) }; GROUP],
                }
            }; GROUPS],
            depth: AtomicU32::new(depth),
            len: AtomicU32::new(0),
        })
    }

    /// Empties every slot (the writer, rebuilding it in a split): tags first, so no lookup takes a
    /// cleared slot for a tagged one.
    pub(super) fn clear(&self) {
        for group in &self.groups {
            group.tags.store(0, Relaxed);
        }
        for slot in self.groups.iter().flat_map(|g| &g.slots) {
            slot.store(0, Relaxed);
        }
    }
}

/// Alignment of a bucket directory: the low bits of its address, zero, hold its shift instead. Also its
/// smallest size, so that the word (its address plus the shift, at most 63) points inside it: a leak
/// checker (valgrind, LeakSanitizer) that finds no pointer into a block calls it lost.
pub(super) const DIRECTORY_ALIGN: usize = 64;
/// The bits of a directory's word that hold its shift, `63 - depth`: what a hash less its lowest bit
/// is shifted right by to leave its top `depth` bits.
pub(super) const SHIFT_MASK: usize = DIRECTORY_ALIGN - 1;
const _: () = assert!(MAX_DEPTH < 64);

/// The bucket directory: `2^depth` bucket pointers, indexed by a hash's top `depth` bits, in one
/// allocation whose address carries the shift that leaves those bits in its low bits, so that one load
/// gives a look-up both (and the shift needs no arithmetic first).
/// A copyable view of the word [`Storage::directory`] holds; it lives as long as the storage.
#[derive(Clone, Copy)]
pub(super) struct Directory<'s> {
    word: *mut AtomicPtr<Bucket>,
    storage: PhantomData<&'s Storage>,
}

impl<'s> Directory<'s> {
    /// A new directory of `2^depth` entries, entry `i` pointing at `bucket(i)`, not yet published.
    pub(super) fn allocate(
        depth: u32,
        bucket: impl Fn(usize) -> *mut Bucket,
    ) -> *mut AtomicPtr<Bucket> {
        let layout = Directory::layout(depth);
        // SAFETY: the layout is not zero-sized (one pointer at least).
        let array = unsafe { alloc(layout) }.cast::<AtomicPtr<Bucket>>();
        if array.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        for i in 0..1usize << depth {
            // SAFETY: entry `i` is inside the allocation; written once, before anyone can read it.
            unsafe { array.add(i).write(AtomicPtr::new(bucket(i))) };
        }
        array.map_addr(|a| a | (63 - depth) as usize)
    }

    pub(super) fn layout(depth: u32) -> Layout {
        Layout::from_size_align(
            ((1usize << depth) * size_of::<AtomicPtr<Bucket>>()).max(DIRECTORY_ALIGN),
            DIRECTORY_ALIGN,
        )
        .expect("a directory of at most 2^MAX_DEPTH entries has a layout")
    }

    /// Heap bytes of a directory of `2^depth` entries.
    pub(super) fn bytes(depth: u32) -> usize {
        Directory::layout(depth).size()
    }

    #[inline]
    pub(super) fn depth(self) -> u32 {
        63 - self.shift()
    }

    /// `63 - depth`.
    #[inline]
    fn shift(self) -> u32 {
        (self.word.addr() & SHIFT_MASK) as u32
    }

    #[inline]
    pub(super) fn array(self) -> *mut AtomicPtr<Bucket> {
        self.word.map_addr(|a| a & !SHIFT_MASK)
    }

    /// The entry of `hash`.
    #[inline]
    pub(super) fn entry(self, hash: u64) -> &'s AtomicPtr<Bucket> {
        // The top `depth` bits; none for depth 0 (the first shift keeps the second one below 64).
        let i = ((hash >> 1) >> self.shift()) as usize;
        // SAFETY: `i < 2^depth`: an entry of the directory, which lives as long as the storage.
        unsafe { &*self.array().add(i) }
    }

    /// Every entry, in order.
    pub(super) fn entries(self) -> &'s [AtomicPtr<Bucket>] {
        // SAFETY: `2^depth` entries, initialised by `allocate`; the directory lives as long as the storage.
        unsafe { std::slice::from_raw_parts(self.array(), 1 << self.depth()) }
    }

    /// The directory of `word` (from [`Directory::allocate`]), which must live as long as `'s`.
    pub(super) fn at(word: *mut AtomicPtr<Bucket>) -> Directory<'s> {
        Directory {
            word,
            storage: PhantomData,
        }
    }

    /// Frees the directory of `word`.
    ///
    /// # Safety
    ///
    /// `word` came from [`Directory::allocate`], is freed once, and nobody reads it any more.
    pub(super) unsafe fn free(word: *mut AtomicPtr<Bucket>) {
        let directory = Directory::at(word);
        // SAFETY: allocated by `allocate` with this layout (the depth is in the word).
        unsafe {
            dealloc(
                directory.array().cast(),
                Directory::layout(directory.depth()),
            )
        };
    }
}

/// Puts symbol `index` in the first free slot of the first group with one from `hash`'s group on (the
/// bucket has one: it splits before it fills), then its tag.
pub(super) fn place(bucket: &Bucket, hash: u64, index: u32) {
    let mut g = group_of(hash);
    loop {
        let group = &bucket.groups[g];
        // Only the writer stores tags: what it loads is what it last stored.
        let tags = group.tags.load(Relaxed);
        let empty = zero_bytes(tags);
        if empty != 0 {
            let byte = byte_index(empty);
            group.slots[byte].store(index + 1, Release);
            let mut bytes = tags.to_ne_bytes();
            bytes[byte] = tag_of(hash);
            // Release: whoever sees the tag sees the slot (and the string it names).
            group.tags.store(u64::from_ne_bytes(bytes), Release);
            return;
        }
        g = (g + 1) % GROUPS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_word_points_inside_its_allocation_and_gives_its_depth_back() {
        let bucket = std::ptr::dangling_mut::<Bucket>();
        for depth in 0..12 {
            let word = Directory::allocate(depth, |_| bucket);
            let directory = Directory::at(word);
            assert_eq!(directory.depth(), depth);
            assert_eq!(directory.entries().len(), 1 << depth);
            // A leak checker finds the allocation from the word alone only if it points inside it.
            let inside = word.addr() - directory.array().addr();
            assert!(
                inside < Directory::bytes(depth),
                "depth {depth}: word {inside} bytes in, allocation {} bytes",
                Directory::bytes(depth)
            );
            for hash in [0, u64::MAX, 0x8000_0000_0000_0000, 0x1234_5678_9abc_def0] {
                let i = if depth == 0 { 0 } else { hash >> (64 - depth) } as usize;
                assert!(std::ptr::eq(directory.entry(hash), &directory.entries()[i]));
            }
            // SAFETY: allocated above, freed once, read by nobody after.
            unsafe { Directory::free(word) };
        }
    }

    #[test]
    fn group_match_finds_exactly_the_tag_and_the_empty_slots() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Each byte a tag (top bit set, seven random bits) or, one time in four, empty.
            let bytes = state
                .to_ne_bytes()
                .map(|b| if b & 3 == 0 { 0 } else { 0x80 | (b & 0x87) });
            let tags = u64::from_ne_bytes(bytes);
            for tag in [0x80, 0x81, 0x85, 0x87, bytes[3].max(0x80)] {
                let expected: u32 = (0..8).filter(|&i| bytes[i] == tag).map(|i| 1 << i).sum();
                let empty = bytes.contains(&0);
                assert_eq!(
                    group_match(tags, tag),
                    (expected, empty),
                    "{tags:#018x} {tag:#x}"
                );
                assert_eq!(
                    group_match_portable(tags, tag),
                    (expected, empty),
                    "{tags:#018x} {tag:#x}"
                );
            }
        }
    }

    #[test]
    fn zero_bytes_marks_exactly_the_zero_bytes() {
        for word in [
            0u64,
            u64::MAX,
            0x0100,
            0x8000_0000_0000_0080,
            0x0001_0000_8000_0100,
            0x7f00_ff01_0080_0001,
        ] {
            let expected = word
                .to_ne_bytes()
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == 0)
                .fold(0u64, |m, (i, _)| {
                    let mut bytes = [0u8; 8];
                    bytes[i] = 0x80;
                    m | u64::from_ne_bytes(bytes)
                });
            assert_eq!(zero_bytes(word), expected, "{word:#018x}");
        }
        let mut bytes = [7u8; 8];
        bytes[5] = 0;
        assert_eq!(byte_index(zero_bytes(u64::from_ne_bytes(bytes))), 5);
    }
}
