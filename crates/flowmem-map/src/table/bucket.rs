//! One bucket of the table: up to [`SLOTS`] entries in place, the rest in a spill list.
//!
//! A bucket is split in two: its [`Meta`] (32 bytes: the lock, which slots are taken, one tag byte per slot
//! and the spill list), in one array with the other buckets' metas, and its [`Block`] of entries (the low
//! 32 bits of each entry's hash, then the entries), in a second array. A lookup takes the lock and matches
//! its tag against the sixteen tags in the same line, then reads only the entries whose tag matches: one
//! line written (the lock), one or two read.
//!
//! The views here ([`Shared`], [`Exclusive`]) are made by the table once it holds the bucket's lock; their
//! methods rely on that and on the occupancy bits, which say which slots hold an initialised entry.

use std::{
    borrow::Borrow,
    cell::UnsafeCell,
    mem::MaybeUninit,
    ptr::{self, addr_of_mut},
    sync::atomic::{AtomicIsize, Ordering},
};

use super::lock::BucketLock;

/// Entries a bucket holds in place.
pub(crate) const SLOTS: usize = 16;

/// What the table keeps of a key's 64-bit hash, after one multiplication by 2^64 / φ (Fibonacci hashing,
/// so that hashers that pass small integers through unchanged still spread over the buckets): the high
/// 32 bits of the product place the key in the array (and again after a growth, without hashing the key
/// again), the byte below them is its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hashed {
    pub(crate) low: u32,
    pub(crate) tag: u8,
}

impl Hashed {
    #[inline]
    pub(crate) fn new(hash: u64) -> Self {
        let mixed = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            low: (mixed >> 32) as u32,
            tag: (mixed >> 24) as u8,
        }
    }

    /// The bucket of an array of `buckets` (by multiplication: any count, not only powers of two). An array
    /// twice as large sends the entries of bucket `i` to buckets `2i` and `2i + 1`.
    #[inline]
    pub(crate) fn bucket(self, buckets: usize) -> usize {
        ((u64::from(self.low) * buckets as u64) >> 32) as usize
    }
}

/// A bucket's spilled entries: boxed, so that the meta stays 32 bytes (a `Vec` is 24).
type SpillList<K, V> = Option<Box<SpillEntries<K, V>>>;

/// The entries of a spill list.
type SpillEntries<K, V> = Vec<Spill<K, V>>;

/// A new spill list, with room for a few entries (a bucket that spills once usually spills again).
fn new_spill<K, V>() -> Box<SpillEntries<K, V>> {
    Box::new(Vec::with_capacity(4))
}

/// An entry's cell in a bucket's block, initialised while its occupancy bit is set.
pub(crate) type BlockCell<K, V> = UnsafeCell<MaybeUninit<Block<K, V>>>;

/// An entry that did not fit in its bucket's slots.
struct Spill<K, V> {
    hashed: Hashed,
    key: K,
    value: V,
}

/// The part of a bucket a lookup reads first (see the module's docs).
#[repr(C, align(32))]
pub(crate) struct Meta<K, V> {
    pub(crate) lock: BucketLock,
    /// Bit `i` set: slot `i` holds an entry.
    occupied: UnsafeCell<u16>,
    /// Set by a growth once the entries are in the next array: a caller that finds it set looks again there.
    moved: UnsafeCell<bool>,
    tags: UnsafeCell<[u8; SLOTS]>,
    spill: UnsafeCell<SpillList<K, V>>,
}

