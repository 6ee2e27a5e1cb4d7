"""Compare mode: ``python -m benchmarks --compare REV`` measures the mcastkit of commit REV
("before") and of this working tree ("after") in the same run, interleaved, with this
tree's scenario code on both sides, and says per row whether it moved against its
same-run baseline by more than the noise of the machine.

How: REV is exported with ``git archive`` into a temporary directory outside the
repository and installed with pip (its own build hook, so its accelerator is compiled the
way that tree builds it) into ``benchmarks/build/compare/<commit>-<python>/`` (kept: the
next comparison with the same commit reuses it); this tree is installed the same way into
``benchmarks/build/compare/tree-<python>/`` on every call. Then, for every run and every
group, one child process per side (``benchmarks._child``, the side's package first on
PYTHONPATH) runs the group once; the side that goes first alternates between runs. The
statistics are in ``_stats``, the tables in ``_compare_report``.

Must not: touch the repository's checkout or index (REV is read with ``git archive``
only), change what a scenario measures, or stop the run when one side cannot run a row
or a group (that is an n/a with the reason).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _compare_report, _stats
from ._child import EXPECT_ENV
from ._util import BUILD, BUSY_ENV, OUT, parse_busy

ROOT = Path(__file__).resolve().parent.parent
CACHE = BUILD / "compare"
#: the groups of docs/performance.md's tables (the others report figures, not rows)
DEFAULT_GROUPS = ["drain", "send", "large", "sockets", "open", "groups", "send-shapes"]
DEFAULT_RUNS = 5
CHILD_TIMEOUT_S = 3600


class CompareError(RuntimeError):
    """Compare mode cannot start (no git, REV unknown, the package does not build)."""


@dataclass(frozen=True)
class Side:
    """One package under test: where it is installed and what it is."""

    label: str  # "before" / "after"
    name: str  # the commit, or "tree" plus the commit it sits on
    site: Path  # the directory put first on PYTHONPATH
    accelerator: bool  # the compiled accelerator was built into it


def _git(*args: str) -> str:
    try:
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                           check=False)
    except FileNotFoundError as e:
        raise CompareError("compare mode needs git (apt-get install git)") from e
    if r.returncode != 0:
        raise CompareError(f"git {' '.join(args)}: {r.stderr.strip() or r.returncode}"
                           " (compare mode needs a git checkout of mcastkit)")
    return r.stdout.strip()


def _install(src: Path, site: Path) -> bool:
    """pip-install the tree at ``src`` (no dependencies, offline, with the hatchling of
    this environment) into ``site``; True when the accelerator was built into it."""
    if importlib.util.find_spec("hatchling") is None:
        raise CompareError("compare mode builds each package with hatchling: "
                           "pip install -e '.[bench]' (make bench-compare does)")
    shutil.rmtree(site, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
           "--no-build-isolation", "--disable-pip-version-check", "--target", str(site),
           str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise CompareError(f"building {src} failed:\n{r.stderr[-3000:]}")
    return any((site / "mcastkit").glob("_speedups*.so"))


def _built(dest: Path, src: Path, info: dict[str, Any]) -> bool:
    """Install ``src`` into ``dest/site`` through a private directory renamed into place
    at the end, so two comparisons at once never see a half-built package."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    try:
        accel = _install(src, tmp / "site")
        (tmp / "built.json").write_text(json.dumps({**info, "accelerator": accel}))
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return accel


