//! Every write and sync of a store file goes through here: the one place where tests inject the disk's
//! own failures (a failed `write`, a full disk, a failed `fdatasync`), with failpoints of the `fail` crate
//! compiled in only with the feature `fault-injection`. Without it this is a plain `File`.

use std::{
    fs::File,
    io::{self, Write},
};

/// A store file being written: `Write` with the write failpoint in front.
#[derive(Debug)]
pub(crate) struct FileOut(pub(crate) File);

impl FileOut {
    pub(crate) fn file(&self) -> &File {
        &self.0
    }
}

impl Write for FileOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "fault-injection")]
        fail::fail_point!(crate::faults::WRITE, |arg| faults::write(
            &mut self.0,
            buf,
            arg
        ));
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `fdatasync` of a store file.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    fail::fail_point!(crate::faults::SYNC, |arg| faults::sync(file, arg));
    file.sync_data()?;
    #[cfg(feature = "fault-injection")]
    faults::synced(file);
    Ok(())
}

/// `fsync` of a store file (data and metadata: after a create or a compaction).
pub(crate) fn sync_all(file: &File) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    fail::fail_point!(crate::faults::SYNC, |arg| faults::sync(file, arg));
    file.sync_all()?;
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

    fn key(file: &File) -> io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata()?;
        Ok((m.dev(), m.ino()))
    }

    pub(super) fn synced(file: &File) {
        if let (Ok(k), Ok(m)) = (key(file), file.metadata()) {
            SYNCED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(HashMap::new)
                .insert(k, m.len());
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
            let k = key(file)?;
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