impl<K, V> Meta<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            lock: BucketLock::new(),
            occupied: UnsafeCell::new(0),
            moved: UnsafeCell::new(false),
            tags: UnsafeCell::new([0; SLOTS]),
            spill: UnsafeCell::new(None),
        }
    }

    /// Whether a growth moved this bucket's entries on.
    ///
    /// # Safety
    /// The caller holds the lock (shared or exclusive).
    #[inline]
    pub(crate) unsafe fn moved(&self) -> bool {
        // SAFETY: written only under the exclusive lock; the caller holds the lock.
        unsafe { *self.moved.get() }
    }

    /// Drops the entries in the slots of `block` (the spill list drops with the meta).
    ///
    /// # Safety
    /// The caller owns the bucket (no other thread can reach it) and `block` is its block.
    pub(crate) unsafe fn drop_entries(&mut self, block: &BlockCell<K, V>) {
        let mut occupied = std::mem::take(self.occupied.get_mut());
        while occupied != 0 {
            let i = occupied.trailing_zeros() as usize;
            occupied &= occupied - 1;
            // SAFETY: bit `i` was set, so the slot holds an entry; the bits are cleared first, so a panic
            // in a `Drop` leaks the rest rather than dropping anything twice.
            unsafe { ptr::drop_in_place(slot_ptr(block.get(), i)) };
        }
    }
}

/// The entries of a bucket, behind its [`Meta`]. Never made whole: each field is reached by pointer, and a
/// slot is initialised only while its occupancy bit is set. Aligned to a cache line, so that it spans as
/// few lines as its size allows (five for `u64` keys and values) and [`prefetch`] fetches no neighbour's.
#[repr(C, align(64))]
pub(crate) struct Block<K, V> {
    hashes: [u32; SLOTS],
    slots: [(K, V); SLOTS],
}

/// Lines of a block [`prefetch`] asks for at most: all of a block of small entries (up to 28 bytes a key
/// and value), the hashes and the first slots of a larger one.
const PREFETCH_LINES: usize = 8;

/// Asks the CPU to start loading the lines of `block` (at most [`PREFETCH_LINES`]) into the cache, before
/// the caller takes the bucket's lock: the lock's line and the entries' lines then miss the cache together
/// rather than one after the other, which is most of an operation's time once the table outgrows the cache
/// (with `u64` keys and values, ReadHeavy and Exchange on one thread ran 1.13 → 1.50 and 0.98 → 1.35 times
/// scc's speed, docs/map.md). `for_write` asks for the lines in a state ready to be written, where the CPU
/// can.
///
/// `block` may be a block a growth has freed since the caller read the array: a prefetch is only a hint,
/// which neither reads memory in Rust's sense nor faults on any address.
#[inline(always)]
pub(crate) fn prefetch<K, V>(block: *const BlockCell<K, V>, for_write: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_ET0, _MM_HINT_T0, _mm_prefetch};
        let lines = std::mem::size_of::<BlockCell<K, V>>()
            .div_ceil(64)
            .min(PREFETCH_LINES);
        let first = block.cast::<i8>();
        for line in 0..lines {
            let at = first.wrapping_add(line * 64);
            // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has (the target's baseline), and
            // accesses no memory: any address, even a freed one, is allowed.
            unsafe {
                if for_write {
                    _mm_prefetch::<_MM_HINT_ET0>(at);
                } else {
                    _mm_prefetch::<_MM_HINT_T0>(at);
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (block, for_write);
}

#[inline]
fn slot_ptr<K, V>(block: *mut MaybeUninit<Block<K, V>>, i: usize) -> *mut (K, V) {
    debug_assert!(i < SLOTS);
    // SAFETY: `i < SLOTS`: the pointer stays inside the block; no reference to the block is made.
    unsafe {
        addr_of_mut!((*block.cast::<Block<K, V>>()).slots)
            .cast::<(K, V)>()
            .add(i)
    }
}

#[inline]
fn hash_ptr<K, V>(block: *mut MaybeUninit<Block<K, V>>, i: usize) -> *mut u32 {
    debug_assert!(i < SLOTS);
    // SAFETY: as in `slot_ptr`.
    unsafe {
        addr_of_mut!((*block.cast::<Block<K, V>>()).hashes)
            .cast::<u32>()
            .add(i)
    }
}

/// The slots of `tags` whose tag is `tag`, as bits (exact: eight bytes at a time, no false matches).
#[inline]
fn matching(tags: &[u8; SLOTS], tag: u8) -> u32 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from(tag) * 0x0101_0101_0101_0101;
    let half = |bytes: &[u8]| -> u32 {
        let x = u64::from_le_bytes(bytes.try_into().expect("eight tags")) ^ pattern;
        // The high bit of each byte is set exactly where `x` has a zero byte (a matching tag) ...
        let zero = !(((x & LOW7) + LOW7) | x | LOW7);
        // ... and the multiplication gathers those eight bits into the top byte, in order.
        (((zero >> 7) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
    };
    half(&tags[..8]) | (half(&tags[8..]) << 8)
}

/// The slot of the bucket (`meta`, `block`) that holds `key`, if one does (the spill list is not looked at).
///
/// # Safety
/// The caller holds the bucket's lock (shared or exclusive), and `block` is its block.
#[inline]
unsafe fn slot_of<K, V, Q>(
    meta: &Meta<K, V>,
    block: *mut MaybeUninit<Block<K, V>>,
    hashed: Hashed,
    key: &Q,
) -> Option<usize>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    // SAFETY: the lock is held: no writer changes the tags or the bits meanwhile.
    let (tags, occupied) = unsafe { (&*meta.tags.get(), *meta.occupied.get()) };
    let mut candidates = matching(tags, hashed.tag) & u32::from(occupied);
    while candidates != 0 {
        let i = candidates.trailing_zeros() as usize;
        candidates &= candidates - 1;
        // SAFETY: slot `i` is occupied, and no writer changes it while the lock is held.
        if unsafe { (*slot_ptr(block, i)).0.borrow() } == key {
            return Some(i);
        }
    }
    None
}

/// A bucket whose lock the caller holds shared.
pub(crate) struct Shared<'a, K, V> {
    meta: &'a Meta<K, V>,
    block: *mut MaybeUninit<Block<K, V>>,
}

/// A bucket whose lock the caller holds exclusively (or that no other thread can reach yet).
pub(crate) struct Exclusive<'a, K, V> {
    meta: &'a Meta<K, V>,
    block: *mut MaybeUninit<Block<K, V>>,
}

