"""``mcastkit listen --stats --seq FORMAT`` counts with the core's sequence analysis:
python-generated RTP and MoldUDP64 with injected loss, reordering and duplicates, exact
counts; a bad FORMAT is a usage error naming the valid ones."""

from __future__ import annotations

import struct

import pytest

from tests.support.addrs import asm4
from tests.support.cli import Background, cli, wait_joined
from tests.support.netns import Netns
from tests.support.peers import send_all

pytestmark = [pytest.mark.kernel]


def test_listen_seq_rtp_exact_counts(netns: Netns, mcast_port: int) -> None:
    g = asm4(76, 1)
    order = [65533, 65534, 0, 65535, 1, 1, 4, 5, 6, 9, 8, 10]  # lost 2, 3, 7
    pkts = [struct.pack(">BBHII", 0x80, 0, n, 0, 77) + b"audio" for n in order]
    bg = Background("listen", f"{g}:{mcast_port}", "-i", "lo", "--stats", "--seq", "rtp",
                    "--json", "-c", str(len(pkts)), "--timeout", "10")
    wait_joined(g)
    send_all(pkts, g, mcast_port, ifname="lo")
    r = bg.join()
    assert r.status == 0, r.stderr
    s = r.json()[-1]
    assert (s["expected"], s["lost"], s["reordered"], s["duplicates"], s["gaps"]) == \
        (14, 3, 2, 1, 2)
    assert s["per_stream"][0]["stream"].endswith("/0000004d")


def test_listen_seq_generic_and_moldudp64(netns: Netns, mcast_port: int) -> None:
    g = asm4(76, 2)
    pkts = [struct.pack("<Q", n) for n in (10, 11, 13, 12, 14)]
    bg = Background("listen", f"{g}:{mcast_port}", "-i", "lo", "--stats", "--seq",
                    "u64le@0", "--json", "-c", "5", "--timeout", "10")
    wait_joined(g)
    send_all(pkts, g, mcast_port, ifname="lo")
    s = bg.join().json()[-1]
    assert (s["expected"], s["lost"], s["reordered"]) == (5, 0, 1)

    mold = [struct.pack(">10sQH", b"S1", seq, cnt) for seq, cnt in ((1, 2), (3, 3), (8, 1))]
    bg = Background("listen", f"{g}:{mcast_port}", "-i", "lo", "--stats", "--seq",
                    "moldudp64", "--json", "-c", "3", "--timeout", "10")
    wait_joined(g)
    send_all(mold, g, mcast_port, ifname="lo")
    s = bg.join().json()[-1]
    assert (s["expected"], s["lost"], s["gaps"]) == (8, 2, 1)  # messages 6 and 7


def test_bad_seq_format_is_a_usage_error() -> None:
    r = cli("listen", f"{asm4(76, 3)}:5000", "--stats", "--seq", "u24@0")
    assert r.status == 2 and "uN[be|le]@OFFSET" in r.stderr and "rtp" in r.stderr
