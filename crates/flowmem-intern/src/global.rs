//! The process-wide pool.
//!
//! One [`StringPool`] for the whole process, created on first use. Its strings are never freed: the pool
//! lives until the process exits, which is what lets [`resolve`] return `&'static str`. It grows by every
//! distinct string interned, so intern only strings from a bounded set (names in code, node names of
//! workflows you define), and look untrusted input up with [`get`], which never adds to it.

use std::sync::OnceLock;

use crate::{InternError, Preinterned, StringPool, Symbol};

static GLOBAL: OnceLock<StringPool> = OnceLock::new();

/// The process-wide pool.
pub fn global() -> &'static StringPool {
    GLOBAL.get_or_init(StringPool::new)
}

/// Makes the process-wide pool with the program's own pre-interned `set` (see
/// [`preinterned!`](crate::preinterned)), so the set's constants are symbols of [`global`] too. Call it
/// first thing in `main`, before anything interns: the pool is made once.
///
/// ```
/// flowmem_intern::preinterned! {
///     pub mod vm_status { RUNNING = "running", STOPPED = "stopped" }
/// }
/// flowmem_intern::preintern_global(vm_status::SET).unwrap();
/// assert_eq!(flowmem_intern::intern("running"), vm_status::RUNNING);
/// assert_eq!(flowmem_intern::resolve(vm_status::STOPPED), "stopped");
/// flowmem_intern::preintern_global(vm_status::SET).unwrap(); // the same set again: fine
/// ```
///
/// # Errors
///
/// [`InternError::GlobalStarted`] if the process-wide pool was already made with another set (or
/// without one, by an earlier call to [`intern`], [`get`], [`resolve`] or [`global`]): its symbols are
/// handed out, so the set cannot take its place any more.
pub fn preintern_global(set: Preinterned) -> Result<(), InternError> {
    let pool = GLOBAL.get_or_init(|| StringPool::with_preinterned(set));
    if pool.preinterned() == set {
        Ok(())
    } else {
        Err(InternError::GlobalStarted {
            strings: pool.len(),
            wanted: set.len(),
        })
    }
}

/// Interns `s` in the process-wide pool.
///
/// ```
/// let a = flowmem_intern::intern("checkout");
/// assert_eq!(flowmem_intern::resolve(a), "checkout");
/// assert_eq!(flowmem_intern::intern("COMPLETED"), flowmem_intern::sym::COMPLETED);
/// ```
///
/// # Panics
///
/// After `u32::MAX - 1` distinct strings.
pub fn intern(s: &str) -> Symbol {
    global().intern(s)
}

/// The symbol of `s` in the process-wide pool, if it was interned; never adds to the pool.
pub fn get(s: &str) -> Option<Symbol> {
    global().get(s)
}

/// The string of a symbol of the process-wide pool, valid for the rest of the process.
///
/// # Panics
///
/// If `symbol` is not from the process-wide pool (a symbol of a larger pool of your own, say).
pub fn resolve(symbol: Symbol) -> &'static str {
    global().resolve(symbol)
}
