//! The re-entrancy guard that keeps the lock-based deadlocks out of reach.
//!
//! A thread inside a [`ConcurrentMap`](crate::ConcurrentMap) operation may hold one bucket lock, and user code
//! (a closure, `Clone`, `Eq`, `Drop`) can run while it does. If that code called into a map again, the thread
//! could wait for a lock it holds itself, or take a second lock while another thread takes the same two in
//! the other order. Both are deadlocks. Here every such nested call panics at once with a message naming
//! the two operations, so a thread never holds more than one bucket lock and never waits on itself.
//!
//! [`ReadMap`](crate::ReadMap) writers are serialised by a mutex; the same applies to a write started from
//! inside another write's closure. Reads of a `ReadMap` never lock, so they are allowed anywhere.

use std::cell::Cell;

/// Which kind of lock a nested call is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// A `ConcurrentMap` bucket lock (taken by every `ConcurrentMap` operation).
    Bucket,
    /// A `ReadMap` writer lock (taken by every `ReadMap` write).
    Writer,
}

thread_local! {
    static BUCKET_HOLDER: Cell<Option<&'static str>> = const { Cell::new(None) };
    static WRITER_HOLDER: Cell<Option<&'static str>> = const { Cell::new(None) };
}

fn slot(kind: LockKind) -> &'static std::thread::LocalKey<Cell<Option<&'static str>>> {
    match kind {
        LockKind::Bucket => &BUCKET_HOLDER,
        LockKind::Writer => &WRITER_HOLDER,
    }
}

/// Marks this thread as inside `operation` until dropped.
#[derive(Debug)]
pub(crate) struct Held {
    kind: LockKind,
}

/// Enters `operation`, which takes a lock of `kind`.
///
/// # Panics
/// If this thread is already inside an operation that holds a lock of the same kind: waiting here could
/// deadlock.
#[inline]
pub(crate) fn enter(kind: LockKind, operation: &'static str) -> Held {
    slot(kind).with(|cell| {
        if let Some(outer) = cell.get() {
            nested(kind, operation, outer);
        }
        cell.set(Some(operation));
    });
    Held { kind }
}

#[cold]
#[inline(never)]
fn nested(kind: LockKind, operation: &str, outer: &str) -> ! {
    let what = match kind {
        LockKind::Bucket => "ConcurrentMap",
        LockKind::Writer => "ReadMap write",
    };
    panic!(
        "flowmem-map: `{operation}` was called from code running inside `{outer}` (a closure, Clone, Eq or \
         Drop run while a {what} lock is held); it could deadlock, so it is refused. Compute the value \
         first and call the map afterwards, or use `for_each`, whose callback holds no lock"
    );
}

impl Drop for Held {
    #[inline]
    fn drop(&mut self) {
        slot(self.kind).with(|cell| cell.set(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_entry_of_one_kind_panics_and_the_other_kind_is_free() {
        let outer = enter(LockKind::Bucket, "update");
        let writer = enter(LockKind::Writer, "insert");
        drop(writer);
        let nested = std::panic::catch_unwind(|| enter(LockKind::Bucket, "get"));
        let message = *nested.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.contains("`get`") && message.contains("`update`"),
            "{message}"
        );
        drop(outer);
        drop(enter(LockKind::Bucket, "get"));
    }

    #[test]
    fn a_panic_inside_releases_the_mark() {
        let caught = std::panic::catch_unwind(|| {
            let _held = enter(LockKind::Bucket, "update");
            panic!("user closure failed");
        });
        assert!(caught.is_err());
        drop(enter(LockKind::Bucket, "get"));
    }
}
