#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The device goes before the netlink socket that bound it.

A binding outlives its device whenever the user deletes the device (or the
driver is unbound) while the netlink socket that made the binding stays
open. Closing that socket later must neither touch the freed net_device nor
leave anything behind. RX bindings let go of the device when its last queue
is uninstalled; a TX binding has no queue, so it must be told when the
device unregisters. Before that was fixed, every TX case here oopsed in
netdev_nl_sock_priv_destroy() on close() (slub_debug=FZP makes the freed
net_device fault at once).

Each test ends with the dma-buf detached: the binding was freed, so it
neither leaked nor was freed twice (the VM runner also fails the run on any
splat or kmemleak report). And no DMA mapping may outlive the device: the
binding unmaps its dma-buf when it lets go of the device, not when the
socket closes (with an IOMMU, the device's translations go with it). The
DMA API debug code lists live mappings per device.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (bind_rx, defer, dma_mappings, dmabuf,  # noqa: E402
                    dmabuf_attachments, eq, netdev_nl, queue_dmabuf,
                    ready_nsim, run_tests, test, wait_for)


def detached(fd, what):
    wait_for(lambda: dmabuf_attachments(fd) == [], what, timeout=20)


def mapped_then_unmapped_with_device(ns, delete):
    """The dma-buf is mapped for `ns` while bound, and unmapped by the time
    `delete()` (which deletes `ns`) returns, before any socket closes."""
    before = dma_mappings(ns)
    assert before, "no DMA mapping for the bound device"
    delete()
    left = dma_mappings(ns)
    assert not left, f"{len(left)} DMA mappings outlive the device: {left[:2]}"


@test
def tx_device_deleted_before_socket_close():
    ns = ready_nsim()
    fd = dmabuf()
    nl = netdev_nl()
    defer(nl.close)
    bid = nl.bind_tx({"ifindex": ns.ifindex(), "fd": fd})["id"]
    assert bid > 0
    eq(dmabuf_attachments(fd), [f"netdevsim{ns.id}"], "TX attachment")
    mapped_then_unmapped_with_device(ns, ns.delete)
    nl.close()
    detached(fd, "the TX binding to be freed after the socket closed")


def rx_device_deleted_before_socket_close(queues):
    ns = ready_nsim()
    fd = dmabuf(pages=64)
    nl = netdev_nl()
    defer(nl.close)
    ifindex = ns.ifindex()
    bid = bind_rx(nl, ifindex, fd, queues)["id"]
    for q in queues:
        eq(queue_dmabuf(nl, ifindex, q), bid, f"queue {q} dmabuf")
    mapped_then_unmapped_with_device(ns, ns.delete)
    nl.close()
    detached(fd, "the RX binding to be freed after the socket closed")


@test
def rx_one_queue_device_deleted_before_socket_close():
    rx_device_deleted_before_socket_close([1])


@test
def rx_three_queues_device_deleted_before_socket_close():
    rx_device_deleted_before_socket_close([1, 2, 3])


@test
def rx_and_tx_on_one_socket_device_deleted():
    """Both kinds of binding on one socket and one device: the socket's
    teardown walks a list in which neither may still name the device."""
    ns = ready_nsim()
    rx_fd, tx_fd = dmabuf(pages=64), dmabuf()
    nl = netdev_nl()
    defer(nl.close)
    bind_rx(nl, ns.ifindex(), rx_fd, [2])
    nl.bind_tx({"ifindex": ns.ifindex(), "fd": tx_fd})
    mapped_then_unmapped_with_device(ns, ns.delete)
    nl.close()
    detached(rx_fd, "the RX binding to be freed")
    detached(tx_fd, "the TX binding to be freed")


@test
def tx_other_device_deleted_keeps_binding_usable():
    """Deleting an unrelated device must not take the device away from a TX
    binding: the socket still unbinds it under that device's lock, and a
    later bind on the same device still works."""
    ns = ready_nsim()
    other = ready_nsim()
    fd = dmabuf()
    nl = netdev_nl()
    defer(nl.close)
    nl.bind_tx({"ifindex": ns.ifindex(), "fd": fd})
    mapped = dma_mappings(ns)
    assert mapped, "dma-buf not mapped for the bound device"
    other.delete()
    eq(dmabuf_attachments(fd), [f"netdevsim{ns.id}"], "TX attachment kept")
    eq(dma_mappings(ns), mapped, "TX mapping kept")
    nl.close()
    detached(fd, "the TX binding to be freed")
    nl = netdev_nl()
    defer(nl.close)
    assert nl.bind_tx({"ifindex": ns.ifindex(), "fd": fd})["id"] > 0


if __name__ == "__main__":
    run_tests("teardown_order")
