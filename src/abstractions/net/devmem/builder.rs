// SPDX-License-Identifier: GPL-2.0

//! Building a binding, in stages the type system orders.
//!
//! [`Builder<New>`] has the structure, its lock, queue table, stats and
//! reference count; [`Builder::map`] attaches and maps the dma-buf (the
//! attachment and the mapping are made together, so they always belong to
//! each other); [`Builder::carve`] cuts the mapping into `net_iov`s, and for
//! TX fills the page table, whose length it makes; [`Builder::finish`] maps
//! the buffer for the CPU if asked and installs the free list, giving a
//! [`Complete`] binding, the only kind [`Complete::publish`] makes visible
//! (ID table, then the socket's list). Dropping a builder, or a `Complete`,
//! at any stage releases what it holds, synchronously.

use super::arena::MAX_NIOVS;
use super::niov_size::NiovSize;
use super::{ids, BindingStorage, FreeList, Shape, Teardown};
use crate::abstractions::alloc::{kbox_pin_init_on, node};
use crate::abstractions::dma_buf::DmaBuf;
use crate::abstractions::net::{DeviceId, Extack, NetDevice};
use crate::abstractions::percpu_ref::PercpuRef;
use crate::abstractions::sync::new_spinlock_bh;
use core::{pin::Pin, ptr::NonNull};
use kernel::{
    alloc::KVVec, bindings, device::Device, dma::DataDirection, error::to_result,
    fs::file::LocalFile, prelude::*, scatterlist::SGTable, sync::SetOnce, types::Opaque,
};

/// Stage: allocated and initialised; the dma-buf, held here, is not yet
/// attached.
pub(crate) struct New(DmaBuf);
/// Stage: dma-buf referenced, attached and mapped.
pub(crate) struct Mapped;
/// Stage: carved into `net_iov`s (and the TX page table filled).
pub(crate) struct Carved;

/// A binding being built.
///
/// # Invariants
///
/// `raw` owns a binding allocated by [`Builder::new`] that nothing else
/// can reach; `S` says what it holds: from [`Mapped`] on, `dmabuf`,
/// `attachment` and `sgt` (a mapping of that attachment in `direction`);
/// from [`Carved`] on, every segment of the mapping carved into `raw.1`'s
/// arena and, for TX, a `tx_vec` of one entry per page.
pub(crate) struct Builder<S> {
    raw: Teardown,
    stage: S,
}

impl<S> Builder<S> {
    fn c(&self) -> *mut bindings::net_devmem_dmabuf_binding {
        self.raw.0.as_ptr()
    }

    fn next<T>(self, stage: T) -> Builder<T> {
        // INVARIANT: each caller moves on only once the next stage holds.
        Builder {
            raw: self.raw,
            stage,
        }
    }

    fn shape(&self) -> Shape {
        self.raw.storage().shape
    }
}

impl Builder<New> {
    /// Allocates a binding of `dmabuf` for `dev` with `net_iov`s of `size`,
    /// on the device's NUMA node, with its lock, queue table, stats and
    /// reference count initialised in place. `vdev` is the virtual device
    /// bind-tx was called on (netkit), only ever compared.
    pub(crate) fn new(
        dev: &NetDevice,
        vdev: Option<DeviceId>,
        dir: DataDirection,
        size: NiovSize,
        dmabuf: DmaBuf,
    ) -> Result<Self> {
        // A TX binding's `net_iov`s are pages: its table (`tx_vec`, read by
        // `Binding::tx_niov`) is indexed by page.
        if dir == DataDirection::ToDevice && size != NiovSize::PAGE {
            return Err(EINVAL);
        }
        let shape = Shape {
            niov_size: size,
            dir,
            dmabuf_size: dmabuf.size(),
        };
        let dev_raw = dev.as_raw();
        let vdev_raw = vdev.map_or(core::ptr::null_mut(), |v| v.addr() as *mut c_void);
        let c = Opaque::<bindings::net_devmem_dmabuf_binding>::try_ffi_init(
            move |b: *mut bindings::net_devmem_dmabuf_binding| -> Result {
                // SAFETY: `b` is valid for writes of one binding and pinned.
                // All-zero gives null resource pointers and an unlinked list
                // node; the stats, table, lock and count are then initialised
                // where they will stay, the lock with a static class, the
                // count with this provider's release.
                unsafe {
                    b.write_bytes(0, 1);
                    (*b).dev = dev_raw;
                    (*b).vdev = vdev_raw;
                    (*b).direction = dir.into();
                    (*b).niov_shift = size.shift();
                    // The counters dmabuf-get sums, zeroed; C updates and sums
                    // them, the free path releases them.
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
                    PercpuRef::init(&raw mut (*b).ref_, super::release)
                        .inspect_err(|_| bindings::free_percpu((*b).stats.cast()))
                }
            },
        );
        // The free list first: if the C part fails, dropping the list is all
        // the unwinding needed.
        let init = try_pin_init!(BindingStorage {
            free <- new_spinlock_bh!(FreeList::new(), c"binding->free"),
            shape,
            refill: SetOnce::new(),
            c <- c,
        }? Error);
        let boxed: Pin<KBox<BindingStorage>> =
            kbox_pin_init_on(init, GFP_KERNEL, node(dev.numa_node()))?;
        // SAFETY: the binding is never moved out of its allocation: only its
        // address is kept, and `Teardown` frees it in place.
        let ptr = KBox::into_raw(unsafe { Pin::into_inner_unchecked(boxed) });
        // INVARIANT: just initialised; it owns no resource yet, and its free
        // list is empty.
        Ok(Self {
            raw: Teardown(NonNull::new(ptr.cast()).ok_or(ENOMEM)?, FreeList::new()),
            stage: New(dmabuf),
        })
    }

