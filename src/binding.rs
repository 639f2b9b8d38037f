// SPDX-License-Identifier: GPL-2.0

//! The binding object, kept in the C layout of
//! `struct net_devmem_dmabuf_binding`: TCP, `dev.c` and `netdev-genl.c` read
//! its fields (`id`, `dev`, `lock`, `list`, `ref`) through `devmem.h`.
//!
//! [`RawBinding`] owns one while it is built and after its last reference is
//! gone; dropping it releases whatever it holds, in the reverse order of
//! acquisition. [`Binding`] is the shared view used while references exist.
//!
//! C header: [`net/core/devmem.h`](srctree/net/core/devmem.h)

use crate::dma_buf::{Attachment, Direction, DmaBuf, Mapping};
use crate::genpool::{ChunkPool, OwnedChunkPool};
use crate::net::{NetDevice, NlSock, RxQueue};
use crate::netmem::NetIov;
use core::ptr::NonNull;
use kernel::{alloc::KVVec, bindings, error::to_result, prelude::*, types::Opaque};

/// A live binding.
///
/// # Invariants
///
/// The wrapped structure was fully set up by [`RawBinding::publish`] and its
/// reference count has not dropped to zero while a `&Binding` exists.
#[repr(transparent)]
pub(crate) struct Binding(Opaque<bindings::net_devmem_dmabuf_binding>);

// SAFETY: a binding is shared between contexts by design: fields that change
// after publication (`dev`, the queue table, the reference count) are
// accessed atomically or under their locks.
unsafe impl Sync for Binding {}
// SAFETY: see `Sync`; nothing in it is tied to a thread.
unsafe impl Send for Binding {}

