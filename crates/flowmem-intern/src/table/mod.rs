//! The storage of a [`StringPool`](crate::StringPool): one byte arena of records (each a string and
//! its symbol), an anchor per eight symbols, a table of records' offsets. Lookups and resolves take no
//! lock; new strings are added under one mutex.
//!
//! - **Bytes.** Each string is stored once, as a record (`record`): its length, its bytes, then its
//!   symbol less the first symbol of its chunk (two bytes), in chunks that never move: nine chunks
//!   doubling from 256 bytes to 64 KiB, then 64 KiB pages (a longer string gets pages of its own,
//!   contiguous). A record's *offset* is its place in that sequence, which the writer keeps; what
//!   the rest holds is its *position*, its chunk and its offset in the chunk (16 bits each). An array
//!   inline in the storage maps the first 64 chunks (3.7 MB) to their addresses and first symbols with
//!   one load, a two-level directory the rest. Where the writer leaves the end of a chunk unused it
//!   writes a gap that says where the next record is.
//! - **Anchors.** The position of every eighth symbol's record (symbols are dense, in interning order): a
//!   `u32` in segments that never move, four of 64 entries, then four of 128, and so on. A resolve walks
//!   from its anchor over at most seven records: half a byte a string, where a span per symbol took
//!   four.
//! - **Table.** Extendible hashing: a directory indexed by a hash's top bits points to buckets of 256
//!   slots, each slot a record's position + 1 (0 is empty) with a tag byte (seven bits of the hash and a
//!   set top bit; 0 is empty), in groups of eight slots with their eight tags beside them (40 bytes: a
//!   look-up ending in its first group reads one cache line of the bucket or two). A lookup reads a
//!   group's tags at once, from the group the hash's low bits name on, and compares strings only where
//!   a tag matches (one in 128 slots that hold another string); a group with an empty tag ends it. A
//!   bucket seven-eighths full splits in two: a new bucket takes the entries whose next hash bit is set,
//!   and the old one is rebuilt in place.
//!   Buckets never move nor go away while the pool lives, so a lookup needs no guard; a split may hide a
//!   string from a lookup for its duration, so a lookup that finds nothing checks a sequence count the
//!   split bumps, and looks again if a split ran. Only the directory is replaced when it doubles (one
//!   allocation whose address carries its depth, so a look-up reads both with one load); a replaced
//!   directory (an eighth of a byte per string) is kept until the pool drops, as lookups may still read
//!   it.
//!
//! `layout` holds the arithmetic of where things are (chunks, anchor segments), `bucket` the table's
//! buckets and directory, `record` the byte format of strings and gaps; this module the storage, which
//! reads and grows them. A hit reads the hash's directory entry, a group's tags and slot, and the
//! record the slot names: the string, compared inline, then the symbol beside it (no table between the
//! slot and the string).
//!
//! A new string is written (its record, then its anchor, then the length, then its slot) before it is
//! published, with release stores that lookups read with acquire loads, so a reader that finds a slot
//! finds the whole string and can resolve its symbol. Every allocation goes through
//! [`Storage::reserve`], which keeps the exact count of heap bytes held and refuses what would take it
//! past the pool's limit.

mod bucket;
mod layout;
mod record;

use std::{
    alloc::{Layout, alloc, dealloc},
    hash::{BuildHasher, Hasher},
    ptr,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*, fence},
    },
};

use self::{bucket::*, layout::*, record::*};
use crate::InternError;

/// Bytes a `Vec` of capacity `cap` adds when it grows by one element of `elem` bytes (std doubles,
/// from at least 4 elements for element sizes up to 1 KiB).
fn vec_growth(cap: usize, elem: usize) -> usize {
    ((cap * 2).max(4) - cap) * elem
}

/// The hash of `s` under `hasher`: its bytes alone, with none of the length suffix `Hash for str` adds
/// to keep tuples of strings apart (one string is hashed here, so one mixing step less a look-up). Every
/// hash of the pool's tables comes from here.
#[inline]
pub(crate) fn hash_str(hasher: &impl BuildHasher, s: &str) -> u64 {
    let mut state = hasher.build_hasher();
    state.write(s.as_bytes());
    state.finish()
}

