//! Layer 4 benches, on 100,000 records of 1 KiB (about 105 MB): opening and indexing a store against
//! reading the file and parsing it into a `HashMap<Uuid, Vec<u8>>` (S1), a lookup by id against that
//! `HashMap` (S2), appending with one sync at the end against one `write_all` of the same bytes and an
//! fsync (S3; both files are created before the clock starts); and opening a file whose one 32 MiB record
//! of u64-like bytes is damaged against opening it undamaged (S4: a damaged payload, a torn tail; and, as a
//! reported row, a damaged head, after which every offset is searched).
//!
//! The files live under `target/flowmem-bench/store-data` (the disk the repository is on, not a tmpfs), and
//! are removed at the end.

use std::{
    collections::HashMap,
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flowmem_benches::keep;
use flowmem_store::{MmapStore, StoreWriter, Uuid};

const RECORDS: u64 = 100_000;
const PAYLOAD: usize = 1024;

fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/flowmem-bench/store-data");
    std::fs::create_dir_all(&dir).expect("bench data directory");
    dir
}

fn id(i: u64) -> Uuid {
    Uuid::from_u64_pair(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i)
}

fn payload(i: u64) -> Vec<u8> {
    let mut p = vec![(i % 251) as u8; PAYLOAD];
    p[..8].copy_from_slice(&i.to_le_bytes());
    p
}

/// Writes the store the read benches open.
fn write_store(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut writer = StoreWriter::create(path).expect("create the bench store");
    for i in 0..RECORDS {
        writer.append(&id(i), &payload(i)).expect("append");
    }
    writer.sync().expect("sync");
}

/// The baseline reader: the whole file read, each record's payload copied into a `HashMap` (std hasher)
/// by id. It parses the same layout and skips the checksums (less work than the store does).
fn read_and_parse(path: &Path) -> HashMap<Uuid, Vec<u8>> {
    let bytes = std::fs::read(path).expect("read");
    let mut map = HashMap::with_capacity(RECORDS as usize);
    let mut pos = 16;
    // A record: id (16), word (8), head checksum (4), payload, checksum (4).
    while pos + 32 <= bytes.len() {
        let id = Uuid::from_bytes(bytes[pos..pos + 16].try_into().expect("16 bytes"));
        let word = u64::from_le_bytes(bytes[pos + 16..pos + 24].try_into().expect("8 bytes"));
        let len = (word & ((1 << 56) - 1)) as usize;
        map.insert(id, bytes[pos + 28..pos + 28 + len].to_vec());
        pos += 32 + len;
    }
    map
}

fn open(c: &mut Criterion) {
    let path = data_dir().join("open.fms");
    write_store(&path);
    let mut group = c.benchmark_group("open_100k");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("mmap_store", |b| {
        b.iter(|| keep(MmapStore::open(&path).expect("open")).len())
    });
    group.bench_function("read_parse_hashmap", |b| {
        b.iter(|| keep(read_and_parse(&path)).len())
    });
    group.finish();
}

fn get(c: &mut Criterion) {
    let path = data_dir().join("open.fms");
    let store = MmapStore::open(&path).expect("open");
    let map = read_and_parse(&path);
    // A scattered walk over every id.
    let probes: Vec<Uuid> = (0..RECORDS).map(|i| id(i * 7919 % RECORDS)).collect();
    let mut group = c.benchmark_group("get_100k");
    group.throughput(Throughput::Elements(probes.len() as u64));
    group.bench_function("mmap_store", |b| {
        b.iter(|| {
            for p in &probes {
                let value = store.get(keep(p)).expect("no compressed records");
                keep(value.map(|v| v.len()));
            }
        })
    });
    group.bench_function("hashmap", |b| {
        b.iter(|| {
            for p in &probes {
                keep(map.get(keep(p)).map(Vec::len));
            }
        })
    });
    group.finish();
    drop(store);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(data_dir().join("open.fms.lock"));
}

fn append(c: &mut Criterion) {
    let dir = data_dir();
    let path = dir.join("append.fms");
    // The exact bytes the writer produces, for the raw baseline.
    write_store(&path);
    let bytes = std::fs::read(&path).expect("read");
    let mut group = c.benchmark_group("append_100k");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(if flowmem_benches::quick() {
        3
    } else {
        12
    }));
    group.throughput(Throughput::Elements(RECORDS));
    let payloads: Vec<Vec<u8>> = (0..RECORDS).map(payload).collect();
    group.bench_function("store_writer", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let _ = std::fs::remove_file(&path);
                let mut writer = StoreWriter::create(&path).expect("create");
                let start = Instant::now();
                for (i, p) in payloads.iter().enumerate() {
                    writer.append(&id(i as u64), p).expect("append");
                }
                writer.sync().expect("sync");
                total += start.elapsed();
            }
            total
        })
    });
    let raw = dir.join("append.raw");
    group.bench_function("write_all_fsync", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let _ = std::fs::remove_file(&raw);
                let mut file = File::create(&raw).expect("create");
                let start = Instant::now();
                file.write_all(&bytes).expect("write");
                file.sync_all().expect("fsync");
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
    for f in [path, raw, dir.join("append.fms.lock")] {
        let _ = std::fs::remove_file(f);
    }
}

/// Writes a store of one 32 MiB record of u64-like bytes (small integers, little-endian: most offsets
/// look like a plausible length), then copies it with the byte at `damage` (if any) flipped.
fn damaged_copy(source: &Path, path: &Path, damage: Option<usize>) {
    let mut bytes = std::fs::read(source).expect("read");
    if let Some(at) = damage {
        bytes[at] ^= 0x5a;
    }
    std::fs::write(path, bytes).expect("write");
}

fn open_damaged(c: &mut Criterion) {
    let dir = data_dir();
    let source = dir.join("big.fms");
    let _ = std::fs::remove_file(&source);
    let mut writer = StoreWriter::create(&source).expect("create");
    let payload: Vec<u8> = (0..(32u64 << 20) / 8)
        .flat_map(|i| (i % 5000).to_le_bytes())
        .collect();
    writer.append(&id(1), &payload).expect("append");
    writer.sync().expect("sync");
    drop(writer);
    // Offsets: the header is 16 bytes, the record's head 28.
    let files = [
        ("undamaged", None),
        ("damaged_payload", Some(16 + 28 + payload.len() / 2)),
        ("damaged_head", Some(16 + 20)),
    ];
    let mut group = c.benchmark_group("open_damaged_32mib");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    for (name, damage) in files {
        let path = dir.join(format!("big-{name}.fms"));
        damaged_copy(&source, &path, damage);
        let store = MmapStore::open(&path).expect("a damaged last record is a torn tail");
        assert_eq!(store.len(), usize::from(damage.is_none()), "{name}");
        drop(store);
        group.bench_function(name, |b| {
            b.iter(|| keep(MmapStore::open(&path).expect("open")).len())
        });
        let _ = std::fs::remove_file(&path);
    }
    group.finish();
    let _ = std::fs::remove_file(&source);
    let _ = std::fs::remove_file(dir.join("big.fms.lock"));
}

criterion_group! {
    name = benches;
    config = flowmem_benches::criterion();
    targets = open, get, append, open_damaged
}
criterion_main!(benches);
