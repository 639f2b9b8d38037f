// SPDX-License-Identifier: GPL-2.0

//! Generic abstractions the provider builds on, shaped the way they would sit
//! in `rust/kernel/`: owned and borrowed wrappers of C objects with their
//! invariants, and nothing devmem-specific. They live here until the kernel
//! crate has them.

pub(crate) mod alloc;
pub(crate) mod bug;
pub(crate) mod dma_buf;
pub(crate) mod net;
pub(crate) mod sync;
