// SPDX-License-Identifier: GPL-2.0

//! Devmem's objects, as core networking shares them: the binding
//! (`struct net_devmem_dmabuf_binding`), its chunk owners and `net_iov`s,
//! the netlink socket's list of bindings and the table of bindings by ID.
//! TCP, `dev.c` and `netdev-genl.c` read these structures through
//! `devmem.h`, so they keep their C layout, and this module is the one
//! place that touches them: the abstraction the provider is written
//! against, shaped as `rust/kernel/net/devmem.rs` would be.
//!
//! Unlike the other abstractions it has one user, because these C types
//! are devmem's own. It is an abstraction all the same: it keeps the
//! invariants that make the provider's safe code sound (a binding is freed
//! only after its last reference, a `net_iov` is handed out to one owner at
//! a time, a mapping is undone once), so the free list, on whose duplicate
//! check the second of those rests, is in it too. What to do with these
//! objects (how many `net_iov`s a refill takes, when to bind, unbind and
//! look a binding up) is the provider's: [`crate::provider`],
//! [`crate::bind`], [`crate::tx`], which hold no `unsafe`.
//!
//! The types:
//! - [`Builder`] builds a binding in stages it cannot skip
//!   ([`builder`]); dropping it at any stage releases what it holds.
//! - [`Binding`] is the published object, reference counted by its
//!   `percpu_ref` (`AlwaysRefCounted`): an [`ARef<Binding>`] is a reference
//!   (a page pool's, an skb's, a TX lookup's), and `&Binding` a borrow
//!   within a span some reference covers.
//! - [`OwnedBinding`] is the initial reference, which the netlink socket
//!   holds from bind to unbind. Only [`Unlinked::release`] gives it up,
//!   once [`OwnedBinding::unlink`] took it off the socket's list: it hides
//!   the binding from lookups, waits for those in flight, closes its queues
//!   (an RX binding then unmaps: nothing DMAs into it any more; a queue
//!   whose restart fails is closed later by a work item holding its own
//!   reference, [`Unbound`]) and kills the count, so the
//!   last of the other references frees the binding. A
//!   TX binding stays mapped for skbs in flight, on a list the unregister
//!   of its device walks ([`ids`]). Dropping it any other way warns and
//!   leaks.
//! - [`NetIov`] and [`OwnedNetIov`] ([`niov`]) are one of its `net_iov`s,
//!   borrowed from it, and the allocation of one.
//!
//! C header: [`net/core/devmem.h`](srctree/net/core/devmem.h)

mod arena;
pub(crate) mod builder;
pub(crate) mod freelist;
pub(crate) mod ids;
pub(crate) mod niov;
pub(crate) mod niov_size;
pub(crate) mod queues;
pub(crate) mod refill;

use crate::abstractions::dma_buf::{self, DmaBuf, Mapping};
use crate::abstractions::net::page_pool::{MemoryProvider, PagePoolRefill};
use crate::abstractions::net::{DeviceId, NetDevice};
use crate::abstractions::percpu_ref::PercpuRef;
use crate::abstractions::sync::SpinLockBh;
use core::{ops::Deref, ptr::NonNull};
use freelist::{FreeList, BATCH};
use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    sync::atomic::{Atomic, Relaxed},
    sync::{rcu, Mutex, SetOnce},
    types::Opaque,
};
use niov::NiovPtr;
use niov_size::NiovSize;

pub(crate) use builder::Builder;
pub(crate) use niov::{NetIov, OwnedNetIov};
use queues::Closing;
pub(crate) use queues::{Devmem, UnregisteringDevice};

/// Where a binding lives: the C structure, first, so that a pointer to it,
/// which is what C code holds, is also a pointer to this; then what only
/// this provider uses.
#[repr(C)]
#[pin_data]
struct BindingStorage {
    #[pin]
    c: Opaque<bindings::net_devmem_dmabuf_binding>,
    /// The free `net_iov`s, taken from NAPI and from process context.
    /// Replaced only by `Builder::finish`, while nothing can reach the
    /// binding, and by [`Teardown`]: dropping a list frees its
    /// arena, so it must not be replaced while `net_iov`s are out, which
    /// its leak check does not all see (a TX binding's, named by its
    /// table).
    #[pin]
    free: SpinLockBh<FreeList>,
    /// What the binding is, fixed when it is allocated.
    shape: Shape,
    /// The refill ring of an RX binding bound with one: set by
    /// [`Builder::refill_ring`] before publication, never after.
    refill: SetOnce<Pin<KBox<refill::Refill>>>,
}

