//! The store's one error type: every variant names the file, and the byte offset where there is one.

use std::{io, path::PathBuf};

use crate::format::{Damage, HeaderProblem};

/// An error of the record store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An operating-system error on the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file has no bytes at all (not even a header).
    #[error("{}: empty file (a store starts with a 16-byte header)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file is shorter than its header.
    #[error("{}: truncated header: the file has {len} bytes, the header 16", path.display())]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// The file's length.
        len: u64,
    },
    /// The file does not start with the store's magic bytes.
    #[error("{}: bad magic at offset 0: not a flowmem store (expected \"FLOWMEMS\")", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The header names a format version this build does not read.
    #[error(
        "{}: unknown format version {version} at offset 8 (this build reads version 2; version 1, of flowmem \
         before its head checksums, is not read: copy its records into a new store with the build that wrote it)",
        path.display()
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The header has flag bits this build does not know.
    #[error("{}: unknown header flags {flags:#x} at offset 12", path.display())]
    UnknownHeaderFlags {
        /// The file.
        path: PathBuf,
        /// The flags found.
        flags: u32,
    },
    /// A damaged record in the middle of the file (valid records follow it, so it is not a torn tail).
    #[error(
        "{}: record at offset {offset}: {damage} (a valid record follows at offset {next_valid}, so this is \
         damage, not an interrupted append)",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The damaged record's offset.
        offset: u64,
        /// What is wrong.
        damage: Damage,
        /// The offset of the next valid record.
        next_valid: u64,
    },
    /// A damaged record in a bare-layout file (which has no checksums to tell a torn tail by).
    #[error("{}: record at offset {offset}: {damage}", path.display())]
    BareDamaged {
        /// The file.
        path: PathBuf,
        /// The damaged record's offset.
        offset: u64,
        /// What is wrong.
        damage: Damage,
    },
    /// Another `StoreWriter` holds the file.
    #[error(
        "{}: locked by another writer (the lock file {} is held); one writer per store",
        path.display(),
        lock.display()
    )]
    Locked {
        /// The store file.
        path: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// `StoreWriter::create` found the file already there.
    #[error("{}: already exists (use StoreWriter::open to append to it)", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// A payload larger than a record can hold.
    #[error("{}: a payload of {len} bytes is larger than a record holds ({max} bytes)", path.display())]
    PayloadTooLarge {
        /// The file.
        path: PathBuf,
        /// The payload's length.
        len: u64,
        /// The largest payload.
        max: u64,
    },
    /// A compressed record read by a build without the `zstd` feature.
    #[error(
        "{}: record at offset {offset} is zstd-compressed and this build has no `zstd` feature",
        path.display()
    )]
    CompressionUnsupported {
        /// The file.
        path: PathBuf,
        /// The record's offset.
        offset: u64,
    },
    /// A compressed record that does not decompress to what it claims.
    #[error("{}: record at offset {offset}: cannot decompress: {reason}", path.display())]
    Decompress {
        /// The file.
        path: PathBuf,
        /// The record's offset.
        offset: u64,
        /// Why.
        reason: String,
    },
    /// A record read as text ([`MmapStore::get_str`](crate::MmapStore::get_str)) that is not UTF-8.
    #[error(
        "{}: record {id} at offset {offset} is not UTF-8 text: {source}",
        path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The record's id.
        id: uuid::Uuid,
        /// The record's offset.
        offset: u64,
        /// Where the text stops being UTF-8.
        #[source]
        source: std::str::Utf8Error,
    },
}

impl StoreError {
    /// An I/O error on the file at `path` (for code that works on a store's file beside it).
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn header(path: impl Into<PathBuf>, problem: HeaderProblem) -> Self {
        let path = path.into();
        match problem {
            HeaderProblem::Empty => StoreError::Empty { path },
            HeaderProblem::Truncated { len } => StoreError::TruncatedHeader { path, len },
            HeaderProblem::BadMagic => StoreError::BadMagic { path },
            HeaderProblem::UnknownVersion { version } => {
                StoreError::UnknownVersion { path, version }
            }
            HeaderProblem::UnknownFlags { flags } => StoreError::UnknownHeaderFlags { path, flags },
        }
    }

    /// The byte offset the error is about, when it is about one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            StoreError::Corrupt { offset, .. }
            | StoreError::BareDamaged { offset, .. }
            | StoreError::CompressionUnsupported { offset, .. }
            | StoreError::Decompress { offset, .. } => Some(*offset),
            StoreError::BadMagic { .. } => Some(0),
            StoreError::UnknownVersion { .. } => Some(8),
            StoreError::UnknownHeaderFlags { .. } => Some(12),
            _ => None,
        }
    }
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
