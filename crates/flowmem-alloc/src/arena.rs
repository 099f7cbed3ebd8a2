//! [`Arena`]: a bump arena on bumpalo that keeps every block it ever reserved.

use std::{alloc::Layout, cell::UnsafeCell, fmt, mem, ptr::NonNull};

use bumpalo::Bump;

use crate::AllocError;

/// Size of an arena block unless [`Arena::with_block_size`] says otherwise: 64 KiB.
pub const DEFAULT_BLOCK_SIZE: usize = 64 * 1024;

/// Smallest block size an arena accepts; smaller requests are rounded up to it.
pub const MIN_BLOCK_SIZE: usize = 512;

/// Bytes of a block taken by bumpalo's chunk footer and the allocator's header (bumpalo's `OVERHEAD`): a
/// block of `n` bytes asks bumpalo for `n - BLOCK_OVERHEAD` usable bytes, so that the whole allocation is
/// `n` bytes and not the next page or power of two up.
const BLOCK_OVERHEAD: usize = 64;

/// The smallest large-allocation threshold (a quarter of the smallest block).
const MIN_LARGE_THRESHOLD: usize = MIN_BLOCK_SIZE / 4;

/// A bump arena: allocation is a pointer bump, and everything is freed at once by [`reset`](Arena::reset) or drop.
///
/// Built on [`bumpalo::Bump`], with one difference that matters for servers and executors that do the same
/// work over and over: **a reset keeps every block**. bumpalo's own reset keeps only the last chunk, so the
/// next cycle allocates again; an `Arena` replays the next cycle in the blocks of the last one, and a cycle of
/// the same work after a reset makes no call to the global allocator at all.
///
/// Memory comes in blocks of [`DEFAULT_BLOCK_SIZE`] (64 KiB) unless set otherwise. An allocation larger than a
/// quarter of a block gets a block of its own, so that it does not waste the tail of the current one; such
/// blocks are kept across resets too and reused for allocations that fit them.
///
/// An optional byte limit ([`with_limit`](Arena::with_limit)) holds on every allocation: the `try_*`
/// methods return [`AllocError::LimitExceeded`] and the others panic with that message. Nothing aborts, and
/// a refused allocation leaves the arena as it was. The limit costs the fast path nothing: the room of the
/// current block is capped at what the limit leaves, so an allocation that would pass it fails the bump
/// and goes to the slow path, which decides.
///
/// Values are not dropped: the arena frees their memory, but it runs no destructor (use
/// [`TypedArena`](crate::TypedArena) for values that own resources).
///
/// `Arena` is `Send` but not `Sync`; share allocation across threads with [`SyncArena`](crate::SyncArena).
///
/// # Example
///
/// ```
/// use flowmem_alloc::Arena;
///
/// let mut arena = Arena::new();
/// for request in 0..3 {
///     let id = arena.alloc(request as u64);
///     let name = arena.alloc_str("node-a");
///     let data = arena.alloc_slice_copy(&[1u32, 2, 3]);
///     assert_eq!((*id, name, &*data), (request as u64, "node-a", &[1, 2, 3][..]));
///     arena.reset(); // the block stays for the next request
/// }
/// assert_eq!(arena.stats().blocks, 1);
/// ```
pub struct Arena {
    /// The block allocations bump into. Its bumpalo allocation limit equals its capacity, so bumpalo never
    /// grows it: when it is full, [`Arena::alloc_slow`] moves on to the next block.
    current: UnsafeCell<Bump>,
    /// Everything but the current block; touched only on the slow path and by `&mut self` methods.
    blocks: UnsafeCell<Blocks>,
    /// Byte limit on [`ArenaStats::bytes_used`], if any.
    limit: Option<usize>,
    /// Allocations whose footprint exceeds this (a quarter of a block) always get a block of their own, so
    /// that every cycle routes the same work to the same blocks.
    large_threshold: usize,
}

