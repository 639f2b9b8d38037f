#!/usr/bin/env python3
"""The counting's own tests: each way a result could vanish must fail.

  harness-check.py

Builds result directories as a VM run leaves them (tools/vm-guest.sh,
selftests/run.sh), each with one defect, and checks that tools/ktap.py and
tools/verdict.py report a failure for it, and that the clean one passes.
Prints a PASS/FAIL line per check; exits 1 if any failed. Runs on the host
in well under a second, so it is part of every run.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap  # noqa: E402
import verdict  # noqa: E402

KUNIT_SRC = """
static struct kunit_case cases[] = {
	KUNIT_CASE(first_case),
	KUNIT_CASE(second_case),
	{}
};
static struct kunit_suite s = { .name = "net_devmem", .test_cases = cases };
"""

KUNIT_LOG = [
    "[    1.000000] KTAP version 1",
    "[    1.000000] 1..1",
    "[    1.000000]     KTAP version 1",
    "[    1.000000]     # Subtest: net_devmem",
    "[    1.000000]     # module: devmem_kunit",
    "[    1.000000]     1..2",
    "[    1.100000]     ok 1 first_case",
    "[    1.200000]     ok 2 second_case",
    "[    1.200000] # net_devmem: pass:2 fail:0 skip:0 total:2",
    "[    1.200000] ok 1 net_devmem",
]

SUITE_TAP = ["TAP version 13", "# suite: alpha", "1..2",
             "ok 1 one # time=0.10s", "ok 2 two # time=0.20s"]

DEBUG_STATE = ["cmdline root=/dev/root log_buf_len=32M slub_debug=FZP",
               "dma_debug_driver netdevsim", "slub_sanity_checks 1",
               "slub_red_zone 1", "slub_poison 1", "kmemleak on"]


def clean_run(d, kunit_src):
    """A result directory of a run in which everything passed."""
    def w(name, lines):
        with open(os.path.join(d, name), "w") as f:
            f.write("".join(ln + "\n" for ln in lines))
    w("alpha.tap", SUITE_TAP)
    w("alpha.rc", ["0"])
    w("status", ["0"])
    w("finished", ["done"])
    dmesg = KUNIT_LOG + ["[    2.000000] kmemleak: Kernel memory leak detector initialized (mempool available:1)"]
    w("dmesg", dmesg)
    w("kmsg", [f"6,{i},{i * 10},-;{ln.split('] ', 1)[1]}" for i, ln in enumerate(dmesg)]
      + ["end"])
    w("console.log", ["booting"])
    w("kmemleak", [])
    w("debug-state", DEBUG_STATE)
    w("out.log", ["=== alpha start"] + SUITE_TAP + ["=== alpha end rc=0 s=1.5"])
    with open(kunit_src, "w") as f:
        f.write(KUNIT_SRC)


def edit(d, name, fn):
    p = os.path.join(d, name)
    lines = open(p).read().splitlines() if os.path.exists(p) else []
    lines = fn(lines)
    if lines is None:
        os.unlink(p)
        return
    with open(p, "w") as f:
        f.write("".join(ln + "\n" for ln in lines))


# Each defect: (check name, what it does to a clean run, the failing test
# the run must then report).
DEFECTS = [
    ("suite_exit_status_counts", lambda d: edit(d, "alpha.rc", lambda _: ["1"]),
     "alpha.exit_status"),
    ("suite_timeout_counts", lambda d: edit(d, "alpha.rc", lambda _: ["124"]),
     "alpha.exit_status"),
    ("suite_without_status_counts", lambda d: edit(d, "alpha.rc", lambda _: None),
     "alpha.exit_status"),
    ("command_exit_counts", lambda d: edit(d, "status", lambda _: ["1"]),
     "vm.command_exit"),
    ("expected_suite_missing", lambda d: edit(d, "alpha.tap", lambda _: None),
     "alpha.ran"),
    ("suite_without_plan", lambda d: edit(d, "alpha.tap",
                                          lambda ls: [x for x in ls if x != "1..2"]),
     "alpha.ktap"),
    ("suite_short_of_plan", lambda d: edit(d, "alpha.tap", lambda ls: ls[:-1]),
     "alpha.ktap", "planned tests never reported"),
    ("stray_result_not_counted", lambda d: edit(
        d, "alpha.tap", lambda ls: ls[:4] + ["ok 1 from a subprocess"] + ls[4:5]),
     "alpha.ktap", "out of sequence"),
    ("empty_plan_counts", lambda d: edit(d, "alpha.tap", lambda _: ["1..0 # SKIP no device"]),
     "alpha.ktap", "1..0"),
    ("stray_result_fills_no_plan", lambda d: edit(
        d, "alpha.tap", lambda ls: ls[:4] + ["ok 7 from a subprocess"]),
     "alpha.ktap"),
    ("bail_out_counts", lambda d: edit(d, "alpha.tap", lambda ls: ls + ["Bail out! stuck"]),
     "alpha.ktap"),
    ("failure_names_its_reason", lambda d: edit(d, "alpha.tap", lambda ls: ls[:4] + [
        "# Traceback (most recent call last):", "#   File \"t.py\", line 1",
        "# AssertionError: payload differs near byte 7", "not ok 2 two"]),
     "alpha.two", "payload differs near byte 7"),
    ("kunit_without_plan", lambda d: edit(
        d, "dmesg", lambda ls: [x for x in ls if not x.endswith("    1..2")]),
     "kunit.ktap"),
    ("kunit_short_of_plan", lambda d: edit(
        d, "dmesg", lambda ls: [x for x in ls if "second_case" not in x]),
     "kunit.ktap", "1 of 2 planned cases"),
    ("kunit_suite_not_ok_counts", lambda d: edit(
        d, "dmesg", lambda ls: [x.replace("] ok 1 net_devmem", "] not ok 1 net_devmem") for x in ls]),
     "kunit.net_devmem"),
    ("kunit_lost_header", lambda d: edit(
        d, "dmesg", lambda ls: [x for x in ls if "Subtest" not in x]
        [:4] + ["[    1.3]     not ok 3 third_case"]),
     "kunit.third_case"),
    ("kunit_top_plan", lambda d: edit(
        d, "dmesg", lambda ls: [x.replace("] 1..1", "] 1..2") for x in ls]),
     "kunit.ktap"),
    ("kunit_missing_entirely", lambda d: edit(
        d, "dmesg", lambda ls: [x for x in ls if "kmemleak" in x]),
     "kunit.ktap"),
    ("kunit_declared_case_missing", lambda d: open(
        os.path.join(d, "..", "kunit.c"), "a").write("KUNIT_CASE(third_case),\n"),
     "kunit.ktap", "third_case never reported"),
]

def in_window(*lines, close=True):
    """A defect: LINES in the kernel log between a test's expected-WARNING
    markers (tools/verdict.py)."""
    tail = ["[ 5.3] devmem_kunit: expected WARNING end"] if close else []
    return lambda d: edit(d, "dmesg", lambda ls: ls + [
        "[ 5.0] devmem_kunit: expected WARNING begin: leak", *lines, *tail])


# Defects of the VM's verdict (tools/verdict.py, test profile).
VERDICT_DEFECTS = [
    ("log_wrapped", lambda d: edit(d, "kmsg", lambda ls: ls[3:]), "kernel_log_whole"),
    ("log_records_lost", lambda d: edit(d, "kmsg", lambda ls: ls[:3] + ["lost"] + ls[3:]),
     "kernel_log_whole"),
    ("log_gap", lambda d: edit(d, "kmsg", lambda ls: ls[:3] + ls[4:]), "kernel_log_whole"),
    ("log_missing", lambda d: edit(d, "kmsg", lambda _: None), "kernel_log_whole"),
    ("log_copy_unfinished", lambda d: edit(d, "kmsg", lambda ls: ls[:-1]), "kernel_log_whole"),
    ("rcu_self_stall_is_splat", lambda d: edit(
        d, "dmesg", lambda ls: ls + ["[ 90.0] rcu: INFO: rcu_preempt self-detected stall on CPU"]),
     "kernel_clean"),
    ("hung_task_is_splat", lambda d: edit(
        d, "dmesg", lambda ls: ls + ["[ 99.0] INFO: task kworker/0:1:12 blocked for more than 122 seconds."]),
     "kernel_clean"),
    ("slub_debug_narrowed", lambda d: edit(
        d, "debug-state", lambda ls: [x + " slub_debug=FZP,kmalloc-64" if x.startswith("cmdline") else x
                                      for x in ls]),
     "debug_options"),
    ("kmemleak_off_on_cmdline", lambda d: edit(
        d, "debug-state", lambda ls: [x + " kmemleak=off" if x.startswith("cmdline") else x
                                      for x in ls]),
     "debug_options"),
    ("stalled_pool_is_splat", lambda d: edit(
        d, "dmesg", lambda ls: ls + ["[ 70.0] page_pool_release_retry() stalled pool "
                                     "shutdown: id 9, 1 inflight 60 sec"]),
     "kernel_clean"),
    ("warning_is_splat", lambda d: edit(d, "console.log", lambda ls: ls + ["WARNING: CPU: 0 at x"]),
     "kernel_clean"),
    ("expected_warning_twice_is_splat",
     in_window("[ 5.1] WARNING: CPU: 0 at a", "[ 5.2] WARNING: CPU: 0 at b"), "kernel_clean"),
    ("expected_warning_missing_is_splat", in_window(), "kernel_clean"),
    ("bug_in_expected_window_is_splat",
     in_window("[ 5.1] WARNING: CPU: 0 at a", "[ 5.2] BUG: KASAN: x"), "kernel_clean"),
    ("expected_window_unclosed_is_splat",
     in_window("[ 5.1] WARNING: CPU: 0 at a", close=False), "kernel_clean"),
    ("slub_debug_off", lambda d: edit(
        d, "debug-state", lambda ls: [x.replace("slub_poison 1", "slub_poison 0") for x in ls]),
     "debug_options"),
    ("dma_filter_off", lambda d: edit(
        d, "debug-state", lambda ls: [x for x in ls if not x.startswith("dma_debug")]),
     "debug_options"),
    ("kmemleak_off", lambda d: edit(d, "dmesg", lambda ls: [x for x in ls if "kmemleak" not in x]),
     "kmemleak_clean"),
    ("kmemleak_leak", lambda d: edit(d, "kmemleak", lambda _: ["unreferenced object 0x1 (size 8):"]),
     "kmemleak_clean"),
    ("guest_unfinished", lambda d: edit(d, "finished", lambda _: None), "guest_finished"),
]


def run_ktap(d, src):
    verdict.judge(d, "test")
    return {name: (st, note) for name, st, note in ktap.collect(d, ["alpha"], [src])}


# A selftest whose deferred cleanup fails (something it made was left
# behind, or a release check it deferred failed) must fail, though its body
# passed; the next test is unaffected, and the suite exits non-zero.
RUNNER_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from devmem import defer, run_tests, test


def still_bound():
    raise AssertionError("binding 7 is still bound")


@test
def leaves_something_behind():
    defer(still_bound)


@test
def cleans_up():
    defer(lambda: None)


run_tests("runner")
"""


