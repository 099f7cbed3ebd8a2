//! `StoreCache`: open stores shared by path.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use flowmem_map::ConcurrentMap;

use crate::{MmapStore, Result, StoreError};

/// Open [`MmapStore`]s by path, shared as `Arc`s (on a [`ConcurrentMap`]): the first
/// [`get_or_open`](Self::get_or_open) of a path opens and indexes it, later ones share that store.
///
/// A cached store is a snapshot; [`refresh`](Self::refresh) replaces it with one that sees what was appended
/// since (holders of the old `Arc` keep their view). Paths are canonicalised, so `./a.fms` and `a.fms` are one
/// entry.
///
/// ```
/// use std::sync::Arc;
///
/// use flowmem_store::{StoreCache, StoreWriter, Uuid};
///
/// let dir = std::env::temp_dir().join(format!("flowmem-doc-cache-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("specs.fms");
/// # let _ = std::fs::remove_file(&path);
/// let mut writer = StoreWriter::create(&path)?;
/// writer.append(&Uuid::from_u128(1), b"spec")?;
/// writer.flush()?;
///
/// let cache = StoreCache::new();
/// let a = cache.get_or_open(&path)?;
/// let b = cache.get_or_open(&path)?;
/// assert!(Arc::ptr_eq(&a, &b));
///
/// writer.append(&Uuid::from_u128(2), b"another")?;
/// writer.flush()?;
/// assert_eq!(cache.refresh(&path)?.len(), 2);
/// assert_eq!(a.len(), 1); // the old snapshot is unchanged
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct StoreCache {
    stores: ConcurrentMap<PathBuf, Arc<MmapStore>>,
}

impl StoreCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(path: &Path) -> Result<PathBuf> {
        std::fs::canonicalize(path).map_err(|e| StoreError::io(path, e))
    }

    /// The store at `path`, opened on first use. If two threads open one path at once, both open it and one
    /// store is kept.
    pub fn get_or_open(&self, path: impl AsRef<Path>) -> Result<Arc<MmapStore>> {
        let key = Self::key(path.as_ref())?;
        if let Some(store) = self.stores.get(&key) {
            return Ok(store);
        }
        let store = Arc::new(MmapStore::open(&key)?);
        Ok(self.stores.get_or_insert_with(key, || store))
    }

    /// Replaces the cached store of `path` with a fresh open of the file (or opens it if not cached), and
    /// returns it.
    pub fn refresh(&self, path: impl AsRef<Path>) -> Result<Arc<MmapStore>> {
        let key = Self::key(path.as_ref())?;
        let store = Arc::new(MmapStore::open(&key)?);
        self.stores.insert(key, Arc::clone(&store));
        Ok(store)
    }

    /// Drops the cache's store of `path` (holders keep theirs); whether it was cached.
    pub fn remove(&self, path: impl AsRef<Path>) -> bool {
        Self::key(path.as_ref()).is_ok_and(|key| self.stores.remove(&key).is_some())
    }

    /// The number of cached stores.
    pub fn len(&self) -> usize {
        self.stores.len()
    }

    /// Whether no store is cached.
    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }

    /// Drops every cached store.
    pub fn clear(&self) {
        self.stores.clear();
    }
}

impl fmt::Debug for StoreCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCache")
            .field("stores", &self.stores.len())
            .finish()
    }
}
