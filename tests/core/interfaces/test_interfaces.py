"""Interface names and addresses that cannot reach the kernel (issue 14 item 7): a NUL or
a character that cannot be encoded is a McastValueError naming the interface (escaped)
and the fix, on every face: resolve_interface, MulticastSocket, open_receiver / open_sender,
mcastkit.aio and MCast (whose skin turns it into its own MCastError). Nothing is opened.

Needs no namespace: every name here is refused or not found on ``lo``-only hosts.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mcastkit.aio as aio
from mcastkit import (
    ErrorCode,
    InterfaceNotFoundError,
    McastError,
    McastValueError,
    MulticastSocket,
    open_receiver,
    open_sender,
    resolve_interface,
)
from mcastkit.compat import MCast, MCastError
from tests.support.addrs import G4, SRC4

BAD = ["a\0b", "lo\0", "\0", f"{SRC4}\0", "\ud800", "lo\udfff", "ab\ud83d"]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _check(exc: BaseException, bad: str) -> None:
    assert isinstance(exc, McastValueError), repr(exc)
    assert exc.code is ErrorCode.BAD_VALUE
    text = str(exc)
    assert ascii(bad) in text and "ip link" in text, text
    text.encode("ascii")  # escaped: safe for any terminal or log


@pytest.mark.parametrize("bad", BAD, ids=ascii)
def test_bad_interface_text_is_a_value_error_on_every_core_face(bad: str) -> None:
    fds = _fds()
    calls = [lambda: resolve_interface(bad),
             lambda: MulticastSocket(4, interface=bad),
             lambda: MulticastSocket(6, interface=bad),
             lambda: open_receiver(f"{G4}:5000", interface=bad),
             lambda: open_sender(f"{G4}:5000", interface=bad)]
    for call in calls:
        with pytest.raises(McastValueError) as info:
            call()
        _check(info.value, bad)
    assert _fds() == fds


@pytest.mark.parametrize("bad", BAD, ids=ascii)
def test_bad_interface_text_is_a_value_error_in_aio(bad: str) -> None:
    async def main() -> None:
        for call in (lambda: aio.open_multicast(f"{G4}:5000", interface=bad),
                     lambda: aio.open_sender(f"{G4}:5000", interface=bad)):
            with pytest.raises(McastValueError) as info:
                call()
            _check(info.value, bad)

    asyncio.run(main())


@pytest.mark.parametrize("bad", BAD, ids=ascii)
@pytest.mark.parametrize("prop", ["receive_interface", "send_interface", "local_host"])
def test_bad_interface_text_is_an_mcast_error_at_active(bad: str, prop: str) -> None:
    mc = MCast()
    try:
        setattr(mc, prop, bad)
        mc.local_port = 0
        mc.multicast_group = G4
        with pytest.raises(MCastError) as info:
            mc.active = True
        assert ascii(bad) in str(info.value), str(info.value)
        assert not mc.active
    finally:
        mc.active = False


def test_a_name_the_kernel_could_list_is_looked_up_not_refused() -> None:
    """Bytes that are not UTF-8 come back from the kernel as U+DC80-U+DCFF; such a name
    is a valid question (here: not found), not malformed input."""
    with pytest.raises(InterfaceNotFoundError) as info:
        resolve_interface("x\udc80")
    assert "no interface named" in str(info.value)


def test_a_name_longer_than_the_kernel_allows_in_bytes() -> None:
    with pytest.raises(McastValueError) as info:
        resolve_interface("ééééééééé")  # 9 characters, 18 bytes
    assert "18 bytes" in str(info.value) and "15" in str(info.value)


@given(st.text(max_size=20))
def test_any_text_resolves_or_raises_a_typed_error(text: str) -> None:
    try:
        itf = resolve_interface(text)
    except McastError:
        return
    assert itf.index > 0 and itf.name
