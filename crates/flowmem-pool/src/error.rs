//! The one error type of the crate.

use std::time::Duration;

/// Why a pool could not serve a request, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A bounded pool has every object in use.
    #[error("object pool exhausted: all {max_live} objects are in use")]
    Exhausted {
        /// The pool's [`PoolConfig::max_live`](crate::PoolConfig::max_live).
        max_live: usize,
    },
    /// No object was released in time.
    #[error("no object of the pool (limit {max_live}) was released within {waited:?}")]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// The pool's [`PoolConfig::max_live`](crate::PoolConfig::max_live).
        max_live: usize,
    },
    /// A setting is out of range.
    #[error("invalid pool settings: {0}")]
    InvalidConfig(String),
}