impl<'a, K, V> Shared<'a, K, V> {
    /// # Safety
    /// The caller holds `meta`'s lock shared (or exclusively) for `'a`, the bucket is not moved, and
    /// `block` is its block.
    #[inline]
    pub(crate) unsafe fn new(meta: &'a Meta<K, V>, block: &'a BlockCell<K, V>) -> Self {
        Self {
            meta,
            block: block.get(),
        }
    }

    #[inline]
    fn occupied(&self) -> u16 {
        // SAFETY: the lock is held: no writer changes it meanwhile.
        unsafe { *self.meta.occupied.get() }
    }

    #[inline]
    fn spill(&self) -> &'a [Spill<K, V>] {
        // SAFETY: as in `occupied`.
        unsafe {
            (*self.meta.spill.get())
                .as_deref()
                .map_or(&[], |v| v.as_slice())
        }
    }

    /// The entry of `key`, if the bucket holds it.
    #[inline]
    pub(crate) fn find<Q>(&self, hashed: Hashed, key: &Q) -> Option<(&'a K, &'a V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        // SAFETY: the lock is held, for `'a`.
        if let Some(i) = unsafe { slot_of(self.meta, self.block, hashed, key) } {
            // SAFETY: the slot found is occupied, and nobody writes it while the lock is held.
            let (k, v) = unsafe { &*slot_ptr(self.block, i) };
            return Some((k, v));
        }
        self.spill()
            .iter()
            .find(|s| s.hashed == hashed && s.key.borrow() == key)
            .map(|s| (&s.key, &s.value))
    }

    /// Calls `f` for every entry.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        let mut occupied = self.occupied();
        while occupied != 0 {
            let i = occupied.trailing_zeros() as usize;
            occupied &= occupied - 1;
            // SAFETY: slot `i` is occupied; the lock is held.
            let (k, v) = unsafe { &*slot_ptr(self.block, i) };
            f(k, v);
        }
        for s in self.spill() {
            f(&s.key, &s.value);
        }
    }
}

impl<'a, K, V> Exclusive<'a, K, V> {
    /// # Safety
    /// The caller holds `meta`'s lock exclusively for `'a` (or no other thread can reach the bucket), the
    /// bucket is not moved, and `block` is its block.
    #[inline]
    pub(crate) unsafe fn new(meta: &'a Meta<K, V>, block: &'a BlockCell<K, V>) -> Self {
        Self {
            meta,
            block: block.get(),
        }
    }

