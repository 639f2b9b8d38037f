#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Upstream drivers/net/hw/nk_devmem.py, unchanged, through its own main():
devmem RX, TX, TX in 3-byte chunks and the header-split sweep through a
netkit pair, whose guest end (in a netns) leases RX queue 3 of the 4-queue
netdevsim port; BPF programs on clsact redirect between the port and the
pair (NetDrvContEnv). See lib/upstream.py for how it is run.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from upstream import run_netkit_suite  # noqa: E402

run_netkit_suite("nk_devmem.py")
