//! Arenas and allocation tracking: a request loop that, once warm, makes no heap allocation.
//!
//! Run with `cargo run --package flowmem --example arenas`.

use flowmem::alloc::{AllocationTracker, Arena, ArenaPool, Scope, System, Tracking, tracking};

#[global_allocator]
static GLOBAL: Tracking<System> = Tracking::new(System);

/// Parses a request into arena-allocated parts and returns a checksum of them.
fn handle(arena: &Arena, request: &str) -> usize {
    let words: Vec<&str> = request.split(' ').collect(); // a heap Vec, for contrast
    let parts = arena.alloc_slice_copy(&words.iter().map(|w| w.len()).sum::<usize>().to_le_bytes());
    let path = arena.alloc_str(words.get(1).copied().unwrap_or("/"));
    parts.len() + path.len()
}

/// The same, with the word list in the arena too.
fn handle_in_arena(arena: &Arena, request: &str) -> usize {
    let mut total = 0;
    for word in request.split(' ') {
        total += arena.alloc_str(word).len();
    }
    total
}

fn main() {
    assert!(tracking::is_installed());
    let requests = [
        "GET /users HTTP/1.1",
        "POST /orders HTTP/1.1",
        "GET /health HTTP/1.1",
    ];

    let mut arena = Arena::new();
    let tracker = AllocationTracker::with_scope("heap Vec per request", Scope::Thread);
    for _ in 0..1000 {
        for r in requests {
            handle(&arena, r);
        }
        arena.reset();
    }
    let with_vec = tracker.stop();

    let tracker = AllocationTracker::with_scope("arena only, warm", Scope::Thread);
    for _ in 0..1000 {
        for r in requests {
            handle_in_arena(&arena, r);
        }
        arena.reset();
    }
    let arena_only = tracker.stop();
    assert_eq!(arena_only.diff.stats.map(|s| s.allocation_calls()), Some(0));

    let pool = ArenaPool::new(4);
    let before = tracking::thread_stats();
    for r in requests.iter().cycle().take(3000) {
        let arena = pool.take();
        handle_in_arena(&arena, r);
    }
    let d = tracking::thread_stats().since(&before);
    println!(
        "ArenaPool: 3000 requests, {} arenas created, {} heap allocations",
        pool.stats().created,
        d.allocation_calls()
    );
    println!(
        "{} allocations with a Vec per request; none with the arena alone",
        { with_vec.diff.stats.map_or(0, |s| s.allocation_calls()) }
    );
}
