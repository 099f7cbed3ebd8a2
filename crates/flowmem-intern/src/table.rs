//! The storage of a [`StringPool`](crate::StringPool): one byte arena, a span per symbol, a table of
//! symbols. Lookups and resolves take no lock; new strings are added under one mutex.
//!
//! - **Bytes.** Each string is stored once, as its length (LEB128) then its bytes, in chunks that never
//!   move: nine chunks doubling from 256 bytes to 64 KiB, then 64 KiB pages (a longer string gets pages
//!   of its own, contiguous). A string's *offset* is its place in that sequence; a two-level directory
//!   maps an offset to its chunk.
//! - **Spans.** Symbol `i` (dense, in interning order) maps to its string's offset: a `u32` in segments
//!   that never move, four of 64 entries, then four of 128, and so on (so at most a quarter of the last
//!   size is allocated ahead: doubling segments held up to twice what was used).
//! - **Table.** Extendible hashing: a directory indexed by a hash's top bits points to buckets of 256
//!   slots (1 KiB), each slot a symbol + 1 (0 is empty), with a tag byte per slot (seven bits of the
//!   hash and a set top bit; 0 is empty). A lookup reads the tags eight at a time, from the group the
//!   hash's low bits name on, and compares strings only where a tag matches (one in 128 slots that hold
//!   another string); a group with an empty tag ends it. A bucket seven-eighths full splits in two: a
//!   new bucket takes the entries whose next hash bit is set, and the old one is rebuilt in place.
//!   Buckets never move nor go away while the pool lives, so a lookup needs no guard; a split may hide a
//!   string from a lookup for its duration, so a lookup that finds nothing checks a sequence count the
//!   split bumps, and looks again if a split ran. Only the directory is replaced when it doubles; a
//!   replaced directory (an eighth of a byte per string) is kept until the pool drops, as lookups may
//!   still read it.
//!
//! A new string is written (bytes, then span, then slot, then the length) before it is published, with
//! release stores that lookups read with acquire loads, so a reader that finds a slot finds the whole
//! string. Every allocation goes through [`Storage::reserve`], which keeps the exact count of heap bytes
//! held and refuses what would take it past the pool's limit.

use std::{
    alloc::{Layout, alloc, dealloc},
    hash::BuildHasher,
    ptr,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*, fence},
    },
};

use crate::InternError;

/// Chunks doubling from 256 bytes before the pages.
const SMALL_CHUNKS: u32 = 9;
/// Size of a page, the chunk size after the small chunks.
const PAGE: u32 = 64 * 1024;
/// Offset of the first page.
const SMALL_END: u32 = 256 * ((1 << SMALL_CHUNKS) - 1);
/// Chunk pointers per directory leaf.
const LEAF: usize = 256;
/// Directory leaves: enough for every offset below `u32::MAX`.
const LEAVES: usize = ((u32::MAX - SMALL_END) / PAGE) as usize / LEAF + 2;
/// Entries of each of the first span segments.
const SPAN_BASE: usize = 64;
/// Span segments of one size; the next ones are twice as long.
const SPAN_STEPS: usize = 4;
/// Span segments: enough for `u32::MAX` symbols.
const SPAN_SEGMENTS: usize = 25 * SPAN_STEPS;
/// Slots of a bucket.
const BUCKET_SLOTS: usize = 256;
/// Tags read at once: one `u64` of eight tag bytes.
const GROUP: usize = 8;
/// Groups of a bucket.
const GROUPS: usize = BUCKET_SLOTS / GROUP;
/// Each byte of a `u64` set to one.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// The low seven bits of each byte of a `u64`.
const LOW7: u64 = ONES * 0x7f;
/// A bucket splits rather than take more than this many symbols.
const SPLIT_AT: usize = BUCKET_SLOTS * 7 / 8;
/// Most directory bits (a directory of 2^28 buckets holds far more than 2^32 symbols).
const MAX_DEPTH: u32 = 28;

