//! Property tests (quickcheck), one test per property: `ConcurrentMap` and `ReadMap` model-checked against
//! `std::collections::HashMap` over random operation sequences, alone and on several threads.

use std::{
    collections::{HashMap, HashSet},
    sync::Barrier,
};

use flowmem_map::{ConcurrentMap, ReadMap};
use quickcheck::{Arbitrary, Gen, QuickCheck};

fn qc() -> QuickCheck {
    flowmem_testing::quickcheck(200)
}

/// Keys from a small domain, so operations meet the same keys often.
type Key = u8;
const KEYS: u8 = 24;

/// One operation, with the answer a `HashMap` model gives.
#[derive(Debug, Clone)]
enum Op {
    Insert(Key, u32),
    Get(Key),
    GetWith(Key),
    Update(Key, u32),
    GetOrInsert(Key, u32),
    Remove(Key),
    ContainsKey(Key),
    Len,
    IsEmpty,
    Keys,
    Items,
    Clear,
    Retain(u32),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let k = u8::arbitrary(g) % KEYS;
        let v = u32::arbitrary(g) % 1000;
        // Clear is rare, so maps grow between clears.
        match u8::arbitrary(g) % 40 {
            0..=7 => Op::Insert(k, v),
            8..=12 => Op::Get(k),
            13..=14 => Op::GetWith(k),
            15..=18 => Op::Update(k, v),
            19..=22 => Op::GetOrInsert(k, v),
            23..=27 => Op::Remove(k),
            28..=30 => Op::ContainsKey(k),
            31..=32 => Op::Len,
            33 => Op::IsEmpty,
            34 => Op::Keys,
            35 => Op::Items,
            36 => Op::Clear,
            _ => Op::Retain(v % 7 + 2),
        }
    }
}

/// What an operation returned, to compare between implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Value(Option<u32>),
    Bool(bool),
    Count(usize),
    Keys(Vec<Key>),
    Items(Vec<(Key, u32)>),
    Unit,
}

