#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Systematic fault injection into the devmem netlink operations.

For each operation (bind-rx on 1 and on 3 queues, bind-tx, bind-rx through a
netkit queue lease, and closing the socket of a live binding), the Nth
allocation of that one syscall is made to fail, N = 1, 2, 3, ... (through
/proc/thread-self/fail-nth, as syzkaller does), until the call runs with no
allocation left to fail. After every injected fault:

  - the call failed with a clean errno, or (if the failed allocation had a
    fallback) succeeded completely;
  - nothing is left behind: no dma-buf attachment (bufinfo), no DMA mapping
    (dma-api debug), no bound queue, no devmem page pool;
  - the same operation then succeeds without faults, and unbinding it leaves
    nothing behind either.

Splats fail the run (the runner reads the kernel log) and kmemleak is
scanned at its end. The number of fault points of each operation is written
to the run's metrics ("fault_points.<op>"), per flavor.
"""

import contextlib
import ctypes
import errno
import fcntl
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (PAGE_SIZE, Nsim, bind_rx, defer, dma_mappings,  # noqa: E402
                    dmabuf, dmabuf_attachments, dmabuf_file_count, eq,
                    expect_nl_error, genl_socket,
                    metric, netdev_nl, seal_write, unheld,
                    page_pools, queue_dmabuf, run_tests, set_hds, test,
                    wait_for)
from netkit import GUEST_NS, lease_queue  # noqa: E402
from pyynl.lib import NlError  # noqa: E402

FAIL_NTH = "/proc/thread-self/fail-nth"
DFS = "/sys/kernel/debug"
# A bound on the loop: an operation with more fault points than this is a
# finding in itself.
MAX_POINTS = 400
TRACE = os.environ.get("FAULT_INJECT_TRACE") == "1"
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def _write(path, value):
    with open(path, "w") as f:
        f.write(value)


def arm_fault_attrs():
    """Make every slab and page allocation of the task eligible (by default
    both attributes skip allocations that may sleep, and the page allocator
    those of order 0), quietly: a forced failure is not a splat."""
    for attr in ("failslab", "fail_page_alloc"):
        _write(f"{DFS}/{attr}/ignore-gfp-wait", "N")
        _write(f"{DFS}/{attr}/verbose", "0")
    _write(f"{DFS}/fail_page_alloc/ignore-gfp-highmem", "N")
    _write(f"{DFS}/fail_page_alloc/min-order", "0")


class FaultSock:
    """A netlink socket whose next send() runs with fail-nth armed: genetlink
    handles a request inside sendmsg(), so the operation is that syscall."""

    def __init__(self, sock):
        self._sock = sock
        self.nth = 0
        self.injected = None

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def send(self, data, flags=0):
        if not self.nth:
            return self._sock.send(data, flags)
        state = None
        try:
            with fail_nth(self.nth) as state:
                return self._sock.send(data, flags)
        finally:
            self.nth = 0
            self.injected = state.value if state else None

    def close(self):
        self._sock.close()


class _Injected:
    value = None


@contextlib.contextmanager
def fail_nth(n):
    """Fail the task's Nth allocation inside the block; afterwards the
    yielded object's `value` says whether that fault was injected."""
    st = _Injected()
    fd = os.open(FAIL_NTH, os.O_RDWR)
    try:
        os.write(fd, str(n).encode())
        try:
            yield st
        finally:
            left = int(os.pread(fd, 32, 0))
            os.write(fd, b"0")
            st.value = left == 0
    finally:
        os.close(fd)


@contextlib.contextmanager
def in_netns(name):
    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        yield
    finally:
        libc.setns(back, CLONE_NEWNET)
        os.close(fd)
        os.close(back)


