"""``python -m benchmarks [--quick] [--runs N] [--only drain|send|e2e|memory|record|relay]``.

Prints a table (datagrams/s, median of the runs, ratio to the baseline measured in the
same run), writes benchmarks/out/report.json and benchmarks/out/report.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from typing import Any

from . import e2e, relay, rx, tx
from . import record as record_bench
from ._util import OUT, Result


def _ratio(r: Result, by: dict[tuple[str, str, int], Result], name: str | None) -> float:
    base = by.get((r.scenario, name or "", r.size))
    return r.pps / base.pps if base and base.pps and r.pps else float("nan")


def _table(results: list[Result]) -> str:
    by = {(r.scenario, r.name, r.size): r for r in results}
    lines = [f"{'scenario':7} {'size':>5} {'name':34} {'pps':>11} {'ratio':>7}  baseline"]
    for r in results:
        pps = f"{r.pps:,.0f}" if r.runs else r.note
        line = (f"{r.scenario:7} {r.size:>5} {r.name:34} {pps:>11} "
                f"{_ratio(r, by, r.baseline):>7.2f}x  {r.baseline or ''}")
        if r.baseline2:
            line += f"; {_ratio(r, by, r.baseline2):.2f}x {r.baseline2}"
        lines.append(line)
    return "\n".join(lines)


def _chart(results: list[Result], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in results if r.runs]
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
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario (median)")
    ap.add_argument("--only", choices=["drain", "send", "e2e", "memory", "record", "relay"],
                    action="append")
    a = ap.parse_args(argv)
    if os.environ.get("MCAST_IN_NETNS") != "1":
        print("note: not inside scripts/in-netns; run `make bench` for an isolated run",
              file=sys.stderr)
    count = 30_000 if a.quick else 150_000
    sizes = [64] if a.quick else [64, 1400]
    only = set(a.only or ["drain", "send", "e2e", "memory", "record", "relay"])
    results: list[Result] = []
    extra: dict[str, Any] = {}
    t0 = time.time()
    if "drain" in only:
        results += rx.run(count, sizes, a.runs)
    if "send" in only:
        results += tx.run(count * 2, sizes, a.runs)
    if "record" in only:
        results += record_bench.run(count, sizes, a.runs)
    if "relay" in only:
        results += relay.run(count // 3, sizes, a.runs)
    print(_table(results))
    if "relay" in only:
        extra["relay_50k"] = relay.sustained(50_000, 2.0 if a.quick else 10.0)
        print("relay, 50k/s through the tunnel:", extra["relay_50k"])
    if "e2e" in only:
        secs = 1.0 if a.quick else 5.0
        extra["e2e_200k"] = e2e.offered(200_000, secs)
        print("end-to-end:", extra["e2e_200k"])
    if "record" in only:
        extra["record_offered"] = record_bench.offered(50_000 if a.quick else 200_000,
                                                       1.0 if a.quick else 5.0)
        print("record, offered load:", extra["record_offered"])
    if "memory" in only:
        extra["memory"] = e2e.memory(100_000 if a.quick else 1_000_000)
        print("memory:", extra["memory"])
    OUT.mkdir(exist_ok=True)
    report = {
        "command": " ".join(["python -m benchmarks", *(argv or sys.argv[1:])]),
        "python": sys.version.split()[0], "kernel": platform.release(),
        "cpus": os.cpu_count(), "seconds": round(time.time() - t0, 1),
        "results": [dict(asdict(r), pps=r.pps) for r in results], **extra,
    }
    (OUT / "report.json").write_text(json.dumps(report, indent=2))
    if _chart(results, str(OUT / "report.png")):
        print(f"wrote {OUT / 'report.json'} and {OUT / 'report.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
