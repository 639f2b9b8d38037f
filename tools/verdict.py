#!/usr/bin/env python3
"""Judge a VM run by what the guest left in its result directory.

  verdict.py RESULT_DIR test|bench [VNG_EXIT]

Writes RESULT_DIR/verdict, one check a line: `<check> PASS|FAIL [note]`,
and exits 1 if any check failed. tools/ktap.py reports each line as the test
`<flavor>:vm.<check>`. The checks:

  guest_finished   the guest ran its command to the end and collected its
                   results (a guest that hung, panicked or timed out did not);
  kernel_clean     no WARNING, BUG, Oops, KFENCE, lockdep, RCU, UBSAN,
                   refcount or page_pool stall report in the kernel log or on
                   the console;
  kernel_log_whole the kernel log was read whole: its records are numbered
                   from 0 with none skipped, so no report was lost to the
                   ring wrapping;
  kmemleak_clean   (test) kmemleak was running and found nothing;
  debug_options    (test) SLUB's checks and poisoning, the DMA API debug
                   filter on netdevsim and kmemleak were in effect, whatever
                   the caller's environment asked for.

The command's own exit status is not a check here: RESULT_DIR/status goes
to tools/ktap.py, which fails the run if it is non-zero and no test failed.
"""

import os
import re
import sys

SPLAT = re.compile(
    r"WARNING:|BUG:|BUG [^ ]+ \(|Oops|KFENCE:|general protection fault|"
    r"possible (recursive|circular) locking|inconsistent lock state|"
    r"lock held when returning|suspicious RCU usage|UBSAN:|refcount_t:|"
    r"kernel BUG|unreferenced object|rcu detected stall|"
    r"detected stalls? on|self-detected stall|blocked for more than|"
    r"unregister_netdevice: waiting|stalled pool shutdown")

# What the test profile's command line asks for (tools/vm-run.sh), as the
# guest reports it in debug-state.
WANT_DEBUG = {
    "slub_sanity_checks": "1",
    "slub_red_zone": "1",
    "slub_poison": "1",
    "dma_debug_driver": "netdevsim",
    "kmemleak": "on",
}


def read(path, default=None):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return default


# The kernel command line's debug switches: each occurrence of these keys
# must have the test profile's value (the last one wins in the kernel), and
# the keys that turn a checker off must not be there at all.
CMDLINE_WANT = {"slub_debug": "FZP", "dma_debug_driver": "netdevsim"}
CMDLINE_FORBIDDEN = ("slab_debug", "dma_debug", "kmemleak", "kfence.sample_interval")


def cmdline_problems(cmdline):
    bad = []
    for tok in cmdline.split():
        key, _, val = tok.partition("=")
        if key in CMDLINE_WANT and val != CMDLINE_WANT[key]:
            bad.append(f"cmdline {tok} (want {key}={CMDLINE_WANT[key]})")
        elif key in CMDLINE_FORBIDDEN:
            bad.append(f"cmdline {tok} (not allowed in a test run)")
    return bad


def log_whole(raw):
    """None if the raw /dev/kmsg copy is whole, else why not."""
    if raw is None:
        return "no kernel log (kmsg) collected"
    lines = raw.splitlines()
    if not lines or lines[-1] != "end":
        return "the kernel log copy did not finish (no end marker)"
    expect = 0
    for n, line in enumerate(lines[:-1], 1):
        if line == "lost":
            return f"records lost while reading (before record {expect})"
        fields = line.split(";", 1)[0].split(",")
        if len(fields) < 3 or not fields[1].isdigit():
            return f"line {n} is not a kmsg record: {line[:60]!r}"
        seq = int(fields[1])
        if seq != expect:
            what = "the ring wrapped" if expect == 0 else "records skipped"
            return f"record {expect} missing, next is {seq} ({what})"
        expect = seq + 1
    if expect == 0:
        return "kernel log empty"
    return None


