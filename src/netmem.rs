// SPDX-License-Identifier: GPL-2.0

//! Accessors for `net_iov`s and page pools.
//!
//! TCP changes a `net_iov`'s `pp_ref_count` concurrently (`tcp_recvmsg_dmabuf`
//! increments it directly), so no `&` or `&mut` to a `net_iov` is ever formed:
//! [`NetIov`] is a copyable pointer and every access is a raw one.
//!
//! C headers: [`include/net/netmem.h`](srctree/include/net/netmem.h),
//! [`include/net/page_pool/memory_provider.h`](srctree/include/net/page_pool/memory_provider.h)

use crate::binding::Binding;
use core::ptr::NonNull;
use kernel::{
    bindings,
    sync::atomic::{Atomic, Relaxed},
    types::Opaque,
};

/// Size of a `net_iov`'s memory: devmem hands out whole pages only.
pub(crate) const NIOV_SIZE: usize = kernel::page::PAGE_SIZE;

/// One page of a binding's dma-buf.
///
/// # Invariants
///
/// Points into the `niovs` array of a `dmabuf_genpool_chunk_owner` whose
/// binding is alive for as long as the holder of this value may use it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetIov(NonNull<bindings::net_iov>);

impl NetIov {
    /// Wraps a `net_iov` pointer.
    ///
    /// # Safety
    ///
    /// `niov` must point into the `niovs` array of a chunk owner of a binding
    /// made by this provider, alive while the result is used.
    pub(crate) unsafe fn from_raw(niov: *mut bindings::net_iov) -> Option<Self> {
        // INVARIANT: guaranteed by the caller.
        NonNull::new(niov).map(Self)
    }

    /// The `net_iov` behind a netmem reference, if it is one.
    ///
    /// # Safety
    ///
    /// `netmem` must be a netmem reference; if it is a `net_iov`, it must be
    /// one of this provider's, as [`NetIov::from_raw`] requires.
    pub(crate) unsafe fn from_netmem(netmem: bindings::netmem_ref) -> Option<Self> {
        // SAFETY: any netmem reference may be tested and converted.
        unsafe {
            if !bindings::netmem_is_net_iov(netmem) {
                return None;
            }
            Self::from_raw(bindings::netmem_to_net_iov(netmem))
        }
    }

    /// The raw pointer.
    pub(crate) fn as_raw(self) -> *mut bindings::net_iov {
        self.0.as_ptr()
    }

    /// The netmem reference page_pool uses for it.
    pub(crate) fn to_netmem(self) -> bindings::netmem_ref {
        // SAFETY: `self.0` is a valid `net_iov` by the type invariant.
        unsafe { bindings::net_iov_to_netmem(self.as_raw()) }
    }

    /// The chunk owner whose area holds this `net_iov`.
    pub(crate) fn chunk_owner(self) -> *mut bindings::dmabuf_genpool_chunk_owner {
        // SAFETY: by the type invariant `owner` points to the `area` embedded
        // in a live chunk owner, so stepping back to the container is valid.
        unsafe {
            let area = (*self.as_raw()).owner;
            kernel::container_of!(area, bindings::dmabuf_genpool_chunk_owner, area)
        }
    }

