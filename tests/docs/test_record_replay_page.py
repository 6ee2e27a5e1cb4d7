"""docs/record-replay.md runs as written: its loopback recipes (shell) and its Python
examples, in order, in a fresh namespace and an empty directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.netns import Netns
from tests.support.peers import need

pytestmark = [pytest.mark.kernel]

DOC = Path(__file__).resolve().parents[2] / "docs" / "record-replay.md"


def _blocks() -> list[tuple[str, str]]:
    text = DOC.read_text()
    return [(lang, body) for lang, body in re.findall(r"```(sh|python)\n(.*?)```", text, re.S)
            if lang == "python" or "-i lo" in body]


def test_doc_has_runnable_recipes() -> None:
    langs = [lang for lang, _ in _blocks()]
    assert langs.count("sh") >= 2 and langs.count("python") >= 2


def test_doc_blocks_run(netns: Netns, tmp_path: Path) -> None:
    need("tshark")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    for lang, body in _blocks():
        argv = ["sh", "-ec", body] if lang == "sh" else [sys.executable, "-c", body]
        r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, f"{body}\n{r.stdout}\n{r.stderr}"
    assert (tmp_path / "feed.pcapng").stat().st_size > 200_000
