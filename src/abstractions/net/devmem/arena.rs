// SPDX-License-Identifier: GPL-2.0

//! Where a binding's `net_iov`s and their chunk owners live.
//!
//! C's provider gives each DMA segment a genpool chunk (a `vzalloc`ed page
//! of bitmap and its `vmap_area`), a chunk owner and a `net_iov` array of
//! its own. A dma-buf of scattered 4 KiB pages then costs more than a page
//! of kernel memory per page of buffer, and three allocations per segment
//! at bind time.
//!
//! Here the `net_iov`s of all segments are numbered in dma-buf order and
//! stored in blocks of [`BLOCK`] (the last one shorter), so the `n`th is
//! found in constant time and the free list can name it by a 32-bit index.
//! A chunk owner (the C layout `devmem.h` readers rely on: a `net_iov`
//! finds its binding, DMA address and dma-buf offset through it) covers a
//! run of `net_iov`s that lie in one segment and one block: a segment that
//! crosses into the next block gets one owner on each side. No genpool is
//! made: the binding's free list hands the `net_iov`s out, and its counts
//! are the leak check when the binding is freed.
//!
//! A block is at most [`BLOCK`] `net_iov`s (4 MiB of 64-byte `net_iov`s),
//! so no allocation grows with the dma-buf's segments, unlike C's
//! per-segment arrays; only the two tables below grow with it, at 24 bytes
//! per block and 8 per owner.

use super::niov::NiovPtr;
use super::niov_size::NiovSize;
use crate::abstractions::alloc::{kbox_new_on, kvvec_with_capacity_on};
use crate::abstractions::net::page_pool::netmem_dma_addr_field;
use core::ptr::NonNull;
use kernel::{
    alloc::{KVVec, NumaNode},
    bindings,
    prelude::*,
};

/// log2 of the number of `net_iov`s in a block.
const BLOCK_SHIFT: u32 = 16;
/// The number of `net_iov`s in a full block.
pub(crate) const BLOCK: usize = 1 << BLOCK_SHIFT;

/// The most `net_iov`s a binding may have: the free list names them with
/// 32-bit indices (16 TiB of 4 KiB `net_iov`s).
pub(crate) const MAX_NIOVS: usize = u32::MAX as usize + 1;

/// One block of `net_iov`s.
///
/// # Invariants
///
/// `ptr` is a `KVmalloc` allocation of exactly `cap` `net_iov`s owned by
/// this value, of which the first `len` (at most `cap`) are initialised; it
/// never moves.
struct Block {
    ptr: NonNull<bindings::net_iov>,
    len: usize,
    cap: usize,
}

// SAFETY: a block owns its allocation alone, plain memory with no tie to a
// thread, which may be freed from any thread in process context.
unsafe impl Send for Block {}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: by the type invariant, the allocation of `cap` elements
        // with `len` initialised is ours; `net_iov` needs no drop, so this
        // only frees it.
        drop(unsafe { KVVec::from_raw_parts(self.ptr.as_ptr(), self.len, self.cap) });
    }
}

/// One chunk owner.
///
/// # Invariants
///
/// `self.0` comes from `KBox::leak` and is owned by this value; it is
/// written only before any `net_iov` points to it.
struct Owner(NonNull<bindings::dmabuf_genpool_chunk_owner>);

// SAFETY: as for `Block`: an owner is a `kmalloc`ed object owned alone,
// tied to no thread.
unsafe impl Send for Owner {}

impl Drop for Owner {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the box is ours, given up once, here.
        drop(unsafe { KBox::from_raw(self.0.as_ptr()) });
    }
}

