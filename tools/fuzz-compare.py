#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compares the netlink fuzzer's results of two flavors (selftests/nl_fuzz.py
writes "index op errno hex" per message): the same errno for every message,
but a bind-rx with a refill ring that C refused for having one.
Prints one PASS/FAIL line, and on a mismatch the seed and the first messages
that differ.
  tools/fuzz-compare.py C_RESULTS RUST_RESULTS SEED"""

import errno
import sys

NAME = "fuzz:same_errno_both_flavors"


def load(path):
    with open(path) as f:
        return [line.split() for line in f]


def name(e):
    e = int(e)
    return errno.errorcode.get(e, str(e)) if e else "ok"


def same(a, b):
    """The same outcome on both flavors. A bind-rx with a refill ring
    reaches the C provider only to be refused (EOPNOTSUPP, before it
    allocates anything), where the Rust provider goes on: those messages
    agree when C refused them for that reason and Rust answered anything,
    or when both failed the same way before the provider (the policy,
    a missing attribute, a bad device or queue)."""
    if a[1] == "bind-rx-ring" and int(a[2]) == errno.EOPNOTSUPP:
        return True
    return a[2] == b[2]


def main():
    cpath, rpath, seed = sys.argv[1:4]
    try:
        c, r = load(cpath), load(rpath)
    except OSError as e:
        print(f"FAIL {NAME}  (no results: {e})")
        return 1
    # The bytes may differ where a message names a runtime id (a page
    # pool's): the same seed picks the same symbolic values on both.
    bad = [(a, b) for a, b in zip(c, r) if a[1] != b[1] or not same(a, b)]
    if len(c) != len(r) or not c:
        print(f"FAIL {NAME}  ({len(c)} messages on c, {len(r)} on rust)")
        return 1
    if bad:
        print(f"FAIL {NAME}  ({len(bad)} of {len(c)} messages differ; seed {seed})")
        for a, b in bad[:5]:
            print(f"    message {a[0]} ({a[1]}): c {name(a[2])}, rust {name(b[2])}")
            print(f"      c:    {a[3]}")
            print(f"      rust: {b[3]}")
        return 1
    print(f"PASS {NAME}  ({len(c)} messages, seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
