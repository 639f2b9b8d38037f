#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Upstream 7.3's drivers/net/hw/devmem.py, unchanged, through its own
main(): 7.2's four cases and check_rx_large_niov, which binds with
rx-page-size 16384 (`ncdevmem -b 16384`, its buffer on 2 MiB MFD_HUGETLB
pages, nr_hugepages raised first) and sweeps payloads across the net_iov
boundary. It runs from the upstream-7.3 directory tools/build-selftest-tools.sh
made: 7.3's devmem_lib.py and ncdevmem (built against this tree's headers)
beside it, this tree's test library under it. Over the same 4-queue
netdevsim pair as 7.2's suites (lib/upstream.py).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from upstream import run_netkit_suite  # noqa: E402

run_netkit_suite("upstream-7.3/devmem.py", hugepages=128)
