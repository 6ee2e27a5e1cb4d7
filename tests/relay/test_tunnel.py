"""Two sites over a routed, unicast-only network, joined by the encrypted tunnel; and what
the tunnel does with wrong-key, tampered, replayed, stale and oversized packets."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from mcastkit.relay import load_key_file, make_key_file
from mcastkit.relay._wire import CONTROL, Kind, TunnelKey, encode_inner, parse_header
from tests.support.addrs import G4, asm4, lab_host
from tests.support.relay_topo import RelayProc, Sites, mcast_socket, receiver, wait_joined
from tests.support.topology import new_group, new_port

pytestmark = pytest.mark.kernel

LISTEN = lab_host(41, 2)


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    p = str(tmp_path / "relay.key")
    make_key_file(p)
    return p


def _up(st: dict[str, object]) -> bool:
    t = st.get("tunnel")
    return isinstance(t, dict) and t.get("state") == "up"


def _pair(sites: Sites, key: str, *groups: str, extra: tuple[str, ...] = ()
          ) -> tuple[RelayProc, RelayProc]:
    g: list[str] = []
    for ep in groups:
        g += ["--group", ep]
    ra = RelayProc(sites.ra, "--tunnel-listen", "7777", "--key-file", key, "-i", "lan", *g,
                   *extra)
    rb = RelayProc(sites.rb, "--tunnel-connect", f"{LISTEN}:7777", "--key-file", key,
                   "-i", "lan", *g, *extra)
    ra.wait_stats(_up, what="listener: link up")
    rb.wait_stats(_up, what="connector: link up")
    return ra, rb


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_two_sites_over_a_unicast_only_router(sites: Sites, key_file: str, v6: bool) -> None:
    port, g = new_port(), new_group(v6=v6)
    ep = f"[{g}]:{port}" if v6 else f"{g}:{port}"
    ra, rb = _pair(sites, key_file, ep)
    try:
        wait_joined(sites.ra, g, "lan")
        wait_joined(sites.rb, g, "lan")
        with receiver(sites.b, ep) as rxb, receiver(sites.a, ep) as rxa:
            ta = mcast_socket(sites.a, 6 if v6 else 4, "eth0")
            tb = mcast_socket(sites.b, 6 if v6 else 4, "eth0")
            n = 100
            for i in range(n):
                ta.sendto(f"a{i}".encode(), (g, port))
            got = [rxb.recv(timeout_s=5).data for _ in range(n)]
            assert got == [f"a{i}".encode() for i in range(n)]
            tb.sendto(b"from-b", (g, port))
            seen = set()
            while b"from-b" not in seen:  # A hears its own n datagrams first (loopback)
                seen.add(rxa.recv(timeout_s=5).data)
            ta.close()
            tb.close()
        # each relay: n one way and 1 the other
        sa = ra.wait_stats(lambda s: s["totals"]["relayed"] == n + 1)
        sb = rb.wait_stats(lambda s: s["totals"]["relayed"] == n + 1)
        assert sa["rules"]["group1"]["out"]["lan->tunnel"]["relayed"] == n
        assert sb["rules"]["group1"]["out"]["tunnel->lan"]["relayed"] == n
        for s in (sa, sb):
            for cause in ("wrong_key", "auth_failed", "replayed", "stale_session",
                          "malformed", "oversized"):
                assert s["tunnel"][cause] == 0
    finally:
        fa, _ = ra.stop(), rb.stop()
    assert ra.p.returncode == 143 and rb.p.returncode == 143  # stopped by SIGTERM
    assert fa["tunnel"]["state"] == "down"


def test_link_state_reconnect_and_goodbye(sites: Sites, key_file: str) -> None:
    port, g = new_port(), new_group()
    ra, rb = _pair(sites, key_file, f"{g}:{port}")
    try:
        rb.stop()  # SIGTERM: the connector says goodbye; the listener reports it at once
        ra.wait_stats(lambda s: not _up(s), what="listener: link down")
        rb2 = RelayProc(sites.rb, "--tunnel-connect", f"{LISTEN}:7777", "--key-file",
                        key_file, "-i", "lan", "--group", f"{g}:{port}")
        try:
            ra.wait_stats(_up, what="link up again")
            rb2.wait_stats(_up)
            st = ra.last()
            assert st["tunnel"]["link_changes"] == 3  # up, down, up
            assert len(st["tunnel"]["peers"]) == 1
        finally:
            rb2.stop()
    finally:
        ra.stop()


class FakePeer:
    """The test plays a relay (it holds the key) from the router's namespace."""

    def __init__(self, sites: Sites, key: TunnelKey) -> None:
        with sites.rt.enter():
            self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((lab_host(41, 1), 0))
        self.s.settimeout(5)
        self.key = key
        self.sid = int.from_bytes(os.urandom(8), "big")
        self.tx = key.session(self.sid)
        self.n = 0
        self.data_n = -1
        self.dest = (LISTEN, 7777)

    def seal(self, kind: Kind, body: bytes, flags: int = 0) -> bytes:
        self.n += 1
        if kind is Kind.DATA:
            self.data_n += 1
            return self.tx.seal(kind, self.data_n, body, flags)
        return self.tx.seal(kind, CONTROL + self.n, body, flags)

    def handshake(self) -> None:
        self.s.sendto(self.seal(Kind.HELLO, bytes(9) + self.last()), self.dest)
        pkt, _ = self.s.recvfrom(2048)
        h = parse_header(pkt)
        assert h is not None and h.kind == Kind.HELLO
        body = self.key.session(h.session).open(pkt, h.counter)
        assert body is not None and int.from_bytes(body[:8], "big") == self.sid
        self.listener = h.session
        self.s.sendto(self.seal(Kind.HELLO, h.session.to_bytes(8, "big") + b"\x01"
                                + self.last()), self.dest)

    def last(self) -> bytes:
        """The last DATA counter used, as HELLO and BYE carry it."""
        return self.data_n.to_bytes(8, "big") if self.data_n >= 0 else b"\xff" * 8

    def keepalive(self, last: int) -> None:
        """A HELLO claiming DATA counters up to ``last`` were sent."""
        self.s.sendto(self.seal(Kind.HELLO, self.listener.to_bytes(8, "big") + b"\x01"
                                + last.to_bytes(8, "big")), self.dest)

    def data(self, group: str, port: int, payload: bytes) -> bytes:
        return self.seal(Kind.DATA, encode_inner(group, port, lab_host(32, 10), 4000, 1,
                                                 payload))


