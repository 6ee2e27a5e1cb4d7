"""Presets: the discovery protocols people relay most, as ready rules.

Owns: the preset names and the groups and ports behind each (mDNS in both families,
SSDP in both families, Sonos discovery: SSDP plus the broadcast on udp/6969).
Must not: open sockets or read files.
"""

from __future__ import annotations

from typing import Final

from mcastkit import ErrorCode, McastValueError

from ._rules import Rule, split_groups

__all__ = ["PRESETS", "preset_rules"]

#: preset name -> (endpoints, what it is for)
PRESETS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "mdns": (("224.0.0.251:5353", "[ff02::fb]:5353"),
             "Multicast DNS / DNS-SD (AirPlay, Chromecast, printers, HomeKit; RFC 6762)"),
    "ssdp": (("239.255.255.250:1900", "[ff02::c]:1900", "[ff05::c]:1900"),
             "SSDP / UPnP discovery (DLNA, smart TVs, Sonos's UPnP side)"),
    "sonos": (("239.255.255.250:1900", "255.255.255.255:6969"),
              "Sonos discovery: SSDP (IPv4) plus the broadcast on udp/6969"),
}
"""The presets: name -> (endpoints, what they are for), as ``--preset`` takes them."""


def preset_rules(name: str, *, rate_limit_pps: float | None = None) -> list[Rule]:
    """The rules of preset ``name``.

    Args:
        name: a key of :data:`PRESETS` (any case).
        rate_limit_pps: a rate limit for the rules in datagrams per second, or None.

    Returns:
        The preset's rules (one rule holding its groups).

    Raises:
        McastValueError: no such preset (the message lists them).
    """
    key = name.strip().lower()
    if key not in PRESETS:
        raise McastValueError(f"unknown preset {name!r}; choose one of: "
                              + ", ".join(PRESETS), code=ErrorCode.BAD_VALUE)
    eps, ports = split_groups(PRESETS[key][0])
    return [Rule(name=key, endpoints=eps, broadcast_ports=ports,
                 rate_limit_pps=rate_limit_pps)]