def check_runner():
    """(ok, note) of the selftest runner's cleanup rule, run in a child
    Python with the tree the selftests import pyynl from."""
    tree = os.environ.get("DEVMEM_TREE")
    if not tree:
        return False, "DEVMEM_TREE is not set (tools/check.sh sets it)"
    lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "selftests", "lib")
    p = subprocess.run([sys.executable, "-c", RUNNER_SCRIPT, lib], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, DEVMEM_TREE=tree))
    lines = p.stdout.splitlines()
    ok = ("not ok 1 leaves_something_behind" in lines
          and any(ln.startswith("ok 2 cleans_up") for ln in lines) and p.returncode == 1)
    return ok, "" if ok else f"exit {p.returncode}: {lines[-4:]} {p.stderr[-300:]!r}"


def check_specs_refreshed():
    """(ok, note): a spec copy left by an earlier tree (a run before a
    series added an attribute) is replaced by the tree's own when the
    selftest library is imported, not used as it is."""
    tree = os.environ.get("DEVMEM_TREE")
    if not tree:
        return False, "DEVMEM_TREE is not set (tools/check.sh sets it)"
    lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "selftests", "lib")
    specs = tempfile.mkdtemp(prefix="devmem-specs-")
    try:
        os.makedirs(os.path.join(specs, "specs"))
        stale = os.path.join(specs, "specs", "netdev.yaml")
        with open(stale, "w") as f:
            f.write("name: netdev\n# an earlier tree's spec\n")
        p = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {lib!r}); import devmem"],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, DEVMEM_TREE=tree, DEVMEM_SPECS=specs))
        with open(stale) as a, open(os.path.join(tree, "Documentation/netlink/specs/netdev.yaml")) as b:
            ok = p.returncode == 0 and a.read() == b.read()
        return ok, "" if ok else f"exit {p.returncode}, stale copy kept {p.stderr[-300:]!r}"
    finally:
        shutil.rmtree(specs)


