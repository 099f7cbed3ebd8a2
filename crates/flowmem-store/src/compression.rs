//! Optional zstd compression of record payloads (feature `zstd`).
//!
//! A compressed payload is the uncompressed length (u64 LE) followed by one zstd frame. The length lets the
//! reader allocate once, fallibly, and refuse a frame that decompresses to anything else.

use std::path::Path;

use crate::{Result, StoreError};

/// Compresses `payload` at `level`, if that makes it smaller: `Some(stored bytes)`, else `None`.
#[cfg(feature = "zstd")]
pub(crate) fn compress(payload: &[u8], level: i32) -> std::io::Result<Option<Vec<u8>>> {
    let frame = zstd::bulk::compress(payload, level)?;
    if frame.len() + 8 >= payload.len() {
        return Ok(None);
    }
    let mut stored = Vec::with_capacity(8 + frame.len());
    stored.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    stored.extend_from_slice(&frame);
    Ok(Some(stored))
}

/// The plain payload of a compressed record's stored bytes (`offset`: the record's, for errors).
#[cfg(feature = "zstd")]
pub(crate) fn decompress(stored: &[u8], path: &Path, offset: u64) -> Result<Vec<u8>> {
    let fail = |reason: String| StoreError::Decompress {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let Some((len, frame)) = stored.split_first_chunk::<8>() else {
        return Err(fail(format!(
            "{} bytes, shorter than the 8-byte length",
            stored.len()
        )));
    };
    if frame.is_empty() {
        return Err(fail("no zstd frame after the 8-byte length".into()));
    }
    let len = u64::from_le_bytes(*len);
    let len = usize::try_from(len).map_err(|_| fail(format!("claims {len} bytes")))?;
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|e| fail(format!("claims {len} bytes: {e}")))?;
    let written = zstd::bulk::Decompressor::new()
        .and_then(|mut d| d.decompress_to_buffer(frame, &mut out))
        .map_err(|e| fail(e.to_string()))?;
    if written != len {
        return Err(fail(format!(
            "decompressed to {written} bytes, the record claims {len}"
        )));
    }
    Ok(out)
}

/// Without the `zstd` feature a compressed record cannot be read: a clear error, not garbage.
#[cfg(not(feature = "zstd"))]
pub(crate) fn decompress(_stored: &[u8], path: &Path, offset: u64) -> Result<Vec<u8>> {
    Err(StoreError::CompressionUnsupported {
        path: path.to_path_buf(),
        offset,
    })
}
