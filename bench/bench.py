#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The recycling benchmarks, run inside one VM boot (tools/bench.sh boots
each flavor several times and compares them).

Writes one "row value unit" line per measurement to OUT (argument 1):
  pp:*         page_pool paths on a devmem binding and on a plain pool, ns
               per element (bench/devmem_bench.c, "pp" command)
  fill:*       the provider's alloc+free against fill level (0, 50, 90,
               99% held) and dma-buf layout, ns per pair ("fill" command)
  bind:* unbind:*  bind-rx and unbind (socket close) latency over netlink,
               ms, against dma-buf size and source
  bind-cpu:* unbind-cpu:*  the CPU time the calling thread spent in them
               (CLOCK_THREAD_CPUTIME_ID), ms: the work, without the waits
               for grace periods and queue restarts that make most of an
               unbind's latency (pyynl's and netlink's share is the same on
               both flavors)
  tcp:*        devmem TCP on the netdevsim pair (upstream ncdevmem,
               validated) and plain TCP recv: MiB/s and system CPU s per GiB
  niov:*       devmem TCP into 4, 16 and 64 KiB net_iovs (bind-rx
               rx-page-size; a Python receiver, as ncdevmem of 7.2 has no
               option for it), frags given back with SO_DEVMEM_DONTNEED:
               MiB/s, system CPU s per GiB (the whole guest's, sender and
               softirqs included), tokens and syscalls per GiB
  ring:*       the same streams received in C (bench/user/devmem_rx.c),
               frags given back with SO_DEVMEM_DONTNEED and through a
               refill ring (Rust only; C refuses the ring and writes only
               the DONTNEED rows): the receiver's CPU time per GiB (exact,
               nearly all of it system time), the whole guest's system
               CPU, MiB/s, frags, syscalls
  scale:*      bind-rx, unbind and the free after it, of 1 to 8 GiB dma-bufs:
               ms (bind-cpu, unbind-cpu: CPU time as above; map-alone-cpu,
               unmap-alone-cpu: the same dma-buf mapped and unmapped for the
               same device beside the binding, without devmem, a control
               for the share both flavors run alike), DMA segments,
               kernel memory grown per net_iov and per GiB (tools/bench.sh
               runs these in boots of their own, with a larger VM)

BENCH_SCALE=smoke runs every row once with tiny counts (the bench:smoke test
of make check, which asserts only that numbers come out).
"""

import errno
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "selftests", "lib"))
from devmem import (MSG_SOCK_DEVMEM, SCM_DEVMEM_DMABUF, DevmemRx,  # noqa: E402
                    NlError, NsimPair, PAGE_SIZE, RefillRing, bind_rx,
                    cleanup_all, dmabuf_attachments, dmabuf_get, netdev_nl,
                    ready_nsim, system_heap, tcp_listening, udmabuf,
                    udmabuf_scattered, udmabuf_small_pages, unheld, wait_for)

RUN = "/sys/kernel/debug/devmem_bench/run"
SMOKE = os.environ.get("BENCH_SCALE") == "smoke"
NCDEVMEM = os.path.join(os.environ.get("DEVMEM_TOOLS", "."), "ncdevmem")
DEVMEM_RX = os.path.join(os.environ.get("DEVMEM_TOOLS", "."), "devmem_rx")

results = []
# Where main() writes the rows, each as it comes, so that a boot that dies
# (the OOM killer at the largest sizes) keeps the rows it finished.
OUT = None


def emit(row, value, unit):
    results.append((row, value, unit))
    print(f"bench: {row} {value:.3f} {unit}", flush=True)
    if OUT:
        with open(OUT, "a") as f:
            f.write(f"{row} {value:.4f} {unit}\n")


def kbench(cmd):
    """Runs one in-kernel bench command; returns {name: ns per element}."""
    fd = os.open(RUN, os.O_RDWR)
    try:
        os.write(fd, cmd.encode())
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 65536).decode()
    finally:
        os.close(fd)
    out = {}
    for line in text.splitlines():
        name, value = line.split()
        out[name] = float(value)
    if not out:
        raise RuntimeError(f"bench command {cmd!r} gave no numbers")
    return out


def rows_pp():
    """Row 1: page_pool paths, devmem binding (16 MiB udmabuf on huge pages,
    a few segments, on netdevsim RX queue 1) against a plain page_pool; then
    the devmem paths again on a binding of one segment per page (a udmabuf
    over 4 KiB pages no two of which are adjacent, 64 MiB) with 90% of
    its net_iovs held (16 MiB, 50% in smoke): the rest must leave room for
    the slow row, the ring, the cache and the device's own pool."""
    ns = ready_nsim()
    nl = netdev_nl()
    bind_rx(nl, ns.ifindex(), udmabuf(pages=4096), [1])
    count = 1000 if SMOKE else 200000
    for name, v in kbench(f"pp {ns.ifindex()} 1 {count}").items():
        emit(f"pp:{name}", v, "ns")
    nl.close()

    mib, hold = (16, 50) if SMOKE else (64, 90)
    nl = netdev_nl()
    fd = udmabuf_scattered(mib << 20)
    bind_rx(nl, ns.ifindex(), fd, [1])
    for name, v in kbench(f"pp {ns.ifindex()} 1 {count} {hold}").items():
        if name.endswith("_segments"):
            # The layout both flavors were measured on (memfd pages that
            # happen to be contiguous share a segment).
            emit(f"pp:{name}", v, "segments")
        else:
            emit(f"pp:{name}", v, "ns")
    nl.close()
    ns.delete()
    # Freeing a binding of 16384 segments takes a while (in a work item):
    # let it finish before the next row is timed.
    wait_for(lambda: dmabuf_attachments(fd) == [], "the held binding to be freed", 120)
    os.close(fd)
    time.sleep(1)


