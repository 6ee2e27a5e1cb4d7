"""rtnetlink decoding (pure, property-tested) and the watcher socket (in a namespace)."""

from __future__ import annotations

import errno
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit._netlink import (
    IFF_RUNNING,
    IFF_UP,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_OVERRUN,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    AddrEvent,
    LinkEvent,
    NetlinkWatcher,
    Overrun,
    _decode,
    dump_addresses,
    link_dump_request,
    parse_messages,
)
from tests.support.addrs import SRC4, UNICAST4, lab_host
from tests.support.netns import Netns, veth, wait_until


def _attr(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _msg(mtype: int, body: bytes, *, length: int | None = None) -> bytes:
    n = 16 + len(body) if length is None else length
    raw = struct.pack("=IHHII", n, mtype, 0, 0, 0) + body
    return raw + b"\0" * (-len(raw) % 4)


def link_msg(mtype: int, index: int, name: str | None, flags: int = 0) -> bytes:
    body = struct.pack("=BxHiII", 0, 1, index, flags, 0)
    if name is not None:
        body += _attr(3, name.encode() + b"\0")
    return _msg(mtype, body)


def addr_msg(mtype: int, family: int, index: int, addr: bytes, prefix: int = 24,
             label: str | None = None) -> bytes:
    body = struct.pack("=BBBBI", family, prefix, 0, 0, index) + _attr(2, addr)
    if label is not None:
        body += _attr(3, label.encode() + b"\0")
    return _msg(mtype, body)


# --- crafted messages -----------------------------------------------------------------


def test_parse_newlink_with_name_gives_link_event() -> None:
    evs = parse_messages(link_msg(RTM_NEWLINK, 7, "eth0", IFF_UP | IFF_RUNNING))
    assert evs == [LinkEvent(kind="new", index=7, name="eth0", flags=IFF_UP | IFF_RUNNING)]
    assert evs[0].up and evs[0].usable  # type: ignore[union-attr]


def test_parse_dellink_and_flags_down_is_not_usable() -> None:
    (ev,) = parse_messages(link_msg(RTM_DELLINK, 3, "va", IFF_UP))
    assert isinstance(ev, LinkEvent) and ev.kind == "del" and ev.up and not ev.usable


def test_parse_newaddr_v4_and_deladdr_v6() -> None:
    buf = (addr_msg(RTM_NEWADDR, socket.AF_INET, 2, bytes([198, 18, 0, 1]), label="eth0")
           + addr_msg(RTM_DELADDR, socket.AF_INET6, 2, b"\xfe\x80" + b"\0" * 13 + b"\1", 64))
    a, b = parse_messages(buf)
    assert a == AddrEvent(kind="new", family=4, index=2, prefixlen=24, address=SRC4,
                          label="eth0")
    assert b == AddrEvent(kind="del", family=6, index=2, prefixlen=64, address="fe80::1",
                          label=None)


def test_parse_overrun_done_and_unknown_types() -> None:
    buf = _msg(NLMSG_OVERRUN, b"") + _msg(NLMSG_DONE, b"\0\0\0\0") + _msg(999, b"abcd")
    assert parse_messages(buf) == [Overrun()]


def test_parse_length_past_end_stops_walk() -> None:
    good = link_msg(RTM_NEWLINK, 1, "lo")
    lying = _msg(RTM_NEWLINK, b"\0" * 16, length=10_000)
    assert parse_messages(good + lying + good) == parse_messages(good)


def test_parse_zero_and_short_lengths_terminate() -> None:
    assert parse_messages(_msg(RTM_NEWLINK, b"", length=0) * 3) == []
    assert parse_messages(_msg(RTM_NEWLINK, b"", length=15)) == []


def test_parse_truncated_body_and_bad_index_are_skipped() -> None:
    short_link = _msg(RTM_NEWLINK, b"\0" * 8)
    zero_index = link_msg(RTM_NEWLINK, 0, "x")
    neg_index = link_msg(RTM_NEWLINK, -5, "x")
    bad_family = addr_msg(RTM_NEWADDR, 99, 2, b"\1\2\3\4")
    ok = link_msg(RTM_NEWLINK, 9, "ok")
    assert parse_messages(short_link + zero_index + neg_index + bad_family + ok) == [
        LinkEvent(kind="new", index=9, name="ok", flags=0)]


def test_parse_bad_attributes_keep_the_message() -> None:
    body = struct.pack("=BxHiII", 0, 1, 4, 0, 0) + struct.pack("=HH", 2, 3) + b"junk"
    assert parse_messages(_msg(RTM_NEWLINK, body)) == [
        LinkEvent(kind="new", index=4, name=None, flags=0)]
    odd_addr = addr_msg(RTM_NEWADDR, socket.AF_INET, 2, b"\1\2\3")  # 3-byte address
    (ev,) = parse_messages(odd_addr)
    assert isinstance(ev, AddrEvent) and ev.address is None


def test_parse_name_without_nul_and_non_utf8() -> None:
    body = struct.pack("=BxHiII", 0, 1, 4, 0, 0) + _attr(3, b"\xffab")
    (ev,) = parse_messages(_msg(RTM_NEWLINK, body))
    assert isinstance(ev, LinkEvent) and ev.name == "\ufffdab"


def test_parse_message_count_is_bounded() -> None:
    buf = link_msg(RTM_NEWLINK, 1, "a") * 5000
    assert len(parse_messages(buf)) == 4096


def test_link_dump_request_layout() -> None:
    raw = link_dump_request(42)
    n, mtype, flags, seq, pid = struct.unpack_from("=IHHII", raw)
    assert (n, mtype, seq, pid) == (len(raw), RTM_GETLINK, 42, 0) and flags & 0x1


# --- properties -----------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=4096))
def test_parse_random_bytes_never_raise(buf: bytes) -> None:
    for ev in parse_messages(buf):
        assert isinstance(ev, LinkEvent | AddrEvent | Overrun)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR,
                                           RTM_DELADDR, NLMSG_OVERRUN]),
                          st.binary(max_size=64)), max_size=8))
