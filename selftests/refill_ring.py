#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bind-rx with a refill ring (Documentation/refill-ring.md).

The ring lives in a memfd sealed against shrinking, which the Rust
provider pins for the binding's life. Checked here:

  - the C provider refuses the nest with EOPNOTSUPP, saying why, and binds
    nothing;
  - the Rust provider binds with it, replies with where head, tail and
    entries are, resets head, and dmabuf-get reports the ring;
  - what both flavors' core refuses before the provider (entries not a power
    of two or out of range, offset not page aligned, attributes missing),
    and what the Rust provider refuses (not a memfd, seals, past the end,
    a bad fd), each without binding anything;
  - the pin ends with the binding: while bound the memfd cannot be sealed
    against writes (its pages are pinned, EBUSY); once unbound it can.
"""

import errno
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (PAGE_SIZE, DevmemRx, NsimPair, RefillRing,  # noqa: E402
                    bind_rx, defer, dmabuf_file_count, dmabuf_get, eq, errname,
                    expect_nl_error, kick_rx_softirq_on_every_cpu,
                    netdev_nl, queue_dmabuf, ready_nsim, remote_send,
                    run_tests, seal_write, set_hds, suite_cleanup_now,
                    suite_scoped, system_heap, test, wait_for)
from devmem import SO_DEVMEM_REFILL_RING  # noqa: E402
from stream import (SRC, SRC_LEN, assert_released, assert_same_bytes,  # noqa: E402
                    source)

FLAVOR = os.environ.get("DEVMEM_FLAVOR", "")
# x86-64's cache line: the ring's head, tail and entries each start one.
LINE = 64
RUST_ONLY = "refill-ring needs the Rust devmem provider (CONFIG_NET_DEVMEM_RUST)"


def ring_memfd(pages=1, seals=fcntl.F_SEAL_SHRINK, fill=None):
    fd = os.memfd_create("refill-ring", os.MFD_ALLOW_SEALING)
    defer(os.close, fd)
    os.ftruncate(fd, pages * PAGE_SIZE)
    if fill is not None:
        os.pwrite(fd, fill, 0)
    if seals:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd


def bind(nl, ifindex, fd, ring, queues=(1,)):
    return nl.bind_rx({"ifindex": ifindex, "fd": fd,
                       "queues": [{"id": q, "type": "rx"} for q in queues],
                       "refill-ring": ring})


def read_only(fd):
    """A read-only descriptor of the file `fd` names."""
    ro = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
    defer(os.close, ro)
    return ro


def setup():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = system_heap(PAGE_SIZE * 256)
    defer(os.close, fd)
    return ns.ifindex(), nl, fd


@test
def bind_with_ring():
    """Rust binds and lays the ring out; C refuses it, binding nothing."""
    ifindex, nl, fd = setup()
    mfd = ring_memfd(fill=b"\xff" * 8)
    ring = {"fd": mfd, "offset": 0, "entries": 64}
    if FLAVOR == "c":
        expect_nl_error(lambda: bind(nl, ifindex, fd, ring), errno.EOPNOTSUPP,
                        RUST_ONLY)
        eq(queue_dmabuf(nl, ifindex, 1), None, "queue 1 after the refusal")
        return
    r = bind(nl, ifindex, fd, ring)
    eq(r.get("refill-ring"), {"head-offset": 0, "tail-offset": LINE,
                              "entries-offset": 2 * LINE}, "layout")
    eq(queue_dmabuf(nl, ifindex, 1), r["id"], "queue 1 bound")
    st = dmabuf_get(nl, r["id"])
    eq(st.get("refill-ring"), {"entries": 64, "consumed": 0, "rejected": 0},
       "ring state")
    eq(st.get("user-refs"), 0, "user references")
    eq(struct.unpack("<I", os.pread(mfd, 4, 0))[0], 0, "head reset")
    # A binding without a ring reports none.
    plain = nl.bind_rx({"ifindex": ifindex, "fd": fd,
                        "queues": [{"id": 2, "type": "rx"}]})
    st = dmabuf_get(nl, plain["id"])
    eq("refill-ring" in st or "user-refs" in st, False, "no ring reported")


@test
def refused_by_the_core():
    """The nest's checks that come before the provider. The policy's range
    is checked before the request reaches the handler, on both flavors;
    the handler's own checks come after C's refusal of the ring."""
    ifindex, nl, fd = setup()
    mfd = ring_memfd()
    cases = [
        ({"fd": mfd, "offset": 0, "entries": 3}, errno.EINVAL,
         "refill-ring entries must be a power of 2"),
        ({"fd": mfd, "offset": 1, "entries": 64}, errno.EINVAL,
         "refill-ring offset must be page aligned"),
        ({"fd": mfd, "offset": 0, "entries": 0}, errno.ERANGE,
         "integer out of range"),
        ({"fd": mfd, "offset": 0, "entries": 65536}, errno.ERANGE,
         "integer out of range"),
        ({"fd": mfd, "offset": 0}, errno.EINVAL, None),
    ]
    for ring, err, msg in cases:
        if FLAVOR == "c" and err != errno.ERANGE:
            err, msg = errno.EOPNOTSUPP, RUST_ONLY
        expect_nl_error(lambda: bind(nl, ifindex, fd, ring), err, msg)
        eq(queue_dmabuf(nl, ifindex, 1), None, f"queue 1 after {ring}")


@test
def refused_by_the_provider():
    """What only the Rust provider can check: the memory itself."""
    ifindex, nl, fd = setup()
    bad_memfd = "refill-ring must lie within a memfd sealed with " \
        "F_SEAL_SHRINK, not against writes"
    rd, wr = os.pipe()
    defer(os.close, rd)
    defer(os.close, wr)
    cases = [
        ({"fd": ring_memfd(seals=0), "offset": 0, "entries": 64},
         errno.EINVAL, bad_memfd),
        ({"fd": ring_memfd(seals=fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_WRITE),
          "offset": 0, "entries": 64}, errno.EINVAL, bad_memfd),
        ({"fd": rd, "offset": 0, "entries": 64}, errno.EINVAL, bad_memfd),
        ({"fd": fd, "offset": 0, "entries": 64}, errno.EINVAL, bad_memfd),
        # 32768 entries need 65 pages.
        ({"fd": ring_memfd(pages=64), "offset": 0, "entries": 32768},
         errno.EINVAL, bad_memfd),
        ({"fd": ring_memfd(pages=2), "offset": 2 * PAGE_SIZE, "entries": 64},
         errno.EINVAL, bad_memfd),
        ({"fd": 1 << 20, "offset": 0, "entries": 64}, errno.EBADF,
         "refill-ring fd is not an open file"),
        # The kernel writes the ring's head: the memfd must be writable
        # through the descriptor that names it.
        ({"fd": read_only(ring_memfd()), "offset": 0, "entries": 64},
         errno.EACCES, "refill-ring fd is not open for writing"),
    ]
    for ring, err, msg in cases:
        if FLAVOR == "c":
            err, msg = errno.EOPNOTSUPP, RUST_ONLY
        expect_nl_error(lambda: bind(nl, ifindex, fd, ring), err, msg)
        eq(queue_dmabuf(nl, ifindex, 1), None, f"queue 1 after {ring}")
    if FLAVOR != "c":
        # The largest ring, in the 65 pages it needs, at an offset.
        r = bind(nl, ifindex, fd, {"fd": ring_memfd(pages=66),
                                   "offset": PAGE_SIZE, "entries": 32768})
        eq(dmabuf_get(nl, r["id"])["refill-ring"]["entries"], 32768, "entries")


@test
def pin_ends_with_the_binding():
    """While bound, the ring's pages are pinned: sealing the memfd against
    writes fails (EBUSY, as for any pinned page). Closing the binding's
    socket unbinds and frees it, and the seal then goes on. (C pins
    nothing: it refuses the ring, and the seal goes on at once.)"""
    ns = ready_nsim()
    nl = netdev_nl()
    fd = system_heap(PAGE_SIZE * 256)
    defer(os.close, fd)
    mfd = ring_memfd()
    if FLAVOR == "c":
        expect_nl_error(lambda: bind(nl, ns.ifindex(), fd,
                                     {"fd": mfd, "offset": 0, "entries": 64}),
                        errno.EOPNOTSUPP, RUST_ONLY)
        nl.close()
        eq(seal_write(mfd), 0, "seal with nothing pinned")
        return
    bind(nl, ns.ifindex(), fd, {"fd": mfd, "offset": 0, "entries": 64})
    eq(errno.errorcode.get(seal_write(mfd), 0), "EBUSY", "seal while pinned")
    nl.close()
    wait_for(lambda: seal_write(mfd) == 0, "the pin to end after unbind",
             timeout=10)


_pair = None


def shared_pair():
    """The netdevsim pair the streams share (its setup and removal cost
    more than most tests here); the tests that delete the device or leave
    a killed process's settings behind make their own."""
    global _pair
    if _pair is None:
        _pair = suite_scoped(NsimPair, 4)
    return _pair


