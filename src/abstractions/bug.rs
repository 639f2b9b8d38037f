// SPDX-License-Identifier: GPL-2.0

//! `WARN_ON_ONCE` for Rust.
//!
//! The kernel crate has `warn_on!` only. A path that runs once per buffer
//! must warn once, as C's `WARN_ON_ONCE` does, or a misbehaving driver floods
//! the log. This keeps a flag per call site, as C does, and warns through
//! `warn_on!`; unlike C's `BUGFLAG_ONCE` the flag is not reset by
//! `/sys/kernel/debug/clear_warn_once`. In `rust/kernel/bug.rs` this would
//! be `warn_flags!` with `BUGFLAG_ONCE`, which is private to the kernel
//! crate today.
//!
//! C header: [`include/asm-generic/bug.h`](srctree/include/asm-generic/bug.h)

/// Reports a warning the first time `cond` is true at this call site and
/// returns the condition's value, as C's `WARN_ON_ONCE`.
macro_rules! warn_on_once {
    ($cond:expr) => {{
        static WARNED: kernel::sync::atomic::AtomicFlag =
            kernel::sync::atomic::AtomicFlag::new(false);
        let cond = $cond;
        if cond
            && !WARNED.load(kernel::sync::atomic::Relaxed)
            && !WARNED.xchg(true, kernel::sync::atomic::Relaxed)
        {
            kernel::warn_on!(true);
        }
        cond
    }};
}

pub(crate) use warn_on_once;