    /// Attaches `dma_dev` to the dma-buf and maps the attachment in the
    /// binding's direction; the binding takes over all three.
    pub(crate) fn map(self, dma_dev: &Device, extack: &Extack<'_>) -> Result<Builder<Mapped>> {
        let dir = self.shape().dir;
        let dmabuf = &self.stage.0;
        let (sgt, att) = {
            let att = dmabuf.attach(dma_dev).inspect_err(|_| {
                extack.set_msg(c"Failed to bind dmabuf to device");
            })?;
            let mapping = att.map(dir).inspect_err(|_| {
                extack.set_msg(c"Failed to map dmabuf attachment");
            })?;
            (mapping.into_raw(), att.into_raw())
        };
        let b = self.c();
        let Builder { raw, stage } = self;
        // SAFETY: the binding is ours (type invariant); the fields take over
        // the dma-buf reference, its attachment and the attachment's mapping,
        // which `Teardown` gives back to their owner types in order.
        unsafe {
            (*b).sgt = sgt.as_ptr();
            (*b).attachment = att.as_ptr();
            (*b).dmabuf = stage.0.into_raw().as_ptr();
        }
        // INVARIANT: the binding now holds the dma-buf, its attachment and
        // the attachment's mapping in the binding's direction.
        Ok(Builder { raw, stage: Mapped })
    }
}

impl Builder<Mapped> {
    fn table(&self) -> &SGTable {
        // SAFETY: from `map` on the binding owns `sgt`, a live mapping that
        // stays mapped and unchanged while the builder is borrowed.
        unsafe { SGTable::from_raw((*self.c()).sgt) }
    }

    /// The mapping, and the free list being carved from it, borrowed
    /// together (carving reads one while it fills the other).
    fn table_and_list(&mut self) -> (&SGTable, &mut FreeList) {
        // SAFETY: from `map` on the binding owns `sgt`, a mapping the
        // exporter made for a static attachment: it stays mapped and
        // unchanged until `Teardown` unmaps it, which the `&mut self` both
        // borrows are tied to keeps from happening. The `sg_table` is the
        // exporter's allocation, not part of the builder, so it cannot
        // overlap the free list borrowed beside it.
        let table = unsafe { SGTable::from_raw((*self.c()).sgt) };
        (table, &mut self.raw.1)
    }

