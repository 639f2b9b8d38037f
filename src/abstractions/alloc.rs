// SPDX-License-Identifier: GPL-2.0

//! Allocations on a given NUMA node.
//!
//! The kernel crate's `KBox` constructors allocate on any node. Objects the
//! datapath touches per packet belong on the device's node, where
//! `kzalloc_node()` puts them in C.

use core::{alloc::Layout, mem::MaybeUninit, pin::Pin};
use kernel::{
    alloc::{
        allocator::{KVmalloc, Kmalloc},
        layout::ArrayLayout,
        AllocError, Allocator, Flags, KVVec, NumaNode,
    },
    prelude::*,
};

/// The node for a device's `dev_to_node()` value: `NUMA_NO_NODE` (-1) and
/// anything else out of range mean any node.
pub(crate) fn node(nid: c_int) -> NumaNode {
    NumaNode::new(nid).unwrap_or(NumaNode::NO_NODE)
}

/// A `KBox` pin-initialised by `init`, allocated on `nid`.
pub(crate) fn kbox_pin_init_on<T, E>(
    init: impl PinInit<T, E>,
    flags: Flags,
    nid: NumaNode,
) -> core::result::Result<Pin<KBox<T>>, E>
where
    E: From<AllocError>,
{
    let ptr = Kmalloc::alloc(Layout::new::<MaybeUninit<T>>(), flags, nid)?;
    // SAFETY: `ptr` is a fresh `Kmalloc` allocation with the layout of
    // `MaybeUninit<T>`, which is what `KBox<MaybeUninit<T>>` owns.
    let uninit = unsafe { KBox::<MaybeUninit<T>>::from_raw(ptr.as_ptr().cast()) };
    uninit.write_pin_init(init)
}

/// `KBox::new` on `nid`.
pub(crate) fn kbox_new_on<T>(value: T, flags: Flags, nid: NumaNode) -> Result<KBox<T>> {
    let ptr = Kmalloc::alloc(Layout::new::<MaybeUninit<T>>(), flags, nid)?;
    // SAFETY: `ptr` is a fresh `Kmalloc` allocation with the layout of
    // `MaybeUninit<T>`, which is what `KBox<MaybeUninit<T>>` owns.
    let uninit = unsafe { KBox::<MaybeUninit<T>>::from_raw(ptr.as_ptr().cast()) };
    Ok(KBox::write(uninit, value))
}

/// An empty `KVVec` with room for `cap` elements, allocated on `nid` (as
/// `kvmalloc_array_node()`), so that pushing up to `cap` never allocates.
pub(crate) fn kvvec_with_capacity_on<T>(
    cap: usize,
    flags: Flags,
    nid: NumaNode,
) -> Result<KVVec<T>> {
    if cap == 0 || core::mem::size_of::<T>() == 0 {
        return Ok(KVVec::new());
    }
    let layout = ArrayLayout::<T>::new(cap).map_err(|_| ENOMEM)?;
    let ptr = KVmalloc::alloc(layout.into(), flags, nid)?;
    // SAFETY: `ptr` is a fresh `KVmalloc` allocation, aligned for `T`, of
    // `cap` elements of `T` (`ArrayLayout` keeps that below `isize::MAX`
    // bytes), which is what a `KVVec<T>` of capacity `cap` owns; a length of
    // zero needs no initialised element.
    Ok(unsafe { KVVec::from_raw_parts(ptr.as_ptr().cast(), 0, cap) })
}
