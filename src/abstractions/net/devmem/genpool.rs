// SPDX-License-Identifier: GPL-2.0

//! The genpool of a binding: one chunk per DMA segment of the dma-buf, each
//! with an owner (`struct dmabuf_genpool_chunk_owner`) that holds the
//! segment's `net_iov`s. The layout is C's, which `devmem.h` readers rely
//! on; the `net_iov`s are handed out by the binding's free list
//! ([`super::freelist`]), not by the genpool's bitmap.
//!
//! C header: [`include/linux/genalloc.h`](srctree/include/linux/genalloc.h)

use super::niov_size::NiovSize;
use crate::abstractions::alloc::{kbox_new_on, node};
use core::{mem::ManuallyDrop, ptr::NonNull};
use kernel::{alloc::KVVec, bindings, prelude::*};

/// A binding's genpool.
///
/// # Invariants
///
/// `self.0` is a genpool this object owns, whose chunks were all added by
/// [`ChunkPool::add_chunk`].
pub(crate) struct ChunkPool(NonNull<bindings::gen_pool>);

impl ChunkPool {
    /// Creates an empty pool of granules of `size`.
    pub(crate) fn new(nid: c_int, size: NiovSize) -> Result<Self> {
        // SAFETY: `gen_pool_create` only allocates (any order and node are
        // accepted); the pool it returns is ours.
        let pool = unsafe { bindings::gen_pool_create(size.shift() as c_int, nid) };
        // INVARIANT: the new pool is ours and empty.
        NonNull::new(pool).map(Self).ok_or(ENOMEM)
    }

    fn as_raw(&self) -> *mut bindings::gen_pool {
        self.0.as_ptr()
    }

    /// Adds a DMA segment as a chunk of `len / size` `net_iov`s, each
    /// initialised as a dma-buf `net_iov` with its DMA address.
    ///
    /// `virt` is the segment's offset in the dma-buf. Returns the chunk's
    /// `net_iov`s in order; they live until the pool is dropped.
    ///
    /// # Safety
    ///
    /// `binding` must be the binding that will own this pool, and outlive
    /// it: the chunk owners point to it, and `net_iov`s find their binding
    /// that way.
    pub(crate) unsafe fn add_chunk(
        &self,
        binding: *mut bindings::net_devmem_dmabuf_binding,
        dma: bindings::dma_addr_t,
        len: usize,
        virt: usize,
        nid: c_int,
        size: NiovSize,
    ) -> Result<impl Iterator<Item = *mut bindings::net_iov> + Clone> {
        let count = len >> size.shift();
        let mut niovs = KVVec::<bindings::net_iov>::with_capacity(count, GFP_KERNEL)?;
        // `free_owner` rebuilds the array with `num_niovs` as its capacity:
        // refuse an allocation of another size rather than rely on it.
        if niovs.capacity() != count {
            return Err(ENOMEM);
        }
        let ptr = niovs.as_mut_ptr();
        // On the device's node, as C's `kzalloc_node()`; the fields are set
        // below.
        let zeroed: bindings::dmabuf_genpool_chunk_owner = pin_init::zeroed();
        let mut owner = kbox_new_on(zeroed, GFP_KERNEL, node(nid))?;
        owner.area.niovs = ptr;
        owner.area.num_niovs = count;
        owner.area.base_virtual = virt;
        owner.binding = binding;
        owner.base_dma_addr = dma;
        let area = &raw mut owner.area;

        // Each `net_iov` written whole, once: a large dma-buf has hundreds of
        // thousands, and bind time is spent here.
        for i in 0..count {
            // SAFETY: `i < count`, within the capacity `ptr` points to, and
            // each element is written once, whole; the owner's area, which
            // the `net_iov` points to, outlives it.
            unsafe {
                let niov = ptr.add(i);
                niov.write(bindings::net_iov {
                    desc: pin_init::zeroed(),
                    type_: bindings::net_iov_type_NET_IOV_DMABUF,
                    owner: area,
                });
                bindings::net_mp_niov_set_dma_addr(
                    niov,
                    dma + ((i as bindings::dma_addr_t) << size.shift()),
                );
            }
        }
        // The array's length is its capacity, all initialised: the free path
        // rebuilds it from the count.
        // SAFETY: the first `count` elements were just written.
        unsafe { niovs.inc_len(count) };
        // Its capacity is `count` (checked above).
        let _ = niovs.into_raw_parts();
        let owner = KBox::into_raw(owner);

        // SAFETY: the pool is alive; `owner` stays valid until the chunk is
        // freed with the pool.
        let err = unsafe {
            bindings::gen_pool_add_owner(self.as_raw(), dma as usize, dma, len, nid, owner.cast())
        };
        if err != 0 {
            // SAFETY: the chunk was not added, so the owner is still ours.
            unsafe { free_owner(owner) };
            // `gen_pool_add_owner` fails only to allocate the chunk: its
            // `-ENOMEM` goes to user space as it is.
            return Err(Error::from_errno(err));
        }

        // The chunk's `net_iov`s, initialised above; they live as long as
        // the pool.
        Ok((0..count).map(move |i| ptr.wrapping_add(i)))
    }

    /// Total size of the pool's chunks, in bytes.
    pub(crate) fn size(&self) -> usize {
        // SAFETY: the pool is alive while `self` owns it (type invariant).
        unsafe { bindings::gen_pool_size(self.as_raw()) }
    }
}