    #[inline]
    fn occupied_mut(&mut self) -> &mut u16 {
        // SAFETY: the exclusive lock is held, and `&mut self` makes this the only reference.
        unsafe { &mut *self.meta.occupied.get() }
    }

    #[inline]
    fn spill_mut(&mut self) -> &mut SpillList<K, V> {
        // SAFETY: as in `occupied_mut`.
        unsafe { &mut *self.meta.spill.get() }
    }

    /// The number of entries.
    pub(crate) fn len(&mut self) -> usize {
        self.occupied_mut().count_ones() as usize + self.spill_mut().as_ref().map_or(0, |s| s.len())
    }

    /// The value of `key`, to change in place.
    #[inline]
    pub(crate) fn find_mut<Q>(&mut self, hashed: Hashed, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        // SAFETY: the exclusive lock is held.
        if let Some(i) = unsafe { slot_of(self.meta, self.block, hashed, key) } {
            // SAFETY: the slot found is occupied; the exclusive lock and `&mut self` make this the only
            // access to it.
            return Some(unsafe { &mut (*slot_ptr(self.block, i)).1 });
        }
        self.spill_mut()
            .as_mut()?
            .iter_mut()
            .find(|s| s.hashed == hashed && s.key.borrow() == key)
            .map(|s| &mut s.value)
    }

    /// Adds an entry whose key the bucket does not hold (the caller looked), counting it in `count`,
    /// and returns its value and the number of entries the bucket now holds.
    ///
    /// The count goes first: its locked add then waits for no store (after the entry's stores, which may
    /// miss the cache, it would wait for them to land).
    #[inline]
    pub(crate) fn push(
        &mut self,
        hashed: Hashed,
        key: K,
        value: V,
        count: &AtomicIsize,
    ) -> (&mut V, usize) {
        count.fetch_add(1, Ordering::Relaxed);
        let len = self.len() + 1;
        (self.put(hashed, key, value), len)
    }

    /// Writes an entry into the free slot `i` and sets its bit.
    #[inline]
    fn fill(&mut self, i: usize, hashed: Hashed, key: K, value: V) {
        // SAFETY: slot `i` is free (its bit is clear); the bucket is this thread's (exclusive lock, or not
        // shared yet).
        unsafe {
            hash_ptr(self.block, i).write(hashed.low);
            slot_ptr(self.block, i).write((key, value));
            (*self.meta.tags.get())[i] = hashed.tag;
        }
        *self.occupied_mut() |= 1 << i;
    }

