"""``on_data_in`` gets the same parameter object whichever way ``do_events`` builds it
(through the slots, its fast way, or through ``__init__``): an exact, frozen
``MCastDataInEventParams`` equal to one made by its constructor (issue 13 item 6)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from mcastkit import MulticastSocket
from mcastkit.compat import MCast, MCastDataInEventParams, _pump
from tests.support.addrs import asm4
from tests.support.compat import Recorder, pump
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G = asm4(12, 7)
Make = Callable[..., MCast]


@pytest.mark.parametrize("by_slots", [True, False], ids=["slots", "init"])
def test_params_are_exact_frozen_and_equal(netns: Netns, make: Make, by_slots: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    assert _pump._BY_SLOTS  # the fast way is on for the shipped class
    monkeypatch.setattr(_pump, "_BY_SLOTS", by_slots)
    rec = Recorder()
    rx = rec.attach(make())
    rx.multicast_group = G
    rx.active = True
    payloads = [b"", b"a", b"%d" % 7 * 300]
    with MulticastSocket(4, interface="lo") as tx:
        for p in payloads:
            tx.sendto(p, G, rx.local_port)
        src = tx.sock.getsockname()
    pump([rx], lambda: len(rec.data) == len(payloads))
    assert rec.payloads == payloads
    for e, p in zip(rec.data, payloads, strict=True):
        assert type(e) is MCastDataInEventParams
        assert e == MCastDataInEventParams(p, e.source_address, src[1])
        assert hash(e) == hash(MCastDataInEventParams(p, e.source_address, src[1]))
        assert e.source_port == src[1] and isinstance(e.source_address, str)
        assert e.source_address  # the sender's address, never left unset
        with pytest.raises(dataclasses.FrozenInstanceError):
            e.datagram = b"changed"  # type: ignore[misc]
        assert repr(e).startswith("MCastDataInEventParams(datagram=")
