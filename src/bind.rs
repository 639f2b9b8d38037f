// SPDX-License-Identifier: GPL-2.0

//! Binding a dma-buf, attaching it to RX queues, and unbinding it.

use crate::abstractions::dma_buf::DmaBuf;
use crate::abstractions::error::eopnotsupp;
use crate::abstractions::net::devmem::builder::{NlSock, Published};
use crate::abstractions::net::devmem::niov_size::NiovSize;
use crate::abstractions::net::devmem::{Builder, OwnedBinding, Unbound, Unlinked};
use crate::abstractions::net::{DeviceId, Extack, NetDevice};
use kernel::{device::Device, dma::DataDirection, fs::file::LocalFile, prelude::*};

/// Who reaches a binding's buffers: the DMA device of its queues (`None` if
/// they cannot do DMA), and whether their device moves the data with the CPU
/// instead (`netmem_cpu_access`), for which the dma-buf is also mapped into
/// the kernel. C finds both through any queue lease.
pub(crate) struct Access<'a> {
    pub(crate) dma_dev: Option<&'a Device>,
    pub(crate) cpu: bool,
}

/// What the user asked for: the dma-buf, the direction, the size of the
/// `net_iov`s to carve it into (a page for TX; rx-page-size for RX), and
/// for RX, a refill ring.
pub(crate) struct Request {
    pub(crate) fd: u32,
    pub(crate) dir: DataDirection,
    pub(crate) niov: NiovSize,
    pub(crate) ring: Option<RingRequest>,
}

/// A refill ring (Documentation/refill-ring.md): `entries` entries at
/// `offset` in the memfd `fd`.
pub(crate) struct RingRequest {
    pub(crate) fd: u32,
    pub(crate) offset: u64,
    pub(crate) entries: u32,
}

/// Binds the dma-buf `req.fd` to `dev` for DMA by `access.dma_dev` in
/// direction `req.dir`, carved into `net_iov`s of `req.niov`. `vdev` is the
/// virtual device bind-tx was called on, if any.
///
/// The binding is linked on `sock`'s list, which keeps its initial reference
/// until [`unbind`]. Errors and their extack messages are those of the C
/// provider, in the same order.
pub(crate) fn bind(
    dev: &NetDevice,
    vdev: Option<DeviceId>,
    access: Access<'_>,
    req: Request,
    sock: &NlSock,
    extack: &Extack<'_>,
) -> Result<Published> {
    let Request {
        fd,
        dir,
        niov,
        ring,
    } = req;
    let Some(dma_dev) = access.dma_dev else {
        extack.set_msg(c"Device doesn't support DMA");
        return Err(eopnotsupp());
    };
    let dmabuf = DmaBuf::get(i32::try_from(fd).map_err(|_| EBADF)?)?;
    let mut carved = Builder::new(dev, vdev, dir, niov, dmabuf)?
        .map(dma_dev, extack)?
        .carve(dev.numa_node(), extack)?;
    if let Some(r) = ring {
        let file = LocalFile::fget(r.fd).inspect_err(|_| {
            extack.set_msg(c"refill-ring fd is not an open file");
        })?;
        carved = carved.refill_ring(&file, r.offset, r.entries, extack)?;
    }
    // A device without DMA reads and writes the buffer through a kernel
    // mapping of it.
    carved.finish(access.cpu, extack)?.publish(sock)
}

/// Unbinds: gives up the socket's reference, after hiding the binding from
/// lookups and closing every bound queue of `dev`
/// ([`Unlinked::release`]). The binding is freed once page pools and
/// `net_iov`s still using it let go.
///
/// `dev` is the binding's device, locked by the caller, or `None` once the
/// binding let go of it (then no queue is bound any more).
pub(crate) fn unbind(binding: Unlinked, dev: Option<&NetDevice>) {
    binding.release(dev);
}

/// Closes the queues of an unbound `binding` that [`unbind`] could not
/// close (their restart failed, so they still receive into it), for the
/// work that tries again later; returns whether none is left.
///
/// `dev` is the binding's device, locked by the caller, or `None` once the
/// binding let go of it.
pub(crate) fn close_left_open(binding: &Unbound<'_>, dev: Option<&NetDevice>) -> bool {
    binding.close_left_open(dev)
}

/// Installs `binding`, which its netlink socket holds, on RX queue `idx`
/// of `dev` and records the queue.
pub(crate) fn bind_to_queue(
    dev: &NetDevice,
    idx: u32,
    binding: &OwnedBinding,
    extack: &Extack<'_>,
) -> Result {
    binding.install_on(dev, idx, extack)
}
