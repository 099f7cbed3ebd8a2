//! Which record each context key of a run is written to, in a [`FileCheckpoints`](super::FileCheckpoints).
//!
//! A context record's id carries 56 bits of its key's hash, so two keys can hash alike (`k88da5313ac169f`
//! and `k6cd427445599da` do). Keys are often chosen by users, so a collision must never make one key
//! overwrite another's record: the second key takes the next free index (linear probing), and each record
//! holds its key in full, so loading a run needs no index at all. The indexes in use are read from the file
//! the first time a run writes a context value, and kept for a bounded number of runs (the file is the
//! truth: a run dropped from here is read again when it next writes).

use std::collections::{HashMap, HashSet};

/// Runs whose slots are kept in memory; past this, one is dropped (and read again from the file if used).
const RUNS_KEPT: usize = 1024;

/// The context slots of one run: each key's index, and every index in use.
#[derive(Debug, Default)]
pub(super) struct RunSlots {
    by_key: HashMap<Box<str>, u64>,
    used: HashSet<u64>,
}

impl RunSlots {
    /// The slots of the stored records `(index, key)` of a run.
    pub(super) fn from_records(records: impl IntoIterator<Item = (u64, String)>) -> Self {
        let mut slots = RunSlots::default();
        for (index, key) in records {
            slots.used.insert(index);
            slots.by_key.insert(key.into_boxed_str(), index);
        }
        slots
    }

    /// The index of `key`: the one it has, or the first free one from its hash on.
    pub(super) fn index_of(&mut self, key: &str, hash: u64, mask: u64) -> u64 {
        if let Some(&index) = self.by_key.get(key) {
            return index;
        }
        let mut index = hash & mask;
        while self.used.contains(&index) {
            index = index.wrapping_add(1) & mask;
        }
        self.used.insert(index);
        self.by_key.insert(key.into(), index);
        index
    }
}

/// The slots of the runs that wrote context values lately, by run key.
#[derive(Debug, Default)]
pub(super) struct ContextSlots {
    runs: HashMap<u64, RunSlots>,
}

impl ContextSlots {
    /// The slots of the run of `key`, if kept.
    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut RunSlots> {
        self.runs.get_mut(&key)
    }

    /// Keeps `slots` for the run of `key`, dropping another run's if too many are kept.
    pub(super) fn insert(&mut self, key: u64, slots: RunSlots) -> &mut RunSlots {
        if self.runs.len() >= RUNS_KEPT && !self.runs.contains_key(&key) {
            let victim = *self.runs.keys().next().expect("more than zero runs kept");
            self.runs.remove(&victim);
        }
        self.runs.entry(key).insert_entry(slots).into_mut()
    }

    /// Forgets the run of `key` (its records were deleted).
    pub(super) fn remove(&mut self, key: u64) {
        self.runs.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_keys_take_different_indexes_and_keep_them() {
        let mut slots = RunSlots::default();
        let a = slots.index_of("a", 5, u64::MAX);
        let b = slots.index_of("b", 5, u64::MAX);
        assert_eq!((a, b), (5, 6));
        assert_eq!(slots.index_of("b", 5, u64::MAX), 6);
        // Read back from records, the same answers.
        let mut again = RunSlots::from_records([(5, "a".to_string()), (6, "b".to_string())]);
        assert_eq!(again.index_of("b", 5, u64::MAX), 6);
        assert_eq!(again.index_of("c", 5, u64::MAX), 7);
        // Probing wraps within the mask.
        let mut wrap = RunSlots::from_records([(3, "x".to_string())]);
        assert_eq!(wrap.index_of("y", 3, 3), 0);
    }
}
