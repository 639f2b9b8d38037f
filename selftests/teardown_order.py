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

Unbinding does not free a binding that a socket still holds frags of (or,
for TX, that skbs or the sending socket still reference), and nothing finds
such a binding once the device goes: it is out of the bindings table and
no queue names it. So unbind itself must let go of the device's DMA access
for RX (every bound queue is closed: nothing DMAs into the buffer any
more), and the unregister of a TX binding's device must still find it. The
`held_*` tests unbind while the user holds frags, or a TCP socket that sent
from the buffer is open, then delete the device: right after, no mapping or
attachment of it may remain, the held frags still read back the bytes they
carried and can be given back, and the binding is freed once the user lets
go (the dma-buf's file count drops back). Before that was fixed, two DMA
mappings and the attachment stayed until the frags came back.
"""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (PAGE_SIZE, DevmemRx, NsimPair, bind_rx,  # noqa: E402
                    defer, devmem_sendmsg, dma_mappings, dmabuf,
                    dmabuf_attachments, dmabuf_file_count, drain_completions,
                    eq, kick_rx_softirq_on_every_cpu, netdev_nl, queue_dmabuf,
                    ready_nsim, remote_send, run_tests, set_hds, sh, test,
                    tx_connection, udmabuf, wait_for)
from netkit import lease_queue  # noqa: E402
from stream import SRC, SRC_LEN, source  # noqa: E402


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


# --- unbind first, with frags held, then the device goes ------------------

HELD = 64


def gone_with_device(ns, fd, what):
    """Right after `ns` is deleted, nothing of it maps or is attached to the
    dma-buf."""
    left = dma_mappings(ns)
    assert not left, f"{what}: {len(left)} DMA mappings outlive the device: {left[:2]}"
    att = [a for a in dmabuf_attachments(fd) if a == f"netdevsim{ns.id}"]
    assert not att, f"{what}: the dma-buf is still attached to the deleted device"


def hold_frags(rx, n, give_back_every=0):
    """Receives until `n` frags are held (giving every other batch back if
    `give_back_every`): (held tokens, their (offset, size), the bytes they
    carried, as read at receive time)."""
    held, frags, data = [], [], []
    deadline = time.monotonic() + 60
    batch = 0
    while len(held) < n:
        assert time.monotonic() < deadline, f"only {len(held)} frags held"
        got, tokens, linear = rx.recv()
        eq(linear, 0, "payload bytes outside the dma-buf")
        assert got, "stream ended early"
        batch += 1
        if give_back_every and batch % give_back_every:
            eq(rx.dontneed(tokens), len(tokens), "frags freed")
            continue
        held += tokens
        frags += rx.last_frags
        data.append(got)
    return held, frags, b"".join(data)


def read_back(rx, frags):
    return b"".join(rx.mem[off:off + size] for off, size in frags)


def held_rx_then_device_deleted(port, unbind, during_stream, lease=False):
    """Frags held, `unbind()` (the binding's netlink socket closes), the
    device deleted: checked as the module docstring says."""
    source()
    pair = NsimPair(queues=4)
    ns = pair.local
    bind = None
    if lease:
        # The binding is made in a container, on a netkit queue leased
        # from the netdevsim port's queue 2 (the fd exists before the guest
        # process forks); the data path stays the port's own.
        fd = udmabuf(256)
        ns.set_dma(True)
        set_hds(ns.ifindex())
        _, _, guest, gidx, vq = lease_queue(ns, 2)

        def bind(fd):
            return guest.do(f"bind_rx(nl, {gidx}, {fd}, [{vq}])['id']")

        def unbind(rx):
            guest.stop()  # its netlink socket closes
    else:
        fd = None
    rx = DevmemRx(pair, port, pages=256, fd=fd, bind=bind)
    if during_stream:
        remote_send(pair, port, 1 << 30, SRC, repeat=True)
    else:
        remote_send(pair, port, SRC_LEN, SRC)
    rx.accept()
    held, frags, data = hold_frags(rx, HELD, 2 if during_stream else 0)
    if not during_stream:
        assert data == source()[:len(data)], "payload differs from what was sent"
    assert dma_mappings(ns), "no DMA mapping while bound"
    unbind(rx)
    assert not dma_mappings(ns), \
        "the dma-buf is still mapped after unbind closed every queue"
    # The held frags keep the binding, and its dma-buf reference.
    base = dmabuf_file_count(rx.fd)
    ns.delete()
    gone_with_device(ns, rx.fd, "RX, frags held")
    eq(read_back(rx, frags), data, "the held frags' bytes")
    eq(rx.dontneed(held), len(held), "held frags given back after the device went")
    rx.conn.close()

    def freed():
        kick_rx_softirq_on_every_cpu()
        return dmabuf_file_count(rx.fd) == base - 1
    wait_for(freed, "the binding to be freed (its dma-buf reference)", 30)


@test
def held_rx_socket_closed_then_device_deleted():
    held_rx_then_device_deleted(5481, DevmemRx.close_binding, False)


@test
def held_rx_unbound_during_stream_then_device_deleted():
    held_rx_then_device_deleted(5482, DevmemRx.close_binding, True)


@test
def held_rx_through_lease_unbound_then_device_deleted():
    held_rx_then_device_deleted(5483, None, True, lease=True)


@test
def held_tx_socket_open_unbound_then_device_deleted():
    """Skbs a TCP socket sent from a TX binding keep it past unbind (the
    peer is down, so they wait unacked for retransmission); the device's
    unregister must still unmap it and detach."""
    import mmap
    pair = NsimPair(queues=4)
    ns = pair.local
    ns.set_dma(True)
    fd = udmabuf(64)
    defer(os.close, fd)
    mem = mmap.mmap(fd, 64 * PAGE_SIZE)
    defer(mem.close)
    mem[:] = os.urandom(64 * PAGE_SIZE)
    base = dmabuf_file_count(fd)
    nl = netdev_nl()
    defer(nl.close)
    tx_id = nl.bind_tx({"ifindex": ns.ifindex(), "fd": fd})["id"]
    eq(dmabuf_file_count(fd), base + 1, "the binding's dma-buf reference")
    _, s = tx_connection(pair, 5484, "/tmp/devmem-tx-held")
    sh(f"ip netns exec {pair.REMOTE_NS} ip link set dev {pair.remote_ifname} down")
    eq(devmem_sendmsg(s, tx_id, [(0, 16 * PAGE_SIZE)]), 16 * PAGE_SIZE,
       "bytes sent from the dma-buf")
    drain_completions(s)
    nl.close()
    assert dma_mappings(ns), "TX binding unmapped with skbs still to send"
    eq(dmabuf_file_count(fd), base + 1, "the unbound binding's dma-buf reference")
    ns.delete()
    gone_with_device(ns, fd, "TX, skbs in flight")
    # An abortive close (linger 0) drops the unacked skbs at once; a plain
    # one would retransmit them from an orphaned socket for minutes.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

    def freed():
        kick_rx_softirq_on_every_cpu()
        return dmabuf_file_count(fd) == base
    wait_for(freed, "the TX binding to be freed (its dma-buf reference)", 30)


if __name__ == "__main__":
    run_tests("teardown_order")
