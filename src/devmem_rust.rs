// SPDX-License-Identifier: GPL-2.0

//! Devmem TCP: the dma-buf memory provider, in Rust.
//!
//! A drop-in replacement for `net/core/devmem.c`, chosen with
//! `CONFIG_NET_DEVMEM_RUST`. It binds a dma-buf to a device (netlink
//! `bind-rx`, `bind-tx`), carves it into page-sized `net_iov`s kept in a
//! genpool, and hands them to the page pools of the bound RX queues as their
//! memory provider, so received payload lands in device memory.
//!
//! This file is the C ABI edge: every function `devmem.h` and
//! `mp_dmabuf_devmem.h` declare, exported with `#[export]` (which checks the
//! prototype), plus the callbacks of the provider ops. Each turns raw pointers
//! into the wrapper types, calls the logic, and maps the result back to the C
//! convention. The logic ([`bind`], [`provider`], [`tx`]) is safe Rust over
//! the provider's wrappers of its C objects ([`binding`], [`genpool`],
//! [`ids`], [`netmem`]) and generic abstractions that could move to the
//! kernel crate ([`abstractions`]).
//!
//! Reference counts cross this edge as raw pointers: a reference C keeps (the
//! socket's list, a page pool, an skb, a TX lookup's caller) leaves Rust with
//! `into_raw` and comes back with `from_raw`, so that what each C caller owns
//! is visible here.
//!
//! C headers: [`net/core/devmem.h`](srctree/net/core/devmem.h),
//! [`net/core/mp_dmabuf_devmem.h`](srctree/net/core/mp_dmabuf_devmem.h)

mod abstractions;
mod bind;
mod binding;
mod freelist;
mod genpool;
mod ids;
mod netmem;
mod provider;
mod tx;

use abstractions::dma_buf::Direction;
use abstractions::net::{Extack, NetDevice, NlSock, RxQueue, TcpSock};
use binding::{Binding, OwnedBinding, UninstalledQueue, UnregisteringDevice};
use core::ptr::NonNull;
use kernel::{
    bindings,
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
};
use netmem::{NetIov, NiovSize, OwnedNetIov, PagePoolInit, PagePoolRefill};

/// Prefix of this crate's log messages (`module!` defines it for modules).
const __LOG_PREFIX: &[u8] = b"net_devmem\0";

/// Binds a dma-buf to `dev` (`netdev_nl_bind_rx_doit`, `_bind_tx_doit`).
///
/// # Safety
///
/// Called by netdev-genl with `dev` locked, `priv_` locked, `extack` valid.
#[export]
pub unsafe extern "C" fn net_devmem_bind_dmabuf(
    dev: *mut bindings::net_device,
    vdev: *mut c_void,
    dma_dev: *mut bindings::device,
    cpu_access: bool,
    direction: bindings::dma_data_direction,
    niov_shift: c_uint,
    dmabuf_fd: c_uint,
    priv_: *mut bindings::netdev_nl_sock,
    extack: *mut bindings::netlink_ext_ack,
) -> *mut bindings::net_devmem_dmabuf_binding {
    // SAFETY: per the function's contract.
    let (dev, sock, extack) = unsafe {
        (
            NetDevice::from_raw(dev),
            NlSock::from_raw(priv_),
            Extack::from_raw(extack),
        )
    };
    let Some(dir) = Direction::from_raw(direction) else {
        return EINVAL.to_ptr();
    };
    let Some(size) = NiovSize::from_shift(niov_shift) else {
        return EINVAL.to_ptr();
    };
    match bind::bind(
        dev,
        vdev,
        bind::Access {
            dma_dev: NonNull::new(dma_dev),
            cpu: cpu_access,
        },
        bind::Request {
            fd: dmabuf_fd,
            dir,
            niov: size,
        },
        sock,
        &extack,
    ) {
        Ok(binding) => binding,
        Err(e) => e.to_ptr(),
    }
}

/// Unbinds (the netlink socket closes, or a bind failed half way).
///
/// # Safety
///
/// `binding` is a binding this provider returned from
/// [`net_devmem_bind_dmabuf`], whose initial reference (the socket's) the
/// caller gives up. The caller holds the socket's lock and, if the binding
/// still has a device, a reference on it and its instance lock.
#[export]
pub unsafe extern "C" fn net_devmem_unbind_dmabuf(
    binding: *mut bindings::net_devmem_dmabuf_binding,
) {
    // SAFETY: the socket's reference comes back (contract).
    let binding = unsafe { OwnedBinding::from_raw(binding) };
    // SAFETY: the caller holds the socket's lock (contract).
    unsafe { binding.unlink() };
    let dev = binding.dev();
    // SAFETY: a device the binding still has is referenced and locked by the
    // caller for the whole call (contract).
    let dev = (!dev.is_null()).then(|| unsafe { NetDevice::from_raw(dev) });
    bind::unbind(binding, dev);
}

