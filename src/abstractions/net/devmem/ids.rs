// SPDX-License-Identifier: GPL-2.0

//! The table of live bindings by netlink ID, for TX lookups and dmabuf-get,
//! and the list of unbound TX bindings, for the unregister of their device.
//!
//! IDs are allocated cyclically from 1, so a freed ID is not reused at once.
//! The table itself is defined in C (`devmem_ids.c`) for its static
//! initializer. Unbind erases a binding from the table, then waits for an
//! RCU grace period before it drops the socket's reference, so an entry seen
//! under the RCU read lock is not freed before that lock is released.

use super::Binding;
use core::{cell::UnsafeCell, ptr::NonNull};
use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    sync::{aref::ARef, rcu, Mutex},
};

/// The next ID to try, updated by `xa_alloc_cyclic` under the table's lock.
struct NextId(UnsafeCell<u32>);

// SAFETY: only `xa_alloc_cyclic` touches the value, under the xarray's lock.
unsafe impl Sync for NextId {}

static NEXT_ID: NextId = NextId(UnsafeCell::new(0));

fn table() -> *mut bindings::xarray {
    &raw mut bindings::net_devmem_rust_bindings
}

/// Gives the complete binding `b` an ID, stored in `id`, and makes it
/// visible to [`lookup`]. Only [`super::builder::Complete::publish`] calls
/// it.
///
/// # Safety
///
/// `b` must be a complete binding (its count initialised, every field a
/// lookup reads set) that stays allocated until an RCU grace period after
/// [`remove`] erased it.
pub(super) unsafe fn insert(b: NonNull<bindings::net_devmem_dmabuf_binding>) -> Result {
    let limit = bindings::xa_limit {
        min: 0,
        max: u32::MAX,
    };
    // SAFETY: the table is a live xarray (static); `NEXT_ID` is only used by
    // `xa_alloc_cyclic`, under the table's lock; `b` is a complete binding
    // (caller), whose `id` field `xa_alloc_cyclic` writes through a raw
    // pointer before readers can find the entry.
    let ret = unsafe {
        bindings::xa_alloc_cyclic(
            table(),
            &raw mut (*b.as_ptr()).id,
            b.as_ptr().cast(),
            limit,
            NEXT_ID.0.get(),
            bindings::GFP_KERNEL,
        )
    };
    // 1 means the IDs wrapped around: still a success.
    to_result(ret.min(0))
}

/// Hides the binding with `id` from [`lookup`]. Only
/// [`super::Unlinked::release`] calls it, before the grace period that
/// lets the binding's count drop to zero.
pub(super) fn remove(id: u32) {
    // SAFETY: the table is a live xarray (static), which locks itself.
    unsafe { bindings::xa_erase(table(), id as usize) };
}

/// The first binding with an ID of at least `*index`, referenced; `*index`
/// is set to its ID. Bindings whose count already dropped to zero are
/// skipped.
pub(crate) fn find_from(index: &mut usize) -> Option<ARef<Binding>> {
    let guard = rcu::read_lock();
    loop {
        // SAFETY: the table is a live xarray; `xa_find` is RCU-safe.
        let ptr = unsafe { bindings::xa_find(table(), index, usize::MAX, bindings::XA_PRESENT) };
        let ptr = NonNull::new(ptr.cast::<bindings::net_devmem_dmabuf_binding>())?;
        // SAFETY: an entry is a binding `insert` published; `release` erases
        // it and waits for a grace period before the count can reach zero,
        // so it is not freed before `guard` is dropped.
        if let Some(binding) = unsafe { Binding::try_get(ptr, &guard) } {
            return Some(binding);
        }
        // IDs are `u32`, so this cannot wrap the `usize` index.
        *index += 1;
    }
}