def build_rev(rev: str) -> Side:
    """The package of commit ``rev``, built once per commit and Python and cached."""
    _git("rev-parse", "--git-dir")  # a checkout at all (else: that is the message)
    try:
        sha = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except CompareError as e:
        raise CompareError(f"{rev!r} is not a commit of this repository (a branch, tag or "
                           "hash that `git log` knows; `git fetch` it first)") from e
    dest = CACHE / f"{sha[:12]}-{sys.implementation.cache_tag}"
    stamp = dest / "built.json"
    if stamp.exists():
        info = json.loads(stamp.read_text())
        print(f"compare: before = {sha[:12]} (built earlier, {dest})", file=sys.stderr)
        return Side("before", sha[:12], dest / "site", bool(info["accelerator"]))
    print(f"compare: building {rev} = {sha[:12]} into {dest}", file=sys.stderr, flush=True)
    got = subprocess.run(["git", "archive", "--format=tar", sha], cwd=ROOT,
                         capture_output=True, check=False)
    if got.returncode != 0:
        raise CompareError(f"git archive {sha}: {got.stderr.decode(errors='replace')}")
    with tempfile.TemporaryDirectory(prefix="mcastkit-compare-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(got.stdout)) as tar:
            if sys.version_info >= (3, 12):
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)  # our own repository's archive
        accel = _built(dest, Path(tmp), {"commit": sha})
    return Side("before", sha[:12], dest / "site", accel)


#: what building this tree's package needs (copied: the build must not write into it)
TREE_FILES = ("pyproject.toml", "hatch_build.py", "README.md", "src/mcastkit")


def build_tree(tag: str) -> Side:
    """This working tree's package (uncommitted changes included), built afresh into a
    directory of this comparison (``tag``), from a copy of the files the build reads."""
    head = _git("rev-parse", "--short=12", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "src"))
    name = f"tree ({head}{'+changes' if dirty else ''})"
    print(f"compare: building this tree = {name}", file=sys.stderr, flush=True)
    dest = CACHE / f"tree-{sys.implementation.cache_tag}-{tag}"
    skip = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    with tempfile.TemporaryDirectory(prefix="mcastkit-compare-") as tmp:
        for rel in TREE_FILES:
            if (ROOT / rel).is_dir():
                shutil.copytree(ROOT / rel, Path(tmp) / rel, ignore=skip)
            else:
                shutil.copy2(ROOT / rel, Path(tmp) / rel)
        accel = _built(dest, Path(tmp), {"tree": name})
    return Side("after", name, dest / "site", accel)


