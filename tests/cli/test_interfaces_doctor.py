"""interfaces and doctor in a fresh namespace, with problems provoked on purpose."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from mcastkit.cli import ExitStatus
from tests.support.addrs import asm4, asm6, lab_host
from tests.support.cli import Background, cli, mk, wait_joined
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel


def _findings(r: Any) -> list[dict[str, Any]]:
    return [o for o in r.json() if o["type"] == "finding"]


def _problem(r: Any, check: str) -> dict[str, Any]:
    hits = [f for f in _findings(r) if f["check"] == check and f["problem"]]
    assert hits, f"no {check} problem in {_findings(r)}"
    return hits[0]


def _veth(ns: Netns, addr_a: str | None = None, addr_b: str | None = None) -> None:
    ns.ip("link", "add", "x1", "type", "veth", "peer", "name", "x2")
    for name, addr in (("x1", addr_a), ("x2", addr_b)):
        if addr:
            ns.ip("addr", "add", addr, "dev", name)
        ns.ip("link", "set", name, "up")


def test_interfaces_text_and_json(netns: Netns) -> None:
    r = cli("interfaces")
    assert r.status == 0 and "1: lo <UP" in r.stdout and "127.0.0.1" in r.stdout
    objs = cli("interfaces", "--json").json()
    lo = next(o for o in objs if o["name"] == "lo")
    assert lo["index"] == 1 and lo["up"] is True and lo["mtu"] == 65536
    assert "127.0.0.1" in lo["addresses"]


def test_interfaces_shows_joined_groups(netns: Netns) -> None:
    bg = Background("listen", f"{asm4(42, 1)}:5000", f"[{asm6('42')}]:5000", "-i", "lo", "-c", "1",
                    "--timeout", "10")
    wait_joined(asm4(42, 1))
    objs = cli("interfaces", "-i", "lo", "--json").json()
    assert len(objs) == 1 and asm4(42, 1) in objs[0]["groups"]
    cli("send", f"{asm4(42, 1)}:5000", "-i", "lo", "done")
    assert bg.join().status == 0


def test_interfaces_flags_of_a_veth(netns: Netns) -> None:
    _veth(netns, f"{lab_host(42, 1)}/24")
    o = cli("interfaces", "-i", "x1", "--json").json()[0]
    assert o["multicast"] is True and "MULTICAST" in o["flags"]
    assert lab_host(42, 1) in o["addresses"]


def test_doctor_clean_namespace_exits_0(netns: Netns) -> None:
    r = cli("doctor", f"{asm4(42, 2)}:5000", "-i", "lo", "--json")
    assert r.status == ExitStatus.OK, [f for f in _findings(r) if f["problem"]]
    checks = {f["check"] for f in _findings(r)}
    assert {"join", "interface", "rp_filter", "igmp_max_memberships", "buffers", "firewall",
            "multicast_all", "udp_errors"} <= checks
    assert r.json()[-1] == {"type": "summary", "findings": len(_findings(r)), "problems": 0}


def test_doctor_no_multicast_route(netns: Netns) -> None:
    r = cli("doctor", asm4(42, 3))
    assert r.status == ExitStatus.ERROR
    assert f"[ERROR] no multicast route for {asm4(42, 3)}" in r.stdout
    assert "fix: pass -i IFACE" in r.stdout


def test_doctor_interface_without_multicast_flag(netns: Netns) -> None:
    _veth(netns, f"{lab_host(42, 1)}/24")
    netns.ip("link", "set", "dev", "x1", "multicast", "off")
    r = cli("doctor", f"{asm4(42, 4)}:5000", "-i", "x1", "--json")
    assert r.status == ExitStatus.ERROR
    f = next(f for f in _findings(r) if f["check"] == "interface" and f["problem"])
    assert "MULTICAST" in f["title"] and f["fix"] == "ip link set dev x1 multicast on"


def test_doctor_interface_down(netns: Netns) -> None:
    _veth(netns, f"{lab_host(42, 1)}/24")
    netns.ip("link", "set", "dev", "x1", "down")
    r = cli("doctor", "-i", "x1", "--json")
    f = _problem(r, "interface")
    assert "down" in f["title"] and r.status == ExitStatus.ERROR


def test_doctor_strict_rp_filter_on_multihomed_host(netns: Netns) -> None:
    _veth(netns, f"{lab_host(42, 1)}/24", f"{lab_host(43, 1)}/24")
    netns.sysctl("net.ipv4.conf.all.rp_filter", 1)
    r = cli("doctor", f"{asm4(42, 5)}:5000", "-i", "x1", "--json")
    f = _problem(r, "rp_filter")
    assert "rp_filter=1" in f["title"] and "rp_filter=2" in f["fix"]
    assert r.status == ExitStatus.ERROR


def test_doctor_rp_filter_single_homed_is_fine(netns: Netns) -> None:
    _veth(netns, f"{lab_host(42, 1)}/24")
    netns.sysctl("net.ipv4.conf.all.rp_filter", 1)
    r = cli("doctor", "-i", "x1", "--json")
    assert not [f for f in _findings(r) if f["check"] == "rp_filter" and f["problem"]]


def test_doctor_low_igmp_max_memberships(netns: Netns) -> None:
    netns.sysctl("net.ipv4.igmp_max_memberships", 2)
    r = cli("doctor", f"{asm4(42, 6)}:5000", "-i", "lo", "--json")
    f = _problem(r, "igmp_max_memberships")
    assert "is 2" in f["title"] and "igmp_max_memberships=1024" in f["fix"]


def test_doctor_membership_limit_zero_fails_the_join(netns: Netns) -> None:
    netns.sysctl("net.ipv4.igmp_max_memberships", 0)
    r = cli("doctor", f"{asm4(42, 7)}:5000", "-i", "lo", "--json")
    assert _problem(r, "join")["severity"] == "error"


def test_doctor_nft_rule_dropping_the_port(netns: Netns) -> None:
    if shutil.which("nft") is None:
        from tests.support.fixtures import require_or_skip
        require_or_skip("nft (nftables) is not installed")
    for cmd in (["add", "table", "inet", "mk"],
                ["add", "chain", "inet", "mk", "input",
                 "{ type filter hook input priority 0 ; policy accept ; }"],
                ["add", "rule", "inet", "mk", "input", "udp", "dport", "5099", "drop"]):
        subprocess.run(["nft", *cmd], check=True, capture_output=True, text=True)
    r = cli("doctor", f"{asm4(42, 8)}:5099", "-i", "lo", "--json")
    f = _problem(r, "firewall")
    assert "5099" in f["title"] and "accept" in f["fix"]
    other = cli("doctor", f"{asm4(42, 8)}:5100", "-i", "lo", "--json")
    assert not [f for f in _findings(other) if f["check"] == "firewall" and f["problem"]]


def test_doctor_ipv6_tentative_address(netns: Netns) -> None:
    _veth(netns)
    netns.ip("link", "set", "x2", "down")  # no carrier: DAD cannot finish
    netns.sysctl("net.ipv6.conf.x1.accept_dad", 1)
    netns.ip("addr", "add", "fe80::4242/64", "dev", "x1")
    r = cli("doctor", f"[{asm6('42')}]:5000", "-i", "x1", "--json")
    f = _problem(r, "ipv6_dad")
    assert "fe80::4242" in f["title"] and "tentative" in f["title"]


def test_doctor_text_output_explains(netns: Netns) -> None:
    netns.sysctl("net.ipv4.igmp_max_memberships", 3)
    r = cli("doctor", f"{asm4(42, 9)}:5000", "-i", "lo")
    assert r.status == ExitStatus.ERROR
    assert "[WARNING] net.ipv4.igmp_max_memberships is 3" in r.stdout
    assert "    why: " in r.stdout and "    fix: " in r.stdout
    assert r.stdout.strip().endswith("problem(s) found")


def test_doctor_subprocess(netns: Netns) -> None:
    p = mk("doctor", f"{asm4(42, 10)}:5000", "-i", "lo")
    assert p.returncode == 0, p.stdout
    assert p.stdout.strip().endswith("no problems found")
