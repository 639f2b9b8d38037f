#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bind-rx through a netkit queue lease: a container's netkit device leases
an RX queue of a (DMA-capable) netdevsim port in another namespace, and
devmem is bound on the netkit side.

The provider then sees the lease's virtual queue in bind-to-queue and in
`uninstall` (when the lease ends), while the physical queue carries the
provider. Needs NETKIT and BPF_SYSCALL; no BPF program or clang.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (Nsim, defer, dma_mappings, dmabuf_attachments,  # noqa: E402
                    dmabuf_file_count, eq,
                    netdev_nl, queue_dmabuf, run_tests, set_hds, sh, test, udmabuf,
                    wait_for)
from netkit import lease_queue  # noqa: E402


def leased_setup():
    """Returns (nsim, host, guest, guest process, guest ifindex, virtual
    queue id, dma-buf fd); the fd exists before the guest process forks."""
    fd = udmabuf()
    defer(os.close, fd)
    ns = Nsim(ports=1, queues=2)
    ns.set_dma(True)
    set_hds(ns.ifindex())
    ns.up()
    host, guest, g, gidx, vq = lease_queue(ns)
    return ns, host, guest, g, gidx, vq, fd


@test
def bind_rx_on_leased_queue():
    ns, host, guest, g, gidx, vq, fd = leased_setup()
    bid = g.do(f"bind_rx(nl, {gidx}, {fd}, [{vq}])['id']")
    assert bid > 0, bid
    # The provider sits on the physical queue the lease points to.
    nl = netdev_nl()
    defer(nl.close)
    eq(queue_dmabuf(nl, ns.ifindex(), 1), bid, "physical queue 1 dmabuf")
    eq(queue_dmabuf(nl, ns.ifindex(), 0), None, "physical queue 0 dmabuf")
    eq(dmabuf_attachments(fd), [f"netdevsim{ns.id}"], "dma-buf attachments")
    # Closing the guest's socket unbinds through the lease.
    g.stop()
    eq(queue_dmabuf(nl, ns.ifindex(), 1), None, "physical queue 1 after close")
    wait_for(lambda: dmabuf_attachments(fd) == [], "the dma-buf to be detached")


@test
def lease_ends_while_bound():
    """Deleting the netkit pair ends the lease: the provider is told through
    `uninstall` with the virtual queue and lets go of the device; the socket
    closes later without it."""
    ns, host, guest, g, gidx, vq, fd = leased_setup()
    bid = g.do(f"bind_rx(nl, {gidx}, {fd}, [{vq}])['id']")
    assert bid > 0
    assert dma_mappings(ns), "dma-buf not mapped for the physical device"
    sh(f"ip link del dev {host}")
    nl = netdev_nl()
    defer(nl.close)
    eq(queue_dmabuf(nl, ns.ifindex(), 1), None, "physical queue 1 after unlease")
    # Its last queue gone, the binding no longer needs the mapping, nor the
    # attachment (which pins the device); the socket still holds the
    # binding, and with it the dma-buf.
    eq(dma_mappings(ns), [], "mappings after the lease ended")
    eq(dmabuf_attachments(fd), [], "attachments after the lease ended")
    freed_with_socket(g, fd)


def freed_with_socket(g, fd):
    """Stopping the guest closes its copy of fd and its netlink socket,
    which frees the binding: the dma-buf's file count drops by both."""
    before = dmabuf_file_count(fd)
    g.stop()
    wait_for(lambda: dmabuf_file_count(fd) == before - 2,
             "the binding to be freed with the guest's socket", 20)


def physical_device_goes_first(bind_expr):
    """Bind through the lease with `bind_expr` (run in the guest), delete the
    physical device, then close the guest's socket: the mapping goes with
    the device, the binding with the socket, and neither touches a freed
    device."""
    ns, host, guest, g, gidx, vq, fd = leased_setup()
    bid = g.do(bind_expr.format(gidx=gidx, fd=fd, vq=vq))
    assert bid > 0
    eq(dmabuf_attachments(fd), [f"netdevsim{ns.id}"], "attachment")
    assert dma_mappings(ns), "dma-buf not mapped for the physical device"
    ns.delete()
    eq(dma_mappings(ns), [], "mappings after the device was deleted")
    eq(dmabuf_attachments(fd), [], "attachments after the device was deleted")
    freed_with_socket(g, fd)


@test
def physical_device_deleted_while_bound_through_lease():
    """RX: the physical queue's uninstall ends the binding's hold on it."""
    physical_device_goes_first("bind_rx(nl, {gidx}, {fd}, [{vq}])['id']")


@test
def bind_tx_through_lease_physical_device_deleted():
    """TX: bind-tx on the netkit binds the leased physical device (the
    netkit is only compared); its unregistering ends the binding's hold."""
    physical_device_goes_first("nl.bind_tx({{'ifindex': {gidx}, 'fd': {fd}}})['id']")


@test
def bind_tx_through_lease_netkit_deleted():
    """The netkit pair goes first, then the socket: the binding is unbound
    under the physical device, which is still there."""
    ns, host, guest, g, gidx, vq, fd = leased_setup()
    bid = g.do(f"nl.bind_tx({{'ifindex': {gidx}, 'fd': {fd}}})['id']")
    assert bid > 0
    sh(f"ip link del dev {host}")
    eq(dmabuf_attachments(fd), [f"netdevsim{ns.id}"], "attachment held by socket")
    # The binding forgets the netkit, not the device it maps for.
    assert dma_mappings(ns), "mapping dropped with the netkit"
    g.stop()
    wait_for(lambda: dmabuf_attachments(fd) == [], "the dma-buf to be detached")


if __name__ == "__main__":
    run_tests("nl_lease")
