// SPDX-License-Identifier: GPL-2.0

//! Networking objects devmem deals with: net devices and their RX queues,
//! netlink extended acks, and TCP sockets for the TX route check.
//!
//! Each is a borrowed `&'a T` over the C object, with `'a` the span the
//! caller proved it alive for (a locked device, a netlink request, a locked
//! socket). Objects that may be gone by the time they are looked at again
//! are named by a [`DeviceId`] or [`RxQueueId`], which can only be compared.
//!
//! Shaped as `rust/kernel/net/{netdevice,netlink,sock}.rs` would be.
//!
//! C headers: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h),
//! [`include/net/netdev_rx_queue.h`](srctree/include/net/netdev_rx_queue.h)

pub(crate) mod devmem;
pub(crate) mod page_pool;

use crate::abstractions::error::ehostunreach;
use core::ptr::NonNull;
use kernel::{bindings, error::to_result, prelude::*, sync::rcu, types::Opaque};

/// Waits until every RCU reader in the networking stack is done
/// (`synchronize_net`).
pub(crate) fn synchronize_net() {
    // SAFETY: `synchronize_net` only sleeps; every caller is a netlink or
    // teardown path in process context holding no spinlock, which `might_sleep`
    // in the callee checks.
    unsafe { bindings::synchronize_net() };
}

/// A netlink extended ack, possibly absent, for one request.
pub(crate) struct Extack<'a>(Option<&'a Opaque<bindings::netlink_ext_ack>>);

impl<'a> Extack<'a> {
    /// Wraps an extack pointer.
    ///
    /// # Safety
    ///
    /// `extack` must be null or valid, and used by no one else, for `'a`
    /// (the netlink request it belongs to).
    pub(crate) unsafe fn from_raw(extack: *mut bindings::netlink_ext_ack) -> Self {
        // SAFETY: `Opaque<T>` has the layout of `T`; a non-null `extack` is
        // valid for `'a` (caller).
        Self(unsafe { extack.cast::<Opaque<bindings::netlink_ext_ack>>().as_ref() })
    }

    /// The extack for a C function that takes one: null when the request
    /// has none. Valid for `'a`.
    pub(crate) fn as_raw(&self) -> *mut bindings::netlink_ext_ack {
        self.0.map_or(core::ptr::null_mut(), Opaque::get)
    }

    /// Reports `msg` to user space, as `NL_SET_ERR_MSG` does, including its
    /// `netlink:netlink_extack` trace event (fired even without an extack).
    pub(crate) fn set_msg(&self, msg: &'static CStr) {
        // SAFETY: the message is a static NUL-terminated string, which the
        // trace event only reads.
        unsafe { bindings::do_trace_netlink_extack(msg.as_char_ptr()) };
        if let Some(ext) = self.0 {
            // SAFETY: the extack is valid and ours for `'a` (constructor), and
            // the message is static, so it outlives the reply that sends it.
            unsafe { (*ext.get())._msg = msg.as_char_ptr() };
        }
    }

    fn as_ptr(&self) -> *mut bindings::netlink_ext_ack {
        self.0.map_or(core::ptr::null_mut(), Opaque::get)
    }
}

/// A net device's identity: compared, never dereferenced, so it may outlive
/// the device (a new one could later take the same address, which is why a
/// binding forgets a device that unregisters).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceId(usize);

impl DeviceId {
    /// The identity of the device at `dev` (any pointer; null is "none").
    pub(crate) fn from_ptr<T>(dev: *const T) -> Option<Self> {
        let addr = dev as usize;
        (addr != 0).then_some(Self(addr))
    }

    /// The address, for a C field that records the device to compare it.
    pub(crate) fn addr(self) -> usize {
        self.0
    }
}

/// A registered network device whose instance lock the borrower holds.
#[repr(transparent)]
pub(crate) struct NetDevice(Opaque<bindings::net_device>);

impl NetDevice {
    /// Borrows a net device.
    ///
    /// # Safety
    ///
    /// `dev` must be a live net device for `'a`, whose instance lock
    /// (`netdev_lock`) the caller holds for `'a`: the queue reconfiguration
    /// methods below need it.
    pub(crate) unsafe fn from_raw<'a>(dev: *mut bindings::net_device) -> &'a Self {
        // SAFETY: `NetDevice` is a transparent wrapper of `Opaque<net_device>`,
        // which has the layout of `net_device`; live for `'a` (caller).
        unsafe { &*dev.cast() }
    }

    /// The raw pointer, for a C structure that records the device.
    pub(crate) fn as_raw(&self) -> *mut bindings::net_device {
        self.0.get()
    }

    /// The device's identity.
    pub(crate) fn id(&self) -> DeviceId {
        DeviceId(self.as_raw() as usize)
    }

    /// The NUMA node of the device, for allocations tied to it.
    pub(crate) fn numa_node(&self) -> c_int {
        // SAFETY: the device is alive (constructor); `dev_to_node` reads the
        // embedded `struct device`'s node, set at registration.
        unsafe { bindings::dev_to_node(&raw mut (*self.as_raw()).dev) }
    }

    /// RX queue `idx`, if the device has that many real RX queues.
    pub(crate) fn rx_queue(&self, idx: u32) -> Option<&RxQueue> {
        let dev = self.as_raw();
        // SAFETY: the device is alive and its instance lock held
        // (constructor), which keeps `real_num_rx_queues` and the queue array
        // it sizes from changing.
        unsafe {
            if idx >= (*dev).real_num_rx_queues {
                return None;
            }
            Some(RxQueue::from_raw(bindings::__netif_get_rx_queue(dev, idx)))
        }
    }

