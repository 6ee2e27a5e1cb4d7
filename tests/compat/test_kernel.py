"""MCast against the real kernel on loopback, each test in a fresh namespace (``netns``).

Non-delivery is proven with a sentinel sent after the forbidden datagram, never a sleep.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable

import pytest

from mcastkit import MulticastSocket
from mcastkit.compat import MCast, MCastDataInEventParams, MCastError
from tests.support import kernelstate
from tests.support.addrs import asm4, lab_host
from tests.support.compat import Recorder, pump
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G1, G2, G3 = asm4(10, 1), asm4(10, 2), asm4(10, 3)
Make = Callable[..., MCast]


def receiver(make: Make, *groups: str, port: int = 0, **settings: object
             ) -> tuple[MCast, Recorder]:
    rec = Recorder()
    mc = rec.attach(make(**settings), capture_dest=bool(settings.get("CaptureIPPacketInfo")))
    mc.local_port = port
    for g in groups:
        mc.multicast_group = g
    mc.active = True
    return mc, rec


def sender(make: Make, host: str, port: int, **settings: object) -> MCast:
    mc = make(**settings)
    mc.active = True
    mc.remote_host, mc.remote_port = host, port
    return mc


# ------------------------------------------------------------------ activation


def test_activation_reads_back_port_and_host(netns: Netns, make: Make) -> None:
    mc = make()
    mc.active = True
    assert mc.active and mc.get_active()
    assert 0 < mc.local_port < 65536
    assert mc.local_host == "127.0.0.1"  # the interface in use (lo), never the wildcard
    assert mc.config("LocalPort") == str(mc.local_port)
    mc.active = False
    assert mc.local_port == 0 and mc.local_host == ""


def test_local_host_unicast_reads_back_and_still_receives_multicast(
        netns: Netns, make: Make) -> None:
    rec = Recorder()
    rx = rec.attach(make())
    rx.local_host = "127.0.0.1"
    rx.multicast_group = G1
    rx.active = True
    assert rx.local_host == "127.0.0.1"
    tx = sender(make, G1, rx.local_port)
    tx.send(b"via-lo")
    pump([rx], lambda: bool(rec.data))
    assert rec.payloads == [b"via-lo"]


def test_local_host_interface_name(netns: Netns, make: Make) -> None:
    mc = make()
    mc.local_host = "lo"
    mc.active = True
    assert mc.local_host == "127.0.0.1"


def test_local_host_group_binds_the_group(netns: Netns, make: Make) -> None:
    mc = make()
    mc.local_host = G1
    mc.multicast_group = G1
    mc.active = True
    assert mc.local_host == G1


def test_fixed_local_port(netns: Netns, make: Make, mcast_port: int) -> None:
    mc = make()
    mc.local_port = mcast_port
    mc.active = True
    assert mc.local_port == mcast_port


def test_active_twice_is_a_no_op(netns: Netns, make: Make) -> None:
    mc = make()
    mc.active = True
    port = mc.local_port
    mc.active = True
    assert mc.local_port == port
    mc.active = False
    mc.active = False
    assert not mc.active


def test_ready_to_send_fires_after_activation(netns: Netns, make: Make) -> None:
    rec = Recorder()
    mc = rec.attach(make())
    mc.active = True
    assert len(rec.ready) == 1


@pytest.mark.parametrize(("change", "code"), [
    (lambda m: setattr(m, "local_port", 1), 106),
    (lambda m: setattr(m, "local_host", "127.0.0.1"), 107),
    (lambda m: m.config("LocalPort=1"), 106),
    (lambda m: m.config("LocalHost=127.0.0.1"), 107),
    (lambda m: m.config("MaxPacketSize=100"), 112),
    (lambda m: m.config("ShareLocalPort=True"), 113),
    (lambda m: m.config("UseConnection=True"), 117),
    (lambda m: m.config("UseIPv6=True"), 119),
])
def test_cannot_change_while_active(netns: Netns, make: Make,
                                    change: Callable[[MCast], object], code: int) -> None:
    mc = make()
    mc.active = True
    with pytest.raises(MCastError) as ei:
        change(mc)
    assert ei.value.code == code
    assert mc.active


def test_same_value_while_active_is_accepted(netns: Netns, make: Make) -> None:
    mc = make()
    mc.active = True
    mc.local_port = mc.local_port
    mc.local_host = ""
    mc.config("MaxPacketSize=2048")
    mc.config("UseIPv6=False")


def test_use_connection_needs_remote(netns: Netns, make: Make) -> None:
    mc = make(UseConnection=True)
    with pytest.raises(MCastError) as ei:
        mc.active = True
    assert ei.value.code == 114
    mc.remote_host = "127.0.0.1"
    with pytest.raises(MCastError) as ei:
        mc.active = True
    assert ei.value.code == 116
    assert not mc.active


def test_send_without_remote_raises_114(netns: Netns, make: Make) -> None:
    mc = make()
    mc.active = True
    with pytest.raises(MCastError) as ei:
        mc.send(b"x")
    assert ei.value.code == 114
    mc.remote_host = G1
    with pytest.raises(MCastError) as ei:
        mc.send(b"x")
    assert ei.value.code == 114


def test_address_in_use_is_10048(netns: Netns, make: Make) -> None:
    a = make()
    a.active = True
    b = make()
    b.local_port = a.local_port
    with pytest.raises(MCastError) as ei:
        b.active = True
    assert ei.value.code == 10048
    assert ei.value.errno is not None
    assert not b.active


def test_unknown_receive_interface_fails_activation_cleanly(netns: Netns, make: Make) -> None:
    mc = make(interface="nosuch0")
    mc.multicast_group = G1
    with pytest.raises(MCastError):
        mc.active = True
    assert not mc.active


# ------------------------------------------------------------------ data paths


def test_send_and_receive_events(netns: Netns, make: Make) -> None:
    rx, rec = receiver(make, G1)
    tx = sender(make, G1, rx.local_port)
    tx.send(b"one")
    tx.data_to_send = b"two"
    tx.send("three")
    pump([rx], lambda: len(rec.data) == 3)
    assert rec.payloads == [b"one", b"two", b"three"]
    assert {e.source_port for e in rec.data} == {tx.local_port}


def test_two_instances_talk_both_ways(netns: Netns, make: Make) -> None:
    ra, rb = Recorder(), Recorder()
    a = ra.attach(make(ShareLocalPort=True))
    b = rb.attach(make(ShareLocalPort=True))
    a.active = True
    port = a.local_port
    b.local_port = port
    for m in (a, b):
        m.multicast_group = G1
        m.remote_host, m.remote_port = G1, port
    b.active = True
    a.send(b"from-a")
    b.send(b"from-b")
    pump([a, b], lambda: b"from-b" in ra.payloads and b"from-a" in rb.payloads)


def test_code_page_encodes_str(netns: Netns, make: Make) -> None:
    rx, rec = receiver(make, G1)
    tx = sender(make, G1, rx.local_port, CodePage=28591)
    tx.send("é")
    pump([rx], lambda: bool(rec.data))
    assert rec.payloads == [b"\xe9"]


def test_remote_host_name_is_resolved(netns: Netns, make: Make) -> None:
    rec = Recorder()
    rx = rec.attach(make())
    rx.local_host = "127.0.0.1"
    rx.active = True
    tx = sender(make, "localhost", rx.local_port)
    tx.send(b"named")
    pump([rx], lambda: bool(rec.data))


def test_unresolvable_host_is_11001(netns: Netns, make: Make) -> None:
    tx = sender(make, "no-such-host.invalid", 9)
    with pytest.raises(MCastError) as ei:
        tx.send(b"x")
    assert ei.value.code in (11001, 11002, 11003, 11004)


def test_several_groups_joined_one_by_one(netns: Netns, make: Make) -> None:
    rx, rec = receiver(make, G1, G2)
    rx.multicast_group = G3  # while active
    assert rx.groups == (G1, G2, G3)
    assert {("lo", g) for g in (G1, G2, G3)} <= kernelstate.igmp_groups()
    tx = sender(make, G1, rx.local_port)
    for g in (G1, G2, G3):
        tx.remote_host = g
        tx.send(g.encode())
    pump([rx], lambda: len(rec.data) == 3)
    assert sorted(rec.payloads) == sorted(g.encode() for g in (G1, G2, G3))


def test_minus_group_leaves_that_group(netns: Netns, make: Make) -> None:
    rx, rec = receiver(make, G1, G2)
    rx.multicast_group = "-" + G1
    assert rx.multicast_group == "-" + G1
    assert rx.groups == (G2,)
    assert ("lo", G1) not in kernelstate.igmp_groups()
    tx = sender(make, G1, rx.local_port)
    tx.send(b"forbidden")
    tx.remote_host = G2
    tx.send(b"sentinel")
    pump([rx], lambda: bool(rec.data))
    assert rec.payloads == [b"sentinel"]


def test_leaving_a_group_not_joined_is_10049(netns: Netns, make: Make) -> None:
    rx, _ = receiver(make, G1)
    with pytest.raises(MCastError) as ei:
        rx.multicast_group = "-" + G2
    assert ei.value.code == 10049


def test_empty_group_leaves_all(netns: Netns, make: Make) -> None:
    rx, _ = receiver(make, G1, G2)
    rx.multicast_group = ""
    assert rx.groups == ()
    joined = kernelstate.igmp_groups()
    assert ("lo", G1) not in joined and ("lo", G2) not in joined


def test_deactivation_leaves_every_group(netns: Netns, make: Make) -> None:
    rx, _ = receiver(make, G1, G2, G3)
    assert {("lo", g) for g in (G1, G2, G3)} <= kernelstate.igmp_groups()
    rx.active = False
    assert not {("lo", g) for g in (G1, G2, G3)} & kernelstate.igmp_groups()
    assert rx.groups == (G1, G2, G3)  # recorded, re-joined on the next activation
    rx.active = True
    assert {("lo", g) for g in (G1, G2, G3)} <= kernelstate.igmp_groups()


def test_group_recorded_before_activation_is_joined(netns: Netns, make: Make) -> None:
    mc = make()
    mc.multicast_group = G2
    assert ("lo", G2) not in kernelstate.igmp_groups()
    mc.active = True
    assert mc.memberships == (f"{G2} on lo",)


def test_default_ttl_is_7_on_the_wire(netns: Netns, make: Make) -> None:
    with MulticastSocket(4, interface="lo", metadata=True) as core:
        port = core.bind(0)[1]
        core.join(G1)
        tx = sender(make, G1, port)
        tx.send(b"ttl")
        assert core.recv(timeout_s=5).ttl == 7
        tx.time_to_live = 3
        tx.send(b"ttl")
        assert core.recv(timeout_s=5).ttl == 3


def test_share_local_port_lets_two_bind_and_both_receive(netns: Netns, make: Make) -> None:
    a, ra = receiver(make, G1, ShareLocalPort=True)
    b, rb = receiver(make, G1, port=a.local_port, ShareLocalPort=True)
    assert a.local_port == b.local_port
    tx = sender(make, G1, a.local_port)
    tx.send(b"both")
    pump([a, b], lambda: bool(ra.data and rb.data))


def test_use_connection_filters_other_senders(netns: Netns, make: Make) -> None:
    peer = make()
    peer.local_host = "127.0.0.1"
    peer.active = True
    other = make()
    other.local_host = "127.0.0.1"
    other.active = True
    rec = Recorder()
    rx = rec.attach(make(UseConnection=True))
    rx.local_host = "127.0.0.1"
    rx.remote_host, rx.remote_port = "127.0.0.1", peer.local_port
    rx.active = True
    for m in (peer, other):
        m.remote_host, m.remote_port = "127.0.0.1", rx.local_port
    other.send(b"forbidden")
    peer.send(b"sentinel")
    pump([rx], lambda: bool(rec.data))
    assert rec.payloads == [b"sentinel"]
    rx.send(b"back")  # connected: no remote needed per send


def test_max_packet_size_truncation_is_reported(netns: Netns, make: Make) -> None:
    rx, rec = receiver(make, G1, MaxPacketSize=100)
    tx = sender(make, G1, rx.local_port)
    tx.send(bytes(300))
    tx.send(b"small")
    pump([rx], lambda: len(rec.data) == 2)
    assert [len(p) for p in rec.payloads] == [100, 5]
    assert [e.error_code for e in rec.errors] == [10040]
    assert "MaxPacketSize=100" in rec.errors[0].description


def test_in_buffer_size_reads_back_the_kernel_value(netns: Netns, make: Make) -> None:
    mc = make(InBufferSize=65536, OutBufferSize=32768)
    assert mc.config("InBufferSize") == "65536"  # inactive: the request
    mc.active = True
    raw = mc._s.core.sock  # type: ignore[union-attr]  # the kernel's view, for comparison
    assert mc.config("InBufferSize") == str(raw.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    assert mc.config("OutBufferSize") == str(raw.getsockopt(socket.SOL_SOCKET,
                                                            socket.SO_SNDBUF))
    assert int(mc.config("InBufferSize")) >= 65536
    mc.config("InBufferSize=20000")  # live change
    assert mc.config("InBufferSize") == str(raw.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def test_capture_ip_packet_info_gives_the_group(netns: Netns, make: Make) -> None:
    rx, rec = receiver(make, G1, G2, CaptureIPPacketInfo=True)
    tx = sender(make, G1, rx.local_port)
    tx.send(b"to-g1")
    tx.remote_host = G2
    tx.send(b"to-g2")
    pump([rx], lambda: len(rec.data) == 2)
    assert dict(zip(rec.payloads, rec.dest, strict=True)) == {b"to-g1": G1, b"to-g2": G2}


def test_destination_address_empty_without_capture(netns: Netns, make: Make) -> None:
    rx, _rec = receiver(make, G1)
    seen: list[str] = []
    rx.on_data_in = lambda e: seen.append(rx.config("DestinationAddress"))
    sender(make, G1, rx.local_port).send(b"x")
    pump([rx], lambda: bool(seen))
    assert seen == [""]


def test_dont_fragment_and_dscp_are_applied_live(netns: Netns, make: Make) -> None:
    mc = make()
    mc.active = True
    core = mc._s.core
    assert core is not None
    mc.config("DontFragment=True")
    assert core.dont_fragment
    mc.config("QOSTrafficType=Voice")
    assert core.dscp == 56
    mc.config("QOSDSCPValue=46")  # overrides the traffic type
    assert core.dscp == 46
    mc.config("QOSDSCPValue=")
    mc.config("QOSTrafficType=BestEffort")
    assert core.dscp == 0


def test_accept_data_false_pauses_and_true_resumes(netns: Netns, make: Make) -> None:
    rx, rec = receiver(make, G1)
    rx.accept_data = False
    tx = sender(make, G1, rx.local_port)
    tx.send(b"queued")
    for _ in range(5):
        rx.do_events()  # reading is paused: do_events does not read the socket at all
    assert rec.data == []
    rx.accept_data = True
    pump([rx], lambda: bool(rec.data))
    assert rec.payloads == [b"queued"]


def test_handler_exception_goes_to_on_error_and_loop_continues(
        netns: Netns, make: Make) -> None:
    rx, rec = receiver(make, G1)
    got: list[bytes] = []

    def bad(e: object) -> None:
        got.append(e.datagram)  # type: ignore[attr-defined]
        if len(got) == 1:
            raise RuntimeError("boom")

    rx.on_data_in = bad
    tx = sender(make, G1, rx.local_port)
    tx.send(b"first")
    tx.send(b"second")
    pump([rx], lambda: len(got) == 2)
    assert [e.error_code for e in rec.errors] == [124]
    assert "RuntimeError: boom" in rec.errors[0].description


def test_on_error_handler_exception_is_swallowed(netns: Netns, make: Make) -> None:
    rx, _ = receiver(make, G1)
    calls: list[int] = []

    def bad_data(e: object) -> None:
        raise ValueError("x")

    def bad_error(e: object) -> None:
        calls.append(1)
        raise ValueError("y")

    rx.on_data_in = bad_data
    rx.on_error = bad_error
    sender(make, G1, rx.local_port).send(b"x")
    pump([rx], lambda: bool(calls))


def test_do_events_is_not_re_entrant(netns: Netns, make: Make) -> None:
    """A do_events() called from inside a handler returns at once: it delivers nothing
    there, so a handler never runs inside another. Both datagrams are queued before the
    first call (loopback delivers within the send call), so a re-entrant do_events
    would deliver the second one nested (issue 14.11: the old form passed either way)."""
    rx, _ = receiver(make, G1)
    inside: list[bool] = [False]
    nested: list[bytes] = []
    seen: list[bytes] = []

    def handler(e: MCastDataInEventParams) -> None:
        if inside[0]:
            nested.append(e.datagram)
        inside[0] = True
        try:
            seen.append(e.datagram)
            rx.do_events()  # returns at once
        finally:
            inside[0] = False

    rx.on_data_in = handler
    tx = sender(make, G1, rx.local_port)
    tx.send(b"a")
    tx.send(b"b")
    pump([rx], lambda: len(seen) == 2)
    assert nested == [] and seen == [b"a", b"b"]


def test_do_events_on_a_socket_shut_down_elsewhere_does_not_spin(netns: Netns,
                                                                 make: Make) -> None:
    """Another holder of the socket (a dup, a forked child) shut it down: the selector
    reports it readable forever with nothing to read. do_events reports ESHUTDOWN to
    on_error and sleeps out SelectWaitMillis instead of returning at once (issue 14.2:
    it used to spin the caller's loop at 100 % CPU)."""
    rx, rec = receiver(make, G1, SelectWaitMillis=100)
    core = rx._s.core if hasattr(rx, "_s") else rx._core  # type: ignore[attr-defined]
    other = socket.socket(fileno=os.dup(core.fileno()))
    with contextlib.suppress(OSError):
        other.shutdown(socket.SHUT_RDWR)
    other.close()
    calls, t_end = 0, time.monotonic() + 0.5
    while time.monotonic() < t_end:
        rx.do_events()
        calls += 1
    assert calls <= 10, f"do_events returned at once {calls} times in 0.5 s (a spin)"
    assert rec.errors and "shut down" in rec.errors[0].description.lower()


def test_deactivating_inside_a_handler(netns: Netns, make: Make) -> None:
    rx, _ = receiver(make, G1)
    rx.on_data_in = lambda e: rx.set_active(False)
    tx = sender(make, G1, rx.local_port)
    tx.send(b"a")
    tx.send(b"b")
    pump([rx], lambda: not rx.active)


def test_would_block_raises_10035_then_ready_to_send(netns: Netns, make: Make) -> None:
    # A slow qdisc on lo holds our datagrams, so the small send buffer fills up.
    netns.run("tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "8kbit",
              "burst", "1600", "limit", "10000000")
    rec = Recorder()
    tx = rec.attach(make(OutBufferSize=4096))
    tx.active = True
    tx.remote_host, tx.remote_port = "127.0.0.1", 9
    rec.ready.clear()
    sent = 0
    with pytest.raises(MCastError) as ei:
        for _ in range(10000):
            tx.send(bytes(1000))
            sent += 1
    assert ei.value.code == 10035 and ei.value.errno is not None
    assert sent > 0
    netns.run("tc", "qdisc", "del", "dev", "lo", "root")  # frees the queued datagrams
    pump([tx], lambda: bool(rec.ready))
    tx.send(b"again")  # sending works again


def test_source_ip_address_is_used(netns: Netns, make: Make) -> None:
    netns.ip("addr", "add", f"{lab_host(5, 5)}/32", "dev", "lo")
    rec = Recorder()
    rx = rec.attach(make())
    rx.active = True
    tx = sender(make, "127.0.0.1", rx.local_port, SourceIPAddress=lab_host(5, 5))
    tx.send(b"from-alias")
    pump([rx], lambda: bool(rec.data))
    assert rec.data[0].source_address == lab_host(5, 5)


def test_foreign_source_ip_address_is_refused(netns: Netns, make: Make) -> None:
    tx = sender(make, "127.0.0.1", 9, SourceIPAddress=lab_host(77, 77))
    with pytest.raises(MCastError) as ei:
        tx.send(b"spoof")
    assert ei.value.code in (10022, 10049, 10051)
    assert "SourceIPAddress" in ei.value.message
    assert ei.value.errno is not None


def test_reset_restores_every_property_and_setting(netns: Netns, make: Make) -> None:
    from tests.compat.test_api import PROPERTY_DEFAULTS, SETTING_DEFAULTS, WRITABLE_SAMPLES

    rec = Recorder()
    mc = rec.attach(make())
    for name, value in WRITABLE_SAMPLES.items():
        setattr(mc, name, value)
    mc.local_port = 0
    changed = {"CaptureIPPacketInfo": "True", "DontFragment": "True", "MaxPacketSize": "999",
               "QOSDSCPValue": "10", "QOSTrafficType": "2", "ShareLocalPort": "True",
               "SourceIPAddress": "127.0.0.1", "AbsoluteTimeout": "True", "FirewallData": "f",
               "InBufferSize": "70000", "OutBufferSize": "70000", "CodePage": "1252",
               "ProcessIdleEvents": "True", "SelectWaitMillis": "1",
               "UseInternalSecurityAPI": "True"}
    for k, v in changed.items():
        mc.config(f"{k}={v}")
    mc.active = True
    mc.reset()
    assert not mc.active
    assert mc.groups == ()
    for name, default in PROPERTY_DEFAULTS.items():
        assert getattr(mc, name) == default, name
    for name, default in SETTING_DEFAULTS.items():
        assert mc.config(name) == default, name
    assert mc.on_data_in is not None  # handlers stay attached
    assert not {g for _, g in kernelstate.igmp_groups()} & {asm4(3, 3)}


def test_pausing_inside_a_handler_keeps_the_rest_of_a_batch(netns: Netns, make: Make) -> None:
    rx, _rec = receiver(make, G1)
    got: list[bytes] = []

    def handler(e: object) -> None:
        got.append(e.datagram)  # type: ignore[attr-defined]
        rx.accept_data = False  # pause after each datagram

    rx.on_data_in = handler
    tx = sender(make, G1, rx.local_port)
    for i in range(5):
        tx.send(b"%d" % i)

    def step() -> bool:
        rx.accept_data = True
        return len(got) == 5

    pump([rx], step)
    assert got == [b"0", b"1", b"2", b"3", b"4"]  # none lost, order kept
