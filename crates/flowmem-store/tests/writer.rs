//! The writer's contract: one writer per file, create versus open, recovery reported, compaction atomic and
//! seen by readers, tombstones versus empty payloads, and compression flagged per record.

mod common;

use common::{TempDir, contents, raw_record};
use flowmem_store::{MmapStore, StoreError, StoreWriter, Uuid};

#[test]
fn a_second_writer_gets_a_clear_error_until_the_first_is_dropped() {
    let dir = TempDir::new("lock");
    let path = dir.file("one.fms");
    let writer = StoreWriter::create(&path).unwrap();
    for second in [StoreWriter::open(&path), StoreWriter::create(&path)] {
        match second {
            Err(e @ StoreError::Locked { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains("one.fms") && message.contains("another writer"),
                    "{message}"
                );
            }
            other => panic!("expected Locked, got {other:?}"),
        }
    }
    drop(writer);
    assert!(StoreWriter::open(&path).is_ok());
}

#[test]
fn create_refuses_an_existing_file_and_open_creates_a_missing_one() {
    let dir = TempDir::new("create");
    let path = dir.file("c.fms");
    let mut writer = StoreWriter::open(&path).unwrap();
    writer.append(&Uuid::from_u128(1), b"kept").unwrap();
    drop(writer);
    assert!(matches!(
        StoreWriter::create(&path),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        MmapStore::open(&path).unwrap().len(),
        1,
        "nothing was clobbered"
    );
}

#[test]
fn a_torn_tail_is_truncated_and_reported_by_the_next_writer() {
    let dir = TempDir::new("torn");
    let path = dir.file("t.fms");
    let mut writer = StoreWriter::create(&path).unwrap();
    writer.append(&Uuid::from_u128(1), &[1; 100]).unwrap();
    writer.append(&Uuid::from_u128(2), &[2; 100]).unwrap();
    let whole = writer.end();
    drop(writer);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 50).unwrap(); // the second record loses its end
    drop(file);

    let store = MmapStore::open(&path).unwrap();
    let tail = store.torn_tail().unwrap().clone();
    assert_eq!((tail.offset, tail.bytes), (whole - 132, 82));
    assert_eq!(store.len(), 1);

    let writer = StoreWriter::open(&path).unwrap();
    assert_eq!(writer.recovered(), Some(&tail));
    assert_eq!(writer.end(), tail.offset);
    drop(writer);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), tail.offset);
}

#[test]
fn a_header_cut_short_at_creation_is_started_again() {
    let dir = TempDir::new("short-header");
    let path = dir.file("h.fms");
    std::fs::write(&path, b"FLOWM").unwrap();
    assert!(matches!(
        MmapStore::open(&path),
        Err(StoreError::TruncatedHeader { len: 5, .. })
    ));
    let mut writer = StoreWriter::open(&path).unwrap();
    writer.append(&Uuid::from_u128(1), b"x").unwrap();
    drop(writer);
    assert_eq!(MmapStore::open(&path).unwrap().len(), 1);
    std::fs::write(&path, b"GARBAGE").unwrap();
    assert!(matches!(
        StoreWriter::open(&path),
        Err(StoreError::BadMagic { .. })
    ));
}

