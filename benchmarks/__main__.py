"""``python -m benchmarks [--quick] [--runs N] [--only GROUP ...] [--clock cpu|wall]``.

Prints one table per scenario group (the median of the runs and the ratio to a baseline
measured in the same run), writes benchmarks/out/report.json and benchmarks/out/report.png.
Scenario groups are the rows of ``SCENARIOS``: a new group adds one line there.

``--compare REV`` measures the package of commit REV against this tree's in the same run
(compare.py); ``--markdown FILE`` prints a compare report as Markdown tables.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ._util import CLOCKS, OUT, Options, Result, set_clock


class _Lazy:
    """A group module imported when one of its functions is first called, so that a group
    runs even where another group's module cannot be imported (compare mode runs these
    scenarios against older packages, which lack e.g. ``mcastkit.capture``)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            mod = importlib.import_module(f"{__package__ or 'benchmarks'}.{self._name}")
            return getattr(mod, attr)(*args, **kwargs)
        return call


e2e, groups, large, opening, relay, rx, sendshapes, sockets, tx, record_bench = (
    _Lazy(n) for n in ("e2e", "groups", "large", "opening", "relay", "rx", "sendshapes",
                       "sockets", "tx", "record"))

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
    ap.add_argument("--runs", type=int, default=None,
                    help="runs per row (median); default 3, with --compare 5 per side")
    ap.add_argument("--only", choices=list(SCENARIOS), action="append",
                    help="run only this scenario group (repeatable)")
    ap.add_argument("--clock", choices=list(CLOCKS), default="cpu",
                    help="time rows by this process's CPU time (default: steadier on a "
                         "shared machine) or by the wall clock")
    ap.add_argument("--compare", metavar="REV",
                    help="measure the mcastkit of commit REV (before) against this tree's "
                         "(after) in the same run, interleaved, and give each row's change "
                         "with an interval and a verdict (default groups: those of "
                         "docs/performance.md)")
    ap.add_argument("--threshold", type=float, default=3.0, metavar="PCT",
                    help="with --compare: the change the verdicts are about (default 3)")
    ap.add_argument("--inject-slowdown", metavar="ROW=PCT",
                    help="with --compare: the after side busy-waits PCT %% longer in ROW "
                         "(a self-test: that row must come out lower)")
    ap.add_argument("--out", metavar="FILE", type=Path,
                    help="with --compare: write the report there (default "
                         "benchmarks/out/compare.json; Markdown tables next to it, .md)")
    ap.add_argument("--markdown", metavar="FILE",
                    help="print the compare report FILE (benchmarks/out/compare.json) as "
                         "Markdown tables and exit")
    a = ap.parse_args(argv)
    if a.markdown:
        from ._compare_report import markdown

        print(markdown(json.loads(Path(a.markdown).read_text())), end="")
        return 0
    if a.runs is not None and a.runs < 1:
        ap.error("--runs must be at least 1")
    if os.environ.get("MCAST_IN_NETNS") != "1":
        print("note: not inside scripts/in-netns; run `make bench` for an isolated run",
              file=sys.stderr)
    if a.compare:
        return _compare(a, argv)
    if a.inject_slowdown:
        ap.error("--inject-slowdown needs --compare")
    set_clock(a.clock)
    opts = Options(quick=a.quick, runs=a.runs or 3)
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


def _compare(a: argparse.Namespace, argv: list[str] | None) -> int:
    from . import compare

    runs = a.runs or compare.DEFAULT_RUNS
    warn = compare.check_level(runs)
    if warn:
        print(f"note: {warn}", file=sys.stderr)
    try:
        compare.compare(a.compare, a.only or compare.DEFAULT_GROUPS, runs, quick=a.quick,
                        clock=a.clock, busy_after=a.inject_slowdown,
                        threshold=a.threshold / 100,
                        command=" ".join(["python -m benchmarks", *(argv or sys.argv[1:])]),
                        out=a.out)
    except compare.CompareError as e:
        print(f"compare: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
