# SPDX-License-Identifier: GPL-2.0
"""Upstream drivers/net/hw selftests run as they are, over our netdevsim pair."""

import os
import signal
import subprocess
import sys
import threading

from devmem import NsimPair, cleanup_all, defer

TOOLS = os.environ.get("DEVMEM_TOOLS", ".")
# NetDrvContEnv's netkit guest gets addresses in this prefix, routed by the
# remote through LOCAL_V6 (the prefix of upstream's example).
LOCAL_PREFIX_V6 = "2001:db8:2::/64"


NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"


def _set_hugepages(n):
    with open(NR_HUGEPAGES, "w") as f:
        f.write(str(n))
    with open(NR_HUGEPAGES) as f:
        return int(f.read())


def run_netkit_suite(script, timeout=540, hugepages=None):
    """Runs upstream `script` (a path under the tools directory, where
    tools/build-selftest-tools.sh put it beside its ncdevmem and the
    nk_*.bpf.o objects) through its own main(), on a 4-queue netdevsim pair whose local port does DMA; its
    KTAP becomes this suite's, line by line as it is printed. A run past
    `timeout` gets SIGINT first, so that ksft and NetDrvContEnv undo their
    netkit pair, namespaces and tc set-up, then its whole process group is
    killed, and the suite bails out. Exits with the script's status, but
    for ksft's "something skipped" (4): skips are judged line by line.

    `hugepages`, if given, is the number of 2 MiB pages reserved for the
    run, restored after. Upstream 7.3's large-net_iov cases reserve 64
    themselves, and each ncdevmem of their sweep puts its 66 MiB buffer on
    33 of them; but the buffer stays pinned until the previous ncdevmem's
    binding is freed, after that process exits and its page pools drain,
    and the next ncdevmem of the sweep starts at once. With 64, the next
    buffer fits only if that free came first (on both flavors: a binding
    is freed asynchronously by design), so on a loaded machine the next
    udmabuf can fail with ENOMEM, as check_nk_rx_large_niov's did once on
    the Rust flavor in a clean-clone run with the clippy and driver builds
    beside the VMs. 128 holds three buffers."""
    if hugepages is not None:
        with open(NR_HUGEPAGES) as f:
            old_pages = int(f.read())
        # Restored by cleanup_all(), whichever way the run ends: first
        # deferred, last undone, after the pair is gone.
        defer(_set_hugepages, old_pages)
        got = _set_hugepages(hugepages)
        if got < hugepages:
            print(f"# nr_hugepages {got} of {hugepages} (memory fragmented)",
                  flush=True)
    try:
        pair = NsimPair(queues=4)
        pair.local.set_dma(True)
    except BaseException:
        # No suite to run: undo the reservation (and a half-made pair)
        # before the error ends this process.
        cleanup_all()
        raise
    env = dict(os.environ, **pair.env(), LOCAL_PREFIX_V6=LOCAL_PREFIX_V6,
               PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, os.path.join(TOOLS, script)],
                         env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    timer = threading.Timer(timeout, _interrupt, (p,))
    timer.start()
    try:
        for line in p.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
        rc = p.wait()
    finally:
        timer.cancel()
        left = cleanup_all()
    if left:
        # What the test left behind fails the suite (after its KTAP lines).
        print(f"Bail out! cleanup failed: {'; '.join(left)}", flush=True)
        sys.exit(1)
    if getattr(p, "devmem_timed_out", False):
        print(f"Bail out! {script} still running after {timeout} s")
        sys.exit(1)
    sys.exit(0 if rc == KSFT_SKIP else rc)


KSFT_SKIP = 4


def _interrupt(p):
    """The timeout: SIGINT, then SIGKILL 30 s later if it is still there."""
    p.devmem_timed_out = True
    try:
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
