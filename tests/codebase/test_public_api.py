"""The public surface of ``mcastkit``: an ``__all__`` snapshot (changing it is a decision,
made here in the same commit), every public name documented, and every public method or
property of a public class documented too.

Must not: open sockets.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import mcastkit

ALL = [
    "AlreadyJoinedError",
    "ClosedError",
    "Datagram",
    "DatagramTooLargeError",
    "Endpoint",
    "ErrorCode",
    "FilterMode",
    "Group",
    "Interface",
    "InterfaceError",
    "InterfaceNotFoundError",
    "McastError",
    "McastOSError",
    "McastScopeWarning",
    "McastStateError",
    "McastValueError",
    "Membership",
    "MembershipLimitError",
    "ModeConflictError",
    "MulticastSocket",
    "NotJoinedError",
    "ReceiveTimeoutError",
    "RecvStats",
    "Scope",
    "SendError",
    "SourceFilterError",
    "UnsupportedError",
    "WouldBlockError",
    "list_interfaces",
    "open_receiver",
    "open_sender",
    "parse_endpoint",
    "resolve_interface",
]


def test_all_snapshot() -> None:
    assert sorted(mcastkit.__all__) == ALL
    assert len(set(mcastkit.__all__)) == len(mcastkit.__all__)


@pytest.mark.parametrize("name", ALL)
def test_public_name_resolves_and_has_a_docstring(name: str) -> None:
    obj = getattr(mcastkit, name)
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    assert doc and doc.strip(), f"mcastkit.{name} has no docstring of its own"


def test_module_docstring() -> None:
    assert mcastkit.__doc__ and "MulticastSocket" in mcastkit.__doc__


def test_version() -> None:
    parts = mcastkit.__version__.split(".")
    assert len(parts) >= 2 and all(p.isdigit() for p in parts[:2])


def _own_parts(cls: type) -> list[type]:
    """``cls`` and any private bases it is built on, in MRO order; public or foreign bases
    answer for themselves. (MulticastSocket is a façade: its parts are attributes, so
    every public member is declared, and documented, on the class itself.)"""
    return [c for c in cls.__mro__ if c is cls or (
        c.__module__.startswith("mcastkit.") and c.__name__.startswith("_"))]


def _public_members(cls: type) -> list[tuple[str, Callable[..., Any]]]:
    out: list[tuple[str, Callable[..., Any]]] = []
    seen: set[str] = set()
    for attr, value in [kv for part in _own_parts(cls) for kv in vars(part).items()]:
        if attr.startswith("_") or attr in seen:
            continue
        seen.add(attr)
        if isinstance(value, property):
            if value.fget is not None:
                out.append((attr, value.fget))
        elif isinstance(value, classmethod | staticmethod):
            out.append((attr, value.__func__))
        elif inspect.isfunction(value):
            out.append((attr, value))
    return out


_CLASSES = [n for n in ALL if inspect.isclass(getattr(mcastkit, n))]
_MEMBERS = [
    (f"{n}.{attr}", fn) for n in _CLASSES for attr, fn in _public_members(getattr(mcastkit, n))
]


def test_member_scan_finds_the_socket_api() -> None:
    names = {n for n, _ in _MEMBERS}
    assert {"MulticastSocket.join", "MulticastSocket.recv", "MulticastSocket.sendto",
            "MulticastSocket.set_ttl", "MulticastSocket.recv_batch", "MulticastSocket.bind",
            "MulticastSocket.family", "Group.scope"} <= names


@pytest.mark.parametrize(("name", "fn"), _MEMBERS, ids=[n for n, _ in _MEMBERS])
def test_public_member_has_a_docstring(name: str, fn: Callable[..., Any]) -> None:
    assert fn.__doc__ and fn.__doc__.strip(), f"{name} has no docstring"


@pytest.mark.parametrize("name", [n for n in ALL if callable(getattr(mcastkit, n))
                                  and not inspect.isclass(getattr(mcastkit, n))])
def test_public_function_documents_what_it_raises_or_returns(name: str) -> None:
    doc = inspect.getdoc(getattr(mcastkit, name)) or ""
    assert len(doc) > 20


@pytest.mark.parametrize("name", _CLASSES)
def test_public_class_is_defined_in_mcastkit(name: str) -> None:
    cls = getattr(mcastkit, name)
    assert cls.__module__.startswith("mcastkit.")
    if issubclass(cls, enum.Enum):
        assert list(cls), f"{name} has no members"