#[test]
fn tombstones_delete_and_empty_payloads_are_values() {
    let dir = TempDir::new("tomb");
    let path = dir.file("t.fms");
    let mut writer = StoreWriter::create(&path).unwrap();
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    writer.append(&a, b"").unwrap();
    writer.append(&b, b"b").unwrap();
    writer.delete(&b).unwrap();
    writer.delete(&Uuid::from_u128(3)).unwrap(); // deleting what is not there is fine
    writer.flush().unwrap();
    let store = MmapStore::open(&path).unwrap();
    assert_eq!(store.get(&a).unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(store.get(&b).unwrap(), None);
    assert!(!store.contains(&b));
    assert_eq!((store.len(), store.stats().records), (1, 4));
}

#[test]
fn compaction_is_atomic_and_readers_switch_on_refresh() {
    let dir = TempDir::new("compact");
    let path = dir.file("c.fms");
    let mut writer = StoreWriter::create(&path).unwrap();
    for round in 0..10u8 {
        for k in 0..20u128 {
            writer.append(&Uuid::from_u128(k), &[round; 64]).unwrap();
        }
    }
    writer.delete(&Uuid::from_u128(0)).unwrap();
    writer.flush().unwrap();
    let mut reader = MmapStore::open(&path).unwrap();
    let before = contents(&reader);
    // A leftover of a crashed compaction is cleaned up by the next writer.
    std::fs::write(dir.file("c.fms.compact-tmp"), b"half a compaction").unwrap();

    let stats = writer.compact().unwrap();
    assert_eq!((stats.records_before, stats.live), (201, 19));
    assert!(stats.bytes_after * 5 < stats.bytes_before);
    assert!(!dir.file("c.fms.compact-tmp").exists());
    assert_eq!(contents(&reader), before, "an open reader keeps its file");
    reader.refresh().unwrap();
    assert_eq!(contents(&reader), before);
    assert_eq!(reader.stats().records, 19);

    writer.append(&Uuid::from_u128(0), b"back").unwrap();
    writer.flush().unwrap();
    assert_eq!(reader.refresh().unwrap(), 1);
    assert_eq!(reader.len(), 20);
    drop(writer);

    std::fs::write(dir.file("c.fms.compact-tmp"), b"stale").unwrap();
    drop(StoreWriter::open(&path).unwrap());
    assert!(!dir.file("c.fms.compact-tmp").exists());
}

#[cfg(feature = "zstd")]
#[test]
fn compression_is_flagged_per_record_and_reads_back() {
    use flowmem_store::WriterOptions;

    let dir = TempDir::new("zstd");
    let plain_path = dir.file("plain.fms");
    let packed_path = dir.file("packed.fms");
    let text: Vec<u8> = b"node=extract status=COMPLETED attempt=1 "
        .iter()
        .copied()
        .cycle()
        .take(8_000)
        .collect();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let noise: Vec<u8> = (0..4_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut plain = StoreWriter::create(&plain_path).unwrap();
    let mut packed =
        StoreWriter::create_with(&packed_path, WriterOptions::new().compression(3, 512)).unwrap();
    for w in [&mut plain, &mut packed] {
        w.append(&Uuid::from_u128(1), &text).unwrap();
        w.append(&Uuid::from_u128(2), &noise).unwrap();
        w.append(&Uuid::from_u128(3), b"short").unwrap();
        w.sync().unwrap();
    }
    let (plain_len, packed_len) = (
        std::fs::metadata(&plain_path).unwrap().len(),
        std::fs::metadata(&packed_path).unwrap().len(),
    );
    assert!(
        packed_len + 7_000 < plain_len,
        "{packed_len} vs {plain_len}"
    );
    let store = MmapStore::open(&packed_path).unwrap();
    let flags: Vec<bool> = (1..=3)
        .map(|k| store.record(&Uuid::from_u128(k)).unwrap().compressed)
        .collect();
    assert_eq!(
        flags,
        [true, false, false],
        "noise and short payloads stay plain"
    );
    assert_eq!(
        store.get(&Uuid::from_u128(1)).unwrap().as_deref(),
        Some(&text[..])
    );
    assert_eq!(
        store.get(&Uuid::from_u128(2)).unwrap().as_deref(),
        Some(&noise[..])
    );
}

/// Issue 14, bug 4: a compressed record of an 8-byte length 0 and no zstd frame is an error, not an empty
/// payload.
#[cfg(feature = "zstd")]
#[test]
fn a_compressed_record_without_a_frame_is_an_error() {
    let dir = TempDir::new("zstd-empty");
    let path = dir.file("z.fms");
    let mut bytes = b"FLOWMEMS\x02\0\0\0\0\0\0\0".to_vec();
    bytes.extend(raw_record(5, &0u64.to_le_bytes(), 2));
    std::fs::write(&path, &bytes).unwrap();
    let store = MmapStore::open(&path).unwrap();
    match store.get(&Uuid::from_u128(5)) {
        Err(e @ StoreError::Decompress { .. }) => {
            assert!(e.to_string().contains("no zstd frame"), "{e}")
        }
        other => panic!("expected Decompress, got {other:?}"),
    }
}

/// A compressed record written by hand (the zstd flag set).
#[cfg(not(feature = "zstd"))]
#[test]
fn a_compressed_record_without_the_zstd_feature_is_a_clear_error() {
    let dir = TempDir::new("no-zstd");
    let path = dir.file("z.fms");
    let mut bytes = b"FLOWMEMS\x02\0\0\0\0\0\0\0".to_vec();
    let start = bytes.len() as u64;
    bytes.extend(raw_record(5, b"not really zstd", 2));
    std::fs::write(&path, &bytes).unwrap();
    let store = MmapStore::open(&path).unwrap();
    match store.get(&Uuid::from_u128(5)) {
        Err(e @ StoreError::CompressionUnsupported { .. }) => {
            assert_eq!(e.offset(), Some(start));
            assert!(e.to_string().contains("zstd"));
        }
        other => panic!("expected CompressionUnsupported, got {other:?}"),
    }
    assert!(store.record(&Uuid::from_u128(5)).unwrap().compressed);
}