/// The operations both maps and the model share.
trait Map {
    fn apply(&self, op: &Op) -> Answer;
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// `Map` for a map type with the shared API (the two maps answer each operation with the same call).
macro_rules! impl_map {
    ($map:ty) => {
        impl Map for $map {
            fn apply(&self, op: &Op) -> Answer {
                match *op {
                    Op::Insert(k, v) => Answer::Value(self.insert(k, v)),
                    Op::Get(k) => Answer::Value(self.get(&k)),
                    Op::GetWith(k) => Answer::Value(self.get_with(&k, |v| v + 1)),
                    Op::Update(k, d) => Answer::Value(self.update(&k, |v| {
                        *v += d;
                        *v
                    })),
                    Op::GetOrInsert(k, v) => Answer::Value(Some(self.get_or_insert_with(k, || v))),
                    Op::Remove(k) => Answer::Value(self.remove(&k)),
                    Op::ContainsKey(k) => Answer::Bool(self.contains_key(&k)),
                    Op::Len => Answer::Count(self.len()),
                    Op::IsEmpty => Answer::Bool(self.is_empty()),
                    Op::Keys => Answer::Keys(sorted(self.keys())),
                    Op::Items => Answer::Items(sorted(self.items())),
                    Op::Clear => {
                        self.clear();
                        Answer::Unit
                    }
                    Op::Retain(m) => {
                        self.retain(|_, v| *v % m != 0);
                        Answer::Unit
                    }
                }
            }
        }
    };
}

impl_map!(ConcurrentMap<Key, u32>);
impl_map!(ReadMap<Key, u32>);

/// The model: a plain `HashMap` behind a `RefCell` (so it takes `&self` like the others).
struct Model(std::cell::RefCell<HashMap<Key, u32>>);

impl Model {
    fn new() -> Self {
        Self(std::cell::RefCell::new(HashMap::new()))
    }
}

impl Map for Model {
    fn apply(&self, op: &Op) -> Answer {
        let mut m = self.0.borrow_mut();
        match *op {
            Op::Insert(k, v) => Answer::Value(m.insert(k, v)),
            Op::Get(k) => Answer::Value(m.get(&k).copied()),
            Op::GetWith(k) => Answer::Value(m.get(&k).map(|v| v + 1)),
            Op::Update(k, d) => Answer::Value(m.get_mut(&k).map(|v| {
                *v += d;
                *v
            })),
            Op::GetOrInsert(k, v) => Answer::Value(Some(*m.entry(k).or_insert(v))),
            Op::Remove(k) => Answer::Value(m.remove(&k)),
            Op::ContainsKey(k) => Answer::Bool(m.contains_key(&k)),
            Op::Len => Answer::Count(m.len()),
            Op::IsEmpty => Answer::Bool(m.is_empty()),
            Op::Keys => Answer::Keys(sorted(m.keys().copied().collect())),
            Op::Items => Answer::Items(sorted(m.iter().map(|(k, v)| (*k, *v)).collect())),
            Op::Clear => {
                m.clear();
                Answer::Unit
            }
            Op::Retain(md) => {
                m.retain(|_, v| *v % md != 0);
                Answer::Unit
            }
        }
    }
}

/// Runs `ops` on `map` and on a fresh model; true if every answer matches and the final contents match.
fn agrees_with_model(map: &impl Map, ops: &[Op]) -> bool {
    let model = Model::new();
    for op in ops {
        let (got, want) = (map.apply(op), model.apply(op));
        if got != want {
            eprintln!("{op:?}: map answered {got:?}, the model {want:?}");
            return false;
        }
    }
    map.apply(&Op::Items) == model.apply(&Op::Items)
}

fn both_agree_with_model(ops: &[Op]) -> bool {
    agrees_with_model(&ConcurrentMap::new(), ops) && agrees_with_model(&ReadMap::new(), ops)
}

/// Keeps only the operations `keep` accepts (each property exercises its own part of the API).
fn only(ops: Vec<Op>, keep: impl Fn(&Op) -> bool) -> Vec<Op> {
    ops.into_iter().filter(keep).collect()
}

#[test]
fn prop_basic_operations_match_the_model() {
    fn prop(ops: Vec<Op>) -> bool {
        let ops = only(ops, |op| {
            matches!(
                op,
                Op::Insert(..)
                    | Op::Get(_)
                    | Op::GetWith(_)
                    | Op::Update(..)
                    | Op::GetOrInsert(..)
                    | Op::ContainsKey(_)
                    | Op::Len
                    | Op::IsEmpty
            )
        });
        both_agree_with_model(&ops)
    }
    qc().quickcheck(prop as fn(Vec<Op>) -> bool);
}

#[test]
fn prop_delete_matches_the_model() {
    fn prop(ops: Vec<Op>) -> bool {
        let ops = only(ops, |op| {
            matches!(
                op,
                Op::Insert(..) | Op::Remove(_) | Op::Get(_) | Op::ContainsKey(_) | Op::Len
            )
        });
        both_agree_with_model(&ops)
    }
    qc().quickcheck(prop as fn(Vec<Op>) -> bool);
}

#[test]
fn prop_keys_match_the_model() {
    fn prop(ops: Vec<Op>) -> bool {
        let ops = only(ops, |op| {
            matches!(
                op,
                Op::Insert(..) | Op::Remove(_) | Op::GetOrInsert(..) | Op::Keys
            )
        });
        both_agree_with_model(&ops)
    }
    qc().quickcheck(prop as fn(Vec<Op>) -> bool);
}

#[test]
fn prop_items_match_the_model() {
    fn prop(ops: Vec<Op>) -> bool {
        let ops = only(ops, |op| {
            matches!(
                op,
                Op::Insert(..) | Op::Remove(_) | Op::Update(..) | Op::Retain(_) | Op::Items
            )
        });
        both_agree_with_model(&ops)
    }
    qc().quickcheck(prop as fn(Vec<Op>) -> bool);
}

#[test]
fn prop_clear_empties_and_the_map_stays_usable() {
    fn prop(ops: Vec<Op>) -> bool {
        let mut with_clears = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            with_clears.push(op);
            if i % 9 == 8 {
                with_clears.extend([Op::Clear, Op::Len, Op::IsEmpty, Op::Keys]);
            }
        }
        with_clears.extend([Op::Clear, Op::IsEmpty, Op::Insert(1, 1), Op::Items]);
        both_agree_with_model(&with_clears)
    }
    qc().quickcheck(prop as fn(Vec<Op>) -> bool);
}

/// Operations of one thread in the threaded properties: on keys of its own, so the final state is the
/// union of per-thread models.
#[derive(Debug, Clone)]
struct ThreadOps(Vec<Vec<Op>>);

impl Arbitrary for ThreadOps {
    fn arbitrary(g: &mut Gen) -> Self {
        let threads = 2 + usize::arbitrary(g) % 3;
        ThreadOps(
            (0..threads)
                .map(|_| {
                    let ops: Vec<Op> = Arbitrary::arbitrary(g);
                    // No whole-map operations: their answers depend on the other threads' timing.
                    only(ops, |op| {
                        !matches!(
                            op,
                            Op::Clear
                                | Op::Retain(_)
                                | Op::Len
                                | Op::IsEmpty
                                | Op::Keys
                                | Op::Items
                        )
                    })
                })
                .collect(),
        )
    }
}

/// Moves an operation to thread `t`'s own keys (`k * 8 + t`: disjoint between threads).
fn own_keys(op: &Op, t: usize) -> Op {
    let m = |k: Key| k.wrapping_mul(8).wrapping_add(t as u8);
    match *op {
        Op::Insert(k, v) => Op::Insert(m(k), v),
        Op::Get(k) => Op::Get(m(k)),
        Op::GetWith(k) => Op::GetWith(m(k)),
        Op::Update(k, v) => Op::Update(m(k), v),
        Op::GetOrInsert(k, v) => Op::GetOrInsert(m(k), v),
        Op::Remove(k) => Op::Remove(m(k)),
        Op::ContainsKey(k) => Op::ContainsKey(m(k)),
        ref other => other.clone(),
    }
}

