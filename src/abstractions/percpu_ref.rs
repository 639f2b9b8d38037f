// SPDX-License-Identifier: GPL-2.0

//! Per-CPU reference counts (`struct percpu_ref`).
//!
//! A `percpu_ref` counts per CPU until its initial reference is killed,
//! then atomically; the release callback runs when the count reaches zero,
//! in RCU context. An object embeds one where C code also counts it (as
//! devmem's binding does: TCP and netdev-genl take and drop references with
//! the `devmem.h` inlines).
//!
//! Shaped as `rust/kernel/percpu_ref.rs` would be.
//!
//! C header: [`include/linux/percpu-refcount.h`](srctree/include/linux/percpu-refcount.h)

use kernel::{bindings, error::to_result, prelude::*, types::Opaque};

/// The release callback of a [`PercpuRef`].
pub(crate) type ReleaseFn = unsafe extern "C" fn(*mut bindings::percpu_ref);

/// An initialised per-CPU reference count.
///
/// # Invariants
///
/// The count was initialised by [`PercpuRef::init`] and is not yet exited.
#[repr(transparent)]
pub(crate) struct PercpuRef(Opaque<bindings::percpu_ref>);

impl PercpuRef {
    /// Initialises the count at `slot` with one reference (the initial one,
    /// which [`PercpuRef::kill`] drops) and `release`.
    ///
    /// # Safety
    ///
    /// `slot` must be valid for writes, not move until
    /// [`PercpuRef::exit`], and `release` must be sound to call with it
    /// once its count reaches zero.
    pub(crate) unsafe fn init(slot: *mut bindings::percpu_ref, release: ReleaseFn) -> Result {
        // SAFETY: `slot` is writable and pinned (caller); `percpu_ref_init`
        // allocates the per-CPU counters with `GFP_KERNEL` in process context.
        to_result(unsafe {
            bindings::percpu_ref_init(slot, Some(release), 0, bindings::GFP_KERNEL)
        })
    }

    /// Borrows an initialised count.
    ///
    /// # Safety
    ///
    /// `ptr` must be a count initialised with [`PercpuRef::init`], not
    /// exited during `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::percpu_ref) -> &'a Self {
        // SAFETY: transparent wrapper of `Opaque<percpu_ref>`; initialised
        // and alive for `'a` (caller).
        unsafe { &*ptr.cast() }
    }

    fn as_raw(&self) -> *mut bindings::percpu_ref {
        self.0.get()
    }

    /// Takes a reference.
    ///
    /// # Safety
    ///
    /// The caller must hold a reference (so the count is above zero) for
    /// the call.
    pub(crate) unsafe fn get(&self) {
        // SAFETY: initialised (type invariant), and above zero (caller).
        unsafe { bindings::percpu_ref_get(self.as_raw()) };
    }

    /// Takes a reference unless the count already reached zero.
    pub(crate) fn tryget(&self) -> bool {
        // SAFETY: initialised (type invariant); `tryget` is sound on a count
        // at zero, which it refuses.
        unsafe { bindings::percpu_ref_tryget(self.as_raw()) }
    }

    /// Drops a reference; the last one runs the release callback.
    ///
    /// # Safety
    ///
    /// The caller must own the reference it drops, and not use the object
    /// through it afterwards.
    pub(crate) unsafe fn put(&self) {
        // SAFETY: initialised (type invariant), and the reference is the
        // caller's to drop.
        unsafe { bindings::percpu_ref_put(self.as_raw()) };
    }

    /// Drops the initial reference and switches the count to atomic mode.
    ///
    /// # Safety
    ///
    /// The caller must own the initial reference; called at most once.
    pub(crate) unsafe fn kill(&self) {
        // SAFETY: initialised (type invariant); the initial reference is the
        // caller's and killed once.
        unsafe { bindings::percpu_ref_kill(self.as_raw()) };
    }

    /// Frees the per-CPU counters of a count that reached zero, or of one
    /// whose object is being torn down before it was ever shared.
    ///
    /// # Safety
    ///
    /// No one may use the count again, until it is initialised anew.
    pub(crate) unsafe fn exit(ptr: *mut bindings::percpu_ref) {
        // SAFETY: the count is initialised and nothing uses it again before
        // it is initialised anew (both required of the caller), which is all
        // `percpu_ref_exit` needs.
        unsafe { bindings::percpu_ref_exit(ptr) };
    }
}
