"""Fixtures for the documentation-site tests: one strict build of the site per run.

Owns: ``built_site`` (the site built with ``mkdocs build --strict`` into a temporary
directory, so the tests never depend on a stale ``site/``) and ``ARTIFACTS`` (where the
browser test saves its screenshots: ``artifacts/site/`` in the repository, gitignored).
Must not: reach any network (the build fetches nothing: ``theme.font`` is off).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "site"


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strictly from this checkout's docs and docstrings."""
    if importlib.util.find_spec("mkdocs") is None:
        require_or_skip("mkdocs is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                        "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
                       capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout}\n{r.stderr}"
    assert (out / "index.html").is_file()
    return out