def _listener_with_fake_peer(sites: Sites, key_file: str, g: str, port: int
                             ) -> tuple[RelayProc, FakePeer]:
    """A listening relay in site A, and the test as its established peer."""
    ra = RelayProc(sites.ra, "--tunnel-listen", "7777", "--key-file", key_file, "-i", "lan",
                   "--group", f"{g}:{port}")
    try:
        wait_joined(sites.ra, g, "lan")
        ra.wait_stats(lambda s: "tunnel" in s)
        peer = FakePeer(sites, load_key_file(key_file))
        peer.handshake()
        ra.wait_stats(_up, what="fake peer established")
    except BaseException:
        ra.stop()
        raise
    return ra, peer


def test_wrong_key_tampered_replayed_stale_oversized_dropped_and_counted(
        sites: Sites, key_file: str, tmp_path: Path) -> None:
    port, g = new_port(), new_group()
    ra, peer = _listener_with_fake_peer(sites, key_file, g, port)
    try:
        with receiver(sites.a, f"{g}:{port}") as rxa:
            good = peer.data(g, port, b"one")
            peer.s.sendto(good, peer.dest)
            assert rxa.recv(timeout_s=5).data == b"one"
            peer.s.sendto(good, peer.dest)  # replayed
            tampered = bytearray(peer.data(g, port, b"TAMPERED-PAYLOAD"))
            tampered[-20] ^= 0xFF
            peer.s.sendto(bytes(tampered), peer.dest)
            wrong = TunnelKey(os.urandom(32)).session(peer.sid).seal(
                Kind.DATA, 999, encode_inner(g, port, lab_host(32, 10), 1, 1, b"EVIL-PAYLOAD"))
            peer.s.sendto(wrong, peer.dest)
            stale = peer.key.session(12345).seal(
                Kind.DATA, 1, encode_inner(g, port, lab_host(32, 10), 1, 1, b"STALE-PAYLOAD"))
            peer.s.sendto(stale, peer.dest)
            peer.s.sendto(b"\0" * 1600, peer.dest)  # over the listener's mtu (1472)
            peer.s.sendto(b"MKR\x09" + bytes(60), peer.dest)  # not our version
            peer.s.sendto(peer.data(asm4(199, 1), port, b"no rule"), peer.dest)
            peer.s.sendto(peer.data(g, port, b"sentinel"), peer.dest)
            # nothing between "one" and the sentinel got through
            assert rxa.recv(timeout_s=5).data == b"sentinel"
        st = ra.wait_stats(lambda s: s["tunnel"]["data_in"] == 3)
        assert st["rules"]["(no rule)"]["in"]["tunnel"]["filtered"] == 1
        t = st["tunnel"]
        assert (t["replayed"], t["auth_failed"], t["wrong_key"], t["stale_session"],
                t["oversized"], t["malformed"]) == (1, 1, 1, 1, 1, 1)
        assert st["rules"]["group1"]["out"]["tunnel->lan"]["relayed"] == 2
    finally:
        ra.stop()
    err = ra.stderr()
    for why in ("replayed", "auth failed", "wrong key", "stale session", "oversized"):
        assert f": {why}" in err, err
    for secret in ("EVIL", "STALE-P", "TAMPERED"):  # payloads never logged
        assert secret not in err


