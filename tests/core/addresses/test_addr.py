"""Unit tests for mcastkit._addr: the endpoint parser, Group scopes and SSM, TTL warnings,
interface specs. Hypothesis round-trips ``str(Endpoint)`` back through ``parse_endpoint``.

Must not: touch the network (no sockets are created here).
"""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcastkit import Endpoint, ErrorCode, Group, McastValueError, Scope, parse_endpoint
from mcastkit._addr import parse_interface_spec, parse_ip, scope_ttl_warning

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address

# --------------------------------------------------------------------------- accepted forms


@pytest.mark.parametrize(
    ("text", "group", "port", "source", "zone"),
    [
        ("239.255.0.1:5000", "239.255.0.1", 5000, None, None),
        ("  239.255.0.1:5000  ", "239.255.0.1", 5000, None, None),
        ("232.1.1.1:0", "232.1.1.1", 0, None, None),
        ("239.255.0.1:65535", "239.255.0.1", 65535, None, None),
        ("239.255.0.1:" + "0" * 5000 + "7", "239.255.0.1", 7, None, None),
        ("[ff15::1]:5000", "ff15::1", 5000, None, None),
        ("[FF15::1]:5000", "ff15::1", 5000, None, None),
        ("[ff02::1%eth0]:5000", "ff02::1", 5000, None, "eth0"),
        ("[ff02::1%7]:5000", "ff02::1", 5000, None, "7"),
        ("198.18.1.10,232.1.1.1:5000", "232.1.1.1", 5000, "198.18.1.10", None),
        ("[2001:db8::10],[ff35::1]:5000", "ff35::1", 5000, "2001:db8::10", None),
        ("2001:db8::10,[ff35::1]:5000", "ff35::1", 5000, "2001:db8::10", None),
        ("[2001:db8::10],[ff32::1%lo]:9", "ff32::1", 9, "2001:db8::10", "lo"),
    ],
)
def test_parse_endpoint_accepts(
    text: str, group: str, port: int, source: str | None, zone: str | None
) -> None:
    ep = parse_endpoint(text)
    assert ep.group == Group(ipaddress.ip_address(group))
    assert ep.port == port
    assert ep.source == (ipaddress.ip_address(source) if source else None)
    assert ep.interface == zone


def test_default_port_fills_a_missing_port_only() -> None:
    assert parse_endpoint("239.255.0.1", default_port=4000).port == 4000
    assert parse_endpoint("[ff15::1]", default_port=4000).port == 4000
    assert parse_endpoint("239.255.0.1:5000", default_port=4000).port == 5000


