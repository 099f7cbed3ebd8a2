//! Objects on loan that own their pool's handle ([`OwnedPooled`]), for code that returns a pooled object
//! from a function without a `'static` pool; and what [`ObjectPool::release`] takes ([`Release`]).

use std::{
    fmt,
    ops::{Deref, DerefMut},
    sync::Arc,
};

use flowmem_alloc::CachePadded;

use crate::{
    ObjectPool, PoolError, Pooled,
    object::{Kept, kept},
};

/// An object on loan from an [`ObjectPool`] behind an `Arc`: dereferences to `T`, reset and returned on
/// drop, as [`Pooled`], but holding the pool (an `Arc` clone) rather than borrowing it.
///
/// ```
/// use std::sync::Arc;
/// use flowmem_pool::{ObjectPool, OwnedPooled, PoolConfig};
///
/// fn new_request(pool: &Arc<ObjectPool<String>>) -> OwnedPooled<String> {
///     let mut buf = pool.acquire_owned();
///     buf.push_str("GET /");
///     buf
/// }
///
/// let pool = Arc::new(ObjectPool::with_reset(String::new, PoolConfig::default()));
/// let request = new_request(&pool);
/// assert_eq!(request.as_str(), "GET /");
/// drop(request); // cleared and back in the pool
/// assert_eq!(pool.stats().pooled, 1);
/// ```
pub struct OwnedPooled<T: Send> {
    obj: Option<Kept<T>>,
    pool: Arc<ObjectPool<T>>,
}

impl<T: Send> ObjectPool<T> {
    /// A clean object whose handle owns a clone of the pool's `Arc` (see [`OwnedPooled`]).
    ///
    /// # Panics
    ///
    /// As [`acquire`](ObjectPool::acquire).
    pub fn acquire_owned(self: &Arc<Self>) -> OwnedPooled<T> {
        let pooled = self.acquire();
        owned(self, pooled)
    }

    /// As [`try_acquire`](ObjectPool::try_acquire), with a handle that owns a clone of the pool's `Arc`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Exhausted`] if the pool is bounded and every object is in use.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPooled<T>, PoolError> {
        let pooled = self.try_acquire()?;
        Ok(owned(self, pooled))
    }
}

/// Moves the object of `pooled` (still live, still counted) into an owning handle.
fn owned<T: Send>(pool: &Arc<ObjectPool<T>>, pooled: Pooled<'_, T>) -> OwnedPooled<T> {
    OwnedPooled {
        obj: Some(pooled.into_object()),
        pool: Arc::clone(pool),
    }
}

impl<T: Send> OwnedPooled<T> {
    /// Keeps the object: it will not go back to the pool (and no longer counts against a bound).
    pub fn detach(self) -> T {
        CachePadded::into_inner(*self.detach_kept())
    }

    /// As [`detach`](OwnedPooled::detach), in the box the pool keeps it in.
    fn detach_kept(mut self) -> Kept<T> {
        let obj = self.take();
        self.pool.forget_live();
        obj
    }

    /// The pool it returns to.
    pub fn pool(&self) -> &Arc<ObjectPool<T>> {
        &self.pool
    }

    fn take(&mut self) -> Kept<T> {
        self.obj
            .take()
            .expect("an OwnedPooled holds its object until drop or detach")
    }
}

impl<T: Send> Deref for OwnedPooled<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.obj
            .as_deref()
            .map(|obj| &**obj)
            .expect("an OwnedPooled holds its object until drop or detach")
    }
}

impl<T: Send> DerefMut for OwnedPooled<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.obj
            .as_deref_mut()
            .map(|obj| &mut **obj)
            .expect("an OwnedPooled holds its object until drop or detach")
    }
}

impl<T: Send> Drop for OwnedPooled<T> {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            self.pool.give_back(obj);
        }
    }
}

impl<T: Send + fmt::Debug> fmt::Debug for OwnedPooled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedPooled")
            .field(&self.obj.as_deref().map(|obj| &**obj))
            .finish()
    }
}

/// What [`ObjectPool::release`] takes: an object of the pool's type, a [`Pooled`] or an
/// [`OwnedPooled`] handle.
pub trait Release<T: Send> {
    /// Gives this to `pool`.
    fn release_into(self, pool: &ObjectPool<T>);
}

impl<T: Send> Release<T> for T {
    fn release_into(self, pool: &ObjectPool<T>) {
        pool.release_object(kept(self));
    }
}

impl<T: Send> Release<T> for Pooled<'_, T> {
    fn release_into(self, pool: &ObjectPool<T>) {
        if std::ptr::eq(self.pool(), pool) {
            drop(self); // back to its pool, as a drop does
        } else {
            pool.release_object(self.detach_kept());
        }
    }
}

impl<T: Send> Release<T> for OwnedPooled<T> {
    fn release_into(self, pool: &ObjectPool<T>) {
        if std::ptr::eq(Arc::as_ptr(&self.pool), pool) {
            drop(self);
        } else {
            pool.release_object(self.detach_kept());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{ObjectPool, PoolConfig, PoolError};

    #[test]
    fn owned_handles_count_against_the_bound_and_go_back_on_drop() {
        let config = PoolConfig {
            max_live: Some(1),
            ..PoolConfig::default()
        };
        let pool = Arc::new(ObjectPool::with_reset(Vec::<u8>::new, config));
        let held = pool.try_acquire_owned().unwrap();
        assert!(matches!(
            pool.try_acquire_owned(),
            Err(PoolError::Exhausted { .. })
        ));
        drop(held);
        let mut again = pool.try_acquire_owned().unwrap();
        again.push(1);
        let kept = again.detach();
        assert_eq!(kept, [1]);
        // Detached: the bound has room again.
        assert!(pool.try_acquire_owned().is_ok());
    }

    #[test]
    fn a_handle_of_another_pool_is_released_into_this_one() {
        let a = ObjectPool::with_reset(|| String::from("from a"), PoolConfig::default());
        let b = ObjectPool::with_reset(String::new, PoolConfig::default());
        let from_a = a.acquire();
        b.release(from_a);
        assert_eq!((a.stats().pooled, b.stats().pooled), (0, 1));
        assert_eq!(b.acquire().as_str(), "", "reset by b on the way in");
    }
}
