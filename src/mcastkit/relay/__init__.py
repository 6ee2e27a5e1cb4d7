"""mcastkit.relay: carry multicast across VLANs, containers, VPNs and unicast-only networks.

A relay receives the datagrams of chosen groups (any-source or source-specific, IPv4 and
IPv6) on some interfaces and sends them, with their group and port, on the others, and/or
through an encrypted UDP tunnel to another relay (ChaCha20-Poly1305, pre-shared key,
replay window). Storm rules (own-address check, a recent-datagram cache, TTL 1 output)
keep two relays or bridged interfaces from looping. Everything is counted per rule and
direction. The ``mcastkit relay`` command is built on this module; docs/relay.md has the
recipes, the security model, the storm rules and every counter.

Example (two interfaces, mDNS both families and one group)::

    import asyncio
    from mcastkit.relay import Relay, RelayConfig, InterfaceSpec, Rule, preset_rules
    from mcastkit import parse_endpoint

    async def main() -> None:
        cfg = RelayConfig(
            interfaces=(InterfaceSpec(name="eth1"), InterfaceSpec(name="eth2")),
            rules=(*preset_rules("mdns"),
                   Rule(name="sensors", endpoints=(parse_endpoint("239.255.10.1:5000"),))))
        async with Relay(cfg) as relay:
            await relay.wait_closed()

    asyncio.run(main())

Needs the ``relay`` extra for the tunnel and TOML on Python 3.10
(``pip install 'mcastkit[relay]'``).
"""

from __future__ import annotations

from ._config import ConfigDraft as ConfigDraft
from ._config import ConfigError as ConfigError
from ._config import load_config as load_config
from ._config import read_config as read_config
from ._engine import Relay as Relay
from ._presets import PRESETS as PRESETS
from ._presets import preset_rules as preset_rules
from ._rules import InterfaceSpec as InterfaceSpec
from ._rules import RelayConfig as RelayConfig
from ._rules import Rule as Rule
from ._rules import TunnelSpec as TunnelSpec
from ._stats import RelayStats as RelayStats
from ._wire import load_key_file as load_key_file
from ._wire import make_key_file as make_key_file

__all__ = [
    "PRESETS",
    "ConfigDraft",
    "ConfigError",
    "InterfaceSpec",
    "Relay",
    "RelayConfig",
    "RelayStats",
    "Rule",
    "TunnelSpec",
    "load_config",
    "load_key_file",
    "make_key_file",
    "preset_rules",
    "read_config",
]
