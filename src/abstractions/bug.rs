// SPDX-License-Identifier: GPL-2.0

//! `WARN_ON_ONCE` for Rust.
//!
//! The kernel crate has `warn_on!` only. A path that runs once per buffer
//! must warn once, as C's `WARN_ON_ONCE` does, or a misbehaving driver floods
//! the log. This emits the same bug-table entry as C, with `BUGFLAG_ONCE`, so
//! the "already warned" state is kept where C keeps it and is reset with C's
//! (`/sys/kernel/debug/clear_warn_once`).
//!
//! C header: [`include/asm-generic/bug.h`](srctree/include/asm-generic/bug.h)

/// Reports a warning the first time `cond` is true at this call site and
/// returns the condition's value, as C's `WARN_ON_ONCE`.
macro_rules! warn_on_once {
    ($cond:expr) => {{
        let cond = $cond;
        // Without `CONFIG_BUG` there is no bug table (nor `BUGFLAG_ONCE`):
        // the condition is only evaluated, as with the kernel's `warn_on!`.
        #[cfg(CONFIG_BUG)]
        if cond {
            kernel::warn_flags!(
                file!(),
                kernel::bug::bugflag_taint(kernel::bindings::TAINT_WARN)
                    | kernel::bindings::BUGFLAG_ONCE
            );
        }
        cond
    }};
}

pub(crate) use warn_on_once;