def test_endpoint_str_forms() -> None:
    assert str(parse_endpoint("239.255.0.1:5000")) == "239.255.0.1:5000"
    assert str(parse_endpoint("[ff02::1%eth0]:5000")) == "[ff02::1%eth0]:5000"
    assert str(parse_endpoint("198.18.1.10,232.1.1.1:5000")) == "198.18.1.10,232.1.1.1:5000"
    assert str(parse_endpoint("2001:db8::10,[ff35::1]:5")) == "[2001:db8::10],[ff35::1]:5"


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("198.18.0.1:5000", ErrorCode.NOT_MULTICAST, "not a multicast address"),
        ("[2001:db8::1]:5000", ErrorCode.NOT_MULTICAST, "not a multicast address"),
        ("239.255.0.1,232.1.1.1:5000", ErrorCode.BAD_ADDRESS, "unicast sender"),
        ("0.0.0.0,232.1.1.1:5000", ErrorCode.BAD_ADDRESS, "unicast sender"),
        ("[::],[ff35::1]:5000", ErrorCode.BAD_ADDRESS, "unicast sender"),
        ("[ff15::2],[ff35::1]:5000", ErrorCode.BAD_ADDRESS, "unicast sender"),
        ("198.18.1.10,[ff35::1]:5000", ErrorCode.WRONG_FAMILY, "different IP versions"),
        ("[2001:db8::1],232.1.1.1:5000", ErrorCode.WRONG_FAMILY, "different IP versions"),
        ("239.255.0.1", ErrorCode.BAD_VALUE, "missing ':PORT'"),
        ("[ff15::1]", ErrorCode.BAD_VALUE, "missing ':PORT'"),
        ("239.255.0.1:", ErrorCode.BAD_VALUE, "port"),
        ("239.255.0.1:65536", ErrorCode.BAD_VALUE, "port '65536'"),
        ("239.255.0.1:-1", ErrorCode.BAD_VALUE, "port '-1'"),
        ("239.255.0.1:http", ErrorCode.BAD_VALUE, "port 'http'"),
        ("239.255.0.1:5 000", ErrorCode.BAD_VALUE, "port"),
        ("239.255.0.1:\u00b2", ErrorCode.BAD_VALUE, "port"),  # a digit, but not decimal
        ("239.255.0.1:" + "9" * 5000, ErrorCode.BAD_VALUE, "port"),
        ("ff15::1:5000", ErrorCode.BAD_ADDRESS, "brackets"),
        ("ff15::1", ErrorCode.BAD_ADDRESS, "brackets"),
        ("", ErrorCode.BAD_VALUE, "empty endpoint"),
        ("   ", ErrorCode.BAD_VALUE, "empty endpoint"),
        ("239.255.0.1%eth0:5000", ErrorCode.BAD_VALUE, "only valid on IPv6"),
        ("[239.255.0.1%eth0]:5000", ErrorCode.BAD_VALUE, "only valid on IPv6"),
        ("[ff02::1%]:5000", ErrorCode.BAD_VALUE, "empty zone"),
        ("[ff15::1:5000", ErrorCode.BAD_VALUE, "missing ']'"),
        ("[ff15::1]5000", ErrorCode.BAD_VALUE, "expected ':PORT'"),
        ("a,b,239.255.0.1:5000", ErrorCode.BAD_VALUE, "only one SOURCE"),
        (",239.255.0.1:5000", ErrorCode.BAD_ADDRESS, "source ''"),
        ("mcast.example:5000", ErrorCode.BAD_ADDRESS, "not a numeric"),
        ("239.255.0.256:5000", ErrorCode.BAD_ADDRESS, "not a numeric"),
    ],
)
def test_parse_endpoint_rejects(text: str, code: ErrorCode, fragment: str) -> None:
    with pytest.raises(McastValueError) as info:
        parse_endpoint(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.code is code
    assert fragment in str(err)


def test_parse_endpoint_rejects_non_text() -> None:
    with pytest.raises(McastValueError, match="empty endpoint"):
        parse_endpoint(None)  # type: ignore[arg-type]


def test_not_multicast_error_names_the_range_and_group() -> None:
    with pytest.raises(McastValueError) as info:
        parse_endpoint("198.18.0.1:5000")
    assert "224.0.0.0/4" in str(info.value)
    assert info.value.group == "198.18.0.1"
    with pytest.raises(McastValueError, match="ff00::/8"):
        Group(V6("2001:db8::1"))


def test_endpoint_validates_its_own_fields() -> None:
    g = Group(V4("232.1.1.1"))
    with pytest.raises(McastValueError, match="out of range") as info:
        Endpoint(group=g, port=70000)
    assert info.value.code is ErrorCode.BAD_VALUE
    with pytest.raises(McastValueError, match="different IP versions"):
        Endpoint(group=g, port=1, source=V6("2001:db8::1"))


def test_group_rejects_non_addresses() -> None:
    with pytest.raises(McastValueError, match="must be an ip_address") as info:
        Group("239.255.0.1")  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.BAD_ADDRESS


def test_group_parse_accepts_text_address_and_group() -> None:
    g = Group.parse("239.255.0.1")
    assert Group.parse(g) is g
    assert Group.parse(V4("239.255.0.1")) == g
    assert g.version == 4 and Group.parse("ff15::1").version == 6


def test_parse_ip_strips_brackets_and_names_what() -> None:
    assert parse_ip("[ff15::1]") == V6("ff15::1")
    with pytest.raises(McastValueError, match=r"^source 'x'"):
        parse_ip("x", what="source")


# --------------------------------------------------------------------------- properties

_v4_groups = st.builds(
    V4, st.integers(min_value=int(V4("224.0.0.0")), max_value=int(V4("239.255.255.255")))
)
_v6_groups = st.builds(V6, st.integers(min_value=0xFF << 120, max_value=(1 << 128) - 1))
_v4_sources = st.builds(V4, st.integers(min_value=1, max_value=(1 << 32) - 1)).filter(
    lambda a: not a.is_multicast
)
_v6_sources = st.builds(V6, st.integers(min_value=1, max_value=(1 << 128) - 1)).filter(
    lambda a: not a.is_multicast
)
_zones = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=1, max_size=15
)
_ports = st.integers(min_value=0, max_value=65535)


