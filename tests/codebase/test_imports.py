"""Import hygiene: every module of mcastkit imports on its own in a fresh interpreter,
``import mcastkit`` stays light (no asyncio, no argparse), and the import-linter layer
contracts in pyproject.toml hold.

Must not: import the faces into this test process (each check runs in a subprocess).
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mcastkit

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(mcastkit.__path__, prefix="mcastkit.")
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env, cwd=ROOT)


def test_module_list_is_complete() -> None:
    for core in ("mcastkit._addr", "mcastkit._errors", "mcastkit._membership",
                 "mcastkit._packet", "mcastkit._platform", "mcastkit._platform._linux",
                 "mcastkit._platform._structs", "mcastkit._socket", "mcastkit._interfaces"):
        assert core in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    r = _run(f"import importlib; importlib.import_module({module!r})")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("heavy", ["asyncio", "argparse"])
def test_import_mcastkit_stays_light(heavy: str) -> None:
    r = _run(f"import sys, mcastkit; print({heavy!r} in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False", f"import mcastkit loaded {heavy}"


def test_import_mcastkit_loads_no_face() -> None:
    r = _run("import sys, mcastkit; print(sorted(m for m in sys.modules if m in "
             "('mcastkit.aio', 'mcastkit.cli', 'mcastkit.compat')))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def _lint_imports() -> str | None:
    here = Path(sys.executable).parent / "lint-imports"
    if here.exists():
        return str(here)
    return shutil.which("lint-imports")


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _present_only_config(tmp: Path) -> tuple[Path, list[str]]:
    """pyproject's contracts with layers/modules that do not exist yet dropped (the faces
    land after the core). Returns the config path and what was dropped."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    dropped: list[str] = []
    contracts = []
    for c in cfg["contracts"]:
        c = dict(c)
        for key in ("layers", "modules"):
            if key not in c:
                continue
            kept = []
            for layer in c[key]:
                alts = [a.strip() for a in layer.split("|")]
                present = [a for a in alts if _exists(a)]
                dropped += [a for a in alts if a not in present]
                if present:
                    kept.append(" | ".join(present))
            c[key] = kept
        if c.get("type") == "independence" and len(c.get("modules", [])) < 2:
            continue
        contracts.append(c)
    lines = ["[tool.importlinter]", f'root_package = "{cfg["root_package"]}"']
    for c in contracts:
        lines.append("[[tool.importlinter.contracts]]")
        for k, v in c.items():
            if isinstance(v, list):
                lines.append(f"{k} = [" + ", ".join(f'"{x}"' for x in v) + "]")
            elif isinstance(v, bool):
                lines.append(f"{k} = {str(v).lower()}")
            else:
                lines.append(f'{k} = "{v}"')
    path = tmp / "importlinter.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, sorted(set(dropped))


def test_lint_imports_passes(tmp_path: Path) -> None:
    exe = _lint_imports()
    if exe is None:
        pytest.skip("lint-imports is not installed (pip install import-linter)")
    config, dropped = _present_only_config(tmp_path)
    args = [exe, "--no-cache", "--no-logo"]
    if dropped:
        args.append(str(config))
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)
    note = f" (modules not written yet, left out: {dropped})" if dropped else ""
    assert r.returncode == 0, f"lint-imports failed{note}:\n{r.stdout}\n{r.stderr}"
