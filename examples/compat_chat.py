"""Two IPWorks-style MCast objects chatting over a multicast group, driven by events only.

Run on loopback inside a namespace (nothing leaves it)::

    scripts/in-netns python examples/compat_chat.py [--group 239.255.0.7] [--interface lo]

Code written for ``ipworks.MCast`` runs after changing its import to this one.
"""

from __future__ import annotations

import argparse
import time

from mcastkit.compat import MCast, MCastDataInEventParams, MCastError, MCastErrorEventParams


def make_peer(name: str, group: str, port: int, interface: str, inbox: list[str]) -> MCast:
    mc = MCast()

    def on_data_in(e: MCastDataInEventParams) -> None:
        text = e.datagram.decode()
        if not text.startswith(name + ":"):  # loopback also returns our own messages
            inbox.append(text)
            print(f"[{name}] got {text!r} from {e.source_address}:{e.source_port}")

    def on_error(e: MCastErrorEventParams) -> None:
        print(f"[{name}] error {e.error_code}: {e.description}")

    mc.on_data_in = on_data_in
    mc.on_error = on_error
    mc.config("ShareLocalPort=True")  # both peers listen on the same port
    mc.config("SelectWaitMillis=10")
    mc.receive_interface = interface
    mc.send_interface = interface
    mc.local_port = port
    mc.multicast_group = group
    mc.remote_host = group
    mc.remote_port = port
    mc.active = True
    return mc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", default="239.255.0.7")
    ap.add_argument("--port", type=int, default=5007)
    ap.add_argument("--interface", default="lo")
    args = ap.parse_args()
    inbox_a: list[str] = []
    inbox_b: list[str] = []
    try:
        alice = make_peer("alice", args.group, args.port, args.interface, inbox_a)
        bob = make_peer("bob", args.group, args.port, args.interface, inbox_b)
    except MCastError as e:
        print(f"cannot start: [{e.code}] {e.message}")
        return 1
    alice.send("alice: hello bob")
    bob.send("bob: hello alice")
    deadline = time.monotonic() + 5
    while (not inbox_a or not inbox_b) and time.monotonic() < deadline:
        alice.do_events()
        bob.do_events()
    alice.active = bob.active = False
    ok = bool(inbox_a and inbox_b)
    print("both sides heard each other" if ok else "timed out")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
