"""The docstrings of the public API stay complete (Args / Returns / Raises / Attributes).

scripts/docstring_gaps.py holds the rules (read its docstring); these tests run it on
mcastkit (no gaps allowed), prove on a small package written here that each rule fails
when broken, and check the built pages show what the docstrings say: a façade method's
sections, a compat property's words, no ``op = op`` and no stray ``::``.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.fixtures import require_or_skip
from tests.support.site import ROOT


@pytest.fixture(scope="module")
def gaps_mod() -> ModuleType:
    """scripts/docstring_gaps.py as a module (it needs griffe, of the docs extra)."""
    if importlib.util.find_spec("griffe") is None:
        require_or_skip("griffe is not installed (pip install -e '.[docs]')")
    spec = importlib.util.spec_from_file_location("docstring_gaps",
                                                  ROOT / "scripts" / "docstring_gaps.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_public_api_has_no_docstring_gaps(gaps_mod: ModuleType) -> None:
    found = gaps_mod.gaps(ROOT / "src")
    assert found == {}, "\n".join(f"{k}: {'; '.join(v)}" for k, v in sorted(found.items()))


def test_the_check_covers_the_api_pages(gaps_mod: ModuleType) -> None:
    # every module documented under docs/api/ is checked
    pages = "\n".join(p.read_text() for p in (ROOT / "docs" / "api").glob("*.md"))
    shown = {m for m in re.findall(r"^::: (mcastkit\.\w+)", pages, flags=re.M)
             if importlib.util.find_spec(m) is not None}  # a module, not a name
    assert shown, "no module found on the API pages"
    assert shown - set(gaps_mod.PUBLIC_MODULES) == set()


FAKE = '''
"""A package with one example of every gap."""

from dataclasses import dataclass

__all__ = ["Good", "Value", "Facade", "no_args", "extra_arg", "no_returns", "no_raises",
           "undocumented", "checks", "two_returns"]


def _doc(src):
    def deco(fn):
        fn.__doc__ = src.__doc__
        return fn
    return deco


def no_args(x: int) -> None:
    """Summary only."""


def extra_arg(x: int) -> None:
    """Summary.

    Args:
        x: fine.
        y: not a parameter.
    """


def no_returns() -> int:
    """Summary."""
    return 1


def two_returns() -> int:
    """Summary.

    Returns:
        A long description of the value
        whose second line is not indented.
    """
    return 1


def no_raises(x: int) -> None:
    """Summary.

    Args:
        x: a value.
    """
    if x < 0:
        raise ValueError("negative")


def checks(x: int) -> None:
    """Summary.

    Args:
        x: a value.
    """
    _check_range("x", x, 0, 1)


def undocumented() -> None:
    pass


class Part:
    def work(self, n: int) -> int:
        """Work.

        Args:
            n: how much.

        Returns:
            The result.
        """
        return n


class Facade:
    """Delegates to a Part."""

    @_doc(Part.work)
    def work(self, n: int) -> int:
        return n

    def get_size(self) -> int:
        """The size.

        Returns:
            It.
        """
        return 1

    size = property(get_size)


@dataclass
class Value:
    """A value.

    Attributes:
        a: documented.
    """

    a: int
    b: int


class Good:
    """Fine.

    Args:
        n: a number.

    Attributes:
        n: the number.
    """

    def __init__(self, n: int) -> None:
        self.n = n
'''


@pytest.fixture(scope="module")
def fake_gaps(tmp_path_factory: pytest.TempPathFactory, gaps_mod: ModuleType
              ) -> dict[str, list[str]]:
    src = tmp_path_factory.mktemp("fake")
    (src / "fakepkg").mkdir()
    (src / "fakepkg" / "__init__.py").write_text(textwrap.dedent(FAKE))
    found: dict[str, list[str]] = gaps_mod.gaps(src, "fakepkg", ("fakepkg",))
    return found


@pytest.mark.parametrize(("name", "problem"), [
    ("fakepkg.no_args", "missing Args"),
    ("fakepkg.extra_arg", "Args names y, not in the signature"),
    ("fakepkg.no_returns", "missing Returns"),
    ("fakepkg.no_raises", "missing Raises"),
    ("fakepkg.checks", "missing Raises"),
    ("fakepkg.undocumented", "no docstring"),
    ("fakepkg.Value", "Attributes lacks b"),
    ("fakepkg.two_returns", "Returns reads as several values: indent its continuation lines"),
])
def test_each_rule_reports_its_gap(fake_gaps: dict[str, list[str]], name: str,
                                   problem: str) -> None:
    assert problem in fake_gaps.get(name, []), fake_gaps


def test_complete_docstrings_pass(fake_gaps: dict[str, list[str]]) -> None:
    # a same_doc copy counts as the façade method's docstring; Args + Attributes is fine
    for name in ("fakepkg.Good", "fakepkg.Facade", "fakepkg.Facade.work",
                 "fakepkg.Facade.get_size"):
        assert name not in fake_gaps, fake_gaps.get(name)


def _section(html: str, ident: str) -> str:
    """The HTML of one documented object: from its heading to the next heading."""
    start = html.index(f'id="{ident}"')
    nxt = re.search(r'<h[2-4] id="mcastkit', html[start + 1:])
    return html[start: start + 1 + nxt.start()] if nxt else html[start:]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_facade_methods_render_their_parts_docstrings(built_site: Path) -> None:
    html = (built_site / "api" / "socket" / "index.html").read_text()
    for method in ("join", "join_source", "recv", "recv_batch", "sendto", "send_batch",
                   "set_ttl", "set_interface"):
        text = _text(_section(html, f"mcastkit.MulticastSocket.{method}"))
        for heading in ("Parameters:", "Returns:" if method not in ("set_ttl",) else "",
                        "Raises:"):
            assert heading in text, f"MulticastSocket.{method}: no {heading!r}"


def test_compat_properties_read_like_their_getters(built_site: Path) -> None:
    html = (built_site / "api" / "compat" / "index.html").read_text()
    text = _text(_section(html, "mcastkit.compat.MCast.loopback"))
    assert "reach listeners on this host" in text
    text = _text(_section(html, "mcastkit.compat.MCast.set_local_port"))
    assert "Parameters:" in text and "106" in text


def test_error_attributes_show_no_self_assignment(built_site: Path) -> None:
    text = _text((built_site / "api" / "errors" / "index.html").read_text())
    assert not re.search(r"\b(op|group|source|interface) = \1\b", text)
    assert "the operation that failed" in text


def test_no_rest_literal_marker_in_api_pages(built_site: Path) -> None:
    # ``Example::`` (reST) renders as a stray "::"; the docstrings use fenced blocks
    for page in (built_site / "api").rglob("*.html"):
        assert not re.search(r"::</p>", page.read_text()), page
