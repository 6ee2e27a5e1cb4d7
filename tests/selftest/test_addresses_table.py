"""The one table of lab addresses: no test file spells a lab address or group itself.

Every unicast address, network and group a test uses comes from tests/support/addrs.py
(constants, or ``asm4`` / ``ssm4`` / ``asm6`` / ``lab_host`` for a distinct one), so the
ranges are chosen in one place and a reader sees which address is "the default group"
and which one is "a second sender". Docstrings and comments may name addresses (they
document a topology); code may not.

Must not: import the tests it reads (it tokenizes them as text).
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
TABLE = TESTS / "support" / "addrs.py"
#: files allowed to spell lab literals, each with the reason
ALLOWED = {
    # the endpoint / group parser's own tests: the exact text is what is under test
    TESTS / "core" / "addresses" / "test_addr.py",
    # this check's own examples
    Path(__file__).resolve(),
}
#: a lab literal, or the start of one built in an f-string ("239.255.{x}.{y}")
LITERAL = re.compile(r"(?<![\w.])(?:239\.255\.|198\.1[89]\.|232\.\d|ff15:)", re.IGNORECASE)


def _docstring_starts(source: str) -> set[tuple[int, int]]:
    """(line, column) of every docstring token: a string that is a whole statement."""
    starts: set[tuple[int, int]] = set()
    prev, depth = tokenize.NEWLINE, 0  # depth: open brackets (a string inside is code)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.STRING and depth == 0 and prev in (
                tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.NL):
            starts.add(tok.start)
        if tok.type != tokenize.COMMENT:
            prev = tok.type
    return starts


def offenders(source: str, name: str) -> list[str]:
    """``name:line: text`` for every string in code (not a docstring) with a lab literal."""
    docs = _docstring_starts(source)
    return [f"{name}:{tok.start[0]}: {tok.string[:60]}"
            for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.STRING and tok.start not in docs
            and LITERAL.search(tok.string)]


def _offenders_in(path: Path) -> list[str]:
    return offenders(path.read_text(), str(path.relative_to(TESTS.parent)))


def test_the_table_and_the_test_files_are_found() -> None:
    # a guard against a wrong path making the next test vacuous
    assert TABLE.is_file() and _offenders_in(TABLE), "the table itself must match the pattern"
    assert len(list(TESTS.rglob("test_*.py"))) >= 100


def test_no_lab_literal_outside_the_table() -> None:
    files = [p for p in sorted(TESTS.rglob("*.py")) if p != TABLE and p not in ALLOWED]
    found = [line for p in files for line in _offenders_in(p)]
    assert not found, ("lab addresses spelled outside tests/support/addrs.py (use its names, "
                       "or asm4/ssm4/asm6/lab_host):\n" + "\n".join(found))


@pytest.mark.parametrize(("code", "flagged"), [
    ('GROUP = "239.255.7.1"\n', True),
    ('x = f"239.255.{n}.1"\n', True),
    ('x = f"[ff15::{n:x}]:5000"\n', True),
    ('x = "198.18.0.1/24"\n', True),
    ('x = "232.1.1.1"\n', True),
    ('x = "224.0.0.251"  # a well-known group: not a lab literal\n', False),
    ('"""Topology: a 198.18.9.1/24."""\n', False),
    ('x = 1  # 239.255.0.1 in a comment\n', False),
    ('def f():\n    """Uses 239.255.0.1."""\n    return "239.255.0.1"\n', True),
    ('x = ("a"\n     "239.255.0.1")\n', True),
])
def test_the_check_tells_code_from_documentation(code: str, flagged: bool) -> None:
    assert bool(offenders(code, "probe.py")) is flagged
