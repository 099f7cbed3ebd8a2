//! The producer/consumer pipeline of target P6: one thread gets buffers, writes a byte of every page and
//! hands them over a channel; another reads and drops them, so buffers are freed on another thread than the
//! one that allocated them. Shared by the `pool` bench group and the `paired` binary.

use std::time::{Duration, Instant};

use flowmem_pool::BufferPool;

use crate::keep;

/// The buffer size of P6 (the size where a pool is supposed to pay: 64 KiB).
pub const P6_SIZE: usize = 64 << 10;

/// Writes one byte in every 4 KiB page of `buf` (up to its capacity), as a user filling it would: a
/// fresh block from the allocator costs its page faults here, a pooled one does not.
pub fn touch(buf: &mut Vec<u8>) {
    buf.clear();
    for byte in buf.spare_capacity_mut().iter_mut().step_by(4096) {
        byte.write(keep(1));
    }
    buf.push(1);
}

/// Runs `n` buffers from `make` through a two-thread pipeline, handed over in batches of 32 (so the
/// channel's wake-ups do not hide the buffers' own cost); the time until the consumer dropped the last.
pub fn pipeline<B: Send>(
    n: u64,
    make: impl Fn() -> B + Sync,
    first: impl Fn(&B) -> u8 + Send,
) -> Duration {
    const BATCH: u64 = 32;
    let start = Instant::now();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<B>>(4);
        s.spawn(move || {
            for batch in rx {
                for buf in batch {
                    keep(first(&buf));
                }
            }
        });
        let mut left = n;
        while left > 0 {
            let k = left.min(BATCH);
            let batch: Vec<B> = (0..k).map(|_| make()).collect();
            tx.send(batch)
                .expect("the consumer runs until the channel closes");
            left -= k;
        }
        drop(tx);
    });
    start.elapsed()
}

/// `n` buffers of `size` bytes from `pool` through the pipeline.
pub fn pool_pipeline(pool: &BufferPool, size: usize, n: u64) -> Duration {
    pipeline(
        n,
        || {
            let mut buf = pool.get(size);
            touch(&mut buf);
            buf
        },
        |buf| buf[0],
    )
}

/// `n` fresh `Vec`s of `size` bytes through the pipeline.
pub fn vec_pipeline(size: usize, n: u64) -> Duration {
    pipeline(
        n,
        || {
            let mut buf = Vec::<u8>::with_capacity(size);
            touch(&mut buf);
            buf
        },
        |buf| buf[0],
    )
}
