"""`replay(mapping=...)` takes the tuple form of `parse_mapping` and the "G:P" text form;
anything else is a clear error, never a mapping that silently matches nothing."""

from __future__ import annotations

import pytest

from mcastkit import McastValueError
from mcastkit.capture import parse_mapping
from mcastkit.capture._replay import _mapping
from tests.support.addrs import G4, G4_OTHER, G6, G6_OTHER


def test_both_forms_give_the_parse_mapping_result() -> None:
    want = parse_mapping([f"{G4}:5000={G4_OTHER}:6000"])
    assert _mapping({(G4, 5000): (G4_OTHER, 6000)}) == want
    assert _mapping({f"{G4}:5000": f"{G4_OTHER}:6000"}) == want
    assert _mapping({(G6, 5000): (G6_OTHER, 6000)}) == {(G6, 5000): (G6_OTHER, 6000)}
    assert _mapping(None) == {}


@pytest.mark.parametrize("bad", [{1: 2}, {(G4, "5000"): (G4_OTHER, 6000)},
                                 {G4: f"{G4_OTHER}:6000"}, {(G4, 5000): f"{G4_OTHER}:6000"}])
def test_other_shapes_are_named(bad: dict[object, object]) -> None:
    with pytest.raises(McastValueError):
        _mapping(bad)
