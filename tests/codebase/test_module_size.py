"""Small modules: no Python module under ``src/mcastkit`` is longer than 500 lines.

A module that outgrows the limit holds more than one job: split it along a real
responsibility (its charter says which), do not squeeze lines. The C accelerator
(``_speedups.c``) is not a Python module and is not counted.

Must not: import mcastkit (it reads the package's files as text, wherever the package was
found: the source tree of an editable install, or site-packages when the unit tier runs
against an installed copy, as scripts/unprivileged-unit and the packaging tests do).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest


def _package_dir() -> Path:
    spec = find_spec("mcastkit")  # locates the package without running it
    assert spec is not None and spec.submodule_search_locations, "mcastkit is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


SRC = _package_dir()
LIMIT = 500


def oversized(root: Path, limit: int = LIMIT) -> list[tuple[str, int]]:
    """Every ``*.py`` below ``root`` longer than ``limit`` lines, as (path, lines),
    longest first."""
    sizes = [(str(p.relative_to(root.parent)), len(p.read_text().splitlines()))
             for p in sorted(root.rglob("*.py"))]
    return sorted(((p, n) for p, n in sizes if n > limit), key=lambda r: (-r[1], r[0]))


def test_the_tree_is_found() -> None:
    # a guard against a wrong path making the next test vacuous
    assert len(list(SRC.rglob("*.py"))) >= 50
    assert (SRC / "_socket.py").is_file()


def test_no_module_over_the_limit() -> None:
    over = oversized(SRC)
    assert not over, f"modules over {LIMIT} lines (split them along a responsibility): " \
                     + ", ".join(f"{p} ({n} lines)" for p, n in over)


@pytest.mark.parametrize(("lines", "reported"), [(LIMIT, False), (LIMIT + 1, True)])
def test_the_check_reports_each_offender_with_its_size(tmp_path: Path, lines: int,
                                                       reported: bool) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "small.py").write_text("x = 1\n" * 10)
    (pkg / "sub" / "edge.py").write_text("x = 1\n" * lines)
    (pkg / "sub" / "notes.txt").write_text("x\n" * (LIMIT * 2))  # not a module
    expected = [(str(Path("pkg", "sub", "edge.py")), lines)] if reported else []
    assert oversized(pkg) == expected
