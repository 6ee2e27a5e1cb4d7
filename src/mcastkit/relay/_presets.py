"""Presets: the discovery protocols people relay most, as ready rules.

Owns: the preset names and the groups and ports behind each (mDNS in both families,
SSDP in both families, Sonos discovery).
Must not: open sockets or read files.
"""

from __future__ import annotations

from typing import Final

from mcastkit import ErrorCode, McastValueError, UnsupportedError, parse_endpoint

from ._rules import Rule

__all__ = ["PRESETS", "preset_rules"]

#: preset name -> (endpoints, what it is for)
PRESETS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "mdns": (("224.0.0.251:5353", "[ff02::fb]:5353"),
             "Multicast DNS / DNS-SD (AirPlay, Chromecast, printers, HomeKit; RFC 6762)"),
    "ssdp": (("239.255.255.250:1900", "[ff02::c]:1900", "[ff05::c]:1900"),
             "SSDP / UPnP discovery (DLNA, smart TVs, Sonos's UPnP side)"),
    "sonos": ((), "Sonos discovery: SSDP plus the broadcast on udp/6969"),
}


def preset_rules(name: str, *, rate_limit_pps: float | None = None) -> list[Rule]:
    """The rules of preset ``name``.

    Raises:
        McastValueError: no such preset (the message lists them).
        UnsupportedError: ``sonos``: broadcast relaying needs broadcast in mcastkit's core,
            which this build does not have yet (the message names the workaround).
    """
    key = name.strip().lower()
    if key not in PRESETS:
        raise McastValueError(f"unknown preset {name!r}; choose one of: "
                              + ", ".join(PRESETS), code=ErrorCode.BAD_VALUE)
    if key == "sonos":
        raise UnsupportedError(
            "preset sonos relays the broadcast on udp/6969, which needs broadcast support "
            "in mcastkit's socket core (not in this build yet); use --preset ssdp for the "
            "SSDP half of Sonos discovery meanwhile")
    eps = tuple(parse_endpoint(e) for e in PRESETS[key][0])
    return [Rule(name=key, endpoints=eps, rate_limit_pps=rate_limit_pps)]
