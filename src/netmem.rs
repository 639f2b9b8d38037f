// SPDX-License-Identifier: GPL-2.0

//! A binding's `net_iov`s and the page pools they are lent to.
//!
//! TCP changes a `net_iov`'s `pp_ref_count` concurrently (`tcp_recvmsg_dmabuf`
//! increments it directly), so no `&` or `&mut` to a `net_iov` is ever formed:
//! every access is a raw one.
//!
//! Two types carry the rules:
//! - [`NetIov<'a>`] names one page of a binding that is alive for `'a`; it is
//!   `Copy` and gives only what any holder may read.
//! - [`OwnedNetIov<'a>`] is the allocation of that page from the binding's
//!   free list: not `Copy`, made by [`Binding::alloc_niovs`], consumed by
//!   [`Binding::free_niov`] or by handing it to a page pool. Freeing twice or
//!   lending a page to two pools takes `unsafe`.
//!
//! C headers: [`include/net/netmem.h`](srctree/include/net/netmem.h),
//! [`include/net/page_pool/memory_provider.h`](srctree/include/net/page_pool/memory_provider.h)

use crate::binding::Binding;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    sync::atomic::{Atomic, Relaxed},
    types::Opaque,
};

/// The size of a binding's `net_iov`s: a page (every TX binding, and an RX
/// binding by default) or the rx-page-size its RX binding was made with.
///
/// # Invariants
///
/// `PAGE_SHIFT <= self.0 <= PAGE_SHIFT + MAX_PAGE_ORDER`: a whole number of
/// pages that a page pool's order can describe.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct NiovSize(u32);

impl NiovSize {
    /// One page.
    // INVARIANT: `PAGE_SHIFT` is in range.
    pub(crate) const PAGE: Self = Self(bindings::PAGE_SHIFT);

    /// The size `1 << shift`, if it is in range.
    pub(crate) fn from_shift(shift: u32) -> Option<Self> {
        let page = bindings::PAGE_SHIFT;
        // INVARIANT: checked here.
        (page..=page + bindings::MAX_PAGE_ORDER)
            .contains(&shift)
            .then_some(Self(shift))
    }

    /// log2 of the size.
    pub(crate) fn shift(self) -> u32 {
        self.0
    }

    /// The size in bytes.
    pub(crate) fn bytes(self) -> usize {
        1 << self.0
    }

    /// The page pool order of buffers of this size.
    pub(crate) fn order(self) -> u32 {
        self.0 - bindings::PAGE_SHIFT
    }
}

/// One page of a binding's dma-buf.
///
/// # Invariants
///
/// Points into the `niovs` array of a `dmabuf_genpool_chunk_owner` of a
/// published binding that is alive for `'a`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetIov<'a> {
    ptr: NonNull<bindings::net_iov>,
    _binding: PhantomData<&'a Binding>,
}

impl<'a> NetIov<'a> {
    /// Wraps a `net_iov` pointer.
    ///
    /// # Safety
    ///
    /// `niov` must be null or point into the `niovs` array of a chunk owner
    /// of a binding made by this provider that is alive for `'a`.
    pub(crate) unsafe fn from_raw(niov: *mut bindings::net_iov) -> Option<Self> {
        // INVARIANT: guaranteed by the caller.
        NonNull::new(niov).map(|ptr| Self {
            ptr,
            _binding: PhantomData,
        })
    }

    /// The `net_iov` behind a netmem reference, if it is one.
    ///
    /// # Safety
    ///
    /// `netmem` must be a netmem reference; if it is a `net_iov`, it must be
    /// one of this provider's, as [`NetIov::from_raw`] requires.
    pub(crate) unsafe fn from_netmem(netmem: bindings::netmem_ref) -> Option<Self> {
        // SAFETY: any netmem reference may be tested and converted; the rest
        // is the caller's guarantee.
        unsafe {
            if !bindings::netmem_is_net_iov(netmem) {
                return None;
            }
            Self::from_raw(bindings::netmem_to_net_iov(netmem))
        }
    }

    /// The raw pointer.
    pub(crate) fn as_raw(self) -> *mut bindings::net_iov {
        self.ptr.as_ptr()
    }

    /// The chunk owner whose area holds this `net_iov`.
    fn chunk_owner(self) -> *mut bindings::dmabuf_genpool_chunk_owner {
        // SAFETY: by the type invariant `owner` points to the `area` embedded
        // in a live chunk owner, so stepping back to the container is valid.
        unsafe {
            let area = (*self.as_raw()).owner;
            kernel::container_of!(area, bindings::dmabuf_genpool_chunk_owner, area)
        }
    }

    /// The binding this `net_iov` belongs to.
    pub(crate) fn binding(self) -> &'a Binding {
        // SAFETY: the chunk owner is alive and points to its published
        // binding, alive for `'a` (type invariant).
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

