// SPDX-License-Identifier: GPL-2.0

//! Devmem TCP: the dma-buf memory provider, in Rust.
//!
//! A drop-in replacement for `net/core/devmem.c`, chosen with
//! `CONFIG_NET_DEVMEM_RUST`. It binds a dma-buf to a device (netlink
//! `bind-rx`, `bind-tx`), carves it into `net_iov`s, and hands them to the
//! page pools of the bound RX queues as their memory provider, so received
//! payload lands in device memory.
//!
//! Layers, each using only the ones below it:
//! - [`abstractions`]: kernel abstractions shaped as `rust/kernel/` modules.
//!   The generic ones: dma-buf, page_pool memory providers, net devices,
//!   per-CPU refcounts, BH spinlocks. Then [`abstractions::net::devmem`]:
//!   devmem's C structures (`struct net_devmem_dmabuf_binding`, its chunk
//!   owners and `net_iov`s, the ID table), which C code reads through
//!   `devmem.h`, with the typestate builder and the free list. Every
//!   `unsafe` outside this file is in them.
//! - [`provider`] (the [`MemoryProvider`](abstractions::net::page_pool::MemoryProvider)
//!   implementation), [`bind`], [`tx`]: the logic, safe code only.
//! - This file: the C ABI edge, every function `devmem.h` and
//!   `mp_dmabuf_devmem.h` declare, exported with `#[export]` (which checks
//!   the prototype). Each turns its raw arguments into the borrowed types
//!   the caller's contract proves, calls the logic, and maps the result
//!   back to the C convention.
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
mod provider;
mod tx;

use abstractions::dma_buf::direction_from_raw;
use abstractions::error::eopnotsupp;
use abstractions::net::devmem::builder::NlSock;
use abstractions::net::devmem::niov_size::NiovSize;
use abstractions::net::devmem::{
    ids, Binding, Devmem, NetIov, OwnedBinding, OwnedNetIov, Unbound, UnregisteringDevice,
};
use abstractions::net::page_pool::Adapter;
use abstractions::net::{DeviceId, Extack, NetDevice, TcpSock};
use core::ptr::NonNull;
use kernel::{bindings, device::Device, fs::file::LocalFile, prelude::*, sync::aref::ARef};

/// Prefix of this crate's log messages (`module!` defines it for modules).
const __LOG_PREFIX: &[u8] = b"net_devmem\0";

/// A reference leaving for C, as the pointer C stores.
fn binding_to_c(b: ARef<Binding>) -> *mut bindings::net_devmem_dmabuf_binding {
    ARef::into_raw(b).as_ptr().cast()
}

