//! The bounded tables the sampler writes inside the allocator: sites (a stack and its counters) and the
//! live sampled allocations (pointer → site). Static, fixed-size and lock-free: nothing here allocates,
//! and nothing waits for another thread.

use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering::*,
};

/// Most distinct stacks kept; samples of further stacks are counted as dropped.
pub const MAX_SITES: usize = 4096;
/// Frames kept per stack (the innermost ones, the allocator's own frames included).
pub const MAX_FRAMES: usize = 48;
/// Most sampled allocations tracked live at once; beyond, a sample counts for totals but not for live.
pub const MAX_LIVE: usize = 1 << 16;
/// Slots a table probe looks at before giving up.
const MAX_PROBE: usize = 64;

/// A site: one distinct stack and what was sampled there.
pub(crate) struct Site {
    /// The stack's hash (never 0 once claimed; 0 = free).
    hash: AtomicU64,
    /// Set once `frames` and `depth` are written.
    ready: AtomicBool,
    depth: AtomicU8,
    frames: [AtomicUsize; MAX_FRAMES],
    /// Sampled allocations.
    pub(crate) samples: AtomicU64,
    /// Estimated bytes allocated (each sample weighted by the inverse of its chance to be sampled).
    pub(crate) bytes: AtomicU64,
    /// Estimated allocations, in thousandths.
    pub(crate) count_milli: AtomicU64,
    /// Estimated bytes of this site's sampled allocations that are live now.
    pub(crate) live_bytes: AtomicI64,
    /// Estimated live allocations, in thousandths.
    pub(crate) live_count_milli: AtomicI64,
    /// `live_bytes` when the sampled live total last reached a new peak.
    pub(crate) peak_bytes: AtomicI64,
    /// `live_count_milli` at that peak.
    pub(crate) peak_count_milli: AtomicI64,
}

impl Site {
    const fn new() -> Site {
        Site {
            hash: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            depth: AtomicU8::new(0),
            frames: [const { AtomicUsize::new(0) }; MAX_FRAMES],
            samples: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            count_milli: AtomicU64::new(0),
            live_bytes: AtomicI64::new(0),
            live_count_milli: AtomicI64::new(0),
            peak_bytes: AtomicI64::new(0),
            peak_count_milli: AtomicI64::new(0),
        }
    }

    /// The stack, once the site is ready.
    pub(crate) fn frames(&self, out: &mut [usize; MAX_FRAMES]) -> Option<usize> {
        if self.hash.load(Acquire) == 0 || !self.ready.load(Acquire) {
            return None;
        }
        let depth = usize::from(self.depth.load(Relaxed));
        for (o, f) in out.iter_mut().zip(&self.frames).take(depth) {
            *o = f.load(Relaxed);
        }
        Some(depth)
    }

    fn same_frames(&self, frames: &[usize]) -> bool {
        usize::from(self.depth.load(Relaxed)) == frames.len()
            && self
                .frames
                .iter()
                .zip(frames)
                .all(|(a, b)| a.load(Relaxed) == *b)
    }
}

pub(crate) static SITES: [Site; MAX_SITES] = [const { Site::new() }; MAX_SITES];

/// Samples whose stack found no room in [`SITES`].
pub(crate) static DROPPED_SITES: AtomicU64 = AtomicU64::new(0);
/// Samples whose pointer found no room in the live table (counted in totals, not in live figures).
pub(crate) static UNTRACKED_LIVE: AtomicU64 = AtomicU64::new(0);

