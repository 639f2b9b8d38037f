// SPDX-License-Identifier: GPL-2.0

//! The memory provider page_pool calls: hands out a binding's `net_iov`s to
//! the pools of the queues it is bound to and takes them back.
//!
//! C header: [`include/net/page_pool/memory_provider.h`](srctree/include/net/page_pool/memory_provider.h)

use crate::abstractions::bug::warn_on_once;
use crate::abstractions::net::RxQueue;
use crate::binding::{Binding, UninstalledQueue};
use crate::netmem::{disown, OwnedNetIov, PagePool, PagePoolInit};
use kernel::{bindings, prelude::*, sync::aref::ARef};

/// The devmem ops. An immutable static, so it lands in `.rodata`, which
/// `page_pool_init` checks.
pub(crate) static DMABUF_DEVMEM_OPS: bindings::memory_provider_ops =
    bindings::memory_provider_ops {
        alloc_netmems: Some(crate::mp_dmabuf_devmem_alloc_netmems),
        release_netmem: Some(crate::mp_dmabuf_devmem_release_page),
        init: Some(crate::mp_dmabuf_devmem_init),
        destroy: Some(crate::mp_dmabuf_devmem_destroy),
        nl_fill: Some(crate::mp_dmabuf_devmem_nl_fill),
        uninstall: Some(crate::mp_dmabuf_devmem_uninstall),
    };

/// Sets up a pool for devmem: no DMA syncs (dma-buf addresses must not be
/// synced), page-sized buffers only. Returns the reference on the binding the
/// pool holds until [`destroy`].
pub(crate) fn init(pool: PagePoolInit<'_>) -> Result<ARef<Binding>> {
    let binding = pool.binding().ok_or(EINVAL)?;
    pool.disable_dma_sync();
    if pool.order() != 0 {
        return Err(E2BIG);
    }
    Ok(binding.into())
}

/// Drops the pool's reference that [`init`] returned.
pub(crate) fn destroy(binding: ARef<Binding>) {
    drop(binding);
}

/// One `net_iov` for the pool (softirq), as the netmem the pool now owns, or
/// `None` when the dma-buf is used up.
pub(crate) fn alloc(pool: &PagePool) -> Option<bindings::netmem_ref> {
    let niov = pool.binding()?.pool().alloc()?;
    Some(pool.adopt(niov))
}

/// Takes a `net_iov` back from its pool (possibly with BH disabled). Always
/// returns `false`: the pool must not free it as a page. A netmem that is
/// not a `net_iov`, or one still referenced, is warned about once and left
/// alone, as C does.
pub(crate) fn release(niov: Option<OwnedNetIov<'_>>) -> bool {
    let Some(niov) = niov else {
        warn_on_once!(true);
        return false;
    };
    if warn_on_once!(niov.pp_ref_count() != 1) {
        return false;
    }
    disown(&niov);
    free(niov);
    false
}

/// Returns `niov` to its binding's genpool.
pub(crate) fn free(niov: OwnedNetIov<'_>) {
    niov.binding().pool().free(niov);
}

/// The netlink attribute reporting the binding: on a queue, or on a pool.
pub(crate) fn nl_fill_attr(rxq: Option<RxQueue>) -> u32 {
    if rxq.is_some() {
        bindings::NETDEV_A_QUEUE_DMABUF
    } else {
        bindings::NETDEV_A_PAGE_POOL_DMABUF
    }
}

/// Ends the binding's installation on a queue (its device unregisters, or a
/// lease ends); the binding lets go of its device, and unmaps the dma-buf,
/// when its last queue goes.
pub(crate) fn uninstall(binding: &Binding, queue: &UninstalledQueue) {
    binding.uninstall_queue(queue);
}
