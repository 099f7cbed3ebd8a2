//! The one error type of the crate.

use std::alloc::Layout;

/// Why an allocation or a tracking request could not be served.
///
/// Every fallible (`try_*`) method of the crate returns this error; the infallible twins panic with its
/// message, except [`AllocError::OutOfMemory`], which goes to [`std::alloc::handle_alloc_error`] as `Box` does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllocError {
    /// The arena has a byte limit and this allocation could take it past the limit.
    #[error(
        "arena byte limit exceeded: {requested} bytes requested with {used} of {limit} bytes already in use"
    )]
    LimitExceeded {
        /// The limit set with [`Arena::with_limit`](crate::Arena::with_limit).
        limit: usize,
        /// Bytes in use when the allocation was asked for.
        used: usize,
        /// Bytes asked for (size plus the worst-case alignment padding).
        requested: usize,
    },
    /// The global allocator returned no memory for a new arena block.
    #[error("the global allocator could not provide a block of {requested} bytes")]
    OutOfMemory {
        /// Size of the block that could not be allocated.
        requested: usize,
    },
    /// The size of a slice allocation overflows `isize`.
    #[error("a slice of {len} elements of {elem_size} bytes does not fit in the address space")]
    CapacityOverflow {
        /// Number of elements asked for.
        len: usize,
        /// Size of one element.
        elem_size: usize,
    },
    /// A measurement needs [`Tracking`](crate::Tracking) as the program's `#[global_allocator]`, and it is not.
    #[error(
        "flowmem_alloc::Tracking is not this program's #[global_allocator], so allocations cannot be counted"
    )]
    TrackingNotInstalled,
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {variable}={value:?}: expected {expected}")]
    BadEnvironment {
        /// The variable.
        variable: &'static str,
        /// What it holds.
        value: String,
        /// What it should hold.
        expected: &'static str,
    },
}

impl AllocError {
    /// Turns the error into the behaviour of an infallible allocation: `handle_alloc_error` when memory ran
    /// out, a panic with the error's message otherwise.
    #[cold]
    #[track_caller]
    pub(crate) fn raise(self) -> ! {
        match self {
            AllocError::OutOfMemory { requested } => std::alloc::handle_alloc_error(
                Layout::from_size_align(requested.max(1), 1).unwrap_or(Layout::new::<u8>()),
            ),
            other => panic!("{other}"),
        }
    }
}
