// SPDX-License-Identifier: GPL-2.0

//! The TX side: finding a socket's binding, the `net_iov` at an offset of its
//! dma-buf, and letting go of a device that unregisters.

use crate::abstractions::net::devmem::niov_size::NiovSize;
use crate::abstractions::net::devmem::{ids, Binding, NetIov, UnregisteringDevice};
use crate::abstractions::net::TcpSock;
use kernel::{prelude::*, sync::aref::ARef, sync::rcu};

/// The TX binding `id`, referenced, if `sk`'s route leads to its device (or
/// to the virtual device bind-tx was called on).
///
/// A socket without a route gets one rebuilt: `EHOSTUNREACH` if that fails,
/// `ENODEV` if it still has none or it leads elsewhere.
pub(crate) fn get_binding(sk: &TcpSock, id: u32) -> Result<ARef<Binding>> {
    let binding = ids::lookup(id).ok_or(EINVAL)?;
    if !binding.is_tx() {
        return Err(EINVAL);
    }
    let rcu = rcu::read_lock();
    match sk.route_dev(&rcu)? {
        Some(dev) if Some(dev) == binding.dev() || Some(dev) == binding.vdev() => Ok(binding),
        _ => Err(ENODEV),
    }
}

/// The `net_iov` holding byte `addr` of the binding's dma-buf, with the offset
/// in it and the bytes left in it.
pub(crate) fn niov_at(binding: &Binding, addr: usize) -> Option<(NetIov<'_>, usize, usize)> {
    if addr >= binding.dmabuf_size() {
        return None;
    }
    // A TX binding's `net_iov`s are pages.
    let page = NiovSize::PAGE.bytes();
    let off = addr % page;
    let niov = binding.tx_niov(addr / page)?;
    Some((niov, off, page - off))
}

/// Makes every TX binding let go of `dev`, which unregisters: as its device
/// (then the dma-buf is unmapped) or as the virtual device it was bound
/// through (then only compared, and a new device could take its address).
///
/// An RX binding lets go of its device when its last queue is uninstalled
/// or closed; a TX binding has no queue, so without this the netlink socket
/// that made it would, when closed after the device is gone, lock a freed
/// device. TX bindings already unbound but still referenced (skbs in
/// flight) are no longer in the table: they are found on the unbound list,
/// which unbind links them on before it erases them from the table, so
/// walking the table first and then the list misses none.
pub(crate) fn unregister_netdev(dev: &UnregisteringDevice) {
    ids::for_each(|binding| binding.device_unregisters(dev));
    ids::for_each_unbound_tx(|binding| binding.device_unregisters(dev));
}
