#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bind-rx / bind-tx over netlink on netdevsim: success, teardown and every
error path a user can reach, with errno and extack pinned.

Runs inside the test VM; the same expectations hold for both flavors.
"""

import errno
import os
import socket
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (CLONE_NEWNET, CLONE_NEWUSER, NOBODY,  # noqa: E402
                    Nsim, bind_rx, defer, describe_error, dmabuf,
                    dmabuf_attachments, dmabuf_file_count, drop_to_nobody, eq, errno_of,
                    expect_nl_error, in_child, map_root_to, netdev_nl,
                    page_pools, queue_dmabuf, ready_nsim, run_tests, set_hds,
                    test, udmabuf, unheld, unshare, wait_for)


def nsim_dev_name(ns):
    return f"netdevsim{ns.id}"


# --- success and teardown --------------------------------------------------

@test
def bind_rx_reports_dmabuf_on_queue_and_pool():
    ns = ready_nsim()
    fd = dmabuf()
    nl = netdev_nl()
    defer(nl.close)
    rsp = bind_rx(nl, ns.ifindex(), fd, [1])
    bid = rsp["id"]
    assert bid > 0, rsp
    eq(queue_dmabuf(nl, ns.ifindex(), 1), bid, "queue 1 dmabuf")
    eq(queue_dmabuf(nl, ns.ifindex(), 0), None, "queue 0 dmabuf")
    pools = [p for p in page_pools(nl, ns.ifindex()) if p.get("dmabuf") == bid]
    eq(len(pools), 1, "page pools reporting the binding")
    eq(dmabuf_attachments(fd), [nsim_dev_name(ns)], "dma-buf attachments")


@test
def bind_rx_several_queues_and_bindings():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    a = bind_rx(nl, ns.ifindex(), dmabuf(), [1, 2])["id"]
    b = bind_rx(nl, ns.ifindex(), dmabuf(), [3])["id"]
    assert a != b, (a, b)
    eq([queue_dmabuf(nl, ns.ifindex(), q) for q in range(4)], [None, a, a, b],
       "dmabuf per queue")


@test
def close_socket_unbinds():
    ns = ready_nsim()
    fd = dmabuf()
    nl = netdev_nl()
    bid = bind_rx(nl, ns.ifindex(), fd, [1])["id"]
    nl.close()
    nl2 = netdev_nl()
    defer(nl2.close)
    eq(queue_dmabuf(nl2, ns.ifindex(), 1), None, "queue 1 dmabuf after close")
    eq([p for p in page_pools(nl2, ns.ifindex()) if p.get("dmabuf") == bid], [],
       "pools still reporting the binding")
    # The binding is freed from a work item after an RCU grace period.
    wait_for(lambda: dmabuf_attachments(fd) == [], "the dma-buf to be detached")


@test
def delete_device_while_bound():
    ns = ready_nsim()
    fd = dmabuf()
    nl = netdev_nl()
    defer(nl.close)
    bid = bind_rx(nl, ns.ifindex(), fd, [1, 3])["id"]
    assert bid > 0
    ifindex = ns.ifindex()
    ns.delete()
    # The socket still owns the binding, which let go of the device with its
    # queues: no attachment pins the deleted device, but the binding still
    # holds the dma-buf (the user's fd and the binding's reference).
    expect_nl_error(lambda: queue_dmabuf(nl, ifindex, 1), errno.ENODEV)
    eq(dmabuf_attachments(fd), [], "attachments after the device went")
    eq(dmabuf_file_count(fd), 2, "dma-buf references (the fd's, the binding's)")
    nl.close()
    wait_for(lambda: unheld(fd), "the binding to be freed")


@test
def bind_while_down_then_up():
    ns = ready_nsim(up=False)
    nl = netdev_nl()
    defer(nl.close)
    bid = bind_rx(nl, ns.ifindex(), dmabuf(), [2])["id"]
    ns.up()
    eq(queue_dmabuf(nl, ns.ifindex(), 2), bid, "queue 2 dmabuf after up")
    assert any(p.get("dmabuf") == bid for p in page_pools(nl, ns.ifindex()))


@test
def dma_switch_refused_while_bound():
    ns = ready_nsim()
    nl = netdev_nl()
    bind_rx(nl, ns.ifindex(), dmabuf(), [1])
    try:
        ns.set_dma(False)
    except OSError as e:
        eq(e.errno, errno.EBUSY, "errno of the dma switch")
    else:
        raise AssertionError("dma switch accepted while a queue is bound")
    assert ns.get_dma()
    nl.close()
    ns.set_dma(False)
    assert not ns.get_dma()


@test
def dma_switch_is_per_port_and_reversible():
    """The "dma" setting of one port changes nothing on its sibling (the bus
    device they share keeps one DMA mask for life), and turning it off and
    on again gives back exactly the behaviour of each state."""
    ns = Nsim(ports=2, queues=4)
    for port in (0, 1):
        set_hds(ns.ifindex(port))
        ns.up(port)
    nl = netdev_nl()
    defer(nl.close)

    def refused(port, what):
        expect_nl_error(lambda: bind_rx(nl, ns.ifindex(port), dmabuf(), [1]),
                        errno.EOPNOTSUPP, "Device doesn't support DMA")
        expect_nl_error(lambda: nl.bind_tx({"ifindex": ns.ifindex(port),
                                            "fd": dmabuf()}),
                        errno.EOPNOTSUPP, "Driver does not support netmem TX")
        eq(queue_dmabuf(nl, ns.ifindex(port), 1), None, what)

    def bound(port):
        nl2 = netdev_nl()
        fd = dmabuf()
        bid = bind_rx(nl2, ns.ifindex(port), fd, [1])["id"]
        eq(queue_dmabuf(nl2, ns.ifindex(port), 1), bid, f"port {port} queue 1")
        nl2.bind_tx({"ifindex": ns.ifindex(port), "fd": dmabuf()})
        nl2.close()
        wait_for(lambda: dmabuf_attachments(fd) == [], "the dma-buf to be detached")

    ns.set_dma(True, port=0)
    refused(1, "port 1 with DMA on port 0 only")
    bound(0)
    ns.set_dma(False, port=0)
    refused(0, "port 0 with DMA turned off")
    refused(1, "port 1 with DMA off everywhere")
    ns.set_dma(True, port=1)
    refused(0, "port 0 with DMA on port 1 only")
    bound(1)
    ns.set_dma(True, port=0)
    bound(0)


# --- errors, bind-rx ---------------------------------------------------------

@test
def err_no_dma():
    ns = ready_nsim(dma=False)
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf()
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), fd, [1]), errno.EOPNOTSUPP,
                    "Device doesn't support DMA")
    # Without a DMA device the fd is never looked at.
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), 9999, [1]), errno.EOPNOTSUPP,
                    "Device doesn't support DMA")


@test
def err_not_a_dmabuf():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = os.open("/dev/null", os.O_RDONLY)
    defer(os.close, fd)
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), fd, [1]), errno.EINVAL)
    eq(queue_dmabuf(nl, ns.ifindex(), 1), None, "queue 1 dmabuf")


@test
def err_closed_fd():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = udmabuf()
    os.close(fd)
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), fd, [1]), errno.EBADF)


@test
def err_no_queues():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf()
    expect_nl_error(lambda: nl.bind_rx({"ifindex": ns.ifindex(), "fd": fd}),
                    errno.EINVAL, miss_type="queues")


@test
def err_queue_out_of_range():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf()
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), fd, [99]), errno.EINVAL,
                    bad_attr=".queues.id")
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), fd, [4]), errno.EINVAL,
                    bad_attr=".queues.id")


@test
def err_tx_queue():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf()
    expect_nl_error(lambda: nl.bind_rx({"ifindex": ns.ifindex(), "fd": fd,
                                        "queues": [{"id": 1, "type": "tx"}]}),
                    errno.EINVAL, bad_attr=".queues.type")


@test
def err_hds_disabled():
    ns = ready_nsim(hds=False)
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf()
    # netdevsim reports split "enabled" until configured, but bind checks the
    # configured value.
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), fd, [1]), errno.EINVAL,
                    "tcp-data-split is disabled")
    set_hds(ns.ifindex(), split="disabled")
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), fd, [1]), errno.EINVAL,
                    "tcp-data-split is disabled")


@test
def err_hds_thresh_nonzero():
    ns = ready_nsim(hds=False)
    set_hds(ns.ifindex(), thresh=128)
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf()
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), fd, [1]), errno.EINVAL,
                    "hds-thresh is not zero")


@test
def err_queue_already_bound():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    a = bind_rx(nl, ns.ifindex(), dmabuf(), [1])["id"]
    fd = dmabuf()
    expect_nl_error(lambda: bind_rx(nl, ns.ifindex(), fd, [2, 1]), errno.EEXIST,
                    "designated queue already memory provider bound")
    # The failed bind left nothing behind: queue 2 is free, queue 1 keeps a.
    eq(queue_dmabuf(nl, ns.ifindex(), 2), None, "queue 2 dmabuf")
    eq(queue_dmabuf(nl, ns.ifindex(), 1), a, "queue 1 dmabuf")
    wait_for(lambda: dmabuf_attachments(fd) == [], "the failed bind's detach")


@test
def err_no_such_device():
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf()
    expect_nl_error(lambda: bind_rx(nl, 1_000_000, fd, [0]), errno.ENODEV)


# --- permissions -------------------------------------------------------------

@test
def perm_unprivileged_bind_rx_eperm():
    ns = ready_nsim()
    fd = dmabuf()
    ifindex = ns.ifindex()

    def child():
        drop_to_nobody()
        nl = netdev_nl()
        return errno_of(lambda: bind_rx(nl, ifindex, fd, [1]))

    eq(in_child(child), "EPERM", "unprivileged bind-rx")


@test
def perm_bind_rx_as_userns_owner():
    """bind-rx is uns-admin: the owner of a user+net namespace may bind there."""
    ns = ready_nsim()
    fd = dmabuf()
    name = ns.ifname()
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(w2)
            drop_to_nobody()
            unshare(CLONE_NEWUSER | CLONE_NEWNET)
            map_root_to(NOBODY)
            os.write(w, b"ready\n")
            os.read(r2, 16)  # the device has been moved in
            ifindex = socket.if_nametoindex(name)
            nl = netdev_nl()
            bid = bind_rx(nl, ifindex, fd, [1])["id"]
            # The move took the device down; queue-get wants it up.
            up = subprocess.run(["ip", "link", "set", "dev", name, "up"],
                                capture_output=True, text=True)
            assert up.returncode == 0, up.stderr
            res = f"bound {bid} queue1={queue_dmabuf(nl, ifindex, 1)}"
        except BaseException as e:
            for line in traceback.format_exc().splitlines():
                print(f"# child: {line}", flush=True)
            res = f"exception {describe_error(e)}"
        os.write(w, (res + "\n").encode())
        os._exit(0)
    os.close(w)
    os.close(r2)
    with os.fdopen(r) as rf:
        assert rf.readline().strip() == "ready"
        os.system(f"ip link set dev {name} netns {pid}")
        os.write(w2, b"go\n")
        os.close(w2)
        res = rf.readline().strip()
    os.waitpid(pid, 0)
    parts = res.split()
    assert parts[0] == "bound", res
    eq(parts[2], f"queue1={parts[1]}", "queue 1 dmabuf inside the namespace")
    # The child and its namespace are gone: the device went back to init_net
    # (netdevsim is not netns-local) and the binding with the socket.


@test
def perm_bind_rx_userns_not_owner_eperm():
    """A user namespace's owner has no rights over init_net's devices."""
    ns = ready_nsim()
    fd = dmabuf()
    ifindex = ns.ifindex()

    def child():
        drop_to_nobody()
        unshare(CLONE_NEWUSER)
        nl = netdev_nl()
        return errno_of(lambda: bind_rx(nl, ifindex, fd, [1]))

    eq(in_child(child), "EPERM", "bind-rx on init_net from a user namespace")


# --- bind-tx -----------------------------------------------------------------

@test
def bind_tx_rules():
    ns = ready_nsim()
    nl = netdev_nl()
    defer(nl.close)
    fd = dmabuf()
    # A device without netmem TX at all: loopback.
    expect_nl_error(lambda: nl.bind_tx({"ifindex": 1, "fd": fd}),
                    errno.EOPNOTSUPP, "Driver does not support netmem TX")
    expect_nl_error(lambda: nl.bind_tx({"ifindex": ns.ifindex()}), errno.EINVAL,
                    miss_type="fd")
    expect_nl_error(lambda: nl.bind_tx({"ifindex": 1_000_000, "fd": fd}),
                    errno.ENODEV)
    # netdevsim offers netmem TX only with DMA on (it reads net_iov payload
    # through their DMA addresses); off, it is the driver without it, and
    # turning DMA off again withdraws it.
    off = ready_nsim(dma=False)
    expect_nl_error(lambda: nl.bind_tx({"ifindex": off.ifindex(), "fd": fd}),
                    errno.EOPNOTSUPP, "Driver does not support netmem TX")
    off.set_dma(True)
    off.set_dma(False)
    expect_nl_error(lambda: nl.bind_tx({"ifindex": off.ifindex(), "fd": fd}),
                    errno.EOPNOTSUPP, "Driver does not support netmem TX")
    bid = nl.bind_tx({"ifindex": ns.ifindex(), "fd": fd})["id"]
    assert bid > 0
    eq(dmabuf_attachments(fd), [nsim_dev_name(ns)], "TX attachment")
    nl.close()
    wait_for(lambda: dmabuf_attachments(fd) == [], "the TX binding to be freed")
    ifindex = ns.ifindex()

    # bind-tx carries no permission flag (unlike bind-rx): an unprivileged
    # caller may bind a dma-buf it holds for sending.
    def child():
        drop_to_nobody()
        nl = netdev_nl()
        return errno_of(lambda: nl.bind_tx({"ifindex": ifindex, "fd": fd}))

    eq(in_child(child), "ok", "unprivileged bind-tx")


if __name__ == "__main__":
    run_tests("nl_bind")
