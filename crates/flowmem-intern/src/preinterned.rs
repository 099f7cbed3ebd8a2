//! Pre-interned strings a program declares for its own domain: [`Preinterned`] and [`preinterned!`](crate::preinterned).
//!
//! [`sym`](crate::sym) holds the engine's well-known strings at symbols `0..WELL_KNOWN.len()` of every
//! pool. A program adds its own set after them: a pool made with
//! [`StringPool::with_preinterned`](crate::StringPool::with_preinterned) interns the set first, in
//! order, so the set's constants are the symbols of its strings in every pool made with it (and in the
//! process-wide pool after [`preintern_global`](crate::preintern_global)).

use crate::{Symbol, sym::WELL_KNOWN};

/// A program's own set of pre-interned strings, declared with [`preinterned!`](crate::preinterned): the string of index `i`
/// is the symbol `WELL_KNOWN.len() + i` in every pool made with the set.
///
/// Made in a `const` context, the set is checked when the program compiles: a string given twice, or one
/// of the well-known strings of [`sym`](crate::sym) (which already has a symbol), is a compile error.
///
/// ```
/// flowmem_intern::preinterned! {
///     /// The statuses of a VM.
///     pub mod vm_status {
///         RUNNING = "running",
///         STOPPED = "stopped",
///     }
/// }
///
/// use flowmem_intern::StringPool;
/// let a = StringPool::with_preinterned(vm_status::SET);
/// let b = StringPool::with_preinterned(vm_status::SET);
/// assert_eq!(a.intern("running"), vm_status::RUNNING);
/// assert_eq!(b.intern("running"), vm_status::RUNNING); // the same symbol in every such pool
/// assert_eq!(b.resolve(vm_status::STOPPED), "stopped");
/// assert_eq!(vm_status::SET.strings(), &["running", "stopped"]);
/// ```
///
/// A string given twice does not compile:
///
/// ```compile_fail
/// flowmem_intern::preinterned! {
///     pub mod twice { A = "x", B = "x" }
/// }
/// ```
///
/// Nor does one of the well-known strings:
///
/// ```compile_fail
/// flowmem_intern::preinterned! {
///     pub mod clash { MY_FAILED = "FAILED" }
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Preinterned {
    strings: &'static [&'static str],
}

impl Preinterned {
    /// The set of `strings`, in symbol order.
    ///
    /// # Panics
    ///
    /// If a string appears twice, is one of [`WELL_KNOWN`], or the set cannot have symbols (more than
    /// `u32::MAX - 1 - WELL_KNOWN.len()` strings). In a `const` item (as [`preinterned!`](crate::preinterned) makes it)
    /// that is a compile error.
    pub const fn new(strings: &'static [&'static str]) -> Preinterned {
        if strings.len() > (u32::MAX - 1) as usize - WELL_KNOWN.len() {
            panic!("too many pre-interned strings for 32-bit symbols");
        }
        let mut i = 0;
        while i < strings.len() {
            let mut k = 0;
            while k < WELL_KNOWN.len() {
                if str_eq(strings[i], WELL_KNOWN[k]) {
                    panic!(
                        "a pre-interned string is one of flowmem_intern::sym's well-known strings, \
                         which already has its symbol: use the sym constant"
                    );
                }
                k += 1;
            }
            let mut j = i + 1;
            while j < strings.len() {
                if str_eq(strings[i], strings[j]) {
                    panic!("a pre-interned string is given twice");
                }
                j += 1;
            }
            i += 1;
        }
        Preinterned { strings }
    }

    /// The empty set: a pool made with it holds the well-known strings only.
    pub const EMPTY: Preinterned = Preinterned { strings: &[] };

    /// The set's strings, in symbol order.
    pub const fn strings(&self) -> &'static [&'static str] {
        self.strings
    }

    /// The symbol of the set's string of index `index` in every pool made with the set.
    ///
    /// # Panics
    ///
    /// If `index` is not below the set's length (a compile error in a `const` item).
    pub const fn symbol(&self, index: usize) -> Symbol {
        if index >= self.strings.len() {
            panic!("index past the end of the pre-interned set");
        }
        Symbol::from_index((WELL_KNOWN.len() + index) as u32)
    }

    /// Number of strings in the set.
    pub const fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether the set is empty.
    pub const fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

impl std::fmt::Debug for Preinterned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preinterned")
            .field("first_symbol", &WELL_KNOWN.len())
            .field("strings", &self.strings)
            .finish()
    }
}

/// Byte equality in a `const fn`.
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Declares a module of pre-interned strings for a program's own domain: a [`Preinterned`] `SET` and one
/// [`Symbol`] constant per string, valid in every pool made with `SET`
/// ([`StringPool::with_preinterned`](crate::StringPool::with_preinterned),
/// [`preintern_global`](crate::preintern_global)).
///
/// ```
/// flowmem_intern::preinterned! {
///     /// Statuses and regions the service names everywhere.
///     pub mod names {
///         RUNNING = "running",
///         EU_WEST = "eu-west",
///     }
/// }
/// let pool = flowmem_intern::StringPool::with_preinterned(names::SET);
/// assert_eq!(pool.get("eu-west"), Some(names::EU_WEST)); // no lookup needed to know it
/// ```
#[macro_export]
macro_rules! preinterned {
    ($(#[$meta:meta])* $vis:vis mod $module:ident { $($name:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        $vis mod $module {
            /// The set, in symbol order: make pools with it.
            pub const SET: $crate::Preinterned = $crate::Preinterned::new(&[$($text),*]);
            $crate::preinterned!(@consts 0usize; $($name = $text),*);
        }
    };
    (@consts $i:expr; $name:ident = $text:literal $(, $rest:ident = $rest_text:literal)*) => {
        #[doc = concat!("`\"", $text, "\"`, pre-interned in every pool made with [`SET`].")]
        pub const $name: $crate::Symbol = SET.symbol($i);
        $crate::preinterned!(@consts $i + 1; $($rest = $rest_text),*);
    };
    (@consts $i:expr;) => {};
}
