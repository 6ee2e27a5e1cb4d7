"""The compat examples run as subprocesses on loopback inside the test's namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.addrs import G4_OTHER
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_chat_example_prints_both_sides(netns: Netns) -> None:
    r = subprocess.run([sys.executable, str(EXAMPLES / "compat_chat.py"), "--interface", "lo"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[alice] got 'bob: hello alice'" in r.stdout
    assert "[bob] got 'alice: hello bob'" in r.stdout


def test_sender_and_receiver_examples(netns: Netns, mcast_port: int) -> None:
    common = ["--group", G4_OTHER, "--port", str(mcast_port), "--interface", "lo",
              "--count", "3"]
    rx = subprocess.Popen([sys.executable, str(EXAMPLES / "compat_receiver.py"), *common],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert rx.stdout is not None
        assert rx.stdout.readline().strip() == "ready"
        tx = subprocess.run([sys.executable, str(EXAMPLES / "compat_sender.py"), *common],
                            capture_output=True, text=True, timeout=60)
        assert tx.returncode == 0, tx.stdout + tx.stderr
        assert tx.stdout.count("sent message") == 3
        out, err = rx.communicate(timeout=30)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    assert rx.returncode == 0, out + err
    for i in (1, 2, 3):
        assert f"got 'message {i} of 3'" in out
    assert f"(to {G4_OTHER})" in out
