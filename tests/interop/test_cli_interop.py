"""The mcastkit CLI against real peers nobody here wrote: socat, iperf2, ssmping,
python-zeroconf. Every peer is pinned to ``lo`` or a namespace's veth; a missing tool
skips loudly (fails with MCAST_REQUIRE_NETNS=1)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from mcastkit.cli._format import decode_json_payload
from tests.support.addrs import ASM_NET4, SSM_NET4, VETH_A, asm4, lab_host, ssm4
from tests.support.cli import group_users, json_lines, mk, mk_popen, wait_joined
from tests.support.fixtures import require_or_skip
from tests.support.netns import Netns

pytestmark = [pytest.mark.interop, pytest.mark.kernel]


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        require_or_skip(f"{tool} is not installed (apt-get install {tool})")
    return path


def _finish(p: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    try:
        return p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def _read_exactly(fd: int, n: int, timeout: float) -> bytes:
    import os
    import select
    import time

    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def test_socat_sends_listen_receives_exactly_n(netns: Netns) -> None:
    socat = need("socat")
    g, n = asm4(44, 1), 5
    p = mk_popen("listen", f"{g}:6100", "-i", "lo", "--json", "--timeout", "4")
    wait_joined(g)
    for k in range(n):
        subprocess.run([socat, "-u", "-", f"UDP4-DATAGRAM:{g}:6100,ip-multicast-if=127.0.0.1,"
                        "ip-multicast-loop=1,ip-multicast-ttl=1"],
                       input=f"socat-{k}", text=True, check=True, timeout=10)
    out, err = _finish(p)
    assert p.returncode == 0, err
    assert [o["data"] for o in json_lines(out)] == [f"socat-{k}" for k in range(n)]


def test_mcastkit_send_socat_receives(netns: Netns) -> None:
    socat = need("socat")
    g = asm4(44, 2)
    p = subprocess.Popen([socat, "-u", f"UDP4-RECV:6101,ip-add-membership={g}:lo,reuseaddr",
                          "STDOUT"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_joined(g)
        r = mk("send", f"{g}:6101", "-i", "lo", input="one\ntwo\nthree\n")
        assert r.returncode == 0, r.stderr
        assert p.stdout is not None
        got = _read_exactly(p.stdout.fileno(), len("onetwothree"), timeout=10)
    finally:
        p.kill()
        p.communicate()
    assert got == b"onetwothree"  # socat writes each datagram as it came (no newlines)


def test_iperf2_stream_counted_by_listen_stats(netns: Netns) -> None:
    iperf = need("iperf")
    g = asm4(44, 3)
    netns.ip("route", "add", ASM_NET4, "dev", "lo")  # pins iperf to lo
    p = mk_popen("listen", f"{g}:6102", "-i", "lo", "--stats", "--seq", "iperf2", "--json",
                 "--timeout", "6")
    wait_joined(g)
    c = subprocess.run([iperf, "-c", g, "-u", "-T", "1", "-b", "400K", "-t", "1", "-l", "200",
                        "-p", "6102"], capture_output=True, text=True, timeout=30)
    out, err = _finish(p)
    m = re.search(r"Sent (\d+) datagrams", c.stdout)
    assert m, c.stdout + c.stderr
    sent = int(m.group(1))
    summary = json_lines(out)[-1]
    assert p.returncode == 0, err
    assert summary["type"] == "summary"
    # iperf 2.1.8 numbers data datagrams 1..K, then sends one closing datagram with id
    # -(K+1), and reports "Sent K+2 datagrams" (the closing id plus one).
    assert summary["datagrams"] == sent - 2
    assert summary["expected"] == summary["datagrams"]
    assert summary["lost"] == 0 and summary["duplicates"] == 0 and summary["streams"] == 1


def test_iperf2_server_and_mcastkit_share_the_group(netns: Netns) -> None:
    iperf = need("iperf")
    g = asm4(44, 4)
    netns.ip("route", "add", ASM_NET4, "dev", "lo")
    srv = subprocess.Popen([iperf, "-s", "-u", "-B", g, "-p", "6103"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        wait_joined(g)
        p = mk_popen("listen", f"{g}:6103", "-i", "lo", "--stats", "--seq", "iperf2",
                     "--json", "--timeout", "6", "--reuse")  # iperf holds the port too
        wait_until_two = __import__("tests.support.netns", fromlist=["wait_until"]).wait_until
        wait_until_two(lambda: group_users(g) >= 2, 10, what="two members of the group")
        c = subprocess.run([iperf, "-c", g, "-u", "-T", "1", "-b", "200K", "-t", "1", "-l",
                            "100", "-p", "6103"], capture_output=True, text=True, timeout=30)
        out, err = _finish(p)
    finally:
        srv.kill()
        srv.communicate()
    sent = int(re.search(r"Sent (\d+) datagrams", c.stdout).group(1))  # type: ignore[union-attr]
    assert json_lines(out)[-1]["datagrams"] == sent - 2, err  # see the test above


def test_ssm_listen_receives_iperf2_over_veth(veth_pair: object) -> None:
    """An iperf2 client in namespace a sends to an SSM group; 'mcastkit listen
    SOURCE,GROUP:PORT' in namespace b counts every data datagram.

    (ssmping is not used: ssmpingd answers to the client's own ephemeral port.)"""
    iperf = need("iperf")
    pair = veth_pair
    a: Netns = pair.a  # type: ignore[attr-defined]
    b: Netns = pair.b  # type: ignore[attr-defined]
    a.ip("route", "add", SSM_NET4, "dev", "eth0")
    lis = b.popen(sys.executable, "-m", "mcastkit", "listen", f"{VETH_A},{ssm4(1, 44, 6)}:6105",
                  "-i", "eth0", "--stats", "--seq", "iperf2", "--json", "--timeout", "6",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with b.enter():
        wait_joined(ssm4(1, 44, 6), "eth0")
    c = a.run(iperf, "-c", ssm4(1, 44, 6), "-u", "-T", "1", "-b", "200K", "-t", "1", "-l", "100",
              "-p", "6105", "-B", VETH_A, check=False, timeout=30)
    out, err = _finish(lis)
    m = re.search(r"Sent (\d+) datagrams", c.stdout)
    assert m, c.stdout + c.stderr
    assert lis.returncode == 0, err
    summary = json_lines(out)[-1]
    assert summary["datagrams"] == int(m.group(1)) - 2  # iperf 2.1.8 accounting, see above
    assert summary["lost"] == 0


def test_ssm_listen_ignores_other_sources(veth_pair: object) -> None:
    """Source filtering with a sentinel: a datagram from a non-joined source is sent
    first, then one from the joined source; only the second arrives."""
    pair = veth_pair
    a: Netns = pair.a  # type: ignore[attr-defined]
    b: Netns = pair.b  # type: ignore[attr-defined]
    a.ip("addr", "add", f"{lab_host(9, 11)}/24", "dev", "eth0")
    lis = b.popen(sys.executable, "-m", "mcastkit", "listen", f"{VETH_A},{ssm4(1, 44, 5)}:6104",
                  "-i", "eth0", "-c", "1", "--json", "--timeout", "20",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with b.enter():
        wait_joined(ssm4(1, 44, 5), "eth0")
    socat = need("socat")
    a.run(socat, "-u", "-", f"UDP4-DATAGRAM:{ssm4(1, 44, 5)}:6104,bind={lab_host(9, 11)},"
          f"ip-multicast-if={VETH_A}", input="wrong-source")
    a.run(socat, "-u", "-", f"UDP4-DATAGRAM:{ssm4(1, 44, 5)}:6104,bind={VETH_A},"
          f"ip-multicast-if={VETH_A}", input="sentinel")
    out, err = _finish(lis)
    assert lis.returncode == 0, err
    assert [o["data"] for o in json_lines(out)] == ["sentinel"]


ZC_SCRIPT = textwrap.dedent(f"""
    import socket, sys, time
    from zeroconf import IPVersion, ServiceInfo, Zeroconf
    zc = Zeroconf(interfaces=["{VETH_A}"], ip_version=IPVersion.V4Only)
    info = ServiceInfo("_mcastkit._udp.local.", "mcastkit-interop._mcastkit._udp.local.",
                       addresses=[socket.inet_aton("{VETH_A}")], port=4242,
                       server="mk-interop.local.")
    zc.register_service(info)
    time.sleep(float(sys.argv[1]))
    zc.unregister_service(info)
    zc.close()
""")


def test_zeroconf_announcement_seen_by_listen(veth_pair: object) -> None:
    try:
        import zeroconf  # noqa: F401
    except ImportError:
        require_or_skip("python-zeroconf is not installed in this venv")
    pair = veth_pair
    a: Netns = pair.a  # type: ignore[attr-defined]
    b: Netns = pair.b  # type: ignore[attr-defined]
    lis = b.popen(sys.executable, "-m", "mcastkit", "listen", "224.0.0.251:5353", "-i", "eth0",
                  "-c", "1", "--json", "--timeout", "20", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    with b.enter():
        wait_joined("224.0.0.251", "eth0")
    pub = a.popen(sys.executable, "-c", ZC_SCRIPT, "3", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    out, err = _finish(lis)
    _finish(pub)
    assert lis.returncode == 0, err
    o = json_lines(out)[0]
    assert o["group"] == "224.0.0.251" and o["source"] == VETH_A
    assert o["dest_port"] == 5353 and o["source_port"] == 5353
    # mDNS is binary: base64 in JSON, with the encoding named
    assert o["encoding"] == "base64"
    data = decode_json_payload(o)
    assert b"mcastkit-interop" in data or b"_mcastkit" in data


def test_socat_binary_payload_listen_json_and_text(netns: Netns) -> None:
    """Issue 9 item 2 with a sender nobody here wrote: every byte value, through socat;
    JSON carries it as base64 (exact), text mode shows it on one escaped line."""
    socat = need("socat")
    g = asm4(44, 7)
    blob = bytes(range(256))
    pj = mk_popen("listen", f"{g}:6106", "-i", "lo", "--json", "-c", "1", "--timeout", "10",
                  "--reuse")
    pt = mk_popen("listen", f"{g}:6106", "-i", "lo", "-c", "1", "--timeout", "10", "--reuse")
    from tests.support.netns import wait_until

    wait_until(lambda: group_users(g) >= 2, 10, what="both listeners joined")
    subprocess.run([socat, "-u", "-", f"UDP4-DATAGRAM:{g}:6106,ip-multicast-if=127.0.0.1,"
                    "ip-multicast-loop=1,ip-multicast-ttl=1"], input=blob, check=True,
                   timeout=10)
    out, err = _finish(pj)
    assert pj.returncode == 0, err
    o = json_lines(out)[0]
    assert o["encoding"] == "base64" and decode_json_payload(o) == blob
    text, err = _finish(pt)
    assert pt.returncode == 0, err
    assert text.count("\n") == 1 and not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)


def test_mcastkit_send_file_socat_receives_exact_bytes(netns: Netns, tmp_path: object
                                                      ) -> None:
    """Issue 9 item 1: ``send --file`` and ``--split none`` are byte-exact for socat."""
    import os
    from pathlib import Path

    socat = need("socat")
    g = asm4(44, 8)
    blob = os.urandom(1400).replace(b"\n", b"\x00")
    f = Path(str(tmp_path)) / "blob.bin"
    f.write_bytes(blob)
    p = subprocess.Popen([socat, "-u", f"UDP4-RECV:6107,ip-add-membership={g}:lo,reuseaddr",
                          "STDOUT"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_joined(g)
        r = mk("send", f"{g}:6107", "-i", "lo", "--file", str(f))
        assert r.returncode == 0, r.stderr
        r2 = subprocess.run([sys.executable, "-m", "mcastkit", "send", f"{g}:6107", "-i", "lo",
                             "--split", "none"], input=blob, capture_output=True, timeout=30)
        assert r2.returncode == 0, r2.stderr
        assert p.stdout is not None
        got = _read_exactly(p.stdout.fileno(), 2 * len(blob), timeout=10)
    finally:
        p.kill()
        p.communicate()
    assert got == blob + blob
