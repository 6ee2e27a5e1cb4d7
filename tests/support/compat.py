"""Helpers for the compat-class tests: an MCast factory pinned to an interface and an
event pump that drives ``do_events`` until a condition holds (one generous deadline)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from mcastkit.compat import (
    MCast,
    MCastDataInEventParams,
    MCastErrorEventParams,
    MCastReadyToSendEventParams,
)

DEADLINE_S = 5.0


@dataclass
class Recorder:
    """Collects the events of one MCast."""

    data: list[MCastDataInEventParams] = field(default_factory=list)
    errors: list[MCastErrorEventParams] = field(default_factory=list)
    ready: list[MCastReadyToSendEventParams] = field(default_factory=list)
    dest: list[str] = field(default_factory=list)

    def attach(self, mc: MCast, capture_dest: bool = False) -> MCast:
        def on_data(e: MCastDataInEventParams) -> None:
            self.data.append(e)
            if capture_dest:
                self.dest.append(mc.config("DestinationAddress"))

        mc.on_data_in = on_data
        mc.on_error = self.errors.append
        mc.on_ready_to_send = self.ready.append
        return mc

    @property
    def payloads(self) -> list[bytes]:
        return [e.datagram for e in self.data]


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (imports seen from scratch); its stdout."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def pump(mcs: list[MCast], until: Callable[[], bool], timeout: float = DEADLINE_S) -> None:
    """Call do_events on every instance until ``until()`` or the deadline (then fail)."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        for m in mcs:
            m.do_events()


@pytest.fixture
def make() -> Iterator[Callable[..., MCast]]:
    """``make(interface="lo", **config)``: an MCast with both interfaces pinned, a short
    SelectWaitMillis, and the given settings; deactivated at teardown."""
    made: list[MCast] = []

    def factory(interface: str = "lo", **settings: object) -> MCast:
        mc = MCast()
        mc.config("SelectWaitMillis=5")
        mc.receive_interface = interface
        mc.send_interface = interface
        for k, v in settings.items():
            mc.config(f"{k}={v}")
        made.append(mc)
        return mc

    yield factory
    for mc in made:
        mc.active = False
