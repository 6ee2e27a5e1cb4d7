"""``mcastkit relay`` in-process: the spellings of the issue, usage errors with one line
and the right exit status, ``--json`` periodic counters, ``--stats`` live and plain."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mcastkit.cli import Env, ExitStatus, main
from mcastkit.relay import make_key_file
from tests.support.addrs import G4, lab_host
from tests.support.cli import cli
from tests.support.topology import new_group, new_port


def _err_line(r: object) -> str:
    lines = r.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


@pytest.mark.parametrize(("argv", "status", "words"), [
    (["relay", "eth1", "--group", f"{G4}:5000"], 2, "at least two interfaces"),
    (["relay", "eth1", "eth2"], 2, "nothing to relay"),
    (["relay", "eth1", "eth2", "--group", "10.0.0.1:5000"], 2, "not a multicast"),
    (["relay", "eth1", "eth2", "--preset", "bonjour"], 2, "unknown preset"),
    (["relay", "eth1", "eth2", "--broadcast-port", "0"], 2, "1-65535"),
    (["relay", "eth1", "eth2", "--group", "255.255.255.255:x"], 2, "1-65535"),
    (["relay", "eth1", "eth2", "--group", f"{lab_host(1, 255)}:6969"], 2, "not a multicast"),
    (["relay", "--tunnel-listen", "7777", "-i", "eth1", "--preset", "mdns"], 2,
     "--key-file"),
    (["relay", "--tunnel-listen", "7777", "--tunnel-connect", f"{lab_host(1, 1)}:7777",
      "--key-file", "k", "-i", "eth1", "--preset", "mdns"], 2, "not both"),
    (["relay", "--tunnel-connect", "7777", "--key-file", "k", "-i", "e", "--preset",
      "mdns"], 2, "HOST:PORT"),
    (["relay", "eth1", "eth2", "--preset", "mdns", "--key-file", "k"], 2,
     "need --tunnel-listen"),
    (["relay", "eth1", "eth2", "--preset", "mdns", "--ttl", "300"], 2, "--ttl 300"),
    (["relay", "eth1", "eth1", "--preset", "mdns"], 2, "listed twice"),
    (["relay", "eth1", "eth2", "--group", f"{G4}:5000", "--group",
      f"{G4}:5000"], 2, "one rule only"),
    (["relay", "eth1", "eth2", "--preset", "mdns", "--health", "nonsense"], 2, "--health"),
])
def test_usage_errors(argv: list[str], status: int, words: str) -> None:
    r = cli(*argv)
    assert r.status == status, r.stderr
    assert words in _err_line(r)


def test_config_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text(f'interfaces = ["a", "b"]\n\n[[rule]]\ngroups = ["{G4}:0"]\n')
    r = cli("relay", "--config", str(p))
    assert r.status == 2
    assert f"{p}:3:" in _err_line(r) and "port 0" in r.stderr


def test_help_lists_the_spellings() -> None:
    r = cli("relay", "--help")
    assert r.status == 0
    for word in ("--tunnel-listen", "--tunnel-connect", "--key-file", "--preset", "--config",
                 "--stats", "--json", "--ttl", "--rate-limit", "--preserve-source",
                 "--health", "--make-key", "--listen-only", "--broadcast-port",
                 "255.255.255.255:PORT"):
        assert word in r.stdout


def test_make_key(tmp_path: Path) -> None:
    p = tmp_path / "relay.key"
    r = cli("relay", "--make-key", str(p))
    assert r.status == 0 and stat.S_IMODE(os.stat(p).st_mode) == 0o600
    r = cli("relay", "--make-key", str(p))
    assert r.status == 2 and "refusing to overwrite" in _err_line(r)


@pytest.mark.kernel
def test_json_counters_per_rule_and_direction(veth_loop: object) -> None:
    port, g = new_port(), new_group()
    r = cli("relay", "va", "vb", "--group", f"{g}:{port}", "--preset", "mdns", "--json",
            "--interval", "0.1", "--duration", "0.6")
    assert r.status == 0, r.stderr
    objs = [json.loads(x) for x in r.stdout.splitlines()]
    assert objs[-1]["type"] == "summary" and objs[0]["type"] == "stats"
    assert len(objs) >= 3
    for o in objs:
        assert {"uptime_s", "totals", "kernel_drops", "rules"} <= set(o)
        assert set(o["totals"]) == {"received", "filtered", "loop_suppressed",
                                    "rate_limited", "no_target", "relayed", "too_big",
                                    "send_errors"}
    assert "relay started" in r.stderr and "relay stopped" in r.stderr


@pytest.mark.kernel
def test_stats_plain_lines_when_not_a_terminal(veth_loop: object) -> None:
    r = cli("relay", "va", "vb", "--preset", "mdns", "--stats", "--interval", "0.1",
            "--duration", "0.5", "-q")
    assert r.status == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("stats: received 0, relayed 0")
    assert lines[-1].startswith("summary: received 0")
    assert r.stderr == ""  # -q: warnings only


@pytest.mark.kernel
def test_stats_live_line_on_a_terminal(veth_loop: object) -> None:
    out = io.StringIO()
    env = Env(stdin=io.StringIO(), stdout=out, stderr=io.StringIO(), stdin_isatty=True,
              stdout_isatty=True, environ={})
    status = main(["relay", "va", "vb", "--preset", "mdns", "--stats", "--duration", "0.6",
                   "-q"], env=env)
    assert status is ExitStatus.OK
    text = out.getvalue()
    assert "stats:" not in text  # the live line replaced the periodic lines
    assert "summary: received 0" in text


def test_cli_does_not_need_cryptography() -> None:
    """``mcastkit`` (every verb) and a relay between interfaces work without the relay
    extra; only the tunnel needs ``cryptography``."""
    code = ("import sys; import mcastkit.cli._app, mcastkit.relay; "
            "print('cryptography' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


@pytest.mark.kernel
def test_tunnel_without_cryptography_names_the_extra(veth_loop: object, tmp_path: Path
                                                     ) -> None:
    key = tmp_path / "k"
    make_key_file(str(key))
    code = ("import sys; sys.modules['cryptography'] = None; "
            "from mcastkit.cli import main; sys.exit(int(main(sys.argv[1:])))")
    r = subprocess.run([sys.executable, "-c", code, "relay", "--tunnel-listen", "7777",
                        "--key-file", str(key), "-i", "va", "--preset", "mdns"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 4, r.stderr
    assert "pip install 'mcastkit[relay]'" in r.stderr and "Traceback" not in r.stderr
