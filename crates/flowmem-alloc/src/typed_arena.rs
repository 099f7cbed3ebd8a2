//! [`TypedArena`]: an arena of one type whose values are dropped with it.

use std::fmt;

/// An arena of values of one type `T`, dropped (destructors run) when the arena is dropped.
///
/// A thin wrapper over [`typed_arena::Arena`]: use it for values that own resources (strings, vectors,
/// handles), which the untyped [`Arena`](crate::Arena) would leak.
///
/// # Example
///
/// ```
/// use flowmem_alloc::TypedArena;
///
/// let arena = TypedArena::new();
/// let a: &mut String = arena.alloc(String::from("a"));
/// a.push('b');
/// let more = arena.alloc_extend((0..3).map(|i| i.to_string()));
/// assert_eq!((a.as_str(), more.len(), arena.len()), ("ab", 3, 4));
/// // Dropping `arena` drops the four strings.
/// ```
pub struct TypedArena<T> {
    inner: typed_arena::Arena<T>,
}

impl<T> Default for TypedArena<T> {
    fn default() -> Self {
        TypedArena::new()
    }
}

impl<T> TypedArena<T> {
    /// An empty arena.
    pub fn new() -> TypedArena<T> {
        TypedArena {
            inner: typed_arena::Arena::new(),
        }
    }

    /// An empty arena with room for `n` values before it allocates again.
    pub fn with_capacity(n: usize) -> TypedArena<T> {
        TypedArena {
            inner: typed_arena::Arena::with_capacity(n),
        }
    }

    /// Moves `value` into the arena.
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn alloc(&self, value: T) -> &mut T {
        self.inner.alloc(value)
    }

    /// Moves every value of `values` into the arena, contiguously.
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn alloc_extend<I: IntoIterator<Item = T>>(&self, values: I) -> &mut [T] {
        self.inner.alloc_extend(values)
    }

    /// Number of values in the arena.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the arena holds no value.
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// The values, in allocation order, moved out of the arena.
    pub fn into_vec(self) -> Vec<T> {
        self.inner.into_vec()
    }
}

impl<T> fmt::Debug for TypedArena<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedArena")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{cell::Cell, rc::Rc};

    struct CountsDrop(Rc<Cell<u32>>);
    impl Drop for CountsDrop {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn values_are_dropped_with_the_arena() {
        let drops = Rc::new(Cell::new(0));
        let arena = TypedArena::with_capacity(2);
        for _ in 0..10 {
            arena.alloc(CountsDrop(drops.clone()));
        }
        assert_eq!(drops.get(), 0);
        drop(arena);
        assert_eq!(drops.get(), 10);
    }

    #[test]
    fn into_vec_keeps_order() {
        let arena = TypedArena::new();
        for i in 0..100 {
            arena.alloc(i);
        }
        assert_eq!(arena.into_vec(), (0..100).collect::<Vec<_>>());
    }
}
