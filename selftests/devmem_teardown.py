#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""devmem TCP over the netdevsim data path, torn down the hard ways.

A Python receiver (lib DevmemRx: recvmsg(MSG_SOCK_DEVMEM), payload read back
out of the udmabuf through mmap, SO_DEVMEM_DONTNEED) takes a stream from the
remote netns. Then: the binding goes away while data still flows, the device
is deleted under a bound queue, or the socket closes holding tokens. After
each, nothing may be left: the dma-buf has no attachment, the pools that used
it have no buffers in flight (the VM runner separately fails the run on
kmemleak reports and splats).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from devmem import DevmemRx, NsimPair, eq, remote_send, run_tests, test  # noqa: E402
from stream import SRC, SRC_LEN, assert_released, receive, source  # noqa: E402


@test
def stream_lands_in_dmabuf_intact():
    """Baseline: every payload byte arrives as a dma-buf frag, in order and
    intact, and the binding is released afterwards."""
    src = source()
    pair = NsimPair(queues=4)
    rx = DevmemRx(pair, 5301)
    sender = remote_send(pair, 5301, SRC_LEN, SRC)
    rx.accept()
    data, _ = receive(rx, SRC_LEN + 1)
    eq(len(data), SRC_LEN, "bytes received")
    assert data == src, "payload differs from what was sent"
    eq(sender.wait(timeout=60), 0, "sender exit")
    rx.conn.close()
    rx.close_binding()
    assert_released(rx)


def streaming(port, nbytes=64 << 20):
    """A bound receiver on `port` with a connected sender of nbytes from the
    remote namespace; returns (pair, receiver, sender)."""
    pair = NsimPair(queues=4)
    rx = DevmemRx(pair, port)
    sender = remote_send(pair, port, nbytes)
    rx.accept()
    return pair, rx, sender


@test
def unbind_while_traffic_flows():
    _, rx, sender = streaming(5302)
    data, _ = receive(rx, 1 << 20)
    assert len(data) >= 1 << 20, f"only {len(data)} bytes before unbind"
    # The sender is still going (64 MiB, flow-controlled by us).
    assert sender.poll() is None, "sender finished before the unbind"
    rx.close_binding()
    rx.conn.close()
    rx.lsock.close()
    assert_released(rx)


@test
def delete_device_while_queue_bound():
    pair, rx, sender = streaming(5303)
    _, held = receive(rx, 256 << 10, give_back=False)
    assert held, "no frags held before the delete"
    pair.local.delete()
    rx.conn.close()
    rx.close_binding()
    sender.kill()
    assert_released(rx)


@test
def close_socket_with_tokens_outstanding():
    _, rx, _ = streaming(5304)
    # Every packet takes at least one buffer: hold well under the 1024.
    _, held = receive(rx, 256 << 10, give_back=False)
    assert len(held) > 16, f"only {len(held)} frags held"
    # The socket goes first, holding its frags; then the binding.
    rx.conn.close()
    rx.lsock.close()
    rx.close_binding()
    assert_released(rx)


if __name__ == "__main__":
    run_tests("devmem_teardown")
