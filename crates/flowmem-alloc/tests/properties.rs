//! Property tests of the arenas (quickcheck), one test per property.

use flowmem_alloc::{Arena, ArenaStats, SyncArena};
use quickcheck::{QuickCheck, TestResult};

fn qc() -> QuickCheck {
    flowmem_testing::quickcheck(100)
}

/// A value to allocate: a byte string or an integer of some alignment.
#[derive(Debug, Clone)]
enum Item {
    Bytes(Vec<u8>),
    U16(u16),
    U64(u64),
    U128(u128),
}

impl quickcheck::Arbitrary for Item {
    fn arbitrary(g: &mut quickcheck::Gen) -> Item {
        match u8::arbitrary(g) % 4 {
            0 => {
                // Mostly small, sometimes larger than a quarter of a block.
                let len = if u8::arbitrary(g) % 16 == 0 {
                    usize::arbitrary(g) % 3000
                } else {
                    usize::arbitrary(g) % 64
                };
                Item::Bytes((0..len).map(|_| u8::arbitrary(g)).collect())
            }
            1 => Item::U16(u16::arbitrary(g)),
            2 => Item::U64(u64::arbitrary(g)),
            _ => Item::U128(u128::arbitrary(g)),
        }
    }
}

/// Allocates every item and returns (address, length) of each, after checking alignment.
fn place<'a>(arena: &'a Arena, items: &[Item]) -> Vec<(&'a [u8], usize, usize)> {
    items
        .iter()
        .map(|item| {
            let (ptr, len): (*const u8, usize) = match item {
                Item::Bytes(b) => {
                    let s = arena.alloc_slice_copy(b);
                    (s.as_ptr(), s.len())
                }
                Item::U16(v) => {
                    let r = arena.alloc(*v);
                    assert_eq!(r as *const u16 as usize % 2, 0);
                    (r as *const u16 as *const u8, 2)
                }
                Item::U64(v) => {
                    let r = arena.alloc(*v);
                    assert_eq!(r as *const u64 as usize % std::mem::align_of::<u64>(), 0);
                    (r as *const u64 as *const u8, 8)
                }
                Item::U128(v) => {
                    let r = arena.alloc(*v);
                    assert_eq!(r as *const u128 as usize % std::mem::align_of::<u128>(), 0);
                    (r as *const u128 as *const u8, 16)
                }
            };
            let start = ptr as usize;
            (item_bytes(arena, item), start, len)
        })
        .collect()
}

/// The bytes an item should read back as (copied into the arena, to keep lifetimes simple).
fn item_bytes<'a>(arena: &'a Arena, item: &Item) -> &'a [u8] {
    match item {
        Item::Bytes(b) => arena.alloc_slice_copy(b),
        Item::U16(v) => arena.alloc_slice_copy(&v.to_ne_bytes()),
        Item::U64(v) => arena.alloc_slice_copy(&v.to_ne_bytes()),
        Item::U128(v) => arena.alloc_slice_copy(&v.to_ne_bytes()),
    }
}

fn check_placed(placed: &[(&[u8], usize, usize)]) -> bool {
    // Contents: each allocation still holds its value.
    for (expected, start, len) in placed {
        // SAFETY: `start..start + len` is a live allocation of the arena, initialised by `place`.
        let actual = unsafe { std::slice::from_raw_parts(*start as *const u8, *len) };
        if actual != *expected {
            return false;
        }
    }
    // Overlap: sorted by address, each ends before the next starts.
    let mut ranges: Vec<(usize, usize)> = placed
        .iter()
        .filter(|(_, _, len)| *len > 0)
        .map(|(_, s, l)| (*s, s + l))
        .collect();
    ranges.sort();
    ranges.windows(2).all(|w| w[0].1 <= w[1].0)
}

#[test]
fn prop_allocations_do_not_overlap_and_keep_contents() {
    fn prop(items: Vec<Item>, block_size: u16) -> bool {
        let arena = Arena::with_block_size(block_size as usize);
        let placed = place(&arena, &items);
        check_placed(&placed)
    }
    qc().quickcheck(prop as fn(Vec<Item>, u16) -> bool);
}