    /// The binding this `net_iov` belongs to, alive as long as the
    /// `net_iov` is (type invariant).
    pub(crate) fn binding(self) -> &'static Binding {
        // SAFETY: the chunk owner is alive by the type invariant and points to
        // its published binding, which outlives its `net_iov`s.
        unsafe { Binding::from_raw((*self.chunk_owner()).binding) }
    }

    /// Index of this `net_iov` in its chunk.
    pub(crate) fn index(self) -> usize {
        // SAFETY: by the type invariant `self` lies in the `niovs` array of its
        // owner's area, so both pointers are in one allocation.
        unsafe {
            let base = (*self.chunk_owner()).area.niovs;
            self.as_raw().offset_from(base) as usize
        }
    }

    /// The DMA address of this page of the dma-buf.
    pub(crate) fn dma_addr(self) -> bindings::dma_addr_t {
        // SAFETY: the chunk owner is alive by the type invariant.
        let base = unsafe { (*self.chunk_owner()).base_dma_addr };
        base + (self.index() * NIOV_SIZE) as bindings::dma_addr_t
    }

    /// Clears the page_pool state a previous owner may have left: the
    /// `net_iov` is about to be handed to a page pool.
    pub(crate) fn reset_pp_state(self) {
        let niov = self.as_raw();
        // SAFETY: the `net_iov` is alive by the type invariant and was just
        // taken from the genpool, so nobody else accesses it.
        unsafe {
            (*niov).desc.pp_magic = 0;
            (*niov).desc.pp = core::ptr::null_mut();
            (*niov).desc.pp_ref_count.counter = 0;
        }
    }

    /// The page_pool reference count, read once.
    pub(crate) fn pp_ref_count(self) -> i64 {
        // SAFETY: the counter is a live `atomic_long_t` by the type invariant;
        // it is only ever accessed atomically.
        let count =
            unsafe { Atomic::<i64>::from_ptr(&raw mut (*self.as_raw()).desc.pp_ref_count.counter) };
        count.load(Relaxed)
    }
}

/// A page pool, as seen by its memory provider.
#[repr(transparent)]
pub(crate) struct PagePool(Opaque<bindings::page_pool>);

impl PagePool {
    /// Wraps a page pool pointer passed to a provider callback.
    ///
    /// # Safety
    ///
    /// `pool` must be a live page pool for `'a`.
    pub(crate) unsafe fn from_raw<'a>(pool: *mut bindings::page_pool) -> &'a Self {
        // SAFETY: `PagePool` is a transparent wrapper of `Opaque<page_pool>`,
        // which has the layout of `page_pool`; the caller guarantees liveness.
        unsafe { &*pool.cast() }
    }

    fn as_raw(&self) -> *mut bindings::page_pool {
        self.0.get()
    }

    /// The binding the pool was created for (its `mp_priv`), if any.
    pub(crate) fn binding(&self) -> Option<&Binding> {
        // SAFETY: the pool is alive; `mp_priv` is set before the provider's
        // `init` and never changes afterwards.
        let b = unsafe { (*self.as_raw()).mp_priv };
        // SAFETY: a devmem pool's `mp_priv` is a published binding, kept alive
        // by the reference `init` takes until `destroy` drops it.
        (!b.is_null()).then(|| unsafe { Binding::from_raw(b.cast()) })
    }

    /// The allocation order the driver asked for.
    pub(crate) fn order(&self) -> u32 {
        // SAFETY: the pool is alive; its parameters are constant.
        unsafe { (*self.as_raw()).p.order }
    }

    /// Turns off DMA syncs: dma-buf addresses must not be synced by the pool.
    ///
    /// Only called from the provider's `init`, before the pool is in use.
    pub(crate) fn disable_dma_sync(&self) {
        // SAFETY: the pool is alive and, during `init`, not yet shared, so the
        // bitfield update races with nobody.
        unsafe {
            (*self.as_raw()).set_dma_sync(false);
            (*self.as_raw()).set_dma_sync_for_cpu(false);
        }
    }

    /// Hands `niov` to this pool: sets its pool info and counts it as held
    /// (with the `page_pool_state_hold` trace point).
    pub(crate) fn adopt(&self, niov: NetIov) {
        // SAFETY: the pool is alive and `niov` is a valid, unowned `net_iov`.
        unsafe { bindings::net_mp_niov_set_page_pool(self.as_raw(), niov.as_raw()) };
    }
}

/// Takes `niov` back from its page pool (clears its pool info).
pub(crate) fn disown(niov: NetIov) {
    // SAFETY: `niov` is valid by its type invariant; called from the
    // provider's release path, where the pool gives it up.
    unsafe { bindings::net_mp_niov_clear_page_pool(niov.as_raw()) };
}