/// Whether `a` and `b` hold the same bytes: for strings of 4 to 16 bytes (most names), two overlapping
/// loads a side and no call; longer and shorter ones through `==`.
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        // Both slices hold `n` bytes, 8 to 16: the words lie inside them.
        let word =
            |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap_or([0; 8]));
        ((word(a, 0) ^ word(b, 0)) | (word(a, n - 8) ^ word(b, n - 8))) == 0
    } else if (4..8).contains(&n) {
        let word =
            |s: &[u8], at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().unwrap_or([0; 4]));
        ((word(a, 0) ^ word(b, 0)) | (word(a, n - 4) ^ word(b, n - 4))) == 0
    } else {
        a == b
    }
}

/// What only the writer (under the mutex) touches.
struct Writer {
    /// The next free offset.
    cursor: u32,
    /// Every allocation of chunks, to free on drop.
    owned: Vec<(*mut u8, Layout)>,
    /// Anchor segments allocated (freed on drop; one may be ahead of the symbols if a string was
    /// refused after its segment was made).
    anchor_segments: usize,
    /// Every bucket (the directories point at them; freed on drop).
    buckets: Vec<*mut Bucket>,
    /// Directories replaced by a bigger one: lookups may still read them, so they live until drop.
    retired: Vec<*mut AtomicPtr<Bucket>>,
}

/// Where a chunk is, and whose records it holds.
struct Chunk {
    /// The chunk's address (for each page of a long string, the page's: its run of pages is one
    /// allocation); null until it is allocated.
    base: AtomicPtr<u8>,
    /// The symbol of the first record that starts in the chunk (for each page of a long string, that
    /// string's): a record holds its symbol less this. Stored before the chunk's first record is
    /// published.
    first: AtomicU32,
}

impl Chunk {
    const fn unallocated() -> Chunk {
        Chunk {
            base: AtomicPtr::new(ptr::null_mut()),
            first: AtomicU32::new(0),
        }
    }
}