def main():
    passed = failed = 0

    def report(name, ok, note=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
        print(f"{'PASS' if ok else 'FAIL'} harness:{name}" + (f"  ({note})" if note else ""))

    report("cleanup_failure_fails_test", *check_runner())
    report("stale_spec_copy_refreshed", *check_specs_refreshed())
    top = tempfile.mkdtemp(prefix="devmem-harness-")
    try:
        d, src = os.path.join(top, "run"), os.path.join(top, "kunit.c")
        os.mkdir(d)
        clean_run(d, src)
        res = run_ktap(d, src)
        bad = {k: v for k, v in res.items() if v[0] != "PASS"}
        want = {"alpha.one", "alpha.two", "kunit.net_devmem.first_case",
                "kunit.net_devmem.second_case", "vm.guest_finished", "vm.kernel_clean",
                "vm.kernel_log_whole", "vm.kmemleak_clean", "vm.debug_options"}
        report("clean_run_passes", not bad and set(res) == want,
               f"failing: {bad}; got {sorted(res)}" if bad or set(res) != want else "")
        # One warning a test asked for, inside its window, is not a splat.
        shutil.rmtree(d)
        os.mkdir(d)
        clean_run(d, src)
        in_window("[ 5.1] WARNING: CPU: 0 at a")(d)
        ok = verdict.judge(d, "test")
        report("expected_warning_in_window_passes", ok,
               "" if ok else open(os.path.join(d, "verdict")).read().strip())
        for name, defect, test, *why in DEFECTS:
            shutil.rmtree(d)
            os.mkdir(d)
            clean_run(d, src)
            defect(d)
            res = run_ktap(d, src)
            st, note = res.get(test, ("absent", ""))
            # Where one result stands for several rules, the note must name
            # the rule this defect breaks.
            ok = st == "FAIL" and all(w in note for w in why)
            report(name, ok, "" if ok else f"{test}: {st} {note!r}; {res}")
        for name, defect, check in VERDICT_DEFECTS:
            shutil.rmtree(d)
            os.mkdir(d)
            clean_run(d, src)
            defect(d)
            ok = verdict.judge(d, "test")
            lines = dict(ln.split(" ", 1) for ln in open(os.path.join(d, "verdict")).read().splitlines())
            st = lines.get(check, "absent").split(" ", 1)[0]
            report(name, not ok and st == "FAIL",
                   "" if st == "FAIL" else f"{check}: {st}")
    finally:
        shutil.rmtree(top)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