    /// Carves every DMA segment of the mapping into `net_iov`s, on node
    /// `nid`, checking each segment as C does (page-aligned lengths; a
    /// larger `net_iov` size must align length and address); for TX, also
    /// builds the page table.
    pub(crate) fn carve(mut self, nid: c_int, extack: &Extack<'_>) -> Result<Builder<Carved>> {
        let page = NiovSize::PAGE.bytes();
        let Shape {
            niov_size: size,
            dir,
            dmabuf_size: size_bytes,
        } = self.shape();
        let mut tx_vec = None;
        if dir == DataDirection::ToDevice {
            if size_bytes % page != 0 {
                extack.set_msg(c"TX dma-buf size must be a multiple of PAGE_SIZE");
                return Err(EINVAL);
            }
            let pages = size_bytes / page;
            let mut v = KVVec::with_capacity(pages, GFP_KERNEL)?;
            // `Teardown` rebuilds the table with `pages` as its capacity:
            // refuse an allocation of another size rather than rely on it.
            if v.capacity() != pages {
                return Err(ENOMEM);
            }
            for _ in 0..pages {
                v.push(core::ptr::null_mut(), GFP_KERNEL)?;
            }
            tx_vec = Some(v);
        }

        let (niovs, segments) = self.table().iter().fold((0usize, 0usize), |(n, s), sg| {
            (n + ((sg.dma_len() as usize) >> size.shift()), s + 1)
        });
        if niovs > MAX_NIOVS {
            extack.set_msg(c"dma-buf has more net_iovs than a binding can index");
            return Err(EINVAL);
        }
        // The list, with the arena its `net_iov`s live in, stays the
        // builder's until every segment is carved: if one is refused,
        // dropping the builder frees what was carved, which nothing else
        // points to.
        self.raw.1 = FreeList::with_room(niovs, segments, size, node(nid))?;

        let mut virt = 0usize;
        let c = self.c();
        let (table, list) = self.table_and_list();
        for sg in table.iter() {
            let (dma, len) = (sg.dma_address(), sg.dma_len() as usize);
            // The TX table has one entry per page of the dma-buf: a mapping
            // longer than the buffer is refused before it is carved, as C
            // does.
            if tx_vec.is_some() && len > size_bytes.saturating_sub(virt) {
                extack.set_msg(c"TX dma-buf mapping is larger than the dma-buf");
                return Err(EINVAL);
            }
            if len % page != 0 {
                extack.set_msg(c"dma-buf SG length must be PAGE_SIZE aligned");
                return Err(EINVAL);
            }
            // A buffer larger than a page lies within one segment, at an
            // address aligned to its size.
            let align = size.bytes() - 1;
            if size != NiovSize::PAGE
                && (len & align != 0 || dma & align as bindings::dma_addr_t != 0)
            {
                extack.set_msg(c"dma-buf SG entry not aligned to rx-page-size");
                return Err(EINVAL);
            }
            let first = list.total();
            // SAFETY: the list becomes this binding's at the end of the
            // build (or is dropped, with its chunk owners, on a failure
            // first), so the binding outlives every chunk owner pointing back
            // to it.
            unsafe { list.carve(c, dma, len)? };
            if let Some(v) = tx_vec.as_mut() {
                // A TX binding's `net_iov`s are pages, carved in dma-buf
                // order: slot `first + i` is page `virt / page + i`.
                let page0 = virt / page;
                for i in 0..len / page {
                    let niov = list.niov_at(first + i).ok_or(EINVAL)?;
                    // Within the table (the segment fits, checked above);
                    // `get_mut` keeps it so whatever the check says.
                    *v.get_mut(page0 + i).ok_or(EINVAL)? = niov.as_ptr();
                }
            }
            virt += len;
        }

        let tx_vec = tx_vec.map_or(core::ptr::null_mut(), |v| {
            // Built above with exactly one entry per page and that capacity
            // (checked), which is what `Teardown` rebuilds it from.
            let (ptr, _, _) = v.into_raw_parts();
            ptr
        });
        // SAFETY: the binding is ours (type invariant); the field takes over
        // the TX table, which `Teardown` releases.
        unsafe { (*self.c()).tx_vec = tx_vec };
        // INVARIANT: every segment of the mapping is carved into `raw.1`,
        // with the arena holding the `net_iov`s and their chunk owners, and a
        // TX binding's `tx_vec` has one entry per page of its dma-buf.
        Ok(self.next(Carved))
    }
}

impl Builder<Carved> {
    /// Gives an RX binding a refill ring: `entries` entries at `offset` in
    /// the memfd `file`, pinned for the binding's life, and a user
    /// reference count for each of its `net_iov`s.
    pub(crate) fn refill_ring(
        self,
        file: &LocalFile,
        offset: u64,
        entries: u32,
        extack: &Extack<'_>,
    ) -> Result<Self> {
        if self.shape().dir != DataDirection::FromDevice {
            return Err(EINVAL);
        }
        let refill = super::refill::Refill::new(file, offset, entries, self.raw.1.total())
            .inspect_err(|e| {
                if *e == EINVAL {
                    extack.set_msg(
                        c"refill-ring must lie within a memfd sealed with F_SEAL_SHRINK, \
                          not against writes",
                    );
                } else if *e == EACCES {
                    extack.set_msg(c"refill-ring fd is not open for writing");
                }
            })?;
        // Only the builder reaches the binding, and this stage runs once:
        // the slot is empty.
        if !self.raw.storage().refill.populate(refill) {
            return Err(EINVAL);
        }
        Ok(self)
    }

