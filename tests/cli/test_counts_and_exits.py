"""Issue 9 item 4: counts and exit codes that hold. An interrupted unpaced ``send -c 0``
reports what it sent; ``listen --stats`` with nothing received exits 3; SIGTERM is
handled like Ctrl-C (summary printed, exit 143) by listen, perf recv and send; perf recv
says why it exits 5; ping notices a peer that left; listen reports its interface
deleted."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from mcastkit import open_sender
from mcastkit import seq as _seq
from mcastkit.cli import ExitStatus
from tests.support.addrs import asm4
from tests.support.cli import Background, cli, json_lines, mk_popen, wait_joined, wait_socket_open
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel
G = asm4(48, 1)


def _stop(p: subprocess.Popen[str], sig: int) -> tuple[str, str]:
    try:
        p.send_signal(sig)
        return p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_unpaced_send_forever_reports_what_it_sent(netns: Netns, sig: int, code: int) -> None:
    lis = mk_popen("listen", f"{G}:5300", "-i", "lo", "--stats", "--json", "--rcvbuf", "8M")
    try:
        wait_joined(G)
        p = mk_popen("send", f"{G}:5300", "-i", "lo", "--size", "100", "-c", "0", "--json")
        wait_socket_open(p)
        time.sleep(0.5)
        out, err = _stop(p, sig)
        lout, _ = _stop(lis, signal.SIGINT)
    finally:
        for q in (lis,):
            if q.poll() is None:
                q.kill()
    assert p.returncode == code, err
    summary = json_lines(out)[-1]
    assert summary["type"] == "summary" and summary["interrupted"] is True
    got = json_lines(lout)[-1]
    # what the listener saw (received + dropped by its kernel buffer) left this sender
    assert summary["sent"] > 0
    assert summary["sent"] >= got["datagrams"] > 0
    assert summary["bytes"] == 100 * summary["sent"]


def test_listen_stats_nothing_received_exits_3(netns: Netns) -> None:
    r = cli("listen", f"{G}:5301", "-i", "lo", "--stats", "--timeout", "1.5")
    assert r.status == ExitStatus.TIMEOUT
    assert r.stdout.splitlines()[-1].startswith("summary: 0 datagrams")
    assert r.stderr.startswith("mcastkit: error: timeout: nothing arrived in 1.5 s")


@pytest.mark.parametrize("argv", [
    ["listen", f"{G}:5302", "-i", "lo", "--stats"],
    ["perf", "recv", f"{G}:5302", "-i", "lo"],
])
def test_sigterm_prints_the_summary_and_exits_143(netns: Netns, argv: list[str]) -> None:
    p = mk_popen(*argv)
    try:
        wait_joined(G)
        out, err = _stop(p, signal.SIGTERM)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err
    assert ("summary:" in out) or ("perf recv:" in out), out
    assert "Traceback" not in err


def test_sigterm_in_process_on_the_main_thread(netns: Netns) -> None:
    """main() called from Python on the main thread handles SIGTERM too, and puts the
    previous handler back afterwards."""
    import threading

    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.5, lambda: signal.raise_signal(signal.SIGTERM))
    timer.start()
    r = cli("listen", f"{G}:5303", "-i", "lo", "--stats", "--timeout", "20")
    timer.join()
    assert r.status == ExitStatus.TERMINATED
    assert "summary: 0 datagrams" in r.stdout
    assert signal.getsignal(signal.SIGTERM) == before


def test_perf_recv_says_why_it_exits_5(netns: Netns) -> None:
    bg = Background("perf", "recv", f"{G}:5304", "-i", "lo", "--max-loss", "0",
                    "--timeout", "10", "--idle", "1")
    wait_joined(G)
    with open_sender(f"{G}:5304", interface="lo") as tx:
        for seq in (0, 1, 3):  # 2 is lost
            tx.send(_seq.pack(7, seq, time.time_ns(), 64))
        tx.send(_seq.pack(7, 4, time.time_ns(), kind=_seq.Kind.END))
    r = bg.join()
    assert r.status == ExitStatus.LOSS
    assert "mcastkit: error: loss 25.00% (1 of 4) is above --max-loss 0%" in r.stderr


def _ping_with_a_killed_peer(group: str, port: int, *extra: str) -> tuple[int, str]:
    """A 50-probe ping and a second one that is killed once the first has its reply
    (crashed, host gone): the first must notice it left, and not count its silence as
    loss. Waiting for the reply, not a fixed time, keeps this true on a loaded machine."""
    common = ["--interval", "0.2", "--timeout", "60", "--reuse", "-i", "lo", *extra]
    long = mk_popen("ping", f"{group}:{port}", "-c", "50", *common)
    short = None
    lines: list[str] = []
    replied = threading.Event()

    def read() -> None:
        assert long.stdout is not None
        for line in long.stdout:
            lines.append(line)
            if '"type":"reply"' in line.replace(" ", "") or ": seq=" in line:
                replied.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_joined(group)
        short = mk_popen("ping", f"{group}:{port}", *common)
        assert replied.wait(30), "no reply from the second ping"
        short.kill()
        short.communicate(timeout=10)
        long.wait(timeout=60)
        reader.join(timeout=10)
        err = long.stderr.read() if long.stderr else ""
    finally:
        for q in (long, short):
            if q is not None and q.poll() is None:
                q.kill()
    assert long.returncode == 0, err  # its later probes are not counted as loss
    return long.returncode, "".join(lines)


def test_ping_notices_a_peer_that_left(netns: Netns) -> None:
    _, out = _ping_with_a_killed_peer(asm4(48, 2), 5305, "--json")
    objs = json_lines(out)
    assert len([o for o in objs if o["type"] == "left"]) == 1
    peer = next(o for o in objs if o["type"] == "peer")
    assert peer["left"] is True and peer["loss_pct"] == 0.0 and peer["received"] >= 1


def test_ping_text_says_left(netns: Netns) -> None:
    _, out = _ping_with_a_killed_peer(asm4(48, 3), 5306)
    assert ": left (nothing heard for 1 s)" in out, out
    assert "(left early)" in out


def test_listen_reports_its_interface_deleted(netns: Netns) -> None:
    netns.ip("link", "add", "gone0", "type", "veth", "peer", "name", "gone1")
    netns.ip("link", "set", "gone0", "up")
    netns.ip("link", "set", "gone1", "up")
    p = mk_popen("listen", f"{G}:5307", "-i", "gone0", "--timeout", "30")
    try:
        wait_joined(G, "gone0")
        netns.ip("link", "del", "gone0")
        _out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == ExitStatus.ERROR
    assert "mcastkit: error: interface gone0 (index" in err and "was deleted" in err


