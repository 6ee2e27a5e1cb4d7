"""Real peers on both ends of a relay: socat, and python-zeroconf registering a service in
LAN A that a browser in LAN B finds through the relay (IPv4 and IPv6 mDNS)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mcastkit.relay import make_key_file
from tests.support.addrs import lab_host
from tests.support.fixtures import require_or_skip
from tests.support.netns import Netns
from tests.support.relay_topo import A4, Lans, RelayProc, Sites, wait_joined
from tests.support.topology import new_group, new_port

pytestmark = [pytest.mark.kernel, pytest.mark.interop]

REGISTER = textwrap.dedent("""
    import socket, sys, time
    from zeroconf import IPVersion, ServiceInfo, Zeroconf
    v6 = sys.argv[1] == "6"
    addr = sys.argv[2]
    if v6:
        zc = Zeroconf(interfaces=[socket.if_nametoindex("eth0")], ip_version=IPVersion.V6Only)
        addrs = [socket.inet_pton(socket.AF_INET6, addr)]
    else:
        zc = Zeroconf(interfaces=[addr], ip_version=IPVersion.V4Only)
        addrs = [socket.inet_aton(addr)]
    info = ServiceInfo("_mcastkit._udp.local.", "relayed-" + sys.argv[3] + "._mcastkit._udp.local.",
                       addresses=addrs, port=4242, server="mk-relay.local.")
    zc.register_service(info)
    print("REGISTERED", flush=True)
    time.sleep(float(sys.argv[4]))
    zc.unregister_service(info)
    zc.close()
""")

BROWSE = textwrap.dedent("""
    import socket, sys, time
    from zeroconf import IPVersion, ServiceBrowser, Zeroconf
    v6 = sys.argv[1] == "6"
    if v6:
        zc = Zeroconf(interfaces=[socket.if_nametoindex("eth0")], ip_version=IPVersion.V6Only)
    else:
        zc = Zeroconf(interfaces=[sys.argv[2]], ip_version=IPVersion.V4Only)
    found = []
    class L:
        def add_service(self, z, t, name): found.append(name)
        def update_service(self, z, t, name): pass
        def remove_service(self, z, t, name): pass
    b = ServiceBrowser(zc, "_mcastkit._udp.local.", L())
    print("BROWSING", flush=True)
    deadline = time.monotonic() + float(sys.argv[3])
    while not found and time.monotonic() < deadline:
        time.sleep(0.05)
    print("FOUND " + " ".join(found), flush=True)
    b.cancel()
    zc.close()
    sys.exit(0 if found else 3)
""")


def _need_zeroconf() -> None:
    try:
        import zeroconf  # noqa: F401
    except ImportError:
        require_or_skip("python-zeroconf is not installed in this venv")


def _finish(p: subprocess.Popen[str], timeout: float = 40) -> tuple[str, str]:
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.communicate()


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_zeroconf_service_in_a_found_from_b_through_the_relay(lans: Lans, v6: bool) -> None:
    _need_zeroconf()
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--preset", "mdns")
    try:
        g = "ff02::fb" if v6 else "224.0.0.251"
        wait_joined(lans.r, g, "lan-a")
        wait_joined(lans.r, g, "lan-b")
        tag = f"v{6 if v6 else 4}"
        b_addr = lab_host(22, 10)
        a_addr = lans.ll_a.split("%")[0] if v6 else A4
        browse = lans.b.popen(sys.executable, "-c", BROWSE, "6" if v6 else "4", b_addr, "25",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert browse.stdout is not None
        assert browse.stdout.readline().startswith("BROWSING")
        reg = lans.a.popen(sys.executable, "-c", REGISTER, "6" if v6 else "4", a_addr, tag,
                           "30", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = _finish(browse)
        reg.kill()
        _finish(reg, 5)
        assert browse.returncode == 0, (out, err, rp.stderr())
        assert f"relayed-{tag}._mcastkit._udp.local." in out
        st = rp.last()
        assert st["rules"]["mdns"]["out"]["lan-a->lan-b"]["relayed"] >= 1
    finally:
        rp.stop()


def _socat() -> str:
    path = shutil.which("socat")
    if path is None:
        require_or_skip("socat is not installed (apt-get install socat)")
    return path


def _socat_through(sender: Netns, sender_addr: str, rx_ns: Netns, relay_ns: Netns,
                   relay_if: str, g: str, port: int, text: str) -> None:
    """socat sends ``text`` in one LAN; socat in the other LAN must print it."""
    socat = _socat()
    wait_joined(relay_ns, g, relay_if)
    recv = rx_ns.popen(socat, "-u", f"UDP4-RECV:{port},ip-add-membership={g}:eth0",
                       "STDOUT", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_joined(rx_ns, g, "eth0")
        sender.run(socat, "-u", "-", f"UDP4-DATAGRAM:{g}:{port},ip-multicast-if={sender_addr}",
                   input=text)
        assert recv.stdout is not None
        assert recv.stdout.readline() == text.encode()
    finally:
        recv.kill()
        recv.wait()


def test_socat_sender_in_a_socat_receiver_in_b(lans: Lans) -> None:
    _socat()
    port, g = new_port(), new_group()
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--group", f"{g}:{port}")
    try:
        _socat_through(lans.a, A4, lans.b, lans.r, "lan-a", g, port,
                       "hello through the relay\n")
    finally:
        rp.stop()


def test_socat_through_the_tunnel(sites: Sites, tmp_path: Path) -> None:
    _socat()
    key = str(tmp_path / "k")
    make_key_file(key)
    port, g = new_port(), new_group()
    ra = RelayProc(sites.ra, "--tunnel-listen", "7777", "--key-file", key, "-i", "lan",
                   "--group", f"{g}:{port}")
    rb = RelayProc(sites.rb, "--tunnel-connect", f"{lab_host(41, 2)}:7777", "--key-file", key,
                   "-i", "lan", "--group", f"{g}:{port}")
    try:
        for r in (ra, rb):
            r.wait_stats(lambda s: s.get("tunnel", {}).get("state") == "up")
        _socat_through(sites.a, lab_host(31, 10), sites.b, sites.ra, "lan", g, port,
                       "across the tunnel\n")
    finally:
        ra.stop()
        rb.stop()
