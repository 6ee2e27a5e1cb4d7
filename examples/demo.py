"""The loopback demo behind `make demo`: a receiver joins two groups on `lo`, a sender
sends to both, and the receiver prints every datagram with its metadata.

Runs in a fresh network namespace (scripts/in-netns) so nothing leaves the machine.
"""

from __future__ import annotations

import sys

from mcastkit import MulticastSocket

GROUPS = ("239.255.0.1", "239.255.0.2")


def main() -> int:
    with MulticastSocket(4, interface="lo", metadata=True) as rx, \
            MulticastSocket(4, interface="lo", ttl=1) as tx:
        port = rx.bind(0)[1]
        # Without a bound address, Linux sends from 0.0.0.0 on `lo` (127.0.0.1 is
        # host-scoped); binding the sender shows a real source address.
        tx.bind(0, "127.0.0.1")
        for g in GROUPS:
            m = rx.join(g)
            print(f"receiver joined {m.group} on {m.ifname} (ifindex {m.ifindex}), port {port}")
        sent = 0
        for i in range(3):
            for g in GROUPS:
                tx.sendto(f"hello #{i} to {g}".encode(), g, port)
                sent += 1
        print(f"sender sent {sent} datagrams (TTL 1, loopback on)")
        for _ in range(sent):
            d = rx.recv(timeout_s=2.0)
            print(f"received {d.data.decode()!r:28} from {d.source}:{d.port} "
                  f"group={d.group} ifindex={d.interface} ttl={d.ttl}")
        s = rx.stats
        print(f"stats: {s.datagrams} datagrams, {s.bytes} bytes, kernel drops {s.kernel_drops}, "
              f"filtered {s.filtered}, truncated {s.truncated}")
    return 0 if s.datagrams == sent else 1


if __name__ == "__main__":
    sys.exit(main())
