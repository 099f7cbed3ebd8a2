//! Shared runs survive a killed worker process: three `pg_worker` processes share a 500-node run on a
//! real PostgreSQL server (`FLOWMEM_PG`); one is killed with SIGKILL at a random moment; the run
//! completes with the outputs of a single-process run, and the executions beyond one per node are no
//! more than the killed worker had in hand. More trials: `cargo xtask stress`.

use std::path::Path;

fn dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("flowmem-{name}-{}", std::process::id()))
}

#[test]
fn a_killed_worker_process_loses_nothing_and_doubles_nothing() {
    let s = flowmem_benches::shared_crash::trials(
        Path::new(env!("CARGO_BIN_EXE_pg_worker")),
        &format!("t_{}_crash", std::process::id()),
        &dir("shared-crash"),
        4,
    );
    eprintln!("{s:?}");
    assert_eq!(s.trials, 4);
    assert_eq!((s.wrong, s.extra), (0, 0), "{s:?}");
    assert!(
        s.killed_mid_run >= 1,
        "no kill came before its run ended: {s:?}"
    );
}

#[test]
#[ignore = "stress: 30 trials (about a minute); run by `cargo xtask stress`"]
fn many_killed_worker_processes() {
    let s = flowmem_benches::shared_crash::trials(
        Path::new(env!("CARGO_BIN_EXE_pg_worker")),
        &format!("t_{}_crash_many", std::process::id()),
        &dir("shared-crash-many"),
        30,
    );
    assert_eq!((s.wrong, s.extra), (0, 0), "{s:?}");
}
