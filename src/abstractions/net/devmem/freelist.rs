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

use crate::abstractions::alloc::kvvec_with_capacity_on;
use kernel::{
    alloc::{KVVec, NumaNode},
    bindings,
    prelude::*,
};

/// What the list holds: a handle to a carved `net_iov`, from which the
/// handles of the ones after it in the same array are computed.
pub(crate) trait Element: Copy {
    /// The handle of the `i`th `net_iov` from this one in its array.
    fn nth(self, i: usize) -> Self;
}

/// Most `net_iov`s taken under one lock (page_pool's cache refill size).
pub(crate) const BATCH: usize = bindings::PP_ALLOC_CACHE_REFILL as usize;

/// A carved segment: its first `net_iov` and how many follow it in the
/// same array.
#[derive(Clone, Copy)]
struct Segment<P> {
    first: P,
    count: usize,
}

/// The free `net_iov`s of one binding.
///
/// A bitmap, indexed by a `net_iov`'s page in the dma-buf, says which are
/// handed out, so that a `net_iov` given back twice, or never handed out, is
/// caught instead of being handed out to two owners (C's genpool hits a
/// `BUG_ON` there).
pub(crate) struct FreeList<P: Element> {
    /// Given back since bind; its capacity is every `net_iov` carved, so a
    /// free never allocates.
    stack: KVVec<P>,
    /// Every carved segment, in the order carved.
    segments: KVVec<Segment<P>>,
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

impl<P: Element> FreeList<P> {
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

    /// A list with room for `niovs` `net_iov`s in `segments` segments
    /// (pages `0` to `niovs - 1` in all), on NUMA node `nid`, the binding's
    /// device's, where C's genpool keeps its chunk bitmaps.
    pub(crate) fn with_room(niovs: usize, segments: usize, nid: NumaNode) -> Result<Self> {
        let words = niovs.div_ceil(64);
        let mut out = kvvec_with_capacity_on(words, GFP_KERNEL, nid)?;
        for _ in 0..words {
            out.push_within_capacity(0).map_err(|_| ENOMEM)?;
        }
        Ok(Self {
            stack: kvvec_with_capacity_on(niovs, GFP_KERNEL, nid)?,
            segments: kvvec_with_capacity_on(segments, GFP_KERNEL, nid)?,
            next_seg: 0,
            next_idx: 0,
            fresh: 0,
            out,
            total: 0,
        })
    }

    /// Adds a newly carved segment: `count` `net_iov`s in one array from
    /// `first` on (at bind time; may allocate). Its pages must be within
    /// those given to [`FreeList::with_room`].
    pub(crate) fn add(&mut self, first: P, count: usize) -> Result {
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
    fn take_fresh(&mut self) -> Option<P> {
        while let Some(seg) = self.segments.get(self.next_seg) {
            if self.next_idx < seg.count {
                // In bounds of the segment's array (`next_idx < count`).
                let niov = seg.first.nth(self.next_idx);
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
    pub(crate) fn take(&mut self, page: impl Fn(P) -> usize) -> Option<P> {
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
    pub(crate) fn give(&mut self, niov: P, page: usize) -> bool {
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