/// The `net_iov`s of one binding, numbered in dma-buf order, and their
/// chunk owners.
///
/// # Invariants
///
/// Every block but the last has `cap == len == BLOCK`, so the `n`th
/// `net_iov` is `n % BLOCK` in block `n / BLOCK`; `len` is the sum of the
/// blocks' lengths, at most `cap`. Every initialised `net_iov` is a dma-buf
/// `net_iov` whose `owner` is the area of one of `owners`, which covers it,
/// and whose `base_virtual` is the first covered `net_iov`'s number times
/// the `net_iov` size (its offset in the dma-buf).
pub(crate) struct Arena {
    blocks: KVVec<Block>,
    owners: KVVec<Owner>,
    /// The `net_iov`s carved so far.
    len: usize,
    /// The `net_iov`s there is room for.
    cap: usize,
    /// The node the blocks and owners are allocated on.
    nid: NumaNode,
}

impl Arena {
    /// An arena with nothing in it (a binding that carved nothing yet).
    pub(crate) fn new() -> Self {
        Self {
            blocks: KVVec::new(),
            owners: KVVec::new(),
            len: 0,
            cap: 0,
            nid: NumaNode::NO_NODE,
        }
    }

    /// An arena with room for `niovs` `net_iov`s in `segments` DMA
    /// segments, on node `nid`. The blocks are allocated as the segments are
    /// carved; the tables here, so that carving never grows them.
    pub(crate) fn with_room(niovs: usize, segments: usize, nid: NumaNode) -> Result<Self> {
        if niovs > MAX_NIOVS {
            return Err(EINVAL);
        }
        let blocks = niovs.div_ceil(BLOCK);
        // Each block boundary splits at most one segment in two.
        let owners = segments.checked_add(blocks).ok_or(ENOMEM)?;
        Ok(Self {
            blocks: kvvec_with_capacity_on(blocks, GFP_KERNEL, nid)?,
            owners: kvvec_with_capacity_on(owners, GFP_KERNEL, nid)?,
            len: 0,
            cap: niovs,
            nid,
        })
    }

    /// How many `net_iov`s were carved.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The block the next `net_iov` goes in, allocated if the last one is
    /// full.
    fn open_block(&mut self) -> Result<&mut Block> {
        let full = self.blocks.last().is_none_or(|b| b.len == b.cap);
        if full {
            let cap = BLOCK.min(self.cap - self.len);
            if cap == 0 {
                return Err(EINVAL);
            }
            let v = kvvec_with_capacity_on::<bindings::net_iov>(cap, GFP_KERNEL, self.nid)?;
            // `Block` frees the allocation with `cap` as its capacity: refuse
            // one of another size rather than rely on it.
            if v.capacity() != cap {
                return Err(ENOMEM);
            }
            let (ptr, _, _) = v.into_raw_parts();
            let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
            // INVARIANT: a fresh allocation of `cap` `net_iov`s, none written.
            let block = Block { ptr, len: 0, cap };
            // INVARIANT: the block before is full, so `BLOCK` long (a block
            // shorter than `BLOCK` takes every `net_iov` left, so is the
            // last); the table has room for every block (`with_room`).
            self.blocks
                .push_within_capacity(block)
                .map_err(|_| EINVAL)?;
        }
        self.blocks.last_mut().ok_or(EINVAL)
    }

