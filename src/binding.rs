// SPDX-License-Identifier: GPL-2.0

//! The binding object, kept in the C layout of
//! `struct net_devmem_dmabuf_binding`: TCP, `dev.c` and `netdev-genl.c` read
//! its fields (`id`, `dev`, `lock`, `list`, `ref`) through `devmem.h`.
//!
//! Three types carry its lifetime rules:
//! - [`RawBinding`] owns one while it is built and after its last reference
//!   is gone; dropping it releases whatever it holds, in the reverse order of
//!   acquisition.
//! - [`Binding`] is the published object, reference counted by its
//!   `percpu_ref` (`AlwaysRefCounted`): an [`ARef<Binding>`] is a reference
//!   (a page pool's, an skb's, a TX lookup's), and `&Binding` is only ever a
//!   borrow within a span some reference covers.
//! - [`OwnedBinding`] is the initial reference, which the netlink socket
//!   holds from bind to unbind. It is not `Clone`; dropping it kills the
//!   count, so the last of the other references frees the binding.
//!
//! C header: [`net/core/devmem.h`](srctree/net/core/devmem.h)

use crate::abstractions::alloc::{kbox_pin_init_on, node};
use crate::abstractions::bug::warn_on_once;
use crate::abstractions::dma_buf::{Attachment, Direction, DmaBuf, KernelMap, Mapping};
use crate::abstractions::net::{Extack, MpParams, NetDevice, NlSock, RxQueue};
use crate::abstractions::sync::{new_spinlock_bh, SpinLockBh};
use crate::freelist::{FreeList, BATCH};
use crate::genpool::{ChunkPool, OwnedChunkPool};
use crate::netmem::{NetIov, NiovSize, OwnedNetIov};
use core::{ops::Deref, pin::Pin, ptr::NonNull};
use kernel::{
    alloc::KVVec,
    bindings,
    error::to_result,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    sync::rcu,
    types::Opaque,
};

/// Where a binding lives: the C structure, first, so that a pointer to it,
/// which is what C code holds, is also a pointer to this; then what only
/// this provider uses.
#[repr(C)]
#[pin_data]
struct BindingStorage {
    #[pin]
    c: Opaque<bindings::net_devmem_dmabuf_binding>,
    /// The free `net_iov`s, taken from NAPI and from process context.
    #[pin]
    free: SpinLockBh<FreeList>,
}

/// A published binding.
///
/// # Invariants
///
/// The wrapped structure was fully set up by [`RawBinding`] and published by
/// [`RawBinding::publish`]; it is freed only after its reference count drops
/// to zero.
#[repr(transparent)]
pub(crate) struct Binding(BindingStorage);

// SAFETY: a binding is shared between contexts by design: fields that change
// after publication (`dev`, the queue table, the reference count) are
// accessed atomically or under their locks.
unsafe impl Sync for Binding {}
// SAFETY: see `Sync`; nothing in it is tied to a thread.
unsafe impl Send for Binding {}

