//! The allocation loops of target A7, run under `valgrind --tool=callgrind` by the counts:
//! `alloc_instr MODE N` makes `N` allocations of a `u64` (`flowmem`: `Arena::alloc`; `bumpalo`:
//! `Bump::alloc`) in an arena reserved up front (so every one takes the fast path), or runs the same loop
//! without allocating (`loop`). The counts take the instructions of two values of `N` and divide their
//! difference by the difference of `N`, so start-up and the reserve cancel out.

use std::hint::black_box;

use bumpalo::Bump;
use flowmem_alloc::Arena;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, n) = match args.as_slice() {
        [mode, n] => (
            mode.as_str(),
            n.parse::<u64>().unwrap_or_else(|e| {
                eprintln!("N must be a count ({e}): {n}");
                std::process::exit(2)
            }),
        ),
        _ => {
            eprintln!("usage: alloc_instr flowmem|bumpalo|loop N");
            std::process::exit(2)
        }
    };
    let bytes = n as usize * 8 + 4096;
    match mode {
        "flowmem" => {
            let arena = Arena::with_capacity(bytes);
            for i in 0..n {
                black_box(arena.alloc(black_box(i)));
            }
        }
        "bumpalo" => {
            let bump = Bump::with_capacity(bytes);
            for i in 0..n {
                black_box(bump.alloc(black_box(i)));
            }
        }
        "loop" => {
            for i in 0..n {
                black_box(black_box(i));
            }
        }
        other => {
            eprintln!("unknown mode `{other}`: flowmem, bumpalo or loop");
            std::process::exit(2)
        }
    }
}
