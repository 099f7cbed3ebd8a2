//! The hash table under [`ConcurrentMap`](crate::ConcurrentMap): an array of buckets of sixteen entries,
//! each bucket with its own read-write lock in the same 32 bytes as its tags.
//!
//! Why a table of our own (docs/map.md has the figures): on dashmap, every operation writes its shard's
//! lock word, a line that the other core wrote last about half the time, besides the lines of the entry
//! itself; and hashbrown's power-of-two tables at seven-eighths load made a map given room for 2^17
//! entries twice the size it needed. Here an operation writes one line it reads anyway (its bucket's
//! lock, beside the tags it matches), threads on different buckets write nothing in common, and an array
//! holds as many buckets as the capacity asks (one per sixteen entries, any count).
//!
//! - **Counting** is striped by thread ([`Counts`]): an insert adds one to its thread's stripe, in a line
//!   of its own, and `len` sums the stripes.
//! - **Growth** doubles the array when an insert finds its bucket holding [`GROWTH_CHECK`] entries and the
//!   map holds more entries than the array has slots. One thread links the new array to the old one, then
//!   moves the entries bucket by bucket, each under its lock, into the two buckets it splits into (bitwise:
//!   the stored hash says where, so no user code runs and nothing can panic), marks it moved, and at the
//!   end makes the new array the current one. Nobody waits for it: a caller that locks a moved bucket lets
//!   go and goes on to the same key's bucket in the linked array, which holds everything of the moved one.
//!   The old array's entry blocks are freed once every bucket is moved (nothing reads a moved bucket's
//!   block); its metas, which a late caller may still lock, stay until the table drops (2 bytes a slot of
//!   every earlier array, less than the current array's metas in all).
//! - **Whole-table passes** (`for_each_shared`, `for_each_exclusive`) hold the growth mutex, so no entry
//!   moves under them: each entry is seen once.

mod bucket;
mod lock;

use std::{
    cell::UnsafeCell,
    marker::PhantomData,
    ptr::NonNull,
    sync::{
        Mutex, MutexGuard, OnceLock, TryLockError,
        atomic::{AtomicIsize, AtomicPtr, AtomicUsize, Ordering},
    },
};

use bucket::{BlockCell, Meta, SLOTS};
pub(crate) use bucket::{Exclusive, Hashed, Shared};
use flowmem_alloc::CachePadded;

/// An insert that leaves its bucket with this many entries (sixteen in place, four spilled) checks whether
/// the table should grow. Below it no insert pays for summing the counts: with evenly spread hashes, a
/// bucket reaches it in about 2 % of inserts at three-quarters load.
const GROWTH_CHECK: usize = SLOTS + 4;

/// The most buckets an array may have (2^31: 32 Gi slots); past it, buckets spill without limit.
const MAX_BUCKETS: usize = 1 << 31;

/// An array's entry blocks, one a bucket; `None` once a growth has moved every entry on.
type Blocks<K, V> = Option<Box<[BlockCell<K, V>]>>;

/// One array of buckets: the metas, the entry blocks (freed once a growth has moved every entry on), and
/// the array a growth is moving them to.
struct Array<K, V> {
    metas: Box<[Meta<K, V>]>,
    blocks: UnsafeCell<Blocks<K, V>>,
    /// Set (before any bucket is marked moved) by the growth that moves this array's entries on.
    next: AtomicPtr<Array<K, V>>,
    /// Where the blocks start, for [`bucket::prefetch`] before a bucket's lock is taken: set once, and
    /// still read (never dereferenced) after the blocks are freed.
    first_block: *const BlockCell<K, V>,
}

