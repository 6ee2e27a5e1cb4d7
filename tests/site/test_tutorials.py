"""Every code block of the site's own pages runs as written, in a fresh namespace.

Pages: docs/index.md, docs/quickstart.md and every docs/tutorials/*.md. Each ```python
block runs as its own program; each ```sh block runs with ``sh -eu`` and this
interpreter's scripts directory first on PATH (so ``mcastkit`` and ``python`` are the
installed ones). The only blocks not run are those made only of ``pip install`` lines:
the namespace has no package registry (tests/packaging installs the built artifacts).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.netns import Netns
from tests.support.site import ROOT

PAGES = [ROOT / "docs" / "index.md", ROOT / "docs" / "quickstart.md",
         *sorted((ROOT / "docs" / "tutorials").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", flags=re.S | re.M)


def _blocks() -> list[tuple[str, str, str]]:
    """(id, language, code) for every python/sh block of PAGES."""
    out = []
    for page in PAGES:
        for i, (lang, code) in enumerate(FENCE.findall(page.read_text())):
            if lang not in ("python", "sh"):
                continue
            out.append((f"{page.relative_to(ROOT / 'docs').with_suffix('')}-{i}", lang, code))
    return out


def _registry_only(code: str) -> bool:
    lines = [ln.split("#")[0].strip() for ln in code.splitlines()]
    lines = [ln for ln in lines if ln]
    return bool(lines) and all(ln.startswith("pip install ") for ln in lines)


BLOCKS = _blocks()
RUNNABLE = [b for b in BLOCKS if not (b[1] == "sh" and _registry_only(b[2]))]


def test_every_tutorial_has_code() -> None:
    for page in PAGES:
        assert any(bid.startswith(str(page.relative_to(ROOT / "docs").with_suffix("")))
                   for bid, _, _ in RUNNABLE), f"{page} has no runnable block"
    # only the install lines are left out
    assert len(BLOCKS) - len(RUNNABLE) <= 1


@pytest.mark.kernel
@pytest.mark.parametrize("lang, code", [b[1:] for b in RUNNABLE], ids=[b[0] for b in RUNNABLE])
def test_block_runs(netns: Netns, lang: str, code: str, tmp_path: Path) -> None:
    # forked from the test's thread, so the program lives in the test's namespace
    env = {**os.environ,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if lang == "python":
        script = tmp_path / "block.py"
        script.write_text(code)
        cmd = [sys.executable, str(script)]
    else:
        cmd = ["sh", "-eu", "-c", code]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    assert r.stdout.strip(), "the block printed nothing"