@st.composite
def endpoints(draw: st.DrawFn) -> Endpoint:
    source: V4 | V6 | None
    zone: str | None = None
    if draw(st.booleans()):
        group = Group(draw(_v4_groups))
        source = draw(st.none() | _v4_sources)
    else:
        group = Group(draw(_v6_groups))
        source = draw(st.none() | _v6_sources)
        zone = draw(st.none() | _zones)
    return Endpoint(group=group, port=draw(_ports), source=source, interface=zone)


@given(endpoints())
def test_endpoint_round_trips_through_its_text(ep: Endpoint) -> None:
    assert parse_endpoint(str(ep)) == ep


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_mcast_value_error(text: str) -> None:
    try:
        ep = parse_endpoint(text)
    except McastValueError as exc:
        assert str(exc)
        assert isinstance(exc.code, ErrorCode)
    else:
        assert isinstance(ep, Endpoint)


_endpointish = st.text(alphabet="0123456789abcdef.:,[]%f \u00b2", max_size=40)


@given(_endpointish)
def test_endpoint_like_text_parses_or_raises_mcast_value_error(text: str) -> None:
    with contextlib.suppress(McastValueError):
        parse_endpoint(text)


@given(_v4_groups | _v6_groups)
def test_every_multicast_address_is_a_group(addr: V4 | V6) -> None:
    g = Group(addr)
    assert str(g) == str(addr)
    assert isinstance(g.scope, Scope)


# --------------------------------------------------------------------------- scopes, SSM


@pytest.mark.parametrize(
    ("addr", "scope"),
    [
        ("224.0.0.1", Scope.LINK),
        ("224.0.0.251", Scope.LINK),
        ("224.0.0.255", Scope.LINK),
        ("224.0.1.1", Scope.GLOBAL),
        ("232.1.1.1", Scope.GLOBAL),
        ("233.252.0.1", Scope.GLOBAL),
        ("238.255.255.255", Scope.GLOBAL),
        ("239.0.0.1", Scope.ADMIN),
        ("239.191.255.255", Scope.ADMIN),
        ("239.192.0.1", Scope.ORGANIZATION),
        ("239.195.255.255", Scope.ORGANIZATION),
        ("239.196.0.0", Scope.ADMIN),
        ("239.254.255.255", Scope.ADMIN),
        ("239.255.0.1", Scope.SITE),
        ("239.255.255.255", Scope.SITE),
    ],
)
def test_ipv4_scopes(addr: str, scope: Scope) -> None:
    assert Group(V4(addr)).scope is scope


_V6_EXPECTED = {
    0x0: Scope.RESERVED, 0x1: Scope.INTERFACE, 0x2: Scope.LINK, 0x3: Scope.RESERVED,
    0x4: Scope.ADMIN, 0x5: Scope.SITE, 0x6: Scope.RESERVED, 0x7: Scope.RESERVED,
    0x8: Scope.ORGANIZATION, 0x9: Scope.RESERVED, 0xA: Scope.RESERVED, 0xB: Scope.RESERVED,
    0xC: Scope.RESERVED, 0xD: Scope.RESERVED, 0xE: Scope.GLOBAL, 0xF: Scope.RESERVED,
}


