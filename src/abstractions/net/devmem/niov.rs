// SPDX-License-Identifier: GPL-2.0

//! A binding's `net_iov`s.
//!
//! TCP changes a `net_iov`'s `pp_ref_count` concurrently (`tcp_recvmsg_dmabuf`
//! increments it directly), so no `&` or `&mut` to a `net_iov` is ever formed:
//! every access is a raw one.
//!
//! Two types carry the rules:
//! - [`NetIov<'a>`] names one `net_iov` of a binding that is alive for `'a`;
//!   it is `Copy` and gives only what any holder may read.
//! - [`OwnedNetIov<'a>`] is the allocation of that `net_iov` from the
//!   binding's free list: not `Copy`, made by [`Binding::alloc_niovs`],
//!   consumed by [`Binding::free_niov`] or by lending it to a page pool
//!   (it is the binding's [`ProviderBuf`]).
//!
//! C header: [`include/net/netmem.h`](srctree/include/net/netmem.h)

use super::Binding;
use crate::abstractions::net::page_pool::ProviderBuf;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::bindings;

/// A `net_iov` on a binding's free list, or in its TX table: only the
/// binding that carved it turns it back into a [`NetIov`].
#[derive(Clone, Copy)]
pub(crate) struct NiovPtr(NonNull<bindings::net_iov>);

// SAFETY: the pointer is only dereferenced by the binding that owns the
// `net_iov` (through `NetIov::from_list`), from whichever thread; moving it
// moves no access.
unsafe impl Send for NiovPtr {}

impl NiovPtr {
    pub(super) fn new(p: NonNull<bindings::net_iov>) -> Self {
        Self(p)
    }

    /// The pointer, for the TX table C reads.
    pub(super) fn as_ptr(self) -> *mut bindings::net_iov {
        self.0.as_ptr()
    }
}

/// One `net_iov` of a binding's dma-buf.
///
/// # Invariants
///
/// Points into the `niovs` array of a `dmabuf_genpool_chunk_owner` of a
/// binding made by this provider that is alive for `'a`.
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

    /// A `net_iov` of a binding's free list or TX table.
    ///
    /// # Safety
    ///
    /// `p` must be from the list or table of a binding alive for `'a`, which
    /// holds only `net_iov`s carved for it.
    pub(super) unsafe fn from_list(p: NiovPtr) -> Self {
        // INVARIANT: per the caller.
        Self {
            ptr: p.0,
            _binding: PhantomData,
        }
    }

    /// A `net_iov` a caller holds, if it is a dma-buf one.
    ///
    /// # Safety
    ///
    /// `niov` must be null or a `net_iov` the caller holds for `'a`; if its
    /// type is `NET_IOV_DMABUF` it must be one of this provider's.
    pub(crate) unsafe fn from_dmabuf_niov(niov: *mut bindings::net_iov) -> Option<Self> {
        let niov = NonNull::new(niov)?;
        // SAFETY: a held `net_iov` can be read; its type never changes.
        if unsafe { (*niov.as_ptr()).type_ } != bindings::net_iov_type_NET_IOV_DMABUF {
            return None;
        }
        // SAFETY: a dma-buf `net_iov` of this provider (caller), whose holder
        // keeps its binding alive.
        unsafe { Self::from_raw(niov.as_ptr()) }
    }

    /// The raw pointer.
    pub(crate) fn as_raw(self) -> *mut bindings::net_iov {
        self.ptr.as_ptr()
    }

    /// The chunk owner whose area holds this `net_iov`. Chunk owners are
    /// written once, when their segment is carved, and only read after
    /// that, by C and here, so a shared reference to one is sound.
    fn chunk_owner(self) -> &'a bindings::dmabuf_genpool_chunk_owner {
        // SAFETY: by the type invariant `owner` points to the `area` embedded
        // in a chunk owner that lives as long as the binding, for `'a`; the
        // field is read with a raw access, as TCP may be writing other fields
        // of the `net_iov`, and the owner is never written after the carve.
        unsafe {
            let area = (*self.as_raw()).owner;
            &*kernel::container_of!(area, bindings::dmabuf_genpool_chunk_owner, area)
        }
    }

    /// The binding this `net_iov` belongs to.
    pub(crate) fn binding(self) -> &'a Binding {
        // SAFETY: the chunk owner points to the binding that carved it, alive
        // for `'a` (type invariant), and referenced for all of `'a` by what
        // keeps `self` alive.
        unsafe { Binding::from_raw(self.chunk_owner().binding) }
    }

    /// Index of this `net_iov` in its chunk.
    pub(crate) fn index(self) -> usize {
        // SAFETY: by the type invariant `self` lies in the `niovs` array of its
        // owner's area, so both pointers are in one allocation, `self` at or
        // after the base.
        unsafe { self.as_raw().offset_from(self.chunk_owner().area.niovs) as usize }
    }

    /// Its place among the binding's `net_iovs`, in dma-buf order (the
    /// free list's name for it). The size comes from the binding itself: a
    /// wrong one would name another `net_iov` of the binding.
    pub(crate) fn slot(self) -> usize {
        let size = self.binding().niov_size();
        // An owner's `base_virtual` is its first `net_iov`'s slot times the
        // size (the arena's invariant).
        (self.chunk_owner().area.base_virtual >> size.shift()) + self.index()
    }
}

/// A `net_iov` taken from its binding's free list, with that allocation.
///
/// Not `Copy`: the allocation is given up exactly once, to the free list or
/// to a page pool. Dropping the value leaks the `net_iov`, which is what C
/// does with one found in an unexpected state.
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

    /// The binding this `net_iov` belongs to.
    pub(crate) fn binding(&self) -> &'a Binding {
        self.0.binding()
    }

    /// Gives up the allocation to a C caller, as a raw pointer.
    pub(crate) fn into_raw(self) -> *mut bindings::net_iov {
        self.0.as_raw()
    }

    /// Gives up the allocation to the binding's free list, which names it
    /// by its slot.
    pub(super) fn into_slot(self) -> usize {
        self.0.slot()
    }
}

// SAFETY: an `OwnedNetIov` owns its `net_iov` alone (type invariant), which
// lives as long as its binding; `from_net_iov` is only given back what
// `into_net_iov` gave away, by the page pool that held it.
unsafe impl ProviderBuf<Binding> for OwnedNetIov<'_> {
    fn as_net_iov(&self) -> NonNull<bindings::net_iov> {
        self.0.ptr
    }

    fn belongs_to(&self, data: &Binding) -> bool {
        core::ptr::eq(self.binding(), data)
    }

    unsafe fn from_net_iov(niov: NonNull<bindings::net_iov>) -> Self {
        // SAFETY: per the caller, `niov` was an `OwnedNetIov`'s, whose binding
        // is alive for the result; its allocation comes back with it.
        Self(unsafe { NetIov::from_list(NiovPtr(niov)) })
    }
}
