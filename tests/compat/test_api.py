"""The shape of the API, defaults, config parsing and error objects (no sockets needed,
except where a test activates, which then runs in the ``netns`` fixture)."""

from __future__ import annotations

import dataclasses
import errno

import pytest

import mcastkit
from mcastkit import McastError
from mcastkit.compat import (
    IPWorksError,
    MCast,
    MCastDataInEventParams,
    MCastError,
    MCastErrorEventParams,
    MCastReadyToSendEventParams,
    _codes,
)
from mcastkit.compat._settings import SETTINGS
from tests.support.addrs import G4, SRC4, asm4
from tests.support.compat import run_python

PROPERTY_DEFAULTS = {
    "accept_data": True,
    "active": False,
    "local_host": "",
    "local_port": 0,
    "loopback": True,
    "multicast_group": "",
    "receive_interface": "",
    "remote_host": "",
    "remote_port": 0,
    "send_interface": "",
    "time_to_live": 7,
}

SETTING_DEFAULTS = {
    "CaptureIPPacketInfo": "False",
    "DestinationAddress": "",
    "DontFragment": "False",
    "LocalHost": "",
    "LocalPort": "0",
    "MaxPacketSize": "2048",
    "QOSDSCPValue": "",
    "QOSTrafficType": "0",
    "ShareLocalPort": "False",
    "SourceIPAddress": "",
    "SourceMacAddress": "",
    "UseConnection": "False",
    "UseIPv6": "False",
    "AbsoluteTimeout": "False",
    "FirewallData": "",
    "CodePage": "65001",
    "ProcessIdleEvents": "False",
    "SelectWaitMillis": "20",
    "UseInternalSecurityAPI": "False",
}

WRITABLE_SAMPLES = {
    "accept_data": False,
    "local_host": "127.0.0.1",
    "local_port": 5999,
    "loopback": False,
    "multicast_group": asm4(3, 3),
    "receive_interface": "lo",
    "remote_host": asm4(3, 4),
    "remote_port": 6000,
    "send_interface": "lo",
    "time_to_live": 33,
}


def test_all_24_settings_are_in_the_table() -> None:
    assert len(SETTINGS) == 24  # the vendor's 23 and KernelDrops
    assert set(SETTING_DEFAULTS) | {"BuildInfo", "LicenseInfo", "InBufferSize", "OutBufferSize",
                                    "KernelDrops"} == {s.name for s in SETTINGS}


@pytest.mark.parametrize(("name", "default"), sorted(PROPERTY_DEFAULTS.items()))
def test_property_default_in_three_forms(name: str, default: object) -> None:
    mc = MCast()
    assert getattr(mc, f"get_{name}")() == default
    assert getattr(mc, name) == default
    assert callable(getattr(mc, f"set_{name}"))


@pytest.mark.parametrize(("name", "value"), sorted(WRITABLE_SAMPLES.items()))
def test_property_setter_and_property_agree(name: str, value: object) -> None:
    a, b = MCast(), MCast()
    getattr(a, f"set_{name}")(value)
    setattr(b, name, value)
    assert getattr(a, f"get_{name}")() == getattr(b, name) == value


def test_data_to_send_is_write_only() -> None:
    mc = MCast()
    with pytest.raises(AttributeError):
        _ = mc.data_to_send
    assert not hasattr(mc, "get_data_to_send")
    with pytest.raises(MCastError) as ei:
        mc.data_to_send = b"x"  # not active
    assert ei.value.code == 109


@pytest.mark.parametrize(("name", "default"), sorted(SETTING_DEFAULTS.items()))
def test_setting_default(name: str, default: str) -> None:
    assert MCast().config(name) == default


@pytest.mark.parametrize("spelling", ["selectwaitmillis", "SELECTWAITMILLIS", "SelectWaitMillis",
                                      " selectWaitMillis "])
def test_setting_names_are_case_insensitive(spelling: str) -> None:
    mc = MCast()
    assert mc.config(f"{spelling}=77") == ""
    assert mc.config(spelling) == "77"
    assert mc.config("SelectWaitMillis") == "77"


@pytest.mark.parametrize(("text", "want"), [("true", "True"), ("1", "True"), ("YES", "True"),
                                            ("on", "True"), ("False", "False"), ("0", "False"),
                                            ("no", "False")])