class Op:
    """One operation under test: a family object whose socket is replaced
    for every attempt (a binding lives as long as its socket)."""

    def __init__(self, name, ns, fd, queues, do, netns=None):
        self.name, self.ns, self.fd, self.queues = name, ns, fd, queues
        self.do, self.netns = do, netns
        # Nothing is bound yet: what holds the dma-buf now is the user's.
        self.user_refs = dmabuf_file_count(fd)
        self.nl = netdev_nl()
        defer(self.close)
        self.watch = netdev_nl()
        defer(self.watch.close)

    def fresh(self):
        """A new socket for the next attempt."""
        self.close()
        if self.netns:
            with in_netns(self.netns):
                self.nl.sock = FaultSock(genl_socket())
        else:
            self.nl.sock = FaultSock(genl_socket())
        return self.nl.sock

    def close(self):
        if self.nl.sock is not None:
            self.nl.sock.close()
            self.nl.sock = None

    def bound(self):
        return [q for q in self.queues
                if queue_dmabuf(self.watch, self.ns.ifindex(), q) is not None]

    def clean(self):
        return (unheld(self.fd, self.user_refs) and dma_mappings(self.ns) == []
                and not self.bound()
                and not [p for p in page_pools(self.watch, self.ns.ifindex())
                         if "dmabuf" in p])

    def check_clean(self, what):
        try:
            wait_for(self.clean, f"nothing left behind {what}")
        except AssertionError:
            raise AssertionError(
                f"{self.name}, {what}: attachments {dmabuf_attachments(self.fd)}, "
                f"dma-buf references {dmabuf_file_count(self.fd)} (user's {self.user_refs}), "
                f"mappings {len(dma_mappings(self.ns))}, bound queues {self.bound()}, "
                f"pools {page_pools(self.watch, self.ns.ifindex())}") from None

    def check_bound(self, res, what):
        bid = res["id"]
        assert bid > 0, f"{self.name}, {what}: binding id {bid}"
        eq(self.bound(), [q for q in self.queues if self.is_rx], f"{self.name}, {what}: bound queues")
        assert dmabuf_attachments(self.fd), f"{self.name}, {what}: no attachment"

    is_rx = True


def run_op(op, arm_close=False):
    """Fails allocation 1, 2, ... of the operation until none is left;
    returns the number of fault points."""
    n = 0
    while True:
        n += 1
        assert n <= MAX_POINTS, f"{op.name}: more than {MAX_POINTS} fault points"
        sock = op.fresh()
        if arm_close:
            res = op.do(op.nl)
            op.check_bound(res, "before the close")
            with fail_nth(n) as st:
                op.close()
            injected = st.value
            op.check_clean(f"after a close with fault {n}")
        else:
            sock.nth = n
            msg = None
            try:
                res = op.do(op.nl)
                err = None
            except NlError as e:
                err = e.error
                msg = (e.nl_msg.extack or {}).get("msg")
            except OSError as e:
                err = e.errno
            injected = sock.injected
            if err is not None:
                # An allocation that failed is reported as such: ENOMEM, or
                # ENOBUFS when netlink itself could not allocate. The one
                # errno passed through from elsewhere is the exporter's
                # vmap's (netdevsim's bindings are mapped for the CPU):
                # udmabuf answers a vm_map_ram() failure with EINVAL.
                vmap = msg == "Failed to map dmabuf for CPU access"
                assert err in (errno.ENOMEM, errno.ENOBUFS) or vmap, \
                    f"{op.name}, fault {n}: errno {err} ({os.strerror(err)}), {msg!r}"
                assert injected, f"{op.name}: failed with {err} without a fault"
                op.close()
                op.check_clean(f"after fault {n} ({os.strerror(err)})")
            else:
                # A failed allocation with a fallback: the result must be
                # whole.
                op.check_bound(res, f"success with fault {n}")
                op.close()
                op.check_clean(f"after unbinding (fault {n})")
        if TRACE:
            print(f"# {op.name} fault {n}: injected {injected}, "
                  f"{os.strerror(err) if not arm_close and err else 'ok'}", flush=True)
        if not injected:
            return n - 1
        # The same operation, with no fault, works right after.
        op.fresh()
        op.check_bound(op.do(op.nl), f"retry after fault {n}")
        op.close()
        op.check_clean(f"after unbinding the retry of fault {n}")


