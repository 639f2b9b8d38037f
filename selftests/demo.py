#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The demo: devmem TCP between two netdevsim ports in two network
namespaces. Upstream ncdevmem binds a udmabuf to RX queue 3 of 4 on the
local port (header split on, RSS kept off the queue, a 5-tuple rule steering
the flow to it) and validates every byte it receives; the remote namespace
streams DEMO_MIB MiB (default 256) of its 7-byte line pattern with socat.

Prints throughput, the bound pool's recycling counters (PAGE_POOL_STATS)
and the binding's own state (dmabuf-get: net_iovs free, lent to the pool,
held by the socket; allocation failures), as last sampled while ncdevmem
ran, and exits non-zero unless ncdevmem validated the whole stream.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import (NsimPair, cleanup_all, dmabuf_dump, netdev_nl,  # noqa: E402
                    tcp_listening)

NCDEVMEM = os.path.join(os.environ.get("DEVMEM_TOOLS", "."), "ncdevmem")
MIB = int(os.environ.get("DEMO_MIB", "256"))
PORT = 5201
STATS = ("alloc-fast", "alloc-slow", "alloc-refill", "recycle-cached",
         "recycle-cache-full", "recycle-ring", "recycle-ring-full",
         "recycle-released-refcnt")
BINDING = ("niov-size", "niov-count", "niov-free", "niov-pp", "tokens",
           "alloc-fail")


def say(msg):
    print(f"demo: {msg}", flush=True)


class PoolStats(threading.Thread):
    """Samples the stats of the pools bound to the dma-buf, and of the
    binding, until stopped; both go away when ncdevmem exits."""

    def __init__(self, ifindex):
        super().__init__(daemon=True)
        self.ifindex, self.last, self.stop = ifindex, {}, threading.Event()
        self.binding = {}

    def run(self):
        nl = netdev_nl()
        while not self.stop.is_set():
            try:
                bound = {p["id"] for p in nl.page_pool_get({}, dump=True)
                         if p.get("ifindex") == self.ifindex and p.get("dmabuf")}
                for s in nl.page_pool_stats_get({}, dump=True):
                    pid = s["info"]["id"]
                    if pid in bound:
                        self.last[pid] = s
                for bid, b in dmabuf_dump(nl).items():
                    if b.get("ifindex") == self.ifindex and b["direction"] == "rx":
                        self.binding[bid] = b
            except Exception as e:  # the device may be mid-teardown
                say(f"stats sample failed: {e!r}")
            self.stop.wait(0.5)
        nl.close()


def main():
    pair = NsimPair(queues=4)
    pair.local.set_dma(True)
    ifindex = pair.local.ifindex()
    say(f"netdevsim pair {pair.ifname} <-> {pair.remote_ifname} "
        f"(netns {pair.REMOTE_NS}), 4 queues, DMA on")

    t0 = time.monotonic()
    # ncdevmem logs every frag: to a file, so that it never blocks on a pipe
    # nobody is reading while the stream runs.
    log = open("/tmp/demo-ncdevmem.log", "w+")
    srv = subprocess.Popen([NCDEVMEM, "-l", "-f", pair.ifname, "-s", pair.V6[0],
                            "-p", str(PORT), "-c", pair.V6[1], "-v", "7"],
                           stdout=log, stderr=subprocess.STDOUT)
    while not tcp_listening(PORT):
        if srv.poll() is not None or time.monotonic() - t0 > 60:
            log.seek(0)
            print(log.read()[-3000:])
            say("ncdevmem did not start listening")
            return 1
        time.sleep(0.05)
    say(f"ncdevmem bound a udmabuf and listens ({time.monotonic() - t0:.1f} s)")

    stats = PoolStats(ifindex)
    stats.start()
    say(f"streaming {MIB} MiB from the remote namespace...")
    t1 = time.monotonic()
    send = (f"ip netns exec {pair.REMOTE_NS} sh -c \"yes \\$(printf "
            f"'\\001\\002\\003\\004\\005\\006') | head -c {MIB}M | socat -u - "
            f"TCP6:[{pair.V6[0]}]:{PORT},bind=[{pair.V6[1]}]:{PORT}\"")
    sender = subprocess.run(send, shell=True, capture_output=True, text=True,
                            timeout=1800)
    try:
        srv.wait(timeout=600)
    except subprocess.TimeoutExpired:
        srv.send_signal(signal.SIGKILL)
        srv.wait()
    log.seek(0)
    out = log.read()
    log.close()
    elapsed = time.monotonic() - t1
    stats.stop.set()
    stats.join()

    # ncdevmem's own messages and the commands it ran, without its per-frag
    # chatter (whose lines its stdout and stderr interleave mid-line).
    keep = ("ncdevmem", "Running:", "Failed")
    summary = [l for l in out.strip().splitlines() if l.startswith(keep)]
    print("\n".join(summary[-8:]))
    if sender.returncode:
        say(f"sender failed ({sender.returncode}): {sender.stderr.strip()}")
    received = [int(x) for x in re.findall(r"total_received=(\d+)", out)]
    got = max(received) if received else 0
    # ncdevmem tolerates up to 20 mismatches before failing; we tolerate none.
    mismatches = out.count("Failed validation")
    ok = (srv.returncode == 0 and sender.returncode == 0 and
          got == MIB << 20 and not mismatches)
    say(f"ncdevmem exit {srv.returncode}, received {got} of {MIB << 20} bytes "
        f"into the dma-buf, {mismatches} byte mismatches")
    say(f"throughput: {MIB / elapsed:.1f} MiB/s ({MIB} MiB in {elapsed:.1f} s, TCG)")
    for pid, s in sorted(stats.last.items()):
        say(f"page pool {pid}: " + ", ".join(f"{k} {s.get(k, 0)}" for k in STATS))
    if not stats.last:
        say("no page-pool stats sampled for the bound pools")
        ok = False
    for bid, b in sorted(stats.binding.items()):
        say(f"binding {bid}: " + ", ".join(f"{k} {b.get(k, 0)}" for k in BINDING))
    if not stats.binding:
        say("no dmabuf-get sample of the binding")
        ok = False
    with open(os.path.join(os.environ.get("DEVMEM_OUT", "/tmp"), "demo.result"), "w") as f:
        f.write(f"{'ok' if ok else 'FAILED'} {MIB} {elapsed:.2f} {got}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        cleanup_all()
    sys.exit(rc)
