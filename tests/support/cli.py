"""Helpers for CLI tests: run ``main()`` in-process with a fake Env, or
``python -m mcastkit`` as a subprocess (in the calling thread's namespace)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mcastkit.cli import Env, ExitStatus, main
from tests.support import kernelstate
from tests.support.netns import wait_until


def fake_env(stdin: str | bytes = "", *, stdin_isatty: bool = True, clock: Any = None,
             stdout_isatty: bool = False, environ: dict[str, str] | None = None) -> Env:
    """An Env with in-memory streams; ``bytes`` stdin behaves like a real binary stdin
    (a text stream with a ``buffer``)."""
    kw: dict[str, Any] = {}
    if clock is not None:
        kw["monotonic"] = clock
    sin: Any = (io.TextIOWrapper(io.BytesIO(stdin)) if isinstance(stdin, bytes)
                else io.StringIO(stdin))
    return Env(stdin=sin, stdout=io.StringIO(), stderr=io.StringIO(),
               stdin_isatty=stdin_isatty, stdout_isatty=stdout_isatty,
               environ={} if environ is None else environ, **kw)


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str
    lines: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


def cli(*argv: str, stdin: str | bytes = "", stdin_isatty: bool = True,
        stdout_isatty: bool = False, environ: dict[str, str] | None = None) -> Result:
    """Run ``mcastkit ARGV`` in-process."""
    env = fake_env(stdin, stdin_isatty=stdin_isatty, stdout_isatty=stdout_isatty,
                   environ=environ)
    status = main(list(argv), env=env)
    assert isinstance(status, ExitStatus)
    return Result(int(status), env.stdout.getvalue(), env.stderr.getvalue())  # type: ignore[attr-defined]


class Background:
    """``mcastkit ARGV`` in-process on a thread (it inherits the test's namespace)."""

    def __init__(self, *argv: str) -> None:
        self.result: Result | None = None
        self.error: BaseException | None = None
        self._t = threading.Thread(target=self._run, args=(argv,), daemon=True)
        self._t.start()

    def _run(self, argv: Sequence[str]) -> None:
        try:
            self.result = cli(*argv)
        except BaseException as e:  # reported by join()
            self.error = e

    def join(self, timeout: float = 20.0) -> Result:
        self._t.join(timeout)
        assert not self._t.is_alive(), "the background mcastkit run did not finish"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def wait_joined(group: str, ifname: str = "lo", timeout: float = 10.0) -> None:
    """Wait until someone in this namespace holds ``group`` on ``ifname``."""
    wait_until(lambda: (ifname, group) in kernelstate.memberships(), timeout,
               what=f"{group} joined on {ifname}")


def mk(*argv: str, input: str | None = None, timeout: float = 60.0,
       ) -> subprocess.CompletedProcess[str]:
    """``python -m mcastkit ARGV`` as a child process (same namespace as this thread)."""
    return subprocess.run([sys.executable, "-m", "mcastkit", *argv], input=input,
                          capture_output=True, text=True, timeout=timeout)


def mk_bytes(*argv: str, input: bytes, timeout: float = 60.0,
             ) -> subprocess.CompletedProcess[bytes]:
    """``python -m mcastkit ARGV`` with raw bytes on stdin (a C locale, as in a cron job)."""
    import os

    env = {**os.environ, "LC_ALL": "C"}
    return subprocess.run([sys.executable, "-m", "mcastkit", *argv], input=input,
                          capture_output=True, timeout=timeout, env=env)


def _default_sigint() -> None:  # runs in the child between fork and exec
    # A test run started in the background by a non-interactive shell has SIGINT ignored,
    # and the child would inherit that (Python then installs no KeyboardInterrupt
    # handler): give the CLI the disposition an interactive user's process has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def mk_popen(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mcastkit", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def group_users(group: str, ifname: str = "lo") -> int:
    """How many sockets of this namespace hold ``group`` on ``ifname`` (the Users column
    of /proc/net/igmp or igmp6)."""
    if ":" in group:
        want = socket.inet_pton(socket.AF_INET6, group).hex()
        with open("/proc/thread-self/net/igmp6") as f:
            for line in f:
                cols = line.split()
                if len(cols) >= 4 and cols[1] == ifname and cols[2] == want:
                    return int(cols[3])
        return 0
    want = f"{int.from_bytes(socket.inet_aton(group), sys.byteorder):08X}"
    dev = ""
    with open("/proc/thread-self/net/igmp") as f:
        for line in f:
            cols = line.split()
            if line[:1].isdigit():
                dev = cols[1]
            elif line.startswith("\t") and cols and cols[0] == want and dev == ifname:
                return int(cols[1])
    return 0


def wait_socket_open(p: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait until the CLI child ``p`` holds a socket: it is past start-up (imports, argument
    parsing, signal handlers installed), so a signal sent now tests the verb, not the
    interpreter's start. A fixed sleep is not enough on a loaded machine."""
    deadline = time.monotonic() + timeout
    fd_dir = f"/proc/{p.pid}/fd"
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise AssertionError(f"the CLI exited early with {p.returncode}")
        with contextlib.suppress(OSError):
            if any(os.readlink(f"{fd_dir}/{n}").startswith("socket:") for n in os.listdir(fd_dir)):
                return
        time.sleep(0.02)
    raise AssertionError(f"the CLI opened no socket within {timeout} s")
