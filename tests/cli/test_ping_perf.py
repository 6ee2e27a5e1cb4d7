"""ping between two processes and perf send/recv, in a fresh namespace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcastkit.cli import ExitStatus
from tests.support.addrs import VETH_A, VETH_B, asm4
from tests.support.cli import cli, json_lines, mk, mk_popen, wait_joined

pytestmark = pytest.mark.kernel


def _two_pings(extra: list[str], veth: tuple[str, str] = ("lo", "lo")) -> list[dict[str, Any]]:
    g = f"{asm4(41, 1)}:4321"
    # two pings on one host share the port: only with --reuse (issue 14 item 8)
    args = [g, "-c", "8", "--interval", "0.2", "--json", "--timeout", "30", "--reuse"]
    p = mk_popen("ping", *args, "-i", veth[0], *extra)
    try:
        wait_joined(asm4(41, 1), veth[0])
        q = mk("ping", *args, "-i", veth[1], *extra)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert q.returncode == 0, q.stderr
    return [*json_lines(out), *json_lines(q.stdout)]


def test_ping_two_processes_no_loss(netns: object) -> None:
    objs = _two_pings([])
    sums = [o for o in objs if o["type"] == "peer"]
    assert len(sums) == 2  # each process saw exactly one peer
    assert [o["peers"] for o in objs if o["type"] == "summary"] == [1, 1]
    for s in sums:
        assert s["loss_pct"] == 0.0 and s["received"] >= 1
        assert s["received"] == s["sent"]
        assert s["rtt_min_ms"] <= s["rtt_avg_ms"] <= s["rtt_max_ms"]
        assert s["jitter_ms"] >= 0
    assert any(o["type"] == "reply" for o in objs)


def test_ping_multicast_replies(netns: object) -> None:
    sums = [o for o in _two_pings(["--reply", "multicast"]) if o["type"] == "peer"]
    assert len(sums) == 2 and all(s["loss_pct"] == 0.0 for s in sums)


def test_ping_alone_times_out_with_3(netns: object) -> None:
    r = cli("ping", f"{asm4(41, 2)}:4322", "-i", "lo", "-c", "2", "--interval", "0.1",
            "--wait", "0.2")
    assert r.status == ExitStatus.TIMEOUT
    assert "no peer answered" in r.stderr


def test_ping_across_a_veth_pair(veth_pair: object) -> None:
    pair = veth_pair
    g = f"{asm4(41, 3)}:4323"
    args = ["ping", g, "-i", "eth0", "-c", "6", "--interval", "0.2", "--json",
            "--timeout", "30"]
    import subprocess
    import sys
    a = pair.a.popen(sys.executable, "-m", "mcastkit", *args,  # type: ignore[attr-defined]
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with pair.a.enter():  # type: ignore[attr-defined]
            wait_joined(asm4(41, 3), "eth0")
        rb = pair.b.run(sys.executable, "-m", "mcastkit", *args,  # type: ignore[attr-defined]
                        check=False)
        out, err = a.communicate(timeout=60)
    finally:
        if a.poll() is None:
            a.kill()
    assert a.returncode == 0, err
    assert rb.returncode == 0, rb.stderr
    sa = [o for o in json_lines(out) if o["type"] == "peer"]
    sb = [o for o in json_lines(rb.stdout) if o["type"] == "peer"]
    assert sa[0]["peer"] == VETH_B and sb[0]["peer"] == VETH_A
    assert sa[0]["loss_pct"] == 0.0 and sb[0]["loss_pct"] == 0.0


def test_perf_send_recv_counts_match(netns: object, tmp_path: Path) -> None:
    report = tmp_path / "recv.json"
    g = f"{asm4(41, 4)}:5001"
    p = mk_popen("perf", "recv", g, "-i", "lo", "--json", "--json-report", str(report),
                 "--timeout", "30", "--max-loss", "0")
    try:
        wait_joined(asm4(41, 4))
        s = mk("perf", "send", g, "-i", "lo", "-c", "3000", "--rate", "5k", "--size", "200",
               "--json")
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert s.returncode == 0, s.stderr
    sent = json_lines(s.stdout)[-1]
    assert sent["sent"] == 3000 and sent["role"] == "send"
    assert p.returncode == 0, err
    got = json_lines(out)[-1]
    assert got["datagrams"] == 3000 and got["expected"] == 3000 and got["lost"] == 0
    assert got["ended"] == 1 and got["duplicates"] == 0
    assert json.loads(report.read_text()) == got


def test_perf_recv_reports_tail_loss_from_end_marker(netns: object) -> None:
    """The receiver learns the total from END: gaps and the missing tail count as lost,
    and --max-loss turns that into exit 5."""
    from mcastkit import MulticastSocket
    from mcastkit import seq as _seq

    g, port = asm4(41, 5), 5002
    p = mk_popen("perf", "recv", f"{g}:{port}", "-i", "lo", "--json", "--timeout", "30",
                 "--max-loss", "1")
    try:
        wait_joined(g)
        with MulticastSocket(4, interface="lo") as tx:
            for seq in (0, 1, 5, 6, 7):  # 2, 3, 4, 8, 9 never sent
                tx.sendto(_seq.pack(77, seq, 0, 64), g, port)
            tx.sendto(_seq.pack(77, 10, 0, kind=_seq.Kind.END), g, port)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == ExitStatus.LOSS, err
    got = json_lines(out)[-1]
    assert (got["datagrams"], got["expected"], got["lost"]) == (5, 10, 5)


def test_perf_recv_nothing_is_timeout(netns: object) -> None:
    r = cli("perf", "recv", f"{asm4(41, 6)}:5003", "-i", "lo", "--timeout", "0.3")
    assert r.status == ExitStatus.TIMEOUT and "nothing arrived" in r.stderr


def test_perf_send_duration_text_summary(netns: object) -> None:
    r = cli("perf", "send", f"{asm4(41, 7)}:5004", "-i", "lo", "--duration", "0.3",
            "--rate", "1k", "--size", "100")
    assert r.status == 0
    assert r.stdout.startswith("perf send: ") and "sent=" in r.stdout and "pps=" in r.stdout


def test_perf_bad_json_report_path(netns: object) -> None:
    r = cli("perf", "send", f"{asm4(41, 8)}:5005", "-i", "lo", "-c", "1",
            "--json-report", "/nonexistent/dir/x.json")
    assert r.status == ExitStatus.ERROR and "--json-report" in r.stderr


def test_perf_send_live_progress_on_a_terminal(netns: object) -> None:
    """On a terminal the live line is drawn (rich when installed) and the summary follows."""
    import io

    from mcastkit.cli import Env, main

    out = io.StringIO()
    env = Env(stdin=io.StringIO(), stdout=out, stderr=io.StringIO(), stdin_isatty=True,
              stdout_isatty=True, environ={})
    status = main(["perf", "send", f"{asm4(41, 9)}:5006", "-i", "lo", "--duration", "0.6",
                   "--rate", "500", "--size", "64"], env=env)
    assert status == ExitStatus.OK
    assert "perf send: " in out.getvalue()


def test_ping_peers_waits_for_a_late_peer(netns: object) -> None:
    """``--peers 1``: the first process keeps warming up until the second (started later)
    is heard, so both count the same full window: 8 probes each, 0 % loss both ways."""
    import time

    g = f"{asm4(41, 10)}:4330"
    args = [g, "-i", "lo", "-c", "8", "--interval", "0.2", "--json", "--timeout", "30",
            "--peers", "1", "--reuse"]
    p = mk_popen("ping", *args)
    try:
        wait_joined(asm4(41, 10))
        time.sleep(1.0)  # start the second host late (no assertion rests on this delay)
        q = mk("ping", *args)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert q.returncode == 0, q.stderr
    sums = [o for o in [*json_lines(out), *json_lines(q.stdout)] if o["type"] == "peer"]
    assert len(sums) == 2  # each saw exactly the other
    for s in sums:
        assert s["sent"] == 8 and s["received"] == 8 and s["loss_pct"] == 0.0, s


def test_ping_peers_not_enough_is_timeout_3(netns: object) -> None:
    r = cli("ping", f"{asm4(41, 11)}:4331", "-i", "lo", "-c", "2", "--interval", "0.1",
            "--peers", "1", "--timeout", "0.5")
    assert r.status == ExitStatus.TIMEOUT
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcastkit: error: ")
    assert "--peers 1" in lines[0] and "--timeout 0.5 s" in lines[0]
    assert "0 other peer(s)" in lines[0]
    assert "Traceback" not in r.stderr


def test_ping_peers_is_in_help_with_an_example() -> None:
    r = cli("ping", "--help")
    assert r.status == 0
    assert "--peers N" in r.stdout and "--peers 2 --timeout 60" in r.stdout


def test_ping_peers_must_be_positive() -> None:
    r = cli("ping", f"{asm4(41, 12)}:4332", "-i", "lo", "--peers", "0")
    assert r.status == ExitStatus.USAGE and "--peers" in r.stderr