def run_child(side: Side, group: str, quick: bool, clock: str, busy: str | None
              ) -> dict[str, Any]:
    """Run ``group`` once with ``side``'s package in a child process; its report, or
    ``{"error": ...}`` when it could not run."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(side.site), *filter(None, [env.get("PYTHONPATH")])])
    env[EXPECT_ENV] = str(side.site)
    env.pop(BUSY_ENV, None)
    if busy:
        env[BUSY_ENV] = busy
    with tempfile.TemporaryDirectory(prefix="mcastkit-compare-") as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, "-m", "benchmarks._child", group, str(out), "--clock", clock]
        if quick:
            cmd.append("--quick")
        try:
            r = subprocess.run(cmd, cwd=ROOT, env=env, stdout=sys.stderr,
                               timeout=CHILD_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return {"error": f"no result within {CHILD_TIMEOUT_S} s"}
        if not out.exists():
            return {"error": f"the child process exited with {r.returncode} (see above)"}
        got: dict[str, Any] = json.loads(out.read_text())
        return got


def compare(rev: str, groups: Sequence[str], runs: int, quick: bool = False,
            clock: str = "cpu", busy_after: str | None = None, threshold: float = 0.03,
            command: str = "", out: Path | None = None) -> dict[str, Any]:
    """Measure ``groups`` ``runs`` times with the package of ``rev`` and of this tree,
    interleaved, and return the report (also written to benchmarks/out/compare.json and
    compare.md and printed as tables).

    Args:
        rev: the "before" commit (anything ``git rev-parse`` accepts).
        groups: scenario groups (names of ``SCENARIOS``).
        runs: runs per side; 5 or more for a verdict (the interval's coverage).
        quick: fewer datagrams, one size (as ``--quick``).
        clock: "cpu" or "wall" (as ``--clock``).
        busy_after: ``ROW=PCT[;...]``: the after side busy-waits PCT % longer in ROW (a
            self-test of the method: that row must come out lower).
        threshold: the change the verdicts are about (0.03 = 3 %).
        command: the command line, for the report.
        out: the JSON report's path (default benchmarks/out/compare.json; the Markdown
            tables go next to it, ``.md``).

    Returns:
        The report: sides, rows with their runs, intervals and verdicts, timings.

    Raises:
        CompareError: git, the commit or a build is missing; a bad ``busy_after``.
    """
    if busy_after:
        try:
            parse_busy(busy_after)
        except ValueError as e:
            raise CompareError(f"--inject-slowdown: {e}") from e
    t_start = time.time()
    load0 = os.getloadavg()
    before = build_rev(rev)
    after = build_tree(str(os.getpid()))
    try:
        report = _measure(before, after, groups, runs, quick, clock, busy_after,
                          threshold, command, t_start, load0)
    finally:
        shutil.rmtree(after.site.parent, ignore_errors=True)
    out = out or OUT / "compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(_compare_report.markdown(report))
    print(_compare_report.text(report), flush=True)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return report


def _measure(before: Side, after: Side, groups: Sequence[str], runs: int, quick: bool,
             clock: str, busy_after: str | None, threshold: float, command: str,
             t_start: float, load0: tuple[float, float, float]) -> dict[str, Any]:
    if before.accelerator != after.accelerator:
        print(f"compare: WARNING: accelerator built for before={before.accelerator}, "
              f"after={after.accelerator}: the rows compare backends, not only code",
              file=sys.stderr)
    t_build = time.time() - t_start
    children: dict[str, dict[str, list[dict[str, Any]]]] = {
        g: {"before": [], "after": []} for g in groups}
    seconds: dict[str, dict[str, float]] = {g: {"before": 0.0, "after": 0.0} for g in groups}
    for i in range(runs):
        order = (before, after) if i % 2 == 0 else (after, before)
        for g in groups:
            for side in order:
                print(f"compare: run {i + 1}/{runs} {g} {side.label} ({side.name})",
                      file=sys.stderr, flush=True)
                t = time.time()
                got = run_child(side, g, quick, clock,
                                busy_after if side.label == "after" else None)
                seconds[g][side.label] += time.time() - t
                children[g][side.label].append(got)
    rows: list[dict[str, Any]] = []
    for g in groups:
        rows += _compare_report.analyse(g, children[g]["before"], children[g]["after"],
                                        threshold)

    def describe(s: Side) -> dict[str, Any]:
        """What the side is, and whether its accelerator loaded in every child."""
        got = [c for g in groups for c in children[g][s.label] if "accelerator" in c]
        return {"name": s.name, "built_accelerator": s.accelerator,
                "accelerator": bool(got) and all(c["accelerator"] for c in got),
                "mcastkit": sorted({c["mcastkit"] for c in got})}

    report: dict[str, Any] = {
        "command": command, "before": describe(before), "after": describe(after),
        "python": sys.version.split()[0], "kernel": platform.release(),
        "cpus": os.cpu_count(), "load_start": load0, "load_end": os.getloadavg(),
        "clock": clock, "runs": runs, "quick": quick, "groups": list(groups),
        "threshold": threshold, "inject_slowdown_after": busy_after,
        "seconds": round(time.time() - t_start, 1), "build_seconds": round(t_build, 1),
        "group_seconds": {g: {k: round(v, 1) for k, v in s.items()}
                          for g, s in seconds.items()},
        "rows": rows,
    }
    return report


def check_level(runs: int) -> str | None:
    """A warning when ``runs`` cannot give an interval of the coverage a verdict needs."""
    level = _stats.coverage(runs, 1)
    if level < _stats.MIN_LEVEL:
        return (f"--runs {runs}: with fewer than 5 runs the interval of a change covers "
                f"{level:.0%} at most; rows get 'too few runs'")
    return None
