// SPDX-License-Identifier: GPL-2.0
/*
 * The table of live devmem bindings, indexed by their netlink ID, and the
 * list of unbound TX bindings still referenced. Only the definitions live
 * here: Rust has no const equivalent of their static initializers (their
 * locks need a static lockdep class).
 */
#include "../devmem_rust.h"

DEFINE_XARRAY_FLAGS(net_devmem_rust_bindings, XA_FLAGS_ALLOC1);
LIST_HEAD(net_devmem_rust_unbound_tx);
/* Protects net_devmem_rust_unbound_tx and each entry's ->list. */
DEFINE_MUTEX(net_devmem_rust_unbound_tx_lock);
