"""Issue 9 item 3: doctor against each broken setup built for real in namespaces.

Every firewall setup is an nftables ruleset in the receiving namespace of a veth pair
(so the datagrams are real multicast from another "host", pkttype multicast). For each:
delivery fails; doctor names the table, chain and rule (or says nothing when nothing
drops); every fix command it prints is run as written; then delivery works and doctor
is clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from mcastkit import McastError, ReceiveTimeoutError, open_receiver, open_sender
from mcastkit.cli import ExitStatus
from tests.support.addrs import ASM_NET4, ASM_NET6, G4, VETH_A, asm4, asm6, lab_host
from tests.support.cli import cli, wait_joined
from tests.support.fixtures import require_or_skip
from tests.support.netns import Netns, wait_until
from tests.support.topology import H2, Lab, VethPair

pytestmark = pytest.mark.kernel


def _need_nft() -> None:
    if shutil.which("nft") is None:
        require_or_skip("nft (nftables) is not installed")


def _delivered(pair: VethPair, group: str, port: int) -> bool:
    with pair.b.enter():
        rx = open_receiver(f"{group}:{port}", interface="eth0", reuse_port=True)
    try:
        pair.a.run(sys.executable, "-m", "mcastkit", "send", f"{group}:{port}", "-i", "eth0",
                   "-c", "3", "probe")
        try:
            return rx.recv(timeout_s=1.0).data == b"probe"
        except ReceiveTimeoutError:
            return False
    finally:
        rx.close()


def _doctor(ns: Netns, *argv: str) -> tuple[int, list[dict[str, Any]]]:
    with ns.enter():
        r = cli("doctor", *argv, "--json", "--window", "0")
    return r.status, [o for o in r.json() if o["type"] == "finding"]


def _problems(findings: list[dict[str, Any]], check: str | None = None) -> list[dict[str, Any]]:
    return [f for f in findings if f["problem"] and (check is None or f["check"] == check)]


def _apply_all(ns: Netns, findings: list[dict[str, Any]]) -> list[str]:
    cmds = [c for f in _problems(findings) for c in f["commands"]]
    for c in cmds:
        ns.run("sh", "-c", c, check=True)  # as written, in a shell
    return cmds


CHAIN = ('add chain {fam} {table} {chain} '
         '"{{ type filter hook input priority 0 ; policy {policy} ; }}"')


def _table(ns: Netns, fam: str, table: str, chain: str, policy: str, *rules: str) -> None:
    ns.run("nft", "add", "table", fam, table)
    ns.run("sh", "-c", "nft " + CHAIN.format(fam=fam, table=table, chain=chain, policy=policy))
    for r in rules:
        ns.run("sh", "-c", f"nft add rule {fam} {table} {chain} {r}")


SETUPS = {
    "udp_dport_drop": ("inet", "fw", "in", "accept", ["udp dport 5400 drop"]),
    "daddr_prefix_drop": ("ip", "edge", "filter_in", "accept",
                          ["ip daddr 239.0.0.0/8 counter drop"]),
    "pkttype_multicast_drop": ("inet", "host", "input", "accept", ["meta pkttype multicast drop"]),
    "policy_drop": ("inet", "strict", "in", "drop", ["iifname lo accept"]),
    "reject_in_subchain": ("inet", "fw2", "in", "accept", []),
}


@pytest.mark.parametrize("name", list(SETUPS))
def test_firewall_drop_found_fixed_and_delivery_works(veth_pair: VethPair, name: str) -> None:
    _need_nft()
    g, port = asm4(49, 1), 5400
    fam, table, chain, policy, rules = SETUPS[name]
    b = veth_pair.b
    _table(b, fam, table, chain, policy, *rules)
    where = chain
    if name == "reject_in_subchain":
        b.run("nft", "add", "chain", fam, table, "mc")
        b.run("sh", "-c", f"nft add rule {fam} {table} mc udp dport 5400 reject")
        b.run("sh", "-c", f"nft add rule {fam} {table} {chain} ip daddr {ASM_NET4} jump mc")
        where = "mc"
    assert not _delivered(veth_pair, g, port)
    status, findings = _doctor(b, f"{g}:{port}", "-i", "eth0")
    assert status == ExitStatus.ERROR
    fw = _problems(findings, "firewall")
    assert fw, findings
    f = fw[0]
    assert f"nft table {fam} {table}, chain {where}:" in f["title"], f["title"]
    assert f["commands"] and all(c.startswith(f"nft insert rule {fam} {table} {where} ")
                                 for c in f["commands"])
    if policy == "accept":
        assert " position " in f["commands"][0]  # before the rule that drops
    cmds = _apply_all(b, findings)
    assert cmds
    assert _delivered(veth_pair, g, port), cmds
    status, findings = _doctor(b, f"{g}:{port}", "-i", "eth0")
    assert not _problems(findings, "firewall"), findings
    assert status == ExitStatus.OK, _problems(findings)


def test_igmp_drop_found_and_fixed(veth_pair: VethPair) -> None:
    _need_nft()
    b = veth_pair.b
    _table(b, "inet", "noigmp", "in", "accept", "ip protocol igmp drop")
    status, findings = _doctor(b, f"{asm4(49, 2)}:5401", "-i", "eth0")
    f = _problems(findings, "firewall")
    assert len(f) == 1 and "IGMP" in f[0]["title"] and "noigmp" in f[0]["title"]
    _apply_all(b, findings)
    status, findings = _doctor(b, f"{asm4(49, 2)}:5401", "-i", "eth0")
    assert status == ExitStatus.OK, _problems(findings)


def test_ipv6_udp_and_mld_drops_found_and_fixed(veth_pair: VethPair) -> None:
    _need_nft()
    b = veth_pair.b
    _table(b, "inet", "six", "in", "accept", "icmpv6 type mld-listener-query drop",
           f"ip6 daddr {ASM_NET6} udp dport 5409 drop")
    _, findings = _doctor(b, f"[{asm6('49')}]:5409", "-i", "eth0")
    titles = [f["title"] for f in _problems(findings, "firewall")]
    assert any("MLD queries" in t and "handle 2" in t for t in titles), titles
    assert any(f"UDP {asm6('49')} port 5409" in t and "handle 3" in t for t in titles), titles
    _apply_all(b, findings)
    _, findings = _doctor(b, f"[{asm6('49')}]:5409", "-i", "eth0")
    assert not _problems(findings, "firewall"), findings
    # IPv4 rules never apply to IPv6 packets and the other way round
    _table(b, "ip", "v4only", "in", "drop")
    assert not _problems(_doctor(b, f"[{asm6('49')}]:5409", "-i", "eth0")[1], "firewall")


@pytest.mark.parametrize("rules", [
    ["udp dport 5402 accept", "udp dport 5402 drop"],           # an accept before the drop
    ['iifname "other0" drop'],                                    # a drop for another interface
    ["ip daddr 239.1.0.0/16 drop"],                               # a drop for other groups
    ["ip6 daddr ff00::/8 drop", "ct state established,related accept"],
])
def test_rules_that_do_not_drop_are_not_flagged(veth_pair: VethPair, rules: list[str]) -> None:
    _need_nft()
    b = veth_pair.b
    _table(b, "inet", "ok", "in", "accept", *rules)
    assert _delivered(veth_pair, asm4(49, 3), 5402)
    status, findings = _doctor(b, f"{asm4(49, 3)}:5402", "-i", "eth0")
    assert not _problems(findings, "firewall"), findings
    assert status == ExitStatus.OK, _problems(findings)


def test_probe_confirms_delivery_through_the_input_path(netns: Netns) -> None:
    _, findings = _doctor(netns, f"{asm4(49, 4)}:5403", "-i", "lo")
    assert [f["severity"] for f in findings if f["check"] == "probe"] == ["ok"]
    _need_nft()
    _table(netns, "inet", "p", "in", "accept", "udp dport 5403 counter drop")
    _status, findings = _doctor(netns, f"{asm4(49, 4)}:5403", "-i", "lo")
    probe = next(f for f in findings if f["check"] == "probe")
    assert probe["severity"] == "error"  # the kernel's answer, not a guess from text
    fw = _problems(findings, "firewall")[0]
    assert "counter shows 1 packet(s) dropped" in fw["detail"]  # the probe, counted


def test_no_probe_sends_nothing(netns: Netns) -> None:
    with open_receiver(f"{asm4(49, 9)}:5409", interface="lo", reuse_port=True) as rx:
        _, findings = _doctor(netns, f"{asm4(49, 9)}:5409", "-i", "lo", "--no-probe")
        assert not [f for f in findings if f["check"] == "probe"]
        with pytest.raises(ReceiveTimeoutError):
            rx.recv(timeout_s=0.3)
        _, findings = _doctor(netns, f"{asm4(49, 9)}:5409", "-i", "lo")  # with the probe
        assert rx.recv(timeout_s=2).data.startswith(b"mcastkit-doctor-probe ")


def test_no_carrier(netns: Netns) -> None:
    netns.ip("link", "add", "nc0", "type", "veth", "peer", "name", "nc1")
    netns.ip("addr", "add", f"{lab_host(49, 1)}/24", "dev", "nc0")
    netns.ip("link", "set", "nc0", "up")  # nc1 stays down: nc0 is UP without RUNNING
    status, findings = _doctor(netns, f"{asm4(49, 5)}:5404", "-i", "nc0")
    f = _problems(findings, "interface")
    assert status == ExitStatus.ERROR and any("no carrier" in x["title"] for x in f), findings
    netns.ip("link", "set", "nc1", "up")
    # RUNNING follows the operational state, which the kernel's linkwatch work sets later
    wait_until(lambda: "state UP" in netns.ip("link", "show", "nc0").stdout, 10,
               what="nc0 operationally up")
    status, findings = _doctor(netns, f"{asm4(49, 5)}:5404", "-i", "nc0")
    assert not _problems(findings, "interface"), findings


def test_ipv4_less_interface(netns: Netns) -> None:
    netns.ip("link", "add", "na0", "type", "veth", "peer", "name", "na1")
    netns.ip("link", "set", "na0", "up")
    netns.ip("link", "set", "na1", "up")
    status, findings = _doctor(netns, f"{asm4(49, 6)}:5405", "-i", "na0")
    f = _problems(findings, "interface")
    assert any("has no IPv4 address" in x["title"] and "0.0.0.0" in x["detail"] for x in f)
    assert status == ExitStatus.ERROR


def test_ipv6_on_lo(netns: Netns) -> None:
    status, findings = _doctor(netns, f"[{asm6('49')}]:5406", "-i", "lo")
    f = _problems(findings, "interface")
    assert any("IPv6 multicast does not work over lo" in x["title"] for x in f), findings
    assert status == ExitStatus.ERROR


def test_old_rcvbuf_burst_is_history_new_one_is_a_problem(netns: Netns) -> None:
    g, port = asm4(49, 7), 5407
    rx = open_receiver(f"{g}:{port}", interface="lo", rcvbuf_bytes=1)
    try:
        with open_sender(f"{g}:{port}", interface="lo") as tx:
            for _ in range(300):
                tx.send(bytes(1000))
        _status, findings = _doctor(netns, "-i", "lo")
        f = [x for x in findings if x["check"] == "udp_errors"]
        assert f and all(not x["problem"] for x in f), f
        assert any("since boot, none in the last" in x["title"] for x in f)
        stop = threading.Event()

        def flood() -> None:
            with open_sender(f"{g}:{port}", interface="lo") as tx2:
                while not stop.is_set():
                    tx2.send(bytes(1000))
                    time.sleep(0.001)

        t = threading.Thread(target=lambda: _in(netns, flood), daemon=True)
        t.start()
        try:
            with netns.enter():
                r = cli("doctor", "-i", "lo", "--json", "--window", "1")
        finally:
            stop.set()
            t.join(10)
        grew = [x for x in r.json() if x.get("check") == "udp_errors" and x["problem"]]
        assert grew and "grew by" in grew[0]["title"], r.stdout
    finally:
        rx.close()


def _in(ns: Netns, fn: Any) -> None:
    with ns.enter():
        fn()


def test_bad_port_message_says_it_once(netns: Netns) -> None:
    r = cli("doctor", f"{G4}:99999")
    assert r.status == ExitStatus.USAGE
    assert r.stderr.count("99999") == 2  # the argument once, the port once
    assert "1-65535" in r.stderr


def test_ttl_too_low_to_cross_a_router() -> None:
    """h1 and h2 are on LANs joined by a multicast router (smcroute when installed):
    doctor in h1 says TTL 1 does not reach h2, TTL 2 does; ping with TTL 1 hears no peer
    and its message names --ttl; with --ttl 2 h2 answers."""
    if shutil.which("smcrouted") is None:
        require_or_skip("smcroute is not installed")
    with Lab(router="smcroute") as lab:
        h1, h2 = lab.host("h1"), lab.host("h2")
        with h1.enter():
            r1 = cli("doctor", f"{asm4(49, 8)}:5408", "-i", "eth0", "--peer", H2, "--json",
                     "--window", "0")
            r2 = cli("doctor", f"{asm4(49, 8)}:5408", "-i", "eth0", "--peer", H2, "--ttl", "2",
                     "--json", "--window", "0")
        ttl1 = [o for o in r1.json() if o.get("check") == "ttl"]
        assert ttl1[0]["severity"] == "error" and "behind router" in ttl1[0]["title"]
        assert [o["severity"] for o in r2.json() if o.get("check") == "ttl"] == ["ok"]
        lab.prime(asm4(49, 8))
        args = ["ping", f"{asm4(49, 8)}:5408", "-i", "eth0", "-c", "4", "--interval", "0.2",
                "--timeout", "20", "--max-loss", "100"]
        for ttl, expect_peer in (("1", False), ("2", True)):
            # h2 probes until it hears a peer (--peers 1), so it is still there however
            # late h1 starts on a loaded machine; h1 starts once h2 has joined
            b = h2.popen(sys.executable, "-m", "mcastkit", *args, "--ttl", ttl, "--peers", "1",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                with h2.enter():
                    wait_joined(asm4(49, 8), "eth0", timeout=30)
                lab.wait_members(asm4(49, 8), "h2")
                wait_for_peer = ["--peers", "1"] if expect_peer else []
                a = h1.run(sys.executable, "-m", "mcastkit", *args, "--ttl", ttl,
                           *wait_for_peer, check=False)
                if not expect_peer:
                    b.terminate()  # it would wait out --timeout for a peer it cannot hear
                b.communicate(timeout=60)
            finally:
                if b.poll() is None:
                    b.kill()
            if expect_peer:
                assert a.returncode == 0 and H2 in a.stdout, a.stderr
            else:
                assert a.returncode == ExitStatus.TIMEOUT
                assert "no peer answered" in a.stderr and "--ttl" in a.stderr


def _delivered_or_refused(pair: VethPair, group: str, port: int) -> bool:
    try:
        return _delivered(pair, group, port)
    except (McastError, subprocess.CalledProcessError):
        return False  # the receiver could not even join, or the sender could not send


HOST_SETUPS = {
    # name: (namespace to break, commands that break it)
    "receiver_interface_down": ("b", ["ip link set dev eth0 down"]),
    "sender_interface_down": ("a", ["ip link set dev eth0 down"]),
    "receiver_membership_limit_0": ("b", ["sysctl -w net.ipv4.igmp_max_memberships=0"]),
    # multi-homed receiver whose route back to the sender points out of another interface
    "receiver_strict_rp_filter": ("b", [
        "ip link add x1 type veth peer name x2", f"ip addr add {lab_host(44, 1)}/24 dev x1",
        "ip link set x1 up", "ip link set x2 up", f"ip route add {VETH_A}/32 dev x1",
        "sysctl -w net.ipv4.conf.all.rp_filter=1"]),
}


@pytest.mark.parametrize("name", list(HOST_SETUPS))
def test_host_setup_fix_commands_make_delivery_work(veth_pair: VethPair, name: str) -> None:
    """Not only the firewall: every fix command doctor prints for a broken host, run as
    written, makes delivery work."""
    side, breaks = HOST_SETUPS[name]
    ns = veth_pair.a if side == "a" else veth_pair.b
    g, port = asm4(49, 10), 5411
    for c in breaks:
        ns.run("sh", "-c", c)
    assert not _delivered_or_refused(veth_pair, g, port)
    status, findings = _doctor(ns, f"{g}:{port}", "-i", "eth0")
    assert status == ExitStatus.ERROR
    cmds = _apply_all(ns, findings)
    assert cmds, _problems(findings)
    wait_until(lambda: _delivered_or_refused(veth_pair, g, port), 10,
               what=f"delivery after {cmds}")
    # the kernel sets RUNNING (carrier) a moment after the link is up (linkwatch)
    wait_until(lambda: _doctor(ns, f"{g}:{port}", "-i", "eth0")[0] == ExitStatus.OK, 10,
               what="doctor clean after the fix")
