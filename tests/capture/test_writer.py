"""The record writer thread: batches are written in order, a full queue drops whole
batches and the next datagram written carries the count; the file says so
(``epb_dropcount``, a comment, ``isb_ifdrop``), and a writer error reaches the caller."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from mcastkit import Datagram, MulticastSocket
from mcastkit.capture import CaptureFileError, packets
from mcastkit.capture._pcap import read_capture
from mcastkit.capture._writer import OVERHEAD, BatchWriter
from tests.support.addrs import SRC4, asm4
from tests.support.cli import Background, wait_joined
from tests.support.netns import Netns, wait_until
from tests.support.peers import tshark_fields


def _dg(i: int) -> Datagram:
    return Datagram(i.to_bytes(4, "big"), SRC4, 4000, asm4(78, 1))


def test_full_queue_drops_whole_batches_and_reports_them_once() -> None:
    got: list[tuple[str, list[int], int]] = []
    gate, writing = threading.Event(), threading.Event()

    def write(src: str, batch: Sequence[Datagram], dropped: int) -> None:
        writing.set()
        gate.wait(10)
        got.append((src, [int.from_bytes(d.data, "big") for d in batch], dropped))

    w: BatchWriter[str] = BatchWriter(write, limit_bytes=2 * (4 + OVERHEAD) + 1)
    w.put("a", [_dg(0)])  # taken by the writer (it waits on the gate)
    assert writing.wait(10)  # (a fixed sleep: [0] may still be queued on a slow machine)
    w.put("a", [_dg(1), _dg(2)])  # fills the queue
    w.put("a", [_dg(3)])  # dropped
    w.put("b", [_dg(4), _dg(5)])  # dropped
    gate.set()
    wait_until(lambda: len(got) == 2, 10, what="[1, 2] taken and written")
    w.put("a", [_dg(6)])  # carries the 3 dropped
    w.close()
    assert got == [("a", [0], 0), ("a", [1, 2], 0), ("a", [6], 3)]
    assert w.dropped == 3


def test_writer_error_reaches_the_caller() -> None:
    def write(src: str, batch: Sequence[Datagram], dropped: int) -> None:
        raise CaptureFileError(28, "the disk is full", "x")

    w: BatchWriter[str] = BatchWriter(write, limit_bytes=1 << 20)
    w.put("a", [_dg(0)])
    wait_until(lambda: w.error is not None, 10, what="the writer failed")
    with pytest.raises(CaptureFileError):
        w.put("a", [_dg(1)])
    with pytest.raises(CaptureFileError):
        w.close()


@pytest.mark.kernel
def test_queue_drops_are_in_the_file(netns: Netns, tmp_path: Path, mcast_port: int) -> None:
    """A 20 kB queue in front of a writer cannot hold a burst of 20000 datagrams: what it
    drops is written as such, and file + kernel drops + queue drops = what was sent."""
    g, path = asm4(78, 2), str(tmp_path / "q.pcapng")
    bg = Background("record", f"{g}:{mcast_port}", "-i", "lo", "-w", path, "--queue-mb",
                    "0.02", "--rcvbuf", "8000000", "--duration", "3", "--json")
    wait_joined(g)
    with MulticastSocket(4, interface="lo") as tx:
        for _ in range(20):
            tx.send_batch([bytes(100)] * 1000, g, mcast_port)
    r = bg.join()
    assert r.status == 0, r.stderr
    s = r.json()[-1]
    assert s["queue_drops"] > 0
    with open(path, "rb") as f:
        reader = read_capture(f)
        n = sum(1 for _ in reader)
    notes = reader.notes
    assert n == s["datagrams"] and sum(notes.ifdrop.values()) == s["queue_drops"]
    assert n + notes.missing == 20000 == n + s["kernel_drops"] + s["queue_drops"]
    assert any("write queue was full" in c for c in notes.comments)
    assert len(list(packets(path))) == n
    assert tshark_fields(path, "frame.number")[-1][0] == str(n)