def test_booleans_read_back_as_true_false(text: str, want: str) -> None:
    mc = MCast()
    mc.config(f"DontFragment={text}")
    assert mc.config("DontFragment") == want


@pytest.mark.parametrize(("setting", "value"), [
    ("AbsoluteTimeout", "True"), ("FirewallData", "anything"), ("ProcessIdleEvents", "True"),
    ("UseInternalSecurityAPI", "True"), ("CodePage", "1252"), ("MaxPacketSize", "9000"),
    ("QOSDSCPValue", "46"), ("InBufferSize", "65536"), ("OutBufferSize", "32768"),
    ("SourceIPAddress", "127.0.0.1"), ("LocalHost", "127.0.0.1"), ("LocalPort", "5001"),
])
def test_setting_round_trip(setting: str, value: str) -> None:
    mc = MCast()
    assert mc.config(f"{setting}={value}") == ""
    assert mc.config(setting) == value


def test_local_host_and_port_settings_mirror_the_properties() -> None:
    mc = MCast()
    mc.local_port = 4242
    mc.config("LocalHost=127.0.0.1")
    assert mc.config("LocalPort") == "4242"
    assert mc.local_host == "127.0.0.1"


@pytest.mark.parametrize(("text", "number"), [("BestEffort", 0), ("background", 1),
                                              ("ExcellentEffort", 2), ("audio_video", 3),
                                              ("Voice", 4), ("CONTROL", 5), ("3", 3)])
def test_qos_traffic_type_names(text: str, number: int) -> None:
    mc = MCast()
    mc.config(f"QOSTrafficType={text}")
    assert mc.config("QOSTrafficType") == str(number)


def test_unknown_setting_raises_120() -> None:
    mc = MCast()
    for arg in ("NoSuchSetting", "NoSuchSetting=1"):
        with pytest.raises(MCastError) as ei:
            mc.config(arg)
        assert ei.value.code == 120
        assert "NoSuchSetting" in ei.value.message


@pytest.mark.parametrize("name", ["DestinationAddress", "BuildInfo", "LicenseInfo"])
def test_read_only_settings(name: str) -> None:
    mc = MCast()
    with pytest.raises(MCastError) as ei:
        mc.config(f"{name}=x")
    assert ei.value.code == 122


def test_build_and_license_info() -> None:
    mc = MCast()
    assert mcastkit.__version__ in mc.config("BuildInfo")
    assert "no license" in mc.config("LicenseInfo")


@pytest.mark.parametrize("arg", ["SelectWaitMillis=-1", "MaxPacketSize=0", "MaxPacketSize=70000",
                                 "CodePage=99999", "QOSDSCPValue=64", "DontFragment=maybe",
                                 "QOSTrafficType=Loud", "SourceIPAddress=not-an-ip",
                                 f"SourceIPAddress={G4}", "LocalPort=65536"])
def test_bad_setting_values_raise_121_and_change_nothing(arg: str) -> None:
    mc = MCast()
    name = arg.split("=")[0]
    before = mc.config(name)
    with pytest.raises(MCastError) as ei:
        mc.config(arg)
    assert ei.value.code == 121
    assert mc.config(name) == before


@pytest.mark.parametrize(("name", "value"), [("time_to_live", 256), ("time_to_live", -1),
                                             ("local_port", 70000), ("remote_port", -5),
                                             ("multicast_group", SRC4),
                                             ("multicast_group", "not an address")])
def test_bad_property_values_raise_121(name: str, value: object) -> None:
    mc = MCast()
    before = getattr(mc, name)
    with pytest.raises(MCastError) as ei:
        setattr(mc, name, value)
    assert ei.value.code == 121
    assert getattr(mc, name) == before


def test_source_mac_address_is_parsed_and_a_malformed_one_refused() -> None:
    mc = MCast()
    mc.config("SourceMacAddress=02-00-5E-10-00-01")
    assert mc.config("SourceMacAddress") == "02:00:5e:10:00:01"
    for bad in ("02:00:5e:10:00", "zz:00:5e:10:00:01", "01:00:5e:00:00:01"):
        with pytest.raises(MCastError) as ei:
            mc.config(f"SourceMacAddress={bad}")
        assert ei.value.code == 121 and "SourceMacAddress" in ei.value.message
        assert "02:00:5e:10:00:01" in ei.value.message or "group" in ei.value.message
        assert mc.config("SourceMacAddress") == "02:00:5e:10:00:01"
    mc.config("SourceMacAddress=")  # empty: the normal send path
    assert mc.config("SourceMacAddress") == ""