// SAFETY: the binding is freed only after its `percpu_ref` drops to zero
// (`binding_release` schedules the free), so each increment keeps it alive
// until the matching decrement; every published binding is counted.
unsafe impl AlwaysRefCounted for Binding {
    fn inc_ref(&self) {
        // SAFETY: `&self` proves a reference is held, so the count is above
        // zero and `percpu_ref_get` may add one.
        unsafe { bindings::percpu_ref_get(self.ref_ptr()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller owns the reference being dropped, so the
        // binding is alive until this put.
        unsafe { bindings::percpu_ref_put(obj.as_ref().ref_ptr()) };
    }
}

/// A carved `net_iov`'s place among its binding's: its index in the
/// binding's free list.
///
/// # Safety
///
/// `niov` must be a `net_iov` carved by [`RawBinding::add_chunk`] for a
/// binding that is alive for the call and whose `net_iov`s are of `size`.
unsafe fn niov_slot(niov: NonNull<bindings::net_iov>, size: NiovSize) -> usize {
    // SAFETY: per the function's contract the `net_iov` and its chunk owner
    // are alive for the call.
    let niov = unsafe { NetIov::from_raw(niov.as_ptr()) }.expect("non-null");
    niov.slot(size)
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
        // `BindingStorage` (`RawBinding::new`), which `Binding` wraps
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
        let binding = ptr.cast::<Self>();
        // SAFETY: the memory is valid for the RCU section (caller), and the
        // count was initialised before publication.
        let got = unsafe { bindings::percpu_ref_tryget(binding.as_ref().ref_ptr()) };
        // SAFETY: `tryget` just took the reference the `ARef` now owns.
        got.then(|| unsafe { ARef::from_raw(binding) })
    }

    /// The raw pointer.
    pub(crate) fn as_raw(&self) -> *mut bindings::net_devmem_dmabuf_binding {
        self.0.c.get()
    }

    /// Takes up to `max` (at most [`BATCH`]) free `net_iov`s under one lock
    /// and hands each to `each`, page_pool state cleared; returns how many.
    pub(crate) fn alloc_niovs<'a>(
        &'a self,
        max: usize,
        mut each: impl FnMut(OwnedNetIov<'a>),
    ) -> usize {
        let mut batch = [None; BATCH];
        let size = self.niov_size();
        let n = {
            let mut free = self.0.free.lock();
            let n = max.min(BATCH).min(free.len());
            for slot in &mut batch[..n] {
                // SAFETY: the list holds only `net_iov`s carved for this
                // binding (so of its `size`), which is alive while `self`
                // is borrowed.
                *slot = free.take(|p| unsafe { niov_slot(p, size) });
            }
            n
        };
        if n == 0 && max > 0 {
            self.count_alloc_fail();
        }
        for niov in batch[..n].iter().flatten() {
            // SAFETY: just taken off this binding's free list.
            each(unsafe { self.owned(*niov) });
        }
        n
    }

    /// One free `net_iov`, or `None` when all are in use.
    pub(crate) fn alloc_niov(&self) -> Option<OwnedNetIov<'_>> {
        let size = self.niov_size();
        // SAFETY: as in `alloc_niovs`.
        let niov = self.0.free.lock().take(|p| unsafe { niov_slot(p, size) });
        let Some(niov) = niov else {
            self.count_alloc_fail();
            return None;
        };
        // SAFETY: just taken off this binding's free list.
        Some(unsafe { self.owned(niov) })
    }

