#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Upstream drivers/net/ping.py, unchanged, over a 4-queue netdevsim pair with
a netns "remote" (REMOTE_TYPE=netns, no ssh): proves the NetDrvEpEnv path the
devmem tests take.

Only ping.py's default cases run: its XDP cases load BPF objects built with
clang, which the test image does not build. The upstream test functions and
upstream ksft_run are used as they are; this file only supplies the
environment and the case list.

One case of ours checks the pair itself: what upstream's devmem tests need of
the remote beyond what ping does.
"""

import os
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import NsimPair, TREE, cleanup_all, sh, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(TREE, "tools/testing/selftests/drivers/net"))


def remote_rebinds_a_closed_source_port(cfg, _ethnl):
    """Upstream's socat senders bind the remote end to the listener's port,
    which the local side picked free with bind(0), and the remote closes
    first. Once such a connection has ended, the remote must be able to
    bind that port again at once, as a later test that draws the same port
    does: a minute of TIME_WAIT there made it fail with EADDRINUSE."""
    from lib.py import cmd, rand_port

    port = rand_port()
    local, remote = NsimPair.V6
    send = (f"echo devmem | socat -u - "
            f"TCP6:[{local}]:{port},bind=[{remote}]:{port}")
    held = (f"ip netns exec {NsimPair.REMOTE_NS} "
            f"ss -Htan '( sport = :{port} )'")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as srv:
        # A sender that never connects must fail the case, not leave a
        # thread blocked in accept() that keeps the suite from exiting.
        srv.settimeout(10)
        srv.bind((local, port))
        srv.listen(2)
        for _ in range(2):
            got = []

            def serve():
                conn, _ = srv.accept()
                with conn:
                    while chunk := conn.recv(64):
                        got.append(chunk)

            t = threading.Thread(target=serve, daemon=True)
            t.start()
            cmd(send, host=cfg.remote, shell=True)
            t.join(10)
            if t.is_alive() or b"".join(got) != b"devmem\n":
                raise AssertionError(f"the listener got {got!r}")
            wait_for(lambda: not sh(held).strip(),
                     f"the remote to let go of port {port}")


pair = NsimPair(queues=4)
os.environ.update(pair.env())
try:
    import ping  # noqa: E402  (upstream)
    from lib.py import EthtoolFamily, NetDrvEpEnv, ksft_run  # noqa: E402

    with NetDrvEpEnv(ping.__file__) as cfg:
        ping.get_interface_info(cfg)
        ping.set_interface_init(cfg)
        ksft_run([ping.test_default_v4, ping.test_default_v6,
                  remote_rebinds_a_closed_source_port],
                 args=(cfg, EthtoolFamily()))
finally:
    left = cleanup_all()
    if left:
        # After the KTAP lines: what a test left behind fails the suite.
        print(f"Bail out! cleanup failed: {'; '.join(left)}", flush=True)
        sys.exit(1)
# ksft_exit's status convention differs from ours; the KTAP lines decide.
