//! Bad bytes: every truncation and thousands of byte flips of a small store, and arbitrary files. Each open
//! either succeeds with a correct prefix of the data or returns an error; none panics.

mod common;

use std::path::Path;

use common::{Model, Op, TempDir, contents, prefix_states, raw_record, write};
use flowmem_store::{
    Damage, MmapStore, Recovery, StoreError, StoreWriter, Uuid, WriterOptions, format::HEADER_LEN,
};
use quickcheck::{QuickCheck, TestResult};

/// A small store of varied records (overwrites, a tombstone, an empty payload), the operations that made
/// it, and the offset where each record starts.
fn small_store(dir: &TempDir) -> (Vec<u8>, Vec<Op>, Vec<u64>) {
    let ops = vec![
        Op::Put(1, b"alpha".to_vec()),
        Op::Put(2, vec![7; 40]),
        Op::Put(1, b"alpha, again".to_vec()),
        Op::Delete(2),
        Op::Put(3, Vec::new()),
        Op::Put(4, (0..90).collect()),
        Op::Put(5, b"last".to_vec()),
    ];
    let path = dir.file("small.fms");
    let mut writer = StoreWriter::create(&path).unwrap();
    let mut starts = Vec::new();
    for op in &ops {
        starts.push(writer.end());
        write(&mut writer, op);
    }
    writer.sync().unwrap();
    drop(writer);
    (std::fs::read(&path).unwrap(), ops, starts)
}

/// Which prefix of `states` the store holds, if any.
fn prefix_of(store: &MmapStore, states: &[Model]) -> Option<usize> {
    let got = contents(store);
    states.iter().rposition(|s| *s == got)
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let _ = std::fs::remove_file(path.with_extension("fms.lock"));
}

#[test]
fn truncation_at_every_offset_opens_as_the_prefix_of_whole_records() {
    let dir = TempDir::new("truncate");
    let (bytes, ops, starts) = small_store(&dir);
    let states = prefix_states(&ops);
    let path = dir.file("cut.fms");
    for cut in 0..=bytes.len() {
        write_file(&path, &bytes[..cut]);
        // Records wholly inside the cut, and where the last of them ends.
        let ends: Vec<usize> = starts[1..]
            .iter()
            .map(|s| *s as usize)
            .chain([bytes.len()])
            .collect();
        let whole = ends.iter().filter(|e| **e <= cut).count();
        let whole_end = if whole == 0 {
            HEADER_LEN as usize
        } else {
            ends[whole - 1]
        };
        match MmapStore::open(&path) {
            Ok(store) => {
                assert!(
                    cut as u64 >= HEADER_LEN,
                    "cut {cut}: opened a file without a header"
                );
                assert_eq!(contents(&store), states[whole], "cut {cut}");
                assert_eq!(store.torn_tail().is_some(), cut != whole_end, "cut {cut}");
            }
            Err(StoreError::Empty { .. }) => assert_eq!(cut, 0),
            Err(StoreError::TruncatedHeader { len, .. }) => assert_eq!(len, cut as u64),
            Err(e) => panic!("cut {cut}: unexpected error {e}"),
        }
        // The writer recovers every one of them to the same prefix, and appends after it.
        let mut writer = StoreWriter::open(&path).unwrap();
        writer.append(&Uuid::from_u128(99), b"after").unwrap();
        drop(writer);
        let store = MmapStore::open(&path).unwrap();
        let mut expected = if (cut as u64) < HEADER_LEN {
            Model::new()
        } else {
            states[whole].clone()
        };
        expected.insert(Uuid::from_u128(99), b"after".to_vec());
        assert_eq!(contents(&store), expected, "cut {cut}, after recovery");
        assert!(store.torn_tail().is_none());
    }
}

#[test]
fn byte_flips_give_an_error_or_a_correct_prefix_and_never_lose_a_sound_record() {
    let dir = TempDir::new("flip");
    let (bytes, ops, starts) = small_store(&dir);
    let states = prefix_states(&ops);
    let path = dir.file("flipped.fms");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let cases = flowmem_testing::iterations(4_000);
    let (mut errors, mut prefixes) = (0, 0);
    for case in 0..cases {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut flipped = bytes.clone();
        let at = (x % bytes.len() as u64) as usize;
        let mask = ((x >> 32) as u8).max(1);
        flipped[at] ^= mask;
        let mut touched = vec![at];
        if case % 3 == 0 {
            // A second flip elsewhere.
            let at2 = ((x >> 20) % bytes.len() as u64) as usize;
            flipped[at2] ^= 0x40;
            touched.push(at2);
        }
        // The records the flips landed in.
        let record_of = |at: usize| starts.iter().rposition(|s| *s as usize <= at);
        let damaged: Vec<usize> = touched.iter().filter_map(|at| record_of(*at)).collect();
        write_file(&path, &flipped);
        match MmapStore::open(&path) {
            Ok(store) => {
                prefixes += 1;
                let k = prefix_of(&store, &states).unwrap_or_else(|| {
                    panic!("case {case}: flip at {at} gave contents no prefix has")
                });
                // A shorter prefix only if every record after it is damaged (a sound record followed by
                // damage is never dropped: that is an error instead), and it is reported.
                if k < ops.len() {
                    let tail = store.torn_tail().expect("a shorter prefix is reported");
                    assert_eq!(
                        tail.offset, starts[k],
                        "case {case}: flips at {touched:?}: {tail}"
                    );
                    assert!(
                        (k..ops.len()).all(|j| damaged.contains(&j)),
                        "case {case}: flips at {touched:?} dropped sound records after {k}: {tail}"
                    );
                }
            }
            Err(e) => {
                errors += 1;
                let message = e.to_string();
                assert!(message.contains("flipped.fms"), "{message}");
            }
        }
    }
    assert!(
        errors > 0 && prefixes > 0,
        "{errors} errors, {prefixes} prefixes"
    );
}

