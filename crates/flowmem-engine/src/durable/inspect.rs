//! What a checkpoint file holds, read without taking the writer's lock: for an operator after a crash.

use std::{collections::BTreeMap, path::Path};

use flowmem_store::{MmapStore, TornTail};

use super::{
    DurabilityError, RunId,
    encode::{KIND_CONTEXT, KIND_HEADER, KIND_NODE, decode_context, decode_header, decode_node},
};

/// What a [`FileCheckpoints`](crate::FileCheckpoints) file holds: its runs, and anything wrong with it
/// ([`FileCheckpoints::inspect`](crate::FileCheckpoints::inspect)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreInspection {
    /// The file's size in bytes.
    pub file_bytes: u64,
    /// Records in the file (every version of a context value counts).
    pub records: u64,
    /// Bytes of whole records.
    pub valid_bytes: u64,
    /// The runs, in the order of their first record.
    pub runs: Vec<RunInspection>,
    /// An incomplete record at the end of the file (a crash during an append): where it starts, how many
    /// bytes, what is wrong. The next writer truncates it; nothing acknowledged as durable is in it.
    pub torn_tail: Option<TornTail>,
    /// Records that are whole (their checksums hold) but do not decode as checkpoints: their offsets and
    /// why. A file written only by flowmem has none.
    pub undecodable: Vec<(u64, String)>,
}

/// One run in a checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunInspection {
    /// The run's id.
    pub run: RunId,
    /// Its workflow's name.
    pub workflow: String,
    /// Its workflow's fingerprint ([`Workflow::fingerprint`](crate::Workflow::fingerprint)).
    pub fingerprint: u64,
    /// Nodes in its workflow.
    pub nodes: u32,
    /// Nodes checkpointed (completed and recorded).
    pub checkpointed: u32,
    /// Context values recorded (distinct keys).
    pub context_values: u32,
    /// Payload bytes of its records.
    pub bytes: u64,
    /// Offset of its first record.
    pub first_offset: u64,
}

impl super::FileCheckpoints {
    /// Reads what the checkpoint file at `path` holds — runs, nodes checkpointed, sizes, and damage —
    /// without opening it for writing (a live writer may hold it; its last records may then show as a
    /// torn tail still being appended).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use flowmem_engine::{Executor, FileCheckpoints, RunId, Workflow};
    ///
    /// let path = std::env::temp_dir().join(format!("flowmem-doc-inspect-{}.fms", std::process::id()));
    /// let mut b = Workflow::builder("etl");
    /// b.node("extract", |ctx| { ctx.set_output(7u64); Ok(()) });
    /// b.node("load", |_| Ok(())).after(["extract"]);
    /// let workflow = b.build()?;
    /// Executor::new(1).run_durable(&workflow, Arc::new(FileCheckpoints::open(&path)?), RunId::named("a"))?;
    ///
    /// let seen = FileCheckpoints::inspect(&path)?;
    /// assert_eq!(seen.runs.len(), 1);
    /// assert_eq!((seen.runs[0].workflow.as_str(), seen.runs[0].checkpointed), ("etl", 2));
    /// assert!(seen.torn_tail.is_none() && seen.undecodable.is_empty());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The file cannot be read, is not a store file, or is damaged before its end
    /// ([`StoreError::Corrupt`](flowmem_store::StoreError::Corrupt) names the damaged record's offset
    /// and the next valid one).
    pub fn inspect(path: impl AsRef<Path>) -> Result<StoreInspection, DurabilityError> {
        let path = path.as_ref();
        let store = MmapStore::open(path)?;
        let file_bytes = std::fs::metadata(path)
            .map_err(|e| flowmem_store::StoreError::io(path, e))?
            .len();
        let stats = store.stats();
        // Runs by their 128-bit id; a run's records share the 64-bit key in their ids' high half, and
        // each payload names the whole id.
        let mut runs: BTreeMap<u128, RunInspection> = BTreeMap::new();
        let mut undecodable = Vec::new();
        for record in store.iter() {
            let offset = record.offset;
            let payload = match store.get(&record.id) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(e) => {
                    undecodable.push((offset, e.to_string()));
                    continue;
                }
            };
            let kind = (record.id.as_u128() >> 56) as u8;
            let size = payload.len() as u64;
            let decoded = match kind {
                KIND_HEADER => decode_header(&payload).map(|h| {
                    let r = entry(&mut runs, h.run, offset);
                    r.workflow = h.workflow.to_string();
                    r.fingerprint = h.fingerprint;
                    r.nodes = h.nodes;
                    r.bytes += size;
                }),
                KIND_NODE => decode_node(&payload).map(|(id, _, _)| {
                    let r = entry(&mut runs, id, offset);
                    r.checkpointed += 1;
                    r.bytes += size;
                }),
                KIND_CONTEXT => decode_context(&payload).map(|(id, _, _)| {
                    let r = entry(&mut runs, id, offset);
                    r.context_values += 1;
                    r.bytes += size;
                }),
                other => {
                    undecodable
                        .push((offset, format!("record kind {other} is not a checkpoint's")));
                    continue;
                }
            };
            if let Err(e) = decoded {
                undecodable.push((offset, format!("does not decode: {e}")));
            }
        }
        let mut runs: Vec<RunInspection> = runs.into_values().collect();
        runs.sort_by_key(|r| r.first_offset);
        Ok(StoreInspection {
            file_bytes,
            records: stats.records,
            valid_bytes: stats.valid_bytes,
            runs,
            torn_tail: store.torn_tail().cloned(),
            undecodable,
        })
    }
}

/// The run `id`'s entry, made at its first record (`offset`).
fn entry(runs: &mut BTreeMap<u128, RunInspection>, id: u128, offset: u64) -> &mut RunInspection {
    runs.entry(id).or_insert_with(|| RunInspection {
        run: RunId::from_u128(id),
        workflow: String::new(),
        fingerprint: 0,
        nodes: 0,
        checkpointed: 0,
        context_values: 0,
        bytes: 0,
        first_offset: offset,
    })
}
