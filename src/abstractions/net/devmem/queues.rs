// SPDX-License-Identifier: GPL-2.0

//! A binding's RX queues and devices: installing it as a queue's memory
//! provider, closing its queues at unbind, and letting go of a device whose
//! queues no longer use it or which unregisters.
//!
//! The queue table (`bound_rxqs`, read by C's dmabuf-get) records every
//! queue the binding is installed on; only [`OwnedBinding::install_on`]
//! adds to it and only the end of an installation (uninstall, or the close
//! at unbind) removes from it. Entries are
//! only compared: a queue is found again by looking its identity up among
//! its device's queues.

use super::{Binding, OwnedBinding};
use crate::abstractions::net::page_pool::{MpParams, Ops, Uninstalled};
use crate::abstractions::net::{DeviceId, Extack, NetDevice, RxQueue, RxQueueId};
use core::ptr::NonNull;
use kernel::{bindings, error::to_result, prelude::*};

/// The devmem provider. Its
/// [`MemoryProvider`](crate::abstractions::net::page_pool::MemoryProvider)
/// implementation is the
/// provider's logic ([`crate::provider`]); the type is defined here so that
/// the only ops a binding is ever installed with are its own.
pub(crate) struct Devmem;

/// The devmem ops, in read-only data as `page_pool_init` requires.
static OPS: Ops<Devmem> = Ops::new();

impl Binding {
    /// The parameters that install this binding as a queue's provider.
    /// Private: the binding outlives an installation only because every one
    /// is recorded in its queue table and closed at unbind
    /// ([`OwnedBinding::install_on`], [`super::Unlinked::release`]).
    fn mp_params(&self) -> MpParams {
        // SAFETY: a binding outlives its installations: each is made by
        // `OwnedBinding::install_on`, so while the socket's initial reference
        // is held, and recorded in the queue table; the initial reference is
        // only given up by `Unlinked::release`, which closes every
        // recorded queue first and leaks the binding when `close_queues`
        // cannot (dropping it otherwise leaks it too); and each page pool
        // holds a reference of its own.
        unsafe { MpParams::new(&OPS, self, self.niov_size().rx_page_size()) }
    }
}

impl OwnedBinding {
    /// Installs the binding as the memory provider of RX queue `idx` of
    /// `dev` and records the queue, so that [`super::Unlinked::release`]
    /// closes it again; undone if it cannot be recorded. Only an RX binding,
    /// on a queue of its own device: `EINVAL` otherwise (C's callers never
    /// ask for anything else).
    pub(crate) fn install_on(&self, dev: &NetDevice, idx: u32, extack: &Extack<'_>) -> Result {
        if self.is_tx() || self.dev() != Some(dev.id()) {
            return Err(EINVAL);
        }
        let params = self.mp_params();
        dev.mp_open_rxq(idx, &params, extack)?;
        // `netif_mp_open_rxq` accepted `idx`, so the queue exists.
        let recorded = dev
            .rx_queue(idx)
            .ok_or(EINVAL)
            .and_then(|rxq| self.add_rxq(rxq));
        recorded.inspect_err(|_| {
            // Undone as C's bind-rx undoes it; a failed close has warned.
            let _ = dev.mp_close_rxq(idx, &params);
        })
    }

    /// Closes every queue the binding is installed on, for
    /// [`super::Unlinked::release`], and forgets them. `dev` is the
    /// binding's device, locked by the caller, or `None` once the binding
    /// let go of it.
    ///
    /// When every queue of an RX binding closed, nothing DMAs into it any
    /// more: it lets go of its device and unmaps and detaches the dma-buf
    /// now, as the uninstall of its last queue does (frags sockets still
    /// hold keep the binding, not the mapping). A queue whose restart failed
    /// still runs on a page pool of the binding, so the mapping then stays
    /// until the binding is freed, after that pool.
    ///
    /// Returns `false`, after a warning, when a recorded queue may still
    /// name the binding in its parameters: `dev` is not the binding's
    /// device, or a recorded queue is not among `dev`'s queues. The binding
    /// must then be leaked. A binding whose device went away meanwhile (a
    /// TX binding's device unregisters concurrently) has no queue to close.
    pub(super) fn close_queues(&self, dev: Option<&NetDevice>) -> bool {
        let Some(own) = self.dev() else {
            // RX bindings let go of their device only when their last queue
            // was uninstalled or closed; TX bindings have no queues.
            return !kernel::warn_on!(self.rxqs().next().is_some());
        };
        let Some(dev) = dev.filter(|d| d.id() == own) else {
            kernel::warn_on!(true);
            return false;
        };
        let params = self.mp_params();
        let (mut all, mut closed) = (true, true);
        for (slot, rxq) in self.rxqs() {
            match dev.rx_queue_index(rxq) {
                Some(idx) => {
                    closed &= dev.mp_close_rxq(idx, &params).is_ok();
                    self.remove_rxq(slot);
                }
                None => all = false,
            }
        }
        if kernel::warn_on!(!all) {
            return false;
        }
        if closed && !self.is_tx() {
            self.forget_device(own);
            self.unmap();
        }
        true
    }
}

