// SPDX-License-Identifier: GPL-2.0

//! The free `net_iov`s of a binding.
//!
//! C's provider allocates from the binding's genpool, first fit: each
//! allocation walks the chunk list (one chunk per DMA segment) and scans a
//! chunk's bitmap from its start, and each free walks the list again to find
//! the chunk, so both grow with the dma-buf's segment count and with how
//! full the binding is. Here the free `net_iov`s are a stack, carved once at
//! bind time: taking one and giving one back cost the same whatever the size
//! and layout of the dma-buf, and a batch is taken under one lock.
//!
//! The genpool stays: it holds the chunk owners (the C layout the rest of the
//! stack reads through `devmem.h`), and its size, against the number of free
//! `net_iov`s, is the leak check when the binding is freed.

use core::ptr::NonNull;
use kernel::{alloc::KVVec, bindings, prelude::*};

/// Most `net_iov`s taken under one lock (page_pool's cache refill size).
pub(crate) const BATCH: usize = bindings::PP_ALLOC_CACHE_REFILL as usize;

/// A stack of free `net_iov`s, whose capacity is every `net_iov` the binding
/// carved: a free never allocates.
pub(crate) struct FreeList {
    stack: KVVec<NonNull<bindings::net_iov>>,
    /// Every `net_iov` carved, free or not.
    total: usize,
}

// SAFETY: the pointers are to `net_iov`s owned by the binding that owns the
// list; moving the list between threads moves no access to them.
unsafe impl Send for FreeList {}

impl FreeList {
    /// An empty list, for a binding being set up.
    pub(crate) fn new() -> Self {
        Self {
            stack: KVVec::new(),
            total: 0,
        }
    }

    /// Makes room for `n` more `net_iov`s (at bind time).
    pub(crate) fn reserve(&mut self, n: usize) -> Result {
        self.stack.reserve(n, GFP_KERNEL)?;
        Ok(())
    }

    /// Adds a newly carved `net_iov` (at bind time; may allocate).
    pub(crate) fn add(&mut self, niov: NonNull<bindings::net_iov>) -> Result {
        self.stack.push(niov, GFP_KERNEL)?;
        self.total += 1;
        Ok(())
    }

    /// How many `net_iov`s are free.
    pub(crate) fn len(&self) -> usize {
        self.stack.len()
    }

    /// Takes the most recently freed `net_iov` (warmest in cache).
    pub(crate) fn take(&mut self) -> Option<NonNull<bindings::net_iov>> {
        self.stack.pop()
    }

    /// Gives a `net_iov` back; `false` if the list is already full, which
    /// means the `net_iov` was never taken (a double free).
    pub(crate) fn give(&mut self, niov: NonNull<bindings::net_iov>) -> bool {
        // The capacity was reserved for every carved `net_iov`.
        self.stack.len() < self.total && self.stack.push_within_capacity(niov).is_ok()
    }
}