@pytest.mark.parametrize("nibble", range(16))
@pytest.mark.parametrize("flags", [0x0, 0x1, 0x3])
def test_ipv6_scope_nibble(nibble: int, flags: int) -> None:
    addr = V6(f"ff{flags:x}{nibble:x}::1")
    assert Group(addr).scope is _V6_EXPECTED[nibble]


@pytest.mark.parametrize(
    ("addr", "ssm"),
    [
        ("232.0.0.0", True),
        ("232.1.1.1", True),
        ("232.255.255.255", True),
        ("231.255.255.255", False),
        ("233.0.0.0", False),
        ("239.255.0.1", False),
        ("ff3e::1", True),
        ("ff35::8000:1", True),
        ("ff32::1", True),
        ("ff15::1", False),
        ("ff0e::1", False),
        ("ff1e::1", False),
        ("ff3e:1::1", False),  # RFC 4607: FF3x::/32 only (prefix length and prefix zero)
    ],
)
def test_is_ssm(addr: str, ssm: bool) -> None:
    assert Group(ipaddress.ip_address(addr)).is_ssm is ssm


def test_group_family() -> None:
    import socket

    assert Group.parse("239.255.0.1").family == socket.AF_INET
    assert Group.parse("ff15::1").family == socket.AF_INET6


@pytest.mark.parametrize(
    ("group", "ttl", "warns", "fragment"),
    [
        ("224.0.0.1", 1, False, ""),
        ("224.0.0.1", 2, True, "link-scope"),
        ("ff02::1", 64, True, "link-scope"),
        ("ff01::1", 5, True, "interface-scope"),
        ("ff01::1", 0, False, ""),
        ("ff00::1", 1, True, "reserved"),
        ("ff0f::1", 1, True, "ff15::/16"),
        ("239.255.0.1", 32, False, ""),
        ("ff15::1", 255, False, ""),
        ("232.1.1.1", 64, False, ""),
    ],
)
def test_scope_ttl_warning(group: str, ttl: int, warns: bool, fragment: str) -> None:
    msg = scope_ttl_warning(Group.parse(group), ttl)
    if warns:
        assert msg is not None and fragment in msg and group in msg
    else:
        assert msg is None


# --------------------------------------------------------------------------- interface specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("eth0", "eth0"),
        ("  veth-a ", "veth-a"),
        ("lo", "lo"),
        ("3", 3),
        (3, 3),
        (0, 0),
        ("198.18.0.1", V4("198.18.0.1")),
        ("fe80::1", V6("fe80::1")),
        ("a" * 15, "a" * 15),
        ("\u00b2", "\u00b2"),  # a digit to str.isdigit(), but a (legal) name to Linux
        ("007", 7),
    ],
)
def test_parse_interface_spec(spec: str | int, expected: object) -> None:
    assert parse_interface_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (-1, "negative"),
        ("", "empty interface"),
        ("   ", "empty interface"),
        ("a" * 16, "not a valid interface"),
        ("eth 0", "not a valid interface"),
        ("eth0/1", "not a valid interface"),
        ("ab:cd", "not a valid interface"),
        ("9" * 5000, "not a valid interface"),
    ],
)
def test_parse_interface_spec_rejects(spec: str | int, fragment: str) -> None:
    with pytest.raises(McastValueError, match=fragment) as info:
        parse_interface_spec(spec)
    assert info.value.code is ErrorCode.BAD_VALUE


@given(st.text(max_size=20) | st.integers(min_value=-(1 << 40), max_value=1 << 40))
def test_parse_interface_spec_never_raises_anything_else(spec: str | int) -> None:
    try:
        out = parse_interface_spec(spec)
    except McastValueError:
        return
    assert isinstance(out, str | int | V4 | V6)
