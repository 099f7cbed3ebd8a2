//! Crash-shaped store files (target R2): every file a process killed during an append can leave, for
//! payloads chosen to fool a recovery that searches for records: payloads that embed whole valid records,
//! payloads that are copies of whole store files (another one, or the very file being appended to), bytes
//! that look like small `u64`s, zeros. A killed append leaves the records before it and a prefix of the
//! record being written (the kernel's page cache keeps every byte a `write` copied, in order), so each file
//! is a durable prefix of whole records followed by a cut of one more record at one offset.
//!
//! Each file must open as exactly its durable prefix: [`MmapStore::open`] serves the prefix's records and
//! reports the cut as a torn tail at the prefix's end, and [`StoreWriter::open`] truncates the file to the
//! prefix and reports the same. A file refused, or served with any other contents, counts against R2.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use flowmem_store::{MmapStore, StoreWriter, Uuid};

/// What [`trials`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DamageSummary {
    /// Crash-shaped files opened (each by a reader and by a writer).
    pub files: u64,
    /// Files a reader or a writer refused.
    pub refused: u64,
    /// Files opened with other contents than the durable prefix, or a tail reported elsewhere.
    pub wrong: u64,
}

type Model = HashMap<Uuid, Vec<u8>>;

/// A store's bytes after appending `records` to a new store at `path` (removed again).
fn store_bytes(path: &Path, records: &[(Uuid, Vec<u8>)]) -> Vec<u8> {
    let _ = std::fs::remove_file(path);
    let mut w = StoreWriter::create(path).expect("create a base store");
    for (id, payload) in records {
        w.append(id, payload).expect("append");
    }
    w.flush().expect("flush");
    drop(w);
    let bytes = std::fs::read(path).expect("read the base store");
    std::fs::remove_file(path).expect("remove the base store");
    bytes
}

/// Payloads for the last record: each a way to look like records.
fn hostile_payloads(scratch: &Path, prefix: &[u8]) -> Vec<Vec<u8>> {
    let one = store_bytes(
        scratch,
        &[(Uuid::from_u128(0xAB), b"inner record".to_vec())],
    );
    let header = 16;
    let inner_record = one[header..].to_vec();
    let other_store = store_bytes(
        scratch,
        &[
            (Uuid::from_u128(1), b"one".to_vec()),
            (Uuid::from_u128(2), vec![7; 50]),
            (Uuid::from_u128(1), Vec::new()),
        ],
    );
    let u64_like: Vec<u8> = (0..40u64).flat_map(|i| (i * 3).to_le_bytes()).collect();
    vec![
        // A whole valid record, alone and between other bytes.
        inner_record.clone(),
        [&b"ab"[..], &inner_record, &inner_record, b"cd"].concat(),
        // A whole store file, another one and the very file being appended to.
        other_store,
        prefix.to_vec(),
        // Its records without the header, so that a cut can end exactly where one of them ends.
        prefix[header..].to_vec(),
        u64_like,
        vec![0; 120],
        Vec::new(),
    ]
}

/// Opens the crash-shaped file `bytes` (durable prefix of `durable` bytes holding `expected`) both ways and
/// counts what went wrong.
fn check(path: &Path, bytes: &[u8], durable: u64, expected: &Model, s: &mut DamageSummary) {
    std::fs::write(path, bytes).expect("write a crash-shaped file");
    s.files += 1;
    let torn = (bytes.len() as u64 > durable).then_some(durable);
    match MmapStore::open(path) {
        Err(_) => s.refused += 1,
        Ok(store) => {
            let got: Model = store
                .ids()
                .map(|id| (*id, store.get(id).expect("get").expect("live").into_owned()))
                .collect();
            if got != *expected || store.torn_tail().map(|t| t.offset) != torn {
                s.wrong += 1;
            }
        }
    }
    match StoreWriter::open(path) {
        Err(_) => s.refused += 1,
        Ok(w) => {
            let len = std::fs::metadata(path).expect("metadata").len();
            if w.end() != durable || len != durable || w.recovered().map(|t| t.offset) != torn {
                s.wrong += 1;
            }
        }
    }
}

/// Generates crash-shaped files under `dir` (a memory-backed directory is best: the writer syncs each
/// recovery) and opens each. About 12,000 files.
pub fn trials(dir: &Path) -> DamageSummary {
    std::fs::create_dir_all(dir).expect("create the trial directory");
    let scratch: PathBuf = dir.join("scratch.fms");
    let path = dir.join("crash-shaped.fms");
    let mut s = DamageSummary::default();
    // Durable prefixes: empty, one record, a few (with an overwrite and a tombstone).
    let mut records: Vec<(Uuid, Vec<u8>)> = Vec::new();
    for round in 0..8u128 {
        let prefix = store_bytes(&scratch, &records);
        let mut expected = Model::new();
        for (id, p) in &records {
            expected.insert(*id, p.clone());
        }
        for (k, payload) in hostile_payloads(&scratch, &prefix).into_iter().enumerate() {
            // The last record, appended in full, then cut at every offset inside it.
            let last = Uuid::from_u128(0x1000 + k as u128);
            let mut all = records.clone();
            all.push((last, payload));
            let whole = store_bytes(&scratch, &all);
            let durable = prefix.len() as u64;
            for cut in prefix.len() + 1..whole.len() {
                check(&path, &whole[..cut], durable, &expected, &mut s);
            }
            // And the whole file: nothing torn, the new record served.
            let mut complete = expected.clone();
            complete.insert(
                all.last().expect("one").0,
                all.last().expect("one").1.clone(),
            );
            check(&path, &whole, whole.len() as u64, &complete, &mut s);
        }
        records.push((
            Uuid::from_u128(round),
            vec![round as u8; 20 + round as usize * 30],
        ));
    }
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(dir.join("crash-shaped.fms.lock"));
    s
}
