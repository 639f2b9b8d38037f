// SPDX-License-Identifier: GPL-2.0

//! The table of live bindings by netlink ID, for TX lookups.
//!
//! IDs are allocated cyclically from 1, so a freed ID is not reused at once.
//! The table itself is defined in C (`devmem_ids.c`) for its static
//! initializer.

use crate::binding::{Binding, RawBinding};
use core::cell::UnsafeCell;
use kernel::{bindings, error::to_result, prelude::*, sync::rcu};

/// The next ID to try, updated by `xa_alloc_cyclic` under the table's lock.
struct NextId(UnsafeCell<u32>);

// SAFETY: only `xa_alloc_cyclic` touches the value, under the xarray's lock.
unsafe impl Sync for NextId {}

static NEXT_ID: NextId = NextId(UnsafeCell::new(0));

fn table() -> *mut bindings::xarray {
    &raw mut bindings::net_devmem_rust_bindings
}

/// Gives `binding` an ID and makes it visible to [`lookup`].
pub(crate) fn insert(binding: &mut RawBinding) -> Result {
    let limit = bindings::xa_limit {
        min: 0,
        max: u32::MAX,
    };
    let entry = binding.as_raw().cast();
    // SAFETY: the table is a live xarray; the ID slot is the binding's own
    // field; `NEXT_ID` is only used under the table's lock.
    let ret = unsafe {
        bindings::xa_alloc_cyclic(
            table(),
            binding.id_slot(),
            entry,
            limit,
            NEXT_ID.0.get(),
            bindings::GFP_KERNEL,
        )
    };
    // 1 means the IDs wrapped around: still a success.
    to_result(ret.min(0))
}

/// Hides the binding with `id` from [`lookup`].
pub(crate) fn remove(id: u32) {
    // SAFETY: the table is a live xarray.
    unsafe { bindings::xa_erase(table(), id as usize) };
}

/// The binding with `id`, with a reference taken, if it is still alive.
pub(crate) fn lookup(id: u32) -> Option<&'static Binding> {
    let _guard = rcu::read_lock();
    // SAFETY: the table is a live xarray; `xa_load` is RCU-safe.
    let ptr = unsafe { bindings::xa_load(table(), id as usize) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: entries are published bindings; under RCU the entry cannot be
    // freed before `tryget` runs (unbind erases it, then waits a grace
    // period before dropping the initial reference).
    let binding = unsafe { Binding::from_raw(ptr.cast()) };
    binding.tryget().then_some(binding)
}
