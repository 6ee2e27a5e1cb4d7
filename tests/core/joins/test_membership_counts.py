"""The membership book keeps its per-group counts one change at a time (a join no longer
rebuilds a set of every group): property test against a model that recomputes."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit._membership import MembershipBook
from tests.support.addrs import G4, G4_OTHER, G6, SRC4, SRC4_OTHER

_GROUPS = [G4, G4_OTHER, G6]
_SOURCES = [SRC4, SRC4_OTHER]
_op = st.tuples(
    st.sampled_from(["join", "join_source", "leave", "leave_source", "restore", "clear"]),
    st.integers(1, 3),  # ifindex
    st.sampled_from(_GROUPS),
    st.sampled_from(_SOURCES),
)


def _apply(book: MembershipBook, op: str, idx: int, group: str, source: str) -> None:
    m = book.get(idx, group)
    if op == "join" and (m is None or not m.sources):
        if m is None:
            book.commit_join(idx, group, f"if{idx}", None)
    elif op == "join_source" and (m is None or m.sources):
        book.commit_join_source(idx, group, source, f"if{idx}", None)
    elif op == "leave" and m is not None:
        book.commit_leave(idx, group)
    elif op == "leave_source" and m is not None and source in m.sources:
        book.commit_leave_source(idx, group, source)
    elif op == "restore" and m is not None:
        book.restore(m)  # putting back a record that is there changes no count
    elif op == "clear":
        book.clear()


@settings(max_examples=300)
@given(st.lists(_op, max_size=40))
def test_groups_and_verdicts_follow_the_records(ops: list[tuple[str, int, str, str]]) -> None:
    book = MembershipBook()
    for op in ops:
        book.admits(op[2], op[1])  # fill the verdict cache so a stale answer would show
        book.admits(op[2], None)
        _apply(book, *op)
        held = {m.group for m in book}
        assert book.groups == frozenset(held)
        for g in _GROUPS:
            assert book.admits(g, None) == (g in held)
            for idx in (1, 2, 3):
                assert book.admits(g, idx) == (book.get(idx, g) is not None)


def test_many_joins_keep_one_count_per_group() -> None:
    book = MembershipBook()
    groups = [str(ipaddress.ip_address(G4) + i) for i in range(4000)]  # 239.255.0.1 on
    for i, g in enumerate(groups):
        book.commit_join(1 + i % 4, g, "x", None)
    assert len(book.groups) == 4000 and len(book) == 4000
    for i, g in enumerate(groups):
        book.commit_leave(1 + i % 4, g)
    assert book.groups == frozenset() and len(book) == 0
