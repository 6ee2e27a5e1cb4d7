"""Service behaviour: SIGTERM mid-stream, an interface re-created or appearing later,
listen-only interfaces, per-source targets, rate limits, the health endpoint."""

from __future__ import annotations

import json
import signal
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import kernelstate
from tests.support.addrs import lab_host
from tests.support.netns import veth, wait_until
from tests.support.relay_topo import (
    A4,
    R_A4,
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


def _stream(lans: Lans, g: str, port: int, stop: threading.Event, v6: bool = False) -> None:
    tx = mcast_socket(lans.a, 6 if v6 else 4, "eth0")
    i = 0
    while not stop.is_set():
        tx.sendto(f"s{i}".encode(), (g, port))
        i += 1
        time.sleep(0.0005)
    tx.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"])
def test_signal_mid_stream_leaves_every_group(lans: Lans, sig: int) -> None:
    port, g4, g6 = new_port(), new_group(), new_group(v6=True)
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--group", f"{g4}:{port}",
                   "--group", f"[{g6}]:{port}", "--preset", "mdns")
    stop = threading.Event()
    t = threading.Thread(target=_stream, args=(lans, g4, port, stop))
    try:
        for g in (g4, g6, "224.0.0.251", "ff02::fb"):
            for ifn in ("lan-a", "lan-b"):
                wait_joined(lans.r, g, ifn)
        t.start()
        rp.wait_stats(lambda s: totals(s)["relayed"] > 200, what="streaming")
        summary = rp.stop(sig)
    finally:
        stop.set()
        if t.is_alive():
            t.join()
    assert rp.p.returncode == (143 if sig == signal.SIGTERM else 130), rp.stderr()
    assert summary["totals"]["relayed"] > 200
    with lans.r.enter():
        v4 = {grp for _, grp in kernelstate.igmp_groups()}
        v6 = {grp for _, grp in kernelstate.igmp6_groups()}
    assert not {g4, "224.0.0.251"} & v4, v4
    assert not {g6, "ff02::fb"} & v6, v6


def test_interface_recreated_under_the_relay(lans: Lans) -> None:
    port, g = new_port(), new_group()
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--group", f"{g}:{port}")
    try:
        wait_joined(lans.r, g, "lan-a")
        with receiver(lans.b, f"{g}:{port}") as rx:
            tx = mcast_socket(lans.a, 4, "eth0")
            tx.sendto(b"before", (g, port))
            assert rx.recv(timeout_s=5).data == b"before"
            tx.close()
            # delete and re-create LAN A's link (new index on the relay's side)
            old = lans.r.ifindex("lan-a")
            lans.r.ip("link", "del", "lan-a")
            veth(lans.a, "eth0", lans.r, "lan-a")
            lans.a.addr_add("eth0", A4 + "/24")
            lans.r.addr_add("lan-a", R_A4 + "/24")
            assert lans.r.ifindex("lan-a") != old
            wait_joined(lans.r, g, "lan-a")  # the asyncio layer re-joined it by name
            tx = mcast_socket(lans.a, 4, "eth0")
            tx.sendto(b"after", (g, port))
            assert rx.recv(timeout_s=5).data == b"after"
            tx.close()
        with receiver(lans.a, f"{g}:{port}") as rxa:  # and towards the new interface
            tb = mcast_socket(lans.b, 4, "eth0")
            tb.sendto(b"back", (g, port))
            assert rxa.recv(timeout_s=5).data == b"back"
            tb.close()
        assert "interface lan-a rejoined" in rp.stderr()
    finally:
        rp.stop()


def test_interface_that_appears_later_is_joined(lans: Lans) -> None:
    port, g = new_port(), new_group()
    rp = RelayProc(lans.r, "lan-a", "lan-b", "lan-c", "--group", f"{g}:{port}")
    try:
        st = rp.wait_stats(lambda s: s.get("pending"), what="lan-c pending")
        assert any("lan-c" in p for p in st["pending"])
        c = lans._ns("rc")
        veth(lans.r, "lan-c", c, "eth0")
        c.link_local("eth0")
        wait_joined(lans.r, g, "lan-c", timeout=10)
        rp.wait_stats(lambda s: not s.get("pending"), what="nothing pending")
        with receiver(c, f"{g}:{port}") as rx:
            tx = mcast_socket(lans.a, 4, "eth0")
            tx.sendto(b"to-c", (g, port))
            assert rx.recv(timeout_s=5).data == b"to-c"
            tx.close()
    finally:
        rp.stop()


