#!/usr/bin/env python3
"""Show VM runs' results on the console while the guests produce them.

  follow.py STOP_FILE FLAVOR=RESULT_DIR...

Polls each RESULT_DIR (tools/vm-run.sh's) once a second: KUnit's results
from the boot's log (boot.dmesg), then every selftest result line of out.log
as it is written, with the flavor's running count and the suite's elapsed
time, and each suite's start and end. A failing test's last diagnostic
lines come with it. Exits after one more pass once STOP_FILE exists.

The count shown here is for watching; the run's verdict is tools/ktap.py's,
which reads the same files strictly once the guest is done.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ktap import RESULT, parse_kunit  # noqa: E402


def stamp():
    return time.strftime("%H:%M:%S")


class Run:
    def __init__(self, flavor, rdir):
        self.flavor, self.rdir = flavor, rdir
        self.pos = 0
        self.partial = ""
        self.kunit_done = False
        self.passed = self.failed = 0
        self.suite, self.t0 = None, None
        self.diag = []
        self.started = time.monotonic()

    def say(self, text):
        print(f"[{stamp()}] {self.flavor:<4} {text}", flush=True)

    def count(self, status):
        if status == "PASS":
            self.passed += 1
        else:
            self.failed += 1
        # Not the final line's wording: that one is check.sh's alone.
        return f"[{self.passed} ok, {self.failed} not ok]"

    def poll_kunit(self):
        if self.kunit_done:
            return
        path = os.path.join(self.rdir, "boot.dmesg")
        if not os.path.exists(os.path.join(self.rdir, "out.log")):
            return  # boot.dmesg is complete once the command has started
        self.kunit_done = True
        try:
            lines = open(path, errors="replace").read().splitlines()
        except FileNotFoundError:
            self.say("no boot log: KUnit results will be read at the end")
            return
        boot = time.monotonic() - self.started
        self.say(f"booted in {boot:.0f} s")
        for name, status, note in parse_kunit(lines, {}):
            self.say(f"{status} {name}{'  (' + note + ')' if note else ''}  "
                     f"{self.count(status)}")

    def poll_out(self):
        path = os.path.join(self.rdir, "out.log")
        try:
            with open(path, errors="replace") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                if end < self.pos:  # a new run's file
                    self.pos, self.partial = 0, ""
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except FileNotFoundError:
            return
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()
        for line in lines:
            self.line(line)

    def line(self, line):
        m = re.match(r"^=== (\S+) start", line)
        if m:
            self.suite, self.t0 = m.group(1), time.monotonic()
            self.diag = []
            self.say(f"--- {self.suite}")
            return
        m = re.match(r"^=== (\S+) end rc=(\S+) s=([\d.]+)", line)
        if m:
            self.say(f"--- {m.group(1)} done in {float(m.group(3)):.1f} s, "
                     f"exit {m.group(2)}")
            self.suite = None
            return
        if line.startswith("#") or line.startswith(" "):
            self.diag = (self.diag + [line])[-6:]
            return
        m = RESULT.match(line)
        if not m or self.suite is None:
            return
        ok, name, d = m.group(1), (m.group(3) or "").strip(), m.group(4) or ""
        status = "SKIP" if d.upper().startswith("SKIP") else ("PASS" if ok == "ok" else "FAIL")
        if name.startswith(self.suite + "."):
            name = name[len(self.suite) + 1:]
        t = re.search(r"time=([\d.]+)s", d)
        took = f" ({float(t.group(1)):.1f} s)" if t else ""
        el = time.monotonic() - self.t0
        self.say(f"{status} {self.suite}.{name}{took}  {self.count(status)}  "
                 f"{self.suite} {el:.0f} s")
        if status == "FAIL":
            for dl in self.diag:
                print(f"           {dl}", flush=True)
        self.diag = []


def main():
    stop = sys.argv[1]
    runs = [Run(*a.split("=", 1)) for a in sys.argv[2:]]
    parent = os.getppid()
    while True:
        # The stop file, or check.sh gone (interrupted): one more pass.
        last = os.path.exists(stop) or os.getppid() != parent
        for r in runs:
            r.poll_kunit()
            r.poll_out()
        if last:
            break
        time.sleep(1)


if __name__ == "__main__":
    main()
