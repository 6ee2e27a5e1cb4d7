"""Receive datagrams from a multicast group with the IPWorks-style MCast class (events).

    scripts/in-netns python examples/compat_receiver.py --group 239.255.0.8 --port 5008 \\
        --interface lo --count 3

Prints "ready" once joined, then one line per datagram; exits after --count datagrams
or --timeout seconds.
"""

from __future__ import annotations

import argparse
import sys
import time

from mcastkit.compat import MCast, MCastDataInEventParams, MCastError, MCastErrorEventParams


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", default="239.255.0.8")
    ap.add_argument("--port", type=int, default=5008)
    ap.add_argument("--interface", default="lo", help="interface to join on")
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--ipv6", action="store_true")
    args = ap.parse_args()
    received: list[bytes] = []
    mc = MCast()

    def on_data_in(e: MCastDataInEventParams) -> None:
        received.append(e.datagram)
        print(f"got {e.datagram.decode(errors='replace')!r} from "
              f"{e.source_address}:{e.source_port} (to {mc.config('DestinationAddress')})")

    def on_error(e: MCastErrorEventParams) -> None:
        print(f"error {e.error_code}: {e.description}")

    mc.on_data_in = on_data_in
    mc.on_error = on_error
    try:
        mc.config(f"UseIPv6={args.ipv6}")
        mc.config("CaptureIPPacketInfo=True")
        mc.receive_interface = args.interface
        mc.local_port = args.port
        mc.multicast_group = args.group
        mc.active = True
    except MCastError as e:
        print(f"error [{e.code}] {e.message}")
        return 1
    print("ready", flush=True)
    sys.stdout.flush()
    deadline = time.monotonic() + args.timeout
    while len(received) < args.count and time.monotonic() < deadline:
        mc.do_events()
        sys.stdout.flush()
    mc.active = False
    return 0 if len(received) >= args.count else 1


if __name__ == "__main__":
    raise SystemExit(main())
