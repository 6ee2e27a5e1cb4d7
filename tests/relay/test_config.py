"""The TOML configuration: what it accepts, and errors that name the file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit import McastValueError
from mcastkit.relay import ConfigDraft, ConfigError, load_config, preset_rules
from mcastkit.relay._config import parse_host_port
from mcastkit.relay._ratelimit import RateLimiter
from mcastkit.relay._suppress import LoopGuard
from tests.support.addrs import G4, SSDP4, SSM4, asm4, lab_host


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "relay.toml"
    p.write_text(textwrap.dedent(text))
    return str(p)


FULL = f"""\
    interfaces = ["eth1", "eth2"]
    presets = ["mdns"]
    ttl = 2
    rate_limit = 100
    health = "127.0.0.1:9101"

    [[interface]]
    name = "guest0"
    mode = "listen-only"

    [tunnel]
    connect = "{lab_host(42, 2)}:7777"
    key_file = "relay.key"
    mtu = 1400

    [[rule]]
    name = "sensors"
    groups = ["{asm4(10, 1)}:5000", "{lab_host(1, 10)},{SSM4}:5000"]
    allow_sources = ["{lab_host(1, 0)}/24"]
    rate_limit = 50

    [[rule.target]]
    sources = "{lab_host(1, 128)}/25"
    interfaces = ["eth2"]
