# SPDX-License-Identifier: GPL-2.0
"""netkit queue leases for the devmem-rs selftests: a guest netns, a netkit
pair, and a process in the guest that keeps its netdev socket."""

import ctypes
import json
import os
import socket

from devmem import bind_rx, defer, describe_error, netdev_nl, queue_dmabuf, rtnl, sh
from pyynl.lib import Netlink

GUEST_NS = "devmem-guest"
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def guest_netns():
    """A netns for the netkit guest, in which init_net has nsid 0."""
    sh(f"ip netns add {GUEST_NS}")
    defer(sh, f"ip netns del {GUEST_NS}", False)
    sh("ip netns attach devmem-init 1")
    defer(sh, "ip netns del devmem-init", False)
    sh(f"ip -n {GUEST_NS} netns set devmem-init 0")
    sh(f"ip -n {GUEST_NS} link set lo up")


def netkit_pair():
    """Create a netkit pair (2 RX queues); return (host, guest) names."""
    def netkits():
        links = json.loads(sh("ip -d -j link show"))
        return {l["ifindex"]: l["ifname"] for l in links
                if l.get("linkinfo", {}).get("info_kind") == "netkit"}
    before = netkits()
    rt = rtnl()
    rt.newlink({"linkinfo": {"kind": "netkit",
                             "data": {"mode": "l2", "policy": "forward",
                                      "peer-policy": "forward"}},
                "num-rx-queues": 2},
               flags=[Netlink.NLM_F_CREATE, Netlink.NLM_F_EXCL])
    rt.close()
    new = sorted((i, n) for i, n in netkits().items() if i not in before)
    assert len(new) == 2, new
    host, guest = new[1][1], new[0][1]
    defer(sh, f"ip link del dev {host}", False)
    return host, guest


def enter_netns(name):
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)


class Guest:
    """A child process in the guest netns that keeps its netdev socket (and
    so its bindings) until told to exit. Commands go over a pipe."""

    def __init__(self):
        self.r_cmd, self.w_cmd = os.pipe()
        self.r_res, self.w_res = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            self._serve()
        os.close(self.r_cmd)
        os.close(self.w_res)
        self.res = os.fdopen(self.r_res)
        defer(self.stop)

    def _serve(self):
        os.close(self.w_cmd)
        os.close(self.r_res)
        cmds = os.fdopen(self.r_cmd)
        out = os.fdopen(self.w_res, "w")
        nl = None
        try:
            enter_netns(GUEST_NS)
            nl = netdev_nl()
            for line in cmds:
                try:
                    res = eval(line, {"nl": nl, "bind_rx": bind_rx,  # noqa: S307
                                      "queue_dmabuf": queue_dmabuf,
                                      "ifindex": socket.if_nametoindex})
                    out.write(json.dumps(["ok", res]) + "\n")
                except Exception as e:  # reported to the parent
                    out.write(json.dumps(["err", describe_error(e)]) + "\n")
                out.flush()
        finally:
            os._exit(0)

    def do(self, expr):
        os.write(self.w_cmd, (expr + "\n").encode())
        status, res = json.loads(self.res.readline())
        if status != "ok":
            raise AssertionError(f"guest: {expr}: {res}")
        return res

    def stop(self):
        if self.pid:
            os.close(self.w_cmd)
            os.waitpid(self.pid, 0)
            self.res.close()
            self.pid = 0


def lease_queue(ns, queue=1):
    """Leases RX queue `queue` of netdevsim `ns` to a netkit device in
    GUEST_NS, through a Guest process (start it after opening any fd it
    must see). Returns (host, guest, guest process, guest ifindex, virtual
    queue id)."""
    guest_netns()
    host, guest = netkit_pair()
    sh(f"ip link set dev {guest} netns {GUEST_NS}")
    sh(f"ip link set dev {host} up")
    sh(f"ip -n {GUEST_NS} link set dev {guest} up")
    g = Guest()
    gidx = g.do(f"ifindex({guest!r})")
    vq = g.do(f"nl.queue_create({{'ifindex': {gidx}, 'type': 'rx', 'lease': "
              f"{{'ifindex': {ns.ifindex()}, 'queue': {{'id': {queue}, 'type': 'rx'}}, "
              f"'netns-id': 0}}}})['id']")
    return host, guest, g, gidx, vq
