"""Unit tests for mcastkit._membership: the MembershipBook rules as a state table
(state x operation -> new state, no-op or error), plus the socket's "commit only after the
kernel said yes" rule, checked with setsockopt replaced per option (no network I/O).

Must not: join real groups (test_membership.py does).
"""

from __future__ import annotations

import errno as E
from collections.abc import Iterator

import pytest

from mcastkit import (
    FilterMode,
    MembershipLimitError,
    ModeConflictError,
    MulticastSocket,
    NotJoinedError,
    SourceFilterError,
)
from mcastkit import _platform as plat
from mcastkit._errors import AlreadyJoinedError, ErrorCode, McastValueError
from mcastkit._membership import Membership, MembershipBook
from mcastkit._platform import Op
from tests.support.addrs import G4, SRC4, SSM4, asm4, lab_host, ssm4

IDX, IFN, G = 1, "lo", SSM4
S1, S2 = SRC4, lab_host(0, 2)

State = tuple[FilterMode, frozenset[str]] | None
EMPTY: State = None
ASM: State = (FilterMode.EXCLUDE, frozenset())
ASM_B1: State = (FilterMode.EXCLUDE, frozenset({S1}))
ASM_B2: State = (FilterMode.EXCLUDE, frozenset({S2}))
ASM_B12: State = (FilterMode.EXCLUDE, frozenset({S1, S2}))
SSM1: State = (FilterMode.INCLUDE, frozenset({S1}))
SSM2: State = (FilterMode.INCLUDE, frozenset({S2}))
SSM12: State = (FilterMode.INCLUDE, frozenset({S1, S2}))

NOOP = "noop"
NJ = NotJoinedError
MC = ModeConflictError

Outcome = State | str | type[Exception]


def _book(state: State) -> MembershipBook:
    b = MembershipBook()
    if state is None:
        return b
    mode, sources = state
    if mode is FilterMode.EXCLUDE:
        b.commit_join(IDX, G, IFN, IFN)
        for s in sorted(sources):
            b.commit_block(IDX, G, s, True)
    else:
        for s in sorted(sources):
            b.commit_join_source(IDX, G, s, IFN, IFN)
    return b


def _state(b: MembershipBook) -> State:
    m = b.get(IDX, G)
    return None if m is None else (m.mode, m.sources)


def _apply(b: MembershipBook, op: str) -> str | None:
    """Run one operation the way MulticastSocket does: check, then (kernel OK) commit."""
    name, _, src = op.partition(" ")
    if name == "join":
        if not b.check_join(IDX, G, IFN):
            return NOOP
        b.commit_join(IDX, G, IFN, IFN)
    elif name == "join_source":
        if not b.check_join_source(IDX, G, src, IFN):
            return NOOP
        b.commit_join_source(IDX, G, src, IFN, IFN)
    elif name == "leave":
        b.check_leave(IDX, G, IFN)
        b.commit_leave(IDX, G)
    elif name == "leave_source":
        b.check_leave_source(IDX, G, src, IFN)
        b.commit_leave_source(IDX, G, src)
    else:
        block = name == "block"
        if not b.check_block(IDX, G, src, IFN, block):
            return NOOP
        b.commit_block(IDX, G, src, block)
    return None


OPS = ["join", f"join_source {S1}", f"join_source {S2}", "leave", f"leave_source {S1}",
       f"leave_source {S2}", f"block {S1}", f"block {S2}", f"unblock {S1}", f"unblock {S2}"]

TABLE: dict[str, dict[str, list[Outcome]]] = {
    #        join  js S1  js S2  leave  ls S1  ls S2  b S1    b S2    u S1  u S2
    "EMPTY": dict(zip(OPS, [[ASM], [SSM1], [SSM2], [NJ], [NJ], [NJ], [NJ], [NJ], [NJ], [NJ]],
                          strict=True)),
    "ASM": dict(zip(OPS, [[NOOP], [MC], [MC], [EMPTY], [NJ], [NJ], [ASM_B1], [ASM_B2], [NOOP],
                          [NOOP]], strict=True)),
    "ASM_B1": dict(zip(OPS, [[NOOP], [MC], [MC], [EMPTY], [NJ], [NJ], [NOOP], [ASM_B12], [ASM],
                             [NOOP]], strict=True)),
    "SSM1": dict(zip(OPS, [[MC], [NOOP], [SSM12], [EMPTY], [EMPTY], [NJ], [MC], [MC], [MC],
                           [MC]], strict=True)),
    "SSM12": dict(zip(OPS, [[MC], [NOOP], [NOOP], [EMPTY], [SSM2], [SSM1], [MC], [MC], [MC],
                            [MC]], strict=True)),
}
STATES: dict[str, State] = {"EMPTY": EMPTY, "ASM": ASM, "ASM_B1": ASM_B1, "SSM1": SSM1,
                            "SSM12": SSM12}
