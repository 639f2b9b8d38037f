#!/usr/bin/env python3
"""Turn what a VM run produced into one line per test and a verdict.

  ktap.py FLAVOR RESULT_DIR --skips FILE --suites "S1 S2 ..." --kunit SRC...

Prints `PASS|FAIL flavor:suite.test` lines, then a `time` line per suite,
and writes `N N` (passed, failed) to RESULT_DIR/counts. A SKIP counts as a
failure unless the skips file lists the test with a reason.

Nothing that was expected may vanish from the count:
  - every suite named by --suites must have left RESULT_DIR/<suite>.tap and
    <suite>.rc (selftests/run.sh): one that did not is `<suite>.ran FAIL`;
  - a suite's KTAP must have one plan, results numbered 1..plan in order and
    as many as planned, and no "Bail out!": a result out of sequence (a stray
    line from a subprocess, say) is not counted and fails `<suite>.ktap`;
  - a suite that exited non-zero with no failing result fails
    `<suite>.exit_status`;
  - KUnit's results (RESULT_DIR/dmesg) are read the same way at both of
    their levels (the suites' plan, each suite's plan of cases), and every
    case the --kunit sources declare must report; a result whose suite
    header was lost fails too;
  - each line of RESULT_DIR/verdict (tools/verdict.py) is a test `vm.<check>`,
    and a command (RESULT_DIR/status) that exited non-zero while no test
    failed fails `vm.command_exit`.
"""

import argparse
import os
import re

RESULT = re.compile(r"^(not ok|ok)\s+(\d+)(?:\s+([^#]*?))?\s*(?:#\s*(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)(?:\s*#.*)?$")
TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def status_of(ok, directive):
    if directive.upper().startswith("SKIP"):
        return "SKIP", directive[4:].strip()
    return ("PASS" if ok == "ok" else "FAIL"), ""


def parse_tap(lines, suite):
    """Results of one selftest suite's KTAP, strictly: a list of
    (name, status, note). Lines indented or starting with '#' are
    diagnostics; only top-level lines make results."""
    got, errors, plan, names = [], [], None, set()
    diag = []  # the '# ' lines since the last result: a failure's reason
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if line.startswith("#"):
            diag.append(line[1:].strip())
        if line.startswith("Bail out!"):
            errors.append(f"line {n}: {line}")
            continue
        m = PLAN.match(line)
        if m:
            if plan is not None:
                errors.append(f"line {n}: a second plan ({line})")
            else:
                plan = int(m.group(1))
            continue
        m = RESULT.match(line)
        if not m:
            continue
        ok, num, name, d = m.group(1), int(m.group(2)), (m.group(3) or "").strip(), m.group(4) or ""
        if num != len(got) + 1:
            errors.append(f"line {n}: result {num} out of sequence "
                          f"(expected {len(got) + 1}): {line[:80]}")
            continue
        if name.startswith(suite + "."):  # ksft names cases "<file>.<case>"
            name = name[len(suite) + 1:]
        name = name or f"case{num}"
        if name in names:
            errors.append(f"line {n}: {name} reported twice")
            continue
        names.add(name)
        st, note = status_of(ok, d)
        if st == "FAIL" and not note:
            # The traceback's last line names the exception; CI logs keep
            # only the head and the tail, so the reason travels with the line.
            reason = [x for x in diag if x and not x.startswith(("time=", "suite:"))]
            note = reason[-1][:300] if reason else ""
        diag = []
        got.append((f"{suite}.{name}", st, note))
    if plan is None:
        errors.append("no plan (1..N) line")
    elif plan == 0:
        errors.append("a plan of no tests (1..0): the suite ran nothing")
    elif len(got) < plan:
        errors.append(f"{plan - len(got)} of {plan} planned tests never reported")
    elif len(got) > plan:
        errors.append(f"{len(got)} results for a plan of {plan}")
    if errors:
        got.append((f"{suite}.ktap", "FAIL", "; ".join(errors[:3]) +
                    (f" (+{len(errors) - 3} more)" if len(errors) > 3 else "")))
    return got


