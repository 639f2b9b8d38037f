#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A seeded, bounded netlink fuzzer for bind-rx (with and without a refill
ring), bind-tx, queue-get and page-pool-get.

Messages are built by hand (not through YNL, which refuses malformed ones)
from a seeded PRNG: valid requests mixed with wrong attribute types and
lengths, truncated and oversized attributes, nested garbage, duplicate,
missing and unknown attributes, wrong flags and versions, random fds,
ifindexes and queue ids. Every reference to the test's objects is symbolic
(this device, this dma-buf, a pool that exists), so the same seed sends the
same messages on both flavors whatever the ids their boot handed out.

Writes one line per message, "index op errno hex", to
DEVMEM_OUT/nl_fuzz.txt; the host compares the two flavors' files line by
line (the same errno for every message: tools/check.sh,
fuzz:same_errno_both_flavors) and prints the seed and the message on a
mismatch. In the VM it checks that nothing is left behind once the sockets
are closed; splats fail the run.

NL_FUZZ_SEED (default 1) and NL_FUZZ_COUNT (default 10000) choose the run.
"""

import errno
import fcntl
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (Nsim, dma_mappings, dmabuf, dmabuf_attachments, eq,  # noqa: E402
                    genl_socket, metric, netdev_nl, page_pools, run_tests,
                    set_hds, test, wait_for)

SEED = int(os.environ.get("NL_FUZZ_SEED", "1"))
COUNT = int(os.environ.get("NL_FUZZ_COUNT", "10000"))
# A socket (and the bindings it made) lives for this many messages.
SOCK_LIFE = 64

NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 1, 4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 1 << 15


class Spec:
    """Family id, command numbers and attribute numbers, from the YNL spec."""

    def __init__(self):
        nl = netdev_nl()
        self.family = nl.nlproto.family_id
        self.cmd = {op: nl.ops[op].req_value
                    for op in ("bind-rx", "bind-tx", "queue-get", "page-pool-get")}
        self.attr = {}
        for aset in ("dmabuf", "queue-id", "queue", "page-pool", "refill-ring"):
            self.attr[aset] = {n: a.value for n, a in nl.attr_sets[aset].attrs.items()}
        self.queue_type_rx = nl.consts["queue-type"].entries["rx"].value
        self.queue_type_tx = nl.consts["queue-type"].entries["tx"].value
        nl.close()


def nla(atype, payload, length=None):
    """An attribute; `length` overrides nla_len (to lie about it)."""
    n = 4 + len(payload) if length is None else length
    return struct.pack("HH", n, atype) + payload + b"\0" * (-len(payload) % 4)


class Fuzzer:
    def __init__(self, spec, rng, env):
        self.s, self.r, self.env = spec, rng, env

    # --- symbolic values -------------------------------------------------

    def ifindex(self):
        return self.r.choice([
            lambda: self.env["ifindex"], lambda: self.env["ifindex"],
            lambda: 1, lambda: 0, lambda: self.r.getrandbits(32),
            lambda: self.env["ifindex"] + 1000])()

    def fd(self):
        return self.r.choice([
            lambda: self.env["fd"], lambda: self.env["fd"], lambda: self.env["memfd"],
            lambda: 0xffffffff, lambda: self.r.randrange(0, 4096),
            lambda: self.r.getrandbits(32)])()

    def queue_id(self):
        return self.r.choice([0, 1, 2, 3, 3, 4, 255, 0xffffffff,
                              self.r.getrandbits(32)])

    def queue_type(self):
        return self.r.choice([self.s.queue_type_rx] * 4 + [self.s.queue_type_tx, 2, 77])

    def u32(self, v):
        """A u32 attribute's payload, now and then the wrong size."""
        k = self.r.random()
        if k < 0.90:
            return struct.pack("I", v & 0xffffffff)
        if k < 0.94:
            return struct.pack("H", v & 0xffff)
        if k < 0.97:
            return struct.pack("Q", v)
        return self.r.randbytes(self.r.randrange(0, 9))

    # --- attributes -------------------------------------------------------

    def queues_nest(self):
        qa = self.s.attr["queue-id"]
        out = b""
        for _ in range(self.r.choice([0, 1, 1, 1, 2, 3, 5])):
            k = self.r.random()
            if k < 0.85:
                inner = b""
                if self.r.random() < 0.95:
                    inner += nla(qa["id"], self.u32(self.queue_id()))
                if self.r.random() < 0.95:
                    inner += nla(qa["type"], self.u32(self.queue_type()))
                if self.r.random() < 0.05:
                    inner += nla(self.r.randrange(3, 40), self.r.randbytes(4))
                out += nla(NLA_F_NESTED | self.s.attr["dmabuf"]["queues"], inner)
            elif k < 0.95:
                # Nested garbage.
                out += nla(NLA_F_NESTED | self.s.attr["dmabuf"]["queues"],
                           self.r.randbytes(self.r.randrange(0, 24)))
            else:
                # Not flagged as nested.
                out += nla(self.s.attr["dmabuf"]["queues"],
                           nla(1, struct.pack("I", 1)))
        return out

    def ring_nest(self):
        """A refill-ring nest: mostly the test's ring memfd with valid or
        boundary values, sometimes another fd, garbage or a missing member."""
        ra = self.s.attr["refill-ring"]
        inner = b""
        if self.r.random() < 0.9:
            inner += nla(ra["fd"], self.u32(self.r.choice([
                self.env["ring"], self.env["ring"], self.env["ring"],
                self.env["memfd"], self.env["fd"], 0xffffffff])))
        if self.r.random() < 0.9:
            off = self.r.choice([0, 0, 0, 4096, 1, 1 << 40, (1 << 64) - 4096])
            inner += nla(ra["offset"], struct.pack("Q", off)
                         if self.r.random() < 0.95 else self.r.randbytes(4))
        if self.r.random() < 0.9:
            inner += nla(ra["entries"], self.u32(self.r.choice(
                [64, 64, 1, 2, 3, 32768, 65536, 0, 0xffffffff])))
        if self.r.random() < 0.05:
            inner += nla(self.r.choice([ra["head-offset"], ra["consumed"],
                                        self.r.randrange(9, 40)]),
                         self.r.randbytes(4))
        if self.r.random() < 0.05:
            return nla(self.s.attr["dmabuf"]["refill-ring"], inner)  # not nested
        return nla(NLA_F_NESTED | self.s.attr["dmabuf"]["refill-ring"], inner)

    def mangle(self, attrs):
        """Duplicates, unknown attributes, lies about lengths, truncation."""
        k = self.r.random()
        if k < 0.55 or not attrs:
            return attrs
        if k < 0.65:
            return attrs + attrs[:8]                        # duplicate/garbage tail
        if k < 0.73:
            return attrs + nla(self.r.randrange(5, 64), self.r.randbytes(4))
        if k < 0.81:
            return attrs[:self.r.randrange(0, len(attrs))]  # truncated
        if k < 0.89:
            # First attribute claims more than there is.
            n = struct.unpack_from("H", attrs)[0]
            return struct.pack("H", n + self.r.randrange(1, 512)) + attrs[2:]
        if k < 0.95:
            # First attribute claims less than its header.
            return struct.pack("H", self.r.randrange(0, 4)) + attrs[2:]
        return self.r.randbytes(self.r.randrange(0, 64))   # all garbage

    def valid_bind(self, op):
        """A well-formed bind on this device and dma-buf: what reaches the
        provider (success, EBUSY on a bound queue, ERANGE, ...)."""
        a, qa = self.s.attr["dmabuf"], self.s.attr["queue-id"]
        msg = (nla(a["ifindex"], struct.pack("I", self.env["ifindex"]))
               + nla(a["fd"], struct.pack("I", self.env["fd"])))
        if op == "bind-rx":
            for _ in range(self.r.choice([1, 1, 2, 3])):
                inner = (nla(qa["id"], struct.pack("I", self.r.choice([0, 1, 2, 3, 4])))
                         + nla(qa["type"], struct.pack("I", self.s.queue_type_rx)))
                msg += nla(NLA_F_NESTED | a["queues"], inner)
        return msg

    def bind(self, op):
        a = self.s.attr["dmabuf"]
        parts = []
        if self.r.random() < 0.92:
            parts.append(nla(a["ifindex"], self.u32(self.ifindex())))
        if self.r.random() < 0.92:
            parts.append(nla(a["fd"], self.u32(self.fd())))
        if op == "bind-rx" and self.r.random() < 0.92:
            parts.append(self.queues_nest())
        if op == "bind-tx" and self.r.random() < 0.1:
            parts.append(self.queues_nest())
        if self.r.random() < 0.05:
            parts.append(nla(a["id"], self.u32(self.r.randrange(0, 8))))
        self.r.shuffle(parts)
        return b"".join(parts)

    def queue_get(self):
        a = self.s.attr["queue"]
        parts = []
        for name, val in (("ifindex", self.ifindex), ("id", self.queue_id),
                          ("type", self.queue_type)):
            if self.r.random() < 0.9:
                parts.append(nla(a[name], self.u32(val())))
        if self.r.random() < 0.05:
            parts.append(nla(a["dmabuf"], self.u32(1)))
        return b"".join(parts)

    def page_pool_get(self):
        a = self.s.attr["page-pool"]
        pools = self.env["pools"]
        pid = self.r.choice([lambda: pools[self.r.randrange(len(pools))] if pools else 0,
                             lambda: 0, lambda: (1 << 40) + self.r.getrandbits(20),
                             lambda: 0xffffffff])()
        parts = []
        if self.r.random() < 0.9:
            k = self.r.random()
            payload = (struct.pack("I", pid & 0xffffffff) if k < 0.6 else
                       struct.pack("Q", pid) if k < 0.9 else self.r.randbytes(3))
            parts.append(nla(a["id"], payload))
        if self.r.random() < 0.1:
            parts.append(nla(a["ifindex"], self.u32(self.ifindex())))
        return b"".join(parts)

    def message(self, seq):
        """(op name, bytes) of the next message. "bind-rx-ring" is a bind-rx
        with a refill-ring nest: only the Rust provider has rings, so
        tools/fuzz-compare.py compares those by their own rule, and the
        test sends them on a socket of their own, closed right after, so
        that a binding Rust made does not outlive the message."""
        op = self.r.choice(["bind-rx"] * 4 + ["bind-rx-ring"] + ["bind-tx"] * 2
                           + ["queue-get"] * 2 + ["page-pool-get"] * 2)
        attrs = {"bind-rx": lambda: self.bind("bind-rx"),
                 "bind-rx-ring": lambda: self.bind("bind-rx"),
                 "bind-tx": lambda: self.bind("bind-tx"),
                 "queue-get": self.queue_get,
                 "page-pool-get": self.page_pool_get}[op]()
        if op.startswith("bind") and self.r.random() < 0.3:
            attrs = self.valid_bind("bind-rx" if op == "bind-rx-ring" else op)
        else:
            attrs = self.mangle(attrs)
        if op == "bind-rx-ring":
            attrs += self.ring_nest()
        flags = NLM_F_REQUEST | NLM_F_ACK
        if self.r.random() < 0.08:
            flags |= NLM_F_DUMP
        cmd = self.s.cmd["bind-rx" if op == "bind-rx-ring" else op]
        if self.r.random() < 0.02:
            cmd = self.r.randrange(0, 256)
        version = 1 if self.r.random() < 0.97 else self.r.randrange(0, 256)
        body = struct.pack("BBH", cmd, version, 0) + attrs
        return op, struct.pack("IHHII", 16 + len(body), self.s.family, flags, seq, 0) + body


