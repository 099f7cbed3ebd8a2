//! The process-wide pool.
//!
//! One [`StringPool`] for the whole process, created on first use. Its strings are never freed: the pool
//! lives until the process exits, which is what lets [`resolve`] return `&'static str`. It grows by every
//! distinct string interned, so intern only strings from a bounded set (names in code, node names of
//! workflows you define), and look untrusted input up with [`get`], which never adds to it.

use std::sync::OnceLock;

use crate::{StringPool, Symbol};

static GLOBAL: OnceLock<StringPool> = OnceLock::new();

/// The process-wide pool.
pub fn global() -> &'static StringPool {
    GLOBAL.get_or_init(StringPool::new)
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
