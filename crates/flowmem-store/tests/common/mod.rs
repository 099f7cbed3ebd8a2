//! Helpers shared by the store's integration tests: a temporary directory, a model of a store's contents,
//! and random operations.
#![allow(dead_code, reason = "each test file uses a part of these helpers")]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use flowmem_store::{MmapStore, StoreWriter, Uuid};
use quickcheck::{Arbitrary, Gen};

/// A directory under the system's temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flowmem-store-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a store should hold.
pub(crate) type Model = HashMap<Uuid, Vec<u8>>;

/// Everything a store holds, read through `get`.
pub(crate) fn contents(store: &MmapStore) -> Model {
    store
        .ids()
        .map(|id| (*id, store.get(id).unwrap().unwrap().into_owned()))
        .collect()
}

/// One change to a store.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let key = u8::arbitrary(g) % 16;
        if u8::arbitrary(g) % 5 == 0 {
            Op::Delete(key)
        } else {
            let len = usize::arbitrary(g) % 300;
            let byte = u8::arbitrary(g);
            // Repetitive payloads, so that compression has something to do when it is on.
            Op::Put(
                key,
                (0..len).map(|i| byte.wrapping_add((i / 7) as u8)).collect(),
            )
        }
    }
}

pub(crate) fn id(key: u8) -> Uuid {
    Uuid::from_u128(0xF10_0000 + u128::from(key))
}

pub(crate) fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Put(k, v) => {
            model.insert(id(*k), v.clone());
        }
        Op::Delete(k) => {
            model.remove(&id(*k));
        }
    }
}

pub(crate) fn write(writer: &mut StoreWriter, op: &Op) {
    match op {
        Op::Put(k, v) => writer.append(&id(*k), v).unwrap(),
        Op::Delete(k) => writer.delete(&id(*k)).unwrap(),
    }
}

/// The model after each prefix of `ops`: `states[k]` is the contents after the first `k` operations.
pub(crate) fn prefix_states(ops: &[Op]) -> Vec<Model> {
    let mut model = Model::new();
    let mut states = vec![model.clone()];
    for op in ops {
        apply(&mut model, op);
        states.push(model.clone());
    }
    states
}

/// A checked record built by hand, byte by byte as docs/store.md describes it: id, word
/// (`len | flags << 56`), head checksum (of id and word), payload, checksum (of id, word and payload).
pub(crate) fn raw_record(id: u128, payload: &[u8], flags: u8) -> Vec<u8> {
    let mut r = Uuid::from_u128(id).as_bytes().to_vec();
    r.extend_from_slice(&(payload.len() as u64 | u64::from(flags) << 56).to_le_bytes());
    let head = crc32c::crc32c(&r);
    r.extend_from_slice(&head.to_le_bytes());
    r.extend_from_slice(payload);
    let crc = crc32c::crc32c_append(head, payload);
    r.extend_from_slice(&crc.to_le_bytes());
    r
}
