"""Fixtures for the release tests: artifacts built once per run, clean venvs, offline.

Owns: ``wheelhouse`` (the local wheels ``make wheelhouse`` downloaded before the
namespace: the build backend, ifaddr, pytest, hypothesis), ``dist`` (``python -m build``
of this checkout: an sdist, and a wheel built *from that sdist*, so a file missing from
the sdist breaks the wheel), and ``Venv`` (a fresh virtual environment that installs only
from the wheelhouse, and runs the unit tier against what it installed).
Must not: reach a package registry (PIP_NO_INDEX=1 everywhere), or touch the
repository's own .venv or src/ tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.fixtures import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
UNIT_DESELECT = [
    # checks the source tree's import contracts with the dev tool, not the artifact
    "tests/codebase/test_imports.py::test_lint_imports_passes",
]


def offline_env(wheelhouse: Path, **extra: str) -> dict[str, str]:
    """The environment for pip/build: no index, only the local wheelhouse."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV", "MCASTKIT_NO_SPEEDUPS"))}
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse),
               PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    path = Path(os.environ.get("MCASTKIT_WHEELHOUSE", ROOT / ".wheelhouse"))
    if not (path / ".downloaded").exists():
        require_or_skip(f"no local wheelhouse at {path}: run 'make wheelhouse' (it needs "
                        "the package registry, so it runs before the namespace)")
    return path


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path


def run(cmd: list[str], *, env: dict[str, str], cwd: Path = ROOT,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


@pytest.fixture(scope="session")
def dist(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """``python -m build``: the sdist, then the wheel built from the unpacked sdist."""
    out = tmp_path_factory.mktemp("dist")
    r = run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
            env=offline_env(wheelhouse))
    assert r.returncode == 0, f"python -m build failed:\n{r.stdout}\n{r.stderr}"
    sdists, wheels = list(out.glob("*.tar.gz")), list(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return Dist(sdists[0], wheels[0])


class Venv:
    """A fresh virtual environment that installs from the wheelhouse only."""

    def __init__(self, path: Path, wheelhouse: Path) -> None:
        self.path, self.wheelhouse = path, wheelhouse
        r = run([sys.executable, "-m", "venv", str(path)], env=offline_env(wheelhouse))
        assert r.returncode == 0, r.stderr
        self.bin = path / "bin"
        self.python = str(self.bin / "python")

    def env(self, **extra: str) -> dict[str, str]:
        env = offline_env(self.wheelhouse, **extra)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.path)
        return env

    def install(self, *what: str, env: dict[str, str] | None = None) -> str:
        """pip install -v (so a build hook's output shows); returns pip's output."""
        r = run([self.python, "-m", "pip", "install", "-v", *what], env=env or self.env())
        assert r.returncode == 0, f"pip install {what} failed:\n{r.stdout[-4000:]}\n{r.stderr}"
        return r.stdout + r.stderr

    def python_c(self, code: str, cwd: Path | None = None) -> str:
        r = run([self.python, "-c", code], env=self.env(), cwd=cwd or self.path)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def unit_tier(self, *, speedups: bool = True) -> None:
        """The core's unit tests (``-m unit`` in tests/core and tests/codebase) against the
        installed package (never against src/). The other folders' unit tests need extras
        (relay, docs) that these clean venvs do not have; scripts/unprivileged-unit runs
        all of them. ``speedups=False``: the package was installed without the
        accelerator on purpose, so CI's ``MCASTKIT_REQUIRE_SPEEDUPS`` does not apply (the
        accelerator's own tests skip there, visibly)."""
        # from the checkout's root, as pytest runs below: src/ is not on the path there,
        # so `import mcastkit` finds the installed copy
        where = self.python_c("import mcastkit; print(mcastkit.__file__)", cwd=ROOT)
        assert where.startswith(str(self.path)), where
        args = [self.python, "-m", "pytest", "-m", "unit", "tests/core", "tests/codebase", "-q",
                "-p", "no:cacheprovider"]
        for node in UNIT_DESELECT:
            args += ["--deselect", node]
        env = self.env()
        if not speedups:
            env.pop("MCASTKIT_REQUIRE_SPEEDUPS", None)
        r = run(args, env=env, cwd=ROOT)
        assert r.returncode == 0, f"unit tier failed against {where}:\n{r.stdout[-6000:]}"
        assert " passed" in r.stdout.splitlines()[-1], r.stdout[-500:]