RUST_ONLY = re.compile(r"^#if IS_ENABLED\(CONFIG_NET_DEVMEM_RUST\)\n.*?^#endif\n",
                       re.M | re.S)


def kunit_expected(sources, rust=True):
    """{suite: [case, ...]} that the KUnit sources declare; without `rust`,
    less the cases inside `#if IS_ENABLED(CONFIG_NET_DEVMEM_RUST)` blocks
    (behaviour only the Rust provider has)."""
    want = {}
    for src in sources:
        text = open(src).read()
        if not rust:
            text = RUST_ONLY.sub("", text)
        cases = re.findall(r"KUNIT_CASE(?:_PARAM)?(?:_SLOW)?\((\w+)", text)
        for suite in re.findall(r'\.name\s*=\s*"([^"]+)"', text):
            want[suite] = cases
    return want


def parse_kunit(lines, want):
    """KUnit's results from the kernel log, per case: `kunit.<suite>.<case>`.

    The top-level KTAP header and plan (the number of suites) are at indent 0,
    as is each suite's result; a suite's header, plan and case results are at
    indent 4 (a parameterised case's parameters at 8, aggregated by its own
    line, are left out)."""
    got, errors = [], []
    top_plan, suites_seen = None, 0
    suite, plan, cases = None, None, []
    for raw in lines:
        line = TS.sub("", raw.rstrip("\n"))
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if indent == 0 and suite is None and top_plan is None and PLAN.match(body):
            top_plan = int(PLAN.match(body).group(1))
            continue
        m = re.match(r"^# Subtest: (\S+)", body)
        if m and indent == 4:
            if suite is not None:
                errors.append(f"suite {suite} has no result line")
            suite, plan, cases = m.group(1), None, []
            continue
        if indent == 4 and suite is not None and plan is None and PLAN.match(body):
            plan = int(PLAN.match(body).group(1))
            continue
        m = RESULT.match(body)
        if not m:
            continue
        ok, num, name, d = m.group(1), int(m.group(2)), (m.group(3) or "").strip(), m.group(4) or ""
        if indent == 4:
            if suite is None:
                got.append((f"kunit.{name}", "FAIL", "case result without its suite header"))
                continue
            if num != len(cases) + 1:
                errors.append(f"{suite}: case {num} out of sequence")
                continue
            cases.append(name)
            st, note = status_of(ok, d)
            got.append((f"kunit.{suite}.{name}", st, note))
        elif indent == 0 and top_plan is not None:
            suites_seen += 1
            if num != suites_seen:
                errors.append(f"suite result {num} ({name}) out of sequence")
            if suite is None or name != suite:
                got.append((f"kunit.{name}", "FAIL", "suite result without its header"))
                continue
            if plan is None:
                errors.append(f"{suite}: no plan")
            elif len(cases) != plan:
                errors.append(f"{suite}: {len(cases)} of {plan} planned cases reported")
            if ok != "ok" and not any(st == "FAIL" for n, st, _ in got
                                      if n.startswith(f"kunit.{suite}.")):
                got.append((f"kunit.{suite}", "FAIL",
                            "suite reported not ok without a failing case"))
            suite = None
    if suite is not None:
        errors.append(f"suite {suite} never finished")
    if top_plan is None:
        errors.append("no KUnit plan in the kernel log")
    elif suites_seen != top_plan:
        errors.append(f"{suites_seen} of {top_plan} planned suites reported")
    reported = {n for n, _, _ in got}
    for s, cs in want.items():
        for c in cs:
            if f"kunit.{s}.{c}" not in reported:
                errors.append(f"kunit.{s}.{c} never reported")
    if errors:
        got.append(("kunit.ktap", "FAIL", "; ".join(errors[:3]) +
                    (f" (+{len(errors) - 3} more)" if len(errors) > 3 else "")))
    return got


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None


