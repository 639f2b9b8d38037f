// SPDX-License-Identifier: GPL-2.0

//! Error codes devmem returns that `kernel::error::code` does not declare.
//!
//! In `rust/kernel/error.rs` these are two more `declare_err!` lines.

use kernel::{bindings, error::Error};

/// `-EOPNOTSUPP` (95), which user space sees. Not `ENOTSUPP` (524), which
/// is kernel-internal.
pub(crate) fn eopnotsupp() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// `-EHOSTUNREACH`: a socket's route could not be rebuilt.
pub(crate) fn ehostunreach() -> Error {
    Error::from_errno(-(bindings::EHOSTUNREACH as i32))
}
