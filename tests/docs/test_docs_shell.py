"""Every shell command in the README and docs/*.md runs as written (issue 9 item 9).

Commands are taken from shell code blocks (fenced ``sh``/``bash``/unlabelled, and indented
blocks) and from inline code that starts with a command, e.g. `nstat -az UdpRcvbufErrors`.
Each runs in a fresh namespace that looks like a small host: ``lo`` up, and ``eth0`` (a veth
whose other end is ``peer0``) with 198.18.1.10/24 and a multicast route, so the docs'
``-i eth0`` works. Placeholders are filled in (IFACE -> eth0, GROUP -> 239.255.0.1 ...);
a command with a placeholder left is not run and is listed by
``test_placeholders_are_known`` (a synopsis belongs in a ```text block). A line that makes
a key (``mcastkit relay --make-key FILE``) also runs again before each later command of
its block, which names that key. A command passes when it is found and understood: not exit
126/127 (not found, not executable), not exit 2 with a usage message, no traceback, and
no output naming a path of this machine. Long-running commands are stopped with SIGTERM
after a few seconds (exit 143/124 then counts as ran).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.addrs import G4, lab_host
from tests.support.netns import Netns

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("mcastkit", "printf", "head", "nstat", "sysctl", "ip", "ss", "nft", "source",
            "scripts/in-netns", "make", "man", "tcpdump", "python3", ".venv/bin/python")
FILL = {"IFACE": "eth0", "GROUP:PORT": f"{G4}:5000", "GROUP": G4,
        "PORT": "5000", "SOURCE": lab_host(1, 11), "ADDRESS": lab_host(1, 11)}
# Not run here, each for a reason: they run the whole suite or benchmarks (minutes, and
# this test is part of the suite), or install from the network.
NOT_RUN = (("make test", "runs this suite"), ("make bench", "benchmarks: minutes"),
           ("-m pytest", "runs test suites"),
           ("make pytest", "runs test suites"), ("-m benchmarks", "benchmarks: minutes"),
           ("pip install", "needs the package registry"), ("make demo", "tests/docs/"
           "test_docs_run.py runs the demo"),
           ("replay feed.pcapng", "replays the file the recipe before it records; "
            "tests/docs/test_record_replay_page.py runs that page's recipes in order"))
# Setup lines: each runs before the later commands of its block (they use what it makes).
SETUP = re.compile(r"mcastkit relay --make-key \S+")
TIMEOUT_S = 8


def _blocks(text: str) -> list[str]:
    out = [m.group(2) for m in re.finditer(r"^```([a-z]*)\n(.*?)^```", text, re.S | re.M)
           if m.group(1) in ("", "sh", "bash", "shell", "console")]
    outside = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    cur: list[str] = []
    for line in [*outside.splitlines(), ""]:
        if line.startswith("    ") and line.strip():
            cur.append(line[4:])
        elif cur:
            out.append("\n".join(cur) + "\n")
            cur = []
    return out


def _inline(text: str) -> list[str]:
    outside = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [m.group(1) for m in re.finditer(r"`([^`\n]+)`", outside)
            if m.group(1).split()[0] in ("nstat", "scripts/in-netns")
            and len(m.group(1).split()) > 1]  # a bare program name is prose, not a command


def _is_command(line: str) -> bool:
    first = line.split()[0] if line.split() else ""
    return first in PROGRAMS


SETUP_OF: dict[tuple[str, str], list[str]] = {}  # (page, command) -> its block's setup


def commands() -> list[tuple[str, str]]:
    """(page, command) for every command line in the docs, continuation lines joined;
    fills :data:`SETUP_OF` for commands that follow a :data:`SETUP` line."""
    out: list[tuple[str, str]] = []
    for page in PAGES:
        text = page.read_text()
        for block in _blocks(text):
            block = re.sub(r"\\\n\s*", " ", block)
            setup: list[str] = []
            for line in block.splitlines():
                cmd = re.split(r"\s+#\s", line.strip(), maxsplit=1)[0].strip()
                if cmd and _is_command(cmd):
                    out.append((page.name, cmd))
                    if setup:
                        SETUP_OF.setdefault((page.name, cmd), list(setup))
                    if SETUP.fullmatch(cmd):
                        setup.append(cmd)
        out += [(page.name, c) for c in _inline(text)]
    return sorted(set(out))


def _fill(cmd: str) -> str:
    """Placeholders filled in; an optional part in brackets (``[--uvloop]``) left out."""
    cmd = re.sub(r"\s\[--?[a-z][^\]]*\]", "", cmd)
    for k in sorted(FILL, key=len, reverse=True):
        cmd = re.sub(rf"\b{re.escape(k)}\b", FILL[k], cmd)
    return cmd


def _placeholder(cmd: str) -> str | None:
    m = re.search(r"\b[A-Z][A-Z_]{2,}\b", re.sub(r"'[^']*'|\"[^\"]*\"", "", cmd))
    return m.group(0) if m else None


ALL = commands()
RUN = [(p, c) for p, c in ALL if not any(k in c for k, _ in NOT_RUN)
       and _placeholder(_fill(c)) is None]


def test_the_docs_have_commands() -> None:
    assert len(RUN) >= 30, RUN
    pages = {p for p, _ in RUN}
    assert {"cli.md", "troubleshooting.md", "compat.md"} <= pages


def test_placeholders_are_known() -> None:
    """Commands with a placeholder this test cannot fill: only the synopsis line."""
    left = [c for _, c in ALL if _placeholder(_fill(c)) is not None
            and not any(k in c for k, _ in NOT_RUN)]
    assert left == ["mcastkit VERB [options]"], left


def test_no_paths_of_this_machine() -> None:
    """No command names a path that exists only here (a virtualenv in /tmp, /work...),
    nor a bare ``python`` that works only with a virtualenv active."""
    for page, cmd in ALL:
        for bad in ("/work/", "probevenv", "/root/", "/tmp/"):
            assert bad not in cmd, (page, cmd)
        assert not re.search(r"(^|[\s'])python\s", cmd), (page, cmd)


def _host(ns: Netns) -> None:
    ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
    ns.sysctl("net.ipv6.conf.all.accept_dad", 0)
    ns.sysctl("net.ipv6.conf.default.accept_dad", 0)
    ns.ip("addr", "add", f"{lab_host(1, 10)}/24", "dev", "eth0")
    ns.ip("addr", "add", f"{lab_host(1, 11)}/24", "dev", "peer0")
    for dev in ("eth0", "peer0"):
        ns.ip("link", "set", dev, "up")
    ns.ip("route", "add", "224.0.0.0/4", "dev", "eth0")
    ns.link_local("eth0")


@pytest.mark.kernel
@pytest.mark.parametrize("page, cmd", RUN, ids=[f"{p}:{c[:60]}" for p, c in RUN])
def test_command_runs_as_written(netns: Netns, tmp_path: Path, page: str, cmd: str) -> None:
    _host(netns)
    for entry in ROOT.iterdir():  # the commands run from a checkout: scripts/, examples/...
        if entry.name != ".venv":
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).resolve().parent.parent
                                    if not (ROOT / ".venv").exists() else ROOT / ".venv")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "NO_COLOR": "1", "MANPAGER": "cat", "PAGER": "cat"}
    run = _fill(cmd)
    script = " && ".join([*SETUP_OF.get((page, cmd), []), run])
    p = subprocess.run(["timeout", "-s", "TERM", str(TIMEOUT_S), "bash", "-c", script],
                       cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=TIMEOUT_S + 30, stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    assert p.returncode not in (126, 127), f"{page}: {run}: not found\n{out}"
    assert not (p.returncode == 2 and ("usage" in out.lower() or "error:" in out)), \
        f"{page}: {run}: not understood\n{out}"
    assert "Traceback" not in out, f"{page}: {run}\n{out}"
    assert "No such file" not in out and "not found" not in out, f"{page}: {run}\n{out}"
    if run.startswith("nstat"):  # a counter name nstat does not know prints nothing
        for name in run.split("|")[0].split()[2:]:
            assert re.search(rf"^{name}\s", p.stdout, re.M), f"{page}: {run}\n{out}"