def device(queues=4):
    ns = Nsim(ports=1, queues=queues)
    ns.set_dma(True)
    set_hds(ns.ifindex())
    ns.up()
    return ns


def report(name, points):
    print(f"# {name}: {points} fault points", flush=True)
    metric(f"fault_points.{name}", points)
    assert points > 0, f"{name}: no fault point found"


def rx_op(name, queues):
    arm_fault_attrs()
    ns = device()
    fd = dmabuf(64)
    op = Op(name, ns, fd, queues,
            lambda nl: bind_rx(nl, ns.ifindex(), fd, queues))
    op.check_clean("at the start")
    report(name, run_op(op))


@test
def bind_rx_one_queue():
    rx_op("bind_rx_1q", [1])


@test
def bind_rx_three_queues():
    rx_op("bind_rx_3q", [1, 2, 3])


@test
def bind_tx():
    arm_fault_attrs()
    ns = device()
    fd = dmabuf(64)
    op = Op("bind_tx", ns, fd, [0, 1, 2, 3],
            lambda nl: nl.bind_tx({"ifindex": ns.ifindex(), "fd": fd}))
    op.is_rx = False
    op.check_clean("at the start")
    report("bind_tx", run_op(op))


@test
def bind_rx_through_lease():
    arm_fault_attrs()
    fd = dmabuf(64)
    ns = device(queues=2)
    _, _, _, gidx, vq = lease_queue(ns)
    op = Op("bind_rx_lease", ns, fd, [1],
            lambda nl: bind_rx(nl, gidx, fd, [vq]), netns=GUEST_NS)
    op.check_clean("at the start")
    report("bind_rx_lease", run_op(op))


@test
def bind_rx_with_refill_ring():
    """bind-rx with a refill ring (Rust): the ring's page, read in from
    shmem as the pin finds it missing, the pin, the kernel mapping and the
    user reference array add fault points; no fault leaves the ring's
    memfd pinned (F_SEAL_WRITE, refused while a page is pinned, goes on
    once the last binding is freed). C refuses the ring before it
    allocates anything of a binding."""
    arm_fault_attrs()
    ns = device()
    fd = dmabuf(64)
    mfd = os.memfd_create("refill-ring", os.MFD_ALLOW_SEALING)
    defer(os.close, mfd)
    os.ftruncate(mfd, PAGE_SIZE)
    fcntl.fcntl(mfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)

    def do(nl):
        return nl.bind_rx({"ifindex": ns.ifindex(), "fd": fd,
                           "queues": [{"id": 1, "type": "rx"}],
                           "refill-ring": {"fd": mfd, "offset": 0, "entries": 64}})
    if os.environ.get("DEVMEM_FLAVOR") == "c":
        nl = netdev_nl()
        defer(nl.close)
        expect_nl_error(lambda: do(nl), errno.EOPNOTSUPP)
        return
    op = Op("bind_rx_ring", ns, fd, [1], do)
    op.check_clean("at the start")
    report("bind_rx_ring", run_op(op))
    wait_for(lambda: seal_write(mfd) == 0, "the ring's pin to end", timeout=10)


@test
def close_live_binding():
    """Closing the socket restarts each bound queue without the provider,
    and the driver allocates the new queue memory, so the close can fail
    there. A queue whose restart failed keeps running on the binding, which
    stays installed on it, mapped, until a work item closes it a moment
    later (patches/1-net-fixes/0009, 0011): every allocation of the close is
    failed in turn, and each time nothing is left behind once that work ran,
    with no splat. Before those patches such a fault WARNed and left the
    queue on a devmem page pool."""
    arm_fault_attrs()
    ns = device()
    fd = dmabuf(64)
    op = Op("close_live_binding", ns, fd, [1, 2],
            lambda nl: bind_rx(nl, ns.ifindex(), fd, [1, 2]))
    report("close_live_binding", run_op(op, arm_close=True))


if __name__ == "__main__":
    only = os.environ.get("FAULT_INJECT_ONLY")
    if only:
        import devmem
        devmem._tests[:] = [t for t in devmem._tests if t.__name__ in only.split()]
    run_tests("fault_inject")
