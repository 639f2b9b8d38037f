# SPDX-License-Identifier: GPL-2.0
"""Upstream drivers/net/hw selftests run as they are, over our netdevsim pair."""

import os
import signal
import subprocess
import sys

from devmem import NsimPair, cleanup_all

TOOLS = os.environ.get("DEVMEM_TOOLS", ".")
# NetDrvContEnv's netkit guest gets addresses in this prefix, routed by the
# remote through LOCAL_V6 (the prefix of upstream's example).
LOCAL_PREFIX_V6 = "2001:db8:2::/64"


def run_netkit_suite(script, timeout=540):
    """Runs upstream `script` (linked into the tools directory beside ncdevmem
    and the nk_*.bpf.o objects by tools/build-selftest-tools.sh) through its
    own main(), on a 4-queue netdevsim pair whose local port does DMA; its
    KTAP becomes this suite's. A run past `timeout` gets SIGINT first, so
    that ksft and NetDrvContEnv undo their netkit pair, namespaces and tc
    set-up, then its whole process group is killed."""
    pair = NsimPair(queues=4)
    pair.local.set_dma(True)
    env = dict(os.environ, **pair.env(), LOCAL_PREFIX_V6=LOCAL_PREFIX_V6)
    p = subprocess.Popen([sys.executable, os.path.join(TOOLS, script)],
                         env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        sys.stdout.write(out)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
        sys.stdout.write(out)
        print(f"not ok 99 {os.path.splitext(script)[0]}.timeout # after {timeout} s")
    finally:
        cleanup_all()
    # ksft_exit's status convention differs from ours; the KTAP lines decide.
