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
//! thin wrappers ([`binding`], [`dma_buf`], [`genpool`], [`ids`], [`net`],
//! [`netmem`]).
//!
//! C headers: [`net/core/devmem.h`](srctree/net/core/devmem.h),
//! [`net/core/mp_dmabuf_devmem.h`](srctree/net/core/mp_dmabuf_devmem.h)

mod bind;
mod binding;
mod dma_buf;
mod genpool;
mod ids;
mod net;
mod netmem;
mod provider;
mod tx;

use binding::Binding;
use core::ptr::NonNull;
use dma_buf::Direction;
use kernel::{bindings, prelude::*};
use net::{Extack, NetDevice, NlSock, RxQueue, TcpSock};
use netmem::{NetIov, PagePool};

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
    direction: bindings::dma_data_direction,
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
    match bind::bind(
        dev,
        vdev,
        NonNull::new(dma_dev),
        dir,
        dmabuf_fd,
        sock,
        &extack,
    ) {
        Ok(binding) => binding.as_raw(),
        Err(e) => e.to_ptr(),
    }
}

/// Unbinds (the netlink socket closes, or a bind failed half way).
///
/// # Safety
///
/// `binding` is a live binding whose socket reference the caller gives up,
/// with the socket and (if still set) the device locked.
#[export]
pub unsafe extern "C" fn net_devmem_unbind_dmabuf(
    binding: *mut bindings::net_devmem_dmabuf_binding,
) {
    // SAFETY: the socket's reference keeps it alive during the call.
    bind::unbind(unsafe { Binding::from_raw(binding) });
}

/// Installs a binding on RX queue `rxq_idx` of `dev`.
///
/// # Safety
///
/// `dev` locked, `binding` live, `extack` valid, `rxq_idx` validated.
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

/// The binding with `id`, referenced, or null.
///
/// # Safety
///
/// Callable from any context that may take an RCU read lock.
#[export]
pub unsafe extern "C" fn net_devmem_lookup_dmabuf(
    id: u32,
) -> *mut bindings::net_devmem_dmabuf_binding {
    ids::lookup(id).map_or(core::ptr::null_mut(), Binding::as_raw)
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
/// `niov` is a dma-buf `net_iov` of this provider.
#[export]
pub unsafe extern "C" fn net_devmem_get_net_iov(niov: *mut bindings::net_iov) {
    // SAFETY: per the function's contract; the binding outlives its niovs.
    if let Some(niov) = unsafe { NetIov::from_raw(niov) } {
        niov.binding().tryget();
    }
}

/// Drops the reference [`net_devmem_get_net_iov`] took.
///
/// # Safety
///
/// As [`net_devmem_get_net_iov`], with a reference held.
#[export]
pub unsafe extern "C" fn net_devmem_put_net_iov(niov: *mut bindings::net_iov) {
    // SAFETY: per the function's contract; the reference being dropped keeps
    // the binding alive until `put`.
    if let Some(niov) = unsafe { NetIov::from_raw(niov) } {
        niov.binding().put();
    }
}

/// One free `net_iov` of `binding`, or null.
///
/// # Safety
///
/// `binding` is live.
#[export]
pub unsafe extern "C" fn net_devmem_alloc_dmabuf(
    binding: *mut bindings::net_devmem_dmabuf_binding,
) -> *mut bindings::net_iov {
    // SAFETY: per the function's contract.
    let binding = unsafe { Binding::from_raw(binding) };
    binding
        .pool()
        .alloc()
        .map_or(core::ptr::null_mut(), NetIov::as_raw)
}

/// Returns a `net_iov` to its binding.
///
/// # Safety
///
/// `ppiov` came from [`net_devmem_alloc_dmabuf`] and is not used afterwards.
#[export]
pub unsafe extern "C" fn net_devmem_free_dmabuf(ppiov: *mut bindings::net_iov) {
    // SAFETY: per the function's contract.
    if let Some(niov) = unsafe { NetIov::from_raw(ppiov) } {
        provider::free(niov);
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
        Ok(b) => b.as_raw(),
        Err(e) => e.to_ptr(),
    }
}

/// The `net_iov` at byte `addr` of a TX binding's dma-buf, or null.
///
/// # Safety
///
/// `binding` is a live TX binding; `off` and `size` are writable.
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
/// Called by `page_pool_init` on a pool being set up.
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_init(pool: *mut bindings::page_pool) -> c_int {
    // SAFETY: per the function's contract.
    match provider::init(unsafe { PagePool::from_raw(pool) }) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Provider `alloc_netmems`.
///
/// # Safety
///
/// Called by page_pool (softirq) on a pool `init` accepted.
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_alloc_netmems(
    pool: *mut bindings::page_pool,
    _gfp: bindings::gfp_t,
) -> bindings::netmem_ref {
    // SAFETY: per the function's contract.
    provider::alloc(unsafe { PagePool::from_raw(pool) }).map_or(0, NetIov::to_netmem)
}

/// Provider `destroy`.
///
/// # Safety
///
/// Called by `page_pool_uninit` on a pool `init` accepted.
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_destroy(pool: *mut bindings::page_pool) {
    // SAFETY: per the function's contract.
    provider::destroy(unsafe { PagePool::from_raw(pool) });
}

/// Provider `release_netmem`.
///
/// # Safety
///
/// Called by page_pool with a netmem of this pool whose last user is gone.
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_release_page(
    _pool: *mut bindings::page_pool,
    netmem: bindings::netmem_ref,
) -> bool {
    // SAFETY: per the function's contract the netmem came from this provider.
    provider::release(unsafe { NetIov::from_netmem(netmem) })
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
    provider::uninstall(binding, rxq);
}
