"""Tunnel packets: sealing, opening, the replay window, the inner datagram and key files."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcastkit import McastValueError
from mcastkit.relay import load_key_file, make_key_file
from mcastkit.relay._wire import (
    HEADER,
    TAG,
    Drop,
    Kind,
    ReplayWindow,
    TunnelKey,
    decode_inner,
    encode_inner,
    inner_overhead,
    open_packet,
)
from tests.support.addrs import G6, asm4, lab_host

KEY = TunnelKey(bytes(range(32)))
OTHER = TunnelKey(bytes(range(1, 33)))


def test_seal_open_round_trip_and_key_never_in_repr() -> None:
    c = KEY.session(42)
    pkt = c.seal(Kind.DATA, 7, b"body")
    assert len(pkt) == HEADER + 4 + TAG
    got, why = open_packet(pkt, KEY, {})
    assert why is None and got is not None
    assert (got.kind, got.session, got.counter, got.body) == (Kind.DATA, 42, 7, b"body")
    assert bytes(range(32)).hex() not in repr(KEY)


def test_wrong_key_is_told_apart_from_tampering() -> None:
    pkt = KEY.session(1).seal(Kind.DATA, 1, b"secret")
    assert open_packet(pkt, OTHER, {}) == (None, Drop.WRONG_KEY)
    for i in range(HEADER - 16, len(pkt)):  # session, counter, ciphertext, tag
        bad = bytearray(pkt)
        bad[i] ^= 0x01
        got, why = open_packet(bytes(bad), KEY, {})
        assert got is None and why is Drop.AUTH_FAILED, i


def test_garbage_is_malformed() -> None:
    assert open_packet(b"x" * 100, KEY, {}) == (None, Drop.MALFORMED)
    assert open_packet(b"", KEY, {}) == (None, Drop.MALFORMED)


def test_sessions_have_distinct_keys() -> None:
    a = KEY.session(1).seal(Kind.DATA, 1, b"same")
    b = KEY.session(2).seal(Kind.DATA, 1, b"same")
    assert a[HEADER:] != b[HEADER:]


@given(st.lists(st.integers(0, 10_000), max_size=300))
def test_replay_window_accepts_each_counter_at_most_once(counters: list[int]) -> None:
    w = ReplayWindow(size=512)
    accepted: list[int] = []
    for c in counters:
        top = max(accepted, default=-1)
        if w.check(c):
            w.accept(c)
            accepted.append(c)
            assert c > top - 512  # never older than the window when accepted
        else:
            assert c in accepted or c <= top - 512  # refused: a repeat, or too old
    assert len(accepted) == len(set(accepted))


def test_replay_window_refuses_old_and_repeated() -> None:
    w = ReplayWindow(size=64)
    for c in (5, 3, 10):
        assert w.check(c)
        w.accept(c)
    assert not w.check(5) and not w.check(3) and not w.check(10)
    assert w.check(4)
    w.accept(100)
    assert not w.check(36)  # 100 - 64: out of the window
    assert w.check(37)


@given(st.sampled_from([asm4(1, 2), G6, "224.0.0.251", "ff02::fb"]),
       st.integers(1, 65535), st.integers(0, 65535), st.integers(0, 255),
       st.binary(max_size=300))
def test_inner_round_trip(group: str, port: int, sport: int, ttl: int, data: bytes) -> None:
    src = lab_host(1, 10) if ":" not in group else "fe80::1"
    body = encode_inner(group, port, src, sport, ttl, data)
    assert len(body) + HEADER + TAG == len(data) + inner_overhead(6 if ":" in group else 4)
    got = decode_inner(body)
    assert got is not None
    assert (got.group, got.port, got.source, got.source_port, got.ttl, got.data) == (
        group, port, src, sport, ttl, data)


@given(st.binary(max_size=60))
def test_decode_inner_never_raises(body: bytes) -> None:
    decode_inner(body)


def test_decode_inner_refuses_unicast_group() -> None:
    assert decode_inner(encode_inner(lab_host(1, 1), 5, lab_host(1, 2), 5, 1, b"x")) is None


def test_key_file_round_trip_and_mode(tmp_path: Path) -> None:
    p = str(tmp_path / "k")
    make_key_file(p)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert load_key_file(p).key_id == load_key_file(p).key_id
    with pytest.raises(McastValueError, match="refusing to overwrite"):
        make_key_file(p)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    p = tmp_path / "k"
    make_key_file(str(p))
    p.chmod(mode)
    with pytest.raises(McastValueError, match="chmod 600"):
        load_key_file(str(p))


@pytest.mark.parametrize("content", [b"short", b"A" * 44, b"zz" * 32, b""])
def test_key_file_bad_content_is_refused(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "k"
    p.write_bytes(content)
    p.chmod(0o600)
    with pytest.raises(McastValueError, match="32-byte key"):
        load_key_file(str(p))


def test_key_file_hex_and_raw(tmp_path: Path) -> None:
    p = tmp_path / "k"
    p.write_bytes(bytes(range(32)).hex().encode() + b"\n")
    p.chmod(0o600)
    assert load_key_file(str(p)).key_id == KEY.key_id
    p.write_bytes(bytes(range(32)))
    assert load_key_file(str(p)).key_id == KEY.key_id


def test_key_file_missing_and_symlink(tmp_path: Path) -> None:
    with pytest.raises(McastValueError, match="does not exist"):
        load_key_file(str(tmp_path / "nope"))
    make_key_file(str(tmp_path / "real"))
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(McastValueError, match="symlink"):
        load_key_file(str(tmp_path / "link"))


def _set_acl(path: Path, entries: list[tuple[int, int, int]]) -> None:
    data = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(path, "system.posix_acl_access", data)
    except OSError as exc:
        pytest.skip(f"this file system takes no POSIX ACLs here ({exc.strerror})")


ANY = 0xFFFFFFFF


def test_key_file_as_a_systemd_credential_is_accepted(tmp_path: Path) -> None:
    """systemd writes credentials 0400 with a read ACL for the service's user, so the group
    bits show the ACL mask (0440): only the named user (us) may read it."""
    p = tmp_path / "k"
    make_key_file(str(p))
    p.chmod(0o400)
    _set_acl(p, [(1, 4, ANY), (2, 4, os.geteuid()), (4, 0, ANY), (16, 4, ANY), (32, 0, ANY)])
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o440
    assert load_key_file(str(p)).key_id


@pytest.mark.parametrize(("entry", "who"), [
    ((2, 4, 4242), "user 4242"), ((8, 4, 4242), "group 4242"), ((4, 4, ANY), "its group")])
def test_key_file_acl_granting_someone_else_is_refused(tmp_path: Path,
                                                       entry: tuple[int, int, int],
                                                       who: str) -> None:
    p = tmp_path / "k"
    make_key_file(str(p))
    base = [(1, 6, ANY), (4, 0, ANY), (16, 4, ANY), (32, 0, ANY)]
    base = [e for e in base if e[0] != entry[0]] + [entry]
    _set_acl(p, sorted(base, key=lambda e: e[0]))
    with pytest.raises(McastValueError, match=who):
        load_key_file(str(p))
