"""pytest plugin: namespace, veth and lab fixtures. Load with
``pytest_plugins = ["tests.support.fixtures"]`` in tests/conftest.py.

Fixtures (see each docstring):
  netns       function  fresh namespace, lo up, test thread entered for the whole test
  veth_pair   function  VethPair (two namespaces, eth0<->eth0, 198.18.9.1/.2), not entered
  veth_loop   function  VethLoop (one namespace, va<->vb), test thread entered
  lab         session   the 7-namespace lab, up; enter hosts with lab.host("h2").enter()
  fresh_lab   function  a private lab for tests that change the topology (~0.2 s)
  mcast_port  function  a UDP port unique in this run

If namespaces cannot be created every fixture above skips with the reason, unless
``MCAST_REQUIRE_NETNS=1`` is set, in which case it fails (CI must not go green while
testing nothing). Tests marked ``kernel`` or ``lab`` get the same check even without
using a fixture.

Tiers: every test gets its tier here (``pytest_collection_modifyitems``), by markers and
by the fixtures it uses, never by its folder: ``unit`` (no privileges, no namespace),
``kernel`` (a namespace), ``lab``, ``interop``, ``slow``, ``soak``. Select with ``-m``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.support.netns import Netns, cleanup_all, current_netns_id, our_namespaces
from tests.support.topology import Lab, VethLoop, VethPair, new_port

REQUIRE_ENV = "MCAST_REQUIRE_NETNS"
_probe_result: list[str | None] = []  # [] = not probed yet; [None] = ok; [reason]


def require_or_skip(reason: str) -> NoReturn:
    """Skip with a loud reason, or fail when ``MCAST_REQUIRE_NETNS=1``."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 and a prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(f"NOT TESTED, prerequisite missing: {reason} (set {REQUIRE_ENV}=1 to fail)")


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None. Probed once per process."""
    if not _probe_result:
        reason: str | None = None
        try:
            ns = Netns.fresh("probe")
            try:
                with ns.enter():
                    pass
            finally:
                ns.delete()
        except Exception as e:  # any failure means: no namespaces here
            reason = f"cannot create a network namespace ({type(e).__name__}: {e})"
        _probe_result.append(reason)
    return _probe_result[0]


def ensure_netns() -> None:
    reason = netns_unavailable()
    if reason:
        require_or_skip(reason)


#: fixtures that build namespaces: a test using one (directly or through another
#: fixture) is in the kernel tier, whatever folder it sits in
KERNEL_FIXTURES = frozenset({"netns", "veth_pair", "veth_loop", "lans", "sites", "parallel",
                             "bridged"})
LAB_FIXTURES = frozenset({"lab", "fresh_lab"})
#: the tiers besides ``unit``; a test with none of them is a unit test
TIERS = ("kernel", "lab", "interop", "slow", "soak")


def pytest_configure(config: pytest.Config) -> None:
    # the same texts as pyproject.toml, for runs that load this plugin on its own
    config.addinivalue_line("markers", "unit: needs no privileges and no network namespace")
    config.addinivalue_line("markers", "kernel: needs a network namespace (real sockets)")
    config.addinivalue_line("markers", "lab: needs the multi-host lab (namespaces, routers)")


def tier_markers(item: pytest.Item) -> list[str]:
    """The tier markers ``item`` carries (its own, its class's and its module's)."""
    return [m for m in ("unit", *TIERS) if item.get_closest_marker(m)]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test its tier from what it uses, not from its folder: a namespace
    fixture makes it ``kernel``, a lab fixture ``lab``; a test with no tier marker
    after that is ``unit`` (what ``.ci/run`` runs again as user nobody, ``-m unit``).
    Runs before the soak plugin deselects, so a soak test is never ``unit``."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & LAB_FIXTURES and not item.get_closest_marker("lab"):
            item.add_marker(pytest.mark.lab)
        if used & KERNEL_FIXTURES and not item.get_closest_marker("kernel"):
            item.add_marker(pytest.mark.kernel)
        tiers = tier_markers(item)
        if not tiers:
            item.add_marker(pytest.mark.unit)
        elif "unit" in tiers and len(tiers) > 1:
            raise pytest.UsageError(f"{item.nodeid}: marked unit but also {tiers[1:]} "
                                    "(a unit test needs no namespace; drop one marker)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("kernel") or item.get_closest_marker("lab"):
        ensure_netns()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cleanup_all()
    left = our_namespaces()
    if left:
        warnings.warn(f"namespaces left behind: {left}", stacklevel=1)


@pytest.fixture
def netns() -> Iterator[Netns]:
    """A fresh namespace (only ``lo``, up; DAD off). The test's thread is inside it for
    the whole test, so plain ``socket.socket()`` calls create sockets there."""
    ensure_netns()
    before = current_netns_id()
    ns = Netns.fresh("t")
    try:
        with ns.enter():
            yield ns
    finally:
        ns.delete()
    assert current_netns_id() == before, "a test left its thread in another namespace"


@pytest.fixture
def veth_pair() -> Iterator[VethPair]:
    """Two namespaces ``.a``/``.b`` joined by veth ``eth0``; addresses ``.addr_a``
    (198.18.9.1) and ``.addr_b`` (198.18.9.2), link-locals ``.ll_a``/``.ll_b``,
    ``.ifindex_a``/``.ifindex_b``. Not entered: use ``with veth_pair.a.enter():``."""
    ensure_netns()
    pair = VethPair()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def veth_loop() -> Iterator[VethLoop]:
    """One namespace ``.ns`` with veth ``va``<->``vb`` (``.ifindex_va``, ``.ll_va``...);
    the test's thread is inside it. For IPv6 multicast on a single host."""
    ensure_netns()
    loop = VethLoop()
    try:
        with loop.ns.enter():
            yield loop
    finally:
        loop.close()


def _build_lab() -> Lab:
    ensure_netns()
    lab = Lab()
    try:
        lab.up()
    except Exception as e:
        require_or_skip(f"the lab could not be built ({type(e).__name__}: {e})")
    return lab


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The shared lab, built once per session. Use unique groups and ports per test
    (``tests.support.topology.new_group()``, ``mcast_port``) and ``lab.prime(group)`` before
    counting routed datagrams. Do not change its topology; use ``fresh_lab`` for that."""
    built = _build_lab()
    try:
        yield built
    finally:
        built.down()


@pytest.fixture
def fresh_lab() -> Iterator[Lab]:
    """A private lab for one test (about 0.2 s to build)."""
    built = _build_lab()
    try:
        yield built
    finally:
        built.down()


@pytest.fixture
def mcast_port() -> int:
    """A UDP port no other test in this run uses."""
    return new_port()
