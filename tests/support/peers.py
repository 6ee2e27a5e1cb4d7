"""Third-party tools (tcpdump, tshark, socat) as independent oracles, for the capture,
raw-send and compat tests: captures started before anything is sent, an independent
classic-pcap reader, and a sender pinned to one interface."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from mcastkit import MulticastSocket
from mcastkit._frames import LinkFrame, parse_link
from tests.support.fixtures import require_or_skip
from tests.support.kernel import WAIT_S
from tests.support.netns import Netns


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


def read_pcap(path: Path) -> tuple[int, list[bytes]]:
    """(linktype, frames) of a classic pcap file as ``tcpdump -w`` writes it (an oracle
    independent of mcastkit.capture)."""
    data = path.read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    frames, pos = [], 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, pos + 8)[0]
        frames.append(data[pos + 16:pos + 16 + incl])
        pos += 16 + incl
    return linktype, frames


class PcapCapture:
    """``tcpdump -w`` on ``iface`` (default ``eth0``) of a namespace for ``count`` UDP
    frames to ``port``; started (and listening) before anything is sent."""

    def __init__(self, ns: Netns, port: int, count: int, path: Path, iface: str = "eth0") -> None:
        if shutil.which("tcpdump") is None:
            require_or_skip("tcpdump is not installed (apt-get install tcpdump)")
        self.path, self.count = path, count
        self.proc = ns.popen("tcpdump", "-i", iface, "-Z", "root", "-U", "-n", "-s", "0",
                             "-c", str(count), "-w", str(path), f"udp and dst port {port}",
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        fd, said = self.proc.stderr.fileno(), b""
        while b"listening on" not in said:  # "data link type ..." may come first
            ready, _, _ = select.select([fd], [], [], WAIT_S)
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                self.proc.kill()
                require_or_skip(f"tcpdump could not capture in a namespace: {said!r}")
            said += chunk

    def frames(self) -> list[LinkFrame]:
        self.proc.wait(timeout=WAIT_S)
        self.linktype, raw = read_pcap(self.path)
        assert len(raw) == self.count
        return [parse_link(self.linktype, f) for f in raw]

    def text(self) -> list[str]:
        """tcpdump's own decoding: one line per frame (-vv verifies UDP checksums)."""
        out = subprocess.run(["tcpdump", "-r", str(self.path), "-nn", "-vv", "-e"],
                             capture_output=True, text=True, check=True).stdout
        # -vv folds long headers onto continuation lines; join them per frame
        frames: list[str] = []
        for line in out.splitlines():
            if line.startswith((" ", "\t")) and frames:
                frames[-1] += " " + line.strip()
            else:
                frames.append(line)
        return frames