/// The facts about a binding that never change, kept on the Rust side so
/// that reading them needs no access to the C structure (which C writes
/// concurrently). [`Builder::new`] writes the same values into the C
/// fields (`direction`, `niov_shift`, the dma-buf's size), which C reads.
#[derive(Clone, Copy)]
struct Shape {
    /// The size of the binding's `net_iov`s.
    niov_size: NiovSize,
    /// RX (`FromDevice`) or TX (`ToDevice`).
    dir: kernel::dma::DataDirection,
    /// The size of the bound dma-buf, in bytes.
    dmabuf_size: usize,
}

/// A published binding.
///
/// # Invariants
///
/// The wrapped structure was fully built by a [`Builder`] (every resource
/// field set, the free list installed) and published by
/// [`builder::Complete::publish`]; it is freed only after its reference
/// count drops to zero. Its resource fields are only changed under `lock`
/// (`dev`, `vdev`, `sgt`, `attachment`), and then only cleared.
#[repr(transparent)]
pub(crate) struct Binding(BindingStorage);

// SAFETY: a binding is shared between contexts by design. Its fields are
// constant after publication but for `dev` and `vdev` (written under `lock`
// with `Atomic` stores, read locklessly only through `Atomic` here and under
// `lock` in C), `sgt` and `attachment` (only read or written under `lock`,
// or by the teardown after the last reference) and `list` (under the lock of
// the list it is on: the socket's, then the unbound list's); the reference
// count, the queue table (an xarray) and
// the per-CPU stats synchronise themselves; the free list is behind its
// spinlock; the refill ring, set once before publication, is behind its own
// spinlock, and its user references are atomic.
unsafe impl Sync for Binding {}
// SAFETY: as for `Sync`; nothing in a binding is tied to a thread.
unsafe impl Send for Binding {}

// SAFETY: the binding is freed only after its `percpu_ref` drops to zero
// (`release` schedules the free), so each increment keeps it alive until
// the matching decrement; every published binding is counted.
unsafe impl AlwaysRefCounted for Binding {
    fn inc_ref(&self) {
        // SAFETY: `&self` proves a reference is held, so the count is above
        // zero.
        unsafe { self.refcount().get() };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller owns the reference being dropped, so the binding
        // is alive until this put, after which it is not touched.
        unsafe { obj.as_ref().refcount().put() };
    }
}

