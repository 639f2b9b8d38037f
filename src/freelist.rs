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
/// carved: a free never allocates. A bitmap, indexed by a `net_iov`'s page in
/// the dma-buf, says which are on the stack, so that a `net_iov` given back
/// twice is caught instead of being handed out to two owners (C's genpool
/// hits a `BUG_ON` there).
pub(crate) struct FreeList {
    stack: KVVec<NonNull<bindings::net_iov>>,
    /// Bit `i` is set while the `net_iov` of page `i` is on the stack.
    free: KVVec<u64>,
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
            free: KVVec::new(),
            total: 0,
        }
    }

    /// Makes room for `n` more `net_iov`s (at bind time), with pages `0` to
    /// `n - 1` in all.
    pub(crate) fn reserve(&mut self, n: usize) -> Result {
        self.stack.reserve(n, GFP_KERNEL)?;
        let words = n.div_ceil(64);
        self.free.reserve(words, GFP_KERNEL)?;
        while self.free.len() < words {
            self.free.push(0, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Adds the newly carved `net_iov` of page `page` (at bind time; may
    /// allocate).
    pub(crate) fn add(&mut self, niov: NonNull<bindings::net_iov>, page: usize) -> Result {
        let word = self.free.get_mut(page / 64).ok_or(EINVAL)?;
        *word |= 1 << (page % 64);
        self.stack.push(niov, GFP_KERNEL)?;
        self.total += 1;
        Ok(())
    }

    /// How many `net_iov`s are free.
    pub(crate) fn len(&self) -> usize {
        self.stack.len()
    }

    /// Takes the most recently freed `net_iov` (warmest in cache); `page`
    /// gives its page in the dma-buf.
    pub(crate) fn take(
        &mut self,
        page: impl Fn(NonNull<bindings::net_iov>) -> usize,
    ) -> Option<NonNull<bindings::net_iov>> {
        let niov = self.stack.pop()?;
        let p = page(niov);
        if let Some(word) = self.free.get_mut(p / 64) {
            *word &= !(1 << (p % 64));
        }
        Some(niov)
    }

    /// Gives back the `net_iov` of page `page`; `false`, and the list left
    /// alone, if it is already on the list (a double free) or is not one of
    /// the binding's pages.
    pub(crate) fn give(&mut self, niov: NonNull<bindings::net_iov>, page: usize) -> bool {
        let Some(word) = self.free.get_mut(page / 64) else {
            return false;
        };
        let bit = 1 << (page % 64);
        if *word & bit != 0 || self.stack.len() >= self.total {
            return false;
        }
        // The capacity was reserved for every carved `net_iov`.
        if self.stack.push_within_capacity(niov).is_err() {
            return false;
        }
        *word |= bit;
        true
    }
}
