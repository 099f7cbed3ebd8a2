//! `flowmem inspect STORE`: what a checkpoint file holds, and any damage by offset — for an operator
//! after a crash.

use std::path::Path;

use flowmem_engine::{DurabilityError, FileCheckpoints};

use crate::{Exit, Failure};

pub(crate) fn inspect(path: &Path, json: bool) -> Result<Exit, Failure> {
    let seen = match FileCheckpoints::inspect(path) {
        Ok(seen) => seen,
        Err(DurabilityError::RecordStore(e)) => {
            let place = e
                .offset()
                .map_or(String::new(), |o| format!(" (damage at offset {o})"));
            return Err(Failure::new(
                Exit::Store,
                format!(
                    "{e}{place}; the file is not opened for writing until it is repaired or moved aside"
                ),
            ));
        }
        Err(e) => return Err(Failure::new(Exit::Store, e)),
    };
    if json {
        let runs: Vec<serde_json::Value> = seen
            .runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "run": r.run.to_string(),
                    "workflow": r.workflow,
                    "fingerprint": format!("{:016x}", r.fingerprint),
                    "nodes": r.nodes,
                    "checkpointed": r.checkpointed,
                    "context_values": r.context_values,
                    "bytes": r.bytes,
                    "first_offset": r.first_offset,
                })
            })
            .collect();
        let value = serde_json::json!({
            "file_bytes": seen.file_bytes,
            "records": seen.records,
            "valid_bytes": seen.valid_bytes,
            "runs": runs,
            "torn_tail": seen.torn_tail.as_ref().map(|t| serde_json::json!({
                "offset": t.offset, "bytes": t.bytes, "damage": t.damage.to_string(),
            })),
            "undecodable": seen.undecodable.iter().map(|(offset, why)| serde_json::json!({
                "offset": offset, "why": why,
            })).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("plain JSON")
        );
        return Ok(Exit::Ok);
    }
    println!(
        "{}: {} bytes, {} records in {} bytes of whole records, {} runs",
        path.display(),
        seen.file_bytes,
        seen.records,
        seen.valid_bytes,
        seen.runs.len()
    );
    for r in &seen.runs {
        let state = if r.checkpointed == r.nodes {
            "every node checkpointed"
        } else {
            "unfinished: resumable"
        };
        println!(
            "  run {}: workflow `{}` (fingerprint {:016x}), {}/{} nodes checkpointed ({state}), {} context values, {} bytes, from offset {}",
            r.run,
            r.workflow,
            r.fingerprint,
            r.checkpointed,
            r.nodes,
            r.context_values,
            r.bytes,
            r.first_offset
        );
    }
    match &seen.torn_tail {
        Some(t) => println!(
            "  torn tail: {t} — an append cut short by a crash; nothing acknowledged durable is in it, and the next `flowmem run --store` truncates it"
        ),
        None => println!("  no torn tail: the file ends on a whole record"),
    }
    for (offset, why) in &seen.undecodable {
        println!("  record at offset {offset}: {why}");
    }
    Ok(Exit::Ok)
}