def test_listen_only_interface_is_never_sent_to(lans: Lans) -> None:
    port, g = new_port(), new_group()
    rp = RelayProc(lans.r, "lan-b", "--listen-only", "lan-a", "--group", f"{g}:{port}")
    try:
        wait_joined(lans.r, g, "lan-a")
        wait_joined(lans.r, g, "lan-b")
        with receiver(lans.a, f"{g}:{port}") as rxa, receiver(lans.b, f"{g}:{port}") as rxb:
            tb = mcast_socket(lans.b, 4, "eth0")
            ta = mcast_socket(lans.a, 4, "eth0")
            tb.sendto(b"b-only", (g, port))  # lan-b -> lan-a is not allowed
            ta.sendto(b"from-a", (g, port))  # lan-a -> lan-b is
            assert rxa.recv(timeout_s=5).data == b"from-a"  # A's own (loopback) only
            got = {rxb.recv(timeout_s=5).data, rxb.recv(timeout_s=5).data}
            assert got == {b"b-only", b"from-a"}
            ta.sendto(b"sentinel", (g, port))
            assert rxa.recv(timeout_s=5).data == b"sentinel"  # b-only never came to A
            ta.close()
            tb.close()
        st = rp.wait_stats(lambda s: totals(s)["relayed"] == 2)
        assert st["rules"]["group1"]["in"]["lan-b"]["no_target"] == 1
    finally:
        rp.stop()


def test_rule_filters_and_per_source_targets(lans: Lans, tmp_path: Path) -> None:
    port, g = new_port(), new_group()
    cfg = tmp_path / "relay.toml"
    cfg.write_text(textwrap.dedent(f"""\
        interfaces = ["lan-a", "lan-b"]
        [[rule]]
        name = "lobby"
        groups = ["{g}:{port}"]
        deny_sources = ["{lab_host(22, 0)}/24"]
        rate_limit = 5
    """))
    rp = RelayProc(lans.r, "--config", str(cfg))
    try:
        wait_joined(lans.r, g, "lan-a")
        wait_joined(lans.r, g, "lan-b")
        with receiver(lans.b, f"{g}:{port}") as rxb:
            ta = mcast_socket(lans.a, 4, "eth0")
            tb = mcast_socket(lans.b, 4, "eth0")
            for i in range(20):  # a burst of 20 at 5/s: 5 pass, 15 rate-limited
                ta.sendto(f"r{i}".encode(), (g, port))
            tb.sendto(b"denied", (g, port))  # B's subnet is denied
            got = []
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    got.append(rxb.recv(timeout_s=0.5).data)
                except Exception:
                    break
            ta.close()
            tb.close()
        st = rp.wait_stats(lambda s: totals(s)["received"] == 21)
        t = st["rules"]["lobby"]["in"]
        assert t["lan-a"]["rate_limited"] == 15 and t["lan-b"]["filtered"] == 1
        assert sorted(x for x in got if x.startswith(b"r")) == sorted(
            f"r{i}".encode() for i in range(5))
    finally:
        rp.stop()


def test_health_endpoint(lans: Lans) -> None:
    port, g = new_port(), new_group()
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--group", f"{g}:{port}", "--health",
                   "127.0.0.1:9101")
    try:
        wait_joined(lans.r, g, "lan-a")

        def get(path: str) -> tuple[int, dict[str, object]]:
            with lans.r.enter():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:9101{path}", timeout=5) as r:
                        return r.status, json.loads(r.read())
                except urllib.error.HTTPError as e:
                    return e.code, json.loads(e.read())

        code, body = wait_until(lambda: _try(get, "/healthz"), 10, what="health up")
        assert code == 200 and body["status"] == "running"
        assert get("/readyz")[0] == 200
        code, body = get("/stats")
        assert code == 200 and "totals" in body
        assert get("/nope")[0] == 404
    finally:
        rp.stop()


def _try(fn: object, *a: object) -> object:
    try:
        return fn(*a)  # type: ignore[operator]
    except OSError:
        return None


def test_memberships_only_on_the_relays_interfaces(lans: Lans) -> None:
    port, g = new_port(), new_group()
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--group", f"{g}:{port}")
    try:
        wait_joined(lans.r, g, "lan-b")
        assert {ifn for ifn, grp in memberships(lans.r) if grp == g} == {"lan-a", "lan-b"}
    finally:
        rp.stop()
