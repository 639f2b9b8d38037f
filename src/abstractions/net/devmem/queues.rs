// SPDX-License-Identifier: GPL-2.0

//! A binding's RX queues and devices: installing it as a queue's memory
//! provider, closing its queues at unbind, and letting go of a device whose
//! queues no longer use it or which unregisters.
//!
//! The queue table (`bound_rxqs`, read by C's dmabuf-get) records every
//! queue the binding is installed on; only [`OwnedBinding::install_on`]
//! adds to it (into a slot reserved before the install, so that a queue
//! running on the binding is always recorded) and only the end of an
//! installation (uninstall, or a close at or after unbind that restarted
//! the queue) removes from it. Entries are only compared: a queue is found
//! again by looking its identity up among its device's queues.

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
        // is held, and recorded in the queue table. The initial reference is
        // only given up by `Unlinked::release`, once every recorded queue is
        // closed; or, when a queue's restart failed (it stays installed and
        // recorded), after `close_later` took a reference that its work keeps
        // until no recorded queue is left (closed, or uninstalled when the
        // device unregisters). A queue that cannot be found again leaks the
        // binding, and so does dropping it otherwise. Each page pool holds a
        // reference of its own.
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
        // The slot first: once the queue runs on the binding, recording it
        // must not fail, since the restart that would undo the install can
        // fail too and leave the queue on a binding that does not know it.
        let slot = self.reserve_rxq()?;
        if let Err(e) = dev.mp_open_rxq(idx, &params, extack) {
            self.remove_rxq(slot.0);
            return Err(e);
        }
        // `netif_mp_open_rxq` accepted `idx`, so the queue exists.
        match dev.rx_queue(idx) {
            Some(rxq) => {
                self.record_rxq(slot, rxq);
                Ok(())
            }
            None => {
                // Unreachable; the provider must not stay installed on a
                // queue it does not record, even if the restart fails
                // (which warns).
                dev.mp_close_rxq(idx, &params);
                self.remove_rxq(slot.0);
                Err(EINVAL)
            }
        }
    }
}

/// A slot of a binding's queue table, reserved by
/// [`Binding::reserve_rxq`].
///
/// # Invariants
///
/// `self.0` is a reserved index of the table of the binding that made it.
struct RxqSlot(usize);

/// What closing a binding's queues came to ([`Binding::close_queues`]).
pub(super) enum Closing {
    /// No queue names the binding any more.
    Done,
    /// A queue's restart failed: it still runs on the binding, which stays
    /// installed on it and recorded, with its device and its mapping.
    Open,
    /// A recorded queue may still name the binding but cannot be found, or
    /// the device is not the binding's (a warning): the binding must be
    /// leaked.
    Lost,
}

impl Binding {
    /// Closes every queue the binding is installed on and forgets each one
    /// that restarted without it, for [`super::Unlinked::release`] and, when
    /// a restart failed there, for the work that closes the rest later
    /// ([`super::Unbound::close_left_open`]). `dev` is the binding's device,
    /// locked by the caller, or `None` once the binding let go of it.
    ///
    /// When no queue of an RX binding is left, nothing DMAs into it any
    /// more: it lets go of its device and unmaps and detaches the dma-buf
    /// now, as the uninstall of its last queue does (frags sockets still
    /// hold keep the binding, not the mapping). A queue whose restart failed
    /// still runs on a page pool of the binding, so the binding keeps its
    /// device and its mapping ([`Closing::Open`]).
    ///
    /// A binding whose device went away meanwhile (its last queue was
    /// uninstalled; a TX binding's device unregisters concurrently) has no
    /// queue to close.
    pub(super) fn close_queues(&self, dev: Option<&NetDevice>) -> Closing {
        let Some(own) = self.dev() else {
            // RX bindings let go of their device only when their last queue
            // was uninstalled or closed; TX bindings have no queues.
            return if kernel::warn_on!(self.rxqs().next().is_some()) {
                Closing::Lost
            } else {
                Closing::Done
            };
        };
        let Some(dev) = dev.filter(|d| d.id() == own) else {
            kernel::warn_on!(true);
            return Closing::Lost;
        };
        let params = self.mp_params();
        let (mut all, mut closed) = (true, true);
        for (slot, rxq) in self.rxqs() {
            match dev.rx_queue_index(rxq) {
                Some(idx) if dev.mp_try_close_rxq(idx, &params).is_ok() => {
                    self.remove_rxq(slot);
                }
                Some(_) => closed = false,
                None => all = false,
            }
        }
        if kernel::warn_on!(!all) {
            return Closing::Lost;
        }
        if !closed {
            return Closing::Open;
        }
        if !self.is_tx() {
            self.forget_device(own);
            self.scrub_refill();
            self.unmap();
        }
        Closing::Done
    }
}

impl Binding {
    /// Reserves a slot in the queue table for a queue the binding is about
    /// to be installed on, so that recording it after the install cannot
    /// fail ([`Binding::record_rxq`]). A reserved slot is not visited by
    /// [`Binding::rxqs`]; [`Binding::remove_rxq`] releases it.
    fn reserve_rxq(&self) -> Result<RxqSlot> {
        let mut idx = 0u32;
        let limit = bindings::xa_limit {
            min: 0,
            max: u32::MAX,
        };
        // SAFETY: the table was initialised (as an allocating xarray) by the
        // builder and lives as long as the binding; the xarray locks itself.
        // A null entry reserves the index.
        to_result(unsafe {
            bindings::xa_alloc(
                &raw mut (*self.as_raw()).bound_rxqs,
                &mut idx,
                core::ptr::null_mut(),
                limit,
                bindings::GFP_KERNEL,
            )
        })?;
        // INVARIANT: `xa_alloc` just reserved index `idx` of this table.
        Ok(RxqSlot(idx as usize))
    }

    /// Records `rxq` in `slot`. Private: only a queue the binding was just
    /// installed on may be recorded.
    fn record_rxq(&self, slot: RxqSlot, rxq: &RxQueue) {
        // SAFETY: the table lives as long as the binding and locks itself.
        // Storing into the reserved slot (`RxqSlot`'s invariant) allocates
        // nothing, so it cannot fail.
        unsafe {
            bindings::xa_store(
                &raw mut (*self.as_raw()).bound_rxqs,
                slot.0,
                rxq.as_raw().cast(),
                bindings::GFP_KERNEL,
            )
        };
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
            self.scrub_refill();
            self.unmap();
        }
    }

    /// Lets go of `dev`, which unregisters, if this TX binding uses it (as
    /// its device or as the virtual device bind-tx was called on); unmaps and
    /// detaches the dma-buf when it was the binding's device. RX bindings let
    /// go of their device through [`Binding::uninstall_queue`] or at unbind
    /// ([`Binding::close_queues`]).
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
