#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bind-rx with rx-page-size: net_iovs larger than a page.

The binding carves its dma-buf into net_iovs of the requested size, the
queue's page pool takes buffers of that size (netdevsim honours the queue's
rx_page_size up to 64 KiB), and TCP reports offsets into those larger
net_iovs. Checked here, as ncdevmem's validation would:

  - what is refused, and how: sizes below PAGE_SIZE (ERANGE from the
    policy), not a power of two or above the largest page block (EINVAL
    from the core), a dma-buf whose DMA segments are
    not multiples of the size (EINVAL, extack), a size the device cannot
    fill (EOPNOTSUPP from netdevsim); none leaves anything installed;
  - a stream received into 4 KiB, 16 KiB and 64 KiB net_iovs lands byte
    for byte where the reported offsets say (read back through mmap), no
    frag crosses a net_iov of the binding's size, and with larger net_iovs
    frags larger than a page do arrive, so each costs fewer tokens.
"""

import errno
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (PAGE_SIZE, DevmemRx, NsimPair, bind_rx,  # noqa: E402
                    defer, dmabuf_get, eq, expect_nl_error, metric, netdev_nl,
                    queue_dmabuf, ready_nsim, remote_send, run_tests,
                    system_heap, test, udmabuf_scattered)
from stream import (SRC, SRC_LEN, assert_released, assert_same_bytes,  # noqa: E402
                    source)

KiB, MiB = 1 << 10, 1 << 20
# Eight 1 MiB blocks from the system heap: every segment is aligned to any
# size up to 1 MiB.
BUF = 8 * MiB


def heap(size=BUF):
    fd = system_heap(size)
    defer(os.close, fd)
    return fd


@test
def refused_sizes():
    """Sizes the core refuses before looking at the device or the buffer,
    as upstream 7.3 answers them: below PAGE_SIZE the policy's range
    (ERANGE, the range in the extack), not a power of two EINVAL with
    upstream's message; above the largest page block (4 MiB on x86-64),
    which upstream leaves to the driver or the segment check, EINVAL."""
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = heap()
    ifindex = ns.ifindex()
    for size in (0, 1, PAGE_SIZE // 2):
        expect_nl_error(lambda: bind_rx(nl, ifindex, fd, [1], size),
                        errno.ERANGE, "integer out of range",
                        policy={"type": "u32", "min-value": PAGE_SIZE,
                                "max-value": (1 << 32) - 1})
        eq(queue_dmabuf(nl, ifindex, 1), None, f"queue 1 after size {size}")
    for size, msg in ((PAGE_SIZE + 1, "rx-page-size must be a power of 2"),
                      (3 * PAGE_SIZE, "rx-page-size must be a power of 2"),
                      (8 * MiB, "rx-page-size is larger than the largest page block"),
                      (1 << 31, "rx-page-size is larger than the largest page block")):
        expect_nl_error(lambda: bind_rx(nl, ifindex, fd, [1], size),
                        errno.EINVAL, msg)
        eq(queue_dmabuf(nl, ifindex, 1), None, f"queue 1 after size {size}")


@test
def refused_by_device():
    """128 KiB is a valid size, but more than netdevsim fills: the queue
    restart fails with the device's EOPNOTSUPP and nothing stays bound."""
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = heap()
    ifindex = ns.ifindex()
    expect_nl_error(lambda: bind_rx(nl, ifindex, fd, [1], 128 * KiB),
                    errno.EOPNOTSUPP,
                    "rx_page_size 131072 not supported: a power of two up to 65536")
    eq(queue_dmabuf(nl, ifindex, 1), None, "queue 1 after the refusal")
    # The same buffer, at a size the device takes, on the same queue.
    bid = bind_rx(nl, ifindex, fd, [1], 64 * KiB)["id"]
    eq(queue_dmabuf(nl, ifindex, 1), bid, "queue 1 bound at 64 KiB")
    eq(dmabuf_get(nl, bid)["niov-size"], 64 * KiB, "net_iov size")


@test
def refused_unaligned_segments():
    """A udmabuf of scattered 4 KiB pages has 4 KiB segments: fine for the
    default size, refused for 16 KiB."""
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = udmabuf_scattered(256 * PAGE_SIZE)
    defer(os.close, fd)
    ifindex = ns.ifindex()
    expect_nl_error(lambda: bind_rx(nl, ifindex, fd, [1], 16 * KiB),
                    errno.EINVAL, "dma-buf SG entry not aligned to rx-page-size")
    eq(queue_dmabuf(nl, ifindex, 1), None, "queue 1 after the refusal")
    bid = bind_rx(nl, ifindex, fd, [1], PAGE_SIZE)["id"]
    eq(dmabuf_get(nl, bid)["niov-size"], PAGE_SIZE, "net_iov size")


def stream(niov, port):
    """An 8 MiB stream into net_iovs of `niov` bytes, every byte checked."""
    src = source()
    pair = NsimPair(queues=4)
    rx = DevmemRx(pair, port, fd=system_heap(BUF), rx_page_size=niov)
    st = dmabuf_get(rx.nl, rx.id)
    eq(st["niov-size"], niov, "net_iov size")
    eq(st["niov-count"], BUF // niov, "net_iov count")
    sender = remote_send(pair, port, SRC_LEN, SRC)
    rx.accept()
    got, total, frags, tokens_used = [], 0, [], 0
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"stream stalled at {total} bytes"
        data, tokens, linear = rx.recv()
        eq(linear, 0, "payload bytes outside the dma-buf")
        if not data:
            break
        frags += rx.last_frags
        got.append(data)
        total += len(data)
        tokens_used += len(tokens)
        eq(rx.dontneed(tokens), len(tokens), "frags freed by DONTNEED")
    eq(total, SRC_LEN, "bytes received")
    assert_same_bytes(got, src)
    eq(sender.wait(timeout=60), 0, "sender exit")
    for off, size in frags:
        assert off + size <= BUF, f"frag {off}+{size} past the buffer"
        assert off // niov == (off + size - 1) // niov, \
            f"frag {off}+{size} crosses a {niov}-byte net_iov"
    biggest = max(size for _, size in frags)
    if niov > PAGE_SIZE:
        assert biggest > PAGE_SIZE, \
            f"no frag larger than a page with {niov}-byte net_iovs"
    else:
        assert biggest <= PAGE_SIZE, f"a {biggest}-byte frag in a page"
    metric(f"rx_{niov // KiB}k_tokens_per_mib", round(tokens_used / (SRC_LEN / MiB), 1))
    metric(f"rx_{niov // KiB}k_largest_frag", biggest)
    eq(dmabuf_get(rx.nl, rx.id)["tokens"], 0, "tokens outstanding after the stream")
    rx.conn.close()
    rx.close_binding()
    assert_released(rx)
    return tokens_used


@test
def stream_4k():
    stream(4 * KiB, 5460)


@test
def stream_16k():
    stream(16 * KiB, 5461)


@test
def stream_64k():
    stream(64 * KiB, 5462)


if __name__ == "__main__":
    run_tests("rx_page_size")
