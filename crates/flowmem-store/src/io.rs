//! Every write and sync of a store file goes through here: the one place where tests inject the disk's
//! own failures (a failed `write`, a full disk, a failed `fdatasync`), with failpoints of the `fail` crate
//! compiled in only with the feature `fault-injection`. Without it this is a plain `File`.

use std::{
    fs::File,
    io::{self, Write},
    sync::{Arc, OnceLock},
};

/// A store file being written, and the failure of its writer: the one place where a failed write or sync
/// fails the writer (shared with its sync handles), and where every write after that is refused, so that
/// nothing, not even a `BufWriter` flushing on drop, lands after pages the kernel may have dropped.
#[derive(Debug)]
pub(crate) struct FileOut {
    file: File,
    failed: Arc<OnceLock<String>>,
}

impl FileOut {
    /// `file`, with a failure of its own.
    pub(crate) fn new(file: File) -> Self {
        FileOut {
            file,
            failed: Arc::new(OnceLock::new()),
        }
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Why the writer failed, once it has.
    pub(crate) fn failure(&self) -> Option<&String> {
        self.failed.get()
    }

    /// Fails the writer for good (the first reason is kept).
    pub(crate) fn fail(&self, why: String) {
        let _ = self.failed.set(why);
    }

    /// Makes `other`'s failure this file's too (the file a compaction made, once it is the store's).
    pub(crate) fn share_failure(&mut self, other: &FileOut) {
        self.failed = Arc::clone(&other.failed);
    }

    /// A second handle to the file that shares its failure (a sync handle).
    pub(crate) fn try_clone(&self) -> io::Result<FileOut> {
        Ok(FileOut {
            file: self.file.try_clone()?,
            failed: Arc::clone(&self.failed),
        })
    }

    /// `fdatasync`; a failure fails the writer.
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        sync_data(&self.file).inspect_err(|e| self.fail(format!("fdatasync failed: {e}")))
    }

    /// `fsync`; a failure fails the writer.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        sync_all(&self.file).inspect_err(|e| self.fail(format!("fsync failed: {e}")))
    }
}

impl Write for FileOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(why) = self.failed.get() {
            return Err(io::Error::other(format!(
                "the writer failed earlier ({why}): no more writes"
            )));
        }
        #[cfg(feature = "fault-injection")]
        fail::fail_point!(crate::faults::WRITE, |arg| faults::write(
            &mut self.file,
            buf,
            arg
        )
        .inspect_err(|e| self.fail(e.to_string())));
        self.file
            .write(buf)
            .inspect_err(|e| self.fail(e.to_string()))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// `fdatasync` of a store file.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    sync_with(file, File::sync_data)
}

/// `fsync` of a store file (data and metadata: after a create or a recovery).
pub(crate) fn sync_all(file: &File) -> io::Result<()> {
    sync_with(file, File::sync_all)
}

fn sync_with(file: &File, sync: fn(&File) -> io::Result<()>) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    fail::fail_point!(crate::faults::SYNC, |arg| faults::sync(file, arg));
    sync(file)?;
    #[cfg(feature = "fault-injection")]
    faults::synced(file);
    Ok(())
}

/// What an injected fault does: the arguments of [`crate::faults`]' failpoints.
#[cfg(feature = "fault-injection")]
pub(crate) mod faults {
    use std::{
        collections::HashMap,
        fs::File,
        io::{self, Write},
        sync::{Mutex, PoisonError},
    };

    /// Faults injected so far (every failpoint hit that returned an error).
    pub(crate) static INJECTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// The length of each file (by device and inode) at its last successful sync: what a disk that lost
    /// its unsynced pages keeps.
    static SYNCED: Mutex<Option<HashMap<(u64, u64), u64>>> = Mutex::new(None);

    /// The file's identity (device, inode) and its length.
    fn key_and_len(file: &File) -> io::Result<((u64, u64), u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata()?;
        Ok(((m.dev(), m.ino()), m.len()))
    }

    pub(super) fn synced(file: &File) {
        if let Ok((k, len)) = key_and_len(file) {
            SYNCED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(HashMap::new)
                .insert(k, len);
        }
    }

    fn error(arg: Option<&str>) -> io::Error {
        match arg {
            Some(a) if a.contains("enospc") => io::Error::from_raw_os_error(28),
            _ => io::Error::from_raw_os_error(5), // EIO
        }
    }

    /// `eio` / `enospc`: nothing written, the error. `partial-eio` / `partial-enospc`: a short write, as a
    /// disk filling up gives: half of the bytes written and reported written, and from then on the
    /// failpoint fails every write with the error (a record cut in the middle).
    pub(super) fn write(file: &mut File, buf: &[u8], arg: Option<String>) -> io::Result<usize> {
        let arg = arg.as_deref();
        if let Some(rest) = arg.and_then(|a| a.strip_prefix("partial-"))
            && buf.len() > 1
        {
            let _ = fail::cfg(crate::faults::WRITE, &format!("return({rest})"));
            return file.write(&buf[..buf.len() / 2]);
        }
        INJECTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(error(arg))
    }

    /// `eio`: the sync fails, the pages stay (as a kernel that keeps them would); `eio-drop`: the sync
    /// fails and the file loses everything written since its last successful sync (as after a kernel
    /// dropped the dirty pages and the machine then went down).
    pub(super) fn sync(file: &File, arg: Option<String>) -> io::Result<()> {
        INJECTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let arg = arg.as_deref();
        if arg.is_some_and(|a| a.ends_with("drop")) {
            let (k, _) = key_and_len(file)?;
            let last = SYNCED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .and_then(|m| m.get(&k).copied())
                .unwrap_or(0);
            file.set_len(last)?;
        }
        Err(error(arg))
    }
}