#[test]
fn damage_in_the_middle_is_refused_by_the_writer_unless_told_to_truncate() {
    let dir = TempDir::new("middle");
    let (mut bytes, ops, starts) = small_store(&dir);
    let path = dir.file("middle.fms");
    let second = starts[1] as usize;
    bytes[second + 30] ^= 0xFF; // inside record 2's payload
    write_file(&path, &bytes);
    match StoreWriter::open(&path) {
        Err(StoreError::Corrupt {
            offset,
            damage: Damage::ChecksumMismatch { .. },
            next_valid,
            ..
        }) => {
            assert_eq!(offset, starts[1]);
            assert_eq!(next_valid, starts[2]);
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was cut");
    let writer = StoreWriter::open_with(
        &path,
        WriterOptions::new().recovery(Recovery::TruncateAtFirstDamage),
    )
    .unwrap();
    let cut = writer.recovered().unwrap();
    assert_eq!(
        (cut.offset, cut.bytes),
        (starts[1], (bytes.len() as u64) - starts[1])
    );
    drop(writer);
    assert_eq!(
        contents(&MmapStore::open(&path).unwrap()),
        prefix_states(&ops)[1]
    );
}

#[test]
fn header_errors_name_the_file_and_the_offset() {
    let dir = TempDir::new("header");
    let (bytes, _, _) = small_store(&dir);
    let path = dir.file("h.fms");
    let cases: Vec<(Vec<u8>, &str, Option<u64>)> = vec![
        (Vec::new(), "empty file", None),
        (bytes[..9].to_vec(), "truncated header", None),
        ([b"NOTFLOWM", &bytes[8..]].concat(), "bad magic", Some(0)),
        (
            [&bytes[..8], &7u32.to_le_bytes()[..], &bytes[12..]].concat(),
            "unknown format version 7",
            Some(8),
        ),
    ];
    for (content, words, offset) in cases {
        write_file(&path, &content);
        let e = MmapStore::open(&path).unwrap_err();
        let message = e.to_string();
        assert!(
            message.contains("h.fms") && message.contains(words),
            "{message}"
        );
        assert_eq!(e.offset(), offset, "{message}");
    }
}

#[test]
fn prop_arbitrary_bytes_never_panic() {
    fn prop(body: Vec<u8>, with_header: bool, bare: bool) -> TestResult {
        let dir = TempDir::new("arbitrary");
        let path = dir.file("a.fms");
        let mut bytes = Vec::new();
        if with_header {
            bytes.extend_from_slice(b"FLOWMEMS\x01\0\0\0\0\0\0\0");
        }
        bytes.extend_from_slice(&body);
        std::fs::write(&path, &bytes).unwrap();
        let opened = if bare {
            MmapStore::open_bare(&path)
        } else {
            MmapStore::open(&path)
        };
        let headerless = !bare && !with_header && !body.starts_with(b"FLOWMEMS");
        match opened {
            Ok(_) if headerless => TestResult::failed(),
            // Every record of an opened store reads, or says clearly why not.
            Ok(store) => TestResult::from_bool(store.ids().all(|id| match store.get(id) {
                Ok(Some(_)) => true,
                Err(e) => matches!(
                    e,
                    StoreError::CompressionUnsupported { .. } | StoreError::Decompress { .. }
                ),
                Ok(None) => false,
            })),
            Err(e) => {
                let header_error = matches!(
                    e,
                    StoreError::Empty { .. }
                        | StoreError::TruncatedHeader { .. }
                        | StoreError::BadMagic { .. }
                );
                TestResult::from_bool(
                    e.to_string().contains("a.fms") && (!headerless || header_error),
                )
            }
        }
    }
    QuickCheck::new()
        .tests(flowmem_testing::cases(500))
        .quickcheck(prop as fn(Vec<u8>, bool, bool) -> TestResult);
}

#[test]
fn bare_layout_reads_and_rejects_a_record_past_the_end() {
    let dir = TempDir::new("bare");
    let path = dir.file("bare.bin");
    let mut bytes = Vec::new();
    for (i, payload) in [&b"one"[..], b"", b"three"].iter().enumerate() {
        bytes.extend_from_slice(Uuid::from_u128(i as u128).as_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(payload);
    }
    std::fs::write(&path, &bytes).unwrap();
    let store = MmapStore::open_bare(&path).unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(
        store.get(&Uuid::from_u128(2)).unwrap().as_deref(),
        Some(&b"three"[..])
    );
    assert!(matches!(
        MmapStore::open(&path),
        Err(StoreError::BadMagic { .. })
    ));
    for cut in 1..bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let boundary = [0, 27, 51, 80].contains(&cut);
        match MmapStore::open_bare(&path) {
            Ok(store) => assert!(boundary, "cut {cut} opened with {} records", store.len()),
            Err(StoreError::BareDamaged { offset, .. }) => {
                assert!(!boundary);
                assert!(offset < cut as u64);
            }
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }
}

/// The store's header, then `records`.
fn file_of(records: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = b"FLOWMEMS\x02\0\0\0\0\0\0\0".to_vec();
    for r in records {
        bytes.extend_from_slice(r);
    }
    bytes
}

/// Issue 14, bug 1: a crash while appending a record whose payload holds whole valid records (here: a
/// record, and a copy of the store file itself) leaves a torn tail, which is served as one and truncated,
/// at every offset of the cut; it was refused as `Corrupt`.
#[test]
fn a_torn_record_whose_payload_holds_valid_records_is_a_torn_tail_at_every_cut() {
    let dir = TempDir::new("embedded");
    let path = dir.file("embedded.fms");
    let first = raw_record(1, b"durable", 0);
    let durable = file_of(&[first]);
    let inner = raw_record(2, b"looks like a record", 0);
    for payload in [
        inner.clone(),
        [&inner[..], &inner].concat(),
        durable.clone(),
    ] {
        let whole = [&durable[..], &raw_record(3, &payload, 0)].concat();
        for cut in durable.len() + 1..whole.len() {
            write_file(&path, &whole[..cut]);
            let store = MmapStore::open(&path).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert_eq!(store.len(), 1, "cut {cut}");
            assert_eq!(
                store.torn_tail().map(|t| t.offset),
                Some(durable.len() as u64)
            );
            drop(store);
            let writer = StoreWriter::open(&path).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert_eq!(writer.end(), durable.len() as u64);
            drop(writer);
            assert_eq!(std::fs::read(&path).unwrap(), durable, "cut {cut}");
        }
    }
}

/// Damage with a whole, valid record after it stays an error, wherever the damage is: a payload byte (the
/// head is trusted: the next record is at its end), a head byte or the length itself (the head checksum
/// fails: every later offset is searched), a length made to run past the end of the file.
#[test]
fn damage_followed_by_a_valid_record_is_corrupt_wherever_it_is() {
    let dir = TempDir::new("damage-kinds");
    let path = dir.file("d.fms");
    let a = raw_record(1, &[9; 64], 0);
    let b = raw_record(2, b"after", 0);
    let b_at = 16 + a.len() as u64;
    // (byte of record a to flip, whether the head is what is damaged)
    for (at, head) in [(40, false), (3, true), (16, true), (22, true)] {
        let mut damaged = a.clone();
        damaged[at] ^= 0x40;
        write_file(&path, &file_of(&[damaged, b.clone()]));
        match MmapStore::open(&path) {
            Err(StoreError::Corrupt {
                offset,
                damage,
                next_valid,
                ..
            }) => {
                assert_eq!((offset, next_valid), (16, b_at), "byte {at}");
                let is_head = matches!(damage, Damage::HeadChecksumMismatch { .. });
                let is_payload = matches!(damage, Damage::ChecksumMismatch { .. });
                assert!(
                    if head { is_head } else { is_payload },
                    "byte {at}: {damage}"
                );
            }
            other => panic!("byte {at}: expected Corrupt, got {other:?}"),
        }
    }
}

/// Bug 2: after a damaged head every offset is searched, and bytes full of heads that check out (each
/// claiming a long payload whose checksum fails) must not make that quadratic, nor fool it: the first
/// valid record after them is found.
#[test]
fn a_search_through_crafted_heads_finds_the_first_valid_record() {
    let dir = TempDir::new("crafted");
    let path = dir.file("c.fms");
    // 2,000 records' heads with their payloads cut off: each head checks out and claims 1,000 bytes.
    let mut crafted = Vec::new();
    for i in 0..2000u128 {
        crafted.extend_from_slice(&raw_record(i, &[0; 1000], 0)[..28]);
    }
    let mut damaged = raw_record(7, &crafted, 0);
    damaged[5] ^= 1; // the outer head: its length is not trusted
    let valid = raw_record(8, b"the real next record", 0);
    let next_valid = 16 + damaged.len() as u64;
    write_file(&path, &file_of(&[damaged.clone(), valid]));
    match MmapStore::open(&path) {
        Err(StoreError::Corrupt {
            offset: 16,
            next_valid: found,
            ..
        }) => assert_eq!(found, next_valid),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Without the valid record, nothing follows: a torn tail (no crash leaves a damaged head, but nothing
    // valid is lost by cutting it).
    write_file(&path, &file_of(&[damaged]));
    let store = MmapStore::open(&path).unwrap();
    assert_eq!(store.torn_tail().map(|t| t.offset), Some(16));
}
