#!/usr/bin/env python3
"""Turn the KTAP a VM run produced into one line per test and a verdict.

  ktap.py FLAVOR RESULT_DIR EXPECTED_SKIPS

Reads RESULT_DIR/*.tap (selftests) and the KUnit results in RESULT_DIR/dmesg,
prints `PASS|FAIL|SKIP flavor:suite.test` lines and, on its last line,
`N passed, N failed`. A SKIP counts as a failure unless EXPECTED_SKIPS lists
the test with a reason. The VM's own verdict (command status, splats,
kmemleak) is one more test, `flavor:vm.kernel_clean`, from RESULT_DIR/verdict.
"""

import glob
import os
import re
import sys

RESULT = re.compile(r"^(not ok|ok)\s+\d+\s+([^#]*?)\s*(?:#\s*(.*))?$")


def parse_tap(lines, suite):
    """Yield (name, status, note) for top-level results of a selftest file."""
    for line in lines:
        m = RESULT.match(line)
        if not m:
            continue
        ok, name, directive = m.group(1), m.group(2).strip(), m.group(3) or ""
        if name.startswith(suite + "."):  # ksft names cases "<file>.<case>"
            name = name[len(suite) + 1:]
        if directive.upper().startswith("SKIP"):
            yield f"{suite}.{name}", "SKIP", directive[4:].strip()
        else:
            yield f"{suite}.{name}", "PASS" if ok == "ok" else "FAIL", ""


def parse_kunit(lines):
    """Yield KUnit results per test case: `kunit.<suite>.<case>`.

    Suites are at indent 4 below the top-level KTAP header and their cases at
    indent 4 too; parameterised cases print their parameters one level deeper,
    and the case's own line aggregates them. A suite that fails without any
    case result (e.g. its init failed) is reported as `kunit.<suite>`.
    """
    suite, cases = None, 0
    ts = re.compile(r"^\[\s*\d+\.\d+\]\s?")
    for raw in lines:
        line = ts.sub("", raw.rstrip("\n"))
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        m = re.match(r"^# Subtest: (\S+)", body)
        if m and indent == 4:
            suite, cases = m.group(1), 0
            continue
        m = RESULT.match(body)
        if not m:
            continue
        ok, name, d = m.group(1), m.group(2).strip(), m.group(3) or ""
        if indent == 4 and suite:
            cases += 1
            if d.upper().startswith("SKIP"):
                yield f"kunit.{suite}.{name}", "SKIP", d[4:].strip()
            else:
                yield f"kunit.{suite}.{name}", "PASS" if ok == "ok" else "FAIL", ""
        elif indent == 0 and suite:
            if ok != "ok" and cases == 0:
                yield f"kunit.{suite}", "FAIL", "suite failed without results"
            suite = None


def main():
    flavor, rdir, skips_file = sys.argv[1:4]
    expected = {}
    if os.path.exists(skips_file):
        for line in open(skips_file):
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                expected[name] = reason.strip()

    results = []
    for tap in sorted(glob.glob(os.path.join(rdir, "*.tap"))):
        suite = os.path.basename(tap)[:-4]
        lines = open(tap, errors="replace").readlines()
        got = list(parse_tap(lines, suite))
        if not got:
            got = [(f"{suite}.ran", "FAIL", "no KTAP results")]
        # A suite that died half way (a kernel Oops kills the process) has
        # fewer results than its plan: the missing ones are a failure too.
        plan = next((int(m.group(1)) for m in
                     (re.match(r"^1\.\.(\d+)\s*$", ln) for ln in lines) if m), None)
        if plan is not None and len(got) < plan:
            got.append((f"{suite}.complete", "FAIL",
                        f"{plan - len(got)} of {plan} planned tests never reported"))
        results += got
    dmesg = os.path.join(rdir, "dmesg")
    kunit = []
    if os.path.exists(dmesg):
        kunit = list(parse_kunit(open(dmesg, errors="replace")))
    # Every flavor's config enables KUnit suites: none found means the
    # results were lost (or never ran), not that there was nothing to run.
    results += kunit or [("kunit.ran", "FAIL", "no KUnit results in dmesg")]
    verdict = os.path.join(rdir, "verdict")
    v = open(verdict).read().strip() if os.path.exists(verdict) else "missing"
    results.append(("vm.kernel_clean", "PASS" if v == "clean" else "FAIL", v))

    passed = failed = 0
    for name, status, note in results:
        full = f"{flavor}:{name}"
        if status == "SKIP":
            if full in expected or name in expected:
                status, note = "PASS", f"expected skip: {expected.get(full, expected.get(name))}"
            else:
                status, note = "FAIL", f"unexpected skip: {note}"
        if status == "PASS":
            passed += 1
        else:
            failed += 1
        print(f"{status} {full}" + (f"  ({note})" if note else ""))
    # Machine-readable counts for check.sh.
    with open(os.path.join(rdir, "counts"), "w") as f:
        f.write(f"{passed} {failed}\n")


if __name__ == "__main__":
    main()