def suite_times(out_log):
    """{suite: seconds} from selftests/run.sh's `=== <suite> end` lines."""
    times = {}
    for line in (out_log or "").splitlines():
        m = re.match(r"^=== (\S+) end rc=\S+ s=([\d.]+)", line)
        if m:
            times[m.group(1)] = float(m.group(2))
    return times


def collect(rdir, suites, kunit_sources, rust=True):
    results = []
    present = sorted(f[:-4] for f in os.listdir(rdir) if f.endswith(".tap"))
    order = list(suites) + [s for s in present if s not in suites]
    for suite in order:
        text = read(os.path.join(rdir, f"{suite}.tap"))
        if text is None:
            results.append((f"{suite}.ran", "FAIL", "expected suite never ran"))
            continue
        got = parse_tap(text.splitlines(), suite)
        rc = (read(os.path.join(rdir, f"{suite}.rc")) or "").strip()
        if rc == "":
            got.append((f"{suite}.exit_status", "FAIL", "no exit status recorded"))
        elif rc != "0" and not any(st == "FAIL" for _, st, _ in got):
            what = "timed out (124)" if rc == "124" else f"exited {rc}"
            got.append((f"{suite}.exit_status", "FAIL", f"{what} with no failing test"))
        results += got
    dmesg = read(os.path.join(rdir, "dmesg"))
    if dmesg is None:
        results.append(("kunit.ran", "FAIL", "no kernel log"))
    else:
        results += parse_kunit(dmesg.splitlines(), kunit_expected(kunit_sources, rust))
    verdict = read(os.path.join(rdir, "verdict"))
    if not verdict:
        results.append(("vm.verdict", "FAIL", "no verdict (tools/verdict.py did not run)"))
    for line in (verdict or "").splitlines():
        check, st, note = (line.split(" ", 2) + ["", ""])[:3]
        results.append((f"vm.{check}", st if st in ("PASS", "FAIL") else "FAIL", note))
    status = (read(os.path.join(rdir, "status")) or "missing").strip()
    if status != "0" and not any(st == "FAIL" for _, st, _ in results):
        results.append(("vm.command_exit", "FAIL",
                        f"the command exited {status} with no failing test"))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("flavor")
    ap.add_argument("rdir")
    ap.add_argument("--skips", default="")
    ap.add_argument("--suites", default="")
    ap.add_argument("--kunit", nargs="*", default=[])
    a = ap.parse_args()
    expected = {}
    if a.skips and os.path.exists(a.skips):
        for line in open(a.skips):
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                expected[name] = reason.strip()

    results = collect(a.rdir, a.suites.split(), a.kunit, "rust" in a.flavor)
    passed = failed = 0
    per_suite = {}
    for name, status, note in results:
        full = f"{a.flavor}:{name}"
        if status == "SKIP":
            if full in expected or name in expected:
                status, note = "PASS", f"expected skip: {expected.get(full, expected.get(name))}"
            else:
                status, note = "FAIL", f"unexpected skip: {note}"
        if status == "PASS":
            passed += 1
        else:
            failed += 1
        s = per_suite.setdefault(name.split(".", 1)[0], [0, 0])
        s[0 if status == "PASS" else 1] += 1
        print(f"{status} {full}" + (f"  ({note})" if note else ""))
    times = suite_times(read(os.path.join(a.rdir, "out.log")))
    for suite, (p, f) in per_suite.items():
        t = f"{times[suite]:7.1f} s" if suite in times else "      - "
        print(f"time {a.flavor}:{suite:<24} {t}  ({p} ok, {f} not ok)")
    with open(os.path.join(a.rdir, "counts"), "w") as f:
        f.write(f"{passed} {failed}\n")


if __name__ == "__main__":
    main()
