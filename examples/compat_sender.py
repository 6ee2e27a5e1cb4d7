"""Send a few datagrams to a multicast group with the IPWorks-style MCast class.

    scripts/in-netns python examples/compat_sender.py --group 239.255.0.8 --port 5008 \\
        --interface lo --count 3 --ttl 1

Pair it with examples/compat_receiver.py (start the receiver first).
"""

from __future__ import annotations

import argparse

from mcastkit.compat import MCast, MCastError


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", default="239.255.0.8")
    ap.add_argument("--port", type=int, default=5008)
    ap.add_argument("--interface", default="lo", help="outgoing interface (name or address)")
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--ttl", type=int, default=1)
    ap.add_argument("--ipv6", action="store_true")
    args = ap.parse_args()
    mc = MCast()
    try:
        mc.config(f"UseIPv6={args.ipv6}")
        mc.send_interface = args.interface
        mc.time_to_live = args.ttl
        mc.remote_host = args.group
        mc.remote_port = args.port
        mc.active = True
        for i in range(args.count):
            mc.send(f"message {i + 1} of {args.count}")
            print(f"sent message {i + 1} to {args.group}:{args.port}")
    except MCastError as e:
        print(f"error [{e.code}] {e.message}")
        return 1
    finally:
        mc.active = False
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