    /// The offset of this `net_iov`'s memory in the dma-buf.
    pub(crate) fn dmabuf_offset(self) -> usize {
        // SAFETY: the chunk owner is alive by the type invariant.
        let base = unsafe { (*self.chunk_owner()).area.base_virtual };
        base + (self.index() << self.binding().niov_size().shift())
    }

    /// Its place among the binding's `net_iovs`, in dma-buf order, given
    /// their size (the caller's binding's, read once per batch: this is on
    /// the alloc and release paths).
    pub(crate) fn slot(self, size: NiovSize) -> usize {
        // Another size gives a wrong slot (no unsafety: the free list checks
        // its bounds), so the release build trusts the callers.
        debug_assert!(size == self.binding().niov_size());
        // SAFETY: the chunk owner is alive by the type invariant.
        let base = unsafe { (*self.chunk_owner()).area.base_virtual };
        // A chunk starts on a `net_iov` boundary (bind checks each segment).
        (base >> size.shift()) + self.index()
    }

    fn pp_ref_count_atomic(self) -> &'a Atomic<i64> {
        // SAFETY: the counter is a live `atomic_long_t` for `'a` by the type
        // invariant, and it is only ever accessed atomically.
        unsafe { Atomic::<i64>::from_ptr(&raw mut (*self.as_raw()).desc.pp_ref_count.counter) }
    }

    /// The page_pool reference count, read once.
    pub(crate) fn pp_ref_count(self) -> i64 {
        self.pp_ref_count_atomic().load(Relaxed)
    }
}

/// A `net_iov` taken from its binding's free list, with that allocation.
///
/// Not `Copy`: the allocation is given up exactly once, to the free list or
/// to a page pool. Dropping the value leaks the page, which is what C does with
/// a `net_iov` found in an unexpected state.
///
/// # Invariants
///
/// `self.0` was taken off its binding's free list, and this value is the
/// only owner of that allocation.
pub(crate) struct OwnedNetIov<'a>(NetIov<'a>);

impl<'a> OwnedNetIov<'a> {
    /// Takes ownership of the allocation of `niov`.
    ///
    /// # Safety
    ///
    /// `niov` must have been taken off its binding's free list, and the
    /// caller must own that allocation and give it up here.
    pub(crate) unsafe fn from_allocation(niov: NetIov<'a>) -> Self {
        // INVARIANT: per the caller.
        Self(niov)
    }

    /// The `net_iov`.
    pub(crate) fn niov(&self) -> NetIov<'a> {
        self.0
    }

    /// The binding this `net_iov` belongs to.
    pub(crate) fn binding(&self) -> &'a Binding {
        self.0.binding()
    }

    /// The page_pool reference count, read once.
    pub(crate) fn pp_ref_count(&self) -> i64 {
        self.0.pp_ref_count()
    }

    /// Clears the page_pool state a previous owner may have left, as C does
    /// on allocation (`pp_ref_count` with `atomic_long_set`).
    pub(crate) fn reset_pp_state(&self) {
        let niov = self.0.as_raw();
        // SAFETY: the `net_iov` is alive (type invariant of `NetIov`) and this
        // value owns its allocation, so no page pool or socket uses it.
        unsafe {
            (*niov).desc.pp_magic = 0;
            (*niov).desc.pp = core::ptr::null_mut();
        }
        self.0.pp_ref_count_atomic().store(0, Relaxed);
    }

    /// Gives up the allocation to a C caller, as a raw pointer.
    pub(crate) fn into_raw(self) -> *mut bindings::net_iov {
        self.0.as_raw()
    }
}

/// A page pool, as seen by its memory provider's callbacks.
#[repr(transparent)]
pub(crate) struct PagePool(Opaque<bindings::page_pool>);

impl PagePool {
    /// Wraps a page pool pointer passed to a provider callback.
    ///
    /// # Safety
    ///
    /// `pool` must be a page pool whose `mp_priv` is a binding made by this
    /// provider, alive for `'a`, on which the pool holds a reference for
    /// `'a` (taken by the provider's `init`), or which is otherwise kept
    /// alive for `'a` (during `init`, by the queue's installation).
    pub(crate) unsafe fn from_raw<'a>(pool: *mut bindings::page_pool) -> &'a Self {
        // SAFETY: `PagePool` is a transparent wrapper of `Opaque<page_pool>`,
        // which has the layout of `page_pool`; the caller guarantees liveness.
        unsafe { &*pool.cast() }
    }

    fn as_raw(&self) -> *mut bindings::page_pool {
        self.0.get()
    }