impl Binding {
    /// Borrows a binding.
    ///
    /// # Safety
    ///
    /// `ptr` must be a published binding on which a reference is held for
    /// all of `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::net_devmem_dmabuf_binding) -> &'a Self {
        // SAFETY: every binding of this provider is the first field of a
        // `BindingStorage` (`Builder::new`), which `Binding` wraps
        // transparently; liveness per the caller.
        unsafe { &*ptr.cast() }
    }

    /// Takes a reference on a binding found in an RCU-protected table,
    /// unless its count already dropped to zero.
    ///
    /// # Safety
    ///
    /// `ptr` must be a published binding that is not freed before the RCU
    /// read-side section `_rcu` ends (it was reachable from a table that
    /// unbind clears before waiting for a grace period).
    pub(crate) unsafe fn try_get(
        ptr: NonNull<bindings::net_devmem_dmabuf_binding>,
        _rcu: &rcu::Guard,
    ) -> Option<ARef<Self>> {
        // SAFETY: the memory, and the count initialised before publication,
        // stay valid for the RCU section (caller); no `&Binding` is formed
        // before a reference is held.
        let count = unsafe { PercpuRef::from_raw(&raw mut (*ptr.as_ptr()).ref_) };
        // SAFETY: `tryget` just took the reference the `ARef` now owns; a
        // published binding is the first field of its `Binding`.
        count
            .tryget()
            .then(|| unsafe { ARef::from_raw(ptr.cast::<Self>()) })
    }

    /// The raw pointer, for C.
    pub(crate) fn as_raw(&self) -> *mut bindings::net_devmem_dmabuf_binding {
        self.0.c.get()
    }

    fn c(&self) -> *mut bindings::net_devmem_dmabuf_binding {
        self.as_raw()
    }

    fn refcount(&self) -> &PercpuRef {
        // SAFETY: the count was initialised by `Builder::new` and is exited
        // only when the binding is freed, after every borrow.
        unsafe { PercpuRef::from_raw(&raw mut (*self.c()).ref_) }
    }

    /// The binding's mutex, which C also takes (`netdev-genl.c`).
    fn lock(&self) -> &Mutex<()> {
        // SAFETY: `lock` was initialised by `Builder::new` and is destroyed
        // only when the binding is freed.
        unsafe { Mutex::from_raw(&raw mut (*self.c()).lock) }
    }

    /// Takes up to `max` (at most [`BATCH`], and at most `share` of however
    /// many are free) free `net_iov`s under one lock and hands each to
    /// `each`, page_pool state cleared; returns how many. A call that finds
    /// none counts one allocation failure, as C counts a failed
    /// `net_devmem_alloc_dmabuf`.
    pub(crate) fn alloc_niovs<'a>(
        &'a self,
        max: usize,
        share: impl FnOnce(usize) -> usize,
        mut each: impl FnMut(OwnedNetIov<'a>),
    ) -> usize {
        let mut batch = [None; BATCH];
        let n = {
            let mut free = self.0.free.lock();
            let n = max.min(BATCH).min(share(free.len())).min(free.len());
            for slot in &mut batch[..n] {
                *slot = free.take();
            }
            n
        };
        if n == 0 && max > 0 {
            self.count_alloc_fail();
        }
        for niov in batch[..n].iter().flatten() {
            each(self.owned(*niov));
        }
        n
    }

    /// How many `net_iov`s are free.
    pub(crate) fn free_niovs(&self) -> usize {
        self.0.free.lock().len()
    }

    /// The `net_iov` in slot `slot` (dma-buf order), handed out or not.
    pub(crate) fn niov_at_slot(&self, slot: usize) -> Option<NetIov<'_>> {
        let p = self.0.free.lock().niov_at(slot)?;
        Some(self.niov(p))
    }

    /// Closes the refill ring's user references, once the binding has no
    /// queue left: each `net_iov` user space still held goes back to its
    /// pool, so the pools drain and the binding can be freed.
    fn scrub_refill(&self) {
        if let Some(r) = self.refill() {
            r.scrub(self);
        }
    }

    /// For a refill of `pool`, one of this binding's page pools: takes
    /// what user space gave back through the binding's refill ring, if it
    /// has one, into the pool's cache (see [`refill::Refill::drain_into`]).
    /// The ring's counts index this binding's `net_iov`s, so it is drained
    /// only with the binding it belongs to, which this method passes.
    pub(crate) fn drain_refill<T: MemoryProvider>(&self, pool: &PagePoolRefill<'_, T>) -> usize {
        self.refill().map_or(0, |r| r.drain_into(self, pool))
    }

    /// Takes now what user space gave back through the binding's refill
    /// ring (dmabuf-flush); `EOPNOTSUPP` if it has none.
    pub(crate) fn flush_refill(&self) -> Result<usize> {
        self.refill()
            .map(|r| r.flush(self))
            .ok_or_else(crate::abstractions::error::eopnotsupp)
    }

    /// The binding's refill ring, if it was bound with one.
    pub(crate) fn refill(&self) -> Option<&refill::Refill> {
        self.0.refill.as_ref().map(|r| &**r)
    }

    /// How many `net_iov`s the binding has, free or not.
    pub(crate) fn niovs(&self) -> usize {
        self.0.free.lock().total()
    }

    /// A `net_iov` of this binding's free list, borrowed from it.
    fn niov(&self, p: NiovPtr) -> NetIov<'_> {
        // SAFETY: the free list holds only `net_iov`s carved for this
        // binding (`Builder::carve`), which live as long as it does.
        unsafe { NetIov::from_list(p) }
    }

    /// Ownership of a `net_iov` just taken off the free list, with its
    /// page_pool state cleared (it is about to be lent to a pool).
    fn owned(&self, p: NiovPtr) -> OwnedNetIov<'_> {
        // SAFETY: `p` was just taken off this binding's free list, which
        // gives its allocation to the caller, who passes it on here.
        let niov = unsafe { OwnedNetIov::from_allocation(self.niov(p)) };
        crate::abstractions::net::page_pool::ProviderBuf::<Binding>::reset_pp_state(&niov);
        niov
    }

    /// One free `net_iov`, page_pool state cleared, or `None` when all are
    /// in use (counted as an allocation failure).
    pub(crate) fn alloc_niov(&self) -> Option<OwnedNetIov<'_>> {
        // Not `alloc_niovs` with a `max` of one: clearing its batch array
        // cost more than the take itself. The guard is a temporary of this
        // statement: the lock is not held past it.
        let taken = self.0.free.lock().take();
        match taken {
            Some(p) => Some(self.owned(p)),
            None => {
                self.count_alloc_fail();
                None
            }
        }
    }

    /// Gives `niov` back to its binding's free list. A `net_iov` of another
    /// binding, or one not handed out, is warned about (`WARN_ON`, as C's
    /// genpool free) and left alone.
    pub(crate) fn free_niov(&self, niov: OwnedNetIov<'_>) {
        if kernel::warn_on!(!core::ptr::eq(niov.binding(), self)) {
            return;
        }
        // `niov` is this binding's (checked above).
        let slot = niov.into_slot();
        let given = self.0.free.lock().give(slot);
        kernel::warn_on!(!given);
    }

    /// Counts an allocation that found every `net_iov` in use, in the
    /// binding's per-CPU counters (dmabuf-get reports their sum).
    fn count_alloc_fail(&self) {
        // SAFETY: `stats` was allocated by `Builder::new` and is freed with
        // the binding; the C helper updates this CPU's counter.
        unsafe { bindings::net_devmem_dmabuf_alloc_failed(self.c()) };
    }

    /// The size of the binding's `net_iov`s.
    pub(crate) fn niov_size(&self) -> NiovSize {
        self.0.shape.niov_size
    }

    /// The binding's netlink ID.
    pub(crate) fn id(&self) -> u32 {
        // SAFETY: `id` is set before the binding can be found and never
        // changed afterwards.
        unsafe { (*self.c()).id }
    }

    /// `dev`, read locklessly (`READ_ONCE`).
    fn dev_atomic(&self) -> &Atomic<*mut bindings::net_device> {
        // SAFETY: `dev` is a pointer field of the live binding, so aligned for
        // an atomic pointer; after publication it is only written by
        // `forget_device`'s `Atomic` stores under `lock`, and C reads it under
        // `lock` (netdev-genl), so every racing access is atomic.
        unsafe { Atomic::from_ptr(&raw mut (*self.c()).dev) }
    }

    /// The cookie of the network namespace the binding was made in, 0 until
    /// netdev-genl sets it just after publication.
    pub(crate) fn net_cookie(&self) -> u64 {
        // SAFETY: an aligned `u64` field of the live binding; netdev-genl
        // writes it once, with `WRITE_ONCE`, after publication, and nothing
        // else writes it, so every racing access is atomic.
        unsafe { Atomic::from_ptr(&raw mut (*self.c()).net_cookie) }.load(Relaxed)
    }

    /// `vdev`, as [`Binding::dev_atomic`].
    fn vdev_atomic(&self) -> &Atomic<*mut c_void> {
        // SAFETY: as for `dev` in `dev_atomic`: an aligned pointer field of the
        // live binding, written after publication only by `Atomic` stores
        // under `lock`, read by C only under `lock`.
        unsafe { Atomic::from_ptr(&raw mut (*self.c()).vdev) }
    }

    /// The device that does the DMA, or `None` once the binding let go of
    /// it (its last RX queue was uninstalled, or, for TX, it unregistered).
    pub(crate) fn dev(&self) -> Option<DeviceId> {
        DeviceId::from_ptr(self.dev_atomic().load(Relaxed))
    }

    /// The binding's device, borrowed from the caller, which holds it.
    ///
    /// # Safety
    ///
    /// While the binding has a device, the caller holds a reference on it
    /// and its instance lock for `'a` (the unbind path's caller does).
    pub(crate) unsafe fn locked_dev<'a>(&self) -> Option<&'a NetDevice> {
        let dev = self.dev_atomic().load(Relaxed);
        // SAFETY: a device the binding still has is referenced and locked by
        // the caller for `'a`.
        (!dev.is_null()).then(|| unsafe { NetDevice::from_raw(dev) })
    }

    /// The virtual device bind-tx was called on (netkit); `None` once that
    /// device unregistered.
    pub(crate) fn vdev(&self) -> Option<DeviceId> {
        DeviceId::from_ptr(self.vdev_atomic().load(Relaxed))
    }

    /// Forgets `dev` as the binding's device and as its virtual device,
    /// under the binding's lock, which the netlink socket's teardown takes
    /// to read them. Returns whether `dev` was the binding's device.
    ///
    /// Private: once the device is forgotten, unbind no longer closes its
    /// queues, so only the callers below, which hold a proof that nothing
    /// is installed or running on it any more, may do it.
    fn forget_device(&self, dev: DeviceId) -> bool {
        let _guard = self.lock().lock();
        if self.vdev() == Some(dev) {
            self.vdev_atomic().store(core::ptr::null_mut(), Relaxed);
        }
        let gone = self.dev() == Some(dev);
        if gone {
            self.dev_atomic().store(core::ptr::null_mut(), Relaxed);
        }
        gone
    }

    /// Unmaps the dma-buf and detaches from it, once the binding let go of
    /// its device.
    ///
    /// Nothing DMAs into or out of the buffer after that, and with an IOMMU
    /// the device's translations go with the device, so the mapping must
    /// not wait for the last reference (a socket or an skb may hold one long
    /// after); nor must the attachment, which pins the device. Frags still
    /// held only need the dma-buf itself, which stays until the binding is
    /// freed. Each is undone once: taken out of the binding under `lock`.
    fn unmap(&self) {
        let b = self.c();
        let (sgt, att) = {
            let _guard = self.lock().lock();
            // SAFETY: `sgt` and `attachment` are only read or written under `lock`,
            // here, or by the free path, which runs after every reference,
            // the caller's included.
            unsafe {
                (
                    core::ptr::replace(&raw mut (*b).sgt, core::ptr::null_mut()),
                    core::ptr::replace(&raw mut (*b).attachment, core::ptr::null_mut()),
                )
            }
        };
        // SAFETY: `dmabuf` is set by the builder and constant until the free
        // path, which cannot run while `self` is borrowed.
        let dmabuf = unsafe { (*b).dmabuf };
        let (Some(dmabuf), Some(att)) = (NonNull::new(dmabuf), NonNull::new(att)) else {
            return;
        };
        // SAFETY: the binding owns a dma-buf reference (builder) and keeps it
        // until it is freed, which cannot happen while `self` is borrowed.
        let dmabuf = unsafe { DmaBuf::borrow_raw(dmabuf) };
        // SAFETY: the attachment was the binding's (builder), made from
        // `Attachment::into_raw` on `dmabuf`, and was just taken out of it,
        // so it is taken back once, here.
        let att = unsafe { dma_buf::Attachment::from_raw(&dmabuf, att) };
        if let Some(sgt) = NonNull::new(sgt) {
            // SAFETY: the mapping, of `att` in the binding's direction, was
            // taken out of the binding above with its attachment.
            drop(unsafe { Mapping::from_raw(&att, sgt, self.0.shape.dir) });
        }
        drop(att);
    }

    /// Size of the bound dma-buf.
    pub(crate) fn dmabuf_size(&self) -> usize {
        self.0.shape.dmabuf_size
    }

    /// Whether this is a TX binding.
    pub(crate) fn is_tx(&self) -> bool {
        self.0.shape.dir == kernel::dma::DataDirection::ToDevice
    }

    /// The `net_iov` of page `page` of a TX binding's dma-buf (a TX
    /// binding's `net_iov`s are pages); `None` for an RX binding or a page
    /// past the end.
    pub(crate) fn tx_niov(&self, page: usize) -> Option<NetIov<'_>> {
        if !self.is_tx() || page >= self.dmabuf_size() / NiovSize::PAGE.bytes() {
            return None;
        }
        // SAFETY: the builder of a TX binding made `tx_vec` with one entry
        // per page of its dma-buf (`Builder::carve`; both checked above), each
        // a `net_iov` of this binding, and never changes it afterwards.
        let p = unsafe { *(*self.c()).tx_vec.add(page) };
        // SAFETY: every entry is a carved `net_iov` of this binding, which
        // lives as long as it.
        NonNull::new(p).map(|p| unsafe { NetIov::from_list(NiovPtr::new(p)) })
    }
}

