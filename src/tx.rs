// SPDX-License-Identifier: GPL-2.0

//! The TX side: finding a socket's binding and the `net_iov` at an offset of
//! its dma-buf.

use crate::binding::Binding;
use crate::ids;
use crate::net::TcpSock;
use crate::netmem::{NetIov, NIOV_SIZE};
use kernel::{prelude::*, sync::rcu};

/// The TX binding `id`, with a reference, if `sk`'s route leads to its
/// device (or to the virtual device bind-tx was called on).
///
/// A socket without a route gets one rebuilt: `EHOSTUNREACH` if that fails,
/// `ENODEV` if it still has none or it leads elsewhere.
pub(crate) fn get_binding(sk: &TcpSock, id: u32) -> Result<&'static Binding> {
    let binding = match ids::lookup(id) {
        Some(b) if b.is_tx() => b,
        Some(b) => {
            b.put();
            return Err(EINVAL);
        }
        None => return Err(EINVAL),
    };
    let rcu = rcu::read_lock();
    let ok = match sk.route_dev(&rcu) {
        Ok(Some(dev)) if dev == binding.dev() || dev.cast() == binding.vdev() => Ok(()),
        Ok(_) => Err(ENODEV),
        Err(e) => Err(e),
    };
    drop(rcu);
    ok.inspect_err(|_| binding.put())?;
    Ok(binding)
}

/// The `net_iov` holding byte `addr` of the binding's dma-buf, with the offset
/// in it and the bytes left in it.
pub(crate) fn niov_at(binding: &Binding, addr: usize) -> Option<(NetIov, usize, usize)> {
    if addr >= binding.dmabuf_size() {
        return None;
    }
    let off = addr % NIOV_SIZE;
    let niov = binding.tx_niov(addr / NIOV_SIZE)?;
    Some((niov, off, NIOV_SIZE - off))
}
