//! One arena use (an arena, one `u64` in it, the arena gone) in a loop: `pooled` takes it from an
//! `ArenaPool` and gives it back, `new` creates and drops an `Arena`, `floor` allocates in one arena that
//! is reset each time. For instruction counts of each (A5, docs/alloc.md):
//! `valgrind --tool=callgrind target/release/examples/arena_use pooled 200000` after
//! `cargo build --release -p flowmem-benches --example arena_use`; without valgrind it prints ns per use.

use flowmem_alloc::{Arena, ArenaPool};
use flowmem_benches::{
    examples::{CommandLine, ns_each},
    keep,
};

const COMMAND_LINE: CommandLine = CommandLine {
    program: "arena_use",
    usage: "[floor|pooled|new [N]]",
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("pooled", String::as_str);
    let n = COMMAND_LINE.count(args.get(1).map(String::as_str), "N", 1_000_000);
    let ns = match which {
        "floor" => {
            let mut arena = Arena::new();
            ns_each(n, || {
                keep(arena.alloc(keep(1u64)));
                arena.reset();
            })
        }
        "pooled" => {
            let pool = ArenaPool::new(4);
            ns_each(n, || {
                let arena = pool.take();
                keep(arena.alloc(keep(1u64)));
            })
        }
        "new" => ns_each(n, || {
            let arena = Arena::new();
            keep(arena.alloc(keep(1u64)));
        }),
        other => COMMAND_LINE.refuse(&format!("no mode {other:?}; use floor, pooled or new")),
    };
    println!("{which}: {ns:.1} ns a use");
}