/// The arena's blocks other than the current one.
struct Blocks {
    /// Size of a new block.
    block_size: usize,
    /// Blocks filled during this cycle, in the order they were used.
    filled: Vec<Bump>,
    /// Reset blocks waiting to be used, the next one last.
    spare: Vec<Bump>,
    /// Blocks holding one large allocation each; `true` when in use this cycle.
    large: Vec<(Bump, bool)>,
    /// Bytes used in `filled` blocks.
    used_filled: usize,
    /// Bytes left unused at the end of `filled` blocks.
    wasted: usize,
    /// Bytes used in `large` blocks.
    used_large: usize,
    /// Bytes the current block holds to cap its room at what the limit leaves (see
    /// `Arena::fence_current`): not in use, not counted in `bytes_used`.
    fence: usize,
    /// Bytes of all blocks together.
    reserved: usize,
}

/// What an arena holds, from [`Arena::stats`] or [`SyncArena::stats`](crate::SyncArena::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ArenaStats {
    /// Blocks reserved from the global allocator (kept across resets).
    pub blocks: usize,
    /// Bytes handed out since the last reset, with alignment padding.
    pub bytes_used: usize,
    /// Bytes of all blocks together.
    pub bytes_reserved: usize,
    /// Bytes left unused at the end of blocks that the arena has moved past since the last reset.
    pub wasted: usize,
}

impl ArenaStats {
    pub(crate) fn add(&mut self, other: ArenaStats) {
        self.blocks += other.blocks;
        self.bytes_used += other.bytes_used;
        self.bytes_reserved += other.bytes_reserved;
        self.wasted += other.wasted;
    }
}

/// An empty bumpalo arena that refuses to allocate a chunk of its own.
fn empty_bump() -> Bump {
    let bump = Bump::new();
    bump.set_allocation_limit(Some(0));
    bump
}

/// A bumpalo arena holding exactly one chunk of at least `capacity` bytes, which it will never grow.
fn new_block(capacity: usize) -> Result<Bump, AllocError> {
    let bump = Bump::try_with_capacity(capacity).map_err(|_| AllocError::OutOfMemory {
        requested: capacity,
    })?;
    bump.set_allocation_limit(Some(bump.allocated_bytes()));
    Ok(bump)
}

/// Bytes used in a one-chunk bumpalo arena.
fn used_in(bump: &Bump) -> usize {
    bump.allocated_bytes() - bump.chunk_capacity()
}

