"""Issue 14 item 8: listen, ping and perf recv share their port only when asked
(--reuse), so no other program can bind it behind the user's back and take copies or
replies. Issue 14 item 10 (CLI part): perf --json-report never follows a symbolic link."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from mcastkit import open_sender
from mcastkit import seq as _seq
from mcastkit.cli import ExitStatus
from tests.support.addrs import asm4
from tests.support.cli import Background, cli, mk_popen, wait_joined
from tests.support.netns import Netns

G = asm4(53, 1)


def _intruder_can_bind(port: int) -> bool:
    """What another program would try: SO_REUSEADDR and SO_REUSEPORT, then bind."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.mark.kernel
@pytest.mark.parametrize("argv", [
    ["listen", f"{G}:5700", "-i", "lo", "--timeout", "20"],
    ["ping", f"{G}:5700", "-i", "lo", "-c", "50", "--interval", "0.2"],
    ["perf", "recv", f"{G}:5700", "-i", "lo", "--timeout", "20"],
])
def test_port_is_not_shared_unless_asked(netns: Netns, argv: list[str]) -> None:
    p = mk_popen(*argv)
    try:
        wait_joined(G)
        assert not _intruder_can_bind(5700)
    finally:
        p.kill()
        p.communicate()
    p = mk_popen(*argv, "--reuse")
    try:
        wait_joined(G)
        assert _intruder_can_bind(5700)
    finally:
        p.kill()
        p.communicate()


def _perf_recv_report(netns: Netns, report: Path) -> tuple[int, str]:
    bg = Background("perf", "recv", f"{G}:5701", "-i", "lo", "--timeout", "10",
                    "--json-report", str(report), "--idle", "0.5")
    wait_joined(G)
    with open_sender(f"{G}:5701", interface="lo") as tx:
        tx.send(_seq.pack(9, 0, 0, 64))
        tx.send(_seq.pack(9, 1, 0, kind=_seq.Kind.END))
    r = bg.join()
    return r.status, r.stderr


@pytest.mark.kernel
def test_json_report_refuses_a_symlink(netns: Netns, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    status, err = _perf_recv_report(netns, link)
    assert status == ExitStatus.ERROR
    assert "is a symbolic link" in err
    assert target.read_text() == "keep me\n"


@pytest.mark.kernel
def test_json_report_refuses_a_dangling_symlink(netns: Netns, tmp_path: Path) -> None:
    link = tmp_path / "report.json"
    link.symlink_to(tmp_path / "would-be-created")
    status, err = _perf_recv_report(netns, link)
    assert status == ExitStatus.ERROR and "symbolic link" in err
    assert not (tmp_path / "would-be-created").exists()


@pytest.mark.kernel
def test_json_report_new_and_existing_files(netns: Netns, tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    assert _perf_recv_report(netns, new)[0] == 0
    assert stat.S_IMODE(os.stat(new).st_mode) & 0o022 == 0 and '"role": "recv"' in new.read_text()
    old = tmp_path / "old.json"
    old.write_text("x" * 10000)  # a file the user named: rewritten, not appended to
    assert _perf_recv_report(netns, old)[0] == 0
    assert old.read_text().startswith("{") and "xxxx" not in old.read_text()


def test_json_report_directory_is_an_error(tmp_path: Path) -> None:
    r = cli("perf", "send", f"{G}:5702", "-i", "lo", "-c", "1", "--json-report",
            str(tmp_path))
    assert r.status != 0 and r.stderr.startswith("mcastkit: error: --json-report")