impl<K, V> Array<K, V> {
    fn new(buckets: usize) -> Self {
        let blocks = Box::<[BlockCell<K, V>]>::new_uninit_slice(buckets);
        let first_block = blocks.as_ptr().cast();
        Self {
            first_block,
            metas: (0..buckets).map(|_| Meta::new()).collect(),
            // SAFETY: `UnsafeCell<MaybeUninit<_>>` needs no initialisation.
            blocks: UnsafeCell::new(Some(unsafe { blocks.assume_init() })),
            next: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    fn buckets(&self) -> usize {
        self.metas.len()
    }

    /// Bucket `i`'s block.
    ///
    /// # Safety
    /// The caller holds bucket `i`'s lock and saw it not moved (the blocks are freed only after every
    /// bucket is moved), or owns the array.
    #[inline]
    unsafe fn block(&self, i: usize) -> &BlockCell<K, V> {
        // SAFETY: per the contract, the blocks are there and nobody frees them meanwhile.
        unsafe {
            &(*self.blocks.get())
                .as_ref()
                .expect("blocks of a bucket not moved")[i]
        }
    }
}

impl<K, V> Drop for Array<K, V> {
    fn drop(&mut self) {
        let Some(blocks) = self.blocks.get_mut().take() else {
            return;
        };
        for (meta, block) in self.metas.iter_mut().zip(blocks.iter()) {
            // SAFETY: the array is being dropped: nothing else reaches it; `block` is `meta`'s.
            unsafe { meta.drop_entries(block) };
        }
    }
}

/// Entry counts striped by thread, each stripe in a line of its own.
struct Counts {
    stripes: Box<[CachePadded<AtomicIsize>]>,
}

/// Stripes a table counts in: the next power of two of twice the available CPUs, at most 64.
fn stripes() -> usize {
    static STRIPES: OnceLock<usize> = OnceLock::new();
    *STRIPES.get_or_init(|| {
        (std::thread::available_parallelism().map_or(1, usize::from) * 2)
            .next_power_of_two()
            .min(64)
    })
}

thread_local! {
    /// This thread's stripe number (taken modulo a table's stripes).
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    };
}

impl Counts {
    fn new() -> Self {
        Self {
            stripes: (0..stripes())
                .map(|_| CachePadded::new(AtomicIsize::new(0)))
                .collect(),
        }
    }

    /// This thread's stripe.
    #[inline]
    fn mine(&self) -> &AtomicIsize {
        let i = STRIPE.with(|s| *s) & (self.stripes.len() - 1);
        &self.stripes[i]
    }

    fn sum(&self) -> usize {
        let total: isize = self.stripes.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        total.max(0) as usize
    }
}

/// The table: its current array, the arrays it grew out of, its counts.
pub(crate) struct Table<K, V> {
    current: AtomicPtr<Array<K, V>>,
    /// Earlier arrays (metas only), freed with the table. Also the growth mutex: whoever holds it may
    /// replace `current`.
    retired: Mutex<Vec<NonNull<Array<K, V>>>>,
    counts: Counts,
    _owns: PhantomData<Array<K, V>>,
}

// SAFETY: the table owns its keys and values (moved between threads: `Send`) and hands out `&K`/`&V` to
// several threads at once under shared bucket locks (`Sync`); everything else it shares is atomics and
// memory guarded by bucket locks or the growth mutex.
unsafe impl<K: Send, V: Send> Send for Table<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Table<K, V> {}

impl<K, V> Table<K, V> {
    /// A table with room for `capacity` entries before it grows.
    ///
    /// # Panics
    /// If `capacity` needs more than [`MAX_BUCKETS`] buckets or more than `isize::MAX` bytes ("capacity
    /// overflow", as std's maps say it).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let buckets = capacity.div_ceil(SLOTS).max(1);
        let bucket_bytes =
            std::mem::size_of::<Meta<K, V>>() + std::mem::size_of::<BlockCell<K, V>>();
        let fits = buckets <= MAX_BUCKETS
            && buckets
                .checked_mul(bucket_bytes)
                .is_some_and(|bytes| bytes <= isize::MAX as usize);
        assert!(
            fits,
            "ConcurrentMap::with_capacity({capacity}): capacity overflow (at most {} entries: buckets of \
             {SLOTS} entries, {} bytes each)",
            MAX_BUCKETS
                .min(isize::MAX as usize / bucket_bytes)
                .saturating_mul(SLOTS),
            bucket_bytes,
        );
        Self {
            current: AtomicPtr::new(Box::into_raw(Box::new(Array::new(buckets)))),
            retired: Mutex::new(Vec::new()),
            counts: Counts::new(),
            _owns: PhantomData,
        }
    }