/// Worst-case bytes an allocation of `layout` takes from a block.
fn footprint(layout: Layout) -> usize {
    layout.size().saturating_add(layout.align() - 1)
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

impl Arena {
    /// An empty arena with blocks of [`DEFAULT_BLOCK_SIZE`]. Reserves nothing until the first allocation.
    pub fn new() -> Arena {
        Arena::with_block_size(DEFAULT_BLOCK_SIZE)
    }

    /// An empty arena whose blocks are `block_size` bytes (at least [`MIN_BLOCK_SIZE`]), allocator
    /// bookkeeping included: a 4096-byte block has a little less than 4096 usable bytes. Sizes below 4 KiB
    /// round up to a power of two, larger ones to a multiple of 4 KiB (bumpalo sizes its chunks so).
    ///
    /// ```
    /// let arena = flowmem_alloc::Arena::with_block_size(4096);
    /// arena.alloc([0u8; 1000]);
    /// arena.alloc([0u8; 1000]);
    /// let stats = arena.stats();
    /// assert_eq!(stats.blocks, 1);
    /// assert!(stats.bytes_reserved > 3900 && stats.bytes_reserved <= 4096);
    /// ```
    pub fn with_block_size(block_size: usize) -> Arena {
        let block_size = block_size.max(MIN_BLOCK_SIZE);
        Arena {
            large_threshold: block_size / 4,
            current: UnsafeCell::new(empty_bump()),
            blocks: UnsafeCell::new(Blocks {
                block_size,
                filled: Vec::new(),
                spare: Vec::new(),
                large: Vec::new(),
                used_filled: 0,
                fence: 0,
                wasted: 0,
                used_large: 0,
                reserved: 0,
            }),
            limit: None,
        }
    }

    /// An arena whose first block, of at least `capacity` bytes, is reserved now, and which later
    /// allocations use until it is full, large ones included: the arena's block size becomes
    /// `capacity` (with the allocator's bookkeeping; at least [`DEFAULT_BLOCK_SIZE`]), so an allocation
    /// gets a block of its own only beyond a quarter of that, and blocks after the first are as large.
    ///
    /// ```
    /// let arena = flowmem_alloc::Arena::with_capacity(1 << 20);
    /// for _ in 0..20 {
    ///     arena.alloc_zeroed_bytes(20 * 1024);
    /// }
    /// assert_eq!(arena.stats().blocks, 1); // the reserved megabyte holds them all
    /// ```
    ///
    /// # Panics
    ///
    /// If the global allocator cannot provide the block (see [`try_with_capacity`](Arena::try_with_capacity)).
    pub fn with_capacity(capacity: usize) -> Arena {
        Arena::try_with_capacity(capacity).unwrap_or_else(|e| e.raise())
    }

    /// Like [`with_capacity`](Arena::with_capacity), with an error instead of a panic when memory runs out.
    pub fn try_with_capacity(capacity: usize) -> Result<Arena, AllocError> {
        let mut arena = Arena::with_block_size(
            capacity
                .saturating_add(BLOCK_OVERHEAD)
                .max(DEFAULT_BLOCK_SIZE),
        );
        let block = new_block(capacity.max(MIN_BLOCK_SIZE - BLOCK_OVERHEAD))?;
        let blocks = arena.blocks.get_mut();
        blocks.reserved += block.allocated_bytes();
        *arena.current.get_mut() = block;
        Ok(arena)
    }

    /// Sets a limit on [`ArenaStats::bytes_used`]: an allocation that would take the arena past `limit`
    /// bytes is refused. In the current block the bytes it would take, alignment padding included, are
    /// what counts; an allocation that needs a new block (or a block of its own) is refused if its
    /// worst-case footprint (size plus alignment − 1) would pass the limit.
    ///
    /// ```
    /// use flowmem_alloc::{AllocError, Arena};
    ///
    /// let arena = Arena::new().with_limit(1024);
    /// assert!(arena.try_alloc_slice_copy(&[0u8; 1000]).is_ok());
    /// let err = arena.try_alloc_slice_copy(&[0u8; 100]).unwrap_err();
    /// assert!(matches!(err, AllocError::LimitExceeded { limit: 1024, .. }));
    /// assert!(arena.try_alloc(1u8).is_ok()); // still usable below the limit
    /// ```
    pub fn with_limit(mut self, limit: usize) -> Arena {
        self.set_limit(Some(limit));
        self
    }

    /// Changes or removes the byte limit (see [`with_limit`](Arena::with_limit)). A lower limit caps the
    /// current block's room at once; room already capped stays so until the arena moves to its next
    /// block or is reset.
    pub fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = limit;
        self.fence_current();
    }

    /// With a limit, takes from the current block's room what the limit does not leave (held as the
    /// block's `fence`, not counted as used), so that the fast path, which does not look at the limit,
    /// cannot pass it: an allocation that would fails the bump and goes to the slow path.
    fn fence_current(&self) {
        let Some(limit) = self.limit else {
            return;
        };
        let allowed = limit.saturating_sub(self.bytes_used());
        // SAFETY: no reference into `blocks` or `current` is alive: callers are slow paths and `&mut self`
        // methods whose own borrows have ended, `bytes_used`'s borrows ended with it, and `Arena` is not
        // `Sync`.
        let (blocks, current) = unsafe { (&mut *self.blocks.get(), &*self.current.get()) };
        let room = current.chunk_capacity();
        if room > allowed {
            let extra = room - allowed;
            let layout = Layout::from_size_align(extra, 1).expect("an extent within a block");
            if current.try_alloc_layout(layout).is_ok() {
                blocks.fence += extra;
            }
        }
    }

    /// The byte limit, if one is set.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The size of a new block.
    pub fn block_size(&self) -> usize {
        // SAFETY: `blocks` is only written by the slow path and `&mut self` methods; neither can run while
        // this shared borrow, which ends before the function returns, is alive (`Arena` is not `Sync`).
        unsafe { (*self.blocks.get()).block_size }
    }

    /// Moves `val` into the arena and returns a mutable reference to it.
    ///
    /// # Panics
    ///
    /// If a byte limit is set and would be exceeded; aborts through `handle_alloc_error` if the global
    /// allocator has no memory for a new block, as `Box::new` does.
    #[inline]
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn alloc<T>(&self, val: T) -> &mut T {
        match self.try_alloc(val) {
            Ok(r) => r,
            Err(e) => e.raise(),
        }
    }

    /// Moves `val` into the arena, or returns an error (dropping `val`) when the limit or memory runs out.
    #[inline]
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn try_alloc<T>(&self, val: T) -> Result<&mut T, AllocError> {
        let ptr = self.try_alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: `ptr` is a fresh allocation with `T`'s layout (valid, aligned, unaliased), and it stays
        // allocated and unshared until `reset(&mut self)` or drop, which the returned borrow of `self` rules out.
        unsafe {
            ptr.as_ptr().write(val);
            Ok(&mut *ptr.as_ptr())
        }
    }

    /// Copies `src` into the arena.
    ///
    /// ```
    /// let arena = flowmem_alloc::Arena::new();
    /// let ids = arena.alloc_slice_copy(&[3u32, 1, 2]);
    /// ids.sort();
    /// assert_eq!(ids, &[1, 2, 3]);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`alloc`](Arena::alloc).
    #[inline]
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        self.try_alloc_slice_copy(src).unwrap_or_else(|e| e.raise())
    }

    /// Copies `src` into the arena, or returns an error when the limit or memory runs out.
    #[inline]
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
        // A slice that exists already fits in `isize`, so its layout is valid.
        let layout = Layout::for_value(src);
        let ptr = self.try_alloc_layout(layout)?.cast::<T>();
        // SAFETY: `ptr` is valid for `src.len()` writes of `T` and aligned (allocated with the slice's layout);
        // it cannot overlap `src`, which lives outside this fresh allocation. `T: Copy`, so a bitwise copy is a
        // valid value, and the memory stays ours until `reset(&mut self)` or drop, as in `try_alloc`.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), ptr.as_ptr(), src.len());
            Ok(std::slice::from_raw_parts_mut(ptr.as_ptr(), src.len()))
        }
    }

    /// Copies `s` into the arena (one copy, no other allocation) and returns the copy.
    ///
    /// ```
    /// let arena = flowmem_alloc::Arena::new();
    /// let owned = String::from("extract-features");
    /// let copy: &str = arena.alloc_str(&owned);
    /// drop(owned);
    /// assert_eq!(copy, "extract-features");
    /// ```
    ///
    /// # Panics
    ///
    /// As [`alloc`](Arena::alloc).
    #[inline]
    pub fn alloc_str(&self, s: &str) -> &str {
        self.try_alloc_str(s).unwrap_or_else(|e| e.raise())
    }

    /// Copies `s` into the arena, or returns an error when the limit or memory runs out.
    #[inline]
    pub fn try_alloc_str(&self, s: &str) -> Result<&str, AllocError> {
        let bytes = self.try_alloc_slice_copy(s.as_bytes())?;
        // SAFETY: `bytes` is an exact copy of the bytes of a `str`, so it is valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// Allocates `len` zeroed bytes.
    ///
    /// # Panics
    ///
    /// As [`alloc`](Arena::alloc).
    #[inline]
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn alloc_zeroed_bytes(&self, len: usize) -> &mut [u8] {
        self.try_alloc_zeroed_bytes(len)
            .unwrap_or_else(|e| e.raise())
    }

    /// Allocates `len` zeroed bytes, or returns an error when the limit or memory runs out, or `len` does
    /// not fit in `isize`.
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn try_alloc_zeroed_bytes(&self, len: usize) -> Result<&mut [u8], AllocError> {
        let layout = Layout::array::<u8>(len)
            .map_err(|_| AllocError::CapacityOverflow { len, elem_size: 1 })?;
        let ptr = self.try_alloc_layout(layout)?;
        // SAFETY: `ptr` is valid for `len` byte writes; after `write_bytes` all `len` bytes are initialised,
        // and the fresh allocation stays ours until `reset(&mut self)` or drop, as in `try_alloc`.
        unsafe {
            ptr.as_ptr().write_bytes(0, len);
            Ok(std::slice::from_raw_parts_mut(ptr.as_ptr(), len))
        }
    }

    /// Reserves memory for `layout` and returns a pointer to it (uninitialised), or an error when the limit
    /// or memory runs out. The memory stays valid until [`reset`](Arena::reset) or drop.
    #[inline]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // No test of the limit here: the current block's room is capped at what it leaves
        // (`fence_current`), and the slow paths check it. The large-allocation threshold is never below
        // `MIN_LARGE_THRESHOLD`: for a type known to fit under it (most), the compiler drops this test.
        if footprint(layout) > MIN_LARGE_THRESHOLD && footprint(layout) > self.large_threshold {
            return self.alloc_large(layout);
        }
        // SAFETY: the current block is replaced only by `alloc_slow` and `&mut self` methods, never while a
        // reference to it is alive: this one ends with the fast-path call below, before `alloc_slow` runs,
        // and `Arena` is not `Sync`, so no other thread holds one.
        let current = unsafe { &*self.current.get() };
        match current.try_alloc_layout(layout) {
            Ok(ptr) => Ok(ptr),
            Err(_) => self.alloc_slow(layout),
        }
    }

    #[cold]
    fn check_limit(&self, limit: usize, layout: Layout) -> Result<(), AllocError> {
        let used = self.bytes_used();
        let requested = footprint(layout);
        if used.saturating_add(requested) > limit {
            return Err(AllocError::LimitExceeded {
                limit,
                used,
                requested,
            });
        }
        Ok(())
    }

    /// An allocation too large for a shared block gets a block of its own.
    #[cold]
    #[inline(never)]
    fn alloc_large(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if let Some(limit) = self.limit {
            self.check_limit(limit, layout)?;
        }
        // SAFETY: no reference into `blocks` is alive: every other borrow is local to a method that does not
        // call back into the arena, and `Arena` is not `Sync`.
        let ptr = unsafe { &mut *self.blocks.get() }.alloc_large(layout)?;
        // Bytes in use grew outside the current block: its room shrinks by as much.
        self.fence_current();
        Ok(ptr)
    }

    /// The current block is full (or there is none yet): move to the next block.
    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // The bump failed for want of room or because the limit's fence is reached: the limit decides.
        if let Some(limit) = self.limit {
            self.check_limit(limit, layout)?;
        }
        // No reference into `blocks` or `current` is alive: the fast path's borrow of `current` has ended,
        // other borrows are local to methods that do not call back into the arena, and `Arena` is not `Sync`.
        // Earlier allocations stay valid: moving a `Bump` value moves its handle, not its chunk.
        // SAFETY: as just said, this is the only reference to `blocks`.
        let blocks = unsafe { &mut *self.blocks.get() };
        // SAFETY: as above.
        let current = unsafe { &mut *self.current.get() };
        let next = match blocks.spare.pop() {
            Some(block) => block,
            None => {
                let block = new_block(blocks.block_size - BLOCK_OVERHEAD)?;
                blocks.reserved += block.allocated_bytes();
                block
            }
        };
        let full = mem::replace(current, next);
        if full.allocated_bytes() > 0 {
            let used = used_in(&full) - mem::take(&mut blocks.fence);
            blocks.used_filled += used;
            blocks.wasted += full.allocated_bytes() - used;
            blocks.filled.push(full);
        }
        let ptr = current
            .try_alloc_layout(layout)
            .map_err(|_| AllocError::OutOfMemory {
                requested: layout.size(),
            })?;
        self.fence_current();
        Ok(ptr)
    }

    /// Frees everything allocated so far, keeping every block for the allocations to come.
    ///
    /// After a reset, the same sequence of allocations is served from the same blocks, with no call to the
    /// global allocator.
    #[inline]
    pub fn reset(&mut self) {
        let blocks = self.blocks.get_mut();
        if blocks.filled.is_empty() && blocks.used_large == 0 {
            // Everything fitted in the current block: rewind it.
            blocks.fence = 0;
            self.current.get_mut().reset();
        } else {
            self.reset_all();
        }
        if self.limit.is_some() {
            self.fence_current();
        }
    }

    #[cold]
    fn reset_all(&mut self) {
        let blocks = self.blocks.get_mut();
        let current = self.current.get_mut();
        // Blocks go back to `spare` (a stack) so that they are used again in the same order: the first
        // filled block on top, then the rest, then the current one, then the blocks this cycle never reached.
        // Draining keeps the vectors' capacity, so a steady state makes no allocation here either.
        let last = mem::replace(current, empty_bump());
        blocks.spare.reserve(blocks.filled.len() + 1);
        if last.allocated_bytes() > 0 {
            let mut last = last;
            last.reset();
            blocks.spare.push(last);
        }
        for mut block in blocks.filled.drain(..).rev() {
            block.reset();
            blocks.spare.push(block);
        }
        for (block, in_use) in &mut blocks.large {
            if *in_use {
                block.reset();
                *in_use = false;
            }
        }
        blocks.used_filled = 0;
        blocks.used_large = 0;
        blocks.wasted = 0;
        blocks.fence = 0;
        if let Some(first) = blocks.spare.pop() {
            *current = first;
        }
    }

    /// Bytes handed out since the last reset, padding included.
    pub fn bytes_used(&self) -> usize {
        // SAFETY: shared reads of state that only the slow path and `&mut self` methods write; neither runs
        // while these borrows, which end before the function returns, are alive (`Arena` is not `Sync`).
        let (blocks, current) = unsafe { (&*self.blocks.get(), &*self.current.get()) };
        blocks.used_filled + blocks.used_large + used_in(current) - blocks.fence
    }

    /// Blocks, bytes used, bytes reserved and bytes wasted.
    pub fn stats(&self) -> ArenaStats {
        // SAFETY: as in `bytes_used`.
        let (blocks, current) = unsafe { (&*self.blocks.get(), &*self.current.get()) };
        let current_blocks = usize::from(current.allocated_bytes() > 0);
        ArenaStats {
            blocks: blocks.filled.len() + blocks.spare.len() + blocks.large.len() + current_blocks,
            bytes_used: self.bytes_used(),
            bytes_reserved: blocks.reserved,
            wasted: blocks.wasted,
        }
    }
}

