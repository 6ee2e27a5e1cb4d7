"""The API reference covers every public name, and the strict build catches what it must.

Every name in the ``__all__`` of ``mcastkit``, ``mcastkit.aio`` and ``mcastkit.compat``
must have an anchor (``id="mcastkit.aio.open_multicast"``) on some page of the built
site: a new public name without a ``:::`` entry in docs/api/ fails here.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.site import ROOT

PUBLIC_MODULES = ("mcastkit", "mcastkit.aio", "mcastkit.compat", "mcastkit.relay")
PUBLIC_NAMES = [f"{m}.{n}" for m in PUBLIC_MODULES for n in importlib.import_module(m).__all__]


def _anchors(site: Path) -> dict[str, str]:
    """Every ``id="mcastkit..."`` in the built HTML, mapped to the page holding it."""
    found: dict[str, str] = {}
    for page in site.rglob("*.html"):
        for anchor in re.findall(r'id="(mcastkit[\w.]*)"', page.read_text()):
            found.setdefault(anchor, str(page.relative_to(site)))
    return found


def test_public_names_are_many() -> None:
    # a guard against an empty __all__ making the next test vacuous
    assert len(PUBLIC_NAMES) >= 40
    assert "mcastkit.MulticastSocket" in PUBLIC_NAMES


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_has_an_anchor(built_site: Path, name: str) -> None:
    anchors = _anchors_cache(built_site)
    assert name in anchors, f"{name} has no entry in the API reference: add '::: {name}' " \
                            "to a page under docs/api/"


_CACHE: dict[Path, dict[str, str]] = {}


def _anchors_cache(site: Path) -> dict[str, str]:
    if site not in _CACHE:
        _CACHE[site] = _anchors(site)
    return _CACHE[site]


def test_multicastsocket_page_documents_its_methods(built_site: Path) -> None:
    html = (built_site / "api" / "socket" / "index.html").read_text()
    for member in ("bind", "join", "join_source", "leave", "recv", "recv_batch", "sendto",
                   "send_batch", "close", "stats"):
        assert f'id="mcastkit.MulticastSocket.{member}"' in html, member


def test_every_nav_page_was_built(built_site: Path) -> None:
    for md in (ROOT / "docs").rglob("*.md"):
        rel = md.relative_to(ROOT / "docs").with_suffix("")
        out = built_site / ("index.html" if rel.name == "index" and rel.parent == Path()
                            else (rel.parent if rel.name == "index" else rel) / "index.html")
        assert out.is_file(), f"{md} was not built into {out}"


def test_version_is_single_sourced() -> None:
    import mcastkit
    from mcastkit import _version

    assert mcastkit.__version__ == _version.__version__
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{mcastkit.__version__}]" in changelog


def _build(tmp: Path, docs: Path) -> subprocess.CompletedProcess[str]:
    """A strict build of a copy of the config pointed at another docs directory."""
    config = (ROOT / "mkdocs.yml").read_text()
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}")
    config = config.replace("scripts/mkdocs_hooks.py", str(ROOT / "scripts" / "mkdocs_hooks.py"))
    config = config.replace("scripts/griffe_mcastkit.py",
                            str(ROOT / "scripts" / "griffe_mcastkit.py"))
    config = config.replace("paths: [src]", f"paths: [{ROOT / 'src'}]")
    config = config.replace("base_path: [.]", f"base_path: [{ROOT}]")
    (tmp / "mkdocs.yml").write_text(config)
    (tmp / "src").symlink_to(ROOT / "src")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-f", str(tmp / "mkdocs.yml"), "-d", str(tmp / "out")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp)


def test_strict_build_fails_on_a_broken_link(built_site: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    page = docs / "quickstart.md"
    page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    r = _build(tmp_path, docs)
    assert r.returncode != 0
    assert "no-such-page.md" in r.stdout + r.stderr


def test_only_known_gaps_lack_a_docstring() -> None:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks",
                                                  ROOT / "scripts" / "mkdocs_hooks.py")
    assert spec and spec.loader
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    missing = hooks.undocumented(ROOT / "src")
    known = [gap for gap, _ in hooks.KNOWN_GAPS]
    assert [m for m in missing if not any(m in gap for gap in known)] == []


def test_no_sphinx_role_shows_in_a_page(built_site: Path) -> None:
    # the docstrings write :class:`~mcastkit.X`; the hook turns those into references
    role = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj|const):<code>")
    shown = {str(p.relative_to(built_site)): len(role.findall(p.read_text()))
             for p in built_site.rglob("*.html")}
    assert {k: v for k, v in shown.items() if v} == {}
    html = (built_site / "api" / "aio" / "index.html").read_text()
    assert 'href="../socket/#mcastkit.MulticastSocket"' in html
