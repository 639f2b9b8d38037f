#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Races under traffic: a devmem TCP stream is received and validated byte
by byte while another thread, for a fixed number of iterations, changes what
the stream depends on:

  - binds and unbinds a second dma-buf on another queue of the same device;
  - asks for channel counts that would drop the bound queue (must be refused)
    and ring sizes (handled or refused), through ethtool;
  - dumps page pools and queues over netlink;

and the receiver returns its frags with bad tokens mixed in
(SO_DEVMEM_DONTNEED): duplicates, already returned, out of range, more than
128 in one call.

Every iteration ends with the second binding fully released (no attachment,
no buffer in flight in its pools). The stream must arrive intact, and once
it ends everything is released. Both vCPUs stay busy: the receiver validates on one, the
churn and the sender run on the other. Splats fail the run (the VM runner).

RACES_ITERATIONS (default 40) sets the churn count.
"""

import errno
import os
import socket
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (SO_DEVMEM_DONTNEED, DevmemRx, NsimPair, _setsockopt_ret,  # noqa: E402
                    bind_rx, dmabuf_attachments, eq, metric, netdev_nl, page_pools, unheld,
                    remote_send, run_tests, sh, test, udmabuf, wait_for)
from stream import SRC, SRC_LEN, assert_released, source  # noqa: E402

ITERATIONS = int(os.environ.get("RACES_ITERATIONS", "40"))
MAX_TOKENS = 128


def dontneed_raw(conn, tokens):
    """SO_DEVMEM_DONTNEED with (token, count) pairs as given; returns the
    frags freed or -errno."""
    arr = b"".join(struct.pack("II", t, n) for t, n in tokens)
    try:
        return _setsockopt_ret(conn.fileno(), socket.SOL_SOCKET, SO_DEVMEM_DONTNEED, arr)
    except OSError as e:
        return -e.errno


def bad_tokens(rx, tokens):
    """Gives `tokens` back, with bad ones mixed in: each live token twice in
    one call (the second is not a frag any more), then all of them again
    (already returned), one out of range, and more than a call may carry.
    Done by the receiving thread between two recvmsg() calls, so no token
    can be handed out again in between."""
    if not tokens:
        return
    for i in range(0, len(tokens), MAX_TOKENS // 2):
        part = [(t, 1) for t in tokens[i:i + MAX_TOKENS // 2]]
        eq(dontneed_raw(rx.conn, part * 2), len(part),
           "frags freed by DONTNEED with each token twice")
        eq(dontneed_raw(rx.conn, part), 0, "frags freed by DONTNEED of returned tokens")
    eq(dontneed_raw(rx.conn, [(0xfffffff0, 1)]), 0, "DONTNEED out of range")
    eq(dontneed_raw(rx.conn, [(tokens[0], 1)] * (MAX_TOKENS + 1)), -errno.EINVAL,
       "DONTNEED of more than 128 tokens")


class Churn(threading.Thread):
    """The other side of the race (see the module comment)."""

    def __init__(self, pair, rx, iterations):
        super().__init__(daemon=True)
        self.pair, self.rx, self.n = pair, rx, iterations
        self.error = None
        self.done = 0

    def run(self):
        try:
            for i in range(self.n):
                self.iteration(i)
                self.done += 1
        except Exception as e:  # reported by the main thread
            self.error = e

    def iteration(self, i):
        ifname, ifindex = self.pair.ifname, self.pair.local.ifindex()
        # A second binding on queue 3, while queue 2 streams.
        fd = udmabuf(64)
        try:
            nl = netdev_nl()
            try:
                bid = bind_rx(nl, ifindex, fd, [3])["id"]
                eq(nl.queue_get({"ifindex": ifindex, "id": 3, "type": "rx"}).get("dmabuf"),
                   bid, "queue 3's binding")
                pools = [p["id"] for p in page_pools(nl, ifindex) if p.get("dmabuf") == bid]
                assert pools, "no page pool on the second binding"
                # Dumps while both are bound.
                nl.page_pool_get({}, dump=True)
                nl.queue_get({"ifindex": ifindex}, dump=True)
                # Fewer channels than the bound queues need: refused, and
                # for the binding on queue 3. ethtool names the channel
                # count the highest provider-bound queue needs, which is 4
                # only while queue 3 is bound (the stream's queue 2 would
                # say 3; the RSS table and the ntuple rule have their own
                # messages).
                r = subprocess.run(["ethtool", "-L", ifname, "combined", "3"],
                                   capture_output=True, text=True)
                assert r.returncode != 0, "3 channels accepted under a bound queue 3"
                assert "too low for existing memory provider setting (4)" in r.stderr, \
                    f"refused for another reason: {r.stderr.strip()!r}"
                eq(self.channels(), 4, "channels after a refused change")
            finally:
                nl.close()
            # Unbind closed queue 3: it no longer names the binding, and the
            # binding's page pools are gone; then the dma-buf is let go.
            nl = netdev_nl()
            try:
                wait_for(lambda: "dmabuf" not in nl.queue_get(
                    {"ifindex": ifindex, "id": 3, "type": "rx"}),
                    f"iteration {i}: queue 3 to let go of the binding", 20)
                wait_for(lambda: not [p for p in nl.page_pool_get({}, dump=True)
                                      if p["id"] in pools],
                         f"iteration {i}: the second binding's pools to go", 20)
            finally:
                nl.close()
            wait_for(lambda: unheld(fd), "the second binding to be freed", 20)
        finally:
            os.close(fd)
        # Ring sizes: handled or refused, never a crash.
        sh(f"ethtool -G {ifname} rx {256 if i % 2 else 512}", check=False)
    def channels(self):
        out = sh(f"ethtool -l {self.pair.ifname}")
        cur = out.split("Current hardware settings:")[1]
        for line in cur.splitlines():
            if line.startswith("Combined:"):
                return int(line.split()[1])
        raise AssertionError(f"no combined count in {out!r}")


@test
def stream_survives_churn():
    """The churn runs to its end while the stream flows; every byte of the
    stream is checked against the source; then everything is released.
    (Deleting the device in the middle of a stream is
    devmem_teardown.delete_device_while_queue_bound.)"""
    src = source()
    pair = NsimPair(queues=4)
    rx = DevmemRx(pair, 5401, queue=2, pages=2048)
    remote_send(pair, 5401, 1 << 40, SRC, repeat=True)
    rx.accept()
    churn = Churn(pair, rx, ITERATIONS)
    churn.start()
    got = 0
    # Receive until the churn is over, and a little beyond.
    while churn.is_alive() or got < (4 << 20):
        data, tokens, linear = rx.recv()
        eq(linear, 0, "payload bytes outside the dma-buf")
        assert data, f"the stream ended after {got} bytes"
        off = got % SRC_LEN
        want = (src[off:] + src * (1 + len(data) // SRC_LEN))[:len(data)]
        assert data == want, f"payload differs near byte {got}"
        got += len(data)
        bad_tokens(rx, tokens)
    if churn.error:
        raise churn.error
    metric("races.iterations", churn.done)
    metric("races.bytes_validated", got)
    print(f"# {churn.done} churn iterations, {got} bytes validated", flush=True)
    eq(churn.done, ITERATIONS, "churn iterations")
    # The sender stops on the reset; cleanup kills what is left of it.
    rx.conn.close()
    rx.close_binding()
    assert_released(rx)


class TokenSniper(threading.Thread):
    """Returns tokens 1-128 (one SO_DEVMEM_DONTNEED range) over and over,
    from a second thread of the receiving process, until told to stop.
    Tokens are the lowest free indices, so these are the ones recvmsg()
    reserves next, as any user can predict."""

    def __init__(self, conn):
        super().__init__(daemon=True)
        self.conn, self.stop = conn, threading.Event()
        self.calls = self.freed = 0
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                n = dontneed_raw(self.conn, [(1, MAX_TOKENS)])
                if n < 0:
                    raise AssertionError(f"DONTNEED from the second thread: {n}")
                self.calls += 1
                self.freed += n
        except Exception as e:  # reported by the main thread
            self.error = e


@test
def dontneed_of_reserved_tokens_leaks_nothing():
    """SO_DEVMEM_DONTNEED does not take the socket lock, so it can run while
    recvmsg() has reserved token slots (XA_ZERO_ENTRY) that it fills only
    once the frags are copied out. A DONTNEED naming such a token used to
    erase the reservation; recvmsg's later compare-and-exchange then failed
    unchecked, and the frag's page-pool reference, taken for the user, was
    never dropped: the net_iov leaked, and with it the binding and the
    dma-buf's attachment. Now a reserved token is not the user's to return
    and is left alone. The stream's bytes are not checked: the second thread
    returns frags before the receiver reads them."""
    pair = NsimPair(queues=4)
    rx = DevmemRx(pair, 5402, queue=2, pages=2048)
    nbytes = 64 << 20
    remote_send(pair, 5402, nbytes)
    rx.accept()
    sniper = TokenSniper(rx.conn)
    sniper.start()
    got = 0
    try:
        while got < nbytes:
            data, tokens, linear = rx.recv(read_back=False)
            if not data:
                break
            got += len(data)
            rx.dontneed(tokens)
    finally:
        sniper.stop.set()
        sniper.join()
    if sniper.error:
        raise sniper.error
    metric("races.sniper_calls", sniper.calls)
    print(f"# {got} bytes received, {sniper.calls} DONTNEED calls from the second "
          f"thread freed {sniper.freed} frags", flush=True)
    eq(got, nbytes, "bytes received")
    assert sniper.freed > 0, "the second thread never returned a frag: no race was run"
    rx.conn.close()
    rx.close_binding()
    assert_released(rx, timeout=30)


if __name__ == "__main__":
    run_tests("races")