impl Blocks {
    /// Serves an allocation too large for a shared block from a block of its own: a free large block that
    /// fits, or a new one.
    fn alloc_large(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let need = footprint(layout);
        let index = match self
            .large
            .iter()
            .position(|(block, in_use)| !*in_use && block.allocated_bytes() >= need)
        {
            Some(index) => index,
            None => {
                let block = new_block(need)?;
                self.reserved += block.allocated_bytes();
                self.large.push((block, false));
                self.large.len() - 1
            }
        };
        let (block, in_use) = &mut self.large[index];
        let ptr = block
            .try_alloc_layout(layout)
            .map_err(|_| AllocError::OutOfMemory {
                requested: layout.size(),
            })?;
        *in_use = true;
        self.used_large += used_in(block);
        Ok(ptr)
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("block_size", &self.block_size())
            .field("limit", &self.limit)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_arena_reserves_nothing() {
        let arena = Arena::new();
        assert_eq!(arena.stats(), ArenaStats::default());
    }

    #[test]
    fn blocks_are_kept_and_reused_in_order_after_reset() {
        let mut arena = Arena::with_block_size(1024);
        let fill = |arena: &Arena| {
            for i in 0..1000u64 {
                arena.alloc(i);
            }
        };
        fill(&arena);
        let first = arena.stats();
        assert!(first.blocks >= 8, "{first:?}");
        for _ in 0..3 {
            arena.reset();
            assert_eq!(arena.bytes_used(), 0);
            fill(&arena);
            assert_eq!(arena.stats(), first);
        }
    }

    #[test]
    fn large_allocations_get_their_own_block_and_keep_it() {
        let mut arena = Arena::with_block_size(1024);
        let small = arena.alloc(1u8) as *const u8;
        let big = arena.alloc_zeroed_bytes(10_000);
        assert!(big.iter().all(|&b| b == 0));
        let stats = arena.stats();
        assert_eq!(stats.blocks, 2);
        // The large allocation did not end the current block.
        let next_small = arena.alloc(2u8) as *const u8;
        assert_eq!(small as usize - 1, next_small as usize);
        arena.reset();
        arena.alloc(1u8);
        arena.alloc_zeroed_bytes(9_000);
        assert_eq!(arena.stats().bytes_reserved, stats.bytes_reserved);
    }

    #[test]
    fn large_allocations_route_the_same_way_every_cycle() {
        // A 300-byte allocation is large for 1 KiB blocks. If it went into the current block whenever it
        // fitted, the second cycle would put it beside the small values and need a second block.
        let mut arena = Arena::with_block_size(1024);
        let cycle = |a: &Arena| {
            a.alloc_zeroed_bytes(300);
            for i in 0..110u64 {
                a.alloc(i);
            }
        };
        cycle(&arena);
        let first = arena.stats();
        assert_eq!(first.blocks, 2);
        for _ in 0..3 {
            arena.reset();
            cycle(&arena);
            assert_eq!(arena.stats(), first);
        }
    }

    #[test]
    fn limit_refuses_without_changing_anything() {
        let arena = Arena::with_block_size(4096).with_limit(100);
        arena.alloc([0u8; 64]);
        let before = arena.stats();
        let err = arena.try_alloc([0u8; 64]).unwrap_err();
        assert_eq!(
            err,
            AllocError::LimitExceeded {
                limit: 100,
                used: 64,
                requested: 64
            }
        );
        assert_eq!(arena.stats(), before);
        assert!(err.to_string().contains("100"));
    }

    /// u64s accepted before the first refusal.
    fn u64s_until_refused(arena: &Arena) -> usize {
        (0..)
            .take_while(|i| arena.try_alloc(*i as u64).is_ok())
            .count()
    }

    #[test]
    fn the_limit_holds_on_the_fast_path_after_resets_large_allocations_and_changes() {
        // The fast path does not look at the limit: the current block's room is fenced at what it leaves.
        // Padding counts: the fence can leave the room's end unaligned, so 11 or 12 u64s fit in 100 bytes,
        // the same number in every cycle.
        let mut arena = Arena::with_block_size(4096).with_limit(100);
        let first = u64s_until_refused(&arena);
        for _ in 0..3 {
            assert!((11..=12).contains(&first), "{first}");
            assert!(arena.bytes_used() <= 100, "{}", arena.bytes_used());
            arena.reset();
            assert_eq!(u64s_until_refused(&arena), first);
        }
        // A large allocation (a block of its own) takes from the room the limit leaves the current block.
        let arena = Arena::with_block_size(4096).with_limit(3000);
        for i in 0..10u64 {
            arena.alloc(i);
        }
        arena.alloc_zeroed_bytes(2000);
        assert_eq!(arena.bytes_used(), 2080);
        assert!((114..=115).contains(&u64s_until_refused(&arena)));
        assert!(arena.bytes_used() <= 3000, "{}", arena.bytes_used());
        // A lower limit fences the room at once; a block reserved up front is fenced too.
        let mut arena = Arena::with_block_size(4096);
        arena.alloc_zeroed_bytes(100);
        arena.set_limit(Some(120));
        assert!((1..=2).contains(&u64s_until_refused(&arena)));
        assert!(arena.bytes_used() <= 120, "{}", arena.bytes_used());
        let arena = Arena::with_capacity(10_000).with_limit(64);
        assert!((7..=8).contains(&u64s_until_refused(&arena)));
        assert!(arena.bytes_used() <= 64, "{}", arena.bytes_used());
    }

    #[test]
    #[should_panic(expected = "arena byte limit exceeded")]
    fn alloc_past_limit_panics_with_the_error() {
        let arena = Arena::new().with_limit(8);
        arena.alloc([0u64; 2]);
    }

    #[test]
    fn zeroed_bytes_of_impossible_length_is_an_error() {
        let arena = Arena::new();
        assert!(matches!(
            arena.try_alloc_zeroed_bytes(usize::MAX),
            Err(AllocError::CapacityOverflow { .. })
        ));
    }

    #[test]
    fn with_capacity_reserves_one_block_up_front() {
        let arena = Arena::with_capacity(200_000);
        let stats = arena.stats();
        assert_eq!(stats.blocks, 1);
        assert!(stats.bytes_reserved >= 200_000);
        for i in 0..20_000u64 {
            arena.alloc(i);
        }
        assert_eq!(arena.stats().blocks, 1);
    }

    #[test]
    fn zero_sized_values_and_empty_slices() {
        let arena = Arena::new();
        arena.alloc(());
        assert_eq!(arena.alloc_slice_copy::<u64>(&[]).len(), 0);
        assert_eq!(arena.alloc_str(""), "");
    }
}