def test_send_before_activation_raises_109() -> None:
    with pytest.raises(MCastError) as ei:
        MCast().send(b"x")
    assert ei.value.code == 109
    assert ei.value.message.startswith("The component must be active")


def test_error_class_shape() -> None:
    assert IPWorksError is MCastError
    assert issubclass(MCastError, McastError)
    e = MCastError(109, "The component must be active")
    assert (e.code, e.message, e.errno) == (109, "The component must be active", None)
    assert str(e) == "The component must be active"
    assert mcastkit.MCastError is MCastError and mcastkit.IPWorksError is MCastError
    assert MCastError(10035).message == "Operation would block"


@pytest.mark.parametrize(("err", "number"), [
    (errno.EINTR, 10004), (errno.EACCES, 10013), (errno.EINVAL, 10022), (errno.EMFILE, 10024),
    (errno.EAGAIN, 10035), (errno.EMSGSIZE, 10040), (errno.EAFNOSUPPORT, 10047),
    (errno.EADDRINUSE, 10048), (errno.EADDRNOTAVAIL, 10049), (errno.ENETDOWN, 10050),
    (errno.ENETUNREACH, 10051), (errno.ENOBUFS, 10055), (errno.ENOTCONN, 10057),
    (errno.ETIMEDOUT, 10060), (errno.ECONNREFUSED, 10061), (errno.EHOSTUNREACH, 10065),
    (-2, 11001),
])
def test_errno_maps_to_winsock_number(err: int, number: int) -> None:
    e = _codes.from_core(OSError(err, "x"))
    assert e.code == number
    assert e.errno == err
    assert e.message.startswith(f"[{number}] ")


def test_core_errors_keep_errno_and_core_code() -> None:
    from mcastkit import WouldBlockError

    core = WouldBlockError(errno.EAGAIN, "send buffer full", op="send")
    e = _codes.from_core(core)
    assert (e.code, e.errno, e.core_code) == (10035, errno.EAGAIN, int(core.code))


def test_event_params_are_frozen() -> None:
    d = MCastDataInEventParams(b"x", SRC4, 5)
    e = MCastErrorEventParams(10040, "too long")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.datagram = b"y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.error_code = 1  # type: ignore[misc]
    assert MCastReadyToSendEventParams() == MCastReadyToSendEventParams()


def test_handlers_are_attributes_and_none_removes() -> None:
    mc = MCast()
    mc.on_data_in = print
    assert mc.on_data_in is print and mc.get_on_data_in() is print
    mc.on_data_in = None
    assert mc.on_data_in is None


def test_import_mcastkit_stays_light() -> None:
    code = ("import sys, mcastkit; assert 'mcastkit.compat' not in sys.modules; "
            "from mcastkit import MCast; assert 'mcastkit.compat' in sys.modules; "
            "assert 'asyncio' not in sys.modules and 'argparse' not in sys.modules; "
            "print(MCast.__name__)")
    assert run_python(code) == "MCast"


def test_unknown_module_attribute_still_raises() -> None:
    with pytest.raises(AttributeError):
        _ = mcastkit.NoSuchThing  # type: ignore[attr-defined]


def test_do_events_when_inactive_returns() -> None:
    mc = MCast()
    mc.config("SelectWaitMillis=0")
    mc.do_events()  # nothing to do, no error


def test_every_row_is_reachable_and_names_are_spelled_only_in_the_table() -> None:
    """Issue 13 item 4: a knob is one row. Each property row has its three forms on MCast,
    and no other compat module spells a setting name in quotes (nothing dispatches on
    names outside the table)."""
    import pathlib

    from mcastkit.compat import _settings

    for row in _settings.ROWS:
        if row.prop:
            assert isinstance(getattr(MCast, row.prop), property)
            assert callable(getattr(MCast, f"get_{row.prop}"))
            assert callable(getattr(MCast, f"set_{row.prop}"))
    here = pathlib.Path(_settings.__file__).parent
    for path in here.glob("*.py"):
        if path.name == "_settings.py":
            continue
        text = path.read_text()
        for row in _settings.SETTINGS:
            for quote in ('"', "'"):
                assert f"{quote}{row.name}{quote}" not in text, (path.name, row.name)