/// The initial reference of a published binding: the netlink socket holds
/// it, on its list of bindings, from bind until unbind.
///
/// [`Unlinked::release`] gives it up, once [`OwnedBinding::unlink`] took
/// the binding off the socket's list: it parks a TX binding where the
/// unregister of its device finds it, erases the binding from the table of
/// IDs and waits for an RCU grace period (so that no lookup still sees the
/// entry), closes the queues it is installed on (an RX binding then
/// unmaps), and switches the count to atomic mode (`percpu_ref_kill`): the
/// binding is freed once the page pools and `net_iov`s still using it let
/// go. Dropping the value instead cannot do these, so it warns and leaks
/// the binding.
///
/// # Invariants
///
/// `self.0` is a published binding whose initial reference this value owns;
/// its `list` is on the list of the socket that holds that reference.
pub(crate) struct OwnedBinding(NonNull<Binding>);

// SAFETY: the reference may be dropped from any thread; `Binding` is `Sync`.
unsafe impl Send for OwnedBinding {}
// SAFETY: shared access only gives `&Binding`, which is `Sync`.
unsafe impl Sync for OwnedBinding {}

impl OwnedBinding {
    /// Takes back the initial reference from C.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`builder::Published::into_raw`] and not have
    /// been taken back yet.
    pub(crate) unsafe fn from_raw(ptr: NonNull<bindings::net_devmem_dmabuf_binding>) -> Self {
        // INVARIANT: the caller passes back the initial reference that
        // `Published::into_raw` gave C, once.
        Self(ptr.cast())
    }

