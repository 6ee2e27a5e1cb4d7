"""Issue 9 item 6: messages name the CLI's own knobs (-i IFACE, --rcvbuf, --reuse), not
the library's keyword arguments; size errors are usage errors (2); port ranges agree;
every failure line starts with 'mcastkit: error:'; more than 20 groups on one port are
spread over sockets by the CLI itself."""

from __future__ import annotations

import pytest

from mcastkit import open_sender
from mcastkit.cli import ExitStatus
from mcastkit.cli._common import cli_message
from tests.support.addrs import G4, G6, asm4
from tests.support.cli import Background, cli, mk, wait_joined
from tests.support.netns import Netns
from tests.support.topology import VethLoop

LIB_NAMES = ("interface=", "rcvbuf_bytes", "reuse_port", "set_interface(")


def _clean(stderr: str) -> None:
    assert stderr.startswith("mcastkit: error: "), stderr
    assert not any(n in stderr for n in LIB_NAMES), stderr
    assert "Traceback" not in stderr


@pytest.mark.kernel
def test_no_route_names_dash_i(netns: Netns) -> None:
    for argv in (["send", f"{asm4(50, 1)}:5500", "x"], ["listen", f"{asm4(50, 1)}:5500",
                                                        "--timeout", "0.2"]):
        r = cli(*argv)
        assert r.status == ExitStatus.ERROR
        _clean(r.stderr)
        assert "-i IFACE" in r.stderr


@pytest.mark.kernel
def test_port_in_use_names_reuse(netns: Netns) -> None:
    bg = Background("listen", f"{asm4(50, 2)}:5501", "-i", "lo", "-c", "1", "--timeout", "10")
    wait_joined(asm4(50, 2))
    r = cli("listen", f"{asm4(50, 2)}:5501", "-i", "lo", "--timeout", "0.2")
    _clean(r.stderr)
    assert "--reuse" in r.stderr and "address already in use" in r.stderr
    cli("send", f"{asm4(50, 2)}:5501", "-i", "lo", "x")
    assert bg.join().status == 0


@pytest.mark.kernel
def test_ipv6_send_without_interface_is_usage_and_names_dash_i(veth_loop: VethLoop) -> None:
    r = cli("send", "[ff02::1]:5502", "x")
    assert r.status == ExitStatus.USAGE
    _clean(r.stderr)
    assert "[ff02::1]:5502: IPv6 multicast needs the outgoing interface; give -i IFACE" \
        in r.stderr


@pytest.mark.parametrize("argv, needle", [
    (["send", f"{G4}:5000", "-i", "lo", "--size", "70000"], "IPv4 UDP datagram"),
    (["send", f"[{G6}]:5000", "-i", "lo", "--size", "66000"],
     "do not fit in one IPv6 UDP datagram (at most 65527 bytes)"),
    (["perf", "send", f"{G4}:5000", "-i", "lo", "--size", "70000"], "at most 65507"),
    (["listen", f"{G4}:5000", "-i", "lo", "--rcvbuf", "0"], "--rcvbuf"),
    (["listen", f"{G4}:5000", "-i", "lo", "--rcvbuf", "lots"], "--rcvbuf"),
    (["listen", f"{G4}:99999"], "1-65535"),
    (["listen", f"{G4}:0"], "1-65535"),
    (["send", f"{G4}:70000", "x"], "1-65535"),
    (["listen", f"{G4}:5000", "--interval", "-1"], "above 0"),
    (["listen", f"{G4}:5000", "--interval", "0"], "above 0"),
    (["doctor", f"{G4}:99999"], "1-65535"),
])
def test_usage_messages(argv: list[str], needle: str) -> None:
    r = cli(*argv)
    assert r.status == ExitStatus.USAGE, r.stderr
    _clean(r.stderr)
    assert needle in r.stderr
    assert "0-65535" not in r.stderr and ">= 0" not in r.stderr


def test_size_suffixes() -> None:
    from mcastkit.cli._common import size_arg
    assert [size_arg(t) for t in ("1200", "64K", "4M", "1G", "2KiB", "1MB", "1.5k")] == [
        1200, 65536, 4 << 20, 1 << 30, 2048, 10**6, 1536]


def test_cli_message_table() -> None:
    msg = (f"send {G4}:5000: no route to the group; set the outgoing interface "
           "(interface= / set_interface())")
    assert cli_message(msg).endswith("set the outgoing interface (-i IFACE)")
    assert "give -i IFACE" in cli_message("join x: no such interface; pass interface=")
    assert "--rcvbuf" in cli_message("rcvbuf_bytes must be an integer 1-1073741824")


@pytest.mark.kernel
def test_ping_errors_have_the_prefix(netns: Netns) -> None:
    r = cli("ping", f"{asm4(50, 3)}:5503", "-i", "lo", "-c", "1", "--interval", "0.1",
            "--wait", "0.1")
    assert r.status == ExitStatus.TIMEOUT
    _clean(r.stderr)
    assert "no peer answered" in r.stderr and "--ttl" in r.stderr


@pytest.mark.kernel
def test_fifty_groups_on_one_port_spread_over_sockets(netns: Netns) -> None:
    netns.sysctl("net.ipv4.igmp_max_memberships", 20)
    groups = [asm4(51, i) for i in range(1, 51)]
    bg = Background("listen", *[f"{g}:5504" for g in groups], "-i", "lo", "-c", "3",
                    "--timeout", "15", "--json", "-v")
    for g in (groups[0], groups[25], groups[49]):
        wait_joined(g)
    for g in (groups[0], groups[25], groups[49]):
        with open_sender(f"{g}:5504", interface="lo") as tx:
            tx.send(g.encode())
    r = bg.join()
    assert r.status == 0, r.stderr
    assert sorted(o["data"] for o in r.json()) == sorted([groups[0], groups[25], groups[49]])
    assert "3 socket(s)" in r.stderr  # -v says how it spread them


@pytest.mark.kernel
def test_subprocess_usage_error_exit_2(netns: Netns) -> None:
    p = mk("send", f"{G4}:5000", "-i", "lo", "--size", "70000")
    assert p.returncode == 2 and p.stderr.startswith("mcastkit: error: ")
