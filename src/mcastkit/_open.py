"""The one-call openers of the socket core: ``open_receiver`` and ``open_sender``.

Owns: :func:`open_receiver` (parse the endpoints, check they share one port and IP
version, open, bind, join each one, source-specifically for ``SOURCE,GROUP:PORT``; with
``broadcast=True`` a broadcast endpoint is bound, with nothing to join) and
:func:`open_sender` (open and connect to one group or, with ``broadcast=True``, a
broadcast address), the check of their keyword options against
:class:`~mcastkit.MulticastSocket`'s constructor (an unknown one is refused with the list
of valid ones), and closing again whatever failed half-way, so that on failure nothing
stays joined or open.
Must not: set socket options or join by itself (every call goes through
:class:`~mcastkit.MulticastSocket`), or keep any state.
"""

from __future__ import annotations

from ._addr import Endpoint, parse_destination, parse_endpoint
from ._errors import ErrorCode, McastValueError
from ._sockbase import InterfaceArg
from ._socket import MulticastSocket

__all__ = ["open_receiver", "open_sender"]


def _check_options(caller: str, options: dict[str, object]) -> None:
    """Refuse unknown keyword options with a message listing the valid ones."""
    code = MulticastSocket.__init__.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    valid = set(names) - {"self", "family", "interface"}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise McastValueError(
            f"{caller}: unknown option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(sorted(valid))}", code=ErrorCode.BAD_VALUE)


def open_receiver(
    *endpoints: str | Endpoint,
    interface: InterfaceArg | None = None,
    **options: object,
) -> MulticastSocket:
    """Open, bind and join in one call: ``open_receiver("239.255.0.1:5000", interface="lo")``.

    Every endpoint must share one port and IP version. ``SOURCE,GROUP:PORT`` joins
    source-specifically. With ``broadcast=True`` an endpoint may be a broadcast address
    (``255.255.255.255:PORT``): the port is bound and broadcasts to it are admitted,
    with nothing to join. On failure nothing stays joined or open.

    Args:
        *endpoints: ``"GROUP:PORT"``, ``"SOURCE,GROUP:PORT"``, ``"GROUP:PORT%IFNAME"``
            strings or :class:`~mcastkit.Endpoint` values; at least one.
        interface: the interface to join on (name, index, local address); an endpoint's
            own ``%IFNAME`` wins for that endpoint.
        **options: any keyword argument of :class:`MulticastSocket` (``ttl``,
            ``metadata``, ``reuse_port``, ...).

    Returns:
        The socket, bound to the endpoints' port and joined to every group.

    Raises:
        McastValueError: no endpoint, a bad endpoint, endpoints with different ports or IP
            versions, or an unknown option (the message lists the valid ones;
            ``BAD_VALUE``).
        InterfaceNotFoundError: ``interface`` does not exist (``INTERFACE_NOT_FOUND``).
        McastOSError: the bind or a join failed (e.g. ``ADDRESS_IN_USE``,
            ``MEMBERSHIP_LIMIT``).
    """
    if not endpoints:
        raise McastValueError("open_receiver needs at least one GROUP:PORT endpoint")
    _check_options("open_receiver", options)
    bcast = [e for e in endpoints if isinstance(e, str) and _is_broadcast_ep(e, options)]
    eps = [parse_endpoint(e) if isinstance(e, str) else e for e in endpoints
           if e not in bcast]
    ports = {e.port for e in eps} | {parse_destination(str(e))[1] for e in bcast}
    versions = {e.group.version for e in eps} | ({4} if bcast else set())
    if len(ports) > 1 or len(versions) > 1:
        raise McastValueError(
            "all endpoints of one socket need the same port and IP version; open one socket "
            "per port", code=ErrorCode.BAD_VALUE)
    sock = MulticastSocket(versions.pop(), interface=interface, **options)  # type: ignore[arg-type]
    try:
        sock.bind(ports.pop())
        for e in eps:
            where: InterfaceArg | None = e.interface if e.interface else None
            if e.source is not None:
                sock.join_source(e.source, e.group, where)
            else:
                sock.join(e.group, where)
    except BaseException:
        sock.close()
        raise
    return sock


def _is_broadcast_ep(text: str, options: dict[str, object]) -> bool:
    """True for a ``HOST:PORT`` that is not a group, given with ``broadcast=True``."""
    if not options.get("broadcast"):
        return False
    try:
        parse_endpoint(text)
    except McastValueError as exc:
        return exc.code is ErrorCode.NOT_MULTICAST
    return False


def open_sender(
    endpoint: str | Endpoint,
    *,
    interface: InterfaceArg | None = None,
    **options: object,
) -> MulticastSocket:
    """A socket connected to ``GROUP:PORT``, for :meth:`MulticastSocket.send` without a
    destination. With ``broadcast=True`` the endpoint may be a broadcast address
    (``255.255.255.255:PORT`` needs ``interface``).

    Args:
        endpoint: ``"GROUP:PORT"`` (or ``"GROUP:PORT%IFNAME"``) or an
            :class:`~mcastkit.Endpoint`; no ``SOURCE,`` part.
        interface: the outgoing interface (recommended: field notes C1); None: the
            endpoint's ``%IFNAME``, else the route's choice.
        **options: any keyword argument of :class:`MulticastSocket` (``ttl``,
            ``loopback``, ``dscp``, ...).

    Returns:
        The socket, connected to the group.

    Raises:
        McastValueError: a bad endpoint, an endpoint with a source, or an unknown option
            (``BAD_VALUE``).
        InterfaceNotFoundError: ``interface`` does not exist (``INTERFACE_NOT_FOUND``).
        McastOSError: the connect failed.
    """
    if isinstance(endpoint, str) and _is_broadcast_ep(endpoint, options):
        return _connected(*parse_destination(endpoint), interface, options)
    ep = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
    if ep.source is not None:
        raise McastValueError(
            f"open_sender({str(endpoint)!r}): a sender has no source to choose; drop the "
            "'SOURCE,' part (receivers use it for source-specific joins)",
            code=ErrorCode.BAD_VALUE)
    iface: InterfaceArg | None = interface if interface is not None else ep.interface
    return _connected(str(ep.group), ep.port, iface, options)


def _connected(host: str, port: int, interface: InterfaceArg | None,
               options: dict[str, object]) -> MulticastSocket:
    """A socket connected to (host, port); closed again if anything fails."""
    _check_options("open_sender", options)
    sock = MulticastSocket(6 if ":" in host else 4, interface=interface, **options)  # type: ignore[arg-type]
    try:
        sock.connect(host, port)
    except BaseException:
        sock.close()
        raise
    return sock

