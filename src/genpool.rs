// SPDX-License-Identifier: GPL-2.0

//! The genpool of a binding: one chunk per DMA segment of the dma-buf, each
//! with an owner (`struct dmabuf_genpool_chunk_owner`) that holds the
//! segment's `net_iov`s, handed out a page at a time.
//!
//! C header: [`include/linux/genalloc.h`](srctree/include/linux/genalloc.h)

use crate::abstractions::alloc::{kbox_new_on, node};
use crate::netmem::{NetIov, OwnedNetIov, NIOV_SIZE};
use core::ptr::NonNull;
use kernel::{alloc::KVVec, bindings, prelude::*, types::Opaque};

/// A binding's genpool, borrowed.
#[repr(transparent)]
pub(crate) struct ChunkPool(Opaque<bindings::gen_pool>);

impl ChunkPool {
    /// Wraps a genpool pointer.
    ///
    /// # Safety
    ///
    /// `pool` must be a genpool made by [`OwnedChunkPool::new`], alive for `'a`.
    pub(crate) unsafe fn from_raw<'a>(pool: *mut bindings::gen_pool) -> &'a Self {
        // SAFETY: transparent wrapper over `Opaque<gen_pool>`; the caller
        // guarantees liveness.
        unsafe { &*pool.cast() }
    }

    fn as_raw(&self) -> *mut bindings::gen_pool {
        self.0.get()
    }

    /// Adds a DMA segment as a chunk of `len / PAGE_SIZE` `net_iov`s, each
    /// initialised as a dma-buf `net_iov` with its DMA address.
    ///
    /// `virt` is the segment's offset in the dma-buf. Returns the chunk's
    /// `net_iov`s in order; they live until the pool is dropped.
    ///
    /// # Safety
    ///
    /// `binding` must be the binding that owns this pool (and frees it): the
    /// chunk owners point to it, and `net_iov`s find their binding that way.
    pub(crate) unsafe fn add_chunk(
        &self,
        binding: *mut bindings::net_devmem_dmabuf_binding,
        dma: bindings::dma_addr_t,
        len: usize,
        virt: usize,
        nid: c_int,
    ) -> Result<impl Iterator<Item = *mut bindings::net_iov>> {
        let count = len / NIOV_SIZE;
        let mut niovs = KVVec::<bindings::net_iov>::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            // SAFETY: `net_iov` is a C structure for which all-zero is valid.
            niovs.push(unsafe { core::mem::zeroed() }, GFP_KERNEL)?;
        }
        // SAFETY: all-zero is a valid chunk owner; its fields are set below.
        let zeroed: bindings::dmabuf_genpool_chunk_owner = unsafe { core::mem::zeroed() };
        // On the device's node, as C's `kzalloc_node()`.
        let mut owner = kbox_new_on(zeroed, GFP_KERNEL, node(nid))?;
        let (ptr, len_niovs, cap) = niovs.into_raw_parts();
        // The array's length is its capacity: the free path relies on it.
        debug_assert_eq!(len_niovs, cap);
        owner.area.niovs = ptr;
        owner.area.num_niovs = count;
        owner.area.base_virtual = virt;
        owner.binding = binding;
        owner.base_dma_addr = dma;
        let owner = KBox::into_raw(owner);

        // SAFETY: the pool is alive; `owner` stays valid until the chunk is
        // freed with the pool.
        let err = unsafe {
            bindings::gen_pool_add_owner(self.as_raw(), dma as usize, dma, len, nid, owner.cast())
        };
        if err != 0 {
            // SAFETY: the chunk was not added, so the owner is still ours.
            unsafe { free_owner(owner) };
            return Err(EINVAL);
        }

