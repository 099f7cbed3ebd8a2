//! The child process of the crash trials (target D2, `benches/tests/crash.rs`): `crash_child STORE LOG
//! SPIN_US` runs the trial workflow durably in STORE, logging each node's start and each durable
//! checkpoint to LOG, until the parent kills it (see `flowmem_benches::crash`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    flowmem_benches::crash::child_main(&args);
}