impl Binding {
    /// Wraps a binding pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must be a binding published by this provider that stays alive
    /// for `'a` (the caller holds a reference, or runs where one is held).
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::net_devmem_dmabuf_binding) -> &'a Self {
        // SAFETY: transparent wrapper over `Opaque`; liveness per the caller.
        unsafe { &*ptr.cast() }
    }

    /// The raw pointer.
    pub(crate) fn as_raw(&self) -> *mut bindings::net_devmem_dmabuf_binding {
        self.0.get()
    }

    /// The binding's netlink ID.
    pub(crate) fn id(&self) -> u32 {
        // SAFETY: alive by the type invariant; `id` is set before publication.
        unsafe { (*self.as_raw()).id }
    }

    /// The device that does the DMA, or null once its last queue is gone.
    pub(crate) fn dev(&self) -> *mut bindings::net_device {
        // SAFETY: alive by the type invariant. `dev` is written under `lock`
        // by `clear_dev` and read locklessly by C, hence a volatile read
        // (`READ_ONCE`).
        unsafe { core::ptr::read_volatile(&raw const (*self.as_raw()).dev) }
    }

    /// The device, while the binding still has one. Used by unbind, whose
    /// caller keeps the device alive and locked.
    pub(crate) fn bound_dev(&self) -> Option<&NetDevice> {
        let dev = self.dev();
        // SAFETY: a non-null `dev` is a registered device: `uninstall`
        // clears it before the device goes away, and unbind's caller holds it.
        (!dev.is_null()).then(|| unsafe { NetDevice::from_raw(dev) })
    }

    /// The virtual device bind-tx was called on (netkit), only compared.
    pub(crate) fn vdev(&self) -> *mut c_void {
        // SAFETY: alive by the type invariant; `vdev` never changes.
        unsafe { core::ptr::read_volatile(&raw const (*self.as_raw()).vdev) }
    }

    /// Forgets the device after its last queue went away, under the
    /// binding's lock, which the netlink socket's teardown takes to read it.
    pub(crate) fn clear_dev(&self) {
        let b = self.as_raw();
        // SAFETY: alive by the type invariant; the lock was initialised before
        // publication. `WRITE_ONCE` pairs with lockless readers.
        unsafe {
            bindings::mutex_lock(&raw mut (*b).lock);
            core::ptr::write_volatile(&raw mut (*b).dev, core::ptr::null_mut());
            bindings::mutex_unlock(&raw mut (*b).lock);
        }
    }

    /// Takes a reference unless the count already dropped to zero.
    pub(crate) fn tryget(&self) -> bool {
        // SAFETY: the percpu_ref was initialised before publication.
        unsafe { bindings::percpu_ref_tryget(&raw mut (*self.as_raw()).ref_) }
    }

    /// Drops a reference. The last one schedules the free.
    pub(crate) fn put(&self) {
        // SAFETY: as `tryget`; the caller owns the reference it drops.
        unsafe { bindings::percpu_ref_put(&raw mut (*self.as_raw()).ref_) }
    }

    /// Drops the initial reference and switches the count to atomic mode.
    pub(crate) fn kill(&self) {
        // SAFETY: as `tryget`; called once, by unbind.
        unsafe { bindings::percpu_ref_kill(&raw mut (*self.as_raw()).ref_) }
    }

    /// The genpool of the binding's `net_iov`s.
    pub(crate) fn pool(&self) -> &ChunkPool {
        // SAFETY: the pool is set before publication and freed only with the
        // binding.
        unsafe { ChunkPool::from_raw((*self.as_raw()).chunk_pool) }
    }

    /// Size of the bound dma-buf.
    pub(crate) fn dmabuf_size(&self) -> usize {
        // SAFETY: the dma-buf is referenced by the binding until it is freed.
        unsafe { (*(*self.as_raw()).dmabuf).size }
    }

    /// The `net_iov` of page `page` of a TX binding's dma-buf, or `None` for an
    /// RX binding.
    pub(crate) fn tx_niov(&self, page: usize) -> Option<NetIov> {
        // SAFETY: `tx_vec` is set before publication (null for RX) and holds
        // `dmabuf_size() / PAGE_SIZE` entries; the caller checked the bound.
        unsafe {
            let vec = (*self.as_raw()).tx_vec;
            if vec.is_null() {
                return None;
            }
            NetIov::from_raw(*vec.add(page))
        }
    }

    /// Whether this is a TX binding.
    pub(crate) fn is_tx(&self) -> bool {
        // SAFETY: `tx_vec` does not change after publication.
        unsafe { !(*self.as_raw()).tx_vec.is_null() }
    }

    /// Records `rxq` as bound to this binding.
    pub(crate) fn add_rxq(&self, rxq: RxQueue) -> Result {
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
        let xa = {
            // SAFETY: the table lives as long as the binding.
            unsafe { &raw mut (*self.as_raw()).bound_rxqs }
        };
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
            // SAFETY: the table holds RX queues of the bound device only.
            unsafe { RxQueue::from_raw(entry.cast()) }.map(|q| (index, q))
        })
    }

    /// Forgets the queue at table index `idx`; returns whether none remain.
    pub(crate) fn remove_rxq(&self, idx: usize) -> bool {
        // SAFETY: the table lives as long as the binding.
        unsafe {
            let xa = &raw mut (*self.as_raw()).bound_rxqs;
            bindings::xa_erase(xa, idx);
            bindings::xa_empty(xa)
        }
    }

    /// Unlinks the binding from its netlink socket's list, if it was linked.
    pub(crate) fn unlink(&self) {
        // SAFETY: `list` is either all-zero (never linked) or linked on a
        // socket's list, whose lock the caller (unbind) holds.
        unsafe {
            let list = &raw mut (*self.as_raw()).list;
            if !(*list).next.is_null() {
                bindings::list_del(list);
            }
        }
    }

    /// Links the binding on `sock`'s list of bindings.
    pub(crate) fn link(&self, sock: &NlSock) {
        // SAFETY: the node is unlinked (publication just happened) and lives
        // until `unlink` removes it.
        unsafe { sock.add(&raw mut (*self.as_raw()).list) };
    }
}

/// A binding that is being built or freed, owned.
///
/// # Invariants
///
/// `self.0` is a zero-initialised `net_devmem_dmabuf_binding` allocated by
/// [`RawBinding::new`], whose non-null resource fields are owned by it: each
/// was stored by a `RawBinding` method from the matching owner type.
pub(crate) struct RawBinding(NonNull<bindings::net_devmem_dmabuf_binding>);