def rows_fill():
    """Row 2: alloc+free against fill level and layout (64 MiB binding)."""
    count, mib = (100, 4) if SMOKE else (2000, 64)
    for layout in ("one", "pages"):
        for name, v in kbench(f"fill {layout} {count} {mib}").items():
            emit(f"fill:{name}", v, "ns")


SOURCES = {
    "udmabuf_huge": lambda size: udmabuf(pages=size // PAGE_SIZE),
    "udmabuf_4k": udmabuf_small_pages,
    "system_heap": system_heap,
}


def rows_bind():
    """Row 3: bind-rx and unbind latency against size and source. Each
    sample records the DMA segment count of its binding: a udmabuf on 4 KiB
    pages has as many as the guest's memory is fragmented when it is made,
    and both bind and unbind grow with it. The segments row is the median
    bind sample's, so that the flavors' rows can be compared like with
    like."""
    ns = ready_nsim()
    sizes = (1,) if SMOKE else (1, 16, 256, 1024)
    for src, make in SOURCES.items():
        for mib in sizes:
            samples = []
            # Making a big buffer (zeroing its memory) costs far more than
            # binding it: big sizes are sampled once per boot.
            for _ in range(1 if SMOKE or mib >= 256 else 3):
                fd = make(mib << 20)
                nl = netdev_nl()
                c0, t0 = time.thread_time(), time.perf_counter()
                bind_rx(nl, ns.ifindex(), fd, [1])
                t1, c1 = time.perf_counter(), time.thread_time()
                segs = kbench(f"segs {ns.ifindex()} 1")["segments"]
                c2, t2 = time.thread_time(), time.perf_counter()
                nl.close()
                t3, c3 = time.perf_counter(), time.thread_time()
                # The binding is freed in a work item after the close: let
                # that finish, so it does not compete with the next sample.
                wait_for(lambda: dmabuf_attachments(fd) == [],
                         "the binding to be freed", 120)
                os.close(fd)
                samples.append(((t1 - t0) * 1e3, (t3 - t2) * 1e3, segs,
                                (c1 - c0) * 1e3, (c3 - c2) * 1e3))
            mid = len(samples) // 2
            bind, _, segs, _, _ = sorted(samples)[mid]
            emit(f"bind:{src}_{mib}M", bind, "ms")
            emit(f"unbind:{src}_{mib}M", sorted(s[1] for s in samples)[mid], "ms")
            emit(f"bind:segments_{src}_{mib}M", segs, "segments")
            emit(f"bind-cpu:{src}_{mib}M", sorted(s[3] for s in samples)[mid], "ms")
            emit(f"unbind-cpu:{src}_{mib}M", sorted(s[4] for s in samples)[mid], "ms")
    ns.delete()


def kernel_mem_kib():
    """Slab (large kmallocs included) and vmalloc memory in use, KiB. The
    per-CPU counter deltas are folded in first (vm.stat_refresh): otherwise
    the totals lag by up to a threshold of pages per CPU."""
    with open("/proc/sys/vm/stat_refresh", "w") as f:
        f.write("1")
    vals = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, rest = line.split(":", 1)
            vals[key] = int(rest.split()[0])
    return vals["Slab"] + vals["VmallocUsed"]


# name: (maker, net_iov sizes in KiB, sizes in MiB or None for
# BENCH_SCALE_MIB). A udmabuf on 4 KiB pages has as many segments as the
# guest's memory is fragmented when it is made; the scattered one has
# exactly one per page (like with like across flavors), but making it takes
# twice its size for a moment, so it stops at 1 GiB.
SCALE_SOURCES = {
    "system_heap": (system_heap, (4, 64), None),
    "udmabuf_4k": (udmabuf_small_pages, (4,), None),
    "udmabuf_scattered": (udmabuf_scattered, (4,), (256, 1024)),
}


def rows_scale():
    """bind-rx and unbind time, and the kernel memory a binding costs,
    against dma-buf size (BENCH_SCALE_MIB, 1, 4 and 8 GiB), for the system
    heap (at 4 and 64 KiB net_iovs, on one buffer) and udmabufs over 4 KiB
    pages (4 KiB net_iovs only: their segments are not 64 KiB aligned). One
    sample per boot: making the buffer costs far more than binding it. Each
    sample records its DMA segment count, and the memory grown across the
    bind (slab and vmalloc: the net_iovs, their owners and the provider's
    tables, and the dma-buf's own mapping, which both flavors share), per
    net_iov and per GiB."""
    ns = ready_nsim()
    # tools/bench.sh passes BENCH_SCALE_MIB on, empty when unset.
    sizes = [16] if SMOKE else [int(x) for x in (
        os.environ.get("BENCH_SCALE_MIB") or "1024 4096 8192").split()]
    failed = []
    for src, (make, kibs, own_sizes) in SCALE_SOURCES.items():
        for mib in ([16] if SMOKE else own_sizes) or sizes:
            fd = make(mib << 20)
            for kib in kibs:
                name = f"{src}_{kib}k_{mib}M"
                # A sample that fails (a bind refused for want of memory)
                # is reported, and the others still run.
                try:
                    scale_sample(ns, fd, name, mib, kib)
                except Exception as e:
                    print(f"bench: scale {name} failed: {e!r}", flush=True)
                    failed.append(name)
                    cleanup_all()
                    ns = ready_nsim()
            os.close(fd)
    ns.delete()
    if failed:
        raise RuntimeError(f"scale samples failed: {failed}")


def scale_sample(ns, fd, name, mib, kib):
    """One bind-rx of `fd` and its unbind, for rows_scale."""
    # Settle what the last free left behind (RCU callbacks, work items).
    time.sleep(1)
    nl = netdev_nl()
    try:
        m0 = kernel_mem_kib()
        c0, t0 = time.thread_time(), time.perf_counter()
        b = bind_rx(nl, ns.ifindex(), fd, [1],
                    rx_page_size=None if kib == 4 else kib << 10)
        t1, c1 = time.perf_counter(), time.thread_time()
        grown = (kernel_mem_kib() - m0) * 1024
        segs = kbench(f"segs {ns.ifindex()} 1")["segments"]
        niovs = dmabuf_get(nl, b["id"])["niov-count"]
        # A control: the same dma-buf mapped and unmapped for the same
        # device by code both flavors share, beside the binding.
        ctl = kbench(f"map {ns.ifindex()} {fd}")
    finally:
        c2, t2 = time.thread_time(), time.perf_counter()
        nl.close()
        t3, c3 = time.perf_counter(), time.thread_time()
    # The binding holds the dma-buf until it is freed, in a work item after
    # the close (where C frees a genpool chunk per segment): the next
    # sample's baseline must not include it. How long that takes after the
    # close is the free row, polled every 10 ms.
    end = t3 + 600
    while not unheld(fd):
        if time.perf_counter() > end:
            raise AssertionError("timed out waiting for the binding to be freed")
        time.sleep(0.01)
    t4 = time.perf_counter()
    emit(f"scale:bind_{name}", (t1 - t0) * 1e3, "ms")
    emit(f"scale:unbind_{name}", (t3 - t2) * 1e3, "ms")
    emit(f"scale:bind-cpu_{name}", (c1 - c0) * 1e3, "ms")
    emit(f"scale:unbind-cpu_{name}", (c3 - c2) * 1e3, "ms")
    emit(f"scale:free_{name}", (t4 - t3) * 1e3, "ms")
    emit(f"scale:map-alone-cpu_{name}", ctl["map_cpu_ns"] / 1e6, "ms")
    emit(f"scale:unmap-alone-cpu_{name}", ctl["unmap_cpu_ns"] / 1e6, "ms")
    emit(f"scale:segments_{name}", segs, "segments")
    emit(f"scale:mem_{name}_B_per_niov", grown / niovs, "B")
    emit(f"scale:mem_{name}_MiB_per_GiB", grown / (mib << 20) * 1024, "MiB")


def sys_cpu_s():
    """System + softirq CPU time of the whole guest, in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def send_cmd(pair, port, mib):
    return (f"ip netns exec {pair.REMOTE_NS} sh -c \"yes \\$(printf "
            f"'\\001\\002\\003\\004\\005\\006') | head -c {mib}M | socat -u - "
            f"TCP6:[{pair.V6[0]}]:{port},bind=[{pair.V6[1]}]:{port}\"")


def rows_tcp():
    """Row 4: devmem TCP (ncdevmem, validated) against plain TCP recv."""
    mib = 4 if SMOKE else int(os.environ.get("BENCH_TCP_MIB", "256"))
    pair = NsimPair(queues=4)
    pair.local.set_dma(True)

    # devmem TCP: upstream ncdevmem binds a udmabuf and checks every byte.
    port = 5201
    log = open("/tmp/bench-ncdevmem.log", "w+")
    srv = subprocess.Popen([NCDEVMEM, "-l", "-f", pair.ifname, "-s", pair.V6[0],
                            "-p", str(port), "-c", pair.V6[1], "-v", "7"],
                           stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while not tcp_listening(port):
        if srv.poll() is not None or time.monotonic() - t0 > 120:
            raise RuntimeError("ncdevmem did not start listening")
        time.sleep(0.05)
    c0, t1 = sys_cpu_s(), time.monotonic()

    def ncdevmem_tail():
        log.seek(0)
        keep = ("ncdevmem", "Running:", "Failed", "total_received", "recvmsg")
        lines = [ln for ln in log.read().splitlines() if ln.startswith(keep)]
        print("\n".join(lines[-20:]), flush=True)
        # Where the stream lost its packets: drop counters of TCP (both
        # namespaces) and of the two ports.
        rx = f"ip netns exec {pair.REMOTE_NS} "
        for pfx in ("", rx):
            subprocess.run(f"{pfx}nstat -az | grep -Ev ' 0 +0.0$' | grep -E "
                           f"'Drop|Prune|Retrans|Timeout|Loss|Collapse|Window|"
                           f"Backlog|OFO|Ofo|InSegs|OutSegs|InErrs'",
                           shell=True)
        # Where the binding's buffers are: page pools of the receiving port.
        try:
            nl = netdev_nl()
            for p in nl.page_pool_get({}, dump=True):
                if p.get("ifindex") == socket.if_nametoindex(pair.ifname):
                    print(f"page pool {p}", flush=True)
            nl.close()
        except Exception as e:  # diagnostics only
            print(f"page pool dump failed: {e!r}", flush=True)
        subprocess.run(f"ip -s link show {pair.ifname}; "
                       f"{rx}ip -s link show {pair.remote_ifname}; "
                       f"ss -tinmH; {rx}ss -tinmH", shell=True)

    # A healthy stream takes well under a minute (guest time) at the sizes
    # used here; a stalled one is reported as a failed row, not waited out.
    try:
        sent = subprocess.run(send_cmd(pair, port, mib), shell=True, timeout=240)
    except subprocess.TimeoutExpired:
        srv.send_signal(signal.SIGKILL)
        srv.wait()
        ncdevmem_tail()
        raise
    try:
        srv.wait(timeout=60)
    except subprocess.TimeoutExpired:
        srv.send_signal(signal.SIGKILL)
        srv.wait()
        ncdevmem_tail()
        raise
    if sent.returncode:
        ncdevmem_tail()
        raise RuntimeError(f"sender exited {sent.returncode}")
    elapsed, cpu = time.monotonic() - t1, sys_cpu_s() - c0
    log.seek(0)
    out = log.read()
    got = max([int(x) for x in re.findall(r"total_received=(\d+)", out)] or [0])
    if srv.returncode or got != mib << 20 or "Failed validation" in out:
        raise RuntimeError(f"ncdevmem: exit {srv.returncode}, {got} bytes")
    emit("tcp:devmem_MiBps", mib / elapsed, "MiB/s")
    emit("tcp:devmem_sys_s_per_GiB", cpu * 1024 / mib, "s")

    # Plain TCP into host memory on the same pair, same sender.
    port = 5202
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((pair.V6[0], port))
    ls.listen(1)
    sender = subprocess.Popen(send_cmd(pair, port, mib), shell=True)
    ls.settimeout(60)
    conn, _ = ls.accept()
    conn.settimeout(60)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    c0, t1, total = sys_cpu_s(), time.monotonic(), 0
    while True:
        n = conn.recv_into(view)
        if not n:
            break
        total += n
    elapsed, cpu = time.monotonic() - t1, sys_cpu_s() - c0
    sender.wait(timeout=600)
    conn.close()
    ls.close()
    if total != mib << 20:
        raise RuntimeError(f"plain TCP received {total} bytes")
    emit("tcp:plain_MiBps", mib / elapsed, "MiB/s")
    emit("tcp:plain_sys_s_per_GiB", cpu * 1024 / mib, "s")


def perf_start(name):
    """With BENCH_PERF set, samples every CPU of the guest (perf's
    cpu-clock, with call chains) until perf_stop(): where a stream's kernel
    time goes, written beside the rows as perf-NAME.txt. The sampling costs
    CPU of its own, so the rows of such a run are not comparable."""
    if not os.environ.get("BENCH_PERF") or not OUT:
        return None
    # perf's file on the guest's tmpfs: on the shared result directory it
    # is left unfinished.
    data = f"/tmp/perf-{name}.data"
    p = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-F", "997",
                          "-e", "cpu-clock", "-o", data],
                         stdout=subprocess.DEVNULL)
    time.sleep(1)
    return p, data


def perf_stop(prof):
    if not prof:
        return
    p, data = prof
    p.send_signal(signal.SIGINT)
    p.wait(timeout=120)
    with open(os.path.join(os.path.dirname(OUT),
                           os.path.basename(data)[:-len(".data")] + ".txt"),
              "w") as f:
        for sort in ("comm,sym", "sym"):
            f.write(f"### --sort {sort}\n")
            f.flush()
            subprocess.run(["perf", "report", "-i", data, "--stdio",
                            "--no-children", "-g", "none", "--sort", sort,
                            "--percent-limit", "0.3"], stdout=f,
                           stderr=subprocess.DEVNULL)
        f.write("### callers, --sort sym, children\n")
        f.flush()
        subprocess.run(["perf", "report", "-i", data, "--stdio",
                        "--children", "-g", "caller,0.5,callee", "--sort", "sym",
                        "--percent-limit", "2"], stdout=f,
                       stderr=subprocess.DEVNULL)
    os.unlink(data)


def niov_stream(kib, port, mib):
    """One devmem TCP stream of `mib` MiB into net_iovs of `kib` KiB on a
    fresh pair and binding, received in Python, which gives every frag back
    with SO_DEVMEM_DONTNEED (up to 128 tokens a call) after each recvmsg.
    Returns (seconds, whole-guest system CPU s, frags, syscalls made to
    receive and give back)."""
    pair = NsimPair(queues=4)
    rx = DevmemRx(pair, port, fd=system_heap(16 << 20),
                  rx_page_size=kib << 10)
    sender = subprocess.Popen(send_cmd(pair, port, mib), shell=True)
    rx.accept(timeout=60)
    calls = 0
    prof = perf_start(f"niov-{kib}k")
    c0, t1, total, nfrags = sys_cpu_s(), time.monotonic(), 0, 0
    while True:
        # Up to 1 MiB per call: with 4 KiB frags that is 256 cmsgs, which
        # the 16 KiB control buffer holds.
        data, anc, _, _ = rx.conn.recvmsg(1 << 20, 16 << 10, MSG_SOCK_DEVMEM)
        calls += 1
        cm = [struct.unpack_from("QIII", c) for lvl, typ, c in anc
              if typ == SCM_DEVMEM_DMABUF]
        if not cm and not data:
            break
        total += sum(c[1] for c in cm)
        nfrags += len(cm)
        if cm:
            rx.dontneed([c[2] for c in cm])
            calls += -(-len(cm) // 128)
    elapsed, cpu = time.monotonic() - t1, sys_cpu_s() - c0
    perf_stop(prof)
    sender.wait(timeout=600)
    if total != mib << 20 or sender.returncode:
        raise RuntimeError(f"{kib} KiB net_iovs: {total} bytes, sender "
                           f"exit {sender.returncode}")
    st = dmabuf_get(rx.nl, rx.id)
    if st["tokens"]:
        raise RuntimeError(f"left outstanding: {st}")
    cleanup_all()
    return elapsed, cpu, nfrags, calls


# The dma-buf of the ring rows: its net_iovs, at most 4096 (4 KiB ones),
# all fit in the ring, so that bench/user/devmem_rx.c never finds it full.
RX_DMABUF = 16 << 20
RX_RING_ENTRIES = 4096


def rx_c_stream(kib, port, mib, ring):
    """One devmem TCP stream of `mib` MiB into net_iovs of `kib` KiB on a
    fresh pair and binding, received by bench/user/devmem_rx.c, which gives
    every frag back after each recvmsg with SO_DEVMEM_DONTNEED or, with
    `ring`, through the binding's refill ring. Returns the receiver's report: bytes,
    frags, calls (syscalls to receive and give back), elapsed, cpu (its CPU
    time, exact), sys and user (the tick-sampled split of it); and guest_sys,
    the whole guest's system CPU (sender and softirqs included)."""
    pair = NsimPair(queues=4)
    rr = RefillRing(entries=RX_RING_ENTRIES) if ring else None
    rx = DevmemRx(pair, port, fd=system_heap(RX_DMABUF),
                  rx_page_size=kib << 10, ring=rr)
    sender = subprocess.Popen(send_cmd(pair, port, mib), shell=True)
    rx.accept(timeout=60)
    fd = rx.conn.fileno()
    cmd = [DEVMEM_RX, str(fd), "ring" if ring else "dontneed", str(mib << 20)]
    fds = [fd]
    if ring:
        cmd += [str(rr.memfd), str(len(rr.map)), str(rr.head_off),
                str(rr.tail_off), str(rr.entries_off), str(rr.entries)]
        fds.append(rr.memfd)
    prof = perf_start(f"{'ring' if ring else 'dontneed'}-{kib}k")
    c0 = sys_cpu_s()
    p = subprocess.run(cmd, pass_fds=fds, capture_output=True, text=True,
                       timeout=600)
    guest_sys = sys_cpu_s() - c0
    perf_stop(prof)
    if p.returncode:
        sender.kill()
    sender.wait(timeout=600)
    if p.returncode or sender.returncode:
        raise RuntimeError(f"{kib} KiB net_iovs, ring={ring}: devmem_rx exit "
                           f"{p.returncode} ({p.stderr.strip()}), sender exit "
                           f"{sender.returncode}")
    r = {k: float(v) for k, v in
         (kv.split("=") for kv in p.stdout.split())}
    r["guest_sys"] = guest_sys
    if ring:
        rx.flush()
    st = dmabuf_get(rx.nl, rx.id)
    if st["tokens"] or st.get("user-refs"):
        raise RuntimeError(f"left outstanding: {st}")
    # The kernel took back exactly the entries the receiver wrote, one per
    # frag, and refused none.
    if ring and (st["refill-ring"]["consumed"] != r["frags"] or
                 st["refill-ring"]["rejected"]):
        raise RuntimeError(f"ring entries: {st['refill-ring']} for "
                           f"{r['frags']:.0f} frags")
    cleanup_all()
    return r


def rows_niov():
    """devmem TCP into net_iovs of 4, 16 and 64 KiB (rx-page-size), frags
    given back with SO_DEVMEM_DONTNEED: what it costs in the kernel per
    GiB is the row."""
    mib = 4 if SMOKE else int(os.environ.get("BENCH_TCP_MIB", "256"))
    for i, kib in enumerate((4, 16, 64)):
        elapsed, cpu, nfrags, calls = niov_stream(kib, 5210 + i, mib)
        emit(f"niov:{kib}k_MiBps", mib / elapsed, "MiB/s")
        emit(f"niov:{kib}k_sys_s_per_GiB", cpu * 1024 / mib, "s")
        emit(f"niov:{kib}k_tokens_per_GiB", nfrags * 1024 / mib, "tokens")
        emit(f"niov:{kib}k_syscalls_per_GiB", calls * 1024 / mib, "calls")


def rows_ring():
    """devmem TCP into net_iovs of 4, 16 and 64 KiB, received in C
    (bench/user/devmem_rx.c), frags given back with SO_DEVMEM_DONTNEED and then
    through a refill ring (Documentation/refill-ring.md): the receiver's
    CPU time per GiB, throughput and syscalls. The receiver's CPU time is
    the scheduler's exact count, and nearly all of it is system time (it
    only walks the cmsgs in user space); the kernel's split into user and
    system is sampled at the tick, which under instruction counting can
    put a whole run on one side, so it is not a row. Only the Rust provider has a ring: on C the ring's bind
    is refused and only the DONTNEED rows, the reference, are written."""
    mib = 4 if SMOKE else int(os.environ.get("BENCH_TCP_MIB", "256"))
    has_ring = True
    for i, kib in enumerate((4, 16, 64)):
        for mode in ("dontneed", "ring"):
            if mode == "ring" and not has_ring:
                continue
            try:
                r = rx_c_stream(kib, 5220 + 2 * i + (mode == "ring"), mib,
                                mode == "ring")
            except NlError as e:
                if e.error != errno.EOPNOTSUPP or mode != "ring":
                    raise
                print("bench: ring rows: this provider has no refill ring",
                      flush=True)
                cleanup_all()
                has_ring = False
                continue
            name = f"ring:{kib}k_{mode}"
            emit(f"{name}_MiBps", mib / r["elapsed"], "MiB/s")
            emit(f"{name}_rx_cpu_s_per_GiB", r["cpu"] * 1024 / mib, "s")
            emit(f"{name}_sys_s_per_GiB", r["guest_sys"] * 1024 / mib, "s")
            emit(f"{name}_frags_per_GiB", r["frags"] * 1024 / mib, "frags")
            emit(f"{name}_syscalls_per_GiB", r["calls"] * 1024 / mib, "calls")


ROWS = {"pp": rows_pp, "fill": rows_fill, "bind": rows_bind, "tcp": rows_tcp,
        "niov": rows_niov, "ring": rows_ring, "scale": rows_scale}


def main():
    global OUT
    out = sys.argv[1]
    OUT = out + ".part"
    which = (os.environ.get("BENCH_ROWS") or "pp fill bind tcp niov ring").split()
    rc = 0
    for r in which:
        t0 = time.monotonic()
        try:
            ROWS[r]()
        except Exception as e:  # report and go on with the other rows
            print(f"bench: row {r} failed: {e!r}", flush=True)
            rc = 1
        finally:
            cleanup_all()
        print(f"bench: row {r} took {time.monotonic() - t0:.1f} s", flush=True)
    if os.path.exists(OUT):
        os.replace(OUT, out)
    else:
        open(out, "w").close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
