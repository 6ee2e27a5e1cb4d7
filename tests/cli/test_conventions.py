"""Issue 9 item 8: the conventions users expect. Shell completion and the man page are
generated from the parser (so every option of every verb is in them), -v/-q on every
verb, NO_COLOR respected and colour only on a terminal, size suffixes, --json per verb."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from mcastkit.cli import ExitStatus
from mcastkit.cli._app import VERBS, build_parser
from mcastkit.cli._parser_walk import Command, walk
from tests.support.addrs import asm4
from tests.support.cli import cli, fake_env
from tests.support.fixtures import require_or_skip


def _leaves() -> list[tuple[tuple[str, ...], set[str]]]:
    root = walk(build_parser(fake_env()))
    out: list[tuple[tuple[str, ...], set[str]]] = []

    def go(c: Command) -> None:
        if c.subcommands:
            for s in c.subcommands:
                go(s)
        else:
            out.append((c.path, {f for o in c.options for f in o.flags}))
    go(root)
    return out


def test_every_verb_has_json_verbose_quiet() -> None:
    leaves = _leaves()
    assert {p[0] for p, _ in leaves} == set(VERBS)
    for path, flags in leaves:
        assert {"--json", "-v", "--verbose", "-q", "--quiet", "--traceback"} <= flags, path


def _bash_complete(words: list[str]) -> list[str]:
    script = cli("completion", "bash").stdout
    line = " ".join(f"'{w}'" for w in words)
    prog = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _mcastkit; "
            'printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_bash_completion_from_the_parser() -> None:
    if shutil.which("bash") is None:
        require_or_skip("bash is not installed")
    assert _bash_complete(["mcastkit", "li"]) == ["listen"]
    assert _bash_complete(["mcastkit", "perf", ""]) == ["send", "recv"]
    assert "--max-loss" in _bash_complete(["mcastkit", "perf", "recv", "--max"])
    # --seq is open (u32@0 ...) but completes its built-in format names
    assert _bash_complete(["mcastkit", "listen", "--seq", ""]) == [
        "mcastkit", "iperf2", "iperf2-64", "rtp", "moldudp64"]
    assert "lo" in _bash_complete(["mcastkit", "send", "-i", ""])
    # every option of every verb completes
    for path, flags in _leaves():
        got = set(_bash_complete(["mcastkit", *path, "-"]))
        assert flags <= got, (path, flags - got)


def test_zsh_and_fish_scripts() -> None:
    z = cli("completion", "zsh")
    assert z.status == 0 and z.stdout.startswith("#compdef mcastkit") and "bashcompinit" in \
        z.stdout
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", "-c", z.stdout], check=True)
    f = cli("completion", "fish").stdout
    for verb in VERBS:
        assert f"-a {verb} " in f
    assert "-l rcvbuf" in f and "-s i -l interface" in f and "__fish_print_interfaces" in f
    if shutil.which("fish"):
        subprocess.run(["fish", "-n", "-c", f], check=True)


def test_man_page_from_the_parser() -> None:
    r = cli("man")
    assert r.status == 0 and r.stdout.startswith(".TH MCASTKIT 1")
    page = r.stdout.replace("\\-", "-")
    for path, flags in _leaves():
        assert f".SS {' '.join(path)}" in page
        for fl in flags - {"-h", "--help"}:
            assert fl in page, (path, fl)
    assert "143" in page and "NO_COLOR" in page
    if shutil.which("groff"):
        out = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=r.stdout,
                             capture_output=True, text=True)
        assert out.returncode == 0 and not out.stderr, out.stderr


@pytest.mark.kernel
def test_colour_only_on_a_terminal_and_never_with_no_color(netns: object) -> None:
    plain = cli("doctor", f"{asm4(52, 1)}:5600", "-i", "lo", "--all", "--window", "0")
    assert "\x1b[" not in plain.stdout
    tty = cli("doctor", f"{asm4(52, 1)}:5600", "-i", "lo", "--all", "--window", "0",
              stdout_isatty=True, environ={})
    assert "\x1b[" in tty.stdout and "[OK]" in tty.stdout
    nc = cli("doctor", f"{asm4(52, 1)}:5600", "-i", "lo", "--all", "--window", "0",
             stdout_isatty=True, environ={"NO_COLOR": ""})
    assert "\x1b[" not in nc.stdout


@pytest.mark.kernel
def test_quiet_and_verbose(netns: object) -> None:
    q = cli("send", f"{asm4(52, 2)}:5601", "-i", "lo", "-c", "3", "x", "-q")
    assert q.status == 0 and q.stderr == ""
    n = cli("send", f"{asm4(52, 2)}:5601", "-i", "lo", "-c", "3", "x")
    assert "sent 3 datagrams" in n.stderr
    v = cli("listen", f"{asm4(52, 2)}:5601", "-i", "lo", "--timeout", "0.2", "-v")
    assert "socket(s), rcvbuf" in v.stderr and v.status == ExitStatus.TIMEOUT


def test_completion_subprocess() -> None:
    p = subprocess.run([sys.executable, "-m", "mcastkit", "completion", "bash"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "complete -F _mcastkit mcastkit" in p.stdout
