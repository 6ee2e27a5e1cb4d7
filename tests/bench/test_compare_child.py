"""Compare mode's child process (benchmarks/_child.py) against a package that lacks what a
group needs, and against the wrong package: it writes the reason, never crashes the run
and never measures a copy of mcastkit other than the one it was given. No sockets: the
groups fail at import, before they measure anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _child(tmp: Path, group: str, site: Path, expect: Path) -> dict[str, Any]:
    out = tmp / "rows.json"
    env = {**os.environ, "PYTHONPATH": str(site), "MCAST_BENCH_EXPECT": str(expect)}
    subprocess.run([sys.executable, "-m", "benchmarks._child", group, str(out)], cwd=ROOT,
                   env=env, capture_output=True, text=True, timeout=60, check=True)
    got: dict[str, Any] = json.loads(out.read_text())
    return got


def _old_package(tmp: Path) -> Path:
    """A stand-in for an old mcastkit: it imports, but has no capture module."""
    site = tmp / "site"
    (site / "mcastkit").mkdir(parents=True)
    (site / "mcastkit" / "__init__.py").write_text('"""an old mcastkit"""\n')
    return site


def test_group_the_package_cannot_import_is_an_error_not_a_crash(tmp_path: Path) -> None:
    site = _old_package(tmp_path)
    got = _child(tmp_path, "record", site, site)
    assert got["mcastkit"] == str((site / "mcastkit" / "__init__.py").resolve())
    assert got["accelerator"] is False
    assert got["error"] == "ModuleNotFoundError: No module named 'mcastkit.capture'"
    assert "results" not in got


def test_child_refuses_a_mcastkit_from_elsewhere(tmp_path: Path) -> None:
    site = _old_package(tmp_path)
    got = _child(tmp_path, "record", site, tmp_path / "elsewhere")
    assert got["error"].startswith("RuntimeError: imported mcastkit from ")
    assert "elsewhere" in got["error"]
