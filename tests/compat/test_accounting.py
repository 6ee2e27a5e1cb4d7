"""Nothing lost silently and nothing an attacker can flood into the log, for ``MCast``
(issue 8 item 6, issue 14 items 9 and 10), with real sockets on ``lo`` in a fresh
namespace.

* kernel drops: ``on_error`` 10055 once per ``do_events()`` in which the counter rose,
  and delivered + KernelDrops == sent under overload from a concurrent sender process;
* datagrams read and then discarded because a handler deactivated mid-batch are counted;
* without ``on_error``, a flood of bad datagrams costs a few log lines plus a summary
  count, and no payload text (or handler exception text quoting it) reaches the log.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable

import pytest

from mcastkit import MulticastSocket
from mcastkit.compat import MCast, MCastErrorEventParams
from mcastkit.compat._report import BURST
from tests.support.addrs import asm4
from tests.support.compat import Recorder, pump
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G = asm4(12, 1)
Make = Callable[..., MCast]
SECRET = b"SECRET-PAYLOAD"


def _receiver(make: Make, **settings: object) -> MCast:
    mc = make(**settings)
    mc.multicast_group = G
    mc.active = True
    return mc


def _send(port: int, payloads: list[bytes]) -> None:
    with MulticastSocket(4, interface="lo") as tx:
        for p in payloads:
            tx.sendto(p, G, port)


def _settle(mcs: list[MCast], rounds: int = 5) -> None:
    """Pump until ``rounds`` calls in a row deliver nothing more."""
    quiet = 0
    while quiet < rounds:
        before = [m.stats.delivered for m in mcs]
        for m in mcs:
            m.do_events()
        quiet = quiet + 1 if [m.stats.delivered for m in mcs] == before else 0


# ------------------------------------------------------------------ kernel drops (8.6)


def test_kernel_drops_fire_10055_once_and_count(netns: Netns, make: Make) -> None:
    rec = Recorder()
    rx = rec.attach(_receiver(make, InBufferSize=4096))
    n = 300
    _send(rx.local_port, [i.to_bytes(4, "big") + bytes(996) for i in range(n)])  # not read
    drops = int(rx.config("KernelDrops"))
    assert drops > 0  # the live counter, before any do_events
    rx.do_events()
    assert [e.error_code for e in rec.errors] == [10055]
    desc = rec.errors[0].description
    assert f"dropped {drops} datagrams" in desc and "InBufferSize" in desc
    _settle([rx])
    assert [e.error_code for e in rec.errors] == [10055]  # once, not per datagram
    assert len(rec.data) + int(rx.config("KernelDrops")) == n
    assert rx.stats.kernel_drops == drops and rx.stats.delivered == len(rec.data)
    with pytest.raises(Exception) as ei:
        rx.config("KernelDrops=0")
    assert ei.value.code == 122  # type: ignore[attr-defined]


def test_no_drops_no_10055(netns: Netns, make: Make) -> None:
    rec = Recorder()
    rx = rec.attach(_receiver(make))
    _send(rx.local_port, [b"a", b"b"])
    pump([rx], lambda: len(rec.data) == 2)
    assert rec.errors == [] and rx.config("KernelDrops") == "0"


_FLOOD = f"""
import sys
from mcastkit import MulticastSocket
port, n = int(sys.argv[1]), int(sys.argv[2])
with MulticastSocket(4, interface="lo", sndbuf_bytes=1 << 20) as tx:
    for i in range(n):
        tx.sendto(i.to_bytes(4, "big") + bytes(508), "{G}", port)
