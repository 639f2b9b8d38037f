// SPDX-License-Identifier: GPL-2.0

//! The memory provider page_pool calls: hands out a binding's `net_iov`s to
//! the pools of the queues it is bound to and takes them back.
//!
//! C header: [`include/net/page_pool/memory_provider.h`](srctree/include/net/page_pool/memory_provider.h)

use crate::abstractions::bug::warn_on_once;
use crate::abstractions::net::RxQueue;
use crate::binding::{Binding, UninstalledQueue};
use crate::netmem::{disown, OwnedNetIov, PagePoolInit, PagePoolRefill};
use kernel::{bindings, prelude::*, sync::aref::ARef};

/// How many `net_iov`s a cache miss takes at most: a cache refill's worth
/// (C takes one per call).
const REFILL: usize = crate::freelist::BATCH;

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
/// synced), buffers of the binding's `net_iov` size only. Returns the
/// reference on the binding the pool holds until [`destroy`].
pub(crate) fn init(pool: PagePoolInit<'_>) -> Result<ARef<Binding>> {
    let binding = pool.binding().ok_or(EINVAL)?;
    pool.disable_dma_sync();
    if pool.order() != binding.niov_size().order() {
        return Err(E2BIG);
    }
    Ok(binding.into())
}

/// Drops the pool's reference that [`init`] returned.
pub(crate) fn destroy(binding: ARef<Binding>) {
    drop(binding);
}

/// Buffers for a pool whose cache ran dry (softirq, or the driver filling
/// its ring): one `net_iov` returned as the netmem the pool now owns, and up
/// to a cache refill's worth more placed in the pool's cache, all taken off
/// the binding's free list under one lock. `None` when the dma-buf is used
/// up. (C hands out one `net_iov` per call, so a pool calls it for every
/// buffer once its ring is empty.)
pub(crate) fn alloc(pool: &PagePoolRefill<'_>) -> Option<bindings::netmem_ref> {
    let binding = pool.binding()?;
    let mut first = None;
    binding.alloc_niovs(REFILL.min(pool.cache_room() + 1), |niov| {
        if first.is_none() {
            first = Some(pool.adopt(niov));
        } else if let Err(niov) = pool.adopt_into_cache(niov) {
            // Cannot happen: no more were taken than the cache holds.
            binding.free_niov(niov);
        }
    });
    first
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

/// Returns `niov` to its binding's free list.
pub(crate) fn free(niov: OwnedNetIov<'_>) {
    niov.binding().free_niov(niov);
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