/// A stack's hash (FNV-1a over the return addresses, never 0).
fn stack_hash(frames: &[usize]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in frames {
        h ^= *f as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}

/// The site of `frames`, claimed if new; `None` when the table has no room for it (counted).
pub(crate) fn site_of(frames: &[usize]) -> Option<usize> {
    let frames = &frames[..frames.len().min(MAX_FRAMES)];
    let hash = stack_hash(frames);
    for probe in 0..MAX_PROBE {
        let i = (hash as usize).wrapping_add(probe) % MAX_SITES;
        let site = &SITES[i];
        let mut current = site.hash.load(Acquire);
        if current == 0 {
            match site.hash.compare_exchange(0, hash, AcqRel, Acquire) {
                Ok(_) => {
                    for (slot, f) in site.frames.iter().zip(frames) {
                        slot.store(*f, Relaxed);
                    }
                    site.depth.store(frames.len() as u8, Relaxed);
                    site.ready.store(true, Release);
                    return Some(i);
                }
                Err(other) => current = other,
            }
        }
        if current == hash {
            // Another thread may be writing the frames of this very stack: it takes a few stores.
            let mut spins = 0;
            while !site.ready.load(Acquire) {
                spins += 1;
                if spins > 1_000 {
                    DROPPED_SITES.fetch_add(1, Relaxed);
                    return None;
                }
                std::hint::spin_loop();
            }
            if site.same_frames(frames) {
                return Some(i);
            }
        }
    }
    DROPPED_SITES.fetch_add(1, Relaxed);
    None
}

/// A sample's weights: the estimated bytes and allocations (thousandths) it stands for.
#[derive(Clone, Copy)]
pub(crate) struct Weight {
    pub(crate) bytes: u64,
    pub(crate) count_milli: u64,
}

/// Adds a sample of `size` bytes at site `i`.
pub(crate) fn add_sample(i: usize, w: Weight) {
    let site = &SITES[i];
    site.samples.fetch_add(1, Relaxed);
    site.bytes.fetch_add(w.bytes, Relaxed);
    site.count_milli.fetch_add(w.count_milli, Relaxed);
}

// The live table: open addressing on the pointer, with tombstones; a probe stops at a free slot or after
// MAX_PROBE slots. A small array of counters (a counting filter) lets a free skip the table when no live
// sample can be at its pointer, which is nearly always.

const FREE: usize = 0;
const TOMBSTONE: usize = 1;
/// A slot claimed by a thread that is writing its fields.
const BUSY: usize = 2;
const FILTER_SLOTS: usize = 1 << 14;

struct LiveSlot {
    ptr: AtomicUsize,
    site: AtomicU32,
    bytes: AtomicU64,
    count_milli: AtomicU64,
}

static LIVE: [LiveSlot; MAX_LIVE] = [const {
    LiveSlot {
        ptr: AtomicUsize::new(FREE),
        site: AtomicU32::new(0),
        bytes: AtomicU64::new(0),
        count_milli: AtomicU64::new(0),
    }
}; MAX_LIVE];
static FILTER: [AtomicU16; FILTER_SLOTS] = [const { AtomicU16::new(0) }; FILTER_SLOTS];
/// Sampled allocations live now: frees look at the tables only while this is above zero.
pub(crate) static LIVE_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Estimated live bytes of all sampled allocations.
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
/// `LIVE_BYTES` at the last peak snapshot.
pub(crate) static PEAK_BYTES: AtomicI64 = AtomicI64::new(0);
/// Taken (never waited for) by the thread copying live figures into peak figures.
static SNAPSHOTTING: AtomicBool = AtomicBool::new(false);

fn ptr_hash(ptr: usize) -> usize {
    (ptr as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as usize
}

fn filter_slot(ptr: usize) -> &'static AtomicU16 {
    &FILTER[(ptr_hash(ptr) >> 7) % FILTER_SLOTS]
}

/// Records `ptr` as a live sampled allocation of site `site`.
pub(crate) fn add_live(ptr: usize, site: usize, w: Weight) {
    if ptr <= BUSY {
        return;
    }
    let start = ptr_hash(ptr) >> 16;
    for probe in 0..MAX_PROBE {
        let slot = &LIVE[start.wrapping_add(probe) % MAX_LIVE];
        let current = slot.ptr.load(Relaxed);
        if current != FREE && current != TOMBSTONE {
            continue;
        }
        // Claimed first, then written, then published with the pointer (a free finds it after that).
        if slot
            .ptr
            .compare_exchange(current, BUSY, Acquire, Relaxed)
            .is_ok()
        {
            slot.site.store(site as u32, Relaxed);
            slot.bytes.store(w.bytes, Relaxed);
            slot.count_milli.store(w.count_milli, Relaxed);
            slot.ptr.store(ptr, Release);
            filter_slot(ptr).fetch_add(1, Relaxed);
            LIVE_COUNT.fetch_add(1, Relaxed);
            let s = &SITES[site];
            s.live_bytes.fetch_add(w.bytes as i64, Relaxed);
            s.live_count_milli.fetch_add(w.count_milli as i64, Relaxed);
            let live = LIVE_BYTES.fetch_add(w.bytes as i64, Relaxed) + w.bytes as i64;
            let peak = PEAK_BYTES.load(Relaxed);
            if live > peak + peak / 32 {
                snapshot_peak(live);
            }
            return;
        }
    }
    UNTRACKED_LIVE.fetch_add(1, Relaxed);
}

/// Forgets `ptr` if it is a live sampled allocation (it is being freed).
#[inline]
pub(crate) fn remove_live(ptr: usize) {
    if filter_slot(ptr).load(Relaxed) == 0 {
        return;
    }
    remove_live_slow(ptr);
}

#[cold]
fn remove_live_slow(ptr: usize) {
    let start = ptr_hash(ptr) >> 16;
    for probe in 0..MAX_PROBE {
        let slot = &LIVE[start.wrapping_add(probe) % MAX_LIVE];
        let current = slot.ptr.load(Acquire);
        if current == FREE {
            return;
        }
        if current != ptr {
            continue;
        }
        let (site, bytes, count) = (
            slot.site.load(Relaxed) as usize,
            slot.bytes.load(Relaxed) as i64,
            slot.count_milli.load(Relaxed) as i64,
        );
        if slot
            .ptr
            .compare_exchange(ptr, TOMBSTONE, AcqRel, Relaxed)
            .is_ok()
        {
            filter_slot(ptr).fetch_sub(1, Relaxed);
            LIVE_COUNT.fetch_sub(1, Relaxed);
            let s = &SITES[site];
            s.live_bytes.fetch_sub(bytes, Relaxed);
            s.live_count_milli.fetch_sub(count, Relaxed);
            LIVE_BYTES.fetch_sub(bytes, Relaxed);
        }
        return;
    }
}

/// Copies every site's live figures into its peak figures, when the sampled live total reached a new
/// high by more than 1/32 (so the copies are few: logarithmic in the peak). Skipped, not waited for, when
/// another thread is copying.
#[cold]
fn snapshot_peak(live: i64) {
    if SNAPSHOTTING
        .compare_exchange(false, true, Acquire, Relaxed)
        .is_err()
    {
        return;
    }
    for site in &SITES {
        if site.hash.load(Relaxed) != 0 {
            site.peak_bytes
                .store(site.live_bytes.load(Relaxed), Relaxed);
            site.peak_count_milli
                .store(site.live_count_milli.load(Relaxed), Relaxed);
        }
    }
    PEAK_BYTES.store(live, Relaxed);
    SNAPSHOTTING.store(false, Release);
}

/// Estimated live bytes of all sampled allocations now.
pub(crate) fn live_bytes() -> i64 {
    LIVE_BYTES.load(Relaxed)
}
