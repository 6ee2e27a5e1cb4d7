"""Relay scenarios: forwarding rate between interfaces and through the encrypted tunnel,
against a socat relay measured in the same run, and a sustained 50k datagrams/s stream
through the tunnel whose every datagram is accounted for.

Topology (namespaces made here, lab addresses only)::

    S eth0 198.18.51.10 == R in0 .51.1 | out0 .52.1 == D eth0 198.18.52.10
    tunnel: S == RA in0 .51.1 | wan .53.1 == RB wan .53.2 | out0 .52.1 == D

S blasts COUNT datagrams (send_batch) at the group; the relay under test forwards them;
D counts what arrives and times first to last: the forwarding rate is what D sees per
second while the relay is saturated. Needs root inside ``scripts/in-netns`` (``make bench``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._util import Result

GROUP = "239.255.78.1"
_ports = itertools.count(32000)
_n = itertools.count(1)

SENDER = textwrap.dedent("""
    import sys, time
    from mcastkit import MulticastSocket
    group, port, size, count, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
        int(sys.argv[4]), float(sys.argv[5])
    batch = [bytes(size)] * 32
    with MulticastSocket(4, interface="eth0", ttl=1) as tx:
        t0 = time.monotonic()
        sent = 0
        while sent < count:
            k = min(32, count - sent)
            if rate > 0:
                due = t0 + sent / rate
                d = due - time.monotonic()
                if d > 0:
                    time.sleep(d)
            sent += tx.send_batch(batch[:k], group, port)
        print(sent, time.monotonic() - t0, flush=True)
""")

RECEIVER = textwrap.dedent("""
    import json, sys, time
    from mcastkit import open_receiver
    rx = open_receiver(sys.argv[1], interface="eth0", rcvbuf_bytes=1 << 24)
    with open(sys.argv[3], "w") as f:
        f.write("ready")
    idle = float(sys.argv[2])
    n, first, last = 0, None, None
    while True:
        try:
            got = rx.recv_batch(512, timeout_s=idle if n else 60)
        except TimeoutError:
            break
        now = time.monotonic()
        if first is None:
            first = now
        last = now
        n += len(got)
    print(json.dumps({"received": n, "seconds": (last - first) if n else 0,
                      "kernel_drops": rx.kernel_drops()}), flush=True)
""")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class _Net:
    """Namespaces for one scenario; deleted on exit."""

    def __init__(self, tunnel: bool) -> None:
        tag = f"mkb{os.getpid()}-{next(_n)}"
        self.names = {k: f"{tag}{k}" for k in (("s", "ra", "rb", "d") if tunnel
                                                 else ("s", "r", "d"))}
        for ns in self.names.values():
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        n = self.names
        if tunnel:
            self._veth("s", "eth0", "ra", "in0")
            self._veth("ra", "wan", "rb", "wan")
            for ns in ("ra", "rb"):  # the tunnel's path carries 1400 B datagrams whole
                _ip("-n", n[ns], "link", "set", "wan", "mtu", "9000")
            self._veth("rb", "out0", "d", "eth0")
            for ns, ifn, cidr in (("s", "eth0", "51.10"), ("ra", "in0", "51.1"),
                                  ("ra", "wan", "53.1"), ("rb", "wan", "53.2"),
                                  ("rb", "out0", "52.1"), ("d", "eth0", "52.10")):
                _ip("-n", n[ns], "addr", "add", f"198.18.{cidr}/24", "dev", ifn)
        else:
            self._veth("s", "eth0", "r", "in0")
            self._veth("r", "out0", "d", "eth0")
            for ns, ifn, cidr in (("s", "eth0", "51.10"), ("r", "in0", "51.1"),
                                  ("r", "out0", "52.1"), ("d", "eth0", "52.10")):
                _ip("-n", n[ns], "addr", "add", f"198.18.{cidr}/24", "dev", ifn)

    def _veth(self, a: str, ia: str, b: str, ib: str) -> None:
        _ip("link", "add", ia, "netns", self.names[a], "type", "veth", "peer", "name", ib,
            "netns", self.names[b])
        _ip("-n", self.names[a], "link", "set", ia, "up")
        _ip("-n", self.names[b], "link", "set", ib, "up")

    def popen(self, ns: str, *cmd: str, **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", self.names[ns], *cmd], text=True,
                                **kw)

    def joined(self, ns: str, ifname: str, group: str = GROUP) -> bool:
        out = subprocess.run(["ip", "-n", self.names[ns], "maddr", "show", "dev", ifname],
                             capture_output=True, text=True).stdout
        return group in out

    def close(self) -> None:
        for ns in self.names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@contextlib.contextmanager
def _net(tunnel: bool) -> Iterator[_Net]:
    n = _Net(tunnel)
    try:
        yield n
    finally:
        n.close()


def _wait(pred: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError("benchmark set-up did not become ready")
        time.sleep(0.05)


def _relay_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcastkit", "relay", *args, "--json", "--interval", "1",
            "-q", "--rcvbuf", str(1 << 24)]


def _stop(p: subprocess.Popen[str]) -> dict[str, Any]:
    """SIGTERM a relay and return its final JSON summary ({} for socat)."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    for line in reversed((out or "").splitlines()):
        with contextlib.suppress(ValueError):
            obj: dict[str, Any] = json.loads(line)
            if obj.get("type") == "summary":
                return obj
    return {}