    /// Ownership of a `net_iov` taken off the free list, with its page_pool
    /// state cleared (it is about to be lent to a pool).
    ///
    /// # Safety
    ///
    /// `niov` was just taken off this binding's free list, and the caller
    /// gives up that allocation here.
    unsafe fn owned(&self, niov: NonNull<bindings::net_iov>) -> OwnedNetIov<'_> {
        // SAFETY: the list holds only `net_iov`s carved from this binding,
        // which outlives the borrow of `self`, and the caller passes on the
        // allocation of one just taken off it.
        let niov = unsafe {
            OwnedNetIov::from_allocation(NetIov::from_raw(niov.as_ptr()).expect("non-null"))
        };
        niov.reset_pp_state();
        niov
    }

    /// Gives `niov` back to its binding's free list. A `net_iov` of another
    /// binding, or one more than the binding has, is warned about (once, as
    /// C's release path does) and left alone.
    pub(crate) fn free_niov(&self, niov: OwnedNetIov<'_>) {
        if warn_on_once!(!core::ptr::eq(niov.binding(), self)) {
            return;
        }
        // `niov` is this binding's (checked above), so of its size.
        let slot = niov.niov().slot(self.niov_size());
        let raw = NonNull::new(niov.into_raw()).expect("non-null");
        let given = self.0.free.lock().give(raw, slot);
        warn_on_once!(!given);
    }

    fn ref_ptr(&self) -> *mut bindings::percpu_ref {
        // SAFETY: in bounds of the binding, which is alive (type invariant).
        unsafe { &raw mut (*self.as_raw()).ref_ }
    }

    /// Counts an allocation that found every `net_iov` in use, in the
    /// binding's per-CPU counters (dmabuf-get reports their sum).
    fn count_alloc_fail(&self) {
        // SAFETY: alive by the type invariant; `stats` was allocated before
        // publication and is freed with the binding.
        unsafe { bindings::net_devmem_dmabuf_alloc_failed(self.as_raw()) };
    }

    /// How many `net_iov`s are free, lent to no page pool.
    pub(crate) fn free_niovs(&self) -> usize {
        self.0.free.lock().len()
    }

    /// The size of the binding's `net_iov`s.
    pub(crate) fn niov_size(&self) -> NiovSize {
        // SAFETY: alive by the type invariant; `niov_shift` is set before
        // publication and never changed.
        let shift = unsafe { (*self.as_raw()).niov_shift };
        // Always in range: `RawBinding::new` wrote it from a `NiovSize`.
        NiovSize::from_shift(shift).unwrap_or(NiovSize::PAGE)
    }

    /// The binding's netlink ID.
    pub(crate) fn id(&self) -> u32 {
        // SAFETY: alive by the type invariant; `id` is set before publication.
        unsafe { (*self.as_raw()).id }
    }

    /// The device that does the DMA, or null once the binding let go of it
    /// (its last RX queue was uninstalled, or, for TX, it unregistered).
    ///
    /// Only compared here: the device may be gone as soon as this returns.
    pub(crate) fn dev(&self) -> *mut bindings::net_device {
        // SAFETY: alive by the type invariant. `dev` is written under `lock`
        // by `forget_device` and read locklessly by C, hence a volatile read
        // (`READ_ONCE`).
        unsafe { core::ptr::read_volatile(&raw const (*self.as_raw()).dev) }
    }

    /// The virtual device bind-tx was called on (netkit), only compared;
    /// null once that device unregistered.
    pub(crate) fn vdev(&self) -> *mut c_void {
        // SAFETY: alive by the type invariant; `vdev` is written under `lock`
        // by `forget_device`, hence a volatile read (`READ_ONCE`).
        unsafe { core::ptr::read_volatile(&raw const (*self.as_raw()).vdev) }
    }

    /// Forgets `dev` as the binding's device and as its virtual device,
    /// under the binding's lock, which the netlink socket's teardown takes
    /// to read them. Returns whether `dev` was the binding's device.
    ///
    /// Private: once the device is forgotten, unbind no longer closes its
    /// queues, so only the callers below, which hold a proof that nothing
    /// is installed or running on it any more, may do it.
    fn forget_device(&self, dev: *mut bindings::net_device) -> bool {
        let b = self.as_raw();
        // SAFETY: alive by the type invariant; the lock was initialised before
        // publication. Volatile writes (`WRITE_ONCE`) pair with lockless
        // readers, which only compare the pointers.
        unsafe {
            bindings::mutex_lock(&raw mut (*b).lock);
            if (*b).vdev == dev.cast() {
                core::ptr::write_volatile(&raw mut (*b).vdev, core::ptr::null_mut());
            }
            let gone = (*b).dev == dev;
            if gone {
                core::ptr::write_volatile(&raw mut (*b).dev, core::ptr::null_mut());
            }
            bindings::mutex_unlock(&raw mut (*b).lock);
            gone
        }
    }

    /// Ends the installation of the binding on `queue`; when it was the last
    /// one, the binding lets go of its device and unmaps the dma-buf (RX).
    pub(crate) fn uninstall_queue(&self, queue: &UninstalledQueue) {
        let Some((idx, _)) = self.rxqs().find(|&(_, q)| q == queue.0) else {
            return;
        };
        if self.remove_rxq(idx) {
            self.forget_device(self.dev());
            self.unmap();
        }
    }

    /// Lets go of `dev`, which unregisters, if this TX binding uses it (as
    /// its device or as the virtual device bind-tx was called on); unmaps the
    /// dma-buf when it was the binding's device. RX bindings let go of their
    /// device through [`Binding::uninstall_queue`].
    pub(crate) fn device_unregisters(&self, dev: &UnregisteringDevice) {
        if self.is_tx() && (self.dev() == dev.0 || self.vdev() == dev.0.cast()) {
            if self.forget_device(dev.0) {
                self.unmap();
            }
        }
    }

    /// Unmaps the dma-buf, once the binding let go of its device.
    ///
    /// Nothing DMAs into or out of the buffer after that, and with an IOMMU
    /// the device's translations go with the device, so the mapping must
    /// not wait for the last reference (a socket or an skb may hold one long
    /// after). The attachment, and the device reference taken for it, stay
    /// until the binding is freed, which unmaps only what is still mapped.
    fn unmap(&self) {
        let b = self.as_raw();
        // SAFETY: alive by the type invariant. The binding owns `attachment`
        // and `sgt` (a mapping of it in `direction`); `sgt` is taken only
        // under `lock`, here, or by the free path, which runs after every
        // reference, including the caller's, is gone.
        let mapping = unsafe {
            bindings::mutex_lock(&raw mut (*b).lock);
            let sgt = core::ptr::replace(&raw mut (*b).sgt, core::ptr::null_mut());
            bindings::mutex_unlock(&raw mut (*b).lock);
            let dir = Direction::from_raw((*b).direction).unwrap_or(Direction::FromDevice);
            match (NonNull::new((*b).attachment), NonNull::new(sgt)) {
                (Some(att), Some(sgt)) => Some(Mapping::from_raw(att, sgt, dir)),
                _ => None,
            }
        };
        drop(mapping);
    }

    /// The kernel address of the dma-buf's bytes at `offset`, good for
    /// `len` bytes, if the binding keeps a kernel mapping (its device moves
    /// data with the CPU) and the range lies within the buffer.
    pub(crate) fn cpu_addr(&self, offset: usize, len: usize) -> Option<NonNull<c_void>> {
        // SAFETY: `vmap` is set before publication and unmapped only when
        // the binding is freed, after this borrow.
        let base = unsafe { (*self.as_raw()).vmap.__bindgen_anon_1.vaddr };
        let base = NonNull::new(base)?;
        if offset.checked_add(len)? > self.dmabuf_size() {
            return None;
        }
        // SAFETY: the mapping covers the whole dma-buf and the range was just
        // checked to lie within it.
        Some(unsafe { base.byte_add(offset) })
    }

    /// Size of the bound dma-buf.
    pub(crate) fn dmabuf_size(&self) -> usize {
        // SAFETY: the dma-buf is referenced by the binding until it is freed.
        unsafe { (*(*self.as_raw()).dmabuf).size }
    }

    /// Whether this is a TX binding.
    pub(crate) fn is_tx(&self) -> bool {
        // SAFETY: `tx_vec` does not change after publication.
        unsafe { !(*self.as_raw()).tx_vec.is_null() }
    }

    /// The `net_iov` of page `page` of a TX binding's dma-buf (a TX
    /// binding's `net_iov`s are pages); `None` for an RX binding or a page
    /// past the end.
    pub(crate) fn tx_niov(&self, page: usize) -> Option<NetIov<'_>> {
        if !self.is_tx() || page >= self.dmabuf_size() / NiovSize::PAGE.bytes() {
            return None;
        }
        // SAFETY: `tx_vec` holds `dmabuf_size() / PAGE_SIZE` entries, each a
        // `net_iov` of this binding's pool, which lives as long as `self`.
        unsafe { NetIov::from_raw(*(*self.as_raw()).tx_vec.add(page)) }
    }

    /// The parameters that install this binding as a queue's provider.
    /// Private: the binding outlives an installation only because every one
    /// is recorded in its queue table ([`Binding::install_on`]).
    fn mp_params(&self) -> MpParams {
        // SAFETY: the devmem ops take a binding as their private data. A
        // binding outlives its installations: each is recorded in the queue
        // table by `install_on`, unbind closes every recorded queue before
        // dropping the socket's reference, and each page pool holds a
        // reference of its own.
        unsafe {
            MpParams::new(
                self.as_raw().cast(),
                &crate::provider::DMABUF_DEVMEM_OPS,
                self.rx_page_size(),
            )
        }
    }

    /// The buffer size the binding asks of its queues: 0 (the device's
    /// default) unless it was made with a larger rx-page-size.
    fn rx_page_size(&self) -> u32 {
        let size = self.niov_size();
        if size == NiovSize::PAGE {
            0
        } else {
            // At most a page block (`NiovSize`'s invariant), far below 4 GiB.
            size.bytes() as u32
        }
    }

    /// Installs the binding as the memory provider of RX queue `idx` of
    /// `dev` (locked, by `NetDevice`'s contract) and records the queue, so
    /// that unbind closes it again; undone if it cannot be recorded.
    pub(crate) fn install_on(&self, dev: &NetDevice, idx: u32, extack: &Extack) -> Result {
        let params = self.mp_params();
        dev.mp_open_rxq(idx, &params, extack)?;
        // `netif_mp_open_rxq` accepted `idx`, so the queue exists.
        let recorded = dev
            .rx_queue(idx)
            .ok_or(EINVAL)
            .and_then(|rxq| self.add_rxq(rxq));
        recorded.inspect_err(|_| dev.mp_close_rxq(idx, &params))
    }

    /// Closes every queue of `dev`, the binding's device, that the binding is
    /// installed on (unbind).
    pub(crate) fn close_queues(&self, dev: &NetDevice) {
        let params = self.mp_params();
        for (_, rxq) in self.rxqs() {
            dev.mp_close_rxq(rxq.index(), &params);
        }
    }

    /// Records `rxq` as bound to this binding. Private: only a queue the
    /// binding was just installed on may be recorded ([`Binding::install_on`]).
    fn add_rxq(&self, rxq: RxQueue) -> Result {
        let mut idx = 0u32;
        let limit = bindings::xa_limit {
            min: 0,
            max: u32::MAX,
        };
        // SAFETY: the table was initialised before publication; the xarray
        // locks itself.
        to_result(unsafe {
            bindings::xa_alloc(
                &raw mut (*self.as_raw()).bound_rxqs,
                &mut idx,
                rxq.as_raw().cast(),
                limit,
                bindings::GFP_KERNEL,
            )
        })
    }

    /// The bound RX queues, as `(table index, queue)`, looked up one at a time
    /// so the table may change while they are visited (closing a queue
    /// removes it through `uninstall`).
    pub(crate) fn rxqs(&self) -> impl Iterator<Item = (usize, RxQueue)> + '_ {
        // SAFETY: the table lives as long as the binding.
        let xa = unsafe { &raw mut (*self.as_raw()).bound_rxqs };
        let mut index: usize = 0;
        let mut first = true;
        core::iter::from_fn(move || {
            // SAFETY: `xa` is a live xarray; `xa_find*` lock internally.
            let entry = unsafe {
                if first {
                    first = false;
                    bindings::xa_find(xa, &mut index, usize::MAX, bindings::XA_PRESENT)
                } else {
                    bindings::xa_find_after(xa, &mut index, usize::MAX, bindings::XA_PRESENT)
                }
            };
            // SAFETY: the table holds RX queues of the bound device, removed
            // by `uninstall` before the device goes away.
            unsafe { RxQueue::from_raw(entry.cast()) }.map(|q| (index, q))
        })
    }

    /// Forgets the queue at table index `idx`; returns whether none remain.
    /// Private for the same reason as `forget_device`.
    fn remove_rxq(&self, idx: usize) -> bool {
        // SAFETY: the table lives as long as the binding.
        unsafe {
            let xa = &raw mut (*self.as_raw()).bound_rxqs;
            bindings::xa_erase(xa, idx);
            bindings::xa_empty(xa)
        }
    }
}

