#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""dmabuf-get: what a binding reports, that the numbers follow what the
user and the device do, and who may read them.

  - an RX and a TX binding report their ID, device, direction, dma-buf
    size, net_iov size and count, and (RX) the bound queues; do and dump
    agree;
  - the net_iovs lent to page pools are what the binding's pools count
    as in flight (page-pool-get), at rest and while a receiver holds them;
  - during a stream the token count is exactly the frags the receiver
    holds, and goes back to zero as it gives them back (a token given back
    twice counts once) or closes the socket;
  - a binding whose receiver holds every net_iov runs dry: allocation
    failures are counted and nothing is free, and the stream completes,
    byte for byte, once the frags are given back;
  - the socket that made a binding reads it even without privileges, an
    admin of the same network namespace reads it, anyone else gets EPERM
    and a dump without it: EPERM in the binding's namespace, ENOENT (as if
    it did not exist) in another, root's included.
"""

import errno
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (CLONE_NEWNET, PAGE_SIZE, DevmemRx, NsimPair,  # noqa: E402
                    bind_rx, defer, dmabuf, dmabuf_dump, dmabuf_get,
                    drop_to_nobody, eq, errno_of, expect_nl_error, in_child,
                    metric, netdev_nl, ready_nsim, remote_send, run_tests,
                    test, unshare, wait_for)
from stream import SRC, SRC_LEN, assert_released, source  # noqa: E402


def queues(st):
    return sorted((q["id"], q["type"]) for q in st.get("queues", []))


def pools_inflight(nl, bid):
    """Buffers the binding's page pools count as handed out and not
    returned (their `inflight`), summed."""
    return sum(p.get("inflight", 0) for p in nl.page_pool_get({}, dump=True)
               if p.get("dmabuf") == bid)


@test
def fields_rx():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf(64)
    bid = bind_rx(nl, ns.ifindex(), fd, [1, 2])["id"]
    st = dmabuf_get(nl, bid)
    eq(st["id"], bid, "id")
    eq(st["ifindex"], ns.ifindex(), "ifindex")
    eq(st["direction"], "rx", "direction")
    eq(st["size"], 64 * PAGE_SIZE, "dma-buf size")
    eq(st["niov-size"], PAGE_SIZE, "net_iov size")
    eq(st["niov-count"], 64, "net_iov count")
    # At rest nothing has been lent: niov-pp is derived from the free count
    # in the kernel, so the values themselves are what is checked here, and
    # the page pools' own count (independent of the provider) must agree.
    # Under traffic the two are compared in counts_follow_a_stream.
    eq(st["niov-free"], 64, "free at rest")
    eq(st["niov-pp"], 0, "lent at rest")
    eq(pools_inflight(nl, bid), 0, "the pools' inflight at rest")
    eq(st["tokens"], 0, "tokens")
    eq(st["alloc-fail"], 0, "allocation failures")
    eq(queues(st), [(1, "rx"), (2, "rx")], "bound queues")
    eq(dmabuf_dump(nl).get(bid), st, "the dump's entry")

    other = netdev_nl()
    defer(other.close)
    eq(dmabuf_get(other, bid)["id"], bid, "read by root on another socket")
    nl.close()
    expect_nl_error(lambda: dmabuf_get(other, bid), errno.ENOENT)
    assert bid not in dmabuf_dump(other), "unbound binding still dumped"


@test
def fields_tx():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf(32)
    bid = nl.bind_tx({"ifindex": ns.ifindex(), "fd": fd})["id"]
    st = dmabuf_get(nl, bid)
    eq(st["direction"], "tx", "direction")
    eq(st["ifindex"], ns.ifindex(), "ifindex")
    eq(st["size"], 32 * PAGE_SIZE, "dma-buf size")
    eq(st["niov-count"], 32, "net_iov count")
    eq(st["niov-free"], 32, "free")
    eq(st["niov-pp"], 0, "lent to page pools")
    eq(queues(st), [], "bound queues")
    # The device goes; the binding stays, without one.
    ns.delete()
    st = dmabuf_get(nl, bid)
    assert "ifindex" not in st, f"ifindex {st.get('ifindex')} after the device went"


def pools_alloc_empty(nl, pools):
    """How often the binding's page pools found their cache and ring empty
    (page-pool-stats `alloc-empty`), summed: page_pool calls the provider
    exactly once after each of these."""
    return sum(nl.page_pool_stats_get({"info": {"id": p}})["alloc-empty"]
               for p in pools)


def fail_and_empty(rx):
    """(alloc-fail, the pools' alloc-empty), read with no allocation
    between: both reads are repeated until neither moved across them."""
    while True:
        f1 = dmabuf_get(rx.nl, rx.id)["alloc-fail"]
        e1 = pools_alloc_empty(rx.nl, rx.pools)
        f2 = dmabuf_get(rx.nl, rx.id)["alloc-fail"]
        e2 = pools_alloc_empty(rx.nl, rx.pools)
        if (f1, e1) == (f2, e2):
            return f1, e1


def start_stream(port, pages):
    """The random source streamed from the remote into a binding of
    `pages` pages: (receiver, sender)."""
    source()  # makes the file the remote sends
    pair = NsimPair(queues=4)
    rx = DevmemRx(pair, port, pages=pages)
    sender = remote_send(pair, port, SRC_LEN, SRC)
    rx.accept()
    return rx, sender


def finish_stream(rx, sender, got):
    """Receives the rest of the stream, giving frags back; checks every
    byte, that no token is left and that the binding lets go of
    everything once closed."""
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "stream did not finish"
        data, tokens, _ = rx.recv()
        if not data:
            break
        got.append(data)
        eq(rx.dontneed(tokens), len(tokens), "frags freed")
    assert b"".join(got) == source(), "payload differs from what was sent"
    eq(sender.wait(timeout=60), 0, "sender exit")
    eq(dmabuf_get(rx.nl, rx.id)["tokens"], 0, "tokens at the end")
    rx.conn.close()
    rx.close_binding()
    assert_released(rx)


@test
def counts_follow_a_stream():
    rx, sender = start_stream(5470, 1024)
    got, held, pages = [], [], set()
    while sum(map(len, got)) < 1 << 20:
        data, tokens, linear = rx.recv()
        eq(linear, 0, "payload bytes outside the dma-buf")
        assert data, "stream ended early"
        got.append(data)
        held += tokens
        pages |= {off // PAGE_SIZE for off, _ in rx.last_frags}
    st = dmabuf_get(rx.nl, rx.id)
    eq(st["tokens"], len(held), "tokens while the receiver holds every frag")
    assert st["niov-pp"] >= len(pages), \
        f"{st['niov-pp']} net_iovs lent, {len(pages)} held by the socket"
    # Two independent counts of the same thing, with buffers out: the
    # provider's free list (niov-pp is what it lacks) against the page
    # pools' own inflight. NAPI may still be refilling while they are read,
    # so they need only agree once within the wait; a count that drifts
    # never does.
    def agree():
        lent = dmabuf_get(rx.nl, rx.id)["niov-pp"]
        return lent > 0 and lent == pools_inflight(rx.nl, rx.id)
    wait_for(agree, "niov-pp to match the pools' inflight", 10)
    metric("stream_tokens_held", len(held))
    half = len(held) // 2
    eq(rx.dontneed(held[:half]), half, "frags freed")
    eq(dmabuf_get(rx.nl, rx.id)["tokens"], len(held) - half, "tokens after half")
    eq(rx.dontneed(held[:half]), 0, "frags freed a second time")
    eq(dmabuf_get(rx.nl, rx.id)["tokens"], len(held) - half,
       "tokens after giving the same frags back twice")
    eq(rx.dontneed(held[half:]), len(held) - half, "frags freed")
    eq(dmabuf_get(rx.nl, rx.id)["tokens"], 0, "tokens after all")
    finish_stream(rx, sender, got)


@test
def dry_binding_counts_failures():
    rx, sender = start_stream(5471, 64)
    rx.conn.settimeout(2)
    got, held = [], []
    # Hold everything until nothing more comes: the device has no buffer.
    while True:
        try:
            data, tokens, linear = rx.recv()
        except TimeoutError:
            break
        eq(linear, 0, "payload bytes outside the dma-buf")
        assert data, "stream ended while every frag was held"
        got.append(data)
        held += tokens
    st = dmabuf_get(rx.nl, rx.id)
    assert st["alloc-fail"] > 0, f"no allocation failure counted: {st}"
    # While dry, every call page_pool makes into the provider fails, and
    # each call follows one alloc-empty: the two counts must move in step,
    # one for one (counting failed batches, net_iovs or nothing would not).
    # The sender's retransmissions keep the device asking.
    fail0, empty0 = fail_and_empty(rx)
    wait_for(lambda: fail_and_empty(rx)[1] >= empty0 + 2,
             "the device to ask the dry binding for buffers again", 30)
    fail1, empty1 = fail_and_empty(rx)
    eq(fail1 - fail0, empty1 - empty0,
       "failures counted against the pools' empty allocations while dry")
    eq(st["niov-free"], 0, "free net_iovs while dry")
    eq(st["niov-pp"], 64, "lent to the pool while dry")
    eq(pools_inflight(rx.nl, rx.id), 64, "the pool's inflight while dry")
    eq(st["tokens"], len(held), "tokens")
    metric("dry_alloc_fail", st["alloc-fail"])
    eq(rx.dontneed(held), len(held), "frags freed")
    rx.conn.settimeout(30)
    finish_stream(rx, sender, got)


@test
def close_gives_tokens_back():
    """A receiver that closes its socket holding frags gives them all back,
    and only its own: a second connection on the same binding keeps its
    count exactly (the count is clamped at zero, so a close that gave back
    too many would hide behind a total of zero)."""
    rx, sender = start_stream(5472, 1024)
    first = rx.conn
    sender2 = remote_send(rx.pair, rx.port, SRC_LEN, SRC)
    second = rx.accept()
    held = {first: [], second: []}
    for conn in (first, second):
        rx.conn = conn
        while len(held[conn]) < 200:
            data, tokens, _ = rx.recv()
            assert data, "stream ended early"
            held[conn] += tokens
    total = len(held[first]) + len(held[second])
    eq(dmabuf_get(rx.nl, rx.id)["tokens"], total, "tokens held by both")
    first.close()
    wait_for(lambda: dmabuf_get(rx.nl, rx.id)["tokens"] == len(held[second]),
             "the closed socket's tokens to be given back", 20)
    time.sleep(1)
    eq(dmabuf_get(rx.nl, rx.id)["tokens"], len(held[second]),
       "tokens of the socket still open, after the other closed")
    rx.conn = second
    eq(rx.dontneed(held[second]), len(held[second]), "frags freed")
    eq(dmabuf_get(rx.nl, rx.id)["tokens"], 0, "tokens after all")
    second.close()
    sender.wait(timeout=60)
    sender2.wait(timeout=60)
    rx.close_binding()
    assert_released(rx)


@test
def who_may_read():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf(16)
    bid = bind_rx(nl, ns.ifindex(), fd, [1])["id"]

    def owner_unprivileged():
        drop_to_nobody()
        st = dmabuf_get(nl, bid)
        return f"{st['id']} {bid in dmabuf_dump(nl)}"

    def other_unprivileged():
        drop_to_nobody()
        other = netdev_nl()
        return f"{errno_of(lambda: dmabuf_get(other, bid))} {bid in dmabuf_dump(other)}"

    def root_other_netns():
        unshare(CLONE_NEWNET)
        other = netdev_nl()
        return f"{errno_of(lambda: dmabuf_get(other, bid))} {bid in dmabuf_dump(other)}"

    eq(in_child(owner_unprivileged), f"{bid} True", "the owner socket, no privileges")
    eq(in_child(other_unprivileged), "EPERM False", "another socket, no privileges")
    eq(in_child(root_other_netns), "ENOENT False", "root in another network namespace")
    other = netdev_nl()
    defer(other.close)
    eq(dmabuf_get(other, bid)["id"], bid, "root in the binding's namespace")


if __name__ == "__main__":
    run_tests("dmabuf_get")
