//! One Box-sized allocation and its free in a loop, as the `tracking` bench group does on one thread:
//! through `System` (`system`) or through a `Tracking<System>` (`tracking`), both called as
//! `GlobalAlloc`s (neither is this program's global allocator). For instruction counts of each (A4,
//! docs/alloc.md): `valgrind --tool=callgrind target/release/examples/tracking_use tracking 2000000`
//! after `cargo build --release -p flowmem-benches --example tracking_use` (subtract a run of a
//! smaller N to leave the setup out); without valgrind it prints ns per allocation and free.

use std::alloc::{GlobalAlloc, System};

use flowmem_alloc::Tracking;
use flowmem_benches::{
    alloc_free,
    examples::{CommandLine, ns_each},
};

const COMMAND_LINE: CommandLine = CommandLine {
    program: "tracking_use",
    usage: "[system|tracking [N]]",
};

static TRACKED: Tracking<System> = Tracking::new(System);

/// [`alloc_free`] through `allocator`, `n` times: ns each.
fn cycle<A: GlobalAlloc>(allocator: &A, n: u64) -> f64 {
    ns_each(1, || alloc_free(allocator, n)) / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("tracking", String::as_str);
    let n = COMMAND_LINE.count(args.get(1).map(String::as_str), "N", 10_000_000);
    let ns = match which {
        "system" => cycle(&System, n),
        "tracking" => cycle(&TRACKED, n),
        other => COMMAND_LINE.refuse(&format!("no mode {other:?}; use system or tracking")),
    };
    println!("{which}: {ns:.1} ns an allocation and free");
}