/// An RX queue whose memory provider installation is ending: the queue no
/// longer fills buffers from it (the device unregisters, or a queue lease
/// ends and the physical queue was reconfigured without it).
///
/// # Invariants
///
/// The queue is stopped for the binding: it will not DMA into its buffer.
pub(crate) struct UninstalledQueue(RxQueue);

impl UninstalledQueue {
    /// # Safety
    ///
    /// The core is uninstalling the provider from `rxq` (the `uninstall`
    /// memory provider callback), after the queue stopped using it.
    pub(crate) unsafe fn new(rxq: RxQueue) -> Self {
        // INVARIANT: per the caller.
        Self(rxq)
    }
}

/// A net device that unregisters: its queues are stopped, their providers
/// uninstalled, and it transmits nothing more.
///
/// # Invariants
///
/// `self.0` is such a device; it is only compared.
pub(crate) struct UnregisteringDevice(*mut bindings::net_device);

impl UnregisteringDevice {
    /// # Safety
    ///
    /// Called from the unregister path of `dev`, after `dev_shutdown()` and
    /// the uninstall of its RX queues' memory providers.
    pub(crate) unsafe fn new(dev: *mut bindings::net_device) -> Self {
        // INVARIANT: per the caller.
        Self(dev)
    }
}

/// The initial reference of a published binding: the netlink socket holds
/// it, on its list of bindings, from bind until unbind.
///
/// Dropping it drops that reference and switches the count to atomic mode
/// (`percpu_ref_kill`): the binding is freed once the page pools and
/// `net_iov`s still using it let go.
///
/// # Invariants
///
/// `self.0` is a published binding whose initial reference this value owns.
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
    /// `ptr` must come from [`RawBinding::publish`] and not have been taken
    /// back yet.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::net_devmem_dmabuf_binding) -> Self {
        // INVARIANT: per the caller, the initial reference is passed back.
        Self(NonNull::new(ptr.cast()).expect("binding pointer"))
    }

    /// Unlinks the binding from its netlink socket's list, if it was linked.
    ///
    /// # Safety
    ///
    /// The caller holds the lock of the socket the binding was linked on.
    pub(crate) unsafe fn unlink(&self) {
        // SAFETY: `list` is either all-zero (never linked) or on a socket's
        // list, whose lock the caller holds.
        unsafe {
            let list = &raw mut (*self.as_raw()).list;
            if !(*list).next.is_null() {
                bindings::list_del(list);
            }
        }
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
    fn drop(&mut self) {
        // SAFETY: this value owns the initial reference (type invariant),
        // which `percpu_ref_kill` drops; it runs once, here.
        unsafe { bindings::percpu_ref_kill(self.ref_ptr()) };
    }
}