impl RawBinding {
    /// Allocates a binding for `dev` with its lock, queue table and reference
    /// count set up; the count's release schedules [`free_work`].
    pub(crate) fn new(
        dev: &NetDevice,
        vdev: *mut c_void,
        dir: Direction,
        release: bindings::percpu_ref_func_t,
    ) -> Result<Self> {
        // SAFETY: all-zero is a valid binding: null pointers, an empty list
        // node, a zeroed (uninitialised but safely exit-able) percpu_ref.
        let b = KBox::<bindings::net_devmem_dmabuf_binding>::new(
            unsafe { core::mem::zeroed() },
            GFP_KERNEL,
        )?;
        let raw = Self(NonNull::from(KBox::leak(b)));
        let b = raw.0.as_ptr();
        // SAFETY: `b` is ours and valid; the lock class key is static.
        unsafe {
            (*b).dev = dev.as_raw();
            (*b).vdev = vdev;
            (*b).direction = dir.as_raw();
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
            ))?;
        }
        Ok(raw)
    }

    /// Takes back ownership of a binding whose last reference is gone.
    ///
    /// # Safety
    ///
    /// `ptr` must be a binding published by this provider whose reference
    /// count dropped to zero, and this must be the only such call for it.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::net_devmem_dmabuf_binding) -> Self {
        // INVARIANT: a published binding holds only owned resources.
        Self(NonNull::new(ptr).expect("binding pointer"))
    }

    fn ptr(&self) -> *mut bindings::net_devmem_dmabuf_binding {
        self.0.as_ptr()
    }

    /// Stores the dma-buf reference.
    pub(crate) fn set_dmabuf(&mut self, dmabuf: DmaBuf) {
        // SAFETY: `self.0` is ours; the field takes over the reference.
        unsafe { (*self.ptr()).dmabuf = dmabuf.into_raw().as_ptr() };
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

    /// Stores the TX page table.
    pub(crate) fn set_tx_vec(&mut self, vec: KVVec<*mut bindings::net_iov>) {
        let (ptr, _len, _cap) = vec.into_raw_parts();
        // SAFETY: `self.0` is ours; the field takes over the array, whose
        // capacity is the dma-buf's page count (see `drop`).
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

    /// The ID field, filled in by the ID table.
    pub(crate) fn id_slot(&mut self) -> *mut u32 {
        // SAFETY: `self.0` is ours.
        unsafe { &raw mut (*self.ptr()).id }
    }

    /// Hands the finished binding over to its reference count: from here on
    /// it is freed by [`free_work`] after the last put.
    pub(crate) fn publish(self) -> &'static Binding {
        let ptr = self.ptr();
        core::mem::forget(self);
        // SAFETY: fully set up; it stays alive until its count drops to zero,
        // which only the holders of its references can cause.
        unsafe { Binding::from_raw(ptr) }
    }
}

impl Drop for RawBinding {
    /// Releases in the reverse order of acquisition: chunk owners and genpool
    /// (leaked with a warning if `net_iov`s are outstanding), TX table,
    /// mapping (with its own direction), attachment, dma-buf, queue table,
    /// reference count, the structure itself.
    fn drop(&mut self) {
        let b = self.ptr();
        // SAFETY: every non-null field is owned by `self` (type invariant) and
        // is turned back into its owner type exactly once, here.
        unsafe {
            if let Some(pool) = NonNull::new((*b).chunk_pool) {
                drop(OwnedChunkPool::from_raw(pool));
            }
            let dmabuf = NonNull::new((*b).dmabuf);
            if !(*b).tx_vec.is_null() {
                let pages = dmabuf.map_or(0, |d| (*d.as_ptr()).size / kernel::page::PAGE_SIZE);
                drop(KVVec::from_raw_parts((*b).tx_vec, pages, pages));
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
            bindings::percpu_ref_exit(&raw mut (*b).ref_);
            bindings::mutex_destroy(&raw mut (*b).lock);
            drop(KBox::from_raw(b));
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
    // is unused until now.
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
