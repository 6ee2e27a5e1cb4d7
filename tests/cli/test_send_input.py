"""Issue 9 item 1: ``send`` is binary safe (--hex, --file, raw stdin with --split),
sends no empty datagrams from blank lines unless asked, handles CRLF, and sends from a
chosen --source address. Received by a core socket, so the bytes are compared exactly."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcastkit import MulticastSocket, ReceiveTimeoutError, open_receiver
from mcastkit.cli import ExitStatus
from mcastkit.cli._sendinput import split_stream
from tests.support.addrs import asm4, lab_host, ssm4
from tests.support.cli import cli, mk_bytes
from tests.support.netns import Netns

G = asm4(46, 1)


def _drain(rx: MulticastSocket) -> list[bytes]:
    got: list[bytes] = []
    while True:
        try:
            got.append(rx.recv(timeout_s=0.3).data)
        except ReceiveTimeoutError:
            return got


@pytest.fixture
def rx(netns: Netns) -> Iterator[MulticastSocket]:
    with open_receiver(f"{G}:5100", interface="lo", rcvbuf_bytes=1 << 20) as s:
        yield s


BINARY = b"\xff\xfe\x00binary\r\n\n\nline2\n"


@pytest.mark.kernel
def test_binary_stdin_lines_in_process(rx: MulticastSocket) -> None:
    r = cli("send", f"{G}:5100", "-i", "lo", stdin=BINARY, stdin_isatty=False)
    assert r.status == ExitStatus.OK, r.stderr
    # CR of CRLF dropped, blank lines skipped, undecodable bytes sent as they are
    assert _drain(rx) == [b"\xff\xfe\x00binary", b"line2"]


@pytest.mark.kernel
def test_binary_stdin_lines_by_subprocess(rx: MulticastSocket) -> None:
    p = mk_bytes("send", f"{G}:5100", "-i", "lo", input=BINARY)
    assert p.returncode == 0, p.stderr
    assert b"Traceback" not in p.stderr and b"bug" not in p.stderr
    assert _drain(rx) == [b"\xff\xfe\x00binary", b"line2"]


@pytest.mark.kernel
def test_keep_empty_sends_blank_lines(rx: MulticastSocket) -> None:
    r = cli("send", f"{G}:5100", "-i", "lo", "--keep-empty", stdin=b"a\r\n\nb\n",
            stdin_isatty=False)
    assert r.status == 0, r.stderr
    assert _drain(rx) == [b"a", b"", b"b"]


@pytest.mark.kernel
def test_split_none_sends_all_of_stdin_as_one(rx: MulticastSocket) -> None:
    blob = os.urandom(3000)
    p = mk_bytes("send", f"{G}:5100", "-i", "lo", "--split", "none", input=blob)
    assert p.returncode == 0, p.stderr
    assert _drain(rx) == [blob]


@pytest.mark.kernel
def test_split_null_records(rx: MulticastSocket) -> None:
    r = cli("send", f"{G}:5100", "-i", "lo", "--split", "null",
            stdin=b"one\nline\0\xff\x00", stdin_isatty=False)
    assert r.status == 0, r.stderr
    assert _drain(rx) == [b"one\nline", b"\xff"]


@pytest.mark.kernel
def test_hex_and_count(rx: MulticastSocket) -> None:
    r = cli("send", f"{G}:5100", "-i", "lo", "--hex", "de:ad be-ef 00 ff", "-c", "2")
    assert r.status == 0, r.stderr
    assert _drain(rx) == [b"\xde\xad\xbe\xef\x00\xff"] * 2


@pytest.mark.kernel
def test_file_is_one_datagram(rx: MulticastSocket, tmp_path: Path) -> None:
    f = tmp_path / "packet.bin"
    f.write_bytes(bytes(range(256)) * 4)
    r = cli("send", f"{G}:5100", "-i", "lo", "--file", str(f))
    assert r.status == 0, r.stderr
    assert _drain(rx) == [bytes(range(256)) * 4]


@pytest.mark.kernel
def test_message_words_keep_the_shells_bytes(rx: MulticastSocket) -> None:
    word = b"caf\xe9".decode("utf-8", "surrogateescape")  # a Latin-1 argv byte
    r = cli("send", f"{G}:5100", "-i", "lo", word)
    assert r.status == 0, r.stderr
    assert _drain(rx) == [b"caf\xe9"]


@pytest.mark.parametrize("argv, needle", [
    (["--hex", "xyz"], "--hex 'xyz': not hex bytes"),
    (["--hex", "abc"], "not hex bytes"),
    (["--file", "/nonexistent/mcastkit-test"], "--file '/nonexistent/mcastkit-test'"),
    (["--hex", "00", "--size", "64"], "give one payload, not --hex and --size"),
    (["x", "--file", "f"], "give one payload, not MESSAGE and --file"),
])
def test_payload_usage_errors(argv: list[str], needle: str) -> None:
    r = cli("send", f"{G}:5100", "-i", "lo", *argv)
    assert r.status == ExitStatus.USAGE, r.stderr
    assert r.stderr.startswith("mcastkit: error: ") and needle in r.stderr


def test_too_large_file_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "big.bin"
    f.write_bytes(bytes(70000))
    r = cli("send", f"{G}:5100", "-i", "lo", "--file", str(f))
    assert r.status == ExitStatus.USAGE
    assert "do not fit in one IPv4 UDP datagram (at most 65507 bytes)" in r.stderr


@pytest.mark.kernel
def test_source_address_is_used(netns: Netns) -> None:
    """--source picks the source (IP_PKTINFO), so an SSM receiver of that source gets it
    and one of another source does not."""
    netns.ip("addr", "add", f"{lab_host(46, 5)}/32", "dev", "lo")
    with open_receiver(f"{lab_host(46, 5)},{ssm4(1, 46, 1)}:5101", interface="lo",
                       reuse_port=True) as ssm, \
            open_receiver(f"127.0.0.1,{ssm4(1, 46, 1)}:5101", interface="lo",
                          reuse_port=True) as other:
        r = cli("send", f"{ssm4(1, 46, 1)}:5101", "-i", "lo", "--source", lab_host(46, 5), "ssm")
        assert r.status == 0, r.stderr
        d = ssm.recv(timeout_s=2)
        assert d.data == b"ssm" and d.source == lab_host(46, 5)
        assert _drain(other) == []


@pytest.mark.kernel
def test_source_without_interface_uses_its_interface(netns: Netns) -> None:
    netns.ip("addr", "add", f"{lab_host(46, 6)}/32", "dev", "lo")
    with open_receiver(f"{G}:5102", interface="lo") as s:
        r = cli("send", f"{G}:5102", "--source", lab_host(46, 6), "x")
        assert r.status == 0, r.stderr
        assert s.recv(timeout_s=2).source == lab_host(46, 6)


@pytest.mark.kernel
def test_foreign_source_is_a_usage_error(netns: Netns) -> None:
    r = cli("send", f"{G}:5100", "-i", "lo", "--source", lab_host(99, 99), "x")
    assert r.status == ExitStatus.USAGE
    assert f"--source {lab_host(99, 99)}: not an IPv4 address of this host" in r.stderr


_records = st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
                    max_size=8)


@given(_records)
def test_split_line_round_trip(records: list[bytes]) -> None:
    stream = io.BytesIO(b"".join(r + b"\r\n" for r in records))
    assert list(split_stream(stream, "line", keep_empty=True)) == records
    stream = io.BytesIO(b"".join(r + b"\n" for r in records))
    assert list(split_stream(stream, "line", keep_empty=False)) == [r for r in records if r]


@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\0" not in b), max_size=8))
def test_split_null_round_trip(records: list[bytes]) -> None:
    stream = io.BytesIO(b"".join(r + b"\0" for r in records))
    assert list(split_stream(stream, "null", keep_empty=True)) == records


@pytest.mark.kernel
def test_error_part_way_says_what_had_left(rx: MulticastSocket) -> None:
    """A stdin record too large for a datagram stops the run (exit 2), after the summary
    of what had already been sent."""
    data = b"one\ntwo\n" + b"x" * 70000 + b"\nnever\n"
    r = cli("send", f"{G}:5100", "-i", "lo", stdin=data, stdin_isatty=False)
    assert r.status == ExitStatus.USAGE
    assert "sent 2 datagrams (6 B)" in r.stderr and "stdin record 3: 70000 bytes" in r.stderr
    assert _drain(rx) == [b"one", b"two"]
