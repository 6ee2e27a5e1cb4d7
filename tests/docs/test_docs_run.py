"""The README's Python examples and the demo run as written (in a fresh namespace).

Blocks that need an interface other than ``lo`` (IPv6 needs a real link) are listed in
SKIP_MARKERS and are covered by the kernel tests instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.addrs import asm4
from tests.support.netns import Netns

ROOT = Path(__file__).resolve().parents[2]
SKIP_MARKERS = ("eth1",)


def _python_blocks(path: Path) -> list[str]:
    text = path.read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


README_BLOCKS = [b for b in _python_blocks(ROOT / "README.md")
                 if not any(m in b for m in SKIP_MARKERS)]


def test_readme_has_runnable_examples() -> None:
    assert len(README_BLOCKS) >= 2


@pytest.mark.kernel
@pytest.mark.parametrize("block", README_BLOCKS, ids=[f"block{i}" for i in
                                                      range(len(README_BLOCKS))])
def test_readme_block_runs(netns: Netns, block: str) -> None:
    # the subprocess is forked from this thread, so it lives in the test's namespace
    out = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


@pytest.mark.kernel
def test_demo_prints_what_it_received(netns: Netns) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    received = [line for line in out.stdout.splitlines() if line.startswith("received ")]
    assert len(received) == 6
    assert f"group={asm4(0, 2)}" in out.stdout and "kernel drops 0" in out.stdout
