"""One side of one run of compare mode: ``python -m benchmarks._child GROUP OUT.json
[--quick] [--clock cpu|wall]`` runs scenario group GROUP once (one run of every row,
interleaved as ``make bench`` does) with whatever ``mcastkit`` is first on the path (compare
mode puts the package under test first on PYTHONPATH) and writes its rows as JSON.

The file says which package ran (its path, and whether its accelerator loaded), so a child
that imported the wrong copy is caught instead of measured. A group that cannot even start
(its module needs an API the package lacks) is written as an error, not a crash.

Must not: change what a scenario measures (it calls the same runners as ``make bench``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

#: compare mode sets it to the directory the child's mcastkit must come from
EXPECT_ENV = "MCAST_BENCH_EXPECT"


def _package() -> dict[str, Any]:
    import mcastkit

    where = str(Path(mcastkit.__file__ or "?").resolve())
    try:
        importlib.import_module("mcastkit._speedups")
        accel = True
    except ImportError:
        accel = False
    return {"mcastkit": where, "accelerator": accel}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks._child")
    ap.add_argument("group")
    ap.add_argument("out", type=Path)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--clock", default="cpu")
    a = ap.parse_args(argv)
    report: dict[str, Any] = {"group": a.group}
    try:
        report.update(_package())
        expect = os.environ.get(EXPECT_ENV)
        if expect and not report["mcastkit"].startswith(str(Path(expect).resolve())):
            raise RuntimeError(f"imported mcastkit from {report['mcastkit']}, not from "
                               f"{expect} (is PYTHONPATH overridden?)")
        from .__main__ import SCENARIOS
        from ._util import Options, set_clock

        set_clock(a.clock)
        got = SCENARIOS[a.group](Options(quick=a.quick, runs=1))
        if isinstance(got, dict):
            report["figures"] = got
        else:
            report["results"] = [asdict(r) for r in got]
    except Exception as e:  # the parent reports it per row: n/a, with the reason
        traceback.print_exc(file=sys.stderr)
        report["error"] = f"{type(e).__name__}: {e}"[:300]
    a.out.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
