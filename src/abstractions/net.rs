// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers of the networking objects devmem deals with: net devices and
//! their RX queues, netlink extended acks, the netdev family's per-socket
//! state, and sockets for the TX route check.
//!
//! C headers: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h),
//! [`include/net/netdev_rx_queue.h`](srctree/include/net/netdev_rx_queue.h)

use core::ptr::NonNull;
use kernel::{bindings, error::to_result, prelude::*, types::Opaque};

/// Builds an `Error` from an errno the kernel crate has no constant for.
pub(crate) fn errno(e: u32) -> Error {
    Error::from_errno(-(e as i32))
}

/// `-EOPNOTSUPP` (95), which user space sees. Not `ENOTSUPP` (524), which is
/// kernel-internal and what `code::ENOTSUPP` is.
pub(crate) fn eopnotsupp() -> Error {
    errno(bindings::EOPNOTSUPP)
}

/// Waits until every RCU reader in the networking stack is done
/// (`synchronize_net`).
pub(crate) fn synchronize_net() {
    // SAFETY: may sleep; called from process context without spinlocks.
    unsafe { bindings::synchronize_net() };
}

/// A netlink extended ack, possibly absent.
pub(crate) struct Extack(*mut bindings::netlink_ext_ack);

impl Extack {
    /// Wraps an extack pointer.
    ///
    /// # Safety
    ///
    /// `extack` must be null or valid for the duration of the netlink request.
    pub(crate) unsafe fn from_raw(extack: *mut bindings::netlink_ext_ack) -> Self {
        Self(extack)
    }

    /// Reports `msg` to user space, as `NL_SET_ERR_MSG` does, including its
    /// `netlink:netlink_extack` trace event (fired even without an extack).
    pub(crate) fn set_msg(&self, msg: &'static CStr) {
        // SAFETY: the message is a static NUL-terminated string.
        unsafe { bindings::do_trace_netlink_extack(msg.as_char_ptr()) };
        if !self.0.is_null() {
            // SAFETY: the extack is valid (constructor contract) and the
            // message is static.
            unsafe { (*self.0)._msg = msg.as_char_ptr() };
        }
    }
}

/// A network device.
#[repr(transparent)]
pub(crate) struct NetDevice(Opaque<bindings::net_device>);

impl NetDevice {
    /// Wraps a net device pointer.
    ///
    /// # Safety
    ///
    /// `dev` must be a live, registered net device for `'a`, whose instance
    /// lock (`netdev_lock`) the caller holds for `'a`: the queue
    /// reconfiguration methods below need it.
    pub(crate) unsafe fn from_raw<'a>(dev: *mut bindings::net_device) -> &'a Self {
        // SAFETY: transparent wrapper over `Opaque<net_device>`; the caller
        // guarantees liveness.
        unsafe { &*dev.cast() }
    }

    /// The raw pointer.
    pub(crate) fn as_raw(&self) -> *mut bindings::net_device {
        self.0.get()
    }

    /// The NUMA node of the device, for allocations tied to it.
    pub(crate) fn numa_node(&self) -> c_int {
        // SAFETY: the device is alive.
        unsafe { bindings::dev_to_node(&raw mut (*self.as_raw()).dev) }
    }

    /// RX queue `idx`, if the device has that many real RX queues.
    pub(crate) fn rx_queue(&self, idx: u32) -> Option<RxQueue> {
        let dev = self.as_raw();
        // SAFETY: the device is alive; `real_num_rx_queues` is read once and
        // the queue array it sizes lives as long as the device.
        unsafe {
            if idx >= (*dev).real_num_rx_queues {
                return None;
            }
            // INVARIANT: an in-range queue of a live device.
            RxQueue::from_raw(bindings::__netif_get_rx_queue(dev, idx))
        }
    }

    /// Installs the memory provider `params` on RX queue `idx`.
    ///
    /// The device's instance lock is held (type contract).
    pub(crate) fn mp_open_rxq(&self, idx: u32, params: &MpParams, extack: &Extack) -> Result {
        // SAFETY: the device is alive and locked by the caller; `params` and
        // `extack` are valid for the call.
        to_result(unsafe {
            bindings::netif_mp_open_rxq(self.as_raw(), idx, params.as_ptr(), extack.0)
        })
    }

    /// Removes the memory provider `params` from RX queue `idx`.
    ///
    /// The device's instance lock is held (type contract).
    pub(crate) fn mp_close_rxq(&self, idx: u32, params: &MpParams) {
        // SAFETY: the device is alive and locked by the caller.
        unsafe { bindings::netif_mp_close_rxq(self.as_raw(), idx, params.as_ptr()) };
    }
}

/// An RX queue, compared by identity and located by index.
///
/// # Invariants
///
/// Points to an RX queue of a live net device.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RxQueue(NonNull<bindings::netdev_rx_queue>);

impl RxQueue {
    /// Wraps an RX queue pointer (possibly null: `nl_fill` is called without
    /// a queue for page pools).
    ///
    /// # Safety
    ///
    /// A non-null `rxq` must be an RX queue of a live net device.
    pub(crate) unsafe fn from_raw(rxq: *mut bindings::netdev_rx_queue) -> Option<Self> {
        NonNull::new(rxq).map(Self)
    }

