//! `StoreWriter`: the one appender of a store file.

use std::{
    fmt,
    fs::{File, OpenOptions},
    io::{BufWriter, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use uuid::Uuid;

use crate::{
    MmapStore, Result, StoreError, TornTail,
    format::{
        self, FLAG_TOMBSTONE, HEADER_LEN, Layout, MAX_PAYLOAD, RECORD_HEAD, RECORD_TAIL, ScanEnd,
    },
    io::{FileOut, sync_all},
    reader::map_file,
};

/// What [`StoreWriter::open`] does with damage it finds at the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recovery {
    /// Truncate a torn tail (an incomplete last record, after which no valid record follows); refuse to open
    /// a file with damage followed by valid records ([`StoreError::Corrupt`]). The default: nothing valid
    /// is ever thrown away.
    #[default]
    TornTailOnly,
    /// Truncate at the first damaged record, even if valid records follow it, discarding them. For a file
    /// whose unsynced tail was written out of order by a power loss (pages reach the disk in any order);
    /// the discarded byte count is reported by [`StoreWriter::recovered`].
    TruncateAtFirstDamage,
}

/// Options of a [`StoreWriter`].
#[derive(Debug, Clone, Default)]
pub struct WriterOptions {
    recovery: Recovery,
    #[cfg(feature = "zstd")]
    compression: Option<Compression>,
}

/// zstd compression of payloads (feature `zstd`).
#[cfg(feature = "zstd")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// zstd level (1 fast … 19 small; 3 is zstd's default).
    pub level: i32,
    /// Payloads shorter than this are stored as they are (compression rarely pays for small ones).
    pub min_len: usize,
}

impl WriterOptions {
    /// The defaults: [`Recovery::TornTailOnly`], no compression.
    pub fn new() -> Self {
        Self::default()
    }

    /// What to do with damage at the end of an existing file.
    pub fn recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = recovery;
        self
    }

    /// Compress payloads of at least `min_len` bytes with zstd at `level` (each record is flagged; a
    /// payload that does not shrink is stored as it is).
    ///
    /// ```
    /// # #[cfg(feature = "zstd")] {
    /// let options = flowmem_store::WriterOptions::new().compression(3, 512);
    /// # let _ = options; }
    /// ```
    #[cfg(feature = "zstd")]
    pub fn compression(mut self, level: i32, min_len: usize) -> Self {
        self.compression = Some(Compression { level, min_len });
        self
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CompactStats {
    /// Records in the file before (superseded ones and tombstones included).
    pub records_before: u64,
    /// Live records, all kept.
    pub live: usize,
    /// File bytes before.
    pub bytes_before: u64,
    /// File bytes after.
    pub bytes_after: u64,
}

/// Appends records to a store file: the file's only writer (an advisory lock on `<file>.lock` keeps a
/// second one out, in this process or another).
///
/// - [`append`](Self::append) and [`delete`](Self::delete) buffer records; [`flush`](Self::flush) makes
///   them visible to readers' [`refresh`](MmapStore::refresh); [`sync`](Self::sync) makes them durable
///   (`fdatasync`). A record acknowledged by `sync` survives a crash of the process or the machine.
/// - [`open`](Self::open) recovers a file whose last append was interrupted, by truncating the torn tail,
///   and says so ([`recovered`](Self::recovered)).
/// - [`compact`](Self::compact) rewrites the live records to a new file and renames it over the old one
///   atomically.
/// - If a write or a sync fails (a full disk, an I/O error; here or through a [`SyncHandle`]), the writer
///   refuses every later write and sync, and drops what it has buffered instead of writing it on drop: the
///   file may end in a partial record, or lack pages the kernel dropped, and nothing may land after them.
///   Open it again to recover the durable prefix (docs/store.md, "Disk faults").
///
/// ```
/// use flowmem_store::{MmapStore, StoreWriter, Uuid};
///
/// let dir = std::env::temp_dir().join(format!("flowmem-doc-writer-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("runs.fms");
/// # let _ = std::fs::remove_file(&path);
/// let mut writer = StoreWriter::open(&path)?; // creates it
/// writer.append(&Uuid::from_u128(1), b"node a: done")?;
/// writer.append(&Uuid::from_u128(2), b"node b: done")?;
/// writer.delete(&Uuid::from_u128(1))?;
/// writer.sync()?;
/// assert!(StoreWriter::open(&path).is_err(), "one writer per file");
///
/// let store = MmapStore::open(&path)?;
/// assert_eq!(store.len(), 1);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StoreWriter {
    path: PathBuf,
    lock_path: PathBuf,
    /// Holds the exclusive lock on `lock_path` for the writer's life.
    _lock: File,
    out: BufWriter<FileOut>,
    /// Bytes of the file once the buffer is written: the offset of the next record.
    end: u64,
    recovered: Option<TornTail>,
    options: WriterOptions,
}