/// Binds a dma-buf to `dev` (`netdev_nl_bind_rx_doit`, `_bind_tx_doit`).
///
/// # Safety
///
/// Called by netdev-genl with `dev` registered and its instance lock held,
/// `dma_dev` null or the DMA device of `dev`'s queues (which `dev` keeps
/// alive), `priv_` locked, `extack` valid for the request.
#[export]
pub unsafe extern "C" fn net_devmem_bind_dmabuf(
    dev: *mut bindings::net_device,
    vdev: *mut c_void,
    dma_dev: *mut bindings::device,
    cpu_access: bool,
    direction: bindings::dma_data_direction,
    niov_shift: c_uint,
    dmabuf_fd: c_uint,
    ring: *const bindings::net_devmem_refill_req,
    priv_: *mut bindings::netdev_nl_sock,
    extack: *mut bindings::netlink_ext_ack,
) -> *mut bindings::net_devmem_dmabuf_binding {
    // SAFETY: netdev-genl holds `dev`'s instance lock and `priv_`'s lock for
    // the call, and `extack` is its request's; a non-null `dma_dev` is kept
    // alive by the registered `dev` whose queues use it.
    let (dev, sock, extack, dma_dev) = unsafe {
        (
            NetDevice::from_raw(dev),
            NlSock::from_raw(priv_),
            Extack::from_raw(extack),
            (!dma_dev.is_null()).then(|| Device::from_raw(dma_dev)),
        )
    };
    let (Some(dir), Some(niov)) = (
        direction_from_raw(direction),
        NiovSize::from_shift(niov_shift),
    ) else {
        return EINVAL.to_ptr();
    };
    let access = bind::Access {
        dma_dev,
        cpu: cpu_access,
    };
    // SAFETY: netdev-genl passes null or its request's parsed ring,
    // alive for the call.
    let ring = unsafe { ring.as_ref() }.map(|r| bind::RingRequest {
        fd: r.fd,
        offset: r.offset,
        entries: r.entries,
    });
    let req = bind::Request {
        fd: dmabuf_fd,
        dir,
        niov,
        ring,
    };
    match bind::bind(dev, DeviceId::from_ptr(vdev), access, req, sock, &extack) {
        Ok(published) => published.into_raw(),
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
    let Some(binding) = NonNull::new(binding) else {
        return;
    };
    // SAFETY: netdev-genl gives back the initial reference it kept with the
    // socket since bind, once: the socket's teardown unbinds each listed
    // binding once, and a failed bind-rx unbinds the one it just made.
    let binding = unsafe { OwnedBinding::from_raw(binding) };
    // SAFETY: `netdev_nl_sock_priv_destroy` and the bind error path call
    // this with the lock of the socket whose list holds the binding.
    let binding = unsafe { binding.unlink() };
    // SAFETY: both callers hold a reference on the binding's device, if it
    // still has one, and its instance lock, for the whole call.
    let dev = unsafe { binding.locked_dev() };
    bind::unbind(binding, dev);
}

/// Closes the queues an unbind left open because their restart failed, for
/// the work `net_devmem_close_later()` scheduled; returns whether none is
/// left (the work then drops its reference).
///
/// # Safety
///
/// `binding` is a binding this provider published, on which the caller
/// holds the reference `net_devmem_close_later()` took; if the binding
/// still has a device, the caller holds a reference on it and its instance
/// lock, for the call.
#[export]
pub unsafe extern "C" fn net_devmem_close_rxqs(
    binding: *mut bindings::net_devmem_dmabuf_binding,
) -> bool {
    let Some(binding) = NonNull::new(binding) else {
        return true;
    };
    // SAFETY: only the close-later work in netdev-genl.c calls this, with
    // the binding `Unlinked::release` gave it and the reference it took
    // then, held for the call.
    let binding = unsafe { Unbound::from_raw(binding) };
    // SAFETY: that work holds a reference on the binding's device, if it
    // still has one, and its instance lock (netdev_nl_binding_lock_dev())
    // for the call.
    let dev = unsafe { binding.binding().locked_dev() };
    bind::close_left_open(&binding, dev)
}

/// Makes the TX bindings let go of a device that unregisters.
///
/// # Safety
///
/// Called from the unregister path of `dev`, after `dev_shutdown()` and the
/// uninstall of its RX queues' memory providers; process context.
#[export]
pub unsafe extern "C" fn net_devmem_unregister_netdev(dev: *mut bindings::net_device) {
    let Some(dev) = DeviceId::from_ptr(dev) else {
        return;
    };
    // SAFETY: `unregister_netdevice_many_notify()` is the only caller, right
    // after `dev_shutdown()` and `dev_memory_provider_uninstall()` of `dev`.
    tx::unregister_netdev(&unsafe { UnregisteringDevice::new(dev) });
}

/// Installs a binding on RX queue `rxq_idx` of `dev`.
///
/// # Safety
///
/// `dev` registered and its instance lock held, `binding` a binding this
/// provider published whose initial reference the caller's socket holds,
/// with the socket's lock held, `extack` valid or null, all for the call.
#[export]
pub unsafe extern "C" fn net_devmem_bind_dmabuf_to_queue(
    dev: *mut bindings::net_device,
    rxq_idx: u32,
    binding: *mut bindings::net_devmem_dmabuf_binding,
    extack: *mut bindings::netlink_ext_ack,
) -> c_int {
    let Some(binding) = NonNull::new(binding) else {
        return EINVAL.to_errno();
    };
    // SAFETY: netdev-genl's bind-rx calls this with `dev` registered and
    // instance-locked and `extack` the request's, for the call; the binding
    // is one it just published, whose initial reference its socket keeps
    // while it holds the socket's lock (so unbind cannot run).
    let (dev, binding, extack) = unsafe {
        (
            NetDevice::from_raw(dev),
            OwnedBinding::borrow_raw(binding),
            Extack::from_raw(extack),
        )
    };
    match bind::bind_to_queue(dev, rxq_idx, &binding, &extack) {
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
    ids::lookup(id).map_or(core::ptr::null_mut(), binding_to_c)
}

/// The live binding with the lowest ID from `*id` on, referenced, with its
/// ID stored in `*id`; null when there is none (the dmabuf-get dump). The
/// caller owns the reference.
///
/// # Safety
///
/// `id` is valid for reads and writes for the call; process context.
#[export]
pub unsafe extern "C" fn net_devmem_dmabuf_next(
    id: *mut c_ulong,
) -> *mut bindings::net_devmem_dmabuf_binding {
    // SAFETY: netdev-genl's dmabuf-get dump passes its own cursor, a live
    // `unsigned long` no one else touches during the call.
    let id = unsafe { &mut *id };
    ids::find_from(id).map_or(core::ptr::null_mut(), binding_to_c)
}

/// How many `net_iov`s `binding` has, free or not (dmabuf-get).
///
/// # Safety
///
/// `binding` is live for the call (the caller holds a reference).
#[export]
pub unsafe extern "C" fn net_devmem_dmabuf_niovs(
    binding: *mut bindings::net_devmem_dmabuf_binding,
) -> usize {
    // SAFETY: the caller's reference keeps the binding alive for the call.
    unsafe { Binding::from_raw(binding) }.niovs()
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
    // SAFETY: the caller's reference keeps the binding alive for the call.
    unsafe { Binding::from_raw(binding) }.free_niovs()
}

/// Where the refill ring of `binding` has its head, tail and entries, for
/// bind-rx's reply; `-EOPNOTSUPP` if it has none.
///
/// # Safety
///
/// `binding` is live for the call (the caller holds a reference) and
/// `layout` valid for writes.
#[export]
pub unsafe extern "C" fn net_devmem_refill_layout(
    binding: *mut bindings::net_devmem_dmabuf_binding,
    layout: *mut bindings::net_devmem_refill_layout,
) -> c_int {
    // SAFETY: the caller's reference keeps the binding alive for the call.
    let binding = unsafe { Binding::from_raw(binding) };
    let Some(l) = binding.refill().map(|r| r.layout()) else {
        return eopnotsupp().to_errno();
    };
    // SAFETY: netdev-genl passes its own, writable, for the call.
    unsafe {
        layout.write(bindings::net_devmem_refill_layout {
            head: l.head,
            tail: l.tail,
            entries: l.entries,
        })
    };
    0
}

/// The state of `binding`'s refill ring, for dmabuf-get; `-EOPNOTSUPP` if
/// it has none.
///
/// # Safety
///
/// `binding` is live for the call (the caller holds a reference) and
/// `stats` valid for writes.
#[export]
pub unsafe extern "C" fn net_devmem_refill_stats(
    binding: *mut bindings::net_devmem_dmabuf_binding,
    stats: *mut bindings::net_devmem_refill_stats,
) -> c_int {
    // SAFETY: the caller's reference keeps the binding alive for the call.
    let binding = unsafe { Binding::from_raw(binding) };
    let Some(r) = binding.refill() else {
        return eopnotsupp().to_errno();
    };
    let (consumed, rejected) = r.counters();
    // SAFETY: netdev-genl passes its own, writable, for the call.
    unsafe {
        stats.write(bindings::net_devmem_refill_stats {
            consumed,
            rejected,
            user_refs: r.user_refs(),
            entries: r.entries(),
        })
    };
    0
}

/// Whether a socket of the netns whose cookie is `net_cookie` may receive
/// the frags of binding `id` through its refill ring
/// (`SO_DEVMEM_REFILL_RING`): 0 if the binding is of that netns and has a
/// ring in the memfd `memfd`, open for writing; `-ENOENT` if there is no
/// such binding in that netns, `-EOPNOTSUPP` if it has no ring, `-EACCES`
/// if `memfd` is not its ring's, or not writable.
///
/// The caller passes the cookie rather than the `struct net`: bindgen's
/// layout of that struct is not C's (in the test kernels' configuration it
/// puts `net_cookie` at offset 4040, C at 4168), so no field of it is read
/// here.
///
/// # Safety
///
/// `memfd` is live for the call (the caller holds it).
#[export]
pub unsafe extern "C" fn net_devmem_refill_check(
    id: u32,
    memfd: *mut bindings::file,
    net_cookie: u64,
) -> c_int {
    let Some(binding) = ids::lookup(id) else {
        return ENOENT.to_errno();
    };
    if binding.net_cookie() != net_cookie {
        return ENOENT.to_errno();
    }
    let Some(refill) = binding.refill() else {
        return eopnotsupp().to_errno();
    };
    // SAFETY: the caller (`setsockopt()`) holds a reference on `memfd` for
    // the call, from its own `fget()`, so no `fdget_pos` of another thread
    // is involved.
    let file = unsafe { LocalFile::from_raw_file(memfd) };
    if !refill.is_ring_file(file) {
        return EACCES.to_errno();
    }
    0
}

/// Counts a reference user space takes on `niov`, a frag of a socket that
/// receives its binding's frags through the ring; `false` if the binding
/// takes no more (no ring, closed, or at the cap).
///
/// # Safety
///
/// `niov` is a frag the caller's skb holds, with a page_pool reference the
/// caller took for this user reference.
#[export]
pub unsafe extern "C" fn net_devmem_refill_give(niov: *mut bindings::net_iov) -> bool {
    // SAFETY: TCP calls this for a dma-buf frag its skb holds, which keeps
    // the binding alive for the call.
    let Some(niov) = (unsafe { NetIov::from_dmabuf_niov(niov) }) else {
        return false;
    };
    // SAFETY: a frag TCP's skb holds is lent to a page pool, and TCP took
    // the page_pool reference this user reference stands for (caller).
    niov.binding()
        .refill()
        .is_some_and(|r| unsafe { r.give(niov.slot()) })
}

/// Takes back a reference [`net_devmem_refill_give`] counted, whose cmsg
/// could not be written; `false` if a drain or the teardown already took it
/// (and dropped its page_pool reference).
///
/// # Safety
///
/// As for [`net_devmem_refill_give`].
#[export]
pub unsafe extern "C" fn net_devmem_refill_put(niov: *mut bindings::net_iov) -> bool {
    // SAFETY: TCP calls this for a dma-buf frag its skb still holds, which
    // keeps the binding alive for the call.
    let Some(niov) = (unsafe { NetIov::from_dmabuf_niov(niov) }) else {
        return false;
    };
    niov.binding().refill().is_some_and(|r| r.put(niov.slot()))
}

/// Gives back now what user space wrote to `binding`'s refill ring
/// (dmabuf-flush); `-EOPNOTSUPP` if it has none.
///
/// # Safety
///
/// `binding` is live for the call (the caller holds a reference); process
/// context.
#[export]
pub unsafe extern "C" fn net_devmem_dmabuf_flush(
    binding: *mut bindings::net_devmem_dmabuf_binding,
) -> c_int {
    // SAFETY: the caller's reference keeps the binding alive for the call.
    let binding = unsafe { Binding::from_raw(binding) };
    match binding.flush_refill() {
        Ok(_) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Frees a binding whose last reference is gone (the work item).
///
/// # Safety
///
/// `wq` is the `unbind_w` of such a binding, queued by its release.
#[export]
pub unsafe extern "C" fn __net_devmem_dmabuf_binding_free(wq: *mut bindings::work_struct) {
    // SAFETY: `wq` is a binding's `unbind_w`, which only that binding's
    // percpu_ref release (`devmem::release`) initialises and queues, once,
    // after the count reached zero.
    unsafe { abstractions::net::devmem::free_work(wq) };
}

/// Takes a binding reference for a TX `net_iov` an skb holds.
///
/// # Safety
///
/// `niov` is a dma-buf `net_iov` of this provider whose binding the caller
/// keeps alive for the call (its skb's fragment or the sender's lookup).
#[export]
pub unsafe extern "C" fn net_devmem_get_net_iov(niov: *mut bindings::net_iov) {
    // SAFETY: skbuff.c calls this for a frag it holds whose `net_iov` is of
    // type `NET_IOV_DMABUF` (so this provider's: the only one that makes
    // them), and the frag keeps its binding alive for the call.
    if let Some(niov) = unsafe { NetIov::from_dmabuf_niov(niov) } {
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
    // SAFETY: skbuff.c gives up, for a dma-buf frag it held, the binding
    // reference `net_devmem_get_net_iov` took; that reference keeps the
    // binding alive until it is dropped here.
    if let Some(niov) = unsafe { NetIov::from_dmabuf_niov(niov) } {
        // SAFETY: the caller gives up a reference `net_devmem_get_net_iov`
        // took, which this `ARef` drops.
        drop(unsafe { ARef::from_raw(NonNull::from(niov.binding())) });
    }
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
    // SAFETY: the caller keeps the binding alive for the call.
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
    // SAFETY: the KUnit suite and the provider's own callers free only
    // `net_iov`s `net_devmem_alloc_dmabuf` gave them, whose binding they
    // keep alive for the call; the type check refuses anything else.
    if let Some(niov) = unsafe { NetIov::from_dmabuf_niov(ppiov) } {
        // SAFETY: the caller owned the allocation and gives it up.
        provider::free(unsafe { OwnedNetIov::from_allocation(niov) });
    }
}

/// The TX binding `dmabuf_id` for `sk`'s route, referenced, or an ERR_PTR.
///
/// # Safety
///
/// `sk` is a TCP socket its caller holds locked (sendmsg) for the call.
#[export]
pub unsafe extern "C" fn net_devmem_get_binding(
    sk: *mut bindings::sock,
    dmabuf_id: c_uint,
) -> *mut bindings::net_devmem_dmabuf_binding {
    if sk.is_null() {
        return EINVAL.to_ptr();
    }
    // SAFETY: a TCP socket locked by the caller for the call.
    let sk = unsafe { TcpSock::from_raw(sk) };
    match tx::get_binding(sk, dmabuf_id) {
        // The sender owns this reference (`net_devmem_dmabuf_binding_put`).
        Ok(b) => binding_to_c(b),
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
    // SAFETY: the sender's reference keeps the binding alive for the call.
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

/// Provider `init` (also called directly by the KUnit tests).
///
/// # Safety
///
/// As [`Adapter::init`]: `pool` is being created, and its `mp_priv`, if
/// set, is a binding installed on the pool's queue.
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_init(pool: *mut bindings::page_pool) -> c_int {
    // SAFETY: `page_pool_init` calls this on a pool being created, or KUnit on a
    // pool it made, with `mp_priv` null or a binding installed on the pool's
    // queue (or kept alive by the test), as `Adapter::init` requires.
    unsafe { Adapter::<Devmem>::init(pool) }
}

/// Provider `alloc_netmems`.
///
/// # Safety
///
/// As [`Adapter::alloc_netmems`].
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_alloc_netmems(
    pool: *mut bindings::page_pool,
    gfp: bindings::gfp_t,
) -> bindings::netmem_ref {
    // SAFETY: page_pool calls this from the pool's allocation context on a pool
    // `init` accepted, which holds a reference on its binding, as
    // `Adapter::alloc_netmems` requires.
    unsafe { Adapter::<Devmem>::alloc_netmems(pool, gfp) }
}

/// Provider `destroy`.
///
/// # Safety
///
/// As [`Adapter::destroy`].
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_destroy(pool: *mut bindings::page_pool) {
    // SAFETY: `page_pool_uninit` calls this once on a pool `init` accepted, as
    // `Adapter::destroy` requires.
    unsafe { Adapter::<Devmem>::destroy(pool) }
}

/// Provider `release_netmem`.
///
/// # Safety
///
/// As [`Adapter::release_netmem`].
#[export]
pub unsafe extern "C" fn mp_dmabuf_devmem_release_page(
    pool: *mut bindings::page_pool,
    netmem: bindings::netmem_ref,
) -> bool {
    // SAFETY: page_pool calls this on a pool `init` accepted, with a netmem the
    // pool held, as `Adapter::release_netmem` requires.
    unsafe { Adapter::<Devmem>::release_netmem(pool, netmem) }
}