/// A binding that is being built or freed, owned.
///
/// # Invariants
///
/// `self.0` is a `net_devmem_dmabuf_binding` allocated and initialised by
/// [`RawBinding::new`], whose non-null resource fields are owned by it: each
/// was stored by a `RawBinding` method from the matching owner type.
pub(crate) struct RawBinding(
    NonNull<bindings::net_devmem_dmabuf_binding>,
    /// The `net_iov`s carved so far, all free; moved into the binding by
    /// [`RawBinding::publish`]. Filled here, outside the binding's lock,
    /// because carving allocates.
    FreeList,
);

impl RawBinding {
    /// Allocates a binding for `dev` with `net_iov`s of `size`, on the
    /// device's NUMA node, with its lock, queue table and reference count
    /// initialised in place; the count's release schedules [`free_work`].
    pub(crate) fn new(
        dev: &NetDevice,
        vdev: *mut c_void,
        dir: Direction,
        size: NiovSize,
        release: bindings::percpu_ref_func_t,
    ) -> Result<Self> {
        let dev_raw = dev.as_raw();
        let c = Opaque::<bindings::net_devmem_dmabuf_binding>::try_ffi_init(
            move |b: *mut bindings::net_devmem_dmabuf_binding| -> Result {
                // SAFETY: `b` is valid for writes of one binding and pinned.
                // All-zero gives null resource pointers and an unlinked list
                // node; the lock, table and count are then initialised where
                // they will stay, with a static lock class for the lock.
                unsafe {
                    b.write_bytes(0, 1);
                    (*b).dev = dev_raw;
                    (*b).vdev = vdev;
                    (*b).direction = dir.as_raw();
                    (*b).niov_shift = size.shift();
                    // The counters dmabuf-get sums, zeroed; the free path
                    // releases them. A per-CPU cookie, never dereferenced
                    // here: C updates and sums it.
                    (*b).stats = bindings::net_devmem_dmabuf_stats_alloc();
                    if (*b).stats.is_null() {
                        return Err(ENOMEM);
                    }
                    bindings::xa_init_flags(&raw mut (*b).bound_rxqs, bindings::XA_FLAGS_ALLOC);
                    bindings::__mutex_init(
                        &raw mut (*b).lock,
                        c"&binding->lock".as_char_ptr(),
                        kernel::static_lock_class!().as_ptr(),
                    );
                    to_result(bindings::percpu_ref_init(
                        &raw mut (*b).ref_,
                        release,
                        0,
                        bindings::GFP_KERNEL,
                    ))
                    .inspect_err(|_| bindings::free_percpu((*b).stats.cast()))
                }
            },
        );
        // The free list first: if the C part fails, dropping the list is all
        // the unwinding needed.
        let init = try_pin_init!(BindingStorage {
            free <- new_spinlock_bh!(FreeList::new(), c"binding->free"),
            c <- c,
        }? Error);
        let boxed: Pin<KBox<BindingStorage>> =
            kbox_pin_init_on(init, GFP_KERNEL, node(dev.numa_node()))?;
        // SAFETY: the binding is never moved out of its allocation: only its
        // address is kept, and `drop` frees it in place.
        let ptr = KBox::into_raw(unsafe { Pin::into_inner_unchecked(boxed) });
        // INVARIANT: just initialised; it owns no resource yet.
        Ok(Self(
            NonNull::new(ptr.cast()).ok_or(ENOMEM)?,
            FreeList::new(),
        ))
    }