    #[inline]
    fn array(&self) -> &Array<K, V> {
        // SAFETY: `current` always points to a live array: replaced arrays are kept until the table drops.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// Entries in place before the current array grows.
    pub(crate) fn slots(&self) -> usize {
        self.array().buckets() * SLOTS
    }

    /// The number of entries: the sum of the stripes (exact when no insert or removal runs meanwhile).
    pub(crate) fn len(&self) -> usize {
        self.counts.sum()
    }

    /// The array a growth moved `array`'s buckets to (one of them was seen moved, under its lock).
    #[cold]
    fn next_of(array: &Array<K, V>) -> &Array<K, V> {
        // SAFETY: a growth stores `next` before it marks any bucket moved, and the caller saw a bucket moved
        // under that bucket's lock (which the growth held when marking it): the store is visible, the
        // pointer is not null, and arrays live until the table drops.
        unsafe { &*array.next.load(Ordering::Acquire) }
    }

    /// Locks `hashed`'s bucket, shared or `exclusive`, in the array that holds its entries (the current one,
    /// or the one a growth is moving a locked-and-moved bucket to), and returns that array and the bucket's
    /// number. The caller releases the lock.
    #[inline]
    fn lock_bucket(&self, hashed: Hashed, exclusive: bool) -> (&Array<K, V>, usize) {
        let mut array = self.array();
        loop {
            let i = hashed.bucket(array.buckets());
            bucket::prefetch(array.first_block.wrapping_add(i), exclusive);
            let lock = &array.metas[i].lock;
            if exclusive {
                lock.write()
            } else {
                lock.read()
            }
            // SAFETY: the lock is held.
            if !unsafe { array.metas[i].moved() } {
                return (array, i);
            }
            if exclusive {
                lock.write_unlock()
            } else {
                lock.read_unlock()
            }
            array = Self::next_of(array);
        }
    }

    /// Runs `f` on `hashed`'s bucket under its shared lock.
    #[inline]
    pub(crate) fn read<R>(&self, hashed: Hashed, f: impl FnOnce(Shared<'_, K, V>) -> R) -> R {
        let (array, i) = self.lock_bucket(hashed, false);
        let meta = &array.metas[i];
        let _unlock = Unlock(|| meta.lock.read_unlock());
        // SAFETY: the shared lock is held until `_unlock` drops, after `f`; the bucket is not moved.
        f(unsafe { Shared::new(meta, array.block(i)) })
    }

    /// Runs `f` on `hashed`'s bucket under its exclusive lock, with this thread's count stripe for the
    /// entries it adds or removes. `f` returns its result and, when it added an entry, how many the bucket
    /// now holds: an insert that leaves the bucket crowded may then grow the table.
    #[inline]
    pub(crate) fn write<R>(
        &self,
        hashed: Hashed,
        f: impl FnOnce(&mut Exclusive<'_, K, V>, &AtomicIsize) -> (R, Option<usize>),
    ) -> R {
        let count = self.counts.mine();
        let (array, i) = self.lock_bucket(hashed, true);
        let meta = &array.metas[i];
        let unlock = Unlock(|| meta.lock.write_unlock());
        // SAFETY: the exclusive lock is held until `unlock` drops, after `f`; the bucket is not moved.
        let (result, added) = f(&mut unsafe { Exclusive::new(meta, array.block(i)) }, count);
        drop(unlock);
        if let Some(bucket_len) = added
            && bucket_len >= GROWTH_CHECK
            && self.len() > array.buckets() * SLOTS
        {
            self.grow(array);
        }
        result
    }

    /// The growth mutex (a panic while it was held cannot have left the arrays half-changed: a growth runs
    /// no user code, and whole-table passes change entries only under bucket locks).
    fn growth(&self) -> MutexGuard<'_, Vec<NonNull<Array<K, V>>>> {
        self.retired.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Doubles the array, if `seen` is still the current one and no one else holds the growth mutex.
    #[cold]
    #[inline(never)]
    fn grow(&self, seen: &Array<K, V>) {
        let mut retired = match self.retired.try_lock() {
            Ok(guard) => guard,
            // A user closure panicked in a whole-table pass: nothing is half-changed (see `growth`).
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Another growth or a whole-table pass: the next crowded insert checks again.
            Err(TryLockError::WouldBlock) => return,
        };
        let old_ptr = self.current.load(Ordering::Acquire);
        if !std::ptr::eq(old_ptr, seen) || seen.buckets() > MAX_BUCKETS / 2 {
            return;
        }
        let old = seen;
        let old_ptr = NonNull::new(old_ptr).expect("the current array is never null");
        let new_ptr = Box::into_raw(Box::new(Array::new(old.buckets() * 2)));
        // SAFETY: just made; freed only with the table.
        let new = unsafe { &*new_ptr };
        // Before any bucket is marked moved: a caller that finds one moved goes on to `next`.
        old.next.store(new_ptr, Ordering::Release);
        for (i, meta) in old.metas.iter().enumerate() {
            meta.lock.write();
            let _unlock = Unlock(|| meta.lock.write_unlock());
            // SAFETY: the exclusive lock is held and only a growth moves buckets (this one holds the growth
            // mutex), so bucket `i` is not moved. Buckets `2i` and `2i + 1` of the new array are reached
            // only through a moved bucket `i`: until this one is marked, under the lock held here, no other
            // thread touches them.
            unsafe {
                let mut from = Exclusive::new(meta, old.block(i));
                let mut low = Exclusive::new(&new.metas[2 * i], new.block(2 * i));
                let mut high = Exclusive::new(&new.metas[2 * i + 1], new.block(2 * i + 1));
                from.move_out(new.buckets(), &mut low, &mut high);
            }
        }
        // SAFETY: every bucket of `old` is marked moved, under its lock: a caller that locks one from now on
        // sees the mark and never reads a block, and those that read one did so before the growth took
        // its lock. So the blocks (emptied, the entries moved out bitwise) can go.
        drop(unsafe { (*old.blocks.get()).take() });
        self.current.store(new_ptr, Ordering::Release);
        // The metas stay: a caller may have loaded `old` and be about to lock one of its buckets.
        retired.push(old_ptr);
    }

    /// Calls `f` on every bucket under its shared lock, one at a time, with no growth meanwhile.
    pub(crate) fn for_each_shared(&self, mut f: impl FnMut(Shared<'_, K, V>)) {
        let _no_growth = self.growth();
        let array = self.array();
        for (i, meta) in array.metas.iter().enumerate() {
            meta.lock.read();
            let _unlock = Unlock(|| meta.lock.read_unlock());
            // SAFETY: the shared lock is held; no bucket moves while the growth mutex is held.
            f(unsafe { Shared::new(meta, array.block(i)) });
        }
    }

    /// Calls `f` on every bucket under its exclusive lock, one at a time, with no growth meanwhile, with
    /// this thread's count stripe for the entries it takes out.
    pub(crate) fn for_each_exclusive(
        &self,
        mut f: impl FnMut(&mut Exclusive<'_, K, V>, &AtomicIsize),
    ) {
        let _no_growth = self.growth();
        let count = self.counts.mine();
        let array = self.array();
        for (i, meta) in array.metas.iter().enumerate() {
            meta.lock.write();
            let _unlock = Unlock(|| meta.lock.write_unlock());
            // SAFETY: the exclusive lock is held; no bucket moves while the growth mutex is held.
            f(&mut unsafe { Exclusive::new(meta, array.block(i)) }, count);
        }
    }
}

impl<K, V> Drop for Table<K, V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread reaches the table; every pointer here came from
        // `Box::into_raw` and is freed once.
        unsafe {
            for old in self
                .retired
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..)
            {
                drop(Box::from_raw(old.as_ptr()));
            }
            drop(Box::from_raw(*self.current.get_mut()));
        }
    }
}

/// Runs its closure when dropped (releases a bucket lock, also when a user closure panics).
struct Unlock<F: FnMut()>(F);

impl<F: FnMut()> Drop for Unlock<F> {
    #[inline]
    fn drop(&mut self) {
        (self.0)();
    }
}