/// The chunk of `offset` and the offset where that chunk starts.
#[inline]
fn chunk_of(offset: u32) -> (usize, u32) {
    if offset < SMALL_END {
        let k = 31 - (offset / 256 + 1).leading_zeros();
        (k as usize, 256 * ((1 << k) - 1))
    } else {
        let page = (offset - SMALL_END) / PAGE;
        ((SMALL_CHUNKS + page) as usize, SMALL_END + page * PAGE)
    }
}

fn chunk_size(k: usize) -> u32 {
    if (k as u32) < SMALL_CHUNKS {
        256 << k
    } else {
        PAGE
    }
}

/// The span segment of symbol `index` and its place in it.
#[inline]
fn span_of(index: usize) -> (usize, usize) {
    // The segments of one size hold `SPAN_STEPS` times that size: those of size `SPAN_BASE << k` hold
    // `PER_SIZE << k` entries.
    const PER_SIZE: usize = SPAN_BASE * SPAN_STEPS;
    let k = (usize::BITS - 1 - (index / PER_SIZE + 1).leading_zeros()) as usize;
    let within = index - PER_SIZE * ((1 << k) - 1);
    let shift = SPAN_BASE.trailing_zeros() as usize + k;
    (
        k * SPAN_STEPS + (within >> shift),
        within & ((1 << shift) - 1),
    )
}

/// Entries of span segment `j`.
fn span_len(j: usize) -> usize {
    SPAN_BASE << (j / SPAN_STEPS)
}

/// Bytes a `Vec` of capacity `cap` adds when it grows by one element of `elem` bytes (std doubles,
/// from at least 4 elements for element sizes up to 1 KiB).
fn vec_growth(cap: usize, elem: usize) -> usize {
    ((cap * 2).max(4) - cap) * elem
}

/// The tag of a hash: seven bits the directory and the first group do not use, and the top bit set (0
/// marks an empty slot).
#[inline]
fn tag_of(hash: u64) -> u8 {
    0x80 | ((hash >> 8) as u8 & 0x7f)
}

/// The first group a hash probes.
#[inline]
fn group_of(hash: u64) -> usize {
    hash as usize % GROUPS
}

/// A bit (the top bit of the byte) for each byte of `word` that is zero, exactly.
#[inline]
fn zero_bytes(word: u64) -> u64 {
    !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7)
}

/// The place in its group of the byte a bit of [`zero_bytes`] marks.
#[inline]
fn byte_index(bit: u64) -> usize {
    // Tags are read with `from_ne_bytes`: byte `i` of the group is the `i`-th in memory order.
    if cfg!(target_endian = "little") {
        bit.trailing_zeros() as usize / 8
    } else {
        bit.leading_zeros() as usize / 8
    }
}

fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Up to [`SPLIT_AT`] symbols whose hashes share their top `depth` bits.
struct Bucket {
    /// Its local depth (only the writer reads and writes it).
    depth: AtomicU32,
    /// Symbols it holds (only the writer reads and writes it).
    len: AtomicU32,
    /// Slot `i`'s tag is byte `i % GROUP` (memory order) of `tags[i / GROUP]`; written after the slot.
    tags: [AtomicU64; GROUPS],
    slots: [AtomicU32; BUCKET_SLOTS],
}

impl Bucket {
    fn new(depth: u32) -> Box<Bucket> {
        Box::new(Bucket {
            depth: AtomicU32::new(depth),
            len: AtomicU32::new(0),
            tags: [const { AtomicU64::new(0) }; GROUPS],
            slots: [const { AtomicU32::new(0) }; BUCKET_SLOTS],
        })
    }

    /// Empties every slot (the writer, rebuilding it in a split): tags first, so no lookup takes a
    /// cleared slot for a tagged one.
    fn clear(&self) {
        for group in &self.tags {
            group.store(0, Relaxed);
        }
        for slot in &self.slots {
            slot.store(0, Relaxed);
        }
    }
}

/// `2^depth` bucket pointers, indexed by a hash's top `depth` bits.
struct Directory {
    depth: u32,
    buckets: Box<[AtomicPtr<Bucket>]>,
}

