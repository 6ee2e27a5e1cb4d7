"""record/replay CLI details: several ports in one file, progress lines on long runs,
IPv6 record → replay, ``--no-outgoing`` for ``tcpdump -i any`` captures taken on lo,
usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcastkit.capture import DecodeStats, packets
from tests.support.addrs import G4, SRC4, asm4, asm6
from tests.support.cli import Background, cli, wait_joined
from tests.support.netns import Netns, wait_until
from tests.support.peers import Capture, need, send_all, tshark_fields
from tests.support.topology import VethLoop, VethPair

pytestmark = [pytest.mark.kernel]


def test_two_ports_one_file_and_progress_lines(netns: Netns, tmp_path: Path,
                                               mcast_port: int) -> None:
    path = str(tmp_path / "two.pcapng")
    g1, g2, p2 = asm4(77, 1), asm4(77, 2), mcast_port + 1
    bg = Background("record", f"{g1}:{mcast_port}", f"{g2}:{p2}", "-i", "lo", "-w", path,
                    "--duration", "1.5", "--interval", "0.3", "--json")
    wait_joined(g1)
    wait_joined(g2)
    send_all([b"a1", b"a2"], g1, mcast_port, ifname="lo")
    send_all([b"b1"], g2, p2, ifname="lo")
    r = bg.join()
    assert r.status == 0, r.stderr
    lines = r.json()
    assert sum(1 for o in lines if o["type"] == "progress") >= 2
    assert lines[-1]["type"] == "summary" and lines[-1]["datagrams"] == 3
    got = sorted((d.group, d.dport, d.payload) for d in packets(path))
    assert got == [(g1, mcast_port, b"a1"), (g1, mcast_port, b"a2"), (g2, p2, b"b1")]


def test_ipv6_record_then_replay(veth_loop: VethLoop, tmp_path: Path) -> None:
    g, port, path = asm6("77:1"), 7701, str(tmp_path / "v6.pcapng")
    bg = Background("record", f"[{g}]:{port}", "-i", "vb", "-w", path, "-c", "3")
    wait_joined(g, "vb")
    send_all([b"x", b"yy", b"z" * 3000], g, port, ifname="va", version=6, ttl=9)
    assert bg.join().status == 0
    rows = tshark_fields(path, "ipv6.dst", "ipv6.hlim", "udp.checksum.status")
    assert rows == [[g, "9", "1"]] * 3
    g2 = asm6("77:2")
    bg = Background("listen", f"[{g2}]:{port}", "-i", "vb", "--json", "-c", "3",
                    "--timeout", "10")
    wait_joined(g2, "vb")
    r = cli("replay", path, "-i", "va", "--map", f"[{g}]:{port}=[{g2}]:{port}", "--max")
    assert r.status == 0, r.stderr
    assert [o["data"] for o in bg.join().json()] == ["x", "yy", "z" * 3000]


def test_no_outgoing_skips_what_the_capturing_host_sent(veth_pair: VethPair,
                                                         tmp_path: Path) -> None:
    """A ``tcpdump -i any`` capture on the sending host holds its datagrams as they left
    (Linux cooked capture: packet type "outgoing"); with --no-outgoing they are skipped
    (on a router this keeps a datagram that arrived on one link and left on another once)."""
    need("tcpdump")
    path = str(tmp_path / "sender.pcap")
    g, port = asm4(77, 3), 7703
    cap = Capture(veth_pair.a, ["tcpdump", "--immediate-mode", "-U", "-i", "any", "-w", path,
                                "udp", "port", str(port)])
    try:
        with veth_pair.a.enter():
            send_all([b"one", b"two", b"sentinel"], g, port, ifname="eth0")
        wait_until(lambda: b"sentinel" in Path(path).read_bytes(), 15,
                   what="tcpdump wrote the last datagram")
    finally:
        cap.stop()
    assert [d.payload for d in packets(path)] == [b"one", b"two", b"sentinel"]
    st = DecodeStats()
    assert list(packets(path, st, outgoing=False)) == []
    assert st.skipped["outgoing_copy"] == 3


@pytest.mark.parametrize(("argv", "needle"), [
    (["replay", "x.pcap", "--map", f"{G4}={asm4(0, 2)}:5"], "missing ':PORT'"),
    (["replay", "x.pcap", "--map", f"{G4}:5"], "FROM_GROUP:PORT=TO_GROUP:PORT"),
    (["replay", "x.pcap", "--speed", "2", "--max"], "not allowed with"),
    (["replay", "x.pcap", "--loop", "-1"], "--loop"),
    (["record", f"{G4}:5000", "-w", "x", "--keep", "2"], "--keep needs"),
    (["record", f"{G4}:5000", "-w", "x", "--seq", "nope"], "uN[be|le]@OFFSET"),
    (["record", f"{G4}:5000"], "-w/--write"),
])
def test_usage_errors(tmp_path: Path, argv: list[str], needle: str) -> None:
    r = cli(*argv)
    assert r.status == 2 and needle in r.stderr, r.stderr


def test_raw_ip_linktype_read_by_tshark_and_replayed(netns: Netns, tmp_path: Path,
                                                    mcast_port: int) -> None:
    g, path = asm4(77, 4), str(tmp_path / "raw.pcapng")
    bg = Background("record", f"{g}:{mcast_port}", "-i", "lo", "-w", path, "-c", "2",
                    "--linktype", "raw")
    wait_joined(g)
    send_all([b"raw-1", b"raw-2"], g, mcast_port, ifname="lo", ttl=4)
    assert bg.join().status == 0
    rows = tshark_fields(path, "frame.encap_type", "ip.dst", "ip.ttl", "udp.checksum.status")
    assert rows == [["7", g, "4", "1"]] * 2  # 7: raw IP
    bg = Background("listen", f"{g}:{mcast_port}", "-i", "lo", "--json", "-c", "2",
                    "--timeout", "10")
    wait_joined(g)
    assert cli("replay", path, "-i", "lo").status == 0
    assert [o["data"] for o in bg.join().json()] == ["raw-1", "raw-2"]


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_ends_a_long_pause_of_replay(netns: Netns, tmp_path: Path,
                                            mcast_port: int, sig: str, code: int) -> None:
    """Ctrl-C or SIGTERM in an hour-long pause: the summary at once, exit 130 / 143 (the
    convention of every verb)."""
    import signal
    import time

    from mcastkit import Datagram, MulticastSocket
    from mcastkit.capture import Recorder
    from tests.support.cli import mk_popen

    g, path = asm4(77, 5), str(tmp_path / "gap.pcapng")
    with Recorder(path) as rec:  # two datagrams an hour apart
        for i, ts in enumerate((0, 3600 * 10**9)):
            rec.add(Datagram(b"%d" % i, SRC4, 4000, g, None, 1,
                             timestamp_ns=1_700_000_000 * 10**9 + ts), mcast_port)
    with MulticastSocket(4, interface="lo") as rx:
        rx.bind(mcast_port)
        rx.join(g)
        p = mk_popen("replay", path, "-i", "lo")
        try:  # the first datagram heard: replay is past start-up, in the hour-long pause
            assert rx.recv(30).data == b"0"
        except BaseException:
            p.kill()
            p.communicate()
            raise
    t = time.monotonic()
    p.send_signal(signal.Signals[sig])
    out, err = p.communicate(timeout=20)
    assert p.returncode == code, err
    # ended by the signal, not the pause (3600 s); the margin is for a loaded machine
    assert time.monotonic() - t < 15 and "replayed 1 datagrams" in out
