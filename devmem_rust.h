/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C declarations of the Rust devmem provider, for bindgen
 * (rust/bindings/bindings_helper.h includes this file).
 */
#ifndef _NET_CORE_DEVMEM_RUST_H
#define _NET_CORE_DEVMEM_RUST_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/xarray.h>

/*
 * Live bindings by ID, for net_devmem_lookup_dmabuf(). Defined in C
 * (src/devmem_ids.c) because it needs the xarray's static initializer.
 */
extern struct xarray net_devmem_rust_bindings;

/*
 * TX bindings unbound but still referenced (skbs in flight, the socket
 * that sent from them), linked by their ->list, so that the unregister of
 * their device still finds them. Defined in C for the static initializers.
 */
extern struct list_head net_devmem_rust_unbound_tx;
extern struct mutex net_devmem_rust_unbound_tx_lock;

#endif /* _NET_CORE_DEVMEM_RUST_H */