def own_pair():
    """A pair of the test's own, for a test that deletes its device or
    leaves a killed receiver's settings on it. There is one pair at a time
    (its remote netns has a fixed name): the shared one goes first, and
    the next test to share makes a new one."""
    global _pair
    if _pair is not None:
        _pair = None
        suite_cleanup_now()
    return NsimPair(queues=4)


KiB = 1 << 10
BUF = 8 << 20


def ring_stream(niov, port, hostile=False):
    """An 8 MiB stream whose frags all come as ring references and go back
    through the ring, every byte checked; with `hostile`, garbage entries
    between the real ones. Returns the receiver, its stream done."""
    src = source()
    pair = shared_pair()
    ring = RefillRing(entries=256)
    rx = DevmemRx(pair, port, fd=system_heap(BUF), rx_page_size=niov,
                  ring=ring)
    sender = remote_send(pair, port, SRC_LEN, SRC)
    rx.accept()
    got, total, bad = [], 0, 0
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"stream stalled at {total} bytes"
        data, tokens, linear = rx.recv()
        eq(linear, 0, "payload bytes outside the dma-buf")
        eq(tokens, [], "tokens on a ring socket")
        if not data:
            break
        got.append(data)
        total += len(data)
        if hostile:
            # Past the buffer, far past it, and a frag held twice over.
            junk = [BUF, 1 << 63, (1 << 64) - 1]
            if rx.ring_frags:
                junk += [rx.ring_frags[0]] * 3
            rx.give_back(junk)
            bad += len(junk) - (1 if rx.ring_frags else 0)
        rx.give_back()
    eq(total, SRC_LEN, "bytes received")
    assert_same_bytes(got, src)
    eq(sender.wait(timeout=60), 0, "sender exit")
    rx.flush()
    st = dmabuf_get(rx.nl, rx.id)
    eq(st["user-refs"], 0, "user references after the stream")
    eq(st["tokens"], 0, "tokens after the stream")
    eq(st["refill-ring"]["consumed"], ring.given, "entries consumed")
    if hostile:
        # Each junk batch: three out of range, and the same frag three
        # more times, of which at most one finds a reference (the real
        # entry for it comes after).
        assert st["refill-ring"]["rejected"] >= bad, \
            f"{st['refill-ring']['rejected']} rejected, {bad} at least expected"
    else:
        eq(st["refill-ring"]["rejected"], 0, "entries rejected")
    return rx


