#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""devmem TCP into and out of each kind of dma-buf, every byte checked.

The provider reads only a dma-buf's DMA mapping: a list of segments, which
it carves into one net_iov per page, numbered through the buffer in order,
so that the offset TCP reports for a frag is the byte's place in the
dma-buf. What varies between sources is the segment list:

  udmabuf_scattered  4 KiB memfd pages made in turn with another memfd's:
                     nearly a segment a page (udmabuf merges the few
                     that still land side by side)
  heap_mixed         the dma-buf system heap, high orders available: its
                     1 MiB, 64 KiB and 4 KiB blocks, a segment each
  heap_scattered     the system heap with its high-order allocations
                     failed (fail_page_alloc, min-order 1, this task only),
                     as on a host whose memory is fragmented: a segment a
                     page

For each: the segment list the device mapped is what the source promises;
a stream received into the buffer lands where the offsets say (read back
through mmap, compared with what was sent), no frag crosses a net_iov; a
stream sent from the buffer (bind-tx, sendmsg with SCM_DEVMEM_DMABUF and
dma-buf offsets) arrives intact; and a buffer the user has let go of while
it is bound lives on until the binding goes, as udmabuf's does. Then a
sendmsg naming an RX binding, another device's TX binding or no binding is
refused, and one naming the route's TX binding sends.
"""

import errno
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (PAGE_SIZE, DevmemRx, Nsim, NsimPair,  # noqa: E402
                    bind_rx, defer, devmem_sendmsg, dma_mappings,
                    dmabuf_attachments, dmabuf_file_count,
                    drain_completions, eq, failing_page_allocs,
                    kick_rx_softirq_on_every_cpu,
                    metric, netdev_nl, remote_send, run_tests, set_hds, sh,
                    system_heap, test, tx_connection, udmabuf,
                    udmabuf_scattered, unheld, wait_for)
from stream import SRC, SRC_LEN, assert_released, source  # noqa: E402

DFS = "/sys/kernel/debug"
KiB, MiB = 1 << 10, 1 << 20
# Two 1 MiB blocks, fifteen of 64 KiB and fifteen of 4 KiB: the heap takes
# the largest order that fits what is left. 767 pages, enough for the
# device's ring and a stream's frags in flight.
SIZE = 2 * MiB + 15 * 64 * KiB + 15 * 4 * KiB
# Frags the receiver holds before giving them back: the rest of the binding
# covers the device's ring (256) and its pool's cache (up to 128), so the
# stream need not stall before a batch is complete. (500 left too little:
# the binding ran dry at 496 held once, a 2 s stall freed them early, and
# the stream touched 496 net_iovs, fewer than it was asked to hold.)
HOLD = 350


def heap_scattered(size):
    """A system heap buffer made while every allocation of order 1 and up
    by this task fails, so the heap falls back to single pages."""
    with failing_page_allocs(1):
        return system_heap(size)


SOURCES = {
    "udmabuf_scattered": (udmabuf_scattered, None),
    "heap_mixed": (system_heap,
                   [MiB] * 2 + [64 * KiB] * 15 + [4 * KiB] * 15),
    "heap_scattered": (heap_scattered, [PAGE_SIZE] * (SIZE // PAGE_SIZE)),
}


def segments(pair):
    """Lengths of the DMA segments mapped for netdevsim `pair.local` (from
    dma-debug's dump, "... L=<len hex> ...", in no particular order)."""
    return [int(next(x for x in line.split() if x.startswith("L="))[2:], 16)
            for line in dma_mappings(pair.local)]


def check_segments(name, pair, want):
    got = segments(pair)
    eq(sum(got), SIZE, "bytes mapped")
    assert all(ln % PAGE_SIZE == 0 for ln in got), f"segments {got}"
    metric(f"{name}_segments", len(got))
    if want is not None:
        eq(sorted(got), sorted(want), "segment lengths")
    else:
        pages = SIZE // PAGE_SIZE
        assert len(got) >= pages * 9 // 10, \
            f"{len(got)} segments for {pages} scattered pages"
    return got


def rx_stream(name):
    make, want = SOURCES[name]
    src = source()
    pair = NsimPair(queues=4)
    port = 5400 + list(SOURCES).index(name)
    rx = DevmemRx(pair, port, fd=make(SIZE))
    eq(rx.size, SIZE, "dma-buf size")
    check_segments(name, pair, want)
    sender = remote_send(pair, port, SRC_LEN, SRC)
    rx.accept()
    rx.conn.settimeout(2)
    got, total, pages, held = [], 0, set(), []
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"stream stalled at {total} bytes"
        try:
            data, tokens, linear = rx.recv()
        except TimeoutError:
            # Nothing came: the pool may be waiting for what is held.
            eq(rx.dontneed(held), len(held), "frags freed by DONTNEED")
            held = []
            continue
        eq(linear, 0, "payload bytes outside the dma-buf")
        if not data:
            break
        for off, size in rx.last_frags:
            assert off + size <= SIZE, f"frag {off}+{size} past the buffer"
            assert off // PAGE_SIZE == (off + size - 1) // PAGE_SIZE, \
                f"frag {off}+{size} crosses a net_iov"
            pages.add(off // PAGE_SIZE)
        got.append(data)
        total += len(data)
        # Frags are held in batches, so that the device's pool must keep
        # taking fresh net_iovs from the provider and the stream reaches
        # deep into the binding (and its segments), not just the few
        # buffers a pool recycles.
        held += tokens
        if len(held) >= HOLD:
            eq(rx.dontneed(held), len(held), "frags freed by DONTNEED")
            held = []
    eq(rx.dontneed(held), len(held), "frags freed by DONTNEED")
    eq(total, SRC_LEN, "bytes received")
    assert b"".join(got) == src, "payload differs from what was sent"
    eq(sender.wait(timeout=60), 0, "sender exit")
    metric(f"{name}_rx_net_iovs_used", len(pages))
    assert len(pages) >= HOLD, f"only {len(pages)} net_iovs carried the stream"
    rx.conn.close()
    rx.close_binding()
    assert_released(rx)


# --- TX: sendmsg from dma-buf offsets --------------------------------------

def tx_stream(name):
    import mmap
    make, want = SOURCES[name]
    pair = NsimPair(queues=4)
    pair.local.set_dma(True)
    fd = make(SIZE)
    defer(os.close, fd)
    mem = mmap.mmap(fd, SIZE)
    defer(mem.close)
    payload = os.urandom(SIZE)
    mem[:] = payload
    # The user's own references to the dma-buf: its fd, and Python's mmap
    # object keeps a duplicate of the fd beside the mapping.
    user_refs = dmabuf_file_count(fd)
    nl = netdev_nl()
    defer(nl.close)
    tx_id = nl.bind_tx({"ifindex": pair.local.ifindex(), "fd": fd})["id"]
    check_segments(name, pair, want)

    port = 5410 + list(SOURCES).index(name)
    out = f"/tmp/devmem-tx-{name}"
    listener, s = tx_connection(pair, port, out)
    # Odd-sized chunks, several to a call, so that sends start and end
    # inside net_iovs and cross segment boundaries.
    off, step = 0, 3 * PAGE_SIZE + 1234
    while off < SIZE:
        chunks = []
        for _ in range(4):
            if off >= SIZE:
                break
            ln = min(step, SIZE - off)
            chunks.append((off, ln))
            off += ln
        sent = devmem_sendmsg(s, tx_id, chunks)
        want_n = sum(ln for _, ln in chunks)
        if sent < want_n:  # a partial send: go on from where it stopped
            off -= want_n - sent
        drain_completions(s)
    s.shutdown(socket.SHUT_WR)
    eq(listener.wait(timeout=120), 0, "remote receiver exit")
    with open(out, "rb") as f:
        got = f.read()
    eq(len(got), SIZE, "bytes the remote received")
    assert got == payload, "the remote got other bytes than the dma-buf held"

    # Each skb holds a reference on the net_iovs it sent from, given back
    # when it is freed; unbinding hands the binding to those references.
    # With the socket and the netlink socket closed, the last of them must
    # free the binding, and with it its hold on the dma-buf (the user still
    # has its own references).
    s.close()
    nl.close()

    def freed():
        kick_rx_softirq_on_every_cpu()
        return unheld(fd, user_refs)
    try:
        wait_for(freed, "the TX binding to be freed after the stream", 30)
    except AssertionError:
        raise AssertionError(
            f"the TX binding outlived its stream: attachments "
            f"{dmabuf_attachments(fd)}, dma-buf references {dmabuf_file_count(fd)} "
            f"(the user's {user_refs}), mappings {len(dma_mappings(pair.local))}") from None


# --- a buffer let go of while bound ----------------------------------------

def bufinfo_has(ino):
    with open(f"{DFS}/dma_buf/bufinfo") as f:
        # Buffer lines: size flags mode count exp_name ino name (zero-padded)
        return any(len(p) >= 6 and p[0].isdigit() and p[5].isdigit() and
                   int(p[5]) == ino for p in (line.split() for line in f))


def released_while_bound(name):
    make, _ = SOURCES[name]
    pair = NsimPair(queues=4)
    port = 5420 + list(SOURCES).index(name)
    rx = DevmemRx(pair, port, fd=make(SIZE))
    ino = os.fstat(rx.fd).st_ino
    # The user drops every reference it had: the mapping and the fd.
    rx.drop_buffer()
    assert bufinfo_has(ino), "the dma-buf went while bound"
    sender = remote_send(pair, port, 1 * MiB)
    rx.accept()
    total = 0
    while True:
        data, tokens, linear = rx.recv(read_back=False)
        eq(linear, 0, "payload bytes outside the dma-buf")
        if not data:
            break
        total += len(data)
        rx.dontneed(tokens)
    eq(total, 1 * MiB, "bytes received into the released buffer")
    eq(sender.wait(timeout=60), 0, "sender exit")
    assert bufinfo_has(ino), "the dma-buf went while bound"
    rx.conn.close()
    rx.close_binding()

    # The last net_iovs may sit in skbs on another CPU's defer list, which
    # only that CPU's next NET_RX frees (see kick_rx_softirq_on_every_cpu).
    def freed():
        kick_rx_softirq_on_every_cpu()
        return not bufinfo_has(ino)
    wait_for(freed, "the dma-buf to be freed", 30)


def _make_tests():
    for name in SOURCES:
        for kind, fn in (("rx_stream", rx_stream), ("tx_stream", tx_stream),
                         ("released_while_bound", released_while_bound)):
            def t(name=name, fn=fn):
                fn(name)
            t.__name__ = f"{kind}_{name}"
            test(t)


_make_tests()


@test
def tx_sendmsg_takes_only_a_tx_binding_of_the_route():
    """sendmsg(SCM_DEVMEM_DMABUF) looks the binding up by ID and takes it
    only if it is a TX binding of the device the socket's route leads to:
    an RX binding, or a TX binding of another device, fails the send
    (EINVAL, ENODEV), as does an ID nothing has; the route's own TX binding
    sends."""
    pair = NsimPair(queues=4)
    pair.local.set_dma(True)
    other = Nsim(ports=1, queues=4)
    other.set_dma(True)
    nl = netdev_nl()
    defer(nl.close)
    fds = [udmabuf(16) for _ in range(3)]
    for fd in fds:
        defer(os.close, fd)
    tx_id = nl.bind_tx({"ifindex": pair.local.ifindex(), "fd": fds[0]})["id"]
    other_tx = nl.bind_tx({"ifindex": other.ifindex(), "fd": fds[1]})["id"]
    set_hds(pair.local.ifindex())
    rx_id = bind_rx(nl, pair.local.ifindex(), fds[2], [1])["id"]

    port = 5430
    out = "/tmp/devmem-tx-refusals"
    listener, s = tx_connection(pair, port, out)

    def send_err(bid):
        try:
            return f"sent {devmem_sendmsg(s, bid, [(0, PAGE_SIZE)])}"
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))

    eq(send_err(rx_id), "EINVAL", "sendmsg naming an RX binding")
    eq(send_err(other_tx), "ENODEV", "sendmsg naming another device's TX binding")
    eq(send_err(max(tx_id, other_tx, rx_id) + 1000), "EINVAL",
       "sendmsg naming no binding")
    eq(send_err(tx_id), f"sent {PAGE_SIZE}", "sendmsg naming the route's TX binding")
    drain_completions(s)
    s.shutdown(socket.SHUT_WR)
    eq(listener.wait(timeout=60), 0, "remote receiver exit")
    eq(os.path.getsize(out), PAGE_SIZE, "bytes the remote received")


if __name__ == "__main__":
    run_tests("dmabuf_sources")
