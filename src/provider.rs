// SPDX-License-Identifier: GPL-2.0

//! The memory provider page_pool calls: hands out a binding's `net_iov`s to
//! the pools of the queues it is bound to and takes them back.
//!
//! C header: [`include/net/page_pool/memory_provider.h`]
//!
//! [`include/net/page_pool/memory_provider.h`]: srctree/include/net/page_pool/memory_provider.h

use crate::abstractions::bug::warn_on_once;
use crate::abstractions::net::devmem::freelist::BATCH;
use crate::abstractions::net::devmem::{Binding, Devmem, OwnedNetIov};
use crate::abstractions::net::page_pool::{
    disown, MemoryProvider, Netmem, NlMsg, PagePool, PagePoolInit, PagePoolRefill, Uninstalled,
};
use crate::abstractions::net::RxQueue;
use kernel::{bindings, prelude::*};

/// How many `net_iov`s one cache refill takes at most, given how many are
/// free: a refill's worth, but never more than a quarter of what is free
/// (and at least one), so that one queue's pool cannot park a small
/// binding's buffers in its cache while the binding's other queues starve.
/// C takes one per call.
pub(crate) fn refill_bound(free: usize) -> usize {
    BATCH.min((free / 4).max(1))
}

#[vtable]
impl MemoryProvider for Devmem {
    type Data = Binding;
    type Buf<'a> = OwnedNetIov<'a>;

    /// Sets up a pool for devmem: no DMA syncs (dma-buf addresses must not be
    /// synced), buffers of the binding's `net_iov` size only.
    fn init(pool: &PagePoolInit<'_, Self>) -> Result {
        let binding = pool.data().ok_or(EINVAL)?;
        pool.disable_dma_sync();
        if pool.order() != binding.niov_size().order() {
            return Err(E2BIG);
        }
        Ok(())
    }

    /// Buffers for a pool whose cache ran dry (softirq, or the driver filling
    /// its ring): one `net_iov` returned as the netmem the pool now owns, and
    /// more placed in the pool's cache, all taken off the binding's free
    /// list under one lock (bounded by [`refill_bound`]). `None` when the
    /// dma-buf is used up.
    fn alloc_netmems<'r>(pool: &'r PagePoolRefill<'_, Self>) -> Option<Netmem<'r>> {
        let binding = pool.data()?;
        // Frags user space gave back through the ring first: those of this
        // pool go straight into its cache, skipping the ring and the free
        // list. If any did, the refill is done.
        if binding.drain_refill(pool) > 0 {
            if let Some(netmem) = pool.take_cached() {
                return Some(netmem);
            }
        }
        let mut first = None;
        binding.alloc_niovs(pool.cache_room() + 1, refill_bound, |niov| {
            let put = if first.is_none() {
                pool.adopt(niov).map(|n| first = Some(n))
            } else {
                pool.adopt_into_cache(niov)
            };
            // Cannot happen: the `net_iov`s are the pool's binding's, and no
            // more were taken than the cache holds.
            if let Err(niov) = put {
                binding.free_niov(niov);
            }
        });
        first
    }

    /// Takes a `net_iov` back from its pool (possibly with BH disabled).
    /// Always returns `false`: the pool must not free it as a page. A netmem
    /// that is not a `net_iov` is warned about once and left alone, as C
    /// does (the adapter does the same with a `net_iov` still referenced).
    #[inline]
    fn release_netmem<'a>(_pool: &'a PagePool<Self>, niov: Option<OwnedNetIov<'a>>) -> bool {
        let Some(niov) = niov else {
            warn_on_once!(true);
            return false;
        };
        disown(&niov);
        free(niov);
        false
    }

    /// Reports the binding's ID on a queue, or on a pool.
    fn nl_fill(binding: &Binding, rsp: &NlMsg, rxq: Option<&RxQueue>) -> Result {
        let attr = if rxq.is_some() {
            bindings::NETDEV_A_QUEUE_DMABUF
        } else {
            bindings::NETDEV_A_PAGE_POOL_DMABUF
        };
        rsp.put_u32(attr, binding.id())
    }

    /// Ends the binding's installation on a queue (its device unregisters, or
    /// a lease ends); the binding lets go of its device, and unmaps and
    /// detaches the
    /// dma-buf, when its last queue goes.
    fn uninstall(binding: &Binding, rxq: &Uninstalled<'_>) {
        binding.uninstall_queue(rxq);
    }
}

/// Returns `niov` to its binding's free list.
#[inline]
pub(crate) fn free(niov: OwnedNetIov<'_>) {
    niov.binding().free_niov(niov);
}
