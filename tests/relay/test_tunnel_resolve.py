"""A tunnel peer whose name does not resolve is one clear error line that names the name
and the fix (it was the resolver's bare message), and the relay exits without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcastkit.cli import ExitStatus
from mcastkit.relay import make_key_file
from tests.support.cli import cli
from tests.support.topology import new_group, new_port

pytestmark = pytest.mark.kernel


def test_unresolvable_tunnel_peer_is_named(netns: object, tmp_path: Path) -> None:
    key = tmp_path / "k"
    make_key_file(str(key))
    # .invalid never resolves (RFC 6761); the test namespace has no route to any resolver
    r = cli("relay", "lo", "--group", f"{new_group()}:{new_port()}", "--tunnel-connect",
            "no-such-peer.invalid:4000", "--key-file", str(key), "--duration", "5")
    assert r.status != ExitStatus.OK
    lines = [x for x in r.stderr.strip().splitlines() if x.startswith("mcastkit: error")]
    assert len(lines) == 1, r.stderr
    assert "'no-such-peer.invalid' does not resolve" in lines[0]
    assert "IP address" in lines[0]
    assert "Traceback" not in r.stderr