    /// Carves the next DMA segment of the dma-buf, `len` bytes at `dma`,
    /// into `net_iov`s of `size`, each initialised as a dma-buf `net_iov`
    /// with its DMA address, owned by chunk owners that name `binding`.
    /// Segments are carved in dma-buf order, so the segment starts where
    /// the `net_iov`s carved so far end; a length that is not a multiple of
    /// `size`, or more `net_iov`s than there is room for, is refused with
    /// `EINVAL`.
    ///
    /// # Safety
    ///
    /// `binding` must be the binding that will own this arena, and outlive
    /// it unless the arena is leaked: the chunk owners point to it, and
    /// `net_iov`s find their binding that way.
    pub(crate) unsafe fn carve(
        &mut self,
        binding: *mut bindings::net_devmem_dmabuf_binding,
        dma: bindings::dma_addr_t,
        len: usize,
        size: NiovSize,
    ) -> Result {
        let count = len >> size.shift();
        if len & (size.bytes() - 1) != 0 || count > self.cap - self.len {
            return Err(EINVAL);
        }
        let nid = self.nid;
        let mut done = 0;
        while done < count {
            let block = self.open_block()?;
            let n = (count - done).min(block.cap - block.len);
            // SAFETY: `block.len < block.cap` (the block is open), within the
            // allocation.
            let first = unsafe { block.ptr.as_ptr().add(block.len) };
            let off = (done as bindings::dma_addr_t) << size.shift();
            // On the device's node, as C's `kzalloc_node()`; the fields are
            // set below, before any `net_iov` points to the owner.
            let zeroed: bindings::dmabuf_genpool_chunk_owner = pin_init::zeroed();
            let mut owner = kbox_new_on(zeroed, GFP_KERNEL, nid)?;
            owner.area.niovs = first;
            owner.area.num_niovs = n;
            // The first covered `net_iov`'s offset in the dma-buf: every
            // segment before was a multiple of `size` long.
            owner.area.base_virtual = (self.len + done) << size.shift();
            owner.binding = binding;
            owner.base_dma_addr = dma + off;
            let owner = NonNull::from(KBox::leak(owner));
            // SAFETY: `owner` points to the live box just leaked, so the
            // field is in bounds; the pointer is taken from the one the
            // `Owner` keeps, so both stay valid.
            let area = unsafe { &raw mut (*owner.as_ptr()).area };
            // INVARIANT: the box is ours (`Owner` frees it), and no longer
            // written.
            let owner = Owner(owner);
            // The table has room for every owner (`with_room`): one per
            // segment, plus one per block boundary.
            self.owners
                .push_within_capacity(owner)
                .map_err(|_| EINVAL)?;

            // Each `net_iov` written whole, once, its DMA address with it: a
            // large dma-buf has millions, and bind time is spent here.
            for i in 0..n {
                let mut desc: bindings::netmem_desc = pin_init::zeroed();
                desc.dma_addr = netmem_dma_addr_field(
                    dma + off + ((i as bindings::dma_addr_t) << size.shift()),
                );
                // SAFETY: `block.len + i < block.cap` (`n` is at most the
                // room left), so within the allocation; each element is
                // written once, whole, before the block's length covers it;
                // the owner's area, which it points to, lives as long as the
                // arena.
                unsafe {
                    first.add(i).write(bindings::net_iov {
                        desc,
                        type_: bindings::net_iov_type_NET_IOV_DMABUF,
                        owner: area,
                    })
                };
            }
            // `open_block` returned the last block; it is still the last.
            let block = self.blocks.last_mut().ok_or(EINVAL)?;
            // INVARIANT: the `n` `net_iov`s after the old length were just
            // written, their owner, which starts at the old `len`, is in
            // `owners`, and `n` is at most the room in the block.
            block.len += n;
            self.len += n;
            done += n;
        }
        Ok(())
    }

    /// The `n`th `net_iov`, in dma-buf order; `None` past the last carved.
    pub(crate) fn get(&self, n: usize) -> Option<NiovPtr> {
        let block = self.blocks.get(n >> BLOCK_SHIFT)?;
        let i = n & (BLOCK - 1);
        if i >= block.len {
            return None;
        }
        // SAFETY: `i < block.len`, an initialised element of the allocation.
        let p = unsafe { block.ptr.as_ptr().add(i) };
        NonNull::new(p).map(NiovPtr::new)
    }

    /// Leaks the blocks and the chunk owners, for a binding freed while
    /// some of its `net_iov`s are still out: their holders may still read
    /// them and their owners. The tables that listed them are freed.
    pub(crate) fn leak(mut self) {
        while let Some(block) = self.blocks.pop() {
            core::mem::forget(block);
        }
        while let Some(owner) = self.owners.pop() {
            core::mem::forget(owner);
        }
    }
}