        for i in 0..count {
            // SAFETY: `i < count`, the length of the array `ptr` points to;
            // the owner's area outlives its `net_iov`s.
            unsafe {
                let niov = ptr.add(i);
                (*niov).owner = &raw mut (*owner).area;
                (*niov).type_ = bindings::net_iov_type_NET_IOV_DMABUF;
                bindings::net_mp_niov_set_dma_addr(
                    niov,
                    dma + (i * NIOV_SIZE) as bindings::dma_addr_t,
                );
            }
        }
        // The chunk's `net_iov`s, initialised above; they live as long as
        // the pool.
        Ok((0..count).map(move |i| ptr.wrapping_add(i)))
    }

    /// Takes a free `net_iov`, or `None` if all are in use. Its page_pool
    /// state is cleared: it is about to be handed to a page pool.
    pub(crate) fn alloc(&self) -> Option<OwnedNetIov<'_>> {
        let mut owner: *mut c_void = core::ptr::null_mut();
        // SAFETY: the pool is alive; `owner` receives the chunk's owner.
        let dma = unsafe { bindings::gen_pool_alloc_owner(self.as_raw(), NIOV_SIZE, &mut owner) };
        if dma == 0 {
            return None;
        }
        let owner = owner.cast::<bindings::dmabuf_genpool_chunk_owner>();
        // SAFETY: every chunk was added with an owner whose area covers it, so
        // the page index lies within `niovs`, which lives as long as the
        // pool; the range was just allocated, so it is ours alone.
        unsafe {
            let index = (dma as bindings::dma_addr_t - (*owner).base_dma_addr) as usize / NIOV_SIZE;
            let niov = NetIov::from_raw((*owner).area.niovs.add(index))?;
            let niov = OwnedNetIov::from_allocation(niov);
            niov.reset_pp_state();
            Some(niov)
        }
    }

    /// Returns `niov` to the pool. A `net_iov` the pool does not know is
    /// warned about and left alone, as C does.
    pub(crate) fn free(&self, niov: OwnedNetIov<'_>) {
        let dma = niov.dma_addr();
        // SAFETY: the pool is alive.
        let known = unsafe { bindings::gen_pool_has_addr(self.as_raw(), dma as usize, NIOV_SIZE) };
        if kernel::warn_on!(!known) {
            return;
        }
        // SAFETY: the range was allocated from this pool, and `niov` owned
        // that allocation: it is given up here.
        unsafe {
            bindings::gen_pool_free_owner(
                self.as_raw(),
                dma as usize,
                NIOV_SIZE,
                core::ptr::null_mut(),
            )
        };
    }

    /// Total size of the pool's chunks, in bytes.
    pub(crate) fn size(&self) -> usize {
        // SAFETY: the pool is alive.
        unsafe { bindings::gen_pool_size(self.as_raw()) }
    }

    /// Free bytes in the pool.
    pub(crate) fn avail(&self) -> usize {
        // SAFETY: the pool is alive.
        unsafe { bindings::gen_pool_avail(self.as_raw()) }
    }
}

/// Frees a chunk owner and its `net_iov` array.
///
/// # Safety
///
/// `owner` must come from [`ChunkPool::add_chunk`] and not be used afterwards.
unsafe fn free_owner(owner: *mut bindings::dmabuf_genpool_chunk_owner) {
    // SAFETY: per the function's contract both allocations are ours; the
    // array's length equals its capacity.
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

/// `gen_pool_for_each_chunk` callback freeing each chunk's owner.
///
/// # Safety
///
/// Only passed to `gen_pool_for_each_chunk` on a pool whose chunks were all
/// added by [`ChunkPool::add_chunk`], right before the pool goes away.
unsafe extern "C" fn free_chunk_owner(
    _pool: *mut bindings::gen_pool,
    chunk: *mut bindings::gen_pool_chunk,
    _data: *mut c_void,
) {
    // SAFETY: called by `gen_pool_for_each_chunk` for each chunk of a pool
    // made here, whose owners all come from `add_chunk`.
    unsafe { free_owner((*chunk).owner.cast()) };
}

/// A binding's genpool, owned.
///
/// # Invariants
///
/// `self.0` is a genpool this object owns, whose chunks were all added by
/// [`ChunkPool::add_chunk`].
pub(crate) struct OwnedChunkPool(NonNull<bindings::gen_pool>);

impl OwnedChunkPool {
    /// Creates an empty pool of page-sized granules.
    pub(crate) fn new(nid: c_int) -> Result<Self> {
        // SAFETY: plain allocation.
        let pool = unsafe { bindings::gen_pool_create(kernel::page::PAGE_SHIFT as c_int, nid) };
        // INVARIANT: the new pool is ours and empty.
        NonNull::new(pool).map(Self).ok_or(ENOMEM)
    }

    /// Gives the pool away, to be taken back with [`OwnedChunkPool::from_raw`].
    pub(crate) fn into_raw(self) -> *mut bindings::gen_pool {
        let pool = self.0.as_ptr();
        core::mem::forget(self);
        pool
    }

    /// Takes back a pool given away with [`OwnedChunkPool::into_raw`].
    ///
    /// # Safety
    ///
    /// `pool` must come from [`OwnedChunkPool::into_raw`] and not have been
    /// taken back yet.
    pub(crate) unsafe fn from_raw(pool: NonNull<bindings::gen_pool>) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self(pool)
    }
}

impl core::ops::Deref for OwnedChunkPool {
    type Target = ChunkPool;

    fn deref(&self) -> &ChunkPool {
        // SAFETY: the pool is alive while `self` is.
        unsafe { ChunkPool::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedChunkPool {
    /// Frees the chunk owners, then the pool, unless `net_iov`s are still
    /// allocated: `gen_pool_destroy` would hit a BUG_ON, so the pool is warned
    /// about and leaked instead.
    fn drop(&mut self) {
        // SAFETY: the pool is ours and all its chunks have owners from
        // `add_chunk` (type invariant).
        unsafe {
            bindings::gen_pool_for_each_chunk(
                self.0.as_ptr(),
                Some(free_chunk_owner),
                core::ptr::null_mut(),
            )
        };
        let (size, avail) = (self.size(), self.avail());
        if size != avail {
            pr_warn!("devmem: can't destroy genpool. size={size}, avail={avail}\n");
            kernel::warn_on!(true);
            return;
        }
        // SAFETY: the pool is ours and has no outstanding allocation.
        unsafe { bindings::gen_pool_destroy(self.0.as_ptr()) };
    }
}
