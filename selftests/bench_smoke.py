#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bench:smoke: every benchmark row of bench/bench.py once, with tiny counts,
on the test kernel. It asserts that each row runs and produces the numbers
tools/bench.sh expects (finite, positive) and the relations that hold
whatever the machine (CPU time within latency, segment counts within the
buffer's pages, no frag larger than its net_iov), never how big they are.
"""

import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
os.environ["BENCH_SCALE"] = "smoke"
import bench  # noqa: E402
from devmem import run_tests, test  # noqa: E402

PP_PATHS = ("fast", "ring", "slow", "release")


def check_row(fn, expected):
    """Every row finite and positive, but CPU time (may be zero) and memory
    growth (any finite value: a tiny binding's is within the noise of what
    the kernel allocates and frees meanwhile)."""
    bench.results.clear()
    fn()
    got = {row: value for row, value, _ in bench.results}
    missing = [r for r in expected if r not in got]
    assert not missing, f"rows missing: {missing}; got {sorted(got)}"
    # CPU time is counted in ticks: a tiny run may not reach one.
    bad = {r: v for r, v in got.items()
           if not math.isfinite(v) or ("mem_" not in r and (
               v < 0 or (v == 0 and "sys_s" not in r)))}
    assert not bad, f"rows without a sane number: {bad}"
    return got


def cpu_within_latency(got, cpu_row, latency_row):
    """The calling thread's CPU time across a call is at most the call's
    latency: one sample each in a smoke run, timed around the same call
    (the CPU clock is read just outside the wall clock, so allow the
    reads themselves, 0.05 ms)."""
    cpu, lat = got[cpu_row], got[latency_row]
    assert cpu <= lat + 0.05, f"{cpu_row} {cpu} ms above {latency_row} {lat} ms"


@test
def smoke_page_pool_paths():
    check_row(bench.rows_pp, [f"pp:{pool}_{path}" for pool in ("devmem", "plain")
                              for path in PP_PATHS])


@test
def smoke_fill_levels_and_layouts():
    check_row(bench.rows_fill, [f"fill:fill_{layout}_{pct}"
                                for layout in ("one", "pages")
                                for pct in (0, 50, 90, 99)])


@test
def smoke_bind_unbind_latency():
    got = check_row(bench.rows_bind, [f"{op}{src}_1M" for op in ("bind:", "unbind:",
                                                               "bind:segments_",
                                                               "bind-cpu:",
                                                               "unbind-cpu:")
                                      for src in bench.SOURCES])
    for src in bench.SOURCES:
        cpu_within_latency(got, f"bind-cpu:{src}_1M", f"bind:{src}_1M")
        cpu_within_latency(got, f"unbind-cpu:{src}_1M", f"unbind:{src}_1M")
        # A 1 MiB buffer maps to between one segment and one per page.
        segs = got[f"bind:segments_{src}_1M"]
        assert segs == int(segs) and 1 <= segs <= (1 << 20) // 4096, \
            f"{src}: {segs} segments for 1 MiB"


@test
def smoke_devmem_tcp_and_plain_tcp():
    check_row(bench.rows_tcp, [f"tcp:{kind}_{m}" for kind in ("devmem", "plain")
                               for m in ("MiBps", "sys_s_per_GiB")])


@test
def smoke_net_iov_sizes():
    got = check_row(bench.rows_niov, [f"niov:{k}k_{m}" for k in (4, 16, 64)
                                      for m in ("MiBps", "sys_s_per_GiB",
                                                "tokens_per_GiB",
                                                "syscalls_per_GiB")])
    # A frag lies within one net_iov, so a GiB takes at least one token
    # per net_iov of it.
    for k in (4, 16, 64):
        tok = got[f"niov:{k}k_tokens_per_GiB"]
        assert tok >= (1 << 30) // (k << 10), \
            f"{tok} tokens per GiB at {k} KiB net_iovs: frags larger than a net_iov"


@test
def smoke_refill_ring_rows():
    """The C receiver's rows: DONTNEED on both flavors, the refill ring on
    Rust only (C refuses it and writes none); a frag per net_iov at least,
    every byte received (devmem_rx checks), nothing left outstanding and
    every ring entry consumed (rx_c_stream checks)."""
    stats = ("MiBps", "rx_cpu_s_per_GiB", "sys_s_per_GiB", "frags_per_GiB",
             "syscalls_per_GiB")
    modes = ("dontneed",) if os.environ.get("DEVMEM_FLAVOR") == "c" \
        else ("dontneed", "ring")
    got = check_row(bench.rows_ring, [f"ring:{k}k_{m}_{s}" for k in (4, 16, 64)
                                      for m in modes for s in stats])
    for k in (4, 16, 64):
        for m in modes:
            n = got[f"ring:{k}k_{m}_frags_per_GiB"]
            assert n >= (1 << 30) // (k << 10), \
                f"{n} frags per GiB at {k} KiB net_iovs: frags larger than a net_iov"
    if "ring" not in modes:
        assert not [r for r in got if "_ring_" in r], f"ring rows on C: {got}"
        return
    # rx_c_stream has checked that the kernel consumed one ring entry per
    # frag and rejected none, and that no frag of the ring socket came with
    # a token (devmem_rx fails on one).


@test
def smoke_scale_rows():
    names = [f"{src}_{k}k_16M" for src, (_, ks, _) in bench.SCALE_SOURCES.items()
             for k in ks]
    check_row(bench.rows_scale,
              [f"scale:{m}_{n}" for n in names
               for m in ("bind", "unbind", "free", "segments", "bind-cpu",
                         "unbind-cpu", "map-alone-cpu", "unmap-alone-cpu")] +
              [f"scale:mem_{n}_{u}" for n in names
               for u in ("B_per_niov", "MiB_per_GiB")])


if __name__ == "__main__":
    run_tests("bench_smoke")
