#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Upstream 7.3's drivers/net/hw/nk_devmem.py, unchanged, through its own
main(): the netkit devmem cases of 7.2 and check_nk_rx_large_niov
(rx-page-size 16384 on a leased queue), set up as upstream_nk_devmem.py's
are (lib/upstream.py), from the upstream-7.3 directory (see
upstream73_devmem.py).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from upstream import run_netkit_suite  # noqa: E402

run_netkit_suite("upstream-7.3/nk_devmem.py", hugepages=128)
