#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Upstream drivers/net/ping.py, unchanged, over a 4-queue netdevsim pair with
a netns "remote" (REMOTE_TYPE=netns, no ssh): proves the NetDrvEpEnv path the
devmem tests take.

Only ping.py's default cases run: its XDP cases load BPF objects built with
clang, which the test image does not build. The upstream test functions and
upstream ksft_run are used as they are; this file only supplies the
environment and the case list.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import NsimPair, TREE, cleanup_all  # noqa: E402

sys.path.insert(0, os.path.join(TREE, "tools/testing/selftests/drivers/net"))

pair = NsimPair(queues=4)
os.environ.update(pair.env())
try:
    import ping  # noqa: E402  (upstream)
    from lib.py import EthtoolFamily, NetDrvEpEnv, ksft_run  # noqa: E402

    with NetDrvEpEnv(ping.__file__) as cfg:
        ping.get_interface_info(cfg)
        ping.set_interface_init(cfg)
        ksft_run([ping.test_default_v4, ping.test_default_v6],
                 args=(cfg, EthtoolFamily()))
finally:
    left = cleanup_all()
    if left:
        # After the KTAP lines: what a test left behind fails the suite.
        print(f"Bail out! cleanup failed: {'; '.join(left)}", flush=True)
        sys.exit(1)
# ksft_exit's status convention differs from ours; the KTAP lines decide.
