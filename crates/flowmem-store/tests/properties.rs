//! Property tests (quickcheck), one test per property: any sequence of appends and tombstones reads back
//! as a `HashMap` model says, through every way of reading a store.

mod common;

use common::{Model, Op, TempDir, apply, contents, write};
use flowmem_store::{MmapStore, StoreWriter, WriterOptions};
use quickcheck::QuickCheck;

fn qc() -> QuickCheck {
    flowmem_testing::quickcheck(60)
}

fn model_of(ops: &[Op]) -> Model {
    let mut model = Model::new();
    ops.iter().for_each(|op| apply(&mut model, op));
    model
}

fn writer_options() -> WriterOptions {
    let options = WriterOptions::new();
    #[cfg(feature = "zstd")]
    let options = options.compression(1, 64);
    options
}

#[test]
fn prop_appends_and_tombstones_read_back_as_the_model() {
    fn prop(ops: Vec<Op>) -> bool {
        let dir = TempDir::new("prop-read");
        let path = dir.file("s.fms");
        let mut writer = StoreWriter::create_with(&path, writer_options()).unwrap();
        ops.iter().for_each(|op| write(&mut writer, op));
        writer.flush().unwrap();
        let store = MmapStore::open(&path).unwrap();
        let model = model_of(&ops);
        contents(&store) == model
            && store.len() == model.len()
            && store.iter().count() == model.len()
            && store.torn_tail().is_none()
            && store.stats().records == ops.len() as u64
    }
    qc().quickcheck(prop as fn(Vec<Op>) -> bool);
}

#[test]
fn prop_contents_survive_reopening_the_writer() {
    fn prop(first: Vec<Op>, second: Vec<Op>) -> bool {
        let dir = TempDir::new("prop-reopen");
        let path = dir.file("s.fms");
        let mut writer = StoreWriter::create_with(&path, writer_options()).unwrap();
        first.iter().for_each(|op| write(&mut writer, op));
        writer.sync().unwrap();
        drop(writer);
        let mut writer = StoreWriter::open_with(&path, writer_options()).unwrap();
        let clean = writer.recovered().is_none();
        second.iter().for_each(|op| write(&mut writer, op));
        drop(writer);
        let all: Vec<Op> = first.iter().chain(&second).cloned().collect();
        clean && contents(&MmapStore::open(&path).unwrap()) == model_of(&all)
    }
    qc().quickcheck(prop as fn(Vec<Op>, Vec<Op>) -> bool);
}

#[test]
fn prop_compaction_keeps_exactly_the_live_records() {
    fn prop(ops: Vec<Op>, after: Vec<Op>) -> bool {
        let dir = TempDir::new("prop-compact");
        let path = dir.file("s.fms");
        let mut writer = StoreWriter::create_with(&path, writer_options()).unwrap();
        ops.iter().for_each(|op| write(&mut writer, op));
        let stats = writer.compact().unwrap();
        let model = model_of(&ops);
        let compacted = MmapStore::open(&path).unwrap();
        let ok = contents(&compacted) == model
            && stats.live == model.len()
            && compacted.stats().records == model.len() as u64
            && stats.bytes_after <= stats.bytes_before
            && std::fs::metadata(&path).unwrap().len() == stats.bytes_after;
        // The writer goes on appending to the compacted file.
        after.iter().for_each(|op| write(&mut writer, op));
        drop(writer);
        let all: Vec<Op> = ops.iter().chain(&after).cloned().collect();
        ok && contents(&MmapStore::open(&path).unwrap()) == model_of(&all)
    }
    qc().quickcheck(prop as fn(Vec<Op>, Vec<Op>) -> bool);
}

#[test]
fn prop_refresh_sees_every_later_append() {
    fn prop(batches: Vec<Vec<Op>>) -> bool {
        let dir = TempDir::new("prop-refresh");
        let path = dir.file("s.fms");
        let mut writer = StoreWriter::create_with(&path, writer_options()).unwrap();
        writer.flush().unwrap();
        let mut store = MmapStore::open(&path).unwrap();
        let mut model = Model::new();
        for batch in &batches {
            batch.iter().for_each(|op| {
                write(&mut writer, op);
                apply(&mut model, op);
            });
            writer.flush().unwrap();
            if store.refresh().unwrap() != batch.len() || contents(&store) != model {
                return false;
            }
        }
        true
    }
    qc().quickcheck(prop as fn(Vec<Vec<Op>>) -> bool);
}