/// Frees a chunk owner and its `net_iov` array.
///
/// # Safety
///
/// `owner` must come from [`ChunkPool::add_chunk`] and not be used afterwards.
unsafe fn free_owner(owner: *mut bindings::dmabuf_genpool_chunk_owner) {
    // SAFETY: `owner` and its `net_iov` array come from `add_chunk`, and no
    // one uses them again (caller); `add_chunk` made the array with
    // `num_niovs` as both its length and its capacity (it checks the
    // capacity), all initialised.
    unsafe {
        let area = &(*owner).area;
        drop(KVVec::from_raw_parts(
            area.niovs,
            area.num_niovs,
            area.num_niovs,
        ));
        drop(KBox::from_raw(owner));
    }
}

/// `gen_pool_for_each_chunk` callback linking each chunk's owner, through
/// its `free_node`, on the list whose head `owners` points to.
///
/// The owners are freed after the walk, not here: the walk holds
/// `rcu_read_lock()`, and a `net_iov` array that `kvmalloc` took from
/// vmalloc is freed with `vfree()`, which may sleep.
///
/// # Safety
///
/// `chunk` must be a chunk of a pool whose chunks were all added by
/// [`ChunkPool::add_chunk`], its owner not yet freed nor linked; `owners`
/// must point to a valid `*mut llist_node` list head (null when empty) that
/// nothing else uses during the call.
unsafe extern "C" fn collect_chunk_owner(
    _pool: *mut bindings::gen_pool,
    chunk: *mut bindings::gen_pool_chunk,
    owners: *mut c_void,
) {
    let head = owners.cast::<*mut bindings::llist_node>();
    // SAFETY: the chunk's owner comes from `add_chunk` and is alive, not yet
    // linked (caller); `head` points to a valid list head nothing else uses
    // (caller), so reading and replacing it races with nothing.
    unsafe {
        let owner: *mut bindings::dmabuf_genpool_chunk_owner = (*chunk).owner.cast();
        (*owner).free_node.next = *head;
        *head = &raw mut (*owner).free_node;
    }
}

impl ChunkPool {
    /// Gives the pool away, to be taken back with [`ChunkPool::from_raw`].
    pub(crate) fn into_raw(self) -> *mut bindings::gen_pool {
        ManuallyDrop::new(self).as_raw()
    }

    /// Takes back a pool given away with [`ChunkPool::into_raw`].
    ///
    /// # Safety
    ///
    /// `pool` must come from [`ChunkPool::into_raw`] and not have been
    /// taken back yet.
    pub(crate) unsafe fn from_raw(pool: NonNull<bindings::gen_pool>) -> Self {
        // INVARIANT: the caller passes back the ownership `into_raw` gave up.
        Self(pool)
    }
}

impl ChunkPool {
    /// Frees the chunk owners, then the pool, given how many of its bytes
    /// are free (the binding keeps its free `net_iov`s itself). If some are
    /// still in use, the pool is leaked with a warning, as C does, and so
    /// are its chunk owners: a `net_iov` still out lives in its owner's
    /// array, and whoever holds it may still read it and its owner. The
    /// owner's `binding` is not kept: the caller frees the binding after
    /// this, as C's free path does, so giving such a `net_iov` back would
    /// still reach a freed binding (a leak is already a bug that warned).
    pub(crate) fn destroy(self, avail: usize) {
        let size = self.size();
        if size != avail {
            pr_warn!("can't destroy genpool. size={size}, avail={avail}\n");
            kernel::warn_on!(true);
            core::mem::forget(self);
        }
        // Otherwise dropping `self` frees the chunk owners and the pool.
    }
}

impl Drop for ChunkPool {
    /// Frees the chunk owners and the pool. Only reached with every
    /// `net_iov` of the pool free: a pool dropped before its binding was
    /// published (a failed bind) handed none out, and
    /// [`ChunkPool::destroy`] leaks a pool whose `net_iov`s are not all
    /// back.
    fn drop(&mut self) {
        // The owners, linked through their `free_node`; empty (null) at first.
        let mut owners: *mut bindings::llist_node = core::ptr::null_mut();
        // SAFETY: the pool is ours (type invariant) and all its chunks have
        // owners from `add_chunk`, none freed or linked yet; the walk visits
        // each chunk once; `owners` is a valid `*mut llist_node` head of this
        // frame that nothing but this walk uses.
        unsafe {
            bindings::gen_pool_for_each_chunk(
                self.as_raw(),
                Some(collect_chunk_owner),
                (&raw mut owners).cast(),
            )
        };
        while !owners.is_null() {
            // SAFETY: every node on the list is the `free_node` field of a
            // live chunk owner from `add_chunk` (linked by the walk above), so
            // stepping back by the field's offset stays within that owner's
            // allocation and gives the owner.
            let owner = unsafe {
                kernel::container_of!(owners, bindings::dmabuf_genpool_chunk_owner, free_node)
            };
            // SAFETY: `owners` is a live node (above); read before its owner
            // is freed.
            owners = unsafe { (*owners).next };
            // SAFETY: the owner comes from `add_chunk` and is freed once,
            // outside the RCU walk; every `net_iov` in it is free (above), so
            // no one holds one any more, and the pool that names it is
            // destroyed next without reading it.
            unsafe { free_owner(owner) };
        }
        // SAFETY: the pool is ours and is not used after this; nothing was
        // ever allocated from its bitmap (the binding's free list hands out
        // the `net_iov`s), so it has no outstanding allocation.
        unsafe { bindings::gen_pool_destroy(self.as_raw()) };
    }
}