def live_pools(watch, ns):
    """The device's page pools not yet detached from it, in the order of
    their queues' NAPI instances. A detached pool lives until its buffers
    come back, on its own time: naming one could find it on one flavor and
    not the other. And a queue Rust bound with a ring and restarted has a
    newer pool than on C: ordered by ID, the same position would name
    pools of different queues on the two flavors."""
    live = [p for p in page_pools(watch, ns.ifindex()) if "detach-time" not in p]
    return [p["id"] for p in sorted(live, key=lambda p: (p.get("napi-id", 0), p["id"]))]


def transact(sock, msg, seq):
    """Sends one request; returns its errno (0: success), reading every
    reply up to its ack, the end of its dump, or its error."""
    try:
        sock.send(msg)
    except OSError as e:
        return e.errno
    while True:
        data = sock.recv(1 << 17)
        off = 0
        while off + 16 <= len(data):
            length, mtype, _, mseq, _ = struct.unpack_from("IHHII", data, off)
            if length < 16:
                raise AssertionError(f"bad netlink reply length {length}")
            if mseq == seq and mtype in (NLMSG_ERROR, NLMSG_DONE):
                code = struct.unpack_from("i", data, off + 16)[0] if length >= 20 else 0
                return -code
            off += (length + 3) & ~3