def _start(net: _Net, kind: str, key: str, p: int) -> list[subprocess.Popen[str]]:
    ep = f"{GROUP}:{p}"
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL}
    if kind == "socat":
        socat = shutil.which("socat") or "socat"
        procs = [net.popen("r", socat, "-u", f"UDP4-RECV:{p},ip-add-membership={GROUP}:in0",
                           f"UDP4-DATAGRAM:{GROUP}:{p},ip-multicast-if=198.18.52.1", **pipe)]
        _wait(lambda: net.joined("r", "in0"))
        return procs
    if kind == "mcastkit relay":
        procs = [net.popen("r", *_relay_cmd("in0", "out0", "--group", ep), **pipe)]
        _wait(lambda: net.joined("r", "in0"))
        return procs
    mtu = ["--tunnel-mtu", "9000"]
    procs = [net.popen("ra", *_relay_cmd("--tunnel-listen", "7777", "--key-file", key, "-i",
                                         "in0", "--group", ep, *mtu), **pipe),
             net.popen("rb", *_relay_cmd("--tunnel-connect", "198.18.53.1:7777",
                                         "--key-file", key, "-i", "out0", "--group", ep,
                                         *mtu), **pipe)]
    _wait(lambda: net.joined("ra", "in0") and net.joined("rb", "out0"))
    time.sleep(1.5)  # the handshake completes within a keepalive
    return procs


def _one(kind: str, count: int, size: int, rate: float, key: str, idle: float = 1.0
         ) -> dict[str, Any]:
    """One run: start the relay(s), blast or pace ``count`` datagrams, measure at D."""
    p = next(_ports)
    with _net(kind == "mcastkit relay, tunnel") as net:
        procs = _start(net, kind, key, p)
        ready = Path(f"/tmp/mkbench-ready-{os.getpid()}-{p}")
        try:
            rx = net.popen("d", sys.executable, "-c", RECEIVER, f"{GROUP}:{p}", str(idle),
                           str(ready), stdout=subprocess.PIPE)
            _wait(ready.exists)
            tx = net.popen("s", sys.executable, "-c", SENDER, GROUP, str(p), str(size),
                           str(count), str(rate), stdout=subprocess.PIPE)
            sent_out, _ = tx.communicate(timeout=count / 1000 + 120)
            rx_out, _ = rx.communicate(timeout=120)
        finally:
            summaries = [_stop(q) for q in procs]
            with contextlib.suppress(FileNotFoundError):
                ready.unlink()
        sent = int(sent_out.split()[0])
        got = json.loads(rx_out)
        secs = got["seconds"]
        return {"sent": sent, "received": got["received"], "receiver_drops":
                got["kernel_drops"], "pps": (got["received"] - 1) / secs if secs > 0 else 0.0,
                "relays": summaries}


def run(count: int, sizes: list[int], runs: int) -> list[Result]:
    """Forwarding rates: socat (the baseline), mcastkit relay between interfaces, and
    mcastkit relay through the encrypted tunnel, each at every size, ``runs`` times."""
    import tempfile

    from mcastkit.relay import make_key_file

    out: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        key = str(Path(tmp) / "bench.key")
        make_key_file(key)
        for size in sizes:
            rows = {k: Result("relay", k, size, baseline=None if k == "socat" else "socat")
                    for k in ("socat", "mcastkit relay", "mcastkit relay, tunnel")}
            if shutil.which("socat") is None:
                rows["socat"].note = "n/a: socat not installed"
            for _ in range(runs):
                for kind, row in rows.items():
                    if kind == "socat" and row.note:
                        continue
                    r = _one(kind, count, size, 0.0, key)
                    row.runs.append(r["pps"])
            out += rows.values()
    return out


def sustained(rate: int = 50_000, seconds: float = 10.0, size: int = 64) -> dict[str, Any]:
    """``rate`` datagrams/s for ``seconds`` through the tunnel: relayed + counted drops
    must equal sent (``accounted``)."""
    import tempfile

    from mcastkit.relay import make_key_file

    with tempfile.TemporaryDirectory() as tmp:
        key = str(Path(tmp) / "bench.key")
        make_key_file(key)
        r = _one("mcastkit relay, tunnel", int(rate * seconds), size, float(rate), key,
                 idle=2.0)
    ra, rb = r["relays"]
    rt, bt = ra.get("totals", {}), rb.get("totals", {})
    tn_a, tn_b = ra.get("tunnel", {}), rb.get("tunnel", {})
    dropped_in_a = (ra.get("kernel_drops", 0) + rt.get("filtered", 0)
                    + rt.get("loop_suppressed", 0) + rt.get("rate_limited", 0)
                    + rt.get("no_target", 0) + rt.get("too_big", 0) + rt.get("send_errors", 0))
    # DATA counters are gapless, so rb counts every tunnel packet that never arrived
    # (its socket buffer overflowed, or the path lost it) as "lost"
    dropped_in_b = (rb.get("kernel_drops", 0) + sum(tn_b.get(k, 0) for k in (
        "wrong_key", "auth_failed", "replayed", "stale_session", "malformed", "oversized",
        "lost"))
        + bt.get("too_big", 0) + bt.get("send_errors", 0) + bt.get("filtered", 0)
        + bt.get("loop_suppressed", 0) + bt.get("rate_limited", 0) + bt.get("no_target", 0))
    relayed = bt.get("relayed", 0)
    counted = dropped_in_a + dropped_in_b
    return {"rate": rate, "seconds": seconds, "size": size, "sent": r["sent"],
            "relayed": relayed, "counted_drops": counted, "received_at_d": r["received"],
            "receiver_drops": r["receiver_drops"],
            "tunnel_sent": tn_a.get("data_out", 0), "tunnel_received": tn_b.get("data_in", 0),
            "tunnel_lost": tn_b.get("lost", 0), "tunnel_send_errors": tn_a.get("send_errors", 0),
            "accounted": relayed + counted == r["sent"],
            "relays": [{"totals": x.get("totals"), "kernel_drops": x.get("kernel_drops"),
                        "tunnel": x.get("tunnel")} for x in (ra, rb)]}