@test
def stream_4k():
    """4 KiB net_iovs: frags come as ring references, go back through
    the ring, and the stream is intact; C refuses the ring."""
    if FLAVOR == "c":
        return expect_c_refusal()
    ring_stream(4 * KiB, 5301)


@test
def stream_16k():
    if FLAVOR == "c":
        return expect_c_refusal()
    ring_stream(16 * KiB, 5302)


@test
def stream_64k():
    if FLAVOR == "c":
        return expect_c_refusal()
    ring_stream(64 * KiB, 5303)


@test
def hostile_ring_beside_a_stream():
    """Entries out of range, and one frag named four times: rejected and
    counted, the stream intact, nothing outstanding after."""
    if FLAVOR == "c":
        return expect_c_refusal()
    ring_stream(4 * KiB, 5304, hostile=True)


@test
def unbind_scrubs_what_was_never_given_back():
    """User space keeps every frag and closes the binding's socket: the
    scrub returns them all, the pools drain, and the binding and its
    dma-buf are released."""
    if FLAVOR == "c":
        return expect_c_refusal()
    pair = shared_pair()
    ring = RefillRing(entries=256)
    rx = DevmemRx(pair, 5305, fd=system_heap(BUF), ring=ring)
    sender = remote_send(pair, 5305, 1 << 20)
    rx.accept()
    held = 0
    while held < 64:
        data, _, _ = rx.recv()
        if not data:
            break
        held += len(rx.ring_frags)
    assert held, "no ring frag received"
    eq(dmabuf_get(rx.nl, rx.id)["user-refs"] > 0, True, "references held")
    sender.kill()
    rx.conn.close()
    rx.close_binding()
    assert_released(rx)