impl Directory {
    #[inline]
    fn index(&self, hash: u64) -> usize {
        if self.depth == 0 {
            0
        } else {
            (hash >> (64 - self.depth)) as usize
        }
    }

    fn bytes(depth: u32) -> usize {
        size_of::<Directory>() + (1usize << depth) * size_of::<usize>()
    }
}

/// What only the writer (under the mutex) touches.
struct Writer {
    /// The next free offset.
    cursor: u32,
    /// Every allocation of chunks, to free on drop.
    owned: Vec<(*mut u8, Layout)>,
    /// Every bucket (the directories point at them; freed on drop).
    buckets: Vec<*mut Bucket>,
    /// Directories replaced by a bigger one: lookups may still read them, so they live until drop.
    retired: Vec<*mut Directory>,
}

/// The strings of a pool, its spans and its table.
pub(crate) struct Storage {
    /// Chunk pointers: `dir[k / LEAF][k % LEAF]`.
    dir: Box<[AtomicPtr<[AtomicPtr<u8>; LEAF]>]>,
    spans: [AtomicPtr<AtomicU32>; SPAN_SEGMENTS],
    directory: AtomicPtr<Directory>,
    /// Odd while a split moves symbols between buckets, bumped again when it is done: a lookup that
    /// found nothing trusts its miss only if no split ran meanwhile (a seqlock).
    splits: AtomicU64,
    /// Strings published (symbols below it resolve).
    len: AtomicUsize,
    /// Bytes of the strings themselves.
    string_bytes: AtomicUsize,
    /// Heap bytes held, exactly: chunks, chunk directory, span segments, buckets, bucket directories.
    memory: AtomicUsize,
    limit: Option<usize>,
    writer: Mutex<Writer>,
}

// SAFETY: the raw pointers in `Writer::owned` and the directory are owned by the storage and only freed
// in `Drop`; the chunks they point to are written only by the writer under the mutex, before the release
// store that publishes them, and read only after an acquire load that saw that store.
unsafe impl Send for Storage {}
// SAFETY: as for `Send`: shared access is to atomics, and to chunk bytes that are never written again
// once published.
unsafe impl Sync for Storage {}

impl Storage {
    pub(crate) fn new() -> Storage {
        let dir: Box<[AtomicPtr<[AtomicPtr<u8>; LEAF]>]> = (0..LEAVES)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        let bucket = Box::into_raw(Bucket::new(0));
        let directory = Box::into_raw(Box::new(Directory {
            depth: 0,
            buckets: vec![AtomicPtr::new(bucket)].into_boxed_slice(),
        }));
        // The chunk directory, the first bucket and the first bucket directory; the writer's list of
        // buckets is counted as it grows.
        let memory = LEAVES * size_of::<usize>() + size_of::<Bucket>() + Directory::bytes(0);
        let buckets = vec![bucket];
        let memory = memory + buckets.capacity() * size_of::<usize>();
        Storage {
            dir,
            spans: [const { AtomicPtr::new(ptr::null_mut()) }; SPAN_SEGMENTS],
            directory: AtomicPtr::new(directory),
            splits: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            string_bytes: AtomicUsize::new(0),
            memory: AtomicUsize::new(memory),
            limit: None,
            writer: Mutex::new(Writer {
                cursor: 0,
                owned: Vec::new(),
                buckets,
                retired: Vec::new(),
            }),
        }
    }

