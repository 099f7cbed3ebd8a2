//! Readers on several threads refresh while a writer appends: each sees a growing, unbroken prefix of the
//! records, every record intact, and at the end all of them.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

use common::TempDir;
use flowmem_store::{MmapStore, StoreCache, StoreWriter, Uuid};

fn id(i: u64) -> Uuid {
    Uuid::from_u64_pair(7, i)
}

/// The bytes of a small store file of its own (header and whole valid records).
fn embedded_store() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = TempDir::new("embedded-source");
        let path = dir.file("inner.fms");
        let mut w = StoreWriter::create(&path).unwrap();
        for k in 0..20u64 {
            w.append(&Uuid::from_u64_pair(99, k), &[k as u8; 40])
                .unwrap();
        }
        w.sync().unwrap();
        drop(w);
        std::fs::read(&path).unwrap()
    })
}

/// Record `i`'s payload; every eleventh holds a whole store file, so that a reader refreshing in the
/// middle of its append sees a torn record full of valid records (issue 14: it must read as a torn tail).
fn payload(i: u64) -> Vec<u8> {
    let mut p = i.to_le_bytes().to_vec();
    if i.is_multiple_of(11) {
        p.extend_from_slice(embedded_store());
    }
    p.resize(p.len() + (i % 700) as usize, i as u8);
    p
}

/// Checks that `store` holds exactly records `0..len`, each intact; returns `len`.
fn check_prefix(store: &MmapStore) -> u64 {
    let len = store.len() as u64;
    for i in 0..len {
        assert_eq!(
            store.get(&id(i)).unwrap().as_deref(),
            Some(&payload(i)[..]),
            "record {i} of {len}"
        );
    }
    len
}

#[test]
fn readers_refresh_while_a_writer_appends() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MmapStore>();
    assert_send_sync::<StoreCache>();

    let dir = TempDir::new("concurrent");
    let path = dir.file("live.fms");
    let total = flowmem_testing::iterations(6_000);
    let mut writer = StoreWriter::create(&path).unwrap();
    let done = AtomicBool::new(false);
    let cache = StoreCache::new();
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..total {
                writer.append(&id(i), &payload(i)).unwrap();
                if i % 97 == 0 {
                    writer.flush().unwrap();
                }
            }
            writer.sync().unwrap();
            done.store(true, Ordering::Release);
        });
        for _ in 0..2 {
            s.spawn(|| {
                let mut store = MmapStore::open(&path).unwrap();
                let mut seen = 0;
                loop {
                    let finished = done.load(Ordering::Acquire);
                    store.refresh().unwrap();
                    let len = check_prefix(&store);
                    assert!(len >= seen, "went back from {seen} to {len} records");
                    seen = len;
                    if finished {
                        break;
                    }
                    // Let the writer run (under valgrind, which runs one thread at a time, readers that
                    // never yield starve it).
                    thread::yield_now();
                }
                assert_eq!(seen, total);
                assert!(store.torn_tail().is_none());
            });
        }
        s.spawn(|| {
            let mut seen = 0;
            loop {
                let finished = done.load(Ordering::Acquire);
                let store: Arc<MmapStore> = cache.refresh(&path).unwrap();
                let len = check_prefix(&store);
                assert!(len >= seen);
                seen = len;
                if finished {
                    break;
                }
                thread::yield_now();
            }
            assert_eq!(seen, total);
        });
    });
    assert_eq!(cache.get_or_open(&path).unwrap().len() as u64, total);
}