def optin_errno(ring, sock, dmabuf_id, memfd=None):
    try:
        ring.optin(sock, dmabuf_id, memfd)
        return 0
    except OSError as e:
        return e.errno


@test
def optin_refusals():
    """SO_DEVMEM_REFILL_RING is refused for a binding of another netns or
    none (ENOENT), a binding without a ring (EOPNOTSUPP), a descriptor that
    is not the ring's memfd open for writing (EACCES), a socket that is not
    TCP (EBADF); C refuses every binding (EOPNOTSUPP)."""
    pair = shared_pair()
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    defer(s.close)
    nl = netdev_nl()
    defer(nl.close)
    ring = RefillRing(entries=64)
    pfd = system_heap(BUF)
    defer(os.close, pfd)
    if FLAVOR == "c":
        pair.local.set_dma(True)
        set_hds(pair.local.ifindex())
        plain = bind_rx(nl, pair.local.ifindex(), pfd, [3])["id"]
        eq(errname(optin_errno(ring, s, plain)), "EOPNOTSUPP", "C's opt-in")
        return
    rx = DevmemRx(pair, 5310, fd=system_heap(BUF), ring=ring)
    plain = bind_rx(nl, pair.local.ifindex(), pfd, [3])["id"]
    other = RefillRing(entries=64)
    ro = os.open(f"/proc/self/fd/{ring.memfd}", os.O_RDONLY)
    defer(os.close, ro)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    defer(udp.close)
    cases = [
        ("no such binding", s, rx.id + 1000, None, errno.ENOENT),
        ("a binding without a ring", s, plain, None, errno.EOPNOTSUPP),
        ("another memfd", s, rx.id, other.memfd, errno.EACCES),
        ("the ring's memfd read-only", s, rx.id, ro, errno.EACCES),
        ("a UDP socket", udp, rx.id, None, errno.EBADF),
        ("the ring's memfd", s, rx.id, None, 0),
        ("opting out", s, 0, None, 0),
    ]
    for what, sock, i, memfd, want in cases:
        eq(errname(optin_errno(ring, sock, i, memfd)), errname(want), what)
    # A socket of the remote netns, with the ring's memfd: the binding is
    # not of its netns.
    code = ("import os, socket, struct\n"
            "s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n"
            f"fd = os.open('/proc/{os.getpid()}/fd/{ring.memfd}', os.O_RDWR)\n"
            "try:\n"
            f"    s.setsockopt(socket.SOL_SOCKET, {SO_DEVMEM_REFILL_RING}, "
            f"struct.pack('Ii', {rx.id}, fd))\n"
            "    print(0)\n"
            "except OSError as e:\n"
            "    print(e.errno)\n")
    out = subprocess.run(["ip", "netns", "exec", pair.REMOTE_NS, sys.executable,
                          "-c", code], capture_output=True, text=True, check=True)
    eq(errname(int(out.stdout.strip())), "ENOENT", "a socket of another netns")


def hold_ring_frags(rx, n):
    """Receives until `n` ring frags are held; returns their offsets."""
    held = []
    deadline = time.monotonic() + 60
    while len(held) < n:
        assert time.monotonic() < deadline, f"only {len(held)} ring frags held"
        data, tokens, _ = rx.recv()
        assert data, "stream ended early"
        eq(tokens, [], "tokens on a ring socket")
        held += rx.ring_frags
    return held


def ring_rx(port, nbytes=1 << 20, own=False, **kw):
    pair = own_pair() if own else shared_pair()
    ring = RefillRing(entries=256)
    rx = DevmemRx(pair, port, fd=system_heap(BUF), ring=ring, **kw)
    remote_send(pair, port, nbytes)
    rx.accept()
    return pair, rx


@test
def no_optin_gets_tokens():
    """A socket that did not opt in gets tokens for the ring binding's
    frags, and gives them back with SO_DEVMEM_DONTNEED."""
    if FLAVOR == "c":
        return expect_c_refusal()
    _, rx = ring_rx(5311, optin=False)
    data, tokens, _ = rx.recv()
    assert data and tokens, "no frag received"
    eq(rx.ring_frags, [], "ring frags without the opt-in")
    eq(rx.dontneed(tokens), len(tokens), "frags freed")
    eq(dmabuf_get(rx.nl, rx.id)["user-refs"], 0, "user references")


