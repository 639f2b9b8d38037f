#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bench:smoke: every benchmark row of bench/bench.py once, with tiny counts,
on the test kernel. It asserts that each row runs and produces the numbers
tools/bench.sh expects (finite, positive), never how big they are.
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
    check_row(bench.rows_bind, [f"{op}{src}_1M" for op in ("bind:", "unbind:",
                                                         "bind:segments_",
                                                         "bind-cpu:",
                                                         "unbind-cpu:")
                                for src in bench.SOURCES])


@test
def smoke_devmem_tcp_and_plain_tcp():
    check_row(bench.rows_tcp, [f"tcp:{kind}_{m}" for kind in ("devmem", "plain")
                               for m in ("MiBps", "sys_s_per_GiB")])


@test
def smoke_net_iov_sizes():
    check_row(bench.rows_niov, [f"niov:{k}k_{m}" for k in (4, 16, 64)
                                for m in ("MiBps", "sys_s_per_GiB",
                                          "tokens_per_GiB")])


@test
def smoke_scale_rows():
    names = [f"{src}_{k}k_16M" for src, (_, ks, _) in bench.SCALE_SOURCES.items()
             for k in ks]
    check_row(bench.rows_scale,
              [f"scale:{m}_{n}" for n in names
               for m in ("bind", "unbind", "free", "segments", "bind-cpu",
                         "unbind-cpu")] +
              [f"scale:mem_{n}_{u}" for n in names
               for u in ("B_per_niov", "MiB_per_GiB")])


if __name__ == "__main__":
    run_tests("bench_smoke")