impl Binding {
    /// Records `rxq` as bound to this binding. Private: only a queue the
    /// binding was just installed on may be recorded.
    fn add_rxq(&self, rxq: &RxQueue) -> Result {
        let mut idx = 0u32;
        let limit = bindings::xa_limit {
            min: 0,
            max: u32::MAX,
        };
        // SAFETY: the table was initialised by the builder and lives as long
        // as the binding; the xarray locks itself.
        to_result(unsafe {
            bindings::xa_alloc(
                &raw mut (*self.as_raw()).bound_rxqs,
                &mut idx,
                rxq.as_raw().cast(),
                limit,
                bindings::GFP_KERNEL,
            )
        })
    }

    /// The bound RX queues, as `(table index, queue identity)`, looked up
    /// one at a time so the table may change while they are visited (an
    /// `uninstall` removes its queue, and so does unbind once it closed
    /// it).
    fn rxqs(&self) -> impl Iterator<Item = (usize, RxQueueId)> + '_ {
        let mut index: usize = 0;
        let mut first = true;
        core::iter::from_fn(move || {
            // SAFETY: the table lives as long as the binding; `xa_find*` lock
            // internally.
            let entry = unsafe {
                let xa = &raw mut (*self.as_raw()).bound_rxqs;
                if first {
                    first = false;
                    bindings::xa_find(xa, &mut index, usize::MAX, bindings::XA_PRESENT)
                } else {
                    bindings::xa_find_after(xa, &mut index, usize::MAX, bindings::XA_PRESENT)
                }
            };
            NonNull::new(entry).map(|q| (index, RxQueueId::from_ptr(q)))
        })
    }

    /// Forgets the queue at table index `idx`; returns whether none remain.
    /// Private for the same reason as `forget_device`.
    fn remove_rxq(&self, idx: usize) -> bool {
        // SAFETY: the table lives as long as the binding; the xarray locks
        // itself.
        unsafe {
            let xa = &raw mut (*self.as_raw()).bound_rxqs;
            bindings::xa_erase(xa, idx);
            bindings::xa_empty(xa)
        }
    }

    /// Ends the installation of the binding on `queue`; when it was the last
    /// one, the binding lets go of its device and unmaps and detaches the
    /// dma-buf (RX).
    pub(crate) fn uninstall_queue(&self, queue: &Uninstalled<'_>) {
        let id = queue.queue().id();
        let Some((idx, _)) = self.rxqs().find(|&(_, q)| q == id) else {
            return;
        };
        if self.remove_rxq(idx) {
            if let Some(dev) = self.dev() {
                self.forget_device(dev);
            }
            self.unmap();
        }
    }

    /// Lets go of `dev`, which unregisters, if this TX binding uses it (as
    /// its device or as the virtual device bind-tx was called on); unmaps and
    /// detaches the dma-buf when it was the binding's device. RX bindings let
    /// go of their device through [`Binding::uninstall_queue`] or at unbind
    /// ([`OwnedBinding::close_queues`]).
    pub(crate) fn device_unregisters(&self, dev: &UnregisteringDevice) {
        let id = Some(dev.0);
        if self.is_tx() && (self.dev() == id || self.vdev() == id) && self.forget_device(dev.0) {
            self.unmap();
        }
    }
}

/// A net device that unregisters: its queues are stopped, their providers
/// uninstalled, and it transmits nothing more.
///
/// # Invariants
///
/// `self.0` names such a device.
pub(crate) struct UnregisteringDevice(DeviceId);

impl UnregisteringDevice {
    /// # Safety
    ///
    /// Called from the unregister path of `dev`, after `dev_shutdown()` and
    /// the uninstall of its RX queues' memory providers.
    pub(crate) unsafe fn new(dev: DeviceId) -> Self {
        // INVARIANT: the caller is `dev`'s unregister path, past
        // `dev_shutdown()` and the uninstall of its RX queues' providers.
        Self(dev)
    }
}