CASES = [(s, op, TABLE[s][op][0]) for s in TABLE for op in OPS]


@pytest.mark.parametrize(("start", "op", "expected"), CASES,
                         ids=[f"{s}-{op.replace(' ', '_')}" for s, op, _ in CASES])
def test_state_table(start: str, op: str, expected: Outcome) -> None:
    b = _book(STATES[start])
    before = _state(b)
    if isinstance(expected, type):
        with pytest.raises(expected) as info:
            _apply(b, op)
        assert _state(b) == before  # a refused call changes nothing
        assert G in str(info.value) and IFN in str(info.value)
    elif expected == NOOP:
        assert _apply(b, op) == NOOP
        assert _state(b) == before
    else:
        assert _apply(b, op) is None
        assert _state(b) == expected


def test_not_joined_error_shape() -> None:
    with pytest.raises(NotJoinedError) as info:
        MembershipBook().check_leave(IDX, G, IFN)
    exc = info.value
    assert exc.code is ErrorCode.NOT_JOINED
    assert exc.errno == 0  # raised by the book, before any syscall
    assert str(exc) == f"leave {G} on {IFN}: not joined on this socket"


def test_mode_conflict_messages_name_the_fix() -> None:
    with pytest.raises(ModeConflictError, match="leave its sources first") as info:
        _book(SSM1).check_join(IDX, G, IFN)
    assert isinstance(info.value, McastValueError) and isinstance(info.value, ValueError)
    assert info.value.code is ErrorCode.MODE_CONFLICT
    with pytest.raises(ModeConflictError, match=r"use block_source\(\)"):
        _book(ASM).check_join_source(IDX, G, S1, IFN)
    with pytest.raises(ModeConflictError, match="source-specifically"):
        _book(SSM1).check_block(IDX, G, S1, IFN, True)


def test_checks_never_change_the_book() -> None:
    b = MembershipBook()
    assert b.check_join(IDX, G, IFN) is True
    assert b.check_join_source(IDX, G, S1, IFN) is True
    assert len(b) == 0 and b.get(IDX, G) is None


def test_interfaces_and_groups_are_independent() -> None:
    b = MembershipBook()
    b.commit_join(1, G, "lo", "lo")
    assert b.check_join_source(2, G, S1, "veth0") is True  # other interface: no conflict
    b.commit_join_source(2, G, S1, "veth0", 2)
    assert b.check_join_source(1, ssm4(1, 1, 2), S1, "lo") is True  # other group
    assert {(m.ifindex, m.mode) for m in b} == {(1, FilterMode.EXCLUDE), (2, FilterMode.INCLUDE)}
    assert b.groups == frozenset({G})
    b.commit_leave(1, G)
    assert _state(b) is None and b.get(2, G) is not None


def test_membership_records_what_was_asked() -> None:
    b = MembershipBook()
    by_name = b.commit_join(1, G4, "lo", "lo")
    by_index = b.commit_join(1, asm4(0, 2), "lo", 1)
    by_route = b.commit_join(1, asm4(0, 3), "lo", None)
    assert by_name.by_name and not by_index.by_name and not by_route.by_name
    assert by_name == Membership(group=G4, ifindex=1, ifname="lo",
                                 mode=FilterMode.EXCLUDE, interface_spec="lo")


def test_join_source_keeps_the_first_spec() -> None:
    b = MembershipBook()
    b.commit_join_source(IDX, G, S1, IFN, "lo")
    m = b.commit_join_source(IDX, G, S2, IFN, 1)
    assert m.interface_spec == "lo" and m.sources == {S1, S2}


def test_clear_returns_everything_and_empties() -> None:
    b = _book(SSM12)
    b.commit_join(2, G4, "eth9", None)
    out = b.clear()
    assert len(out) == 2 and len(b) == 0 and list(b) == []


def test_iteration_is_a_snapshot() -> None:
    b = _book(ASM)
    b.commit_join(IDX, G4, IFN, None)
    for m in b:
        b.commit_leave(m.ifindex, m.group)
    assert len(b) == 0