    /// Takes back ownership of a binding whose last reference is gone.
    ///
    /// # Safety
    ///
    /// `ptr` must be a binding published by this provider whose reference
    /// count dropped to zero, and this must be the only such call for it.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::net_devmem_dmabuf_binding) -> Self {
        // INVARIANT: a published binding holds only owned resources.
        Self(NonNull::new(ptr).expect("binding pointer"), FreeList::new())
    }

    fn ptr(&self) -> *mut bindings::net_devmem_dmabuf_binding {
        self.0.as_ptr()
    }

    /// Stores the dma-buf reference and, for a device that moves data with
    /// the CPU (`cpu_access`), a kernel mapping of it. The reference is
    /// stored even if the mapping fails, so that dropping the binding still
    /// detaches and puts it.
    pub(crate) fn set_dmabuf(&mut self, dmabuf: DmaBuf, cpu_access: bool) -> Result {
        let map = if cpu_access {
            dmabuf.vmap().map(|m| Some(m.into_raw()))
        } else {
            Ok(None)
        };
        // SAFETY: `self.0` is ours; the field takes over the reference.
        unsafe { (*self.ptr()).dmabuf = dmabuf.into_raw().as_ptr() };
        if let Some(map) = map? {
            // SAFETY: `self.0` is ours; the field takes over the mapping of
            // the binding's own dma-buf, which the free path unmaps.
            unsafe { (*self.ptr()).vmap = map };
        }
        Ok(())
    }

    /// Stores the attachment.
    pub(crate) fn set_attachment(&mut self, att: Attachment) {
        // SAFETY: `self.0` is ours; the field takes over the attachment.
        unsafe { (*self.ptr()).attachment = att.into_raw().as_ptr() };
    }

    /// Stores the mapping.
    pub(crate) fn set_mapping(&mut self, map: Mapping) {
        // SAFETY: `self.0` is ours; the field takes over the mapping.
        unsafe { (*self.ptr()).sgt = map.into_raw().as_ptr() };
    }

    /// Stores the TX page table; its length must be the dma-buf's page count.
    pub(crate) fn set_tx_vec(&mut self, vec: KVVec<*mut bindings::net_iov>) {
        let (ptr, len, cap) = vec.into_raw_parts();
        // The free path rebuilds the vector from the page count alone.
        debug_assert_eq!(len, cap);
        // SAFETY: `self.0` is ours; the field takes over the array.
        unsafe { (*self.ptr()).tx_vec = ptr };
    }

    /// Stores the genpool.
    pub(crate) fn set_pool(&mut self, pool: OwnedChunkPool) {
        // SAFETY: `self.0` is ours; the field takes over the pool.
        unsafe { (*self.ptr()).chunk_pool = pool.into_raw() };
    }

    /// The raw binding, for chunk owners to point back to.
    pub(crate) fn as_raw(&self) -> *mut bindings::net_devmem_dmabuf_binding {
        self.ptr()
    }

    /// The size of the binding's `net_iov`s, as given to [`RawBinding::new`].
    pub(crate) fn niov_size(&self) -> NiovSize {
        // SAFETY: `self.0` is ours; `new` set the field.
        let shift = unsafe { (*self.ptr()).niov_shift };
        NiovSize::from_shift(shift).unwrap_or(NiovSize::PAGE)
    }

    /// The ID field, filled in by the ID table.
    pub(crate) fn id_slot(&mut self) -> *mut u32 {
        // SAFETY: `self.0` is ours.
        unsafe { &raw mut (*self.ptr()).id }
    }

    /// Hands the finished binding over to its reference count and links it
    /// on `sock`'s list of bindings, which keeps the initial reference (C
    /// takes it back with [`OwnedBinding::from_raw`] at unbind). From here on
    /// it is freed by [`free_work`] after the last put.
    pub(crate) fn publish(mut self, sock: &NlSock) -> *mut bindings::net_devmem_dmabuf_binding {
        // The carved `net_iov`s become the binding's free list; the lock
        // only sees a move, the empty list it held is dropped after it.
        let carved = core::mem::replace(&mut self.1, FreeList::new());
        let empty = core::mem::replace(&mut *self.storage().free.lock(), carved);
        drop(empty);
        let ptr = self.ptr();
        // `self.1` is empty now: forgetting it leaks nothing.
        core::mem::forget(self);
        // SAFETY: the node is all-zero (never linked) and lives until unbind
        // unlinks it; `&NlSock` proves the socket is locked.
        unsafe { sock.add(&raw mut (*ptr).list) };
        ptr
    }

    fn storage(&self) -> &BindingStorage {
        // SAFETY: `self.0` is the first field of a `BindingStorage` (`new`),
        // alive while `self` owns it.
        unsafe { &*self.ptr().cast::<BindingStorage>() }
    }

    /// Makes room in the free list for `count` `net_iov`s in `segments`
    /// segments, so that giving one back never allocates.
    pub(crate) fn reserve_niovs(&mut self, count: usize, segments: usize) -> Result {
        self.1.reserve(count, segments)
    }

    /// Carves DMA segment `dma`/`len`, at offset `virt` of the dma-buf, into
    /// `net_iov`s of this binding's genpool (set with
    /// [`RawBinding::set_pool`]), all free; returns them in order.
    pub(crate) fn add_chunk(
        &mut self,
        dma: bindings::dma_addr_t,
        len: usize,
        virt: usize,
        nid: c_int,
    ) -> Result<impl Iterator<Item = *mut bindings::net_iov> + Clone> {
        // SAFETY: `self.0` is ours; the pool, if set, is owned by it.
        let pool = NonNull::new(unsafe { (*self.ptr()).chunk_pool }).ok_or(EINVAL)?;
        let size = self.niov_size();
        // SAFETY: the pool is alive while `self` owns it, and it is this
        // binding's own, so the chunk owners point back to the binding that
        // frees them with the pool.
        let niovs = unsafe {
            ChunkPool::from_raw(pool.as_ptr()).add_chunk(self.ptr(), dma, len, virt, nid, size)?
        };
        // The chunk covers slots `virt >> shift` onwards, in order: the free
        // list hands them out from its first `net_iov` on.
        let mut all = niovs.clone();
        if let Some(first) = all.next() {
            self.1
                .add(NonNull::new(first).ok_or(EINVAL)?, len >> size.shift())?;
        }
        Ok(niovs)
    }
}

