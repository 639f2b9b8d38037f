#!/usr/bin/env python3
"""Where the crate's `unsafe` is, per layer, and SAFETY comments that prove
nothing.

    tools/unsafe-report.py [--check]

Layers (see src/devmem_rust.rs):
  abstractions  src/abstractions*          bound for rust/kernel/, in two
                                           rows: the generic modules, and
                                           net/devmem* (devmem's objects that
                                           C reads through devmem.h)
  edge          src/devmem_rust.rs         the exported C ABI
  logic         everything else            must have no `unsafe` at all

A SAFETY comment is weak when it leans on a contract without naming the
fact ("per the function's contract", "guaranteed by the caller", ...) and
says nothing else. With --check, prints one PASS/FAIL line per rule and
exits non-zero if the logic has `unsafe` or any SAFETY comment is weak.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")

BLOCK = re.compile(r"\bunsafe\s*\{")
ANY = re.compile(r"\bunsafe\b(?!\s*\{)\s*(fn|impl|extern|trait)")
WEAK = re.compile(
    r"^(per (the )?(function'?s |caller'?s )?contract|guaranteed by the caller|"
    r"per the caller|see above|as above|the caller'?s contract is [^.]*)\.?$",
    re.I)


def layer(rel):
    if rel.startswith("abstractions/net/devmem"):
        return "  devmem"
    if rel.startswith("abstractions"):
        return "  generic"
    if rel == "devmem_rust.rs":
        return "edge"
    return "logic"


def safety_comments(lines):
    """(line number, text) of each `// SAFETY:` comment, continuation lines
    joined."""
    out = []
    i = 0
    while i < len(lines):
        m = re.match(r"\s*// SAFETY:\s*(.*)", lines[i])
        if not m:
            i += 1
            continue
        start, text = i + 1, [m.group(1)]
        i += 1
        while i < len(lines) and re.match(r"\s*//(?! SAFETY:)(?!/)", lines[i]):
            text.append(re.sub(r"^\s*//\s?", "", lines[i]))
            i += 1
        out.append((start, " ".join(t.strip() for t in text).strip()))
    return out


def main():
    check = "--check" in sys.argv[1:]
    stats = {}
    weak = []
    for dirpath, _, files in os.walk(SRC):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, SRC)
            lines = open(path).read().splitlines()
            code = "\n".join(ln.split("//")[0] for ln in lines)
            st = stats.setdefault(layer(rel), {"files": 0, "lines": 0, "blocks": 0, "other": 0})
            st["files"] += 1
            st["lines"] += len(lines)
            st["blocks"] += len(BLOCK.findall(code))
            st["other"] += len(ANY.findall(code))
            for ln, text in safety_comments(lines):
                if WEAK.match(text) or len(text.split()) < 4:
                    weak.append(f"src/{rel}:{ln}: {text}")
    total = {"files": 0, "lines": 0, "blocks": 0, "other": 0}
    print(f"{'layer':<13} {'files':>5} {'lines':>6} {'unsafe {}':>9} {'per 1000':>8} {'unsafe fn/impl':>14}")
    both = {k: stats.get("  generic", {}).get(k, 0) + stats.get("  devmem", {}).get(k, 0)
            for k in total}
    stats["abstractions"] = both
    for name in ("abstractions", "  generic", "  devmem", "edge", "logic"):
        st = stats.get(name, {"files": 0, "lines": 0, "blocks": 0, "other": 0})
        if not name.startswith(" "):
            for k in total:
                total[k] += st[k]
        per = 1000 * st["blocks"] / st["lines"] if st["lines"] else 0
        print(f"{name:<13} {st['files']:>5} {st['lines']:>6} {st['blocks']:>9} {per:>8.1f} {st['other']:>14}")
    per = 1000 * total["blocks"] / total["lines"] if total["lines"] else 0
    print(f"{'all':<13} {total['files']:>5} {total['lines']:>6} {total['blocks']:>9} {per:>8.1f} {total['other']:>14}")
    print(f"weak SAFETY comments: {len(weak)}")
    for w in weak:
        print("  " + w)
    if not check:
        return 0
    logic = stats.get("logic", {"blocks": 0, "other": 0})
    ok_logic = logic["blocks"] == 0 and logic["other"] == 0
    print(f"{'PASS' if ok_logic else 'FAIL'} rust:lint.logic_has_no_unsafe")
    print(f"{'PASS' if not weak else 'FAIL'} rust:lint.safety_comments_name_their_facts")
    return 0 if ok_logic and not weak else 1


if __name__ == "__main__":
    sys.exit(main())