    /// Borrows the initial reference C keeps, without taking it back.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`builder::Published::into_raw`], and whoever
    /// keeps that reference (the netlink socket, whose lock the caller holds
    /// for `'a`) must not give it up during `'a`.
    pub(crate) unsafe fn borrow_raw<'a>(
        ptr: NonNull<bindings::net_devmem_dmabuf_binding>,
    ) -> LentBinding<'a> {
        // INVARIANT: the reference stays with C, which keeps it for `'a`
        // (caller); `ManuallyDrop` never gives it up.
        LentBinding(
            core::mem::ManuallyDrop::new(Self(ptr.cast())),
            core::marker::PhantomData,
        )
    }

    /// Unlinks the binding from its netlink socket's list, if it was linked,
    /// for [`Unlinked::release`].
    ///
    /// # Safety
    ///
    /// The caller holds the lock of the socket the binding was linked on.
    pub(crate) unsafe fn unlink(self) -> Unlinked {
        // SAFETY: `list` is on the holding socket's list (type invariant;
        // all-zero would mean never linked), whose lock the caller holds.
        unsafe {
            let list = &raw mut (*self.as_raw()).list;
            if !(*list).next.is_null() {
                bindings::list_del(list);
            }
        }
        // INVARIANT: the binding's `list` was just taken off its socket's
        // list, or was never on one.
        Unlinked(self)
    }
}

