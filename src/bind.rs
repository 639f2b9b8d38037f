// SPDX-License-Identifier: GPL-2.0

//! Binding a dma-buf, attaching it to RX queues, and unbinding it.

use crate::abstractions::dma_buf::{Direction, DmaBuf};
use crate::abstractions::net::{eopnotsupp, synchronize_net, Extack, NetDevice, NlSock};
use crate::binding::{Binding, OwnedBinding, RawBinding};
use crate::genpool::OwnedChunkPool;
use crate::ids;
use crate::netmem::NiovSize;
use core::ptr::NonNull;
use kernel::{alloc::KVVec, bindings, prelude::*};

/// Who reaches a binding's buffers: the DMA device of its queues (`None` if
/// they cannot do DMA), and whether their device moves the data with the CPU
/// instead (`netmem_cpu_access`), for which the dma-buf is also mapped into
/// the kernel. C finds both through any queue lease.
pub(crate) struct Access {
    pub(crate) dma_dev: Option<NonNull<bindings::device>>,
    pub(crate) cpu: bool,
}

/// What the user asked for: the dma-buf, the direction, and the size of the
/// `net_iov`s to carve it into (a page for TX; rx-page-size for RX).
pub(crate) struct Request {
    pub(crate) fd: u32,
    pub(crate) dir: Direction,
    pub(crate) niov: NiovSize,
}

/// Binds the dma-buf `req.fd` to `dev` for DMA by `access.dma_dev` in
/// direction `req.dir`, carved into `net_iov`s of `req.niov`.
///
/// The binding is linked on `sock`'s list, which keeps its initial reference
/// until [`unbind`]; the returned pointer is that reference, for C. Errors
/// and their extack messages are those of the C provider.
pub(crate) fn bind(
    dev: &NetDevice,
    vdev: *mut c_void,
    access: Access,
    req: Request,
    sock: &NlSock,
    extack: &Extack,
) -> Result<*mut bindings::net_devmem_dmabuf_binding> {
    let Request { fd, dir, niov } = req;
    // TX `net_iov`s are pages (the TX table is indexed by page).
    if dir == Direction::ToDevice && niov != NiovSize::PAGE {
        return Err(EINVAL);
    }
    let Some(dma_dev) = access.dma_dev else {
        extack.set_msg(c"Device doesn't support DMA");
        return Err(eopnotsupp());
    };
    let page = NiovSize::PAGE.bytes();
    let dmabuf = DmaBuf::get(fd as i32)?;
    let size = dmabuf.size();
    let mut binding = RawBinding::new(dev, vdev, dir, niov, Some(crate::binding_release))?;

    let attachment = dmabuf.attach(dma_dev).inspect_err(|_| {
        extack.set_msg(c"Failed to bind dmabuf to device");
    })?;
    let mapping = attachment.map(dir).inspect_err(|_| {
        extack.set_msg(c"Failed to map dmabuf attachment");
    })?;

    let mut tx_vec = None;
    if dir == Direction::ToDevice {
        if size % page != 0 {
            extack.set_msg(c"TX dma-buf size must be a multiple of PAGE_SIZE");
            return Err(EINVAL);
        }
        let pages = size / page;
        let mut v = KVVec::with_capacity(pages, GFP_KERNEL)?;
        for _ in 0..pages {
            v.push(core::ptr::null_mut(), GFP_KERNEL)?;
        }
        tx_vec = Some(v);
    }

    let nid = dev.numa_node();
    binding.set_pool(OwnedChunkPool::new(nid, niov)?);
    binding.reserve_niovs(
        mapping.segments().map(|(_, len)| len >> niov.shift()).sum(),
        mapping.segments().count(),
    )?;
    let mut virt = 0usize;
    for (dma, len) in mapping.segments() {
        if len % page != 0 {
            extack.set_msg(c"dma-buf SG length must be PAGE_SIZE aligned");
            return Err(EINVAL);
        }
        // A buffer larger than a page lies within one segment, at an address
        // aligned to its size.
        let align = niov.bytes() - 1;
        if niov != NiovSize::PAGE && (len & align != 0 || dma & align as bindings::dma_addr_t != 0)
        {
            extack.set_msg(c"dma-buf SG entry not aligned to rx-page-size");
            return Err(EINVAL);
        }
        let niovs = binding.add_chunk(dma, len, virt, nid)?;
        if let Some(v) = tx_vec.as_mut() {
            let first = virt / page;
            for (i, niov) in niovs.enumerate() {
                // A TX dma-buf's segments cover its size exactly, so the
                // index stays within the page count; a longer mapping fails.
                *v.get_mut(first + i).ok_or(EINVAL)? = niov;
            }
        }
        virt += len;
    }

    // Hand everything to the binding before it becomes visible.
    if let Some(v) = tx_vec {
        binding.set_tx_vec(v);
    }
    binding.set_mapping(mapping);
    binding.set_attachment(attachment);
    // A device without DMA reads and writes the buffer through a kernel
    // mapping of it.
    binding
        .set_dmabuf(dmabuf, access.cpu)
        .inspect_err(|_| extack.set_msg(c"Failed to map dmabuf for CPU access"))?;
    ids::insert(&mut binding)?;

    Ok(binding.publish(sock))
}

/// Unbinds: hides the binding from lookups, waits for lookups in flight,
/// closes every bound queue of `dev`, and drops the socket's reference. The
/// binding is freed once page pools and `net_iov`s still using it let go.
///
/// `dev` is the binding's device, locked by the caller, or `None` once the
/// binding let go of it (then no queue is bound any more).
pub(crate) fn unbind(binding: OwnedBinding, dev: Option<&NetDevice>) {
    ids::remove(binding.id());
    synchronize_net();

    if let Some(dev) = dev {
        binding.close_queues(dev);
    }
    drop(binding);
}

/// Installs `binding` on RX queue `idx` of `dev` and records the queue.
///
/// The device's instance lock is held (`NetDevice`'s contract).
pub(crate) fn bind_to_queue(
    dev: &NetDevice,
    idx: u32,
    binding: &Binding,
    extack: &Extack,
) -> Result {
    binding.install_on(dev, idx, extack)
}