    /// The index of the RX queue named by `id`, if it is one of this
    /// device's real RX queues. Looked up by identity, so an `id` that
    /// outlived its queue is merely not found.
    pub(crate) fn rx_queue_index(&self, id: RxQueueId) -> Option<u32> {
        // SAFETY: the device is alive and its instance lock held
        // (constructor), which keeps `real_num_rx_queues` from changing.
        let n = unsafe { (*self.as_raw()).real_num_rx_queues };
        (0..n).find(|&i| self.rx_queue(i).is_some_and(|q| q.id() == id))
    }

    /// Installs the memory provider `params` on RX queue `idx`.
    pub(crate) fn mp_open_rxq(
        &self,
        idx: u32,
        params: &page_pool::MpParams,
        extack: &Extack<'_>,
    ) -> Result {
        // SAFETY: the device is alive and locked (constructor), as
        // `netif_mp_open_rxq` requires; `params` and `extack` are valid for
        // the call and the core copies `params`.
        to_result(unsafe {
            bindings::netif_mp_open_rxq(self.as_raw(), idx, params.as_ptr(), extack.as_ptr())
        })
    }

    /// Removes the memory provider `params` from RX queue `idx`, restarting
    /// the queue without it. The restart needs new queue memory; when it
    /// fails, the queue goes on running on the provider's buffers and the
    /// provider stays installed on it (its uninstall still comes when the
    /// device unregisters), and the error is returned.
    pub(crate) fn mp_try_close_rxq(&self, idx: u32, params: &page_pool::MpParams) -> Result {
        // SAFETY: the device is alive and locked (constructor), as
        // `netif_mp_try_close_rxq` requires; it checks `idx` and `params`
        // itself.
        to_result(unsafe { bindings::netif_mp_try_close_rxq(self.as_raw(), idx, params.as_ptr()) })
    }

    /// Removes the memory provider `params` from RX queue `idx`, whether or
    /// not the queue restarts without it: a failed restart, which leaves the
    /// queue running on the provider's buffers until its next restart, is a
    /// warning. For undoing an installation that cannot be recorded.
    pub(crate) fn mp_close_rxq(&self, idx: u32, params: &page_pool::MpParams) {
        // SAFETY: the device is alive and locked (constructor), as
        // `netif_mp_close_rxq` requires; it checks `idx` and `params` itself.
        unsafe { bindings::netif_mp_close_rxq(self.as_raw(), idx, params.as_ptr()) }
    }
}

/// An RX queue's identity: compared, never dereferenced.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RxQueueId(usize);

impl RxQueueId {
    /// The identity of the queue at `rxq`, as recorded in a C table.
    pub(crate) fn from_ptr(rxq: NonNull<c_void>) -> Self {
        Self(rxq.as_ptr() as usize)
    }
}

/// An RX queue of a net device, borrowed for as long as its device is.
#[repr(transparent)]
pub(crate) struct RxQueue(Opaque<bindings::netdev_rx_queue>);

impl RxQueue {
    /// Borrows an RX queue.
    ///
    /// # Safety
    ///
    /// `rxq` must be an RX queue of a net device, alive for `'a`.
    pub(crate) unsafe fn from_raw<'a>(rxq: *mut bindings::netdev_rx_queue) -> &'a Self {
        // SAFETY: transparent wrapper of `Opaque<netdev_rx_queue>`; alive for
        // `'a` (caller).
        unsafe { &*rxq.cast() }
    }

    /// The raw pointer, as recorded in a binding's queue table.
    pub(crate) fn as_raw(&self) -> *mut bindings::netdev_rx_queue {
        self.0.get()
    }

    /// The queue's identity.
    pub(crate) fn id(&self) -> RxQueueId {
        RxQueueId(self.as_raw() as usize)
    }
}

/// A connected TCP socket its user holds locked, for the TX route check.
#[repr(transparent)]
pub(crate) struct TcpSock(Opaque<bindings::sock>);

impl TcpSock {
    /// Borrows a socket.
    ///
    /// # Safety
    ///
    /// `sk` must be a TCP socket that the caller holds locked (its sendmsg)
    /// for `'a`.
    pub(crate) unsafe fn from_raw<'a>(sk: *mut bindings::sock) -> &'a Self {
        // SAFETY: transparent wrapper of `Opaque<sock>`; alive and locked for
        // `'a` (caller).
        unsafe { &*sk.cast() }
    }

    /// The device the socket's cached route leads to; an expired route is
    /// rebuilt first. `Err(EHOSTUNREACH)` if that fails, `Ok(None)` if there
    /// is still no route or device. Only its identity is returned: the
    /// device is valid only inside the RCU section `_rcu` proves.
    pub(crate) fn route_dev(&self, _rcu: &rcu::Guard) -> Result<Option<DeviceId>> {
        let sk = self.0.get();
        // SAFETY: `sk` is a TCP socket its user holds locked (constructor), in
        // an RCU read-side section (`_rcu`), as `__sk_dst_get` and
        // `dst_dev_rcu` require. A TCP socket is an `inet_connection_sock`,
        // whose `icsk_af_ops` are set when it is created.
        unsafe {
            let mut dst = bindings::__sk_dst_get(sk);
            if dst.is_null() {
                let icsk = sk.cast::<bindings::inet_connection_sock>();
                let rebuild = (*(*icsk).icsk_af_ops).rebuild_header;
                if rebuild.is_none_or(|f| f(sk) != 0) {
                    return Err(ehostunreach());
                }
                dst = bindings::__sk_dst_get(sk);
                if dst.is_null() {
                    return Ok(None);
                }
            }
            Ok(DeviceId::from_ptr(bindings::dst_dev_rcu(dst)))
        }
    }
}
