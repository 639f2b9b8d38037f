// SPDX-License-Identifier: GPL-2.0

//! The free `net_iov`s of a binding.
//!
//! C's provider allocates from the binding's genpool, first fit: each
//! allocation walks the chunk list (one chunk per DMA segment) and scans a
//! chunk's bitmap from its start, and each free walks the list again to find
//! the chunk, so both grow with the dma-buf's segment count and with how
//! full the binding is. Here taking a `net_iov` and giving one back cost the
//! same whatever the size and layout of the dma-buf, and a batch is taken
//! under one lock.
//!
//! Binding does no per-`net_iov` work beyond writing the `net_iov`s (as C
//! does): the list records each carved segment once, and hands out its
//! `net_iov`s in order, from a cursor, the first time each is taken. Those
//! given back go on a stack and are taken again first, most recent first
//! (warmest in cache).
//!
//! The genpool stays: it holds the chunk owners (the C layout the rest of the
//! stack reads through `devmem.h`), and its size, against the number of free
//! `net_iov`s, is the leak check when the binding is freed.

use core::ptr::NonNull;
use kernel::{alloc::KVVec, bindings, prelude::*};

/// Most `net_iov`s taken under one lock (page_pool's cache refill size).
pub(crate) const BATCH: usize = bindings::PP_ALLOC_CACHE_REFILL as usize;

/// A carved segment: its first `net_iov` and how many follow it in the
/// same array.
#[derive(Clone, Copy)]
struct Segment {
    first: NonNull<bindings::net_iov>,
    count: usize,
}

/// The free `net_iov`s of one binding.
///
/// A bitmap, indexed by a `net_iov`'s page in the dma-buf, says which are
/// handed out, so that a `net_iov` given back twice, or never handed out, is
/// caught instead of being handed out to two owners (C's genpool hits a
/// `BUG_ON` there).
pub(crate) struct FreeList {
    /// Given back since bind; its capacity is every `net_iov` carved, so a
    /// free never allocates.
    stack: KVVec<NonNull<bindings::net_iov>>,
    /// Every carved segment, in the order carved.
    segments: KVVec<Segment>,
    /// The next `net_iov` never handed out: `next_seg`'s `next_idx`th.
    next_seg: usize,
    next_idx: usize,
    /// How many were never handed out.
    fresh: usize,
    /// Bit `i` is set while the `net_iov` of page `i` is handed out.
    out: KVVec<u64>,
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
            segments: KVVec::new(),
            next_seg: 0,
            next_idx: 0,
            fresh: 0,
            out: KVVec::new(),
            total: 0,
        }
    }

    /// Makes room for `niovs` `net_iov`s in `segments` segments (at bind
    /// time), with pages `0` to `niovs - 1` in all.
    pub(crate) fn reserve(&mut self, niovs: usize, segments: usize) -> Result {
        self.stack.reserve(niovs, GFP_KERNEL)?;
        self.segments.reserve(segments, GFP_KERNEL)?;
        let words = niovs.div_ceil(64);
        self.out.reserve(words, GFP_KERNEL)?;
        while self.out.len() < words {
            self.out.push(0, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Adds a newly carved segment: `count` `net_iov`s in one array from
    /// `first` on (at bind time; may allocate). Its pages must be within
    /// those given to [`FreeList::reserve`].
    pub(crate) fn add(&mut self, first: NonNull<bindings::net_iov>, count: usize) -> Result {
        let total = self.total.checked_add(count).ok_or(EINVAL)?;
        if total > self.out.len() * 64 {
            return Err(EINVAL);
        }
        self.segments.push(Segment { first, count }, GFP_KERNEL)?;
        self.fresh += count;
        self.total = total;
        Ok(())
    }

    /// How many `net_iov`s are free.
    pub(crate) fn len(&self) -> usize {
        self.stack.len() + self.fresh
    }

    /// The next `net_iov` never handed out, if any.
    fn take_fresh(&mut self) -> Option<NonNull<bindings::net_iov>> {
        while let Some(seg) = self.segments.get(self.next_seg) {
            if self.next_idx < seg.count {
                // In bounds of the segment's array (`next_idx < count`), so
                // the pointer is that `net_iov`'s.
                let niov = NonNull::new(seg.first.as_ptr().wrapping_add(self.next_idx))?;
                self.next_idx += 1;
                self.fresh -= 1;
                return Some(niov);
            }
            self.next_seg += 1;
            self.next_idx = 0;
        }
        None
    }

    /// Takes a free `net_iov`, the most recently given back first; `page`
    /// gives its page in the dma-buf.
    pub(crate) fn take(
        &mut self,
        page: impl Fn(NonNull<bindings::net_iov>) -> usize,
    ) -> Option<NonNull<bindings::net_iov>> {
        let niov = match self.stack.pop() {
            Some(niov) => niov,
            None => self.take_fresh()?,
        };
        let p = page(niov);
        if let Some(word) = self.out.get_mut(p / 64) {
            *word |= 1 << (p % 64);
        }
        Some(niov)
    }

    /// Gives back the `net_iov` of page `page`; `false`, and the list left
    /// alone, if it is not handed out (a double free, or not one of the
    /// binding's pages).
    pub(crate) fn give(&mut self, niov: NonNull<bindings::net_iov>, page: usize) -> bool {
        if self.len() >= self.total {
            return false;
        }
        let Some(word) = self.out.get_mut(page / 64) else {
            return false;
        };
        let bit = 1 << (page % 64);
        if *word & bit == 0 {
            return false;
        }
        // The capacity was reserved for every carved `net_iov`.
        if self.stack.push_within_capacity(niov).is_err() {
            return false;
        }
        *word &= !bit;
        true
    }
}