impl Drop for RawBinding {
    /// Releases in the reverse order of acquisition: chunk owners and genpool
    /// (leaked with a warning if `net_iov`s are outstanding), TX table,
    /// kernel mapping, DMA mapping (with its own direction), attachment,
    /// dma-buf, queue table,
    /// reference count, the structure itself.
    fn drop(&mut self) {
        let b = self.ptr();
        let size = self.niov_size();
        // SAFETY: every non-null field is owned by `self` (type invariant) and
        // is turned back into its owner type exactly once, here; the
        // structure was allocated by `new` as a `KBox<BindingStorage>`.
        unsafe {
            if let Some(pool) = NonNull::new((*b).chunk_pool) {
                // Before publication the free `net_iov`s are in `self.1`,
                // after it in the binding.
                let free = self.1.len() + self.storage().free.lock().len();
                OwnedChunkPool::from_raw(pool).destroy(free * size.bytes());
            }
            let dmabuf = NonNull::new((*b).dmabuf);
            if !(*b).tx_vec.is_null() {
                let pages = dmabuf.map_or(0, |d| (*d.as_ptr()).size / NiovSize::PAGE.bytes());
                drop(KVVec::from_raw_parts((*b).tx_vec, pages, pages));
            }
            if let Some(d) = dmabuf {
                if !(*b).vmap.__bindgen_anon_1.vaddr.is_null() {
                    drop(KernelMap::from_raw(d, (*b).vmap));
                }
            }
            if let (Some(att), Some(sgt)) = (NonNull::new((*b).attachment), NonNull::new((*b).sgt))
            {
                let dir = Direction::from_raw((*b).direction).unwrap_or(Direction::FromDevice);
                drop(Mapping::from_raw(att, sgt, dir));
            }
            if let (Some(d), Some(att)) = (dmabuf, NonNull::new((*b).attachment)) {
                drop(Attachment::from_raw(d, att));
            }
            if let Some(d) = dmabuf {
                drop(DmaBuf::from_raw(d));
            }
            bindings::xa_destroy(&raw mut (*b).bound_rxqs);
            bindings::free_percpu((*b).stats.cast());
            bindings::percpu_ref_exit(&raw mut (*b).ref_);
            bindings::mutex_destroy(&raw mut (*b).lock);
            drop(KBox::from_raw(b.cast::<BindingStorage>()));
        }
    }
}