def test_parse_well_framed_random_bodies_never_raise(parts: list[tuple[int, bytes]]) -> None:
    buf = b"".join(_msg(t, body) for t, body in parts)
    assert len(parse_messages(buf)) <= len(parts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 2**31 - 1),
                          st.text("abcdefghij0123456789-.", min_size=1, max_size=15),
                          st.integers(0, 2**32 - 1)), max_size=10))
def test_parse_link_messages_round_trip(links: list[tuple[bool, int, str, int]]) -> None:
    buf = b"".join(link_msg(RTM_NEWLINK if new else RTM_DELLINK, i, n, f)
                   for new, i, n, f in links)
    assert parse_messages(buf) == [
        LinkEvent(kind="new" if new else "del", index=i, name=n, flags=f)
        for new, i, n, f in links]


# --- the real socket ---------------------------------------------------------------------


@pytest.mark.kernel
def test_watcher_dump_reports_lo(netns: object) -> None:
    w = NetlinkWatcher()
    try:
        w.request_links()
        evs = wait_until(lambda: [e for e in w.read() if isinstance(e, LinkEvent)], 5,
                         what="link dump answer")
        assert any(e.name == "lo" and e.index == 1 for e in evs)
    finally:
        w.close()
    assert w.closed and w.fileno() == -1 and w.read() == []
    w.close()  # idempotent


@pytest.mark.kernel
def test_watcher_sees_veth_created_and_deleted(netns: Netns) -> None:
    w = NetlinkWatcher()
    seen: list[LinkEvent] = []

    def saw(kind: str, name: str) -> bool:
        seen.extend(e for e in w.read() if isinstance(e, LinkEvent))
        return any(e.kind == kind and e.name == name for e in seen)

    try:
        veth(netns, "wa", netns, "wb")
        wait_until(lambda: saw("new", "wa"), 5, what="RTM_NEWLINK wa")
        netns.ip("link", "del", "wa")
        wait_until(lambda: saw("del", "wa"), 5, what="RTM_DELLINK wa")
    finally:
        w.close()


# --- one-shot address dumps --------------------------------------------------------------


def test_dump_end_and_error_are_recognised() -> None:
    ok = addr_msg(RTM_NEWADDR, socket.AF_INET, 2, bytes([198, 18, 0, 1]))
    assert _decode(ok)[1] is None  # more to come
    assert _decode(ok + _msg(NLMSG_DONE, b"\0\0\0\0"))[1] == 0
    err = _msg(NLMSG_ERROR, struct.pack("=i", -errno.EINVAL) + b"\0" * 16)
    events, end, torn = _decode(ok + err)
    assert end == errno.EINVAL and len(events) == 1 and not torn
    intr = struct.pack("=IHHII", 16, NLMSG_DONE, 0x10, 0, 0)  # NLM_F_DUMP_INTR
    assert _decode(ok + intr)[1:] == (0, True)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_decode_random_bytes_never_raise(buf: bytes) -> None:
    events, end, torn = _decode(buf)
    assert end is None or isinstance(end, int)
    assert isinstance(torn, bool)
    assert events == parse_messages(buf)


@pytest.mark.kernel
def test_dump_addresses_all_and_filtered(netns: Netns) -> None:
    veth(netns, "wa", netns, "wb")
    netns.addr_add("wa", f"{UNICAST4}/24")
    netns.addr_add("wa", f"{lab_host(5, 2)}/24")
    netns.addr_add("wb", f"{lab_host(6, 1)}/24")
    wa, wb = netns.ifindex("wa"), netns.ifindex("wb")
    every = dump_addresses()
    assert {(e.index, e.address) for e in every} >= {
        (1, "127.0.0.1"), (1, "::1"), (wa, UNICAST4), (wa, lab_host(5, 2)),
        (wb, lab_host(6, 1))}
    only = dump_addresses(wa)
    assert {e.index for e in only} == {wa}
    assert [e.address for e in only if e.family == 4] == [UNICAST4, lab_host(5, 2)]
    assert all(e.kind == "new" for e in only)
    assert dump_addresses(999_999) == []