/// The initial reference of a binding that is on no socket's list any more,
/// about to be given up ([`Unlinked::release`]).
///
/// # Invariants
///
/// The binding's `list` is on no list.
pub(crate) struct Unlinked(OwnedBinding);

impl Deref for Unlinked {
    type Target = OwnedBinding;

    fn deref(&self) -> &OwnedBinding {
        &self.0
    }
}

impl Unlinked {
    /// Gives up the initial reference (unbind). `dev` is the binding's device,
    /// locked by the caller, or `None` once the binding let go of it.
    ///
    /// A TX binding is first parked on the unbound list, where the
    /// unregister of its device still finds it (skbs in flight may send from
    /// it, so it stays mapped). Then the binding is erased from the table of
    /// IDs, and an RCU grace period passes: lookups run under the RCU read
    /// lock, so none can find it once the count may drop to zero. Then every
    /// queue the binding is installed on is closed, so no queue's parameters
    /// still name it, and an RX binding, which no queue DMAs into any more,
    /// lets go of its device and unmaps and detaches
    /// ([`Binding::close_queues`]). A queue whose restart failed stays on
    /// the binding: C's close-later work, which takes a reference of its own
    /// first, closes it ([`Unbound::close_left_open`]). Last the count is
    /// killed. If a queue cannot be closed (it is not among its device's
    /// queues), or `dev` is another device than the binding's, it warns and
    /// leaks the binding rather than free it under the queue.
    pub(crate) fn release(self, dev: Option<&NetDevice>) {
        let this = core::mem::ManuallyDrop::new(self.0);
        if this.is_tx() {
            // SAFETY: a published TX binding, whose `list` is on no list
            // (`Unlinked`'s invariant); `release` consumes the only initial
            // reference, so it parks once, and `free_work` unparks every
            // dead TX binding before freeing it (a count only drops to zero
            // after the `kill` below).
            unsafe { ids::park(&this) };
        }
        ids::remove(this.id());
        crate::abstractions::net::synchronize_net();
        match this.close_queues(dev) {
            Closing::Lost => return,
            Closing::Open => this.close_later(),
            Closing::Done => {}
        }
        // SAFETY: `this` owns the initial reference (type invariant), which
        // `kill` drops; `ManuallyDrop` keeps `Drop` from running after it.
        unsafe { this.refcount().kill() };
    }
}

impl OwnedBinding {
    /// Has C's close-later work close the queues [`Unlinked::release`]
    /// could not (`net_devmem_close_later()`): it takes a reference on the
    /// binding, which it keeps until [`Unbound::close_left_open`] leaves no
    /// queue open, and retries with a growing delay.
    fn close_later(&self) {
        // SAFETY: the binding is published and `self` holds its initial
        // reference, so the count is above zero and not yet killed, as
        // `net_devmem_close_later` needs to take the work's reference; the
        // work item is the binding's own `close_w`, unused until now (a
        // binding is released once).
        unsafe { bindings::net_devmem_close_later(self.as_raw()) };
    }
}