const BUFFER: usize = 256 * 1024;

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn compact_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".compact-tmp");
    PathBuf::from(name)
}

/// Makes the directory entry of `path` durable (after a create or a rename).
fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Takes the writer lock of `path`.
fn lock_writer(path: &Path) -> Result<(File, PathBuf)> {
    let lock = lock_path(path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| StoreError::io(&lock, e))?;
    match file.try_lock() {
        Ok(()) => Ok((file, lock)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_path_buf(),
            lock,
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(&lock, e)),
    }
}

impl StoreWriter {
    /// Creates a new, empty store file (the header, synced, and its directory entry synced).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if the file exists, [`StoreError::Locked`] if a writer holds it, or an
    /// I/O error.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        Self::create_with(path, WriterOptions::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(path: impl AsRef<Path>, options: WriterOptions) -> Result<Self> {
        let path = path.as_ref();
        let (lock, lock_path) = lock_writer(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => StoreError::AlreadyExists {
                    path: path.to_path_buf(),
                },
                _ => StoreError::io(path, e),
            })?;
        Self::start_new(path, file, lock, lock_path, options)
    }

    fn start_new(
        path: &Path,
        file: File,
        lock: File,
        lock_path: PathBuf,
        options: WriterOptions,
    ) -> Result<Self> {
        let mut out = FileOut::new(file);
        out.write_all(&format::header())
            .and_then(|()| out.sync_all())
            .map_err(|e| StoreError::io(path, e))?;
        sync_dir(path)?;
        Ok(Self::new(
            path, out, lock, lock_path, HEADER_LEN, None, options,
        ))
    }

    fn new(
        path: &Path,
        out: FileOut,
        lock: File,
        lock_path: PathBuf,
        end: u64,
        recovered: Option<TornTail>,
        options: WriterOptions,
    ) -> Self {
        StoreWriter {
            path: path.to_path_buf(),
            lock_path,
            _lock: lock,
            out: BufWriter::with_capacity(BUFFER, out),
            end,
            recovered,
            options,
        }
    }

    /// Opens a store file for appending, creating it if it does not exist. An existing file is validated;
    /// a torn tail (an interrupted append) is truncated, synced and reported by
    /// [`recovered`](Self::recovered).
    ///
    /// # Errors
    /// [`StoreError::Locked`] if another writer holds the file; the header errors of
    /// [`MmapStore::open`]; [`StoreError::Corrupt`] for damage followed by valid records (unless
    /// [`Recovery::TruncateAtFirstDamage`]); I/O errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, WriterOptions::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, options: WriterOptions) -> Result<Self> {
        let path = path.as_ref();
        let (lock, lock_path) = lock_writer(path)?;
        // A compaction that crashed before its rename left this; the store file is intact.
        let stale = compact_path(path);
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| StoreError::io(&stale, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::io(path, e))?;
        let len = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
        if len < HEADER_LEN {
            // Empty, or a header cut short by a crash during creation: start the file again. Anything else
            // this short is not a store (the header check below names it).
            let mut start = vec![0u8; len as usize];
            std::io::Read::read_exact(&mut file, &mut start)
                .map_err(|e| StoreError::io(path, e))?;
            if format::header().starts_with(&start) {
                file.set_len(0)
                    .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
                    .map_err(|e| StoreError::io(path, e))?;
                return Self::start_new(path, file, lock, lock_path, options);
            }
            return Err(StoreError::header(
                path,
                format::check_header(&start).expect_err("shorter than a header"),
            ));
        }
        // Exclusive on the data file while checking and truncating: readers scanning past the last whole
        // record hold it shared, so they never read bytes being cut off.
        file.lock().map_err(|e| StoreError::io(path, e))?;
        let outcome = Self::recover(path, &file, options.recovery);
        let _ = file.unlock();
        let (end, recovered) = outcome?;
        file.seek(SeekFrom::Start(end))
            .map_err(|e| StoreError::io(path, e))?;
        Ok(Self::new(
            path,
            FileOut::new(file),
            lock,
            lock_path,
            end,
            recovered,
            options,
        ))
    }

    /// Validates the file and truncates what `recovery` allows: the end of the valid records, and what was cut.
    fn recover(path: &Path, file: &File, recovery: Recovery) -> Result<(u64, Option<TornTail>)> {
        let map = map_file(file, path)?;
        format::check_header(&map).map_err(|p| StoreError::header(path, p))?;
        let cut = match format::scan(&map, HEADER_LEN, Layout::Checked, |_| {}) {
            ScanEnd::Clean => return Ok((map.len() as u64, None)),
            ScanEnd::TornTail { offset, damage } => TornTail {
                offset,
                bytes: map.len() as u64 - offset,
                damage,
            },
            ScanEnd::Corrupt {
                offset,
                damage,
                next_valid,
            } => match recovery {
                Recovery::TornTailOnly => {
                    return Err(StoreError::Corrupt {
                        path: path.to_path_buf(),
                        offset,
                        damage,
                        next_valid,
                    });
                }
                Recovery::TruncateAtFirstDamage => TornTail {
                    offset,
                    bytes: map.len() as u64 - offset,
                    damage,
                },
            },
        };
        drop(map);
        file.set_len(cut.offset)
            .and_then(|()| sync_all(file))
            .map_err(|e| StoreError::io(path, e))?;
        Ok((cut.offset, Some(cut)))
    }

    /// What [`open`](Self::open) truncated, if it found an interrupted append.
    pub fn recovered(&self) -> Option<&TornTail> {
        self.recovered.as_ref()
    }

    fn check_usable(&self) -> Result<()> {
        match self.out.get_ref().failure() {
            None => Ok(()),
            Some(why) => Err(StoreError::io(
                &self.path,
                std::io::Error::other(format!(
                    "an earlier write failed ({why}); the file may end in a partial record: open the store \
                     again to recover it"
                )),
            )),
        }
    }

    /// Appends `payload` under `id` (buffered; see [`flush`](Self::flush) and [`sync`](Self::sync)).
    ///
    /// # Errors
    /// [`StoreError::PayloadTooLarge`] past 2^56 - 1 bytes, or an I/O error.
    pub fn append(&mut self, id: &Uuid, payload: &[u8]) -> Result<()> {
        self.check_usable()?;
        if payload.len() as u64 > MAX_PAYLOAD {
            return Err(StoreError::PayloadTooLarge {
                path: self.path.clone(),
                len: payload.len() as u64,
                max: MAX_PAYLOAD,
            });
        }
        #[cfg(feature = "zstd")]
        if let Some(c) = self.options.compression
            && payload.len() >= c.min_len
        {
            let compressed = crate::compression::compress(payload, c.level)
                .map_err(|e| StoreError::io(&self.path, e))?;
            if let Some(stored) = compressed {
                return self.write_record(id, &stored, format::FLAG_ZSTD);
            }
        }
        self.write_record(id, payload, 0)
    }

    /// Appends a tombstone for `id`: readers no longer see it (until it is appended again).
    pub fn delete(&mut self, id: &Uuid) -> Result<()> {
        self.check_usable()?;
        self.write_record(id, &[], FLAG_TOMBSTONE)
    }

    fn write_record(&mut self, id: &Uuid, stored: &[u8], flags: u8) -> Result<()> {
        let (head, crc) = format::record_head(id, stored.len() as u64, flags);
        let crc = crc32c::crc32c_append(crc, stored);
        let written = self
            .out
            .write_all(&head)
            .and_then(|()| self.out.write_all(stored))
            .and_then(|()| self.out.write_all(&crc.to_le_bytes()));
        // A failed write has failed the writer (`FileOut`).
        written.map_err(|e| StoreError::io(&self.path, e))?;
        self.end += RECORD_HEAD + stored.len() as u64 + RECORD_TAIL;
        Ok(())
    }

    /// Writes the buffered records to the file: readers see them on their next refresh. Not durable.
    pub fn flush(&mut self) -> Result<()> {
        self.check_usable()?;
        self.out.flush().map_err(|e| StoreError::io(&self.path, e))
    }

    /// Writes the buffered records and makes every record appended so far durable (`fdatasync`). When it
    /// returns `Ok`, those records survive a crash.
    ///
    /// # Errors
    /// An I/O error. After a failed `fdatasync` the kernel may have dropped the dirty pages, so nothing
    /// since the last successful sync is known to be on disk: the writer refuses every later write and
    /// sync, and the store must be opened again (which recovers the durable prefix).
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| StoreError::io(&self.path, e))
    }

    /// Rewrites the live records (the last of each id, no tombstones) into a new file and renames it over
    /// this one: written to `<file>.compact-tmp`, synced, renamed, directory synced. A crash at any point
    /// leaves either the old file or the new one, both complete. Readers that have the old file open keep
    /// reading it; their [`refresh`](MmapStore::refresh) switches to the new one.
    pub fn compact(&mut self) -> Result<CompactStats> {
        self.flush()?;
        let source = MmapStore::open(&self.path)?;
        let before = source.stats();
        let tmp = compact_path(&self.path);
        // Until the rename, a failure leaves this writer on the old file, whole: it goes on appending.
        let written = Self::write_compacted(&source, &tmp);
        let (mut file, bytes_after) = match written {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = std::fs::rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(StoreError::io(&self.path, e));
        }
        // From the rename on, the path names the new file: append there, whatever happens next.
        file.share_failure(self.out.get_ref());
        let old = std::mem::replace(&mut self.out, BufWriter::with_capacity(BUFFER, file));
        drop(old);
        self.end = bytes_after;
        if let Err(e) = sync_dir(&self.path) {
            // The rename may not survive a crash: records appended to the new file could then be lost
            // with it. No more writes; opening the store again settles which file it is.
            self.out.get_ref().fail(format!(
                "the directory sync after a compaction failed ({e})"
            ));
            return Err(e);
        }
        Ok(CompactStats {
            records_before: before.records,
            live: before.live,
            bytes_before: before.valid_bytes,
            bytes_after,
        })
    }

    /// Writes the live records of `source` to a new file at `tmp`, synced: the file, positioned at its end,
    /// and its length.
    fn write_compacted(source: &MmapStore, tmp: &Path) -> Result<(FileOut, u64)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)
            .map_err(|e| StoreError::io(tmp, e))?;
        let mut out = BufWriter::with_capacity(BUFFER, FileOut::new(file));
        let mut bytes_after = HEADER_LEN;
        let written = out.write_all(&format::header()).and_then(|()| {
            for record in source.iter() {
                let whole = source.whole_record(&record);
                out.write_all(whole)?;
                bytes_after += whole.len() as u64;
            }
            out.flush()?;
            out.get_ref().sync_all()
        });
        written.map_err(|e| StoreError::io(tmp, e))?;
        let file = out
            .into_inner()
            .map_err(|e| StoreError::io(tmp, e.into_error()))?;
        file.file()
            .seek(SeekFrom::End(0))
            .map_err(|e| StoreError::io(tmp, e))?;
        Ok((file, bytes_after))
    }

    /// A second handle to the file, to make records durable without holding the writer: `sync_data` on
    /// it makes durable every record [`flush`](Self::flush)ed before the call, while this writer goes on
    /// appending (group commit: one `fdatasync` for every record flushed since the last one). Take a new
    /// handle after [`compact`](Self::compact), which replaces the file.
    ///
    /// # Errors
    /// An I/O error duplicating the handle.
    pub fn sync_handle(&self) -> Result<SyncHandle> {
        let out = self
            .out
            .get_ref()
            .try_clone()
            .map_err(|e| StoreError::io(&self.path, e))?;
        Ok(SyncHandle {
            out,
            path: self.path.clone(),
        })
    }

    /// The file this writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size the file has once buffered records are written: the offset of the next record.
    pub fn end(&self) -> u64 {
        self.end
    }
}

/// A handle that makes a store's flushed records durable apart from its writer: see
/// [`StoreWriter::sync_handle`].
#[derive(Debug)]
pub struct SyncHandle {
    /// The file, sharing the writer's failure: a failed sync here fails the writer too.
    out: FileOut,
    path: PathBuf,
}

impl SyncHandle {
    /// `fdatasync`: every record flushed before the call is durable when it returns `Ok`.
    ///
    /// # Errors
    /// An I/O error, naming the file. After one, nothing flushed since the last successful sync is known
    /// to be on disk: stop acknowledging records, and open the store again to recover.
    /// The writer then refuses every write, and drops what it has buffered rather than write it.
    pub fn sync(&self) -> Result<()> {
        self.out
            .sync_data()
            .map_err(|e| StoreError::io(&self.path, e))
    }
}

impl fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreWriter")
            .field("path", &self.path)
            .field("lock", &self.lock_path)
            .field("end", &self.end)
            .field("recovered", &self.recovered)
            .field("failed", &self.out.get_ref().failure())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}
