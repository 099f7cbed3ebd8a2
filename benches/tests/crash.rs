//! The crash test of durable runs: children running a workflow with a file store are killed with SIGKILL
//! at random moments; each run is resumed here (a new process for the store) and checked (see
//! `flowmem_benches::crash`). `cargo xtask stress` runs more trials.

use std::path::Path;

fn dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("flowmem-crash-{name}-{}", std::process::id()))
}

#[test]
fn killed_runs_resume_without_losing_or_rerunning_checkpointed_nodes() {
    let d = dir("test");
    let s = flowmem_benches::crash::trials(Path::new(env!("CARGO_BIN_EXE_crash_child")), &d, 30);
    println!("{s:?}");
    assert_eq!(s.trials, 30);
    assert_eq!((s.lost, s.extra), (0, 0), "{s:?}");
    assert!(
        s.killed_mid_run >= 10,
        "most kills must land mid-run for the test to mean anything: {s:?}"
    );
    assert!(s.checkpointed > 0 && s.in_flight > 0, "{s:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
#[ignore = "300 crash trials, about 15 s in release: `cargo xtask stress`"]
fn killed_runs_resume_stress() {
    let d = dir("stress");
    let s = flowmem_benches::crash::trials(Path::new(env!("CARGO_BIN_EXE_crash_child")), &d, 300);
    println!("{s:?}");
    assert_eq!((s.lost, s.extra), (0, 0), "{s:?}");
    std::fs::remove_dir_all(&d).unwrap();
}
