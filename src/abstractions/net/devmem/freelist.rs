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
//! The list owns the binding's [`Arena`], which numbers the `net_iov`s in
//! dma-buf order, and names them by that number (a `net_iov`'s slot, 32
//! bits). Binding does no per-`net_iov` work beyond writing the `net_iov`s
//! (as C does): those never handed out are taken in order, from a cursor.
//! Those given back go on a stack and are taken again first, most recent
//! first (warmest in cache).
//!
//! Per `net_iov` that is 4 bytes of stack and one bit of the bitmap below,
//! where C's genpool keeps one bit per `net_iov` and a page per segment.
//!
//! Dropping the list is the leak check: with a `net_iov` still out, the
//! arena is leaked rather than freed under its holder.

use super::arena::Arena;
use super::niov::NiovPtr;
use super::niov_size::NiovSize;
use crate::abstractions::alloc::kvvec_with_capacity_on;
use kernel::{
    alloc::{KVVec, NumaNode},
    bindings,
    prelude::*,
};

/// Most `net_iov`s taken under one lock (page_pool's cache refill size).
pub(crate) const BATCH: usize = bindings::PP_ALLOC_CACHE_REFILL as usize;

/// The free `net_iov`s of one binding, and the arena they live in.
///
/// A bitmap, indexed by slot, says which are handed out, so that a
/// `net_iov` given back twice, or never handed out, is caught instead of
/// being handed out to two owners (C's genpool hits a `BUG_ON` there).
///
/// # Invariants
///
/// Every entry of `stack` is below `next`, which is at most
/// `arena.len()`, and has its bit in `out` clear; no slot is on the stack
/// twice. `out` has a bit for every slot of the arena's capacity. The
/// arena is only reached through the list, so it is freed only by the
/// list's drop, after the leak check.
pub(crate) struct FreeList {
    arena: Arena,
    /// The size of the binding's `net_iov`s, for the leak warning.
    size: NiovSize,
    /// Slots given back since bind; its capacity is every `net_iov` of the
    /// arena, so a free never allocates.
    stack: KVVec<u32>,
    /// The first slot never handed out.
    next: usize,
    /// Bit `i` is set while the `net_iov` of slot `i` is handed out.
    out: KVVec<u64>,
}

impl FreeList {
    /// An empty list, for a binding being set up.
    pub(crate) fn new() -> Self {
        Self {
            arena: Arena::new(),
            size: NiovSize::PAGE,
            stack: KVVec::new(),
            next: 0,
            out: KVVec::new(),
        }
    }

    /// A list with room for `niovs` `net_iov`s of `size` in `segments` DMA
    /// segments, on NUMA node `nid`, the binding's device's, where C's
    /// genpool keeps its chunk bitmaps. More `net_iov`s than 32-bit slots
    /// can name are refused with `EINVAL`.
    pub(crate) fn with_room(
        niovs: usize,
        segments: usize,
        size: NiovSize,
        nid: NumaNode,
    ) -> Result<Self> {
        let arena = Arena::with_room(niovs, segments, nid)?;
        let words = niovs.div_ceil(64);
        let mut out = kvvec_with_capacity_on(words, GFP_KERNEL, nid)?;
        for _ in 0..words {
            out.push_within_capacity(0).map_err(|_| ENOMEM)?;
        }
        // INVARIANT: nothing handed out or given back yet.
        Ok(Self {
            arena,
            size,
            stack: kvvec_with_capacity_on(niovs, GFP_KERNEL, nid)?,
            next: 0,
            out,
        })
    }

    /// Carves the next DMA segment of the dma-buf into the list's arena
    /// ([`Arena::carve`]), at bind time; its `net_iov`s are free from here
    /// on.
    ///
    /// # Safety
    ///
    /// `binding` must be the binding that will own this list, and outlive
    /// it unless its arena is leaked: the chunk owners point to it.
    pub(crate) unsafe fn carve(
        &mut self,
        binding: *mut bindings::net_devmem_dmabuf_binding,
        dma: bindings::dma_addr_t,
        len: usize,
    ) -> Result {
        // SAFETY: the arena is this list's, so `binding` outlives it
        // (caller).
        unsafe { self.arena.carve(binding, dma, len, self.size) }
    }

    /// The `net_iov` of slot `slot`, handed out or not (the TX table
    /// names them all); `None` past the last carved.
    pub(crate) fn niov_at(&self, slot: usize) -> Option<NiovPtr> {
        self.arena.get(slot)
    }

    /// How many `net_iov`s are free.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.stack.len() + (self.arena.len() - self.next)
    }

    /// How many `net_iov`s the binding has, free or not.
    pub(crate) fn total(&self) -> usize {
        self.arena.len()
    }

    /// Takes a free `net_iov`, the most recently given back first.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<NiovPtr> {
        // INVARIANT: a slot popped off the stack is on it no more; one
        // taken from the cursor is below the new `next`, which stays at most
        // `arena.len()`.
        let slot = match self.stack.pop() {
            Some(slot) => slot as usize,
            None if self.next < self.arena.len() => {
                self.next += 1;
                self.next - 1
            }
            None => return None,
        };
        // Below `next`, so carved.
        let niov = self.arena.get(slot)?;
        // INVARIANT: the slot is handed out, so off the stack, with its bit
        // set; `out` covers every slot of the arena, so the word exists.
        if let Some(word) = self.out.get_mut(slot / 64) {
            *word |= 1 << (slot % 64);
        }
        Some(niov)
    }

    /// Gives back the `net_iov` of slot `slot`; `false`, and the list left
    /// alone, if it is not handed out (a double free, or not one of the
    /// binding's slots).
    #[inline]
    pub(crate) fn give(&mut self, slot: usize) -> bool {
        if slot >= self.next {
            return false;
        }
        let Some(word) = self.out.get_mut(slot / 64) else {
            return false;
        };
        let bit = 1 << (slot % 64);
        if *word & bit == 0 {
            return false;
        }
        // Below `next`, so below the arena's capacity, which `with_room`
        // bounds to 32-bit slots; the stack has room for every `net_iov`.
        let Ok(entry) = u32::try_from(slot) else {
            return false;
        };
        if self.stack.push_within_capacity(entry).is_err() {
            return false;
        }
        // INVARIANT: the slot is on the stack once, with its bit clear.
        *word &= !bit;
        true
    }
}

impl Drop for FreeList {
    /// Frees the list and its arena, or, if some `net_iov`s are still out,
    /// warns (as C warns that it can't destroy the genpool, with its sizes
    /// in bytes) and leaks the arena: whoever holds such a `net_iov` may
    /// still read it and its chunk owner. The owner's `binding` is not
    /// kept: the binding is freed after this, as in C's free path, so
    /// giving the `net_iov` back would still reach a freed binding (a leak
    /// is already a bug that warned).
    fn drop(&mut self) {
        let (total, free) = (self.total(), self.len());
        if total != free {
            let bytes = self.size.bytes();
            let (size, avail) = (total * bytes, free * bytes);
            pr_warn!("can't destroy genpool. size={size}, avail={avail}\n");
            kernel::warn_on!(true);
            core::mem::replace(&mut self.arena, Arena::new()).leak();
        }
    }
}
