//! `MmapStore`: a validated, indexed, zero-copy view of a store file.

use std::{
    borrow::Cow,
    collections::HashMap,
    fmt,
    fs::File,
    path::{Path, PathBuf},
};

use memmap2::Mmap;
use uuid::Uuid;

use crate::{
    Result, StoreError,
    compression::decompress,
    format::{self, Damage, Found, HEADER_LEN, Layout, ScanEnd},
};

type Index = HashMap<Uuid, Entry, foldhash::fast::RandomState>;

/// Where a live record's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Offset of the record (for errors and order).
    offset: u64,
    /// Offset of the payload.
    payload: u64,
    /// Stored payload length.
    len: u64,
    compressed: bool,
}

/// The bytes after the last whole record that are not a whole record: an append that was interrupted (a
/// crash) or is still in progress (a live writer). Reported, not an error; `StoreWriter::open` truncates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Offset of the incomplete record (the end of the last whole record).
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes: u64,
    /// What is wrong with them.
    pub damage: Damage,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes of an incomplete record at offset {} ({})",
            self.bytes, self.offset, self.damage
        )
    }
}

/// A record as stored: its id and its payload bytes in the file, zero-copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's id.
    pub id: Uuid,
    /// The payload as stored (compressed if `compressed`).
    pub bytes: &'a [u8],
    /// Whether `bytes` is a zstd-compressed payload (see [`MmapStore::get`] for the plain bytes).
    pub compressed: bool,
    /// The record's offset in the file.
    pub offset: u64,
}

/// Counts of an open store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StoreStats {
    /// Live records (ids with a value).
    pub live: usize,
    /// Records in the file, superseded ones and tombstones included.
    pub records: u64,
    /// Bytes of the file covered by whole records (and the header).
    pub valid_bytes: u64,
    /// Bytes of the live records' stored payloads.
    pub live_payload_bytes: u64,
}

/// A read-only, memory-mapped view of a store file with an id index: open validates every record
/// (checksums included) and indexes the live ones; [`get`](Self::get) is a hash lookup and a slice of the
/// map, no copy and no system call.
///
/// - The last record of an id wins; a tombstone removes the id.
/// - An incomplete last record (a crash mid-append, or a writer appending right now) is not an error: the
///   store serves every whole record before it and reports the rest in [`torn_tail`](Self::torn_tail).
///   Damage *followed by valid records* is an error, naming the offset.
/// - [`refresh`](Self::refresh) picks up records appended since; a compacted (replaced) file is reopened.
/// - `Send + Sync`: share it by reference or in an `Arc` ([`StoreCache`](crate::StoreCache) does).
///
/// ```
/// use flowmem_store::{MmapStore, StoreWriter, Uuid};
///
/// let dir = std::env::temp_dir().join(format!("flowmem-doc-reader-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("specs.fms");
/// # let _ = std::fs::remove_file(&path);
/// let mut writer = StoreWriter::create(&path)?;
/// let id = Uuid::from_u128(1);
/// writer.append(&id, b"first")?;
/// writer.append(&id, b"second")?; // the last write wins
/// writer.sync()?;
///
/// let store = MmapStore::open(&path)?;
/// assert_eq!(store.get(&id)?.as_deref(), Some(&b"second"[..]));
/// assert_eq!(store.len(), 1);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MmapStore {
    path: PathBuf,
    file: File,
    layout: Layout,
    /// The mapping of the whole file as of the last open or refresh (`None` for an empty bare file).
    map: Option<Mmap>,
    index: Index,
    /// End of the last whole record.
    valid_end: u64,
    records: u64,
    torn: Option<TornTail>,
    identity: Identity,
}

/// Which file a path named when it was opened (so a refresh can see a compaction's rename).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
}

fn identity(meta: &std::fs::Metadata) -> Identity {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Identity { dev: 0, ino: 0 }
    }
}

/// Maps `file` read-only.
///
/// Why it is sound: `Mmap::map` requires that the mapped bytes do not change while slices into them
/// exist. Writers of this crate only ever append past the end of the file. The one place a file shrinks
/// is `StoreWriter::open` truncating a torn tail, which holds an exclusive lock on the data file; every
/// scan that reads bytes past the last whole record (open, refresh) holds a shared lock on it, and slices
/// handed out (`get`, `record`, `iter`) only cover whole records, which are never truncated. Compaction
/// writes a new file and renames it over the path, leaving mapped files untouched. Another program that
/// truncates or rewrites the file breaks this contract (documented in docs/store.md).
#[allow(
    unsafe_code,
    reason = "memory-mapping a file is unsafe; the store's write discipline makes it sound"
)]
pub(crate) fn map_file(file: &File, path: &Path) -> Result<Mmap> {
    // SAFETY: no bytes of whole records change or go while mapped (the function's comment says how).
    unsafe { Mmap::map(file) }.map_err(|e| StoreError::io(path, e))
}

