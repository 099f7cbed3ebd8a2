//! Workloads of the allocation-site profiler, shared by its tests and its benches: an allocation-heavy
//! loop (targets T1 and T2) and three functions allocating known shares of the bytes (T3).

use std::hint::black_box;

/// Live buffers the loop keeps: each new one replaces the oldest, so every iteration is an allocation
/// and a free, of sizes from 16 bytes to 1 KiB.
const RING: usize = 64;

/// `n` allocations (and as many frees, once the ring is full): Vec buffers of 16 to 1,039 bytes,
/// written once. Returns the bytes held at the end, so nothing is optimised away.
#[inline(never)]
pub fn alloc_heavy(n: usize) -> usize {
    let mut ring: Vec<Vec<u8>> = (0..RING).map(|_| Vec::new()).collect();
    for i in 0..n {
        let size = 16 + (i * 37) % 1024;
        ring[i % RING] = vec![i as u8; size];
    }
    black_box(ring.iter().map(Vec::len).sum())
}

#[inline(never)]
fn share_sixty(n: usize) {
    for i in 0..n {
        black_box(vec![1u8; 600 + i % 7]);
    }
}

#[inline(never)]
fn share_thirty(n: usize) {
    for i in 0..n {
        black_box(vec![2u8; 300 + i % 5]);
    }
}

#[inline(never)]
fn share_ten(n: usize) {
    for i in 0..n {
        black_box(vec![3u8; 100 + i % 3]);
    }
}

/// The three functions of [`known_shares`] and their true shares of the bytes allocated.
pub const KNOWN_SHARES: [(&str, f64); 3] = [
    ("share_sixty", 0.6),
    ("share_thirty", 0.3),
    ("share_ten", 0.1),
];

/// Allocates `rounds` × about 1.2 MB from three functions in the shares of [`KNOWN_SHARES`],
/// interleaved (so a slow drift of anything cannot favour one site).
pub fn known_shares(rounds: usize) {
    for _ in 0..rounds {
        share_sixty(1_000);
        share_thirty(1_000);
        share_ten(1_000);
    }
}
