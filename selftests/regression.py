#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One named test per devmem bug in upstream's history, on both flavors.

Each test walks the path the bug was on, as a user would, and checks what
the fix promised; slub_debug, KFENCE, DMA API debugging and kmemleak (the
VM runner) catch the memory errors the bugs were. Bugs whose path other
suites already walk are listed in Documentation/robustness.md with the test
that covers them.
"""

import errno
import os
import select
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (MSG_SOCK_DEVMEM, DevmemRx, KernelLog, NsimPair, bind_rx,  # noqa: E402
                    dma_mappings, dmabuf, dmabuf_attachments, eq, failing_page_allocs,
                    genl_socket, system_heap, unheld,
                    netdev_nl, queue_dmabuf, ready_nsim, remote_send,
                    run_tests, test, wait_for)
from stream import assert_released  # noqa: E402

NLMSG_ERROR = 2
# include/linux/errno.h: not in uapi, so libc has no name for it.
ETOOSMALL = 525


@test
def reply_fails_binding_kept_until_close_c849de7d8757():
    """c849de7d8757: when the bind-rx reply could not be sent, the error path
    freed a binding still linked on the socket, and closing the socket freed
    it again. Now the binding stays, owned by the socket, until the close.

    The reply fails here the way it does for a user: the netlink socket's
    receive buffer is full (requests sent, replies never read)."""
    ns = ready_nsim()
    fd = dmabuf(64)
    nl = netdev_nl()  # encodes the messages, and watches
    s = genl_socket(strict=False, rcvbuf=1, bind=True)
    get = nl.ops["queue-get"]
    for seq in range(1, 65):
        s.send(nl._encode_message(get, {"ifindex": ns.ifindex(), "id": 0, "type": "rx"},
                                  None, seq))
    s.send(nl._encode_message(nl.ops["bind-rx"],
                              {"ifindex": ns.ifindex(), "fd": fd,
                               "queues": [{"id": 1, "type": "rx"}]}, None, 100))
    # The bind happened; its reply and ack were dropped.
    bid = queue_dmabuf(nl, ns.ifindex(), 1)
    assert bid, "queue 1 not bound: the receive buffer did not fill"
    eq(dmabuf_attachments(fd), [f"netdevsim{ns.id}"], "attachments while bound")
    # The user saw the overrun (ENOBUFS), not a reply from the bind.
    seqs, overrun = set(), False
    s.setblocking(False)
    while True:
        try:
            data = s.recv(1 << 16)
        except BlockingIOError:
            break
        except OSError as e:
            eq(e.errno, errno.ENOBUFS, "error on the overrun socket")
            overrun = True
            continue
        off = 0
        while off + 16 <= len(data):
            length, _, _, seq, _ = struct.unpack_from("IHHII", data, off)
            seqs.add(seq)
            off += (length + 3) & ~3
    assert overrun, "no overrun reported"
    assert 100 not in seqs, "the bind-rx reply arrived: nothing was dropped"
    s.close()
    wait_for(lambda: queue_dmabuf(nl, ns.ifindex(), 1) is None, "queue 1 to be unbound")
    wait_for(lambda: unheld(fd), "the binding to be freed (detached, dma-buf reference dropped)")
    eq(dma_mappings(ns), [], "mappings after the close")
    nl.close()


@test
def tx_unmapped_with_its_direction_67cb3720fdfa():
    """67cb3720fdfa: a TX binding was unmapped as DMA_FROM_DEVICE. DMA API
    debugging reports a mismatched direction as a splat; here the mapping
    is also checked to be DMA_TO_DEVICE while bound, and gone after."""
    ns = ready_nsim()
    fd = dmabuf(64)
    nl = netdev_nl()
    nl.bind_tx({"ifindex": ns.ifindex(), "fd": fd})
    maps = dma_mappings(ns)
    assert maps, "no mapping for the TX binding"
    assert all("DMA_TO_DEVICE" in m for m in maps), maps
    nl.close()
    wait_for(lambda: dma_mappings(ns) == [], "the TX mapping to go")
    wait_for(lambda: unheld(fd), "the binding to be freed (detached, dma-buf reference dropped)")


@test
def devmem_cmsgs_never_truncated_18912c520674():
    """18912c520674: recvmsg(MSG_SOCK_DEVMEM) with too little control space
    wrote truncated dmabuf cmsgs, so the user lost the frags' tokens. Now
    a frag whose cmsg does not fit is not consumed: the call fails with
    ETOOSMALL, and the next calls with room get every byte."""
    pair = NsimPair(queues=4)
    rx = DevmemRx(pair, 5501)
    sender = remote_send(pair, 5501, 1 << 20)
    rx.accept()
    # Wait for data, then ask with room for less than one dmabuf cmsg
    # (struct dmabuf_cmsg is 24 bytes; a cmsg header 16). Header split puts
    # all of the payload in frags, so the very first cmsg does not fit and
    # the call fails as upstream's does, with the kernel-internal ETOOSMALL
    # (525; Documentation/robustness.md says why it stays).
    readable, _, _ = select.select([rx.conn], [], [], 30)
    assert readable, "no data within 30 s"
    try:
        data, anc, flags, _ = rx.conn.recvmsg(65536, 20, MSG_SOCK_DEVMEM)
        raise AssertionError(f"recvmsg with 20 bytes of control space returned "
                             f"{len(data)} bytes, {len(anc)} cmsgs, flags {flags:#x}")
    except OSError as e:
        eq(e.errno, ETOOSMALL, "errno of recvmsg without room for one cmsg")
    got = 0
    # Everything still arrives, through calls that have room.
    total = got
    while True:
        data, tokens, linear = rx.recv()
        if not data:
            break
        total += len(data)
        rx.dontneed(tokens)
    eq(total, 1 << 20, "bytes received in all")
    eq(sender.wait(timeout=60), 0, "sender exit")
    rx.conn.close()
    rx.close_binding()
    assert_released(rx)


@test
def socket_close_after_device_gone_0afc44d8cdf6():
    """0afc44d8cdf6: closing the socket after the device (there: the driver
    module) was gone dereferenced the device. RX on several queues and TX on
    one socket, device deleted first, then the close."""
    ns = ready_nsim()
    fd_rx, fd_tx = dmabuf(64), dmabuf(64)
    nl = netdev_nl()
    bind_rx(nl, ns.ifindex(), fd_rx, [1, 2])
    nl.bind_tx({"ifindex": ns.ifindex(), "fd": fd_tx})
    ns.delete()
    nl.close()
    wait_for(lambda: unheld(fd_rx) and unheld(fd_tx),
             "both dma-bufs to be detached")


@test
def close_unbinds_without_use_after_free_42f342387841():
    """42f342387841: the socket's destructor used a binding after unbinding
    (freeing) it. Close a socket holding two RX bindings and a TX one."""
    ns = ready_nsim()
    fds = [dmabuf(64) for _ in range(3)]
    nl = netdev_nl()
    bind_rx(nl, ns.ifindex(), fds[0], [1])
    bind_rx(nl, ns.ifindex(), fds[1], [2, 3])
    nl.bind_tx({"ifindex": ns.ifindex(), "fd": fds[2]})
    nl.close()
    watch = netdev_nl()
    for q in (1, 2, 3):
        eq(queue_dmabuf(watch, ns.ifindex(), q), None, f"queue {q} after the close")
    watch.close()
    wait_for(lambda: all(unheld(f) for f in fds),
             "every dma-buf to be detached")
    eq(dma_mappings(ns), [], "mappings after the close")


def kvmalloc_areas():
    """The vmalloc areas that kvmalloc() made (/proc/vmallocinfo names the
    caller: C's bind calls kvmalloc_array() itself, the Rust allocator goes
    through kvrealloc_node_align()); a genpool's vzalloc'ed chunks are left
    out."""
    callers = ("net_devmem_bind_dmabuf", "kvrealloc_node_align", "__kvmalloc_node")
    with open("/proc/vmallocinfo") as f:
        return sum(1 for ln in f if any(c in ln for c in callers))


@test
def niov_arrays_freed_outside_rcu():
    """Found here (patches/1-net-fixes, Fixes: 170aafe35cb9): a binding's
    net_iov arrays, one per DMA segment and kvmalloc'ed, were freed from
    the gen_pool_for_each_chunk() callback, under rcu_read_lock(). An array
    that fell back to vmalloc (more than a page of net_iovs, kmalloc failing
    on fragmented memory; always for a segment larger than 256 MiB) went to
    vfree(), which may sleep: "BUG: sleeping function called from invalid
    context" when such a binding was freed, and at a bind that failed after
    carving.

    Here four 1 MiB segments of the system heap, each 256 net_iovs, bound
    while this task's page allocations of order 2 and up fail, so the
    net_iov arrays are vmalloc'ed (C: one per segment; Rust: one block for
    all four); then unbound. The Rust provider no longer walks a genpool,
    so there it checks that its vmalloc'ed block is freed cleanly."""
    ns = ready_nsim()
    fd = system_heap(4 << 20)
    log = KernelLog()
    try:
        before = kvmalloc_areas()
        nl = netdev_nl()
        with failing_page_allocs(2):
            bind_rx(nl, ns.ifindex(), fd, [1])
        grown = kvmalloc_areas() - before
        assert grown >= 1, f"{grown} kvmalloc areas made by the bind: no net_iov array was vmalloc'ed"
        nl.close()
        wait_for(lambda: unheld(fd), "the binding to be freed", 20)
        bad = [ln for ln in log.lines()
               if "sleeping function called from invalid context" in ln
               or "BUG:" in ln or "WARNING:" in ln]
        eq(bad, [], "kernel messages from the bind and the free")
    finally:
        log.close()
        os.close(fd)


if __name__ == "__main__":
    run_tests("regression")
