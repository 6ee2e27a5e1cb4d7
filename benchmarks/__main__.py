"""``python -m benchmarks [--quick] [--runs N] [--only GROUP ...] [--clock cpu|wall]``.

Prints one table per scenario group (the median of the runs and the ratio to a baseline
measured in the same run), writes benchmarks/out/report.json and benchmarks/out/report.png.
Scenario groups are the rows of ``SCENARIOS``: a new group adds one line there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from . import e2e, groups, large, opening, relay, rx, sendshapes, sockets, tx
from . import record as record_bench
from ._util import CLOCKS, OUT, Options, Result, set_clock

#: scenario group -> runner. A runner returns table rows, or a dict of figures for the
#: report (e2e, memory). ``--only`` picks groups by these names; the default runs all.
SCENARIOS: dict[str, Callable[[Options], list[Result] | dict[str, Any]]] = {
    "drain": lambda o: rx.run(o.count, o.sizes, o.runs),
    "send": lambda o: tx.run(o.count * 2, o.sizes, o.runs),
    "e2e": lambda o: e2e.offered(200_000, 1.0 if o.quick else 5.0),
    "memory": lambda o: e2e.memory(100_000 if o.quick else 1_000_000),
    "large": large.run,
    "sockets": sockets.run,
    "open": opening.run,
    "groups": groups.run,
    "send-shapes": sendshapes.run,
    "record": lambda o: record_bench.run(o.count, o.sizes, o.runs),
    "record-offered": lambda o: record_bench.offered(50_000 if o.quick else 200_000,
                                                     1.0 if o.quick else 5.0),
    "relay": lambda o: relay.run(o.count // 3, o.sizes, o.runs),
    "relay-50k": lambda o: relay.sustained(50_000, 2.0 if o.quick else 10.0),
}


def _ratio(r: Result, by: dict[tuple[str, str, int], Result], name: str | None) -> float:
    base = by.get((r.scenario, name or "", r.size))
    if not (base and base.pps and r.pps):
        return float("nan")
    return base.pps / r.pps if r.lower_is_better else r.pps / base.pps


def _value(r: Result) -> str:
    if not r.runs:
        return r.note
    v = f"{r.pps:,.0f}" if r.pps >= 100 else f"{r.pps:.3g}"
    return v if r.unit == "pps" else f"{v} {r.unit}"


def _table(results: list[Result]) -> str:
    by = {(r.scenario, r.name, r.size): r for r in results}
    lines = [f"{'scenario':11} {'size':>5} {'name':38} {'value':>15} {'ratio':>7}  baseline"]
    for r in results:
        line = (f"{r.scenario:11} {r.size:>5} {r.name:38} {_value(r):>15} "
                f"{_ratio(r, by, r.baseline):>7.2f}x  {r.baseline or ''}")
        if r.baseline2:
            line += f"; {_ratio(r, by, r.baseline2):.2f}x {r.baseline2}"
        if r.extra:
            line += "  [" + ", ".join(f"{k} {v:.3g}" for k, v in r.extra.items()) + "]"
        lines.append(line)
    return "\n".join(lines)


def _chart(results: list[Result], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in results if r.runs and r.unit == "pps"]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(10, 0.3 * len(rows) + 1.5))
    ax.barh([f"{r.scenario} {r.size}B {r.name}" for r in rows], [r.pps for r in rows])
    ax.set_xlabel("datagrams per second (median)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("--quick", action="store_true", help="fewer datagrams, one size")
    ap.add_argument("--runs", type=int, default=3, help="runs per row (median)")
    ap.add_argument("--only", choices=list(SCENARIOS), action="append",
                    help="run only this scenario group (repeatable)")
    ap.add_argument("--clock", choices=list(CLOCKS), default="cpu",
                    help="time rows by this process's CPU time (default: steadier on a "
                         "shared machine) or by the wall clock")
    a = ap.parse_args(argv)
    set_clock(a.clock)
    if os.environ.get("MCAST_IN_NETNS") != "1":
        print("note: not inside scripts/in-netns; run `make bench` for an isolated run",
              file=sys.stderr)
    opts = Options(quick=a.quick, runs=a.runs)
    results: list[Result] = []
    extra: dict[str, Any] = {}
    t0 = time.time()
    for name, runner in SCENARIOS.items():
        if a.only and name not in a.only:
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        got = runner(opts)
        if isinstance(got, dict):
            extra[name] = got
            print(f"{name}:", got, flush=True)
        else:
            results += got
            print(_table(got), flush=True)
    OUT.mkdir(exist_ok=True)
    report = {
        "command": " ".join(["python -m benchmarks", *(argv or sys.argv[1:])]),
        "python": sys.version.split()[0], "kernel": platform.release(),
        "cpus": os.cpu_count(), "load": os.getloadavg(), "clock": a.clock,
        "seconds": round(time.time() - t0, 1),
        "results": [dict(asdict(r), value=r.pps) for r in results], **extra,
    }
    (OUT / "report.json").write_text(json.dumps(report, indent=2))
    if _chart(results, str(OUT / "report.png")):
        print(f"wrote {OUT / 'report.json'} and {OUT / 'report.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