/// A binding whose unbind could not close every queue, lent for `'a` by
/// C's close-later work (`net_devmem_close_later()`), which holds a
/// reference on it and closes those queues ([`Unbound::close_left_open`]).
///
/// # Invariants
///
/// The binding's initial reference was given up by [`Unlinked::release`]
/// after a queue's restart failed, and the work's reference is held for
/// `'a`.
pub(crate) struct Unbound<'a>(&'a Binding);

impl<'a> Unbound<'a> {
    /// Borrows the binding the close-later work holds.
    ///
    /// # Safety
    ///
    /// `ptr` is a binding that [`Unlinked::release`] handed to
    /// `net_devmem_close_later()`, on which the caller holds the reference
    /// that function took, for all of `'a`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<bindings::net_devmem_dmabuf_binding>) -> Self {
        // INVARIANT: the caller holds the work's reference for `'a` on a
        // binding `release` handed to the work.
        // SAFETY: a published binding, on which that reference is held for
        // `'a` (caller).
        Self(unsafe { Binding::from_raw(ptr.as_ptr()) })
    }

    /// The binding.
    pub(crate) fn binding(&self) -> &'a Binding {
        self.0
    }

    /// Closes the queues the unbind left open ([`Binding::close_queues`]),
    /// with `dev` the binding's device, locked by the caller, or `None` once
    /// the binding let go of it. Returns whether the work is done, so that
    /// it drops its reference; while a queue stays open it tries again
    /// later. A binding whose queues cannot be found again is leaked (a
    /// reference that is never dropped), as [`Unlinked::release`] leaks it.
    pub(crate) fn close_left_open(&self, dev: Option<&NetDevice>) -> bool {
        match self.0.close_queues(dev) {
            Closing::Done => true,
            Closing::Open => false,
            Closing::Lost => {
                core::mem::forget(ARef::from(self.0));
                true
            }
        }
    }
}

/// The initial reference of a binding, lent by C for `'a`
/// ([`OwnedBinding::borrow_raw`]).
///
/// # Invariants
///
/// The reference stays C's: it is never given up through this value.
pub(crate) struct LentBinding<'a>(
    core::mem::ManuallyDrop<OwnedBinding>,
    core::marker::PhantomData<&'a OwnedBinding>,
);

impl Deref for LentBinding<'_> {
    type Target = OwnedBinding;

    fn deref(&self) -> &OwnedBinding {
        &self.0
    }
}

impl Deref for OwnedBinding {
    type Target = Binding;

    fn deref(&self) -> &Binding {
        // SAFETY: the initial reference keeps the binding alive while `self`
        // exists (type invariant).
        unsafe { self.0.as_ref() }
    }
}

impl Drop for OwnedBinding {
    /// The initial reference dropped without [`Unlinked::release`]: the
    /// binding may still be in the table of IDs and installed on queues, so
    /// it is leaked, with a warning, rather than freed under them.
    fn drop(&mut self) {
        kernel::warn_on!(true);
    }
}

/// The percpu_ref release of a binding (RCU context): schedules the free.
///
/// # Safety
///
/// Only given to `PercpuRef::init` for a binding's `ref` (by
/// `Builder::new`).
unsafe extern "C" fn release(r: *mut bindings::percpu_ref) {
    // SAFETY: `r` is embedded in a binding (caller); its `unbind_w` is unused
    // until now, and is initialised in place here, with a static class.
    unsafe {
        let b = kernel::container_of!(r, bindings::net_devmem_dmabuf_binding, ref_);
        let work = &raw mut (*b).unbind_w;
        bindings::init_work_with_key(
            work,
            Some(free_work),
            false,
            c"binding->unbind_w".as_char_ptr(),
            kernel::static_lock_class!().as_ptr(),
        );
        bindings::schedule_work(work);
    }
}