def test_datagram_too_big_for_the_tunnel_is_counted_and_reported(sites: Sites,
                                                                  key_file: str) -> None:
    port, g = new_port(), new_group()
    ra, rb = _pair(sites, key_file, f"{g}:{port}", extra=("--tunnel-mtu", "1000"))
    try:
        wait_joined(sites.ra, g, "lan")
        wait_joined(sites.rb, g, "lan")
        with receiver(sites.b, f"{g}:{port}") as rxb:
            ta = mcast_socket(sites.a, 4, "eth0")
            ta.sendto(b"x" * 1200, (g, port))
            ta.sendto(b"small", (g, port))
            assert rxb.recv(timeout_s=5).data == b"small"
            ta.close()
        st = ra.wait_stats(lambda s: s["totals"]["too_big"] == 1)
        assert st["rules"]["group1"]["out"]["lan->tunnel"] == {
            "relayed": 1, "too_big": 1, "send_errors": 0}
    finally:
        ra.stop()
        rb.stop()
    assert "1200 B datagram" in ra.stderr() and "does not fit the tunnel mtu 1000" in ra.stderr()


def test_key_file_readable_by_others_is_refused_by_the_cli(sites: Sites, key_file: str
                                                           ) -> None:
    Path(key_file).chmod(0o644)
    r = sites.ra.run(sys.executable, "-m", "mcastkit", "relay",
                     "--tunnel-listen", "7777", "--key-file", key_file, "-i", "lan",
                     "--group", f"{G4}:5000", check=False)
    assert r.returncode == 2
    assert "chmod 600" in r.stderr and "Traceback" not in r.stderr


def test_data_packets_that_never_arrive_are_counted_lost(sites: Sites, key_file: str) -> None:
    port, g = new_port(), new_group()
    ra, peer = _listener_with_fake_peer(sites, key_file, g, port)
    try:
        pkts = [peer.data(g, port, f"p{i}".encode()) for i in range(6)]  # counters 0..5
        with receiver(sites.a, f"{g}:{port}") as rxa:
            for i in (0, 1, 3):  # 2 is late, 4 never comes
                peer.s.sendto(pkts[i], peer.dest)
            assert [rxa.recv(timeout_s=5).data for _ in range(3)] == [b"p0", b"p1", b"p3"]
            st = ra.wait_stats(lambda s: s["tunnel"]["data_in"] == 3)
            assert st["tunnel"]["lost"] == 1
            peer.s.sendto(pkts[2], peer.dest)  # late, but inside the replay window
            peer.s.sendto(pkts[5], peer.dest)
            assert [rxa.recv(timeout_s=5).data for _ in range(2)] == [b"p2", b"p5"]
        st = ra.wait_stats(lambda s: s["tunnel"]["data_in"] == 5)
        assert st["tunnel"]["lost"] == 1  # 4: 2 arrived late and was taken back
        peer.keepalive(7)  # "I sent up to 7": 6 and 7 never came (a lost tail)
        st = ra.wait_stats(lambda s: s["tunnel"]["keepalives_in"] >= 3)
        assert st["tunnel"]["lost"] == 3
    finally:
        ra.stop()


def test_preserve_source_across_the_tunnel(sites: Sites, key_file: str) -> None:
    """Site B's hosts see site A's sender as the source (and could answer it by unicast
    across the router), not the relay."""
    port, g = new_port(), new_group()
    ra, rb = _pair(sites, key_file, f"{g}:{port}", extra=("--preserve-source",))
    try:
        wait_joined(sites.ra, g, "lan")
        with receiver(sites.b, f"{g}:{port}") as rxb:
            ta = mcast_socket(sites.a, 4, "eth0")
            ta.sendto(b"from site a", (g, port))
            d = rxb.recv(timeout_s=5)
            ta.close()
        assert d.data == b"from site a" and d.source == lab_host(31, 10)
    finally:
        ra.stop()
        rb.stop()