# A test that makes the kernel warn on purpose (the warning is the behaviour
# under test) brackets it with these lines. One "WARNING:" line between them
# is expected; anything else there, a second warning, or a window never
# closed is still a splat. The test itself checks that the warning came.
EXPECT_BEGIN = re.compile(r"devmem_kunit: expected WARNING begin: (.+)$")
EXPECT_END = "devmem_kunit: expected WARNING end"


def find_splats(log):
    """Splat lines of LOG, and the expected warnings left out of them."""
    splats, expected = [], []
    window, seen = None, 0
    for ln in log.splitlines():
        m = EXPECT_BEGIN.search(ln)
        if m:
            if window is not None:
                splats.append(f"expected-WARNING window '{window}' never closed")
            window, seen = m.group(1).strip(), 0
            continue
        if EXPECT_END in ln:
            if window is not None and seen != 1:
                splats.append(f"expected-WARNING window '{window}' saw {seen} warnings, not 1")
            window = None
            continue
        if not SPLAT.search(ln):
            continue
        if window is not None and "WARNING:" in ln and seen == 0:
            seen += 1
            expected.append(f"{window}: {ln.strip()}")
            continue
        splats.append(ln.strip())
    if window is not None:
        splats.append(f"expected-WARNING window '{window}' never closed")
    return splats, expected


def judge(rdir, mode, vng_exit=None):
    checks = []

    def check(name, ok, note=""):
        checks.append((name, ok, note))

    finished = os.path.exists(os.path.join(rdir, "finished"))
    note = ""
    if not finished:
        note = "guest did not finish"
        if vng_exit == "124":
            note += " (timed out)"
        elif vng_exit:
            note += f" (vng exit {vng_exit})"
    check("guest_finished", finished, note)

    log = read(os.path.join(rdir, "dmesg"), "") + read(os.path.join(rdir, "console.log"), "")
    splats, expected = find_splats(log)
    with open(os.path.join(rdir, "expected-splats"), "w") as f:
        f.write("".join(s + "\n" for s in expected))
    with open(os.path.join(rdir, "splats"), "w") as f:
        f.write("".join(s + "\n" for s in splats))
    check("kernel_clean", not splats,
          f"{len(splats)} splat lines, first: {splats[0][:160]}" if splats else "")

    why = log_whole(read(os.path.join(rdir, "kmsg")))
    check("kernel_log_whole", why is None, why or "")

    if mode == "test":
        leaks = read(os.path.join(rdir, "kmemleak"), "")
        dmesg = read(os.path.join(rdir, "dmesg"), "")
        n = leaks.count("unreferenced object")
        if os.path.exists(os.path.join(rdir, "kmemleak.missing")) or \
                "kmemleak: Kernel memory leak detector initialized" not in dmesg:
            check("kmemleak_clean", False, "kmemleak inactive")
        else:
            check("kmemleak_clean", n == 0 and not leaks.strip(),
                  f"{n} unreferenced objects" if n else leaks.strip()[:160])
        state = {}
        for line in read(os.path.join(rdir, "debug-state"), "").splitlines():
            k, _, v = line.partition(" ")
            state[k] = v.strip()
        bad = [f"{k}={state.get(k, 'absent')!s} (want {v})"
               for k, v in WANT_DEBUG.items() if state.get(k) != v]
        bad += cmdline_problems(state.get("cmdline", ""))
        check("debug_options", not bad, "; ".join(bad))

    with open(os.path.join(rdir, "verdict"), "w") as f:
        for name, ok, note in checks:
            f.write(f"{name} {'PASS' if ok else 'FAIL'}{' ' + note if note else ''}\n")
    return all(ok for _, ok, _ in checks)


def main():
    rdir, mode = sys.argv[1:3]
    vng_exit = sys.argv[3] if len(sys.argv) > 3 else None
    if mode not in ("test", "bench"):
        sys.exit(f"verdict.py: mode must be test or bench, not {mode}")
    sys.exit(0 if judge(rdir, mode, vng_exit) else 1)


if __name__ == "__main__":
    main()
