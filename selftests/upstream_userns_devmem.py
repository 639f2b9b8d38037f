#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Upstream drivers/net/hw/userns_devmem.py, unchanged, through its own
main(): nk_devmem.py's four cases with the netkit guest in a netns owned by
a non-init user namespace. See lib/upstream.py for how it is run.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from upstream import run_netkit_suite  # noqa: E402

run_netkit_suite("userns_devmem.py")