    /// The binding the pool was created for (its `mp_priv`).
    pub(crate) fn binding(&self) -> Option<&Binding> {
        // SAFETY: the pool is alive; `mp_priv` is set before the provider's
        // `init` and never changes afterwards.
        let b = unsafe { (*self.as_raw()).mp_priv };
        // SAFETY: a devmem pool's `mp_priv` is a published binding, alive as
        // long as the pool (constructor contract).
        (!b.is_null()).then(|| unsafe { Binding::from_raw(b.cast()) })
    }

    /// The allocation order the driver asked for.
    pub(crate) fn order(&self) -> u32 {
        // SAFETY: the pool is alive; its parameters are constant.
        unsafe { (*self.as_raw()).p.order }
    }

    /// Lends `niov` to this pool: sets its pool info and counts it as held
    /// (with the `page_pool_state_hold` trace point). Returns the netmem
    /// reference the pool now owns.
    pub(crate) fn adopt(&self, niov: OwnedNetIov<'_>) -> bindings::netmem_ref {
        let raw = niov.into_raw();
        // SAFETY: the pool is alive, and `niov` was owned, so it is in no
        // other pool; its allocation now belongs to this pool until
        // `release_netmem` gives it back.
        unsafe {
            bindings::net_mp_niov_set_page_pool(self.as_raw(), raw);
            bindings::net_iov_to_netmem(raw)
        }
    }
}

/// A page pool in its provider's `alloc_netmems`, called when the pool's
/// cache is empty: the one place a provider may put buffers in the cache
/// (`net_mp_netmem_place_in_cache`).
pub(crate) struct PagePoolRefill<'a>(&'a PagePool);

impl<'a> PagePoolRefill<'a> {
    /// Wraps the pool `alloc_netmems` is called for.
    ///
    /// # Safety
    ///
    /// As [`PagePool::from_raw`], and the caller is the pool's
    /// `alloc_netmems`, which page_pool calls from the pool's allocation
    /// context: nothing else touches the cache until it returns.
    pub(crate) unsafe fn from_raw(pool: *mut bindings::page_pool) -> Self {
        // SAFETY: per the caller.
        Self(unsafe { PagePool::from_raw(pool) })
    }

    /// How many more buffers the cache takes.
    pub(crate) fn cache_room(&self) -> usize {
        let pool = self.0.as_raw();
        // SAFETY: the pool is alive, and its cache is ours for the call
        // (constructor contract).
        unsafe {
            (*pool)
                .alloc
                .cache
                .len()
                .saturating_sub((*pool).alloc.count as usize)
        }
    }

    /// Lends `niov` to the pool (as [`PagePool::adopt`]) and puts it in the
    /// pool's cache, where the next allocations find it; gives it back
    /// untouched if the cache is full.
    pub(crate) fn adopt_into_cache<'n>(
        &self,
        niov: OwnedNetIov<'n>,
    ) -> Result<(), OwnedNetIov<'n>> {
        if self.cache_room() == 0 {
            return Err(niov);
        }
        let netmem = self.0.adopt(niov);
        // SAFETY: the cache is ours for the call (constructor contract) and
        // has room, checked above; the netmem is one the pool now owns.
        unsafe { bindings::net_mp_netmem_place_in_cache(self.0.as_raw(), netmem) };
        Ok(())
    }
}

impl core::ops::Deref for PagePoolRefill<'_> {
    type Target = PagePool;

    fn deref(&self) -> &PagePool {
        self.0
    }
}

/// A page pool being set up by its provider's `init`, before anything else
/// can use it.
pub(crate) struct PagePoolInit<'a>(&'a PagePool);

impl<'a> PagePoolInit<'a> {
    /// Wraps the pool `init` is called for.
    ///
    /// # Safety
    ///
    /// As [`PagePool::from_raw`], and the pool is not yet in use: only its
    /// provider's `init` runs on it.
    pub(crate) unsafe fn from_raw(pool: *mut bindings::page_pool) -> Self {
        // SAFETY: per the caller.
        Self(unsafe { PagePool::from_raw(pool) })
    }

    /// Turns off DMA syncs: dma-buf addresses must not be synced by the pool.
    pub(crate) fn disable_dma_sync(&self) {
        // SAFETY: the pool is alive and not yet shared (type contract), so the
        // bitfield update races with nobody.
        unsafe {
            (*self.0.as_raw()).set_dma_sync(false);
            (*self.0.as_raw()).set_dma_sync_for_cpu(false);
        }
    }
}

impl core::ops::Deref for PagePoolInit<'_> {
    type Target = PagePool;

    fn deref(&self) -> &PagePool {
        self.0
    }
}

/// Takes `niov` back from the page pool it was lent to (clears its pool
/// info), in the provider's `release_netmem`.
pub(crate) fn disown(niov: &OwnedNetIov<'_>) {
    // SAFETY: `niov` is alive; its pool gave it back, so nothing else
    // touches its pool info.
    unsafe { bindings::net_mp_niov_clear_page_pool(niov.niov().as_raw()) };
}
