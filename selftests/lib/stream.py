# SPDX-License-Identifier: GPL-2.0
"""A devmem TCP stream for the selftests: a random source, a receiving loop
that returns or holds the frags, and the check that a binding let go of
everything."""

import os

from devmem import eq, kick_rx_softirq_on_every_cpu, wait_for

SRC = "/tmp/devmem-teardown-src"
SRC_LEN = 8 << 20


def source():
    if not os.path.exists(SRC):
        with open(SRC, "wb") as f:
            f.write(os.urandom(SRC_LEN))
    with open(SRC, "rb") as f:
        return f.read()


def receive(rx, nbytes, give_back=True):
    """Receive at least nbytes (or to EOF); returns (payload, tokens held)."""
    got, held = [], []
    total = 0
    while total < nbytes:
        data, tokens, linear = rx.recv()
        eq(linear, 0, "payload bytes outside the dma-buf")
        if not data:
            break
        got.append(data)
        total += len(data)
        if give_back:
            eq(rx.dontneed(tokens), len(tokens), "frags freed by DONTNEED")
        else:
            held += tokens
    return b"".join(got), held


def assert_same_bytes(got, src):
    """The payload received, `got` (a list of chunks), is `src`; otherwise
    names the first byte that differs."""
    data = b"".join(got)
    if data != src:
        first = next((i for i in range(min(len(data), len(src)))
                      if data[i] != src[i]), min(len(data), len(src)))
        raise AssertionError(f"payload differs from what was sent at byte {first}")


def assert_released(rx, timeout=20):
    """The binding's attachment and every buffer its pools lent are gone."""
    def clean():
        kick_rx_softirq_on_every_cpu()
        att, inflight = rx.leftovers()
        return not att and not inflight
    try:
        wait_for(clean, "the binding's buffers and attachment to go", timeout)
    except AssertionError:
        att, inflight = rx.leftovers()
        raise AssertionError(f"left behind: attachments {att}, inflight {inflight}")