"""


def test_full_config(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, FULL))
    assert [(i.name, i.mode) for i in cfg.interfaces] == [
        ("eth1", "both"), ("eth2", "both"), ("guest0", "listen-only")]
    assert [r.name for r in cfg.rules] == ["mdns", "sensors"]
    assert cfg.ttl == 2 and cfg.rate_limit_pps == 100 and cfg.health == ("127.0.0.1", 9101)
    assert cfg.tunnel is not None and cfg.tunnel.mode == "connect" and cfg.tunnel.mtu == 1400
    s = cfg.rules[1]
    assert s.rate_limit_pps == 50 and len(s.endpoints) == 2
    import ipaddress
    assert s.targets_for(ipaddress.ip_address(lab_host(1, 200))) == ("eth2",)
    assert s.targets_for(ipaddress.ip_address(lab_host(1, 20))) is None
    assert not s.source_allowed(ipaddress.ip_address(lab_host(2, 1)))


@pytest.mark.parametrize(("text", "line", "words"), [
    ('interfaces = ["a", "b"]\nttl = 300\n', 2, "ttl 300"),
    ('interfaces = ["a", "b"]\nbogus = 1\n', 2, "unknown setting 'bogus'"),
    ('interfaces = ["a", "b"]\n\n[[rule]]\nname = "x"\ngroups = ["10.0.0.1:5"]\n', 5,
     "not a multicast"),
    (f'interfaces = ["a", "b"]\n[[rule]]\ngroups = ["{G4}:5"]\n[[rule]]\n'
     f'groups = ["{asm4(0, 2)}:5"]\nallow_sources = ["nonsense"]\n', 6, "nonsense"),
    ('interfaces = ["a", "b"]\n[tunnel]\nlisten = 7777\nkey_file = "k"\nmtu = 10\n', 2,
     "mtu 10"),
    ('interfaces = ["a", "b"]\n[tunnel]\nkey_file = "k"\n', 2, "exactly one of"),
    ('x = [1,\n2\n', 2, "TOML syntax"),
    ('interfaces = ["a", "b"]\n[[interface]]\nname = "c"\nmode = "sideways"\n', 4,
     "sideways"),
    ('interfaces = "a"\npresets = ["bonjour"]\n', 2, "unknown preset"),
    ('interfaces = ["a", "b"]\nttl = "one"\n', 2, "whole number"),
])
def test_errors_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert ei.value.line == line, str(ei.value)
    assert f"{path}:{line}:" in str(ei.value)
    assert words in str(ei.value)


def test_contradictions_name_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, 'interfaces = ["a"]\npresets = ["mdns"]\n')
    with pytest.raises(ConfigError, match="at least two interfaces") as ei:
        load_config(path)
    assert str(ei.value).startswith(path)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.toml"))


def test_rule_interface_must_be_a_relay_interface(tmp_path: Path) -> None:
    path = _write(tmp_path, f'interfaces = ["a", "b"]\n[[rule]]\ngroups = ["{G4}:5"]\n'
                            'interfaces = ["c"]\n')
    with pytest.raises(ConfigError, match="'c' is not one of the relay's interfaces"):
        load_config(path)


def test_presets() -> None:
    (mdns,) = preset_rules("mdns")
    assert {str(e) for e in mdns.endpoints} == {"224.0.0.251:5353", "[ff02::fb]:5353"}
    (ssdp,) = preset_rules("SSDP")
    assert f"{SSDP4}:1900" in {str(e) for e in ssdp.endpoints}
    (sonos,) = preset_rules("sonos")
    assert {str(e) for e in sonos.endpoints} == {f"{SSDP4}:1900"}
    assert sonos.broadcast_ports == (6969,)
    with pytest.raises(McastValueError, match="mdns, ssdp, sonos"):
        preset_rules("upnp")


def test_loop_guard_rules() -> None:
    now = [0.0]
    g = LoopGuard(2.0, clock=lambda: now[0], max_entries=3)
    assert not g.check(G4, 5, b"x", "a")  # first time: relay
    assert g.check(G4, 5, b"x", "b")  # came back on another interface: loop
    assert not g.check(G4, 5, b"x", "a")  # repeated by its sender: relay
    assert not g.check(G4, 6, b"x", "b")  # other port: another datagram
    now[0] = 5.0  # the window passed
    assert not g.check(G4, 5, b"x", "b")
    for i in range(5):
        g.check("g", i, b"y", "a")
    assert len(g) <= 3 and g.evictions >= 1
    g.set_own_addresses([(lab_host(1, 1), "a"), ("fe80::1", "b")])
    assert g.is_own_echo(lab_host(1, 1), "b") and not g.is_own_echo(lab_host(1, 1), "a")
    assert g.is_own_echo("fe80::1%3", "a") and not g.is_own_echo(lab_host(1, 9), "b")


def test_rate_limiter() -> None:
    now = [0.0]
    r = RateLimiter(10, clock=lambda: now[0])
    assert sum(r.allow("g") for _ in range(100)) == 10  # a burst of one second's worth
    now[0] = 0.5
    assert sum(r.allow("g") for _ in range(100)) == 5
    assert r.allow("other")


@given(st.text(max_size=40))
def test_parse_host_port_raises_only_value_errors(text: str) -> None:
    try:
        _host, port = parse_host_port(text, "x", port_only_ok=True)
    except McastValueError:
        return
    assert 0 <= port <= 65535


@given(st.sampled_from([lab_host(1, 1), "::", "fe80::1", "relay.example.net", ""]),
       st.integers(0, 65535))
def test_parse_host_port_round_trip(host: str, port: int) -> None:
    text = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}") if host else str(port)
    assert parse_host_port(text, "x", port_only_ok=True) == (host, port)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]="\\n #.,:abcdefgrulentipo0123456789')),
               max_size=120))
def test_config_reader_raises_only_config_errors(tmp_path_factory: pytest.TempPathFactory,
                                                 text: str) -> None:
    p = tmp_path_factory.mktemp("cfg") / "r.toml"
    p.write_text(text)
    try:
        load_config(str(p))
    except ConfigError as exc:
        assert str(exc).startswith(str(p))


def test_broadcast_ports_in_a_rule(tmp_path: Path) -> None:
    path = _write(tmp_path, 'interfaces = ["a", "b"]\n[[rule]]\nname = "disc"\n'
                            f'groups = ["255.255.255.255:6969", "{G4}:5000"]\n'
                            'broadcast_ports = [7000, 6969]\n')
    (rule,) = load_config(path).rules
    assert [str(e) for e in rule.endpoints] == [f"{G4}:5000"]
    assert rule.broadcast_ports == (6969, 7000)


@pytest.mark.parametrize(("body", "line", "words"), [
    ('broadcast_ports = [0]', 4, "1-65535"),
    ('broadcast_ports = ["x"]', 4, "1-65535"),
    ('groups = ["255.255.255.255:70000"]', 4, "1-65535"),
    ("broadcast_ports = []", 3, r"or broadcast_ports = \[PORT"),
])
def test_bad_broadcast_ports_name_the_line(tmp_path: Path, body: str, line: int,
                                           words: str) -> None:
    path = _write(tmp_path, f'interfaces = ["a", "b"]\n\n[[rule]]\n{body}\n')
    with pytest.raises(ConfigError, match=words) as ei:
        load_config(path)
    assert ei.value.line == line


def test_a_broadcast_port_belongs_to_one_rule(tmp_path: Path) -> None:
    path = _write(tmp_path, 'interfaces = ["a", "b"]\npresets = ["sonos"]\n'
                            '[[rule]]\nbroadcast_ports = [6969]\n')
    with pytest.raises(ConfigError, match="broadcast port 6969 is in rule 'sonos'"):
        load_config(path)


def test_overlapping_presets_keep_each_group_once() -> None:
    d = ConfigDraft()
    d.add_interface("a")
    d.add_interface("b")
    for p in ("ssdp", "sonos", "sonos"):
        d.add_preset(p)
    d.add_broadcast_ports([6969, 7000, 7000])
    cfg = d.build()
    by = {r.name: r for r in cfg.rules}
    assert set(by) == {"ssdp", "sonos", "bcast7000"}
    assert by["sonos"].endpoints == () and by["sonos"].broadcast_ports == (6969,)
    assert f"{SSDP4}:1900" in {str(e) for e in by["ssdp"].endpoints}
