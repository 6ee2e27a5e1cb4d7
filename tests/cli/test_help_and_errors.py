"""Help texts, usage errors and exit statuses (no namespace needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mcastkit.cli import ExitStatus, main
from mcastkit.cli._app import VERBS
from tests.support.addrs import G4, SRC4, SSM4, asm6, lab_host
from tests.support.cli import cli, fake_env

HELPS = [["listen"], ["send"], ["ping"], ["perf"], ["perf", "send"], ["perf", "recv"],
         ["interfaces"], ["doctor"]]


@pytest.mark.parametrize("verb", HELPS, ids=lambda v: "-".join(v))
def test_every_help_has_examples(verb: list[str]) -> None:
    r = cli(*verb, "--help")
    assert r.status == ExitStatus.OK
    assert "Examples:" in r.stdout
    assert f"mcastkit {verb[0]} " in r.stdout.split("Examples:", 1)[1]
    assert r.stderr == ""


def test_top_level_help_lists_verbs_and_exit_codes() -> None:
    r = cli("--help")
    assert r.status == 0
    for v in VERBS:
        assert v in r.stdout
    assert "130 Ctrl-C" in r.stdout


def test_version() -> None:
    r = cli("--version")
    assert r.status == 0 and r.stdout.startswith("mcastkit ")


def test_no_verb_is_usage_error() -> None:
    r = cli()
    assert r.status == ExitStatus.USAGE
    assert "mcastkit: error: no verb given" in r.stderr


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["listen", G4], "missing ':PORT'"),
        (["listen", f"{G4}:99999"], "1-65535"),
        (["listen", f"{SRC4}:5000"], "not a multicast address"),
        (["listen", asm6("1:5000")], "brackets"),
        (["listen", f"{G4}:0"], "port 0"),
        (["listen", f"{G4}:5000", "-c", "0"], "at least 1"),
        (["listen", f"{G4}:5000", "--timeout", "-1"], "above 0"),
        (["send", f"{G4}:5000", "--rate", "fast", "x"], "packets per second"),
        (["send", f"{G4}:5000", "--rate", "-5", "x"], "positive"),
        (["ping", f"{G4}:5000", "--interval", "abc"], "number of seconds"),
        (["frobnicate"], "invalid choice"),
        (["listen", f"{G4}:5000", "--bogus"], "unrecognized arguments"),
        (["perf"], "required"),
        (["doctor", "10.0.0.1"], "not a multicast address"),
        (["ping", f"{G4}:5000", "--max-loss", "abc"], "not a percentage (0-100)"),
        (["ping", f"{G4}:5000", "--max-loss", "101"], "0-100"),
        (["perf", "recv", f"{G4}:5000", "--max-loss", "lots"], "percentage"),
        (["perf", "recv", f"{G4}:5000", "-c", "1"], "'mcastkit perf recv --help'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(argv: list[str], needle: str) -> None:
    r = cli(*argv)
    assert r.status == ExitStatus.USAGE, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("mcastkit: error: ")
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_interface_names_the_choices() -> None:
    r = cli("listen", f"{G4}:5000", "-i", "nosuch0")
    assert r.status == ExitStatus.USAGE
    assert "no interface named 'nosuch0'" in r.stderr and "interfaces here:" in r.stderr


def test_send_without_message_on_a_terminal() -> None:
    r = cli("send", f"{G4}:5000", "-i", "lo")
    assert r.status == ExitStatus.USAGE
    assert "give a MESSAGE, --hex, --file, --size N, or pipe data on stdin" in r.stderr


def test_send_rejects_source_prefix() -> None:
    r = cli("send", f"{lab_host(1, 10)},{SSM4}:5000", "-i", "lo", "x")
    assert r.status == ExitStatus.USAGE and "for receivers" in r.stderr


def test_send_size_below_header() -> None:
    r = cli("send", f"{G4}:5000", "-i", "lo", "--size", "8")
    assert r.status == ExitStatus.USAGE and "at least 32 bytes" in r.stderr


def test_send_message_and_size_conflict() -> None:
    r = cli("send", f"{G4}:5000", "-i", "lo", "--size", "64", "hello")
    assert r.status == ExitStatus.USAGE and "not MESSAGE and --size" in r.stderr


def test_traceback_option_reraises() -> None:
    env = fake_env()
    with pytest.raises(Exception, match="nosuch0"):
        main(["listen", f"{G4}:5000", "-i", "nosuch0", "--traceback"], env=env)


def test_exit_status_values_are_the_documented_contract() -> None:
    assert {s.name: int(s) for s in ExitStatus} == {
        "OK": 0, "ERROR": 1, "USAGE": 2, "TIMEOUT": 3, "UNSUPPORTED": 4, "LOSS": 5,
        "CTRL_C": 130, "TERMINATED": 143}


def test_import_mcastkit_cli_does_not_load_argparse_or_compat() -> None:
    code = ("import sys, mcastkit.cli; "
            "print('argparse' in sys.modules, 'mcastkit.compat' in sys.modules, "
            "'rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "False"]


def test_python_dash_m_help_subprocess() -> None:
    for mod in ("mcastkit", "mcastkit.cli"):
        r = subprocess.run([sys.executable, "-m", mod, "listen", "--help"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "Examples:" in r.stdout


def test_bad_endpoint_subprocess_has_no_traceback() -> None:
    r = subprocess.run([sys.executable, "-m", "mcastkit", "send", "bogus:1", "x"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.startswith("mcastkit: error: ") and "Traceback" not in r.stderr