    /// The raw pointer, as stored in a binding's queue table.
    pub(crate) fn as_raw(self) -> *mut bindings::netdev_rx_queue {
        self.0.as_ptr()
    }

    /// Index of the queue in its device.
    pub(crate) fn index(self) -> u32 {
        // SAFETY: the queue is alive by the type invariant.
        unsafe { bindings::get_netdev_rx_queue_index(self.as_raw()) }
    }
}

/// Memory provider parameters: the provider's ops and its private data.
///
/// # Invariants
///
/// `mp_priv` is what `mp_ops` expect, and stays valid while the provider is
/// installed on any queue with these parameters.
pub(crate) struct MpParams(bindings::pp_memory_provider_params);

impl MpParams {
    /// The parameters for a provider with `ops` and private data `mp_priv`
    /// that asks the queue for buffers of `rx_page_size` bytes (0: the
    /// device's default).
    ///
    /// # Safety
    ///
    /// `mp_priv` must be the private data `ops` expect and stay valid while
    /// the provider is installed on a queue with these parameters.
    pub(crate) unsafe fn new(
        mp_priv: *mut c_void,
        ops: &'static bindings::memory_provider_ops,
        rx_page_size: u32,
    ) -> Self {
        // SAFETY: all-zero is a valid `pp_memory_provider_params`, the value
        // C starts devmem's from.
        let mut p: bindings::pp_memory_provider_params = unsafe { core::mem::zeroed() };
        p.mp_priv = mp_priv;
        p.mp_ops = ops;
        p.rx_page_size = rx_page_size;
        // INVARIANT: per the caller's guarantee.
        Self(p)
    }

    fn as_ptr(&self) -> *const bindings::pp_memory_provider_params {
        &self.0
    }
}

/// The netdev family's per-socket state: the bindings a socket made.
#[repr(transparent)]
pub(crate) struct NlSock(Opaque<bindings::netdev_nl_sock>);

impl NlSock {
    /// Wraps a socket's private state.
    ///
    /// # Safety
    ///
    /// `sock` must be a live `netdev_nl_sock` whose lock the caller holds for
    /// `'a`.
    pub(crate) unsafe fn from_raw<'a>(sock: *mut bindings::netdev_nl_sock) -> &'a Self {
        // SAFETY: transparent wrapper; the caller guarantees liveness.
        unsafe { &*sock.cast() }
    }

    /// Appends `entry` (a binding's list node) to the socket's bindings.
    ///
    /// # Safety
    ///
    /// `entry` must be a list node that is on no list and stays valid until it
    /// is removed with `list_del`.
    pub(crate) unsafe fn add(&self, entry: *mut bindings::list_head) {
        // SAFETY: the socket's lock is held (constructor contract); `entry` is
        // valid and unlinked (caller contract).
        unsafe { bindings::list_add(entry, &raw mut (*self.0.get()).bindings) };
    }
}

/// A connected TCP socket, for the TX route check.
///
/// # Invariants
///
/// Points to a TCP socket its user holds locked (sendmsg) while this exists.
pub(crate) struct TcpSock(NonNull<bindings::sock>);

impl TcpSock {
    /// Wraps a socket pointer.
    ///
    /// # Safety
    ///
    /// `sk` must be a TCP socket the caller holds locked while the result
    /// is used.
    pub(crate) unsafe fn from_raw(sk: *mut bindings::sock) -> Option<Self> {
        NonNull::new(sk).map(Self)
    }

    /// The device the socket's cached route leads to; an expired route is
    /// rebuilt first. `Err(EHOSTUNREACH)` if that fails, `Ok(None)` if there
    /// is still no route or device.
    ///
    /// The returned pointer is only compared: it is valid for the RCU
    /// section `_rcu` proves.
    pub(crate) fn route_dev(
        &self,
        _rcu: &kernel::sync::rcu::Guard,
    ) -> Result<Option<*mut bindings::net_device>> {
        let sk = self.0.as_ptr();
        // SAFETY: `sk` is a locked TCP socket (type invariant) and we are in an
        // RCU read-side section, as `__sk_dst_get` and `dst_dev_rcu` require.
        // A TCP socket is an `inet_connection_sock`, whose af ops are set.
        unsafe {
            let mut dst = bindings::__sk_dst_get(sk);
            if dst.is_null() {
                let icsk = sk.cast::<bindings::inet_connection_sock>();
                let rebuild = (*(*icsk).icsk_af_ops).rebuild_header;
                if rebuild.is_none_or(|f| f(sk) != 0) {
                    return Err(errno(bindings::EHOSTUNREACH));
                }
                dst = bindings::__sk_dst_get(sk);
                if dst.is_null() {
                    return Ok(None);
                }
            }
            let dev = bindings::dst_dev_rcu(dst);
            Ok((!dev.is_null()).then_some(dev))
        }
    }
}
