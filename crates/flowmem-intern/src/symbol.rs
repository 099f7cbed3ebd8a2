//! [`Symbol`]: the 4-byte handle of an interned string.

use std::{fmt, num::NonZeroU32};

/// An interned string: 4 bytes, `Copy`, compared and hashed as an integer.
///
/// A symbol is meaningful only with the pool that made it (resolve it with
/// [`StringPool::resolve`](crate::StringPool::resolve)), except the pre-interned [`sym`](crate::sym)
/// constants, which are the same in every pool. `Option<Symbol>` is 4 bytes too. Symbols order by
/// interning order, not alphabetically.
///
/// ```
/// use flowmem_intern::{Symbol, StringPool, sym};
///
/// assert_eq!(std::mem::size_of::<Option<Symbol>>(), 4);
/// let pool = StringPool::new();
/// let a = pool.intern("extract");
/// assert_eq!(pool.intern("extract"), a);
/// assert_eq!(pool.resolve(a), "extract");
/// assert_eq!(pool.intern("COMPLETED"), sym::COMPLETED);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol(NonZeroU32);

impl Symbol {
    /// The symbol of interning index `index` (0-based). `const`, for the [`sym`](crate::sym) constants.
    #[inline]
    pub(crate) const fn from_index(index: u32) -> Symbol {
        match NonZeroU32::new(index.wrapping_add(1)) {
            Some(n) => Symbol(n),
            None => panic!("symbol index out of range"),
        }
    }

    /// The 0-based index of the string in its pool, in interning order.
    #[inline]
    pub const fn index(self) -> u32 {
        self.0.get() - 1
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips() {
        for i in [0, 1, 7, 1 << 20, u32::MAX - 2] {
            assert_eq!(Symbol::from_index(i).index(), i);
        }
    }
}