/// The strings of a pool, its anchors and its table.
pub(crate) struct Storage {
    /// The chunks below [`NEAR`].
    near: [Chunk; NEAR],
    /// The chunks from [`NEAR`] on: `dir[k / LEAF][k % LEAF]` (a leaf is allocated with its first
    /// chunk).
    dir: Box<[AtomicPtr<[Chunk; LEAF]>]>,
    /// For each anchor segment `j` allocated, its address less [`anchor_start(j)`](anchor_start)
    /// entries (so anchor `g`, the offset of symbol `g * ANCHOR_EVERY`, is at `anchors[j] + g`; a
    /// wrapping pointer, only dereferenced inside the segment).
    anchors: [AtomicPtr<AtomicU32>; ANCHOR_SEGMENTS],
    /// The bucket directory's word (see [`Directory`]); never null.
    directory: AtomicPtr<AtomicPtr<Bucket>>,
    /// Odd while a split moves symbols between buckets, bumped again when it is done: a lookup that
    /// found nothing trusts its miss only if no split ran meanwhile (a seqlock).
    splits: AtomicU64,
    /// Strings published (symbols below it resolve).
    len: AtomicUsize,
    /// Bytes of the strings themselves.
    string_bytes: AtomicUsize,
    /// Heap bytes held, exactly: chunks, chunk directory, anchor segments, buckets, bucket directories.
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
        let dir: Box<[AtomicPtr<[Chunk; LEAF]>]> = (0..LEAVES)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        let bucket = Box::into_raw(Bucket::new(0));
        let directory = Directory::allocate(0, |_| bucket);
        // The chunk directory, the first bucket and the first bucket directory; the writer's list of
        // buckets is counted as it grows.
        let memory = LEAVES * size_of::<usize>() + size_of::<Bucket>() + Directory::bytes(0);
        let buckets = vec![bucket];
        let memory = memory + buckets.capacity() * size_of::<usize>();
        Storage {
            near: [const { Chunk::unallocated() }; NEAR],
            dir,
            anchors: [const { AtomicPtr::new(ptr::null_mut()) }; ANCHOR_SEGMENTS],
            directory: AtomicPtr::new(directory),
            splits: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            string_bytes: AtomicUsize::new(0),
            memory: AtomicUsize::new(memory),
            limit: None,
            writer: Mutex::new(Writer {
                cursor: 0,
                owned: Vec::new(),
                anchor_segments: 0,
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

    /// Chunk `k`, which must be allocated.
    #[inline]
    fn chunk(&self, k: usize) -> &Chunk {
        if k < NEAR {
            &self.near[k]
        } else {
            self.far_chunk(k)
        }
    }

    /// [`chunk`](Storage::chunk) `k` from [`NEAR`] on, through the directory.
    fn far_chunk(&self, k: usize) -> &Chunk {
        let leaf = self.dir[k / LEAF].load(Acquire);
        // SAFETY: chunk `k` is allocated, so its leaf was published (release) before anything that leads
        // to it; the leaf lives until the storage drops.
        unsafe { &(*leaf)[k % LEAF] }
    }

    /// The chunk of `position`, inside an allocated chunk, and the position's address.
    #[inline]
    fn locate(&self, position: u32) -> (&Chunk, *mut u8) {
        let (k, at) = split_position(position);
        let chunk = self.chunk(k);
        // The chunk was published (release) before the record or gap at `position`: its address plus
        // the offset in it lands inside it.
        (chunk, chunk.base.load(Acquire).wrapping_add(at))
    }

    /// The address of `position`, inside an allocated chunk.
    #[inline]
    fn address(&self, position: u32) -> *mut u8 {
        self.locate(position).1
    }

    /// The record at `position`, which must be that of a published record, and its chunk.
    #[inline]
    fn record_at(&self, position: u32) -> (Record<'_>, &Chunk) {
        let (chunk, p) = self.locate(position);
        // SAFETY: a published record, never written again, in a chunk that lives as long as the storage.
        (unsafe { read_record(p) }, chunk)
    }

    /// Anchor `g`'s entry, whose segment must be allocated.
    #[inline]
    fn anchor_entry(&self, g: usize) -> &AtomicU32 {
        // The segment's address less its first anchor: plus `g`, the entry's address, inside the segment
        // (published before any symbol it anchors, and before the writer stores into it).
        let entry = self.anchors[anchor_segment(g)]
            .load(Acquire)
            .wrapping_add(g);
        // SAFETY: as above: a live `AtomicU32` of the segment, which lives until the storage drops.
        unsafe { &*entry }
    }

    /// The position of symbol `g * ANCHOR_EVERY`'s record, which must be published.
    #[inline]
    fn anchor(&self, g: usize) -> u32 {
        self.anchor_entry(g).load(Relaxed)
    }

    /// The string of symbol `index`, if it is one of this storage's: from its anchor, over the records
    /// (and a gap where a chunk ends) before it.
    #[inline]
    pub(crate) fn resolve(&self, index: usize) -> Option<&str> {
        if index >= self.len.load(Acquire) {
            return None;
        }
        let mut p = self.address(self.anchor(index / ANCHOR_EVERY));
        let mut left = index % ANCHOR_EVERY;
        loop {
            // SAFETY: `p` is the anchor's record or a record or gap after it and before symbol `index`'s
            // record, which is published: all written before it, never written again.
            match unsafe { read(p) } {
                Entry::Gap(next) => p = self.address(next),
                Entry::Record(record) if left == 0 => return Some(record.text),
                Entry::Record(record) => {
                    // The next record or a gap: a chunk keeps room for a gap after its last record.
                    p = p.wrapping_add(record.len());
                    left -= 1;
                }
            }
        }
    }

    /// The symbol of `s`, looked up without a lock: a probe of one bucket; a record found is the
    /// answer, while a miss is trusted only from a probe that no split overlapped.
    #[inline]
    pub(crate) fn get(&self, s: &str, hash: u64) -> Option<u32> {
        self.probe(s, hash).or_else(|| self.get_missed(s, hash))
    }

    /// [`get`](Storage::get) after a probe found nothing: probes again inside a seqlock read of the
    /// split count, until a probe no split overlapped finds the string or misses.
    #[inline(never)]
    fn get_missed(&self, s: &str, hash: u64) -> Option<u32> {
        loop {
            let before = self.splits.load(Acquire);
            if before.is_multiple_of(2) {
                if let Some(index) = self.probe(s, hash) {
                    return Some(index);
                }
                fence(Acquire);
                if self.splits.load(Relaxed) == before {
                    return None;
                }
            }
            // A split moves symbols: look again once it is done.
            std::hint::spin_loop();
        }
    }

    /// The bucket directory (a replaced one lives until the storage drops).
    #[inline]
    fn directory(&self, order: std::sync::atomic::Ordering) -> Directory<'_> {
        Directory::at(self.directory.load(order))
    }

    /// One look in the bucket of `hash`: a record found is the answer, but it may miss a string during a
    /// split ([`get`](Storage::get) trusts no miss; [`insert`](Storage::insert) looks again under the
    /// lock, so interning needs no more than this first).
    #[inline]
    pub(crate) fn probe(&self, s: &str, hash: u64) -> Option<u32> {
        let bucket = self.directory(Acquire).entry(hash).load(Acquire);
        // SAFETY: every bucket a directory points to lives until the storage drops.
        self.find(unsafe { &*bucket }, s, hash)
    }

    #[inline]
    fn find(&self, bucket: &Bucket, s: &str, hash: u64) -> Option<u32> {
        let tag = tag_of(hash);
        let first = group_of(hash);
        for step in 0..GROUPS {
            let group = &bucket.groups[(first + step) % GROUPS];
            // Acquire: a tag is stored after its slot, so a tag seen means its slot is seen.
            let (mut matches, empty) = group_match(group.tags.load(Acquire), tag);
            while matches != 0 {
                let i = matches.trailing_zeros() as usize;
                matches &= matches - 1;
                // A slot being rebuilt by a split may read 0 or another record: the string decides.
                // Acquire: a record a rebuild placed here comes with its bytes.
                let v = group.slots[i].load(Acquire);
                if v != 0 {
                    let (record, chunk) = self.record_at(v - 1);
                    if same(record.text.as_bytes(), s.as_bytes()) {
                        // The symbol only now: it follows the string just compared.
                        return Some(chunk.first.load(Relaxed) + record.delta());
                    }
                }
            }
            if empty {
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
        // Room in the bucket first (a split changes nothing a reader could find wrong), then the anchor
        // segment if this symbol needs a new one, then the record, each reserved against the limit
        // before it is allocated: once the record is written nothing can fail, so every record in the
        // chunks is a published string's (a resolve walks over them).
        let bucket = self.make_room(&mut w, hash, s, hasher)?;
        let anchored = index.is_multiple_of(ANCHOR_EVERY);
        let g = index / ANCHOR_EVERY;
        if anchored {
            self.make_anchor_room(&mut w, g, s)?;
        }
        let position = self.store(&mut w, s, index as u32)?;
        if anchored {
            // Its segment was allocated above or before.
            self.anchor_entry(g).store(position, Relaxed);
        }
        // Release: a resolve that sees the length sees the record and its anchor; the slot after it, so
        // a lookup that finds the symbol can resolve it.
        self.len.store(index + 1, Release);
        place(bucket, hash, position);
        bucket.len.fetch_add(1, Relaxed);
        self.string_bytes.fetch_add(s.len(), Relaxed);
        Ok(index as u32)
    }

    /// Allocates the anchor segment of anchor `g` if it is not yet (anchors come in order: it is the
    /// next one or an earlier one).
    fn make_anchor_room(&self, w: &mut Writer, g: usize, s: &str) -> Result<(), InternError> {
        let j = anchor_segment(g);
        if j < w.anchor_segments {
            return Ok(());
        }
        let entries = anchor_len(j);
        self.reserve(entries * size_of::<AtomicU32>(), s)?;
        let segment: Box<[AtomicU32]> = (0..entries).map(|_| AtomicU32::new(0)).collect();
        let segment = Box::into_raw(segment).cast::<AtomicU32>();
        self.anchors[j].store(segment.wrapping_sub(anchor_start(j)), Release);
        w.anchor_segments = j + 1;
        Ok(())
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
            // Only this writer replaces the directory.
            let bucket = self.directory(Relaxed).entry(hash).load(Relaxed);
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
        // Only this writer replaces the directory.
        let mut directory = self.directory(Relaxed);
        let depth = old_ref.depth.load(Relaxed);
        let grow_directory = depth == directory.depth();
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
            Directory::bytes(directory.depth() + 1)
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
            let entries = directory.entries();
            let bigger =
                Directory::allocate(directory.depth() + 1, |i| entries[i >> 1].load(Relaxed));
            let old = self.directory.swap(bigger, AcqRel);
            w.retired.push(old);
            directory = self.directory(Relaxed);
        }
        let old = ptr::from_ref(old_ref).cast_mut();
        let new = Box::into_raw(Bucket::new(depth + 1));
        // SAFETY: just allocated; not yet reachable by anyone else.
        let new_ref = unsafe { &*new };
        let bit = 63 - depth;
        let mut kept = Vec::with_capacity(SPLIT_AT);
        let mut moved = 0;
        for slot in old_ref.groups.iter().flat_map(|g| &g.slots) {
            let v = slot.load(Relaxed);
            if v == 0 {
                continue;
            }
            let h = hash_str(hasher, self.record_at(v - 1).0.text);
            if (h >> bit) & 1 == 1 {
                place(new_ref, h, v - 1);
                moved += 1;
            } else {
                kept.push((h, v - 1));
            }
        }
        // The new bucket is complete before the directory points at it.
        let shift = directory.depth() - depth - 1;
        for (i, entry) in directory.entries().iter().enumerate() {
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

    /// Writes the record of `s`, symbol `index`, at the next free offset, allocating a chunk or pages
    /// if needed (and a gap where it leaves a chunk's end unused); returns its position.
    fn store(&self, w: &mut Writer, s: &str, index: u32) -> Result<u32, InternError> {
        let full = || InternError::SymbolsExhausted(index as usize);
        let need = record_len(s.len());
        if need > (u32::MAX - 2 * PAGE) as usize {
            return Err(full());
        }
        let need = need as u32;
        let (k, base) = chunk_of(w.cursor);
        let end = base + chunk_size(k);
        // The cursor is at a chunk's start only before the first string (a chunk keeps room for a gap).
        let started = w.cursor != base;
        // Each chunk, and each run of a long string's pages, keeps room for a gap after its last record.
        let (offset, fresh) = if !started {
            (w.cursor, Some((k, chunk_size(k) as usize)))
        } else if w.cursor + need + GAP_LEN <= end {
            (w.cursor, None)
        } else if need + GAP_LEN <= chunk_size(k + 1) {
            (end, Some((k + 1, chunk_size(k + 1) as usize)))
        } else {
            // Pages of its own, from the next page boundary.
            let start = if end <= SMALL_END { SMALL_END } else { end };
            let pages = (need + GAP_LEN).div_ceil(PAGE) as usize;
            (start, Some((chunk_of(start).0, pages * PAGE as usize)))
        };
        // The record and the gap after it lie before the last chunk a position can name.
        if offset
            .checked_add(need + GAP_LEN)
            .is_none_or(|e| e > chunk_start(MAX_CHUNKS))
        {
            return Err(full());
        }
        // A record takes three bytes at least, so a chunk of 64 KiB at most holds fewer than 2^16.
        let delta = match fresh {
            Some(_) => Some(0),
            None => u16::try_from(index - self.chunk(k).first.load(Relaxed)).ok(),
        }
        .ok_or_else(|| InternError::Storage {
            len: s.len(),
            reason: format!("symbol {index} is too far from its chunk's first"),
        })?;
        if let Some((first, bytes)) = fresh {
            self.allocate(w, first, bytes, s, index)?;
        }
        let position = position_of(offset);
        if started && offset != w.cursor {
            // SAFETY: the chunk of the cursor keeps `GAP_LEN` bytes after its last record, unread until
            // the record after the gap is published.
            unsafe { write_gap(self.address(position_of(w.cursor)), position) };
        }
        // SAFETY: `need` bytes from `offset` lie inside the chunk's allocation (checked above: within the
        // chunk, or within the pages allocated for this string), past the cursor: nobody reads them until
        // the symbol is published.
        unsafe { write_record(self.address(position), delta, s) };
        w.cursor = offset + need;
        Ok(position)
    }

    /// Allocates `bytes` for chunks from `first` on (one chunk, or pages of one string) whose first
    /// record is symbol `index`'s, and publishes them.
    fn allocate(
        &self,
        w: &mut Writer,
        first: usize,
        bytes: usize,
        s: &str,
        index: u32,
    ) -> Result<(), InternError> {
        let chunks = if (first as u32) < SMALL_CHUNKS {
            1
        } else {
            bytes / PAGE as usize
        };
        let far = first.max(NEAR)..first + chunks;
        let leaves_needed = if far.is_empty() {
            0
        } else {
            (far.start / LEAF..=(far.end - 1) / LEAF)
                .filter(|l| self.dir[*l].load(Relaxed).is_null())
                .count()
        };
        let owned_growth = if w.owned.len() == w.owned.capacity() {
            vec_growth(w.owned.capacity(), size_of::<(*mut u8, Layout)>())
        } else {
            0
        };
        self.reserve(
            bytes + leaves_needed * size_of::<[Chunk; LEAF]>() + owned_growth,
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
        // The allocation starts at chunk `first`'s offset.
        for k in first..first + chunks {
            let base = memory.wrapping_add((chunk_start(k) - chunk_start(first)) as usize);
            let chunk = if k < NEAR {
                &self.near[k]
            } else {
                let mut leaf = self.dir[k / LEAF].load(Relaxed);
                if leaf.is_null() {
                    leaf = Box::into_raw(Box::new([const { Chunk::unallocated() }; LEAF]));
                    self.dir[k / LEAF].store(leaf, Release);
                }
                // SAFETY: the leaf is non-null (allocated above or before) and lives until drop.
                unsafe { &(*leaf)[k % LEAF] }
            };
            chunk.first.store(index, Relaxed);
            // Release: whoever reaches the chunk through a published record sees its first symbol.
            chunk.base.store(base, Release);
        }
        Ok(())
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
        for (j, segment) in self.anchors.iter().enumerate().take(w.anchor_segments) {
            let segment = segment.load(Relaxed).wrapping_add(anchor_start(j));
            let entries = anchor_len(j);
            // SAFETY: made by `Box::into_raw` of a boxed slice of `entries` atomics in
            // `make_anchor_room` (the stored pointer less `anchor_start(j)`, added back here), freed
            // once here.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(segment, entries)) });
        }
        for b in w.buckets.drain(..) {
            // SAFETY: made by `Box::into_raw` in `new` or `split`, listed once, freed once here.
            drop(unsafe { Box::from_raw(b) });
        }
        for d in w.retired.drain(..) {
            // SAFETY: made by `Directory::allocate`, retired once, freed once here; `&mut self`: nobody
            // reads it any more.
            unsafe { Directory::free(d) };
        }
        // SAFETY: as above: the current directory, freed once here.
        unsafe { Directory::free(*self.directory.get_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hasher whose hashes all share their tag and first group (the low 16 bits), so every lookup
    /// probes past matching tags of other strings and across groups.
    #[derive(Clone, Default)]
    struct SameTag(foldhash::fast::RandomState);

    impl BuildHasher for SameTag {
        type Hasher = SameTagHasher;
        fn build_hasher(&self) -> SameTagHasher {
            SameTagHasher(self.0.build_hasher())
        }
    }

    struct SameTagHasher(<foldhash::fast::RandomState as BuildHasher>::Hasher);

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
            assert_eq!(s.insert(t, hash_str(&h, t), &h).unwrap(), i as u32);
        }
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(s.get(t, hash_str(&h, t)), Some(i as u32));
        }
        for i in 0..500 {
            let absent = format!("absent-{i}");
            assert_eq!(s.get(&absent, hash_str(&h, &absent)), None);
        }
    }

    #[test]
    fn same_compares_every_byte() {
        for n in 0..40 {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(same(a.as_bytes(), a.clone().as_bytes()), "{a:?}");
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'Z';
                let b = String::from_utf8(b).unwrap();
                assert!(!same(a.as_bytes(), b.as_bytes()), "{a:?} against {b:?}");
            }
            assert!(!same(a.as_bytes(), format!("{a}a").as_bytes()));
        }
    }

    #[test]
    fn strings_of_every_size_come_back() {
        let h = foldhash::fast::RandomState::default();
        let s = Storage::new();
        let mut texts: Vec<String> = (0..2_000).map(|i| "x".repeat(i % 300)).collect();
        texts.push("y".repeat(200_000)); // pages of its own
        texts.push("z".repeat(70_000));
        texts.extend((0..5_000).map(|i| format!("after-{i}")));
        let mut symbols = Vec::new();
        for t in &texts {
            symbols.push(s.insert(t, hash_str(&h, t), &h).unwrap());
        }
        for (t, sym) in texts.iter().zip(&symbols) {
            assert_eq!(s.resolve(*sym as usize), Some(t.as_str()));
            assert_eq!(s.get(t, hash_str(&h, t)), Some(*sym));
        }
        assert_eq!(s.resolve(s.len()), None);
    }

    #[test]
    fn records_past_the_near_chunks_are_found_and_resolved() {
        let h = foldhash::fast::RandomState::default();
        let s = Storage::new();
        // 6,000 records of about a kilobyte: 6 MB, past the 3.7 MB the near chunks reach, with short
        // strings between them so that anchors fall on either kind and pages end in gaps.
        let texts: Vec<String> = (0..6_000)
            .map(|i| match i % 3 {
                0 => format!("short-{i}"),
                _ => format!("{i}-{}", "k".repeat(900 + i % 250)),
            })
            .collect();
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(s.insert(t, hash_str(&h, t), &h).unwrap(), i as u32);
        }
        assert!(s.writer.lock().unwrap().cursor as usize > (NEAR as u32 * PAGE) as usize);
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(s.get(t, hash_str(&h, t)), Some(i as u32), "{i}");
            assert_eq!(s.resolve(i), Some(t.as_str()), "{i}");
        }
    }
}
