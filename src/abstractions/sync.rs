// SPDX-License-Identifier: GPL-2.0

//! A spinlock that also disables bottom halves (`spin_lock_bh`).
//!
//! The kernel crate's `SpinLock` takes `spin_lock`, which deadlocks when the
//! same lock is taken in process context and then, on the same CPU, in a
//! softirq that interrupted it. Data shared with NAPI needs the `_bh` form.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)

use kernel::{bindings, sync::lock::Backend};

/// Creates a [`SpinLockBh`] initialiser with the given name and a new lock
/// class.
macro_rules! new_spinlock_bh {
    ($inner:expr, $name:expr $(,)?) => {
        kernel::sync::lock::Lock::<_, $crate::abstractions::sync::SpinLockBhBackend>::new(
            $inner,
            $name,
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_spinlock_bh;

/// A `spinlock_t` locked with bottom halves disabled.
pub(crate) type SpinLockBh<T> = kernel::sync::lock::Lock<T, SpinLockBhBackend>;

/// The [`SpinLockBh`] backend.
pub(crate) struct SpinLockBhBackend;

// SAFETY: `spinlock_t` gives mutual exclusion; `spin_lock_bh` also keeps the
// local softirqs, the other users of such a lock, out until unlock. `relock`
// uses the default implementation, which calls `lock` again.
unsafe impl Backend for SpinLockBhBackend {
    type State = bindings::spinlock_t;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: the caller passes a lock valid for writes, and a name and
        // key valid forever.
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: the caller passes an initialised lock.
        unsafe { bindings::spin_lock_bh(ptr) }
    }

    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: the caller holds the lock, taken by `lock`.
        unsafe { bindings::spin_unlock_bh(ptr) }
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        // SAFETY: the caller passes an initialised lock.
        (unsafe { bindings::spin_trylock_bh(ptr) } != 0).then_some(())
    }

    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: the caller passes an initialised lock.
        unsafe { bindings::spin_assert_is_held(ptr) }
    }
}
