//! Durability with a real crash: a child process appends and syncs in a loop and is killed with SIGKILL at a
//! random moment; after recovery every record it had synced (and said so) must be there, intact. The trials
//! share one file, so each child also starts from a recovered store.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use common::TempDir;
use flowmem_store::{MmapStore, StoreWriter, Uuid};

const CHILD_ENV: &str = "FLOWMEM_STORE_CRASH_CHILD";

fn id(i: u64) -> Uuid {
    Uuid::from_u64_pair(0xC4A5, i)
}

/// Record `i`'s payload: its number, then up to ~6 KiB of a byte derived from it, and every 64th record
/// 1 MiB (written by a write call long enough for a kill to cut it: torn tails happen), so a record read
/// back can be checked.
fn payload(i: u64) -> Vec<u8> {
    let len = payload_len(i);
    let mut p = vec![(i % 251) as u8; 8 + len];
    p[..8].copy_from_slice(&i.to_le_bytes());
    p
}

fn payload_len(i: u64) -> usize {
    if i % 64 == 63 {
        1 << 20
    } else {
        (i.wrapping_mul(7919) % 6000) as usize
    }
}

/// The child: appends batches of records, syncs each batch, and prints `synced N` once records `0..N` are
/// durable. Runs until killed.
#[test]
#[ignore = "the child process of killed_writer_loses_no_synced_record, which starts it"]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut writer = StoreWriter::open(&path).unwrap();
    let mut next = MmapStore::open(&path).unwrap().len() as u64;
    let mut out = std::io::stdout().lock();
    loop {
        for _ in 0..=next % 7 {
            writer.append(&id(next), &payload(next)).unwrap();
            next += 1;
        }
        writer.sync().unwrap();
        writeln!(out, "synced {next}").unwrap();
        out.flush().unwrap();
    }
}

/// Runs one child for about `run`, kills it, and returns the last count it reported synced.
fn run_and_kill(path: &Path, run: Duration) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix("synced ")?.parse::<u64>().ok())
            .last()
    });
    std::thread::sleep(run);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn killed_writer_loses_no_synced_record() {
    crash_trials(flowmem_testing::iterations(30));
}

#[test]
#[ignore = "long stress run: cargo xtask stress"]
fn killed_writer_loses_no_synced_record_over_many_trials() {
    crash_trials(300);
}

/// `trials` children killed one after another on one file, each checked after recovery.
fn crash_trials(trials: u64) {
    let dir = TempDir::new("crash");
    let path = dir.file("crash.fms");
    let mut synced = 0u64;
    let mut recovered_tails = 0;
    let mut checked = 0;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for trial in 0..trials {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let run = Duration::from_millis(20 + x % 150);
        if let Some(n) = run_and_kill(&path, run) {
            assert!(
                n >= synced,
                "trial {trial}: the child reported fewer records than before"
            );
            synced = n;
        }
        // Recover as the next writer would, then check every synced record, and that the records form
        // one unbroken sequence (no hole, nothing duplicated or mangled).
        let writer = StoreWriter::open(&path).unwrap();
        recovered_tails += usize::from(writer.recovered().is_some());
        drop(writer);
        let store = MmapStore::open(&path).unwrap();
        assert!(store.torn_tail().is_none());
        let len = store.len() as u64;
        assert!(
            len >= synced,
            "trial {trial}: {len} records, {synced} were synced"
        );
        // Every record is there with its length; the ones new since the last trial are compared byte for
        // byte (older ones were, and appends never touch them).
        for i in 0..len {
            let got = store.get(&id(i)).unwrap().unwrap_or_else(|| {
                panic!("trial {trial}: record {i} of {len} missing (synced: {synced})")
            });
            let want_len = payload_len(i);
            assert_eq!(got.len(), 8 + want_len, "trial {trial}: record {i}");
            if i >= checked {
                assert!(
                    got[..] == payload(i)[..],
                    "trial {trial}: record {i} differs"
                );
            }
        }
        checked = len;
    }
    assert!(synced > 0, "no child ever synced a record");
    eprintln!("{trials} kills: {synced} records synced, {recovered_tails} torn tails recovered");
}
