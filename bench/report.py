#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns the raw samples of tools/bench.sh into the comparison.

  report.py RESULTS_DIR COMMAND

Reads RESULTS_DIR/samples.csv (flavor,mode,boot,row,value,unit: one line per
row per boot) and writes, next to it:
  bench-summary.tsv  row mode unit c_median rust_median ratio c_spread
                     rust_spread (spread = (max - min) / median), per row and
                     timing mode
  table.md           the same as a Markdown table, with min/max, and the
                     command that reproduces it
  chart.png          Rust/C ratio per row (icount and wall clock), and the
                     fill-level curves of both flavors
  projection.md      with scale rows: bind time and metadata memory fitted
                     against dma-buf size and projected to 80 and 141 GiB
Rows where a bigger number is better (throughput) keep their unit; the ratio
is always rust/c of the medians, so for MiB/s a ratio above 1 favours Rust.
"""

import csv
import os
import statistics
import sys
from collections import defaultdict


def load(path):
    data = defaultdict(list)  # (row, mode, flavor) -> [values]
    units, order = {}, []
    with open(path) as f:
        for r in csv.DictReader(f):
            key = (r["row"], r["mode"])
            if key not in order:
                order.append(key)
            data[(r["row"], r["mode"], r["flavor"])].append(float(r["value"]))
            units[r["row"]] = r["unit"]
    return data, units, order


def stats(vals):
    if not vals:
        return None
    med = statistics.median(vals)
    spread = (max(vals) - min(vals)) / med if med else 0.0
    return med, min(vals), max(vals), spread


def main():
    rdir, command = sys.argv[1], sys.argv[2]
    data, units, order = load(os.path.join(rdir, "samples.csv"))
    summary, table = [], []
    for row, mode in order:
        c, r = stats(data[(row, mode, "c")]), stats(data[(row, mode, "rust")])
        if not c or not r:
            continue
        ratio = r[0] / c[0] if c[0] else float("nan")
        n = (len(data[(row, mode, "c")]), len(data[(row, mode, "rust")]))
        summary.append((row, mode, units[row], c[0], r[0], ratio, c[3], r[3]))
        table.append((row, mode, units[row], c, r, ratio, n))

    with open(os.path.join(rdir, "bench-summary.tsv"), "w") as f:
        f.write("row\tmode\tunit\tc_median\trust_median\tratio\tc_spread\trust_spread\n")
        for s in summary:
            f.write("%s\t%s\t%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\n" % s)

    lines = [
        "| row | mode | unit | C median (min-max) | Rust median (min-max) | Rust/C | boots C/Rust |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row, mode, unit, c, r, ratio, n in table:
        lines.append(f"| {row} | {mode} | {unit} | {c[0]:.2f} ({c[1]:.2f}-{c[2]:.2f}) "
                     f"| {r[0]:.2f} ({r[1]:.2f}-{r[2]:.2f}) | {ratio:.3f} | {n[0]}/{n[1]} |")
    lines.append("")
    for mode in ("icount", "wall"):
        for i, flavor in ((6, "c"), (7, "rust")):
            spreads = sorted(x[i] for x in summary if x[1] == mode)
            if spreads:
                lines.append(f"- {mode}, {flavor}: repeated boots of one flavor are "
                             f"{100 * statistics.median(spreads):.1f}% apart "
                             f"((max - min) / median; median over rows), "
                             f"{100 * spreads[-1]:.1f}% at most")
    lines += ["", f"Reproduce: `{command}`", ""]
    with open(os.path.join(rdir, "table.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))

    chart(rdir, table, data)
    projection(rdir, data)


def fit(points):
    """Least-squares line through (x, y) points: (intercept, slope, the
    largest residual as a fraction of its point's y)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    icpt = my - slope * mx
    worst = max((abs(y - (icpt + slope * x)) / y for x, y in points if y),
                default=0.0)
    return icpt, slope, worst


SCALE_TARGETS = (80, 141)


def projection(rdir, data):
    """projection.md: the scale rows (icount) fitted per flavor, source and
    net_iov size, cost against dma-buf size in GiB, and projected to
    SCALE_TARGETS GiB. Nothing is written without scale rows."""
    series = defaultdict(dict)  # (name, flavor) -> {metric: {GiB: median}}
    for (row, mode, flavor), vals in data.items():
        if mode != "icount" or not row.startswith("scale:"):
            continue
        metric, _, rest = row[len("scale:"):].partition("_")
        if metric == "mem":
            if not rest.endswith("_MiB_per_GiB"):
                continue
            rest = rest[:-len("_MiB_per_GiB")]
        name, _, mib = rest.rpartition("_")
        gib = int(mib.rstrip("M")) / 1024
        series[(name, flavor)].setdefault(metric, {})[gib] = statistics.median(vals)
    if not series:
        return
    t1, t2 = SCALE_TARGETS
    lines = [
        "| dma-buf, net_iov size | flavor | sizes (GiB) | segments at the largest "
        "| bind ms per GiB (fit; worst residual) | unbind ms (median) "
        f"| bind at {t1} / {t2} GiB, s | metadata MiB per GiB (fit; worst residual) "
        f"| metadata at {t1} / {t2} GiB, GiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (name, flavor) in sorted(series):
        m = series[(name, flavor)]
        bind, unbind, mem, segs = (m.get(k, {}) for k in ("bind", "unbind", "mem", "segments"))
        if len(bind) < 2 or not mem:
            continue
        sizes = sorted(bind)
        b0, b1, bw = fit(sorted(bind.items()))
        # Memory grown, in MiB, against GiB: the rows give it per GiB.
        m0, m1, mw = fit(sorted((g, v * g) for g, v in mem.items()))
        proj_b = [(b0 + b1 * t) / 1e3 for t in SCALE_TARGETS]
        proj_m = [(m0 + m1 * t) / 1024 for t in SCALE_TARGETS]
        lines.append(
            f"| {name} | {flavor} | {', '.join(f'{g:g}' for g in sizes)} "
            f"| {segs.get(sizes[-1], float('nan')):.0f} "
            f"| {b1:.1f} ({100 * bw:.0f}%) "
            f"| {statistics.median(unbind.values()) if unbind else float('nan'):.1f} "
            f"| {proj_b[0]:.2f} / {proj_b[1]:.2f} "
            f"| {m1:.2f} ({100 * mw:.0f}%) "
            f"| {proj_m[0]:.2f} / {proj_m[1]:.2f} |")
    lines += ["", "Fit: least squares over the sizes measured (icount medians); "
              "a residual is the fit's distance from a measured point, as a "
              "fraction of it. Metadata: slab and vmalloc memory grown across "
              "the bind.", ""]
    with open(os.path.join(rdir, "projection.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


def chart(rdir, table, data):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 7))
    rows = [t for t in table if t[1] == "icount"]
    wall = {t[0]: t[5] for t in table if t[1] == "wall"}
    y = range(len(rows))
    ax1.barh([i + 0.2 for i in y], [t[5] for t in rows], height=0.4, label="icount")
    ax1.barh([i - 0.2 for i in y], [wall.get(t[0], 0) for t in rows], height=0.4,
             label="wall clock")
    ax1.set_yticks(list(y), [t[0] for t in rows], fontsize=7)
    ax1.axvline(1.0, color="k", lw=0.8)
    ax1.set_xscale("log")
    ax1.set_xlabel("Rust / C (median, log scale); below 1: Rust faster "
                   "(MiB/s rows: above 1)")
    ax1.invert_yaxis()
    ax1.legend()

    for layout, style in (("one", "-"), ("pages", "--")):
        for flavor in ("c", "rust"):
            pts = []
            for pct in (0, 50, 90, 99):
                v = data.get((f"fill:fill_{layout}_{pct}", "icount", flavor))
                if v:
                    pts.append((pct, statistics.median(v)))
            if pts:
                ax2.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o",
                         label=f"{flavor}, {'one segment' if layout == 'one' else 'segment per page'}")
    ax2.set_xlabel("net_iovs held (% of a 64 MiB binding)")
    ax2.set_ylabel("ns per alloc+free (icount: instructions)")
    ax2.set_yscale("log")
    if ax2.lines:
        ax2.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(rdir, "chart.png"), dpi=90)


if __name__ == "__main__":
    main()