@test
def dontneed_frees_no_ring_frag():
    """A ring frag has no token: SO_DEVMEM_DONTNEED of the cmsg's token
    (U32_MAX) frees nothing and leaves the user references; the ring then
    gives them back."""
    if FLAVOR == "c":
        return expect_c_refusal()
    _, rx = ring_rx(5312)
    held = hold_ring_frags(rx, 4)
    refs = dmabuf_get(rx.nl, rx.id)["user-refs"]
    eq(refs, len(held), "user references held")
    eq(rx.dontneed([0xffffffff]), 0, "frags freed by DONTNEED")
    eq(dmabuf_get(rx.nl, rx.id)["user-refs"], refs, "user references after it")
    rx.give_back(held)
    rx.flush()
    eq(dmabuf_get(rx.nl, rx.id)["user-refs"], 0, "user references given back")


@test
def tcp_socket_closed_first():
    """Closing the TCP socket returns no ring frag (they are the
    binding's); the ring still takes them back, and the binding then goes
    with nothing left."""
    if FLAVOR == "c":
        return expect_c_refusal()
    _, rx = ring_rx(5313)
    held = hold_ring_frags(rx, 16)
    rx.conn.close()
    eq(dmabuf_get(rx.nl, rx.id)["user-refs"], len(held),
       "user references after the TCP socket closed")
    rx.give_back(held)
    rx.flush()
    st = dmabuf_get(rx.nl, rx.id)
    eq(st["user-refs"], 0, "user references given back")
    eq(st["refill-ring"]["rejected"], 0, "entries rejected")
    rx.close_binding()
    assert_released(rx)


@test
def device_deleted_while_frags_held():
    """The device goes while user space holds ring frags: the scrub at its
    last queue's uninstall takes every user reference, entries given back
    later are rejected, and the binding is freed once its socket closes."""
    if FLAVOR == "c":
        return expect_c_refusal()
    pair, rx = ring_rx(5314, own=True)
    held = hold_ring_frags(rx, 16)
    base = dmabuf_file_count(rx.fd)
    pair.local.delete()
    eq(dmabuf_get(rx.nl, rx.id)["user-refs"], 0, "user references after the scrub")
    rx.give_back(held)
    rx.flush()
    eq(dmabuf_get(rx.nl, rx.id)["refill-ring"]["rejected"], len(held),
       "entries given back after the scrub")
    rx.conn.close()
    rx.close_binding()

    def freed():
        kick_rx_softirq_on_every_cpu()
        return dmabuf_file_count(rx.fd) == base - 1
    wait_for(freed, "the binding to be freed (its dma-buf reference)", 30)


@test
def killed_holding_frags():
    """A receiver killed while it holds ring frags: its binding's netlink
    socket closes with it, the scrub returns the frags, and the binding
    lets go of the dma-buf. (The ring's pin ends with the binding, as
    pin_ends_with_the_binding shows; the parent's mapping of the ring
    would keep F_SEAL_WRITE from telling here.)"""
    if FLAVOR == "c":
        return expect_c_refusal()
    pair = own_pair()
    ring = RefillRing(entries=256)
    fd = system_heap(BUF)
    defer(os.close, fd)
    base = dmabuf_file_count(fd)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        # The child: bind, receive and hold, say so, and wait to be killed.
        try:
            os.close(r)
            rx = DevmemRx(pair, 5315, fd=os.dup(fd), ring=ring)
            os.write(w, b"l")
            rx.accept()
            hold_ring_frags(rx, 16)
            os.write(w, b"h")
            time.sleep(600)
        finally:
            os._exit(1)
    os.close(w)
    defer(os.close, r)

    def reap():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    defer(reap)
    eq(os.read(r, 1), b"l", "the child listens")
    remote_send(pair, 5315, 1 << 20)
    eq(os.read(r, 1), b"h", "the child holds ring frags")
    assert dmabuf_file_count(fd) > base, "the binding holds the dma-buf"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

    def freed():
        kick_rx_softirq_on_every_cpu()
        return dmabuf_file_count(fd) == base
    wait_for(freed, "the binding to be freed (its dma-buf reference)", 30)


def expect_c_refusal():
    ifindex, nl, fd = setup()
    expect_nl_error(lambda: bind(nl, ifindex, fd, RefillRing().request()),
                    errno.EOPNOTSUPP, RUST_ONLY)


if __name__ == "__main__":
    run_tests("refill_ring")