"""


def test_overload_delivered_plus_kernel_drops_equals_sent(netns: Netns, make: Make) -> None:
    """A sender process floods while the receiver pumps: every datagram is either
    delivered or in KernelDrops, exactly, and each 10055 reports the rise it saw."""
    rec = Recorder()
    rx = rec.attach(_receiver(make, InBufferSize=2048, SelectWaitMillis=1))
    sent = 20000
    proc = subprocess.Popen([sys.executable, "-c", _FLOOD, str(rx.local_port), str(sent)])
    try:
        while proc.poll() is None:
            rx.do_events()
    finally:
        assert proc.wait(timeout=60) == 0
    _settle([rx])
    drops = int(rx.config("KernelDrops"))
    seqs = [int.from_bytes(e.datagram[:4], "big") for e in rec.data]
    assert seqs == sorted(set(seqs))  # no duplicates, in order
    assert drops > 0, "the receiver kept up: no overload was made"
    assert len(rec.data) + drops == sent
    assert all(e.error_code == 10055 for e in rec.errors)
    reported = sum(int(e.description.split("dropped ")[1].split()[0]) for e in rec.errors)
    assert reported == drops  # each rise reported once, none twice


# ------------------------------------------------------------------ discarded (14.10)


def test_datagrams_discarded_by_deactivation_are_counted(netns: Netns, make: Make) -> None:
    rx = _receiver(make)
    got: list[bytes] = []

    def stop(e: object) -> None:
        got.append(e.datagram)  # type: ignore[attr-defined]
        rx.active = False

    rx.on_data_in = stop
    _send(rx.local_port, [b"%d" % i for i in range(10)])
    pump([rx], lambda: not rx.active)
    st = rx.stats
    assert got == [b"0"]
    assert (st.delivered, st.discarded, st.kernel_drops) == (1, 9, 0)


# ------------------------------------------------------------------ the log (14.9, G12)


def _compat_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "mcastkit.compat"]


def test_flood_without_on_error_costs_a_few_lines_and_no_payload(
        netns: Netns, make: Make, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mcastkit.compat")
    rx = _receiver(make, MaxPacketSize=32, InBufferSize=1 << 22)
    seen: list[int] = []

    def hostile(e: object) -> None:
        seen.append(1)
        raise ValueError(f"cannot parse {e.datagram!r}")  # type: ignore[attr-defined]

    rx.on_data_in = hostile  # no on_error: every error goes to the log
    n = 5000
    for start in range(0, n, 100):  # 2 errors each: the handler's and the truncation
        _send(rx.local_port, [SECRET + b"%05d" % i + bytes(40) for i in range(start, start + 100)])
        want = start + 100  # a burst the receive buffer holds: no 10055 in the count
        pump([rx], lambda: len(seen) == want)  # noqa: B023 (called before the next pass)
    rx.active = False  # flushes the summary line
    records = _compat_records(caplog)
    text = "\n".join(r.getMessage() for r in records) + "".join(
        str(r.exc_text or "") for r in records)
    assert "SECRET" not in text and "cannot parse" not in text
    assert len(records) <= BURST + 1, f"{len(records)} log lines for {n} bad datagrams"
    summary = records[-1].getMessage()
    assert f"{2 * n - BURST} more errors" in summary
    assert "124" in summary and "10040" in summary and "on_error" in summary
    assert rx.stats.errors_not_logged == 2 * n - BURST


def test_on_error_that_raises_is_logged_without_its_text(
        netns: Netns, make: Make, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mcastkit.compat")
    rx = _receiver(make)
    calls: list[MCastErrorEventParams] = []

    def bad_data(e: object) -> None:
        raise ValueError(f"bad {e.datagram!r}")  # type: ignore[attr-defined]

    def bad_error(e: MCastErrorEventParams) -> None:
        calls.append(e)
        raise RuntimeError(f"could not handle: {e.description}")

    rx.on_data_in, rx.on_error = bad_data, bad_error
    _send(rx.local_port, [SECRET])
    pump([rx], lambda: bool(calls))
    assert "SECRET" in calls[0].description  # the application's own handler sees it all
    records = _compat_records(caplog)
    assert records, "the failing on_error handler was not reported at all"
    for r in records:
        assert "SECRET" not in r.getMessage() and not r.exc_info
    assert "RuntimeError" in records[0].getMessage()