/// Runs each thread's operations on `map` on its own thread (started together), checking every answer
/// against that thread's model; then checks the map holds exactly the union of the models.
fn threads_agree<M: Map + Sync>(map: &M, ops: &ThreadOps) -> bool {
    let barrier = Barrier::new(ops.0.len());
    let models: Vec<Option<Vec<(Key, u32)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = ops
            .0
            .iter()
            .enumerate()
            .map(|(t, ops)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let model = Model::new();
                    barrier.wait();
                    for op in ops {
                        let op = own_keys(op, t);
                        if map.apply(&op) != model.apply(&op) {
                            return None;
                        }
                    }
                    match model.apply(&Op::Items) {
                        Answer::Items(items) => Some(items),
                        _ => None,
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let Some(union): Option<Vec<Vec<(Key, u32)>>> = models.into_iter().collect() else {
        return false;
    };
    map.apply(&Op::Items) == Answer::Items(sorted(union.concat()))
}

#[test]
fn prop_thread_safety_final_state_is_the_union_of_thread_models() {
    fn prop(ops: ThreadOps) -> bool {
        threads_agree(&ConcurrentMap::new(), &ops) && threads_agree(&ReadMap::new(), &ops)
    }
    flowmem_testing::quickcheck(60).quickcheck(prop as fn(ThreadOps) -> bool);
}

#[test]
fn prop_for_each_visits_every_entry_once() {
    fn prop(entries: Vec<(u16, u32)>) -> bool {
        // Keys below 0x8000; the callback inserts keys above it.
        let entries: Vec<(u16, u32)> = entries.into_iter().map(|(k, v)| (k & 0x7fff, v)).collect();
        let model: HashMap<u16, u32> = entries.iter().copied().collect();
        let concurrent: ConcurrentMap<u16, u32> = entries.iter().copied().collect();
        let read: ReadMap<u16, u32> = entries.iter().copied().collect();
        let mut want: Vec<(u16, u32)> = model.into_iter().collect();
        want.sort();
        let mut seen = Vec::new();
        // The callback writes to the map it walks (keys the walk must not report: they were not there for
        // the whole call); on raw dashmap this would deadlock.
        concurrent.for_each(|k, v| {
            seen.push((*k, *v));
            concurrent.insert(k.wrapping_add(1) | 0x8000, 0);
        });
        let mut read_seen = Vec::new();
        read.for_each(|k, v| {
            read_seen.push((*k, *v));
            read.insert(k.wrapping_add(1) | 0x8000, 0);
        });
        seen.retain(|(k, _)| k & 0x8000 == 0);
        read_seen.retain(|(k, _)| k & 0x8000 == 0);
        sorted(seen) == want && sorted(read_seen) == want
    }
    qc().quickcheck(prop as fn(Vec<(u16, u32)>) -> bool);
}

#[test]
fn prop_high_contention_many_threads_few_keys_lose_no_update() {
    fn prop(increments: Vec<u8>, keys: u8) -> bool {
        let keys = u32::from(keys % 3 + 1);
        let threads = 6;
        let check = |map: &dyn Fn(u32) -> Option<u32>, total: u32| {
            let sum: u32 = (0..keys).filter_map(map).sum();
            sum == total
        };
        let per_thread: Vec<u32> = increments.iter().map(|n| u32::from(*n % 50)).collect();
        let total: u32 = per_thread.iter().take(threads).sum();
        let concurrent: ConcurrentMap<u32, u32> = ConcurrentMap::new();
        let read: ReadMap<u32, u32> = ReadMap::new();
        let barrier = Barrier::new(threads);
        std::thread::scope(|s| {
            for t in 0..threads {
                let n = per_thread.get(t).copied().unwrap_or(0);
                let (concurrent, read, barrier) = (&concurrent, &read, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..n {
                        let key = (i + t as u32) % keys;
                        // Both maps: create the key if needed (one value wins), then increment it.
                        concurrent.get_or_insert_with(key, || 0);
                        concurrent.update(&key, |v| *v += 1).unwrap();
                        read.get_or_insert_with(key, || 0);
                        read.update(&key, |v| *v += 1).unwrap();
                    }
                });
            }
        });
        check(&|k| concurrent.get(&k), total) && check(&|k| read.get(&k), total)
    }
    flowmem_testing::quickcheck(40).quickcheck(prop as fn(Vec<u8>, u8) -> bool);
}

#[test]
fn prop_read_map_and_concurrent_map_agree() {
    fn prop(ops: Vec<Op>) -> bool {
        let (concurrent, read) = (ConcurrentMap::new(), ReadMap::new());
        ops.iter().all(|op| concurrent.apply(op) == read.apply(op))
            && concurrent.apply(&Op::Items) == read.apply(&Op::Items)
    }
    qc().quickcheck(prop as fn(Vec<Op>) -> bool);
}

#[test]
fn keys_of_a_big_map_are_each_reported_once() {
    let map: ConcurrentMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
    let keys: HashSet<u32> = map.keys().into_iter().collect();
    assert_eq!((keys.len(), map.len()), (10_000, 10_000));
}
