"""Helpers for the record/replay tests: third-party tools (tcpdump, tshark, socat) as
independent oracles, and a sender pinned to one interface."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

from mcastkit import MulticastSocket
from tests.conftest_lab import require_or_skip
from tests.netns import Netns


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        require_or_skip(f"{tool} is not installed (apt-get install {tool})")
    return path


def tshark_fields(path: str, *fields: str, extra: Sequence[str] = ()) -> list[list[str]]:
    """``tshark -r PATH -T fields -e ...`` with checksum validation on; one list per packet."""
    tshark = need("tshark")
    args = [tshark, "-r", path, "-o", "udp.check_checksum:TRUE", "-o",
            "ip.check_checksum:TRUE", *extra, "-T", "fields", "-E", "separator=\t"]
    for f in fields:
        args += ["-e", f]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines()]


def send_all(payloads: Sequence[bytes], group: str, port: int, *, ifname: str,
             version: int = 4, ttl: int = 1, sport: int | None = None,
             gap_s: float = 0.0) -> None:
    """Send ``payloads`` from this thread's namespace on ``ifname``."""
    with MulticastSocket(version, interface=ifname, ttl=ttl) as tx:
        if sport is not None:
            tx.bind(sport)
        for p in payloads:
            tx.sendto(p, group, port)
            if gap_s:
                time.sleep(gap_s)


class Capture:
    """A third-party capture (tcpdump or dumpcap/tshark) running in ``ns``."""

    def __init__(self, ns: Netns, argv: Sequence[str]) -> None:
        self.p = ns.popen(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.p.stderr is not None
        os.set_blocking(self.p.stderr.fileno(), False)
        deadline = time.monotonic() + 15
        seen = ""
        while "listening on" not in seen.lower() and "capturing on" not in seen.lower():
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{argv[0]} did not start: {seen}")
            with contextlib.suppress(BlockingIOError, TypeError):
                seen += self.p.stderr.read() or ""
            time.sleep(0.02)
        time.sleep(0.2)  # the capture socket is bound before the banner; margin for libpcap

    def stop(self) -> str:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            _out, err = self.p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            _out, err = self.p.communicate()
        return err or ""