/// The binding with `id`, referenced, if it is still alive.
pub(crate) fn lookup(id: u32) -> Option<ARef<Binding>> {
    let guard = rcu::read_lock();
    // SAFETY: the table is a live xarray; `xa_load` is RCU-safe.
    let ptr = unsafe { bindings::xa_load(table(), id as usize) };
    let ptr = NonNull::new(ptr.cast::<bindings::net_devmem_dmabuf_binding>())?;
    // SAFETY: an entry is a binding `insert` published; `release` erases it
    // and waits for a grace period before the count can reach zero, so it
    // is not freed before `guard` is dropped.
    unsafe { Binding::try_get(ptr, &guard) }
}

/// Calls `f` on every binding in the table, each with a reference held for
/// the call, so `f` may sleep. Bindings added or removed meanwhile may or may
/// not be seen.
pub(crate) fn for_each(mut f: impl FnMut(&Binding)) {
    let mut index: usize = 0;
    while let Some(binding) = find_from(&mut index) {
        f(&binding);
        index += 1;
    }
}

/// The lock of the unbound TX list. A TX binding's buffer may still be sent
/// from after unbind (skbs in flight reference it), so it stays mapped; the
/// unregister of its device must still find it to unmap, and unbind has
/// taken it out of the table. Defined in C (`devmem_ids.c`).
fn unbound_lock() -> &'static Mutex<()> {
    // SAFETY: the mutex is a static initialised by `DEFINE_MUTEX` and never
    // destroyed.
    unsafe { Mutex::from_raw(&raw mut bindings::net_devmem_rust_unbound_tx_lock) }
}

fn unbound_head() -> *mut bindings::list_head {
    &raw mut bindings::net_devmem_rust_unbound_tx
}

/// Links the TX binding `b` on the unbound list, where
/// [`for_each_unbound_tx`] finds it. Only [`super::Unlinked::release`]
/// calls it, before [`remove`], so that an unregister walking the table and
/// then the list cannot miss the binding.
///
/// # Safety
///
/// `b` is a published TX binding whose `list` is on no list (its socket's
/// list unlinked it), parked once and unparked by [`unpark`] before it is
/// freed.
pub(super) unsafe fn park(b: &Binding) {
    let _guard = unbound_lock().lock();
    // SAFETY: the head is a static list, changed only under `unbound_lock`,
    // held; `b`'s `list` is on no list (caller).
    unsafe { bindings::list_add(&raw mut (*b.as_raw()).list, unbound_head()) };
}

/// Unlinks a binding [`park`] linked.
///
/// # Safety
///
/// `b` is a binding [`park`] linked, whose count dropped to zero, on its way
/// to being freed; called once.
pub(super) unsafe fn unpark(b: NonNull<bindings::net_devmem_dmabuf_binding>) {
    let _guard = unbound_lock().lock();
    // SAFETY: `b` is on the unbound list (caller), which is changed only
    // under `unbound_lock`, held.
    unsafe { bindings::list_del(&raw mut (*b.as_ptr()).list) };
}

/// Calls `f` on every unbound TX binding that is still referenced, each with
/// a reference held for the call, under the list's lock (so `f` may sleep,
/// but must not park or unpark).
pub(crate) fn for_each_unbound_tx(mut f: impl FnMut(&Binding)) {
    let _guard = unbound_lock().lock();
    let head = unbound_head();
    // SAFETY: the list is only changed under `unbound_lock`, held.
    let mut pos = unsafe { (*head).next };
    while pos != head {
        // SAFETY: every entry but the head is the `list` of a binding `park`
        // linked; `unpark` unlinks it under `unbound_lock`, held, before the
        // binding is freed.
        let b = unsafe { kernel::container_of!(pos, bindings::net_devmem_dmabuf_binding, list) };
        let binding = NonNull::new(b).and_then(|b| {
            let rcu = rcu::read_lock();
            // SAFETY: `b` is a published binding (`park`'s callers publish
            // first) that cannot be freed while `unbound_lock` is held,
            // which outlasts `rcu`.
            unsafe { Binding::try_get(b, &rcu) }
        });
        // A binding whose count already dropped to zero is about to be
        // freed, which unmaps it.
        if let Some(binding) = binding {
            f(&binding);
        }
        // SAFETY: `pos` is still linked: only `unpark` unlinks, under the
        // lock held here.
        pos = unsafe { (*pos).next };
    }
}
