"""`send` interrupted at any moment reports exactly what left: the count is taken with the
send (signals held across the pair), so a Ctrl-C between a batch's send and its count no
longer loses the batch from the summary."""

from __future__ import annotations

import random
import signal
import time

import pytest

from mcastkit import MulticastSocket, ReceiveTimeoutError
from tests.support.addrs import asm4
from tests.support.cli import json_lines, mk_popen, wait_socket_open
from tests.support.netns import Netns

G = asm4(48, 9)


def _received(rx: MulticastSocket) -> int:
    n = 0
    while True:
        try:
            n += len(rx.recv_batch(256, timeout_s=0.3))
        except ReceiveTimeoutError:
            return n


@pytest.mark.parametrize("argv", [["--size", "100"], ["--size", "100", "--rate", "50000"]],
                         ids=["batches", "paced"])
def test_summary_counts_exactly_what_left(netns: Netns, argv: list[str]) -> None:
    rng = random.Random(7)
    for _ in range(4):
        with MulticastSocket(4, rcvbuf_bytes=64 << 20) as rx:
            port = rx.bind(0)[1]
            rx.join(G, "lo")
            p = mk_popen("send", f"{G}:{port}", "-i", "lo", "-c", "0", "--json", *argv)
            try:
                wait_socket_open(p)
                time.sleep(rng.uniform(0.0, 0.3))  # any moment: the count must hold
                p.send_signal(signal.SIGINT)
                out, err = p.communicate(timeout=30)
            finally:
                if p.poll() is None:
                    p.kill()
            assert p.returncode == 130, err
            summary = json_lines(out)[-1]
            got = _received(rx) + rx.kernel_drops()
            # every datagram that left reached this socket's queue or its drop counter
            assert summary["sent"] == got, (summary, got)
