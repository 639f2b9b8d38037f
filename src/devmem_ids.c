// SPDX-License-Identifier: GPL-2.0
/*
 * The table of live devmem bindings, indexed by their netlink ID. Only the
 * definition lives here: Rust has no const equivalent of the xarray's
 * static initializer (its lock needs a static lockdep class).
 */
#include "../devmem_rust.h"

DEFINE_XARRAY_FLAGS(net_devmem_rust_bindings, XA_FLAGS_ALLOC1);