    /// Takes out the entry of `key` if `remove`, which sees its value first, says so, counting it out of
    /// `count`.
    pub(crate) fn remove_if<Q>(
        &mut self,
        hashed: Hashed,
        key: &Q,
        remove: impl FnOnce(&mut V) -> bool,
        count: &AtomicIsize,
    ) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        // SAFETY: the exclusive lock is held.
        if let Some(i) = unsafe { slot_of(self.meta, self.block, hashed, key) } {
            let slot = slot_ptr(self.block, i);
            // SAFETY: slot `i` is occupied; the exclusive lock and `&mut self` make this the only access.
            if !remove(unsafe { &mut (*slot).1 }) {
                return None;
            }
            count.fetch_sub(1, Ordering::Relaxed);
            *self.occupied_mut() &= !(1 << i);
            // SAFETY: the slot was occupied and its bit is now clear: the entry is moved out once.
            let taken = unsafe { slot.read() };
            self.refill(i);
            return Some(taken);
        }
        let spill = self.spill_mut().as_mut()?;
        let at = spill
            .iter()
            .position(|s| s.hashed == hashed && s.key.borrow() == key)?;
        if !remove(&mut spill[at].value) {
            return None;
        }
        count.fetch_sub(1, Ordering::Relaxed);
        let s = spill.swap_remove(at);
        if spill.is_empty() {
            *self.spill_mut() = None;
        }
        Some((s.key, s.value))
    }

    /// Moves a spilled entry (if any) into the free slot `i`, so that entries stay in place while they fit.
    fn refill(&mut self, i: usize) {
        let Some(spill) = self.spill_mut().as_mut() else {
            return;
        };
        let Some(s) = spill.pop() else { return };
        if spill.is_empty() {
            *self.spill_mut() = None;
        }
        self.fill(i, s.hashed, s.key, s.value);
    }

    /// Keeps the entries for which `keep` returns `true`, counting each entry taken out of `count` before
    /// it drops. Each removed entry is out of the bucket before it is dropped, so a panicking `keep` or
    /// `Drop` leaves the bucket whole and the count right.
    pub(crate) fn retain(
        &mut self,
        keep: &mut impl FnMut(&K, &mut V) -> bool,
        count: &AtomicIsize,
    ) {
        let mut occupied = *self.occupied_mut();
        while occupied != 0 {
            let i = occupied.trailing_zeros() as usize;
            occupied &= occupied - 1;
            let slot = slot_ptr(self.block, i);
            // SAFETY: slot `i` is occupied; the exclusive lock is held.
            let (k, v) = unsafe { &mut *slot };
            if !keep(k, v) {
                *self.occupied_mut() &= !(1 << i);
                count.fetch_sub(1, Ordering::Relaxed);
                // SAFETY: the bit is clear: this is the entry's one move out.
                drop(unsafe { slot.read() });
            }
        }
        if let Some(spill) = self.spill_mut().as_mut() {
            spill.retain_mut(|s| {
                let kept = keep(&s.key, &mut s.value);
                if !kept {
                    count.fetch_sub(1, Ordering::Relaxed);
                }
                kept
            });
            if spill.is_empty() {
                *self.spill_mut() = None;
            }
        }
        // Spilled entries move into the slots freed.
        let mut free = !*self.occupied_mut();
        while free != 0 && self.spill_mut().is_some() {
            let i = free.trailing_zeros() as usize;
            free &= free - 1;
            self.refill(i);
        }
    }

    /// Moves every entry into `low` or `high`, the buckets `2i` and `2i + 1` of an array of `buckets` (twice
    /// this one's) that this bucket `i` splits into, and marks this bucket moved. Bitwise: no key is hashed or compared,
    /// nothing runs that could panic.
    pub(crate) fn move_out<'b>(
        &mut self,
        buckets: usize,
        low: &mut Exclusive<'b, K, V>,
        high: &mut Exclusive<'b, K, V>,
    ) {
        let occupied = std::mem::take(self.occupied_mut());
        let mut left = occupied;
        while left != 0 {
            let i = left.trailing_zeros() as usize;
            left &= left - 1;
            // SAFETY: slot `i` was occupied (the bits are cleared already: each entry moves out once).
            let (hashed, (key, value)) = unsafe {
                (
                    Hashed {
                        low: hash_ptr(self.block, i).read(),
                        tag: (*self.meta.tags.get())[i],
                    },
                    slot_ptr(self.block, i).read(),
                )
            };
            let to = if hashed.bucket(buckets) & 1 == 0 {
                &mut *low
            } else {
                &mut *high
            };
            to.put(hashed, key, value);
        }
        if let Some(spill) = self.spill_mut().take() {
            for s in *spill {
                let to = if s.hashed.bucket(buckets) & 1 == 0 {
                    &mut *low
                } else {
                    &mut *high
                };
                to.put(s.hashed, s.key, s.value);
            }
        }
        // SAFETY: the exclusive lock is held.
        unsafe { *self.meta.moved.get() = true };
    }

    /// Adds an entry (whose key the bucket does not hold) in the first free slot, or to the spill list,
    /// and returns its value.
    #[inline]
    fn put(&mut self, hashed: Hashed, key: K, value: V) -> &mut V {
        let occupied = *self.occupied_mut();
        if occupied != u16::MAX {
            let i = (!occupied).trailing_zeros() as usize;
            self.fill(i, hashed, key, value);
            // SAFETY: slot `i` now holds the entry just written; `&mut self` makes this the only access.
            unsafe { &mut (*slot_ptr(self.block, i)).1 }
        } else {
            let spill = self.spill_mut().get_or_insert_with(new_spill);
            spill.push(Spill { hashed, key, value });
            &mut spill.last_mut().expect("just pushed").value
        }
    }

    /// Removes every entry, counting them out of `count`. As in `retain`, each entry is out before it
    /// drops.
    pub(crate) fn clear(&mut self, count: &AtomicIsize) {
        self.retain(&mut |_, _| false, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meta_is_half_a_cache_line_whatever_the_entries() {
        assert_eq!(std::mem::size_of::<Meta<u64, u64>>(), 32);
        assert_eq!(std::mem::size_of::<Meta<String, Vec<u8>>>(), 32);
        assert_eq!(std::mem::align_of::<Meta<u8, u8>>(), 32);
    }

    #[test]
    fn a_block_starts_a_cache_line_and_spans_as_few_as_it_can() {
        assert_eq!(std::mem::align_of::<Block<u64, u64>>(), 64);
        // Sixteen hashes, then sixteen 16-byte entries: five lines, none shared with a neighbour.
        assert_eq!(std::mem::size_of::<Block<u64, u64>>(), 5 * 64);
        assert_eq!(std::mem::size_of::<Block<u32, u32>>(), 3 * 64);
    }

    #[test]
    fn a_prefetch_of_a_freed_or_dangling_block_is_harmless() {
        let blocks = Box::<[BlockCell<u64, [u8; 4096]>]>::new_uninit_slice(2);
        let first: *const BlockCell<u64, [u8; 4096]> = blocks.as_ptr().cast();
        drop(blocks);
        // Freed (a big block goes back to the system: the addresses may be unmapped), then never allocated.
        for write in [false, true] {
            prefetch(first.wrapping_add(1), write);
            prefetch(
                std::ptr::NonNull::<BlockCell<u64, u64>>::dangling().as_ptr(),
                write,
            );
            prefetch(std::ptr::null::<BlockCell<u64, u64>>(), write);
        }
    }

    #[test]
    fn matching_finds_exactly_the_equal_tags() {
        let mut tags = [0u8; SLOTS];
        for (i, t) in tags.iter_mut().enumerate() {
            *t = (i as u8).wrapping_mul(37);
        }
        tags[3] = 200;
        tags[12] = 200;
        assert_eq!(matching(&tags, 200), (1 << 3) | (1 << 12));
        for tag in 0..=255u8 {
            let expected = tags
                .iter()
                .enumerate()
                .filter(|(_, t)| **t == tag)
                .fold(0u32, |m, (i, _)| m | (1 << i));
            assert_eq!(matching(&tags, tag), expected, "tag {tag}");
        }
    }

    #[test]
    fn keys_hashed_to_themselves_still_spread_over_the_buckets() {
        // An identity hasher (integers passed through) on 0..n: without the mixing, every key below
        // 2^32 / buckets would land in bucket 0.
        let buckets = 4096usize;
        let n = 16 * buckets as u64;
        let mut load = vec![0u32; buckets];
        let mut tags = [0u32; 256];
        for k in 0..n {
            let h = Hashed::new(k);
            load[h.bucket(buckets)] += 1;
            tags[usize::from(h.tag)] += 1;
        }
        let fullest = *load.iter().max().expect("buckets");
        assert!(fullest <= 40, "a bucket of {fullest} keys (16 on average)");
        let commonest = *tags.iter().max().expect("tags");
        assert!(
            commonest <= 2 * n as u32 / 256,
            "a tag on {commonest} of {n} keys"
        );
    }

    #[test]
    fn a_twice_larger_array_splits_a_bucket_in_two_neighbours() {
        for low in [0u32, 1, 77, u32::MAX / 3, u32::MAX - 1, u32::MAX] {
            let h = Hashed { low, tag: 0 };
            for n in [1usize, 3, 16, 1000] {
                let i = h.bucket(n);
                assert!(i < n);
                assert!([2 * i, 2 * i + 1].contains(&h.bucket(2 * n)), "{low} {n}");
            }
        }
    }
}
