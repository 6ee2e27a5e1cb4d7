"""``mcastkit record``: join groups and write what arrives to a pcapng file.

Owns: the record verb's options, its progress lines and summary (text or JSON).
Must not: write files itself (:mod:`mcastkit.capture` does), make socket calls outside
the public core (sockets come from the CLI's :class:`~mcastkit.cli._rx.Receivers`).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Any

from mcastkit import capture
from mcastkit.capture import RecordStats
from mcastkit.seq import SeqAnalyzer

from .. import _seqopt
from .._common import (
    CliError,
    emit_json,
    endpoint_arg,
    interface_of,
    nonneg_float,
    positive_float,
    positive_int,
    signal_status,
)
from .._env import Env
from .._longrun import RunProgress
from .._rx import Receivers
from .._signals import stop_on_signals
from .._status import ExitStatus

HELP = "join groups and write what arrives to a pcapng file"
DESCRIPTION = """\
Join one or more groups and write every datagram to a pcapng file that tcpdump, tshark
and Wireshark read: synthesized Ethernet/IP/UDP headers with correct checksums (sender,
group, port, TTL as they arrived), nanosecond kernel timestamps, and the kernel's drop
counter wherever it rose (a packet comment, epb_dropcount and a statistics block), so a
gap in the capture is visible as one. No root needed. The file is never created through
a symlink or over an existing file (unless --overwrite names a regular file); Ctrl-C or
SIGTERM end it with a complete last block; a full disk is reported, keeping what fits."""
EXAMPLES = """\
  mcastkit record 239.255.0.1:5000 -i eth0 -w feed.pcapng
  mcastkit record 239.255.0.1:5000 239.255.0.2:5001 -i eth0 -w feed.pcapng -c 100000
  mcastkit record 198.18.1.10,232.1.1.1:5000 -i eth0 -w ssm.pcapng --duration 60
  mcastkit record 239.255.0.1:5000 -i eth0 -w feed.pcapng --rotate-mb 100 --keep 10
  mcastkit record 239.255.0.1:5004 -i eth0 -w rtp.pcapng --seq rtp --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoints", nargs="+", type=endpoint_arg, metavar="[SOURCE,]GROUP:PORT",
                   help="what to join and record, e.g. 239.255.0.1:5000, [ff15::1]:5000")
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="interface to join on (name, index or address); default: the route's")
    p.add_argument("-w", "--write", required=True, metavar="FILE",
                   help="the pcapng file to create (refused if it exists; see --overwrite)")
    p.add_argument("-c", "--count", type=positive_int, metavar="N",
                   help="stop after N datagrams")
    p.add_argument("--duration", type=positive_float, metavar="S",
                   help="stop after S seconds")
    p.add_argument("--rotate-mb", type=positive_float, metavar="M",
                   help="start a new file every M megabytes (files FILE-00000.pcapng, ...)")
    p.add_argument("--rotate-s", type=positive_float, metavar="S",
                   help="start a new file every S seconds")
    p.add_argument("--keep", type=positive_int, metavar="N",
                   help="with rotation, keep only the newest N files")
    p.add_argument("--overwrite", action="store_true",
                   help="replace FILE if it is an existing regular file (never a symlink)")
    p.add_argument("--linktype", choices=("ethernet", "raw"), default="ethernet",
                   help="frames to write: ethernet (default) or raw IP packets")
    _seqopt.add_seq_option(p, "also check sequence numbers of this format and print "
                              "gaps, reordering and duplicates in the summary")
    p.add_argument("--interval", type=positive_float, default=10.0, metavar="S",
                   help="seconds between progress lines when stdout is not a terminal "
                        "(default 10)")
    p.add_argument("--rcvbuf", type=positive_int, metavar="BYTES",
                   help="receive buffer size to request (capped by net.core.rmem_max)")
    default_mb = capture.DEFAULT_QUEUE_BYTES / 1e6
    p.add_argument("--queue-mb", type=nonneg_float, default=default_mb, metavar="M",
                   help="write on a thread of its own behind a queue of M megabytes, so "
                        f"receiving never waits for the disk (default {default_mb:g}; 0: "
                        "write as it receives); what a full queue drops is counted in the "
                        "file")


@contextlib.contextmanager
def _quick_switching() -> Iterator[None]:
    """Hand the interpreter lock back and forth every 0.5 ms (default 5 ms) while
    recording, so the receiving thread waits less for the writer thread."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(min(old, 0.0005))
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _line(st: RecordStats) -> str:
    rate = st.datagrams / st.elapsed_s if st.elapsed_s > 0 else 0.0
    return (f"{st.datagrams} datagrams, {st.bytes} B in {st.elapsed_s:.1f} s "
            f"({rate:.0f}/s), kernel drops {st.kernel_drops}"
            + (f", not written (queue full) {st.queue_drops}" if st.queue_drops else "")
            + f", files {len(st.files)}")


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    iface = interface_of(args.interface)
    if args.keep is not None and args.rotate_mb is None and args.rotate_s is None:
        raise CliError("--keep needs --rotate-mb or --rotate-s", ExitStatus.USAGE)
    seq = SeqAnalyzer(args.seq) if args.seq else None
    prog = RunProgress(env, args, "recording")

    def progress(st: RecordStats) -> None:
        prog.report(_line(st), st.as_dict)

    with stop_on_signals() as stop, _quick_switching(), Receivers(args.endpoints, iface,
                                              rcvbuf_bytes=args.rcvbuf) as rx:
        try:
            st = capture.record(
                rx.sockets, args.write, count=args.count, duration_s=args.duration,
                stop=stop, seq=seq, progress=progress,
                progress_every_s=prog.every_s,
                overwrite=args.overwrite, linktype=args.linktype,
                rotate_bytes=None if args.rotate_mb is None else int(args.rotate_mb * 1e6),
                rotate_s=args.rotate_s, keep=args.keep,
                queue_bytes=int(args.queue_mb * 1e6) or None)
        finally:
            prog.close()
    files = st.files[len(st.removed):]
    if args.json:
        obj: dict[str, Any] = {"type": "summary", **st.as_dict(), "kept": files}
        if seq is not None:
            obj["seq"] = seq.as_json()
        if stop.signum is not None:
            obj["stopped_by"] = signal.Signals(stop.signum).name
        emit_json(env, obj)
    else:
        env.out(f"recorded {_line(st)}; written to {', '.join(files)}"
                + (f" ({st.drop_records} drop records in the file)" if st.drop_records else ""))
        if seq is not None:
            env.out(seq.summary_line())
    if stop.signum is not None:
        return signal_status(stop.signum)
    return ExitStatus.OK