def test_membership_is_immutable() -> None:
    m = _book(ASM).get(IDX, G)
    assert m is not None
    with pytest.raises(AttributeError):
        m.group = "x"  # type: ignore[misc]


# ------------------------------------------------------ the socket commits only after success


def _held(s: MulticastSocket) -> tuple[Membership, ...]:
    return s.memberships


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[Op, int | None]]:
    """Replace setsockopt for membership options: {op: errno} refuses, {op: None} accepts
    without a syscall (so nothing is joined for real); other options go to the kernel."""
    answers: dict[Op, int | None] = {}
    real = plat.setopt
    membership_ops = {Op.JOIN, Op.LEAVE, Op.JOIN_SOURCE, Op.LEAVE_SOURCE, Op.BLOCK_SOURCE,
                      Op.UNBLOCK_SOURCE}

    def fake(sock: object, op: Op, value: int | bytes) -> None:
        if op in membership_ops:
            err = answers.get(op)
            if err is not None:
                raise OSError(err, "refused by the test")
            return
        real(sock, op, value)  # type: ignore[arg-type]

    monkeypatch.setattr(plat, "setopt", fake)
    yield answers


def test_refused_join_leaves_no_membership(kernel: dict[Op, int | None]) -> None:
    with MulticastSocket(4, interface="lo") as s:
        kernel[Op.JOIN] = E.ENOBUFS
        # ENOBUFS with no group held: option memory ran out (the count limit is higher)
        with pytest.raises(MembershipLimitError, match=r"net\.core\.optmem_max"):
            s.join(G4)
        assert _held(s) == ()
        kernel[Op.JOIN] = None
        m = s.join(G4)
        assert _held(s) == (m,)
        assert s.join(G4) == m  # second join: no-op, no syscall needed
        kernel[Op.JOIN] = E.ENOBUFS
        assert s.join(G4) == m  # still a no-op: the book answers first


def test_refused_leave_keeps_the_membership(kernel: dict[Op, int | None]) -> None:
    with MulticastSocket(4, interface="lo") as s:
        s.join(G4)
        kernel[Op.LEAVE] = E.EADDRNOTAVAIL
        with pytest.raises(NotJoinedError):
            s.leave(G4)
        assert len(_held(s)) == 1
        kernel[Op.LEAVE] = None
        s.leave(G4)
        assert _held(s) == ()


def test_leave_of_a_vanished_interface_still_forgets(kernel: dict[Op, int | None]) -> None:
    with MulticastSocket(4, interface="lo") as s:
        s.join(G4)
        kernel[Op.LEAVE] = E.ENODEV  # the interface went away with the membership
        s.leave(G4)
        assert _held(s) == ()


def test_refused_source_join_and_block_change_nothing(kernel: dict[Op, int | None]) -> None:
    with MulticastSocket(4, interface="lo") as s:
        kernel[Op.JOIN_SOURCE] = E.EADDRINUSE
        with pytest.raises(AlreadyJoinedError):
            s.join_source(S1, G)
        assert _held(s) == ()
        kernel[Op.JOIN_SOURCE] = None
        s.join_source(S1, G)
        kernel[Op.JOIN_SOURCE] = E.ENOBUFS
        with pytest.raises(SourceFilterError, match="igmp_max_msf"):
            s.join_source(S2, G)
        assert _held(s)[0].sources == {S1}
        with pytest.raises(ModeConflictError):
            s.join(G)  # refused by the book before any syscall
        s.leave_source(S1, G)  # the last source: the group goes
        assert _held(s) == ()

        s.join(G4)
        kernel[Op.BLOCK_SOURCE] = E.ENOBUFS
        with pytest.raises(SourceFilterError):
            s.block_source(S1, G4)
        assert _held(s)[0].sources == frozenset()
        kernel[Op.BLOCK_SOURCE] = None
        s.block_source(S1, G4)
        kernel[Op.UNBLOCK_SOURCE] = E.EINVAL
        with pytest.raises(SourceFilterError):
            s.unblock_source(S1, G4)
        assert _held(s)[0].sources == {S1}


def test_close_forgets_everything_even_if_leave_fails(kernel: dict[Op, int | None]) -> None:
    s = MulticastSocket(4, interface="lo")
    s.join(G4)
    s.join_source(S1, G)
    kernel[Op.LEAVE] = E.EINVAL
    s.close()
    assert _held(s) == () and s.closed
    s.close()  # idempotent