    pub(crate) fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = limit;
    }

    pub(crate) fn limit(&self) -> Option<usize> {
        self.limit
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Acquire)
    }

    pub(crate) fn memory_usage(&self) -> usize {
        self.memory.load(Relaxed)
    }

    pub(crate) fn string_bytes(&self) -> usize {
        self.string_bytes.load(Relaxed)
    }

    /// The string at `offset`.
    #[inline]
    fn str_at(&self, offset: u32) -> &str {
        let (k, base) = chunk_of(offset);
        let leaf = self.dir[k / LEAF].load(Acquire);
        // SAFETY: `offset` came from a published span, so its chunk and leaf were published (release)
        // before it and are non-null; the leaf array lives until the storage drops.
        let chunk = unsafe { (*leaf)[k % LEAF].load(Acquire) };
        // SAFETY: the string starts `offset - base` bytes into its chunk, inside the allocation.
        let mut p = unsafe { chunk.add((offset - base) as usize) };
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            // SAFETY: the length's bytes were written before the string was published, inside the
            // allocation.
            let b = unsafe { *p };
            // SAFETY: as above: the length is followed by the string's bytes.
            p = unsafe { p.add(1) };
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        // SAFETY: the writer copied a `&str` of `len` bytes here, contiguous in one allocation, never
        // written again: valid UTF-8 for the life of the storage.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(p, len)) }
    }

    /// The offset of symbol `index`, which must be below `len`.
    #[inline]
    fn offset_of(&self, index: usize) -> u32 {
        let (j, i) = span_of(index);
        let segment = self.spans[j].load(Acquire);
        // SAFETY: `index` is below a published length, so its segment was published before it and holds
        // `span_len(j)` entries, more than `i`.
        unsafe { (*segment.add(i)).load(Relaxed) }
    }

    /// The string of symbol `index`, if it is one of this storage's.
    #[inline]
    pub(crate) fn resolve(&self, index: usize) -> Option<&str> {
        if index >= self.len.load(Acquire) {
            return None;
        }
        Some(self.str_at(self.offset_of(index)))
    }

    /// The symbol of `s`, looked up without a lock: a probe of one bucket, repeated if a split ran
    /// meanwhile and nothing was found.
    #[inline]
    pub(crate) fn get(&self, s: &str, hash: u64) -> Option<u32> {
        loop {
            let before = self.splits.load(Acquire);
            if let Some(index) = self.probe(s, hash) {
                return Some(index);
            }
            fence(Acquire);
            if before.is_multiple_of(2) && self.splits.load(Relaxed) == before {
                return None;
            }
            // A split moved symbols while we looked: look again once it is done.
            std::hint::spin_loop();
        }
    }

    /// One look in the bucket of `hash`; may miss during a split.
    #[inline]
    fn probe(&self, s: &str, hash: u64) -> Option<u32> {
        // SAFETY: the directory is never null, and a replaced one lives until the storage drops.
        let directory = unsafe { &*self.directory.load(Acquire) };
        let bucket = directory.buckets[directory.index(hash)].load(Acquire);
        // SAFETY: every bucket a directory points to lives until the storage drops.
        self.find(unsafe { &*bucket }, s, hash)
    }

    #[inline]
    fn find(&self, bucket: &Bucket, s: &str, hash: u64) -> Option<u32> {
        let wanted = ONES * u64::from(tag_of(hash));
        let first = group_of(hash);
        for step in 0..GROUPS {
            let g = (first + step) % GROUPS;
            // Acquire: a tag is stored after its slot, so a tag seen means its slot is seen.
            let tags = bucket.tags[g].load(Acquire);
            let mut matches = zero_bytes(tags ^ wanted);
            while matches != 0 {
                let i = g * GROUP + byte_index(matches);
                matches &= matches - 1;
                // A slot being rebuilt by a split may read 0 or another symbol: the string decides.
                // Acquire: a symbol a rebuild placed here comes with its string.
                let v = bucket.slots[i].load(Acquire);
                if v != 0 && self.str_at(self.offset_of(v as usize - 1)) == s {
                    return Some(v - 1);
                }
            }
            if zero_bytes(tags) != 0 {
                return None;
            }
        }
        None
    }

    /// Counts `bytes` more of heap, unless that would pass the limit.
    fn reserve(&self, bytes: usize, s: &str) -> Result<(), InternError> {
        let used = self.memory.load(Relaxed);
        if let Some(limit) = self.limit
            && used + bytes > limit
        {
            return Err(InternError::MemoryLimit {
                limit,
                used,
                needed: bytes,
                len: s.len(),
            });
        }
        self.memory.fetch_add(bytes, Relaxed);
        Ok(())
    }

    /// The symbol of `s`, adding it if new, under the writer's lock.
    pub(crate) fn insert(
        &self,
        s: &str,
        hash: u64,
        hasher: &impl BuildHasher,
    ) -> Result<u32, InternError> {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        // Under the lock nothing moves: this look-up is authoritative.
        if let Some(index) = self.probe(s, hash) {
            return Ok(index);
        }
        // Only the writer, under the lock, changes the length.
        let index = self.len.load(Relaxed);
        if index >= u32::MAX as usize - 1 {
            return Err(InternError::SymbolsExhausted(index));
        }
        // Room in the bucket first (a split changes nothing a reader could find wrong), then the bytes
        // and the span, each reserved against the limit before it is allocated; only then is the string
        // published.
        let bucket = self.make_room(&mut w, hash, s, hasher)?;
        let offset = self.store(&mut w, s)?;
        let (j, i) = span_of(index);
        if self.spans[j].load(Relaxed).is_null() {
            let entries = span_len(j);
            // A refusal here leaves the bytes stored but unreachable (counted); it comes once per new
            // span segment at most (four per doubling of the pool).
            self.reserve(entries * size_of::<AtomicU32>(), s)?;
            let segment: Box<[AtomicU32]> = (0..entries).map(|_| AtomicU32::new(0)).collect();
            self.spans[j].store(Box::into_raw(segment).cast::<AtomicU32>(), Release);
        }
        let segment = self.spans[j].load(Relaxed);
        // SAFETY: the segment holds `span_len(j)` entries, more than `i`.
        unsafe { (*segment.add(i)).store(offset, Release) };
        place(bucket, hash, index as u32);
        bucket.len.fetch_add(1, Relaxed);
        self.len.store(index + 1, Release);
        self.string_bytes.fetch_add(s.len(), Relaxed);
        Ok(index as u32)
    }

    /// Splits the bucket of `hash` until it has room for one more symbol, and returns it.
    fn make_room(
        &self,
        w: &mut Writer,
        hash: u64,
        s: &str,
        hasher: &impl BuildHasher,
    ) -> Result<&Bucket, InternError> {
        loop {
            // SAFETY: never null; only this writer replaces it.
            let directory = unsafe { &*self.directory.load(Relaxed) };
            let bucket = directory.buckets[directory.index(hash)].load(Relaxed);
            // SAFETY: buckets live until the storage drops.
            let bucket = unsafe { &*bucket };
            if (bucket.len.load(Relaxed) as usize) < SPLIT_AT
                || bucket.depth.load(Relaxed) >= MAX_DEPTH
            {
                return Ok(bucket);
            }
            self.split(w, bucket, s, hasher)?;
        }
    }

    /// Splits `old`: a new bucket takes the symbols whose hash has bit `depth` (from the top) set, the
    /// directory (doubled first if needed) points its half at it, and `old` is rebuilt in place with the
    /// rest.
    fn split(
        &self,
        w: &mut Writer,
        old_ref: &Bucket,
        s: &str,
        hasher: &impl BuildHasher,
    ) -> Result<(), InternError> {
        // SAFETY: never null; only this writer replaces it.
        let mut directory = unsafe { &*self.directory.load(Relaxed) };
        let depth = old_ref.depth.load(Relaxed);
        let grow_directory = depth == directory.depth;
        let list_growth = if w.buckets.len() == w.buckets.capacity() {
            vec_growth(w.buckets.capacity(), size_of::<usize>())
        } else {
            0
        };
        let retired_growth = if grow_directory && w.retired.len() == w.retired.capacity() {
            vec_growth(w.retired.capacity(), size_of::<usize>())
        } else {
            0
        };
        let directory_bytes = if grow_directory {
            Directory::bytes(directory.depth + 1)
        } else {
            0
        };
        self.reserve(
            size_of::<Bucket>() + list_growth + retired_growth + directory_bytes,
            s,
        )?;
        let sequence = self.splits.load(Relaxed);
        self.splits.store(sequence + 1, Relaxed);
        fence(Release);
        if grow_directory {
            let bigger = Box::into_raw(Box::new(Directory {
                depth: directory.depth + 1,
                buckets: (0..1usize << (directory.depth + 1))
                    .map(|i| AtomicPtr::new(directory.buckets[i >> 1].load(Relaxed)))
                    .collect(),
            }));
            let old = self.directory.swap(bigger, AcqRel);
            w.retired.push(old);
            // SAFETY: just stored, never null.
            directory = unsafe { &*bigger };
        }
        let old = ptr::from_ref(old_ref).cast_mut();
        let new = Box::into_raw(Bucket::new(depth + 1));
        // SAFETY: just allocated; not yet reachable by anyone else.
        let new_ref = unsafe { &*new };
        let bit = 63 - depth;
        let mut kept = Vec::with_capacity(SPLIT_AT);
        let mut moved = 0;
        for slot in &old_ref.slots {
            let v = slot.load(Relaxed);
            if v == 0 {
                continue;
            }
            let h = hasher.hash_one(self.str_at(self.offset_of(v as usize - 1)));
            if (h >> bit) & 1 == 1 {
                place(new_ref, h, v - 1);
                moved += 1;
            } else {
                kept.push((h, v - 1));
            }
        }
        // The new bucket is complete before the directory points at it.
        let shift = directory.depth - depth - 1;
        for (i, entry) in directory.buckets.iter().enumerate() {
            if entry.load(Relaxed) == old && (i >> shift) & 1 == 1 {
                entry.store(new, Release);
            }
        }
        // Rebuilt in place: a lookup that reads it meanwhile may miss (and then asks the writer).
        old_ref.clear();
        for (h, index) in &kept {
            place(old_ref, *h, *index);
        }
        self.splits.store(sequence + 2, Release);
        old_ref.depth.store(depth + 1, Relaxed);
        old_ref.len.store(kept.len() as u32, Relaxed);
        new_ref.len.store(moved, Relaxed);
        w.buckets.push(new);
        Ok(())
    }

    /// Copies `s` (its length, then its bytes) to the next free offset, allocating a chunk or pages if
    /// needed; returns its offset.
    fn store(&self, w: &mut Writer, s: &str) -> Result<u32, InternError> {
        let need = varint_len(s.len()) + s.len();
        let full = || InternError::SymbolsExhausted(self.len.load(Relaxed));
        if need > (u32::MAX - 1 - PAGE) as usize {
            return Err(full());
        }
        let need32 = need as u32;
        let (k, base) = chunk_of(w.cursor);
        let end = base + chunk_size(k);
        let (offset, fresh) = if w.cursor + need32 <= end {
            (
                w.cursor,
                (w.cursor == base).then_some((k, chunk_size(k) as usize)),
            )
        } else if need32 <= chunk_size(k + 1) {
            (end, Some((k + 1, chunk_size(k + 1) as usize)))
        } else {
            // Pages of its own, from the next page boundary.
            let start = if end <= SMALL_END { SMALL_END } else { end };
            let pages = need.div_ceil(PAGE as usize);
            (start, Some((chunk_of(start).0, pages * PAGE as usize)))
        };
        if offset.checked_add(need32).is_none_or(|e| e >= u32::MAX - 1) {
            return Err(full());
        }
        if let Some((first, bytes)) = fresh {
            self.allocate(w, first, bytes, s)?;
        }
        let (k, base) = chunk_of(offset);
        let leaf = self.dir[k / LEAF].load(Relaxed);
        // SAFETY: the chunk of `offset` was allocated above or before (the cursor is inside it), and its
        // leaf with it; only this writer writes past the cursor.
        let chunk = unsafe { (*leaf)[k % LEAF].load(Relaxed) };
        // SAFETY: `need` bytes from `offset` lie inside the chunk's allocation (checked above: within the
        // chunk, or within the pages allocated for this string).
        let mut p = unsafe { chunk.add((offset - base) as usize) };
        let mut n = s.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            // SAFETY: inside the allocation, as above; nobody reads past the cursor.
            unsafe {
                *p = if n == 0 { byte } else { byte | 0x80 };
                p = p.add(1);
            }
            if n == 0 {
                break;
            }
        }
        // SAFETY: `s.len()` bytes follow inside the allocation; `s` cannot overlap our chunk.
        unsafe { ptr::copy_nonoverlapping(s.as_ptr(), p, s.len()) };
        w.cursor = offset + need32;
        Ok(offset)
    }

    /// Allocates `bytes` for chunks from `first` on (one chunk, or pages of one string) and publishes
    /// their pointers.
    fn allocate(
        &self,
        w: &mut Writer,
        first: usize,
        bytes: usize,
        s: &str,
    ) -> Result<(), InternError> {
        let chunks = if (first as u32) < SMALL_CHUNKS {
            1
        } else {
            bytes / PAGE as usize
        };
        let leaves_needed = (first / LEAF..=(first + chunks - 1) / LEAF)
            .filter(|l| self.dir[*l].load(Relaxed).is_null())
            .count();
        let owned_growth = if w.owned.len() == w.owned.capacity() {
            vec_growth(w.owned.capacity(), size_of::<(*mut u8, Layout)>())
        } else {
            0
        };
        self.reserve(
            bytes + leaves_needed * size_of::<[AtomicPtr<u8>; LEAF]>() + owned_growth,
            s,
        )?;
        let layout = Layout::from_size_align(bytes, 1).map_err(|_| InternError::Storage {
            len: s.len(),
            reason: format!("no layout for {bytes} bytes"),
        })?;
        // SAFETY: `bytes` is not zero (at least one chunk of 256 bytes).
        let memory = unsafe { alloc(layout) };
        if memory.is_null() {
            self.memory.fetch_sub(bytes, Relaxed);
            return Err(InternError::Storage {
                len: s.len(),
                reason: format!("the allocator returned no memory for {bytes} bytes"),
            });
        }
        w.owned.push((memory, layout));
        for c in 0..chunks {
            let k = first + c;
            let mut leaf = self.dir[k / LEAF].load(Relaxed);
            if leaf.is_null() {
                leaf = Box::into_raw(Box::new([const { AtomicPtr::new(ptr::null_mut()) }; LEAF]));
                self.dir[k / LEAF].store(leaf, Release);
            }
            // SAFETY: the leaf is non-null (allocated above or before) and lives until drop; the
            // chunk pointer stays inside the allocation (`c` pages from its start).
            unsafe { (*leaf)[k % LEAF].store(memory.add(c * PAGE as usize), Release) };
        }
        Ok(())
    }
}

