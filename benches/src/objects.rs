//! The object pools of the `object_ctx` and `object_threads` bench groups and of target P8's alternating
//! runs (`src/bin/paired.rs`): ours and three peers, each set up as a competent user of it would (a
//! capacity of 64 where the pool asks for one; a reset that clears the map), and one acquire + fill +
//! release with each.

use flowmem_pool::{ObjectPool, PoolConfig};

use crate::{Ctx, fill, keep, new_ctx};

/// One acquire + fill + release with one of the [`ObjectPools`].
pub type PoolUse = fn(&ObjectPools);

/// The pools of the object benches, each as a competent user of it would set it up (a capacity of 64
/// where the pool asks for one; a reset that clears the map), and one acquire + fill + release with each.
pub struct ObjectPools {
    ours: ObjectPool<Ctx>,
    object_pool: object_pool::Pool<Ctx>,
    linear: lockfree_object_pool::LinearObjectPool<Ctx>,
    opool: opool::Pool<CtxAllocator, Ctx>,
}

impl ObjectPools {
    /// Each pool, empty.
    pub fn new() -> ObjectPools {
        ObjectPools {
            ours: ObjectPool::with_reset(new_ctx, PoolConfig::default()),
            object_pool: object_pool::Pool::new(64, new_ctx),
            linear: lockfree_object_pool::LinearObjectPool::new(new_ctx, |c: &mut Ctx| c.clear()),
            opool: opool::Pool::new(64, CtxAllocator),
        }
    }

    /// A use of ours.
    #[inline]
    pub fn use_ours(&self) {
        let mut ctx = self.ours.acquire();
        fill(&mut ctx);
        keep(&*ctx);
    }

    /// A use of the `object-pool` crate's `Pool`.
    #[inline]
    pub fn use_object_pool(&self) {
        // object-pool does not clear what comes back: the user does.
        let mut ctx = self.object_pool.pull(new_ctx);
        ctx.clear();
        fill(&mut ctx);
        keep(&*ctx);
    }

    /// A use of lockfree-object-pool's `LinearObjectPool`.
    #[inline]
    pub fn use_linear(&self) {
        let mut ctx = self.linear.pull();
        fill(&mut ctx);
        keep(&*ctx);
    }

    /// A use of opool's `Pool`.
    #[inline]
    pub fn use_opool(&self) {
        let mut ctx = self.opool.get();
        fill(&mut ctx);
        keep(&*ctx);
    }

    /// Each pool's bench name and use, ours first.
    pub const USES: [(&'static str, PoolUse); 4] = [
        ("pool", ObjectPools::use_ours),
        ("object_pool_crate", ObjectPools::use_object_pool),
        ("lockfree_linear", ObjectPools::use_linear),
        ("opool", ObjectPools::use_opool),
    ];
}

impl Default for ObjectPools {
    fn default() -> Self {
        ObjectPools::new()
    }
}

impl std::fmt::Debug for ObjectPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectPools")
            .field("ours", &self.ours.stats())
            .finish_non_exhaustive()
    }
}

/// opool's way to make and clear the contexts.
#[derive(Debug)]
pub struct CtxAllocator;

impl opool::PoolAllocator<Ctx> for CtxAllocator {
    fn allocate(&self) -> Ctx {
        new_ctx()
    }
    fn reset(&self, ctx: &mut Ctx) {
        ctx.clear();
    }
}
