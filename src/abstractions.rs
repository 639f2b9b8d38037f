// SPDX-License-Identifier: GPL-2.0

//! Kernel abstractions the provider builds on, each shaped as the
//! `rust/kernel/` module it would become (named in its documentation):
//! owned and borrowed wrappers of C objects with their invariants. All but
//! [`net::devmem`] are generic; that one wraps devmem's own C structures,
//! which core networking reads. They live here until the kernel crate has
//! them, and hold every `unsafe` of the crate but its C ABI edge.

pub(crate) mod alloc;
pub(crate) mod bug;
pub(crate) mod dma_buf;
pub(crate) mod error;
pub(crate) mod memfd;
pub(crate) mod net;
pub(crate) mod percpu_ref;
pub(crate) mod sync;