@test
def fuzz_bind_queue_page_pool():
    ns = Nsim(ports=1, queues=4)
    ns.set_dma(True)
    set_hds(ns.ifindex())
    ns.up()
    fd = dmabuf(64)
    memfd = os.memfd_create("nl-fuzz")
    # A memfd a refill ring may lie in: sealed against shrinking, 66 pages
    # (the largest ring, at an offset of a page).
    ring = os.memfd_create("nl-fuzz-ring", os.MFD_ALLOW_SEALING)
    os.ftruncate(ring, 66 * 4096)
    fcntl.fcntl(ring, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
    watch = netdev_nl()
    env = {"ifindex": ns.ifindex(), "fd": fd, "memfd": memfd, "ring": ring,
           "pools": live_pools(watch, ns)}
    spec = Spec()
    fz = Fuzzer(spec, random.Random(SEED), env)
    print(f"# seed {SEED}, {COUNT} messages", flush=True)
    out = open(os.path.join(os.environ.get("DEVMEM_OUT", "/tmp"), "nl_fuzz.txt"), "w")
    counts = {}
    rings = 0
    sock = None
    for i in range(COUNT):
        if i % SOCK_LIFE == 0:
            if sock:
                sock.close()
            sock = genl_socket(timeout=30)
            env["pools"] = live_pools(watch, ns)
        seq = i + 1
        op, msg = fz.message(seq)
        if op == "bind-rx-ring":
            own = genl_socket(timeout=30)
            err = transact(own, msg, seq)
            own.close()
            # A queue Rust bound and the close restarted has a new page
            # pool, and the old one lingers until its buffers are back:
            # both flavors name the pools that are live now.
            env["pools"] = live_pools(watch, ns)
        else:
            err = transact(sock, msg, seq)
        assert err >= 0, f"message {i}: positive netlink error code {-err}"
        counts[err] = counts.get(err, 0) + 1
        if op == "bind-rx-ring" and not err:
            rings += 1
        out.write(f"{i} {op} {err} {msg.hex()}\n")
    sock.close()
    out.close()
    os.close(memfd)
    os.close(ring)
    summary = ", ".join(f"{errno.errorcode.get(e, e) if e else 'ok'} {n}"
                        for e, n in sorted(counts.items()))
    print(f"# errnos: {summary}", flush=True)
    metric("nl_fuzz.messages", COUNT)
    metric("nl_fuzz.accepted", counts.get(0, 0))
    metric("nl_fuzz.ring_binds_accepted", rings)
    assert counts.get(0, 0) > 0, "no message was accepted: the fuzzer tests only the parser"
    # Every binding went with its socket.
    wait_for(lambda: dmabuf_attachments(fd) == [], "the dma-buf to be detached")
    eq(dma_mappings(ns), [], "DMA mappings after the sockets closed")
    eq([p for p in page_pools(watch, ns.ifindex()) if "dmabuf" in p], [],
       "devmem page pools after the sockets closed")
    watch.close()


if __name__ == "__main__":
    run_tests("nl_fuzz")
