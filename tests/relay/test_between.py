"""LAN A <-> relay <-> LAN B in namespaces: IPv4 and IPv6, any-source and source-specific,
through the real ``mcastkit relay`` command; SIGTERM leaves no membership behind."""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.support.fixtures import require_or_skip
from tests.support.relay_topo import (
    A4,
    R_B4,
    Lans,
    RelayProc,
    mcast_socket,
    memberships,
    receiver,
    totals,
    wait_joined,
)
from tests.support.topology import new_group, new_port

pytestmark = pytest.mark.kernel


def _endpoints(lans: Lans, v6: bool, ssm: bool) -> tuple[str, str, str, str]:
    """(relay's --group, B's receive endpoint, group, A's source)."""
    port = new_port()
    g = new_group(v6=v6)
    if v6:
        src = lans.ll_a.split("%")[0]
        relay_ep = f"{src},[{g}]:{port}" if ssm else f"[{g}]:{port}"
        b_src = lans.r.link_local("lan-b").split("%")[0]
        b_ep = f"{b_src},[{g}]:{port}" if ssm else f"[{g}]:{port}"
        return relay_ep, b_ep, g, src
    relay_ep = f"{A4},{g}:{port}" if ssm else f"{g}:{port}"
    b_ep = f"{R_B4},{g}:{port}" if ssm else f"{g}:{port}"
    return relay_ep, b_ep, g, A4


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("ssm", [False, True], ids=["asm", "ssm"])
def test_relay_a_to_b_every_datagram_once(lans: Lans, v6: bool, ssm: bool) -> None:
    relay_ep, b_ep, g, _src = _endpoints(lans, v6, ssm)
    port = int(relay_ep.rsplit(":", 1)[1])
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--group", relay_ep)
    try:
        wait_joined(lans.r, g, "lan-a")
        wait_joined(lans.r, g, "lan-b")
        with receiver(lans.b, b_ep) as rx:
            tx = mcast_socket(lans.a, 6 if v6 else 4, "eth0")
            n = 50
            for i in range(n):
                tx.sendto(f"dgram {i}".encode(), (g, port))
            try:
                got = [rx.recv(timeout_s=5.0) for _ in range(n)]
            except Exception:
                print("RELAY", rp.last(), rp.stderr())
                raise
            tx.close()
        assert [d.data for d in got] == [f"dgram {i}".encode() for i in range(n)]
        assert {d.group for d in got} == {g}
        if not v6:
            assert {d.source for d in got} == {R_B4}
        st = rp.wait_stats(lambda s: totals(s).get("relayed") == n, what="50 relayed")
        assert totals(st)["loop_suppressed"] == 0
        out = st["rules"]["group1"]["out"]
        assert out["lan-a->lan-b"]["relayed"] == n
    finally:
        summary = rp.stop()
    assert rp.p.returncode == 143, rp.stderr()  # stopped by SIGTERM, after its summary
    assert summary["totals"]["received"] == n
    # SIGTERM: every group left
    assert not [m for m in memberships(lans.r) if m[1] == g]


def test_relay_both_directions_asm(lans: Lans) -> None:
    port = new_port()
    g = new_group()
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--group", f"{g}:{port}")
    try:
        wait_joined(lans.r, g, "lan-a")
        wait_joined(lans.r, g, "lan-b")
        with receiver(lans.a, f"{g}:{port}") as rxa, receiver(lans.b, f"{g}:{port}") as rxb:
            ta = mcast_socket(lans.a, 4, "eth0")
            tb = mcast_socket(lans.b, 4, "eth0")
            ta.sendto(b"from-a", (g, port))
            tb.sendto(b"from-b", (g, port))
            # each side hears its own datagram (loopback) and the other's via the relay
            for rx in (rxa, rxb):
                assert {rx.recv(timeout_s=5).data, rx.recv(timeout_s=5).data} == {
                    b"from-a", b"from-b"}
            ta.close()
            tb.close()
        st = rp.wait_stats(lambda s: totals(s).get("relayed") == 2)
        assert st["rules"]["group1"]["out"]["lan-b->lan-a"]["relayed"] == 1
    finally:
        rp.stop()


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_preserve_source_keeps_the_original_sender(lans: Lans, v6: bool) -> None:
    port, g = new_port(), new_group(v6=v6)
    ep = f"[{g}]:{port}" if v6 else f"{g}:{port}"
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--group", ep, "--preserve-source")
    try:
        wait_joined(lans.r, g, "lan-a")
        wait_joined(lans.r, g, "lan-b")
        with receiver(lans.b, ep) as rx:
            tx = mcast_socket(lans.a, 6 if v6 else 4, "eth0")
            tx.bind(("", 0))
            sport = tx.getsockname()[1]
            for i in range(5):
                tx.sendto(f"p{i}".encode(), (g, port))
            got = [rx.recv(timeout_s=5) for _ in range(5)]
            tx.close()
        assert [d.data for d in got] == [f"p{i}".encode() for i in range(5)]
        src = lans.ll_a.split("%")[0] if v6 else A4
        assert {d.source.split("%")[0] for d in got} == {src}  # not the relay's address
        assert {d.port for d in got} == {sport}
        assert {d.ttl for d in got} == {1}
        st = rp.wait_stats(lambda s: totals(s)["relayed"] == 5)
        assert totals(st)["loop_suppressed"] == 0
    finally:
        rp.stop()


def test_preserve_source_without_cap_net_raw_says_so(lans: Lans) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        require_or_skip("setpriv (util-linux) is not installed")
    r = lans.r.run(setpriv, "--bounding-set", "-net_raw", sys.executable, "-m", "mcastkit",
                   "relay", "lan-a", "lan-b", "--preset", "mdns", "--preserve-source",
                   check=False)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "CAP_NET_RAW" in lines[0] and "--preserve-source" in lines[0]
    assert not [m for m in memberships(lans.r) if m[1] == "224.0.0.251"]