/// Puts symbol `index` in the first free slot of the first group with one from `hash`'s group on (the
/// bucket has one: it splits before it fills), then its tag.
fn place(bucket: &Bucket, hash: u64, index: u32) {
    let mut g = group_of(hash);
    loop {
        // Only the writer stores tags: what it loads is what it last stored.
        let tags = bucket.tags[g].load(Relaxed);
        let empty = zero_bytes(tags);
        if empty != 0 {
            let byte = byte_index(empty);
            bucket.slots[g * GROUP + byte].store(index + 1, Release);
            let mut bytes = tags.to_ne_bytes();
            bytes[byte] = tag_of(hash);
            // Release: whoever sees the tag sees the slot (and the string it names).
            bucket.tags[g].store(u64::from_ne_bytes(bytes), Release);
            return;
        }
        g = (g + 1) % GROUPS;
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let w = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for (memory, layout) in w.owned.drain(..) {
            // SAFETY: allocated with this layout in `allocate`, freed once here.
            unsafe { dealloc(memory, layout) };
        }
        for leaf in self.dir.iter() {
            let leaf = leaf.load(Relaxed);
            if !leaf.is_null() {
                // SAFETY: made by `Box::into_raw` in `allocate`, freed once here.
                drop(unsafe { Box::from_raw(leaf) });
            }
        }
        for (j, segment) in self.spans.iter().enumerate() {
            let segment = segment.load(Relaxed);
            if !segment.is_null() {
                let entries = span_len(j);
                // SAFETY: made by `Box::into_raw` of a boxed slice of `entries` atomics in `insert`.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(segment, entries)) });
            }
        }
        for b in w.buckets.drain(..) {
            // SAFETY: made by `Box::into_raw` in `new` or `split`, listed once, freed once here.
            drop(unsafe { Box::from_raw(b) });
        }
        for d in w.retired.drain(..) {
            // SAFETY: made by `Box::into_raw`, retired once, freed once here.
            drop(unsafe { Box::from_raw(d) });
        }
        // SAFETY: as above; `&mut self`: nobody reads it any more.
        drop(unsafe { Box::from_raw(*self.directory.get_mut()) });
    }
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
            let (kk, base) = chunk_of(if k == 0 { 0 } else { chunk_of_start(k) });
            assert_eq!(kk, k);
            assert_eq!(chunk_of(base + chunk_size(k) - 1).0, k);
        }
    }

    fn chunk_of_start(k: usize) -> u32 {
        (0..k).map(chunk_size).sum()
    }

    #[test]
    fn spans_map_to_their_segments() {
        assert_eq!(span_of(0), (0, 0));
        assert_eq!(span_of(63), (0, 63));
        assert_eq!(span_of(64), (1, 0));
        assert_eq!(span_of(255), (3, 63));
        assert_eq!(span_of(256), (4, 0));
        assert_eq!(span_of(256 + 127), (4, 127));
        assert_eq!(span_of(256 + 128), (5, 0));
        assert_eq!(span_of(256 + 512), (8, 0));
        assert!(span_of(u32::MAX as usize).0 < SPAN_SEGMENTS);
        // Every index has its own place, segment after segment.
        let mut expected = (0, 0);
        for index in 0..20_000 {
            assert_eq!(span_of(index), expected, "index {index}");
            expected.1 += 1;
            if expected.1 == span_len(expected.0) {
                expected = (expected.0 + 1, 0);
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

    /// A hasher whose hashes all share their tag and first group (the low 16 bits), so every lookup
    /// probes past matching tags of other strings and across groups.
    #[derive(Clone, Default)]
    struct SameTag(foldhash::quality::RandomState);

    impl BuildHasher for SameTag {
        type Hasher = SameTagHasher;
        fn build_hasher(&self) -> SameTagHasher {
            SameTagHasher(self.0.build_hasher())
        }
    }

    struct SameTagHasher(<foldhash::quality::RandomState as BuildHasher>::Hasher);

    impl std::hash::Hasher for SameTagHasher {
        fn finish(&self) -> u64 {
            (self.0.finish() & !0xffff) | 0x1234
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.write(bytes);
        }
    }

    #[test]
    fn strings_sharing_tags_and_groups_are_told_apart() {
        let h = SameTag::default();
        let s = Storage::new();
        let texts: Vec<String> = (0..3_000).map(|i| format!("same-tag-{i}")).collect();
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(s.insert(t, h.hash_one(t.as_str()), &h).unwrap(), i as u32);
        }
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(s.get(t, h.hash_one(t.as_str())), Some(i as u32));
        }
        for i in 0..500 {
            let absent = format!("absent-{i}");
            assert_eq!(s.get(&absent, h.hash_one(absent.as_str())), None);
        }
    }

    #[test]
    fn lengths_take_seven_bits_a_byte() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(1 << 14), 3);
    }

    #[test]
    fn strings_of_every_size_come_back() {
        let h = foldhash::quality::RandomState::default();
        let s = Storage::new();
        let mut texts: Vec<String> = (0..2_000).map(|i| "x".repeat(i % 300)).collect();
        texts.push("y".repeat(200_000)); // pages of its own
        texts.push("z".repeat(70_000));
        texts.extend((0..5_000).map(|i| format!("after-{i}")));
        let mut symbols = Vec::new();
        for t in &texts {
            symbols.push(s.insert(t, h.hash_one(t.as_str()), &h).unwrap());
        }
        for (t, sym) in texts.iter().zip(&symbols) {
            assert_eq!(s.resolve(*sym as usize), Some(t.as_str()));
            assert_eq!(s.get(t, h.hash_one(t.as_str())), Some(*sym));
        }
        assert_eq!(s.resolve(s.len()), None);
    }
}
