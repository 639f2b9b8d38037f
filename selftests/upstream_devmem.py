#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Upstream drivers/net/hw/devmem.py, unchanged, end to end over a 4-queue
netdevsim pair with a netns "remote" (REMOTE_TYPE=netns, no ssh).

NetDrvEpEnv's own netdevsim pair has one queue, on which every devmem case
skips; this file creates the pair instead and hands NetDrvEpEnv its
configuration in the environment, which NetDrvEpEnv reads the same way as
net.config (the tree is read-only in the VM). Its four cases run as
devmem.py's main() runs them, with ncdevmem from our build of the 7.2 tree:
RX with validation, TX, TX in 3-byte chunks, and the RX header-split sweep;
every case first probes the device with `ncdevmem -f`.
"""

import importlib.util
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import NsimPair, TREE, cleanup_all  # noqa: E402

HW = os.path.join(TREE, "tools/testing/selftests/drivers/net/hw")

NCDEVMEM = os.path.join(os.environ.get("DEVMEM_TOOLS", "."), "ncdevmem")

sys.path.insert(0, HW)
pair = NsimPair(queues=4)
# The local port receives (bind-rx) and sends (bind-tx) from dma-bufs.
pair.local.set_dma(True)
os.environ.update(pair.env())
try:
    # Loaded by path: our own helper library is also called "devmem".
    spec = importlib.util.spec_from_file_location("upstream_devmem",
                                                  os.path.join(HW, "devmem.py"))
    up = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(up)
    from lib.py import NetDrvEpEnv, ksft_run  # noqa: E402  (upstream)

    with NetDrvEpEnv(up.__file__) as cfg:
        up.setup_test(cfg, NCDEVMEM)
        ksft_run([up.check_rx, up.check_tx, up.check_tx_chunks,
                  up.check_rx_hds], args=(cfg,))
finally:
    left = cleanup_all()
    if left:
        # After the KTAP lines: what a test left behind fails the suite.
        print(f"Bail out! cleanup failed: {'; '.join(left)}", flush=True)
        sys.exit(1)
# ksft_exit's status convention differs from ours; the KTAP lines decide.