/// The work item that frees a binding whose last reference is gone
/// (exported as `__net_devmem_dmabuf_binding_free`).
///
/// # Safety
///
/// `work` must be the `unbind_w` of a binding whose count dropped to zero.
pub(crate) unsafe fn free_work(work: *mut bindings::work_struct) {
    // SAFETY: per the contract `work` is embedded in a dead binding, which
    // nothing else references any more.
    unsafe {
        let b = kernel::container_of!(work, bindings::net_devmem_dmabuf_binding, unbind_w);
        drop(RawBinding::from_raw(b));
    }
}

/// The percpu_ref release: runs in RCU context, so it only schedules the free.
///
/// # Safety
///
/// `r` must be the `ref` of a published binding whose count dropped to zero.
pub(crate) unsafe fn schedule_free(r: *mut bindings::percpu_ref, work_fn: bindings::work_func_t) {
    // SAFETY: per the contract `r` is embedded in a binding; its `unbind_w`
    // is unused until now, and is initialised in place here.
    unsafe {
        let b = kernel::container_of!(r, bindings::net_devmem_dmabuf_binding, ref_);
        let work = &raw mut (*b).unbind_w;
        bindings::init_work_with_key(
            work,
            work_fn,
            false,
            c"binding->unbind_w".as_char_ptr(),
            kernel::static_lock_class!().as_ptr(),
        );
        bindings::schedule_work(work);
    }
}