    /// For a device that moves data with the CPU, maps the dma-buf into the
    /// kernel; then installs the carved `net_iov`s as the free list.
    ///
    /// The CPU mapping is made by `net_devmem_cpu_map`, core code that both
    /// providers share: it also records the DMA segments such a device
    /// resolves its DMA addresses in (`net_iov_dma_to_cpu`), so that the
    /// simulated device's view of memory does not come from the provider it
    /// tests. It fails as the exporter does, or with `EOPNOTSUPP` for I/O
    /// memory, and sets the extack message C sets.
    pub(crate) fn finish(mut self, cpu_access: bool, extack: &Extack<'_>) -> Result<Complete> {
        if cpu_access {
            // SAFETY: the binding is ours and unreachable by anyone else
            // (type invariant), and from `Mapped` on its `dmabuf` and `sgt`
            // are set, the two fields `net_devmem_cpu_map` reads; it writes
            // only `vmap` and the segment table, which `Teardown` releases
            // with `net_devmem_cpu_unmap`. The extack is null or valid for
            // this request (`Extack`'s invariant).
            to_result(unsafe { bindings::net_devmem_cpu_map(self.c(), extack.as_raw()) })?;
        }
        let carved = core::mem::replace(&mut self.raw.1, FreeList::new());
        let empty = core::mem::replace(&mut *self.raw.storage().free.lock(), carved);
        drop(empty);
        // INVARIANT: every stage done, the free list installed.
        Ok(Complete(self.raw))
    }
}

/// A built binding that nothing can reach yet.
///
/// # Invariants
///
/// As [`Builder<Carved>`], but the free list, with its arena, is installed
/// in the binding and the builder's spare one is empty.
pub(crate) struct Complete(Teardown);

impl Complete {
    /// Makes the binding visible: gives it an ID (lookups may find it from
    /// here on), then links it on `sock`'s list of bindings, which keeps the
    /// initial reference (C takes it back with
    /// [`OwnedBinding::from_raw`](super::OwnedBinding::from_raw) at unbind).
    /// From here on it is freed by [`super::free_work`] after the last put.
    pub(crate) fn publish(self, sock: &NlSock) -> Result<Published> {
        let b = self.0 .0;
        // SAFETY: `b` is complete (type invariant); from here on it is freed
        // only by `free_work`, after the count reached zero, which the
        // initial reference (released only by `Unlinked::release`, after
        // `ids::remove` and a grace period) keeps from happening earlier. If
        // the insert fails, `self` frees it unpublished.
        unsafe { ids::insert(b)? };
        core::mem::forget(self);
        // SAFETY: the node is all-zero (never linked) and lives until unbind
        // unlinks it; `&NlSock` proves the socket is locked.
        unsafe { sock.add(&raw mut (*b.as_ptr()).list) };
        // INVARIANT: the initial reference, now also on the socket's list.
        Ok(Published(b))
    }
}

/// The initial reference of a binding just published, on its way to C
/// (netdev-genl keeps it with the socket until unbind).
///
/// # Invariants
///
/// `self.0` is a published binding whose initial reference this owns.
pub(crate) struct Published(NonNull<bindings::net_devmem_dmabuf_binding>);

impl Published {
    /// The pointer C holds; [`OwnedBinding::from_raw`](super::OwnedBinding::from_raw)
    /// takes the reference back.
    pub(crate) fn into_raw(self) -> *mut bindings::net_devmem_dmabuf_binding {
        self.0.as_ptr()
    }
}

/// The netdev family's per-socket state: the bindings a socket made.
#[repr(transparent)]
pub(crate) struct NlSock(Opaque<bindings::netdev_nl_sock>);

impl NlSock {
    /// Borrows a socket's private state.
    ///
    /// # Safety
    ///
    /// `sock` must be a live `netdev_nl_sock` whose lock the caller holds for
    /// `'a`.
    pub(crate) unsafe fn from_raw<'a>(sock: *mut bindings::netdev_nl_sock) -> &'a Self {
        // SAFETY: transparent wrapper of `Opaque<netdev_nl_sock>`; alive and
        // locked for `'a` (caller).
        unsafe { &*sock.cast() }
    }

    /// Appends `entry` (a binding's list node) to the socket's bindings.
    ///
    /// # Safety
    ///
    /// `entry` must be a list node that is on no list and stays valid until it
    /// is removed with `list_del`.
    unsafe fn add(&self, entry: *mut bindings::list_head) {
        // SAFETY: the socket's lock is held (constructor); `entry` is valid
        // and unlinked (caller).
        unsafe { bindings::list_add(entry, &raw mut (*self.0.get()).bindings) };
    }
}