/// The work item that frees a binding whose last reference is gone
/// (exported as `__net_devmem_dmabuf_binding_free`).
///
/// # Safety
///
/// `work` must be the `unbind_w` of a binding whose count dropped to zero,
/// given to this function once (by [`release`]'s work item).
pub(crate) unsafe extern "C" fn free_work(work: *mut bindings::work_struct) {
    // SAFETY: only `release` queues this work item, the `unbind_w` embedded
    // in a binding whose count reached zero, so nothing references it any
    // more.
    let b = unsafe { kernel::container_of!(work, bindings::net_devmem_dmabuf_binding, unbind_w) };
    // `container_of!` of a work item that exists is not null.
    let Some(b) = NonNull::new(b) else {
        return;
    };
    // SAFETY: `direction` is written by the builder before publication and
    // never changed; nothing else references the dead binding.
    if unsafe { (*b.as_ptr()).direction } == bindings::dma_data_direction_DMA_TO_DEVICE {
        // SAFETY: a TX binding's count drops to zero only after
        // `Unlinked::release` parked it and killed the count; it is
        // unparked once, here, before it is torn down.
        unsafe { ids::unpark(b) };
    }
    // SAFETY: a dead binding was fully built, nothing reaches it any more
    // (unparked above), and it is freed once, here.
    drop(unsafe { Teardown::from_dead(b) });
}

/// A binding's storage being released: a half-built one (a failed bind)
/// or a dead one.
///
/// # Invariants
///
/// `self.0` is a `BindingStorage` allocated by `Builder::new` that nothing
/// else references; its non-null resource fields are owned by it (each set
/// by the builder from the matching owner type); `self.1` is its free list,
/// with the arena of its `net_iov`s, while the builder holds it, and empty
/// once the list is installed in the binding.
struct Teardown(NonNull<bindings::net_devmem_dmabuf_binding>, FreeList);

impl Teardown {
    /// # Safety
    ///
    /// `b` must be a binding whose reference count dropped to zero, torn
    /// down once.
    unsafe fn from_dead(b: NonNull<bindings::net_devmem_dmabuf_binding>) -> Self {
        // INVARIANT: a dead binding is referenced by nobody and owns its
        // resources; its free list is installed, so the spare one is empty.
        Self(b, FreeList::new())
    }

    fn storage(&self) -> &BindingStorage {
        // SAFETY: `self.0` is the first field of a `BindingStorage`
        // (invariant), alive until `drop` frees it.
        unsafe { &*self.0.as_ptr().cast::<BindingStorage>() }
    }
}

impl Drop for Teardown {
    /// Releases, in an order the owner types' borrows check: the free list
    /// with its arena of `net_iov`s and chunk owners (leaked with a warning
    /// if `net_iov`s are outstanding), TX table, kernel mapping, DMA mapping
    /// (with its own direction), attachment, dma-buf; then queue table,
    /// stats, reference count, lock and the structure, as C's free path
    /// does.
    fn drop(&mut self) {
        let b = self.0.as_ptr();
        let shape = self.storage().shape;
        // Before the free list is installed it is in `self.1`, after it in
        // the binding; the other one is empty. Dropping it frees its arena,
        // or leaks it if a `net_iov` is still out.
        drop(core::mem::replace(&mut self.1, FreeList::new()));
        // Taken out under the lock, freed after it: freeing a large arena
        // (an owner per segment) is no work for a BH-disabled section.
        let installed = core::mem::replace(&mut *self.storage().free.lock(), FreeList::new());
        drop(installed);
        // SAFETY: every non-null field is owned by `self` (type invariant) and
        // is turned back into its owner type exactly once, here, in an order
        // the owner types' borrows enforce; the structure was allocated by
        // `Builder::new` as a `KBox<BindingStorage>`.
        unsafe {
            let dmabuf = NonNull::new((*b).dmabuf).map(|d| DmaBuf::from_raw(d));
            if !(*b).tx_vec.is_null() {
                let pages = dmabuf
                    .as_ref()
                    .map_or(0, |d| d.size() / NiovSize::PAGE.bytes());
                drop(KVVec::from_raw_parts((*b).tx_vec, pages, pages));
            }
            if let Some(d) = dmabuf.as_ref() {
                // A no-op unless the builder's `net_devmem_cpu_map` made a
                // mapping; it needs `dmabuf`, which is put below.
                bindings::net_devmem_cpu_unmap(b);
                if let Some(att) = NonNull::new((*b).attachment) {
                    let att = dma_buf::Attachment::from_raw(d, att);
                    if let Some(sgt) = NonNull::new((*b).sgt) {
                        drop(Mapping::from_raw(&att, sgt, shape.dir));
                    }
                    drop(att);
                }
            }
            drop(dmabuf);
            bindings::xa_destroy(&raw mut (*b).bound_rxqs);
            bindings::free_percpu((*b).stats.cast());
            PercpuRef::exit(&raw mut (*b).ref_);
            bindings::mutex_destroy(&raw mut (*b).lock);
            drop(KBox::from_raw(b.cast::<BindingStorage>()));
        }
    }
}
