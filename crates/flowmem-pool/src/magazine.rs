//! [`Magazine`]: buffers of one size class that move between a thread's cache and a shared queue of a
//! [`BufferPool`](crate::BufferPool) together.
//!
//! A thread that only frees buffers (the consumer of a pipeline) fills its cache and then hands the whole
//! cache over in one queue operation and one update of the shared counts; a thread that only takes them
//! (the producer) takes such a magazine whole into its empty cache. One buffer at a time, each hand-over
//! cost a queue push and pop and four atomic updates of two counts on one cache line, all of which travel
//! between the two threads' cores: the buffers' trip cost more than `Vec` and a fast allocator under
//! mimalloc (target P6). The name and the idea are Bonwick's (the magazine layer of the slab allocator).

/// The most buffers a magazine holds.
pub(crate) const MAGAZINE: usize = 4;

/// Up to [`MAGAZINE`] idle buffers of one class, with their capacities summed (the bytes of the bound
/// that they hold reserved).
pub(crate) struct Magazine {
    bufs: [Vec<u8>; MAGAZINE],
    len: usize,
    bytes: usize,
}

impl Magazine {
    /// A magazine of one buffer.
    pub(crate) fn one(buf: Vec<u8>) -> Magazine {
        let mut m = Magazine::empty();
        m.push(buf);
        m
    }

    fn empty() -> Magazine {
        Magazine {
            bufs: Default::default(),
            len: 0,
            bytes: 0,
        }
    }

    /// A magazine of the last buffers of `stack` (up to [`MAGAZINE`]), taken off it.
    pub(crate) fn from_stack(stack: &mut Vec<Vec<u8>>) -> Magazine {
        let mut m = Magazine::empty();
        while m.len < MAGAZINE {
            let Some(buf) = stack.pop() else { break };
            m.push(buf);
        }
        m
    }

    /// Adds `buf`, which must be of the magazine's class, to a magazine not full.
    pub(crate) fn push(&mut self, buf: Vec<u8>) {
        debug_assert!(self.len < MAGAZINE, "a magazine holds {MAGAZINE} buffers");
        self.bytes += buf.capacity();
        self.bufs[self.len] = buf;
        self.len += 1;
    }

    /// Its last buffer, taken out.
    pub(crate) fn pop(&mut self) -> Option<Vec<u8>> {
        self.len = self.len.checked_sub(1)?;
        let buf = std::mem::take(&mut self.bufs[self.len]);
        self.bytes -= buf.capacity();
        Some(buf)
    }

    /// Buffers in it.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no buffer.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its buffers' capacities, summed.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_magazine_takes_the_top_of_a_stack_and_counts_its_bytes() {
        let mut stack: Vec<Vec<u8>> = [256, 512, 1024, 2048, 4096, 8192]
            .map(Vec::with_capacity)
            .into();
        let mut m = Magazine::from_stack(&mut stack);
        assert_eq!((m.len(), m.bytes()), (MAGAZINE, 1024 + 2048 + 4096 + 8192));
        assert_eq!(stack.len(), 2, "the bottom two stay");
        assert_eq!(m.pop().map(|b| b.capacity()), Some(1024));
        assert_eq!((m.len(), m.bytes()), (3, 2048 + 4096 + 8192));
        while m.pop().is_some() {}
        assert!(m.is_empty() && m.bytes() == 0);
        assert!(m.pop().is_none());
        let m = Magazine::from_stack(&mut Vec::new());
        assert!(m.is_empty());
        let m = Magazine::one(Vec::with_capacity(300));
        assert_eq!((m.len(), m.bytes()), (1, 300));
    }
}