/// Holds a shared lock on the data file while a scan reads bytes a recovering writer might truncate.
struct SharedLock<'a>(&'a File);

impl<'a> SharedLock<'a> {
    fn new(file: &'a File, path: &Path) -> Result<Self> {
        file.lock_shared().map_err(|e| StoreError::io(path, e))?;
        Ok(SharedLock(file))
    }
}

impl Drop for SharedLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl MmapStore {
    /// Opens a store file of this crate's format: checks the header, validates every record, builds the
    /// index.
    ///
    /// # Errors
    /// [`StoreError::Empty`], [`TruncatedHeader`](StoreError::TruncatedHeader),
    /// [`BadMagic`](StoreError::BadMagic), [`UnknownVersion`](StoreError::UnknownVersion),
    /// [`Corrupt`](StoreError::Corrupt) (a damaged record with valid ones after it), or an I/O error; each
    /// names the file (and the offset).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_layout(path.as_ref(), Layout::Checked)
    }

    /// Opens a file of the bare layout (records of id, u64 LE length and payload; no header, no checksums):
    /// any record that does not fit is an error ([`StoreError::BareDamaged`]).
    pub fn open_bare(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_layout(path.as_ref(), Layout::Bare)
    }

    fn open_layout(path: &Path, layout: Layout) -> Result<Self> {
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let meta = file.metadata().map_err(|e| StoreError::io(path, e))?;
        let mut store = MmapStore {
            path: path.to_path_buf(),
            file,
            layout,
            map: None,
            index: Index::default(),
            valid_end: 0,
            records: 0,
            torn: None,
            identity: identity(&meta),
        };
        store.scan_new()?;
        Ok(store)
    }

    /// Maps the file anew and indexes the records from `valid_end` on. Leaves `self` unchanged on error.
    fn scan_new(&mut self) -> Result<usize> {
        let lock = SharedLock::new(&self.file, &self.path)?;
        let len = self
            .file
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?
            .len();
        let map = if len == 0 {
            None
        } else {
            Some(map_file(&self.file, &self.path)?)
        };
        let bytes: &[u8] = map.as_deref().unwrap_or(&[]);
        let mut start = self.valid_end;
        if self.layout == Layout::Checked && start == 0 {
            format::check_header(bytes).map_err(|p| StoreError::header(&self.path, p))?;
            start = HEADER_LEN;
        }
        // The mapping covers the file as it was when mapped, which may be longer than `len` (a writer
        // appending meanwhile): the scan, and every offset below, go by the mapping.
        let len = bytes.len() as u64;
        let mut found: Vec<Found> = Vec::new();
        let end = format::scan(bytes, start, self.layout, |f| found.push(f));
        drop(lock);
        let (valid_end, torn) = match end {
            ScanEnd::Clean => (len, None),
            ScanEnd::TornTail { offset, damage } => (
                offset,
                Some(TornTail {
                    offset,
                    bytes: len - offset,
                    damage,
                }),
            ),
            ScanEnd::Corrupt {
                offset,
                damage,
                next_valid,
            } => {
                return Err(match self.layout {
                    Layout::Checked => StoreError::Corrupt {
                        path: self.path.clone(),
                        offset,
                        damage,
                        next_valid,
                    },
                    Layout::Bare => StoreError::BareDamaged {
                        path: self.path.clone(),
                        offset,
                        damage,
                    },
                });
            }
        };
        let new = found.len();
        self.index.reserve(new);
        for f in found {
            if f.is_tombstone() {
                self.index.remove(&f.id);
            } else {
                self.index.insert(
                    f.id,
                    Entry {
                        offset: f.offset,
                        payload: f.payload,
                        len: f.len,
                        compressed: f.is_compressed(),
                    },
                );
            }
        }
        self.records += new as u64;
        self.map = map;
        self.valid_end = valid_end.max(if self.layout == Layout::Checked {
            HEADER_LEN
        } else {
            0
        });
        self.torn = torn;
        Ok(new)
    }

    /// Sees the records appended since the store was opened (or last refreshed), returning how many were
    /// added. If the path now names another file (a compaction renamed a new one over it), or the file
    /// shrank, the store is opened anew. On error the store is unchanged and still serves what it had.
    pub fn refresh(&mut self) -> Result<usize> {
        let meta = std::fs::metadata(&self.path).map_err(|e| StoreError::io(&self.path, e))?;
        let mapped = self.map.as_ref().map_or(0, |m| m.len() as u64);
        if identity(&meta) != self.identity || meta.len() < self.valid_end {
            let fresh = Self::open_layout(&self.path, self.layout)?;
            let records = fresh.records as usize;
            *self = fresh;
            return Ok(records);
        }
        if meta.len() == mapped && self.torn.is_none() {
            return Ok(0);
        }
        self.scan_new()
    }

    /// The payload of `id`'s live record: borrowed from the map, or (for a compressed record) decompressed
    /// into an owned buffer. `Ok(None)` if the id has no live record.
    ///
    /// # Errors
    /// Only for compressed records: [`StoreError::CompressionUnsupported`] in a build without the `zstd`
    /// feature, [`StoreError::Decompress`] if the stored frame is bad.
    #[inline]
    pub fn get(&self, id: &Uuid) -> Result<Option<Cow<'_, [u8]>>> {
        let Some(entry) = self.index.get(id) else {
            return Ok(None);
        };
        let bytes = self.slice(entry);
        if entry.compressed {
            decompress(bytes, &self.path, entry.offset).map(|v| Some(Cow::Owned(v)))
        } else {
            Ok(Some(Cow::Borrowed(bytes)))
        }
    }

    /// The payload of `id`'s live record as text: borrowed from the map (or decompressed, for a
    /// compressed record). `Ok(None)` if the id has no live record.
    ///
    /// ```
    /// use flowmem_store::{MmapStore, StoreWriter, Uuid};
    ///
    /// let dir = std::env::temp_dir().join(format!("flowmem-get-str-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("specs.fms");
    /// let mut w = StoreWriter::create(&path)?;
    /// w.append(&Uuid::from_u128(1), "{\"name\": \"etl\"}".as_bytes())?;
    /// w.append(&Uuid::from_u128(2), &[0xff, 0xfe])?;
    /// w.sync()?;
    /// let store = MmapStore::open(&path)?;
    /// assert_eq!(store.get_str(&Uuid::from_u128(1))?.as_deref(), Some("{\"name\": \"etl\"}"));
    /// let e = store.get_str(&Uuid::from_u128(2)).unwrap_err();
    /// assert!(e.to_string().contains("is not UTF-8"));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotUtf8`] naming the record, its offset and where the text stops being UTF-8; the
    /// errors of [`get`](Self::get).
    pub fn get_str(&self, id: &Uuid) -> Result<Option<Cow<'_, str>>> {
        let Some(bytes) = self.get(id)? else {
            return Ok(None);
        };
        let not_utf8 = |source| StoreError::NotUtf8 {
            path: self.path.clone(),
            id: *id,
            offset: self.index.get(id).map_or(0, |e| e.offset),
            source,
        };
        match bytes {
            Cow::Borrowed(b) => std::str::from_utf8(b).map(|s| Some(Cow::Borrowed(s))),
            Cow::Owned(v) => String::from_utf8(v)
                .map(|s| Some(Cow::Owned(s)))
                .map_err(|e| e.utf8_error()),
        }
        .map_err(not_utf8)
    }

    /// `id`'s live record as stored (zero-copy, also when compressed).
    pub fn record(&self, id: &Uuid) -> Option<Record<'_>> {
        self.index.get(id).map(|e| self.record_of(*id, e))
    }

    fn record_of(&self, id: Uuid, entry: &Entry) -> Record<'_> {
        Record {
            id,
            bytes: self.slice(entry),
            compressed: entry.compressed,
            offset: entry.offset,
        }
    }

    #[inline]
    fn slice(&self, entry: &Entry) -> &[u8] {
        let bytes: &[u8] = self.map.as_deref().unwrap_or(&[]);
        // In bounds: the scan checked payload + len against the mapped length.
        &bytes[entry.payload as usize..(entry.payload + entry.len) as usize]
    }

    /// The whole stored record (head, payload, checksum) a [`Record`] of this store came from.
    pub(crate) fn whole_record(&self, record: &Record<'_>) -> &[u8] {
        let bytes: &[u8] = self.map.as_deref().unwrap_or(&[]);
        let end = record.offset
            + format::head_len(self.layout)
            + record.bytes.len() as u64
            + format::tail_len(self.layout);
        &bytes[record.offset as usize..end as usize]
    }

    /// Whether `id` has a live record.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.index.contains_key(id)
    }

    /// The number of live records.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is no live record.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The ids of the live records, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = &Uuid> + '_ {
        self.index.keys()
    }

    /// The live records as stored, in file order.
    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> + '_ {
        let mut entries: Vec<(&Uuid, &Entry)> = self.index.iter().collect();
        entries.sort_unstable_by_key(|(_, e)| e.offset);
        entries.into_iter().map(|(id, e)| self.record_of(*id, e))
    }

    /// The incomplete last record, if the file ends with one.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }

    /// The file this store reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Counts of the store.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            live: self.index.len(),
            records: self.records,
            valid_bytes: self.valid_end,
            live_payload_bytes: self.index.values().map(|e| e.len).sum(),
        }
    }
}

impl fmt::Debug for MmapStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapStore")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("live", &self.index.len())
            .field("valid_end", &self.valid_end)
            .field("torn_tail", &self.torn)
            .finish_non_exhaustive()
    }
}