/// Makes the TX bindings let go of a device that unregisters.
///
/// # Safety
///
/// Called from the unregister path of `dev`, after `dev_shutdown()` and the
/// uninstall of its RX queues' memory providers; process context.
#[export]
pub unsafe extern "C" fn net_devmem_unregister_netdev(dev: *mut bindings::net_device) {
    // SAFETY: called from `unregister_netdevice_many_notify()` right after
    // `dev_shutdown()` and `dev_memory_provider_uninstall()`.
    tx::unregister_netdev(&unsafe { UnregisteringDevice::new(dev) });
}

/// Installs a binding on RX queue `rxq_idx` of `dev`.
///
/// # Safety
///
/// `dev` locked, `binding` live (the caller's socket holds it), `extack`
/// valid or null.
#[export]
pub unsafe extern "C" fn net_devmem_bind_dmabuf_to_queue(
    dev: *mut bindings::net_device,
    rxq_idx: u32,
    binding: *mut bindings::net_devmem_dmabuf_binding,
    extack: *mut bindings::netlink_ext_ack,
) -> c_int {
    // SAFETY: per the function's contract.
    let (dev, binding, extack) = unsafe {
        (
            NetDevice::from_raw(dev),
            Binding::from_raw(binding),
            Extack::from_raw(extack),
        )
    };
    match bind::bind_to_queue(dev, rxq_idx, binding, &extack) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The binding with `id`, referenced, or null. The caller owns the
/// reference (`net_devmem_dmabuf_binding_put`).
///
/// # Safety
///
/// Callable from any context that may take an RCU read lock.
#[export]
pub unsafe extern "C" fn net_devmem_lookup_dmabuf(
    id: u32,
) -> *mut bindings::net_devmem_dmabuf_binding {
    ids::lookup(id).map_or(core::ptr::null_mut(), |b| ARef::into_raw(b).as_ptr().cast())
}

/// The live binding with the lowest ID from `*id` on, referenced, with its
/// ID stored in `*id`; null when there is none (the dmabuf-get dump). The
/// caller owns the reference.
///
/// # Safety
///
/// `id` is valid for reads and writes; process context.
#[export]
pub unsafe extern "C" fn net_devmem_dmabuf_next(
    id: *mut c_ulong,
) -> *mut bindings::net_devmem_dmabuf_binding {
    // SAFETY: per the function's contract.
    let mut index: usize = unsafe { *id };
    let found = ids::find_from(&mut index);
    // SAFETY: per the function's contract.
    unsafe { *id = index };
    found.map_or(core::ptr::null_mut(), |b| ARef::into_raw(b).as_ptr().cast())
}

/// How many of `binding`'s `net_iov`s are free (dmabuf-get).
///
/// # Safety
///
/// `binding` is live for the call (the caller holds a reference).
#[export]
pub unsafe extern "C" fn net_devmem_dmabuf_free_niovs(
    binding: *mut bindings::net_devmem_dmabuf_binding,
) -> usize {
    // SAFETY: per the function's contract.
    unsafe { Binding::from_raw(binding) }.free_niovs()
}

/// Frees a binding whose last reference is gone (the work item).
///
/// # Safety
///
/// `wq` is the `unbind_w` of such a binding.
#[export]
pub unsafe extern "C" fn __net_devmem_dmabuf_binding_free(wq: *mut bindings::work_struct) {
    // SAFETY: per the function's contract.
    unsafe { binding::free_work(wq) };
}

/// The percpu_ref release of a binding (RCU context): schedules the free.
///
/// # Safety
///
/// Only passed to `percpu_ref_init` for a binding's `ref`.
unsafe extern "C" fn binding_release(r: *mut bindings::percpu_ref) {
    // SAFETY: per the function's contract.
    unsafe { binding::schedule_free(r, Some(__net_devmem_dmabuf_binding_free)) };
}

/// Takes a binding reference for a TX `net_iov` an skb holds.
///
/// # Safety
///
/// `niov` is a dma-buf `net_iov` of this provider whose binding the caller
/// keeps alive for the call (its skb's fragment or the sender's lookup).
#[export]
pub unsafe extern "C" fn net_devmem_get_net_iov(niov: *mut bindings::net_iov) {
    // SAFETY: per the function's contract.
    if let Some(niov) = unsafe { NetIov::from_raw(niov) } {
        // The skb keeps this reference until `net_devmem_put_net_iov`.
        let _ = ARef::into_raw(ARef::from(niov.binding()));
    }
}

/// Drops the reference [`net_devmem_get_net_iov`] took.
///
/// # Safety
///
/// As [`net_devmem_get_net_iov`], and the caller gives up a reference that
/// call took.
#[export]
pub unsafe extern "C" fn net_devmem_put_net_iov(niov: *mut bindings::net_iov) {
    // SAFETY: the reference being given up keeps the binding alive until it
    // is dropped here.
    if let Some(niov) = unsafe { NetIov::from_raw(niov) } {
        // SAFETY: the caller gives up a reference `net_devmem_get_net_iov`
        // took, and does not use the binding through it afterwards.
        unsafe { Binding::dec_ref(NonNull::from(niov.binding())) };
    }
}

/// The kernel address of a dma-buf `net_iov`'s bytes, for a device that
/// moves data with the CPU; null for another kind of `net_iov` or a binding
/// without a kernel mapping. Valid while the caller holds `niov`.
///
/// # Safety
///
/// `niov` is a `net_iov` the caller holds (a page-pool buffer or an skb
/// fragment), which keeps a dma-buf `net_iov`'s binding alive.
#[export]
pub unsafe extern "C" fn net_iov_cpu_addr(niov: *const bindings::net_iov) -> *mut c_void {
    // SAFETY: a held `net_iov` can be read; its type never changes.
    if unsafe { (*niov).type_ } != bindings::net_iov_type_NET_IOV_DMABUF {
        return core::ptr::null_mut();
    }
    // SAFETY: a held dma-buf `net_iov` is one of this provider's, and the
    // holder keeps its binding alive for the call.
    let Some(niov) = (unsafe { NetIov::from_raw(niov.cast_mut()) }) else {
        return core::ptr::null_mut();
    };
    niov.binding()
        .cpu_addr(niov.dmabuf_offset(), niov.binding().niov_size().bytes())
        .map_or(core::ptr::null_mut(), NonNull::as_ptr)
}

/// One free `net_iov` of `binding`, or null. The caller owns the allocation
/// until it returns it with [`net_devmem_free_dmabuf`].
///
/// # Safety
///
/// `binding` is live for the call.
#[export]
pub unsafe extern "C" fn net_devmem_alloc_dmabuf(
    binding: *mut bindings::net_devmem_dmabuf_binding,
) -> *mut bindings::net_iov {
    // SAFETY: per the function's contract.
    let binding = unsafe { Binding::from_raw(binding) };
    binding
        .alloc_niov()
        .map_or(core::ptr::null_mut(), OwnedNetIov::into_raw)
}

/// Returns a `net_iov` to its binding.
///
/// # Safety
///
/// `ppiov` came from [`net_devmem_alloc_dmabuf`], whose allocation the
/// caller gives up, and its binding is live for the call.
#[export]
pub unsafe extern "C" fn net_devmem_free_dmabuf(ppiov: *mut bindings::net_iov) {
    // SAFETY: per the function's contract.
    if let Some(niov) = unsafe { NetIov::from_raw(ppiov) } {
        // SAFETY: the caller owned the allocation and gives it up.
        provider::free(unsafe { OwnedNetIov::from_allocation(niov) });
    }
}

/// The TX binding `dmabuf_id` for `sk`'s route, referenced, or an ERR_PTR.
///
/// # Safety
///
/// `sk` is a locked TCP socket (sendmsg).
#[export]
pub unsafe extern "C" fn net_devmem_get_binding(
    sk: *mut bindings::sock,
    dmabuf_id: c_uint,
) -> *mut bindings::net_devmem_dmabuf_binding {
    // SAFETY: per the function's contract.
    let Some(sk) = (unsafe { TcpSock::from_raw(sk) }) else {
        return EINVAL.to_ptr();
    };
    match tx::get_binding(&sk, dmabuf_id) {
        // The sender owns this reference (`net_devmem_dmabuf_binding_put`).
        Ok(b) => ARef::into_raw(b).as_ptr().cast(),
        Err(e) => e.to_ptr(),
    }
}

/// The `net_iov` at byte `addr` of a TX binding's dma-buf, or null.
///
/// # Safety
///
/// `binding` is live for the call (the sender holds a reference); `off` and
/// `size` are writable.
#[export]
pub unsafe extern "C" fn net_devmem_get_niov_at(
    binding: *mut bindings::net_devmem_dmabuf_binding,
    addr: usize,
    off: *mut usize,
    size: *mut usize,
) -> *mut bindings::net_iov {
    // SAFETY: per the function's contract.
    let binding = unsafe { Binding::from_raw(binding) };
    let Some((niov, o, s)) = tx::niov_at(binding, addr) else {
        return core::ptr::null_mut();
    };
    // SAFETY: the caller passes writable outputs.
    unsafe {
        *off = o;
        *size = s;
    }
    niov.as_raw()
}

/// Provider `init`.
///
/// # Safety
///
/// Called by `page_pool_init` on a pool being set up, whose `mp_priv` is a
/// binding installed on the pool's queue.
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_init(pool: *mut bindings::page_pool) -> c_int {
    // SAFETY: per the function's contract: the pool is not in use yet and
    // its binding is kept alive by the queue's installation.
    match provider::init(unsafe { PagePoolInit::from_raw(pool) }) {
        Ok(binding) => {
            // The pool keeps this reference until `mp_dmabuf_devmem_destroy`.
            let _ = ARef::into_raw(binding);
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Provider `alloc_netmems`.
///
/// # Safety
///
/// Called by page_pool, from the pool's allocation context with its cache
/// empty, on a pool `init` accepted.
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_alloc_netmems(
    pool: *mut bindings::page_pool,
    _gfp: bindings::gfp_t,
) -> bindings::netmem_ref {
    // SAFETY: the pool holds the reference `init` took on its binding, and
    // this is its `alloc_netmems`.
    provider::alloc(&unsafe { PagePoolRefill::from_raw(pool) }).unwrap_or(0)
}

/// Provider `destroy`.
///
/// # Safety
///
/// Called by `page_pool_uninit` on a pool `init` accepted, once.
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_destroy(pool: *mut bindings::page_pool) {
    // SAFETY: the pool is alive for the call.
    let mp_priv = unsafe { (*pool).mp_priv };
    if let Some(b) = NonNull::new(mp_priv.cast::<Binding>()) {
        // SAFETY: the reference `init` left with the pool comes back, once.
        provider::destroy(unsafe { ARef::from_raw(b) });
    }
}

/// Provider `release_netmem`.
///
/// # Safety
///
/// Called by page_pool with a netmem of this pool whose last user is gone;
/// the pool holds a reference on the binding.
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_release_page(
    _pool: *mut bindings::page_pool,
    netmem: bindings::netmem_ref,
) -> bool {
    // SAFETY: the netmem came from this provider; the pool's reference keeps
    // its binding alive for the call.
    let niov = unsafe { NetIov::from_netmem(netmem) };
    // SAFETY: the pool gives back the allocation `alloc_netmems` lent it.
    provider::release(niov.map(|n| unsafe { OwnedNetIov::from_allocation(n) }))
}

/// Provider `nl_fill`: reports the binding's ID on a queue or a pool.
///
/// # Safety
///
/// `mp_priv` is a live binding, `rsp` a message being built.
unsafe extern "C" fn mp_dmabuf_devmem_nl_fill(
    mp_priv: *mut c_void,
    rsp: *mut bindings::sk_buff,
    rxq: *mut bindings::netdev_rx_queue,
) -> c_int {
    // SAFETY: per the function's contract.
    let (binding, rxq) = unsafe { (Binding::from_raw(mp_priv.cast()), RxQueue::from_raw(rxq)) };
    let attr = provider::nl_fill_attr(rxq);
    // SAFETY: `rsp` is a valid message (contract).
    unsafe { bindings::nla_put_u32(rsp, attr as c_int, binding.id()) }
}

/// Provider `uninstall`.
///
/// # Safety
///
/// `mp_priv` is a live binding; `rxq` one of its queues (possibly a lease's
/// virtual queue).
unsafe extern "C" fn mp_dmabuf_devmem_uninstall(
    mp_priv: *mut c_void,
    rxq: *mut bindings::netdev_rx_queue,
) {
    // SAFETY: per the function's contract.
    let (binding, rxq) = unsafe { (Binding::from_raw(mp_priv.cast()), RxQueue::from_raw(rxq)) };
    let Some(rxq) = rxq else {
        return;
    };
    // SAFETY: the core calls `uninstall` when the installation on `rxq`
    // ends, after the queue stopped using the provider: the device
    // unregisters (after `dev_shutdown()`), or a lease ended and the
    // physical queue was reconfigured without it.
    provider::uninstall(binding, &unsafe { UninstalledQueue::new(rxq) });
}
