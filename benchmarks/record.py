"""Record and replay scenarios (issue 11).

Rows (datagrams per second, ratio to a baseline measured in the same run):
- record: drain a filled queue with ``recv_batch`` + metadata + timestamps and nothing
  else (the baseline), and the same drain writing every batch to pcapng the way
  ``record`` does (``_Batches.write``: the batch path of ``capture._epb``): what writing
  costs.
- replay: ``replay(as_fast=True)`` of a pcapng file against the C ``sendmmsg`` baseline
  sending the same number of datagrams of the same size.
- replay timing: a recorded-timing replay at 10k datagrams/s (1 s, 64 B): how late the
  datagrams left (p50 in µs; mean, p99 and max beside it), as ``replay`` does it (1 µs
  timer slack while pacing) against the same replay with the thread's own slack (Linux's
  default 50 µs), run alternately in the same process.

Offered load (``offered`` in the report): the C sender at a fixed rate for a few seconds
into lo, received three ways on the same stream at once: mcastkit's receive path without
writing, ``mcastkit.capture.record`` to a file (writer thread, the default queue of
``mcastkit record``), and
``tcpdump -w``; each row says how many
datagrams it got and how many the kernel dropped for it.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import mcastkit
from mcastkit.capture import DEFAULT_QUEUE_BYTES, Recorder, packets, record, replay
from mcastkit.capture._record import _Batches

from ._util import GROUP, Result, build_c, fill, port, receiver, timed
from .tx import _c as c_sendmmsg


def _drain(count: int, size: int, write: bool) -> float:
    p = port()
    rx = receiver(p, metadata=True, timestamps=True)
    tmp = tempfile.mkdtemp(prefix="mcastkit-bench-")
    try:
        fill(p, count, size)
        rx.setblocking(False)
        rec = Recorder(os.path.join(tmp, "drain.pcapng")) if write else None
        # what `record` does with each batch it receives (drop tracking, the batch path)
        batches = _Batches(rec, [rx], None) if rec is not None else None

        def go() -> int:
            n = 0
            rb = rx.recv_batch
            try:
                while True:
                    batch = rb(256)
                    if batches is not None:
                        batches.write(rx, batch, 0)
                    n += len(batch)
            except BlockingIOError:
                if rec is not None:
                    rec.close()
                return n

        return timed(go)
    finally:
        rx.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _capture_file(path: str, count: int, size: int, p: int) -> None:
    t0 = time.time_ns()
    payload = b"r" * size
    with Recorder(path) as rec:
        for i in range(count):
            rec.add(mcastkit.Datagram(payload, "198.18.0.1", 4000, GROUP, None, 1,
                                      timestamp_ns=t0 + i * 1000), p)


def _replay_max(count: int, size: int) -> float:
    tmp = tempfile.mkdtemp(prefix="mcastkit-bench-")
    try:
        path = os.path.join(tmp, "replay.pcapng")
        p = port()
        _capture_file(path, count, size, p)
        list(packets(path))  # warm the page cache: the row measures sending, not the disk
        rep = replay(path, interface="lo", as_fast=True)
        return rep.sent / rep.elapsed_s
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replay_timing(fine_slack: bool) -> tuple[float, dict[str, float]]:
    """p50 lateness (µs) of a 10k/s recorded-timing replay, with the mean, p99 and max."""
    import contextlib
    from unittest import mock

    from mcastkit.capture import _replay as replay_mod

    tmp = tempfile.mkdtemp(prefix="mcastkit-bench-")
    try:
        path = os.path.join(tmp, "timing.pcapng")
        p = port()
        t0 = time.time_ns()
        with Recorder(path) as rec:
            for i in range(10_001):
                rec.add(mcastkit.Datagram(b"t" * 64, "198.18.0.1", 4000, GROUP, None, 1,
                                          timestamp_ns=t0 + i * 100_000), p)
        same = contextlib.nullcontext() if fine_slack else mock.patch.object(
            replay_mod, "timer_slack", lambda *a: contextlib.nullcontext())
        with same:
            t = replay(path, interface="lo").timing_us
        return t["p50"], {k: t[k] for k in ("mean", "p99", "max")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def timing(repeats: int) -> list[Result]:
    """The replay timing rows (see the module docstring), runs alternating."""
    base = Result("replay", "10k/s, thread's own slack (50 us)", 64, unit="us late p50",
                  lower_is_better=True)
    fine = Result("replay", "10k/s, as replay does (1 us slack)", 64, unit="us late p50",
                  baseline=base.name, lower_is_better=True)
    sides: dict[str, dict[str, list[float]]] = {base.name: {}, fine.name: {}}
    for _ in range(repeats):
        for r, flag in ((base, False), (fine, True)):
            v, extra = _replay_timing(flag)
            r.runs.append(v)
            for k, x in extra.items():
                sides[r.name].setdefault(k, []).append(x)
    for r in (base, fine):
        r.extra = {k: statistics.median(v) for k, v in sides[r.name].items()}
    return [base, fine]


def run(count: int, sizes: list[int], repeats: int) -> list[Result]:
    out: list[Result] = []
    rows = [
        ("record", "recv_batch+meta+ts (no write)", None,
         lambda n, s: _drain(n, s, write=False)),
        ("record", "record to pcapng", "recv_batch+meta+ts (no write)",
         lambda n, s: _drain(n, s, write=True)),
        ("replay", "C sendmmsg", None, c_sendmmsg),
        ("replay", "replay --max", "C sendmmsg", _replay_max),
    ]
    for size in sizes:
        for scen, name, base, fn in rows:
            r = Result(scen, name, size, baseline=base)
            for _ in range(repeats):
                try:
                    r.runs.append(fn(count, size))
                except Exception as e:
                    r.note = f"n/a: {type(e).__name__}: {e}"[:120]
                    break
            out.append(r)
    return out + timing(repeats)


QUEUE_BYTES = DEFAULT_QUEUE_BYTES  # what `mcastkit record` uses without --queue-mb


def offered(rate: int, seconds: float, size: int = 64) -> dict[str, Any]:
    """The same offered stream into three receivers at once (see the module docstring)."""
    exe = build_c("sendmmsg_tx")
    if exe is None:
        return {"note": "n/a: gcc not available"}
    p = port()
    tmp = tempfile.mkdtemp(prefix="mcastkit-bench-")
    out: dict[str, Any] = {"rate": rate, "seconds": seconds, "size": size}
    stop = threading.Event()
    plain = receiver(p, metadata=True, timestamps=True)
    plain.sock.setsockopt(1, 8, 1 << 20)  # a normal queue: drops are possible and counted
    rec_sock = receiver(p, metadata=True, timestamps=True)
    rec_sock.sock.setsockopt(1, 8, 1 << 20)
    got = [0]
    rec_stats: list[Any] = []

    def drain_plain() -> None:
        while not stop.is_set():
            try:
                got[0] += len(plain.recv_batch(256, timeout_s=0.2))
            except TimeoutError:
                continue

    def do_record() -> None:
        rec_stats.append(record(rec_sock, os.path.join(tmp, "rec.pcapng"), stop=stop,
                                queue_bytes=QUEUE_BYTES))

    tcpdump = shutil.which("tcpdump")
    td = None
    if tcpdump:
        td = subprocess.Popen([tcpdump, "-i", "lo", "-B", "1024", "-w",
                               os.path.join(tmp, "td.pcap"), "udp", "port", str(p)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # as `mcastkit record` does while recording
    threads = [threading.Thread(target=drain_plain), threading.Thread(target=do_record)]
    for t in threads:
        t.start()
    try:
        sent = subprocess.run([str(exe), GROUP, str(p), str(size), str(int(rate * seconds)),
                               str(rate)], capture_output=True, text=True,
                              timeout=seconds * 4 + 30, check=True).stdout.split()
        time.sleep(0.5)
        out["sent"] = int(sent[0])
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        sys.setswitchinterval(switch)
        out["receive (no write)"] = {"received": got[0], "kernel_drops": plain.kernel_drops()}
        plain.close()
        rec_sock.close()
        if rec_stats:
            st = rec_stats[0]
            out["record"] = {"written": st.datagrams, "kernel_drops": st.kernel_drops,
                             "queue_drops": st.queue_drops}
        if td is not None:
            td.send_signal(signal.SIGINT)
            _o, err = td.communicate(timeout=30)
            out["tcpdump -w"] = {k: int(v) for v, k in (
                line.split(" ", 1)[0:2] for line in err.splitlines()
                if line.split(" ", 1)[0].isdigit()) if k}
        else:
            out["tcpdump -w"] = "n/a: tcpdump not installed"
        shutil.rmtree(tmp, ignore_errors=True)
    return out