#[test]
fn prop_memory_reused_after_reset() {
    fn prop(items: Vec<Item>, block_size: u16) -> bool {
        let mut arena = Arena::with_block_size(block_size as usize);
        drop(place(&arena, &items));
        let first = arena.stats();
        for _ in 0..3 {
            arena.reset();
            if arena.bytes_used() != 0 {
                return false;
            }
            let placed = place(&arena, &items);
            if !check_placed(&placed) {
                return false;
            }
            // The same work after a reset fits in the blocks the first cycle reserved.
            if arena.stats() != first {
                return false;
            }
        }
        true
    }
    qc().quickcheck(prop as fn(Vec<Item>, u16) -> bool);
}

#[test]
fn prop_string_content_preserved() {
    fn prop(strings: Vec<String>) -> bool {
        let arena = Arena::with_block_size(1024);
        let copies: Vec<&str> = strings.iter().map(|s| arena.alloc_str(s)).collect();
        copies.iter().zip(&strings).all(|(c, s)| *c == s.as_str())
            && copies
                .iter()
                .zip(&strings)
                .all(|(c, s)| s.is_empty() || c.as_ptr() != s.as_ptr())
    }
    qc().quickcheck(prop as fn(Vec<String>) -> bool);
}

#[test]
fn prop_concurrent_allocation_is_safe() {
    fn prop(per_thread: Vec<Vec<u32>>) -> TestResult {
        if per_thread.is_empty() {
            return TestResult::discard();
        }
        let per_thread: Vec<Vec<u32>> = per_thread.into_iter().take(4).collect();
        let mut arena = SyncArena::with_block_size(2048);
        let ok = std::thread::scope(|s| {
            let handles: Vec<_> = per_thread
                .iter()
                .map(|values| {
                    let arena = &arena;
                    s.spawn(move || {
                        let placed: Vec<(&u32, &[u32])> = values
                            .iter()
                            .map(|v| (&*arena.alloc(*v), &*arena.alloc_slice_copy(&[*v, !*v])))
                            .collect();
                        placed
                            .iter()
                            .zip(values)
                            .all(|((one, pair), v)| **one == *v && **pair == [*v, !*v])
                    })
                })
                .collect();
            handles.into_iter().all(|h| h.join().expect("no panic"))
        });
        let expected: usize = per_thread.iter().map(|v| v.len() * 12).sum();
        TestResult::from_bool(ok && arena.stats().bytes_used == expected)
    }
    flowmem_testing::quickcheck(30).quickcheck(prop as fn(Vec<Vec<u32>>) -> TestResult);
}

#[test]
fn prop_block_use_is_efficient() {
    // Allocations of at most `max` bytes (align 1) waste less than `max` bytes per filled block, and the
    // arena reserves no more than one block beyond what it uses plus that waste.
    fn prop(sizes: Vec<u8>, block_shift: u8) -> bool {
        let block_size = 1024 << (block_shift % 5);
        let arena = Arena::with_block_size(block_size);
        let max = sizes.iter().copied().max().unwrap_or(0) as usize;
        for s in &sizes {
            arena.alloc_zeroed_bytes(*s as usize);
        }
        let ArenaStats {
            blocks,
            bytes_used,
            bytes_reserved,
            wasted,
        } = arena.stats();
        let used: usize = sizes.iter().map(|s| *s as usize).sum();
        bytes_used == used
            && wasted < blocks.max(1) * max.max(1)
            && bytes_reserved <= bytes_used + wasted + block_size
    }
    qc().quickcheck(prop as fn(Vec<u8>, u8) -> bool);
}

#[test]
fn prop_limit_is_never_exceeded() {
    fn prop(items: Vec<Item>, limit: u16) -> bool {
        let arena = Arena::with_block_size(1024).with_limit(limit as usize);
        for item in &items {
            let _ = match item {
                Item::Bytes(b) => arena.try_alloc_slice_copy(b).map(|_| ()),
                Item::U16(v) => arena.try_alloc(*v).map(|_| ()),
                Item::U64(v) => arena.try_alloc(*v).map(|_| ()),
                Item::U128(v) => arena.try_alloc(*v).map(|_| ()),
            };
            if arena.bytes_used() > limit as usize {
                return false;
            }
        }
        true
    }
    qc().quickcheck(prop as fn(Vec<Item>, u16) -> bool);
}
