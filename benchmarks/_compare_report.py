"""Compare mode's rows and tables: turns the child reports of both sides into one row per
scenario row (per-run ratios, the interval of the change, the verdict) and prints them as
text and as Markdown that docs/performance.md can paste
(``python -m benchmarks --markdown benchmarks/out/compare.json``).

A row compares its ratio to its baseline row of the same child process; a baseline row
itself (ratio 1 by definition) compares its raw value, marked "(value)". A row that one
side could not run carries that side's reason (n/a), never an invented number.

Must not: measure or start processes (compare.py), or hold the statistics (_stats).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from . import _stats

Key = tuple[str, str, int]  # (scenario, row name, size)


def _rows_of(child: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    return {(r["scenario"], r["name"], r["size"]): r for r in child.get("results", [])}


def _value(r: dict[str, Any] | None) -> float | None:
    if not r or not r["runs"]:
        return None
    return float(statistics.median(r["runs"]))


def _why(child: dict[str, Any], r: dict[str, Any] | None) -> str:
    if "error" in child:
        return f"n/a: {child['error']}"
    if "figures" in child:
        return "figures, not rows: not compared"
    if r is None:
        return "n/a: no such row"
    return str(r["note"] or "n/a")


def _side(children: Sequence[dict[str, Any]], key: Key) -> dict[str, Any]:
    """Per-run values and ratios of one row on one side (None where a run has none)."""
    values: list[float | None] = []
    bases: list[float | None] = []
    notes: list[str] = []
    meta: dict[str, Any] = {}
    for child in children:
        rows = _rows_of(child)
        r = rows.get(key)
        v = _value(r)
        if r is not None:
            meta = {k: r[k] for k in ("baseline", "unit", "lower_is_better")}
            b = rows.get((key[0], r["baseline"] or "", key[2]))
            bases.append(_value(b))
        else:
            bases.append(None)
        values.append(v)
        if v is None:
            notes.append(_why(child, r))
    return {"values": values, "bases": bases, "notes": notes, **meta}


def _summary(xs: Sequence[float | None]) -> dict[str, float] | None:
    got = [x for x in xs if x is not None]
    if not got:
        return None
    return {"median": statistics.median(got), "min": min(got), "max": max(got),
            "n": len(got)}


def analyse(group: str, before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]],
            threshold: float = 0.03) -> list[dict[str, Any]]:
    """One dict per row of ``group``: both sides' per-run ratios, the median change with
    its interval, and the verdict (see ``_stats.verdict``)."""
    keys: list[Key] = []
    for child in (*after, *before):
        keys += [k for k in _rows_of(child) if k not in keys]
    if not keys:  # the group failed on both sides, or reports figures
        why = "; ".join(sorted({_why(c, None) for c in (*before, *after)}))
        return [{"group": group, "scenario": group, "row": "(whole group)", "size": 0,
                 "verdict": why or "n/a: not run", "before": None, "after": None,
                 "change": None}]
    out = []
    for key in keys:
        b, a = _side(before, key), _side(after, key)
        meta = a if "unit" in a else b
        lower = bool(meta.get("lower_is_better"))
        is_base = key[1] == (meta.get("baseline") or key[1])
        if is_base:  # compare the raw value (as a rate: higher is better)
            rb = [None if v is None else (1 / v if lower else v) for v in b["values"]]
            ra = [None if v is None else (1 / v if lower else v) for v in a["values"]]
        else:
            rb = _stats.ratios(b["values"], b["bases"], lower)
            ra = _stats.ratios(a["values"], a["bases"], lower)
        changes = _stats.paired_changes(rb, ra)
        change = _stats.median_interval(changes) if changes else None
        if change is None:
            none_before = all(x is None for x in rb)
            side, notes = ("before", b["notes"]) if none_before else ("after", a["notes"])
            verdict = f"{notes[0] if notes else 'n/a: no run with both sides'} ({side})"
        else:
            verdict = _stats.verdict(change, threshold)
            if is_base:
                verdict += " (value)"
        out.append({
            "group": group, "scenario": key[0], "row": key[1], "size": key[2],
            "baseline": meta.get("baseline"), "unit": meta.get("unit"),
            "compared": "value" if is_base else "ratio",
            "before": {"values": b["values"], "ratios": rb, "summary": _summary(rb),
                       "notes": sorted(set(b["notes"]))},
            "after": {"values": a["values"], "ratios": ra, "summary": _summary(ra),
                      "notes": sorted(set(a["notes"]))},
            "change": None if change is None else {
                "median": change.median, "lo": change.lo, "hi": change.hi,
                "level": change.level, "n": change.n},
            "verdict": verdict,
            # the rule is about ratios: a baseline row's raw value is shown, not counted
            "breaks_rule": not is_base and _stats.breaks_rule(verdict),
            "undecided": not is_base and _stats.undecided(verdict, change, threshold),
        })
    return out


def _ratio_cell(row: dict[str, Any], side: str) -> str:
    s = (row.get(side) or {}).get("summary")
    if not s:
        return "n/a"
    if row["compared"] == "value":
        return "baseline"
    return f"{s['median']:.2f}× [{s['min']:.2f}–{s['max']:.2f}]"


def _change_cell(row: dict[str, Any]) -> str:
    c = row.get("change")
    if not c:
        return "—"
    return f"{c['median'] * 100:+.1f} % [{c['lo'] * 100:+.1f}, {c['hi'] * 100:+.1f}]"


def _groups(report: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    seen: dict[str, list[dict[str, Any]]] = {}
    for r in report["rows"]:
        seen.setdefault(r["group"], []).append(r)
    return list(seen.items())


def _head(report: dict[str, Any]) -> str:
    b, a = report["before"], report["after"]
    return (f"before = {b['name']} (accelerator {'on' if b['accelerator'] else 'OFF'}), "
            f"after = {a['name']} (accelerator {'on' if a['accelerator'] else 'OFF'}); "
            f"{report['runs']} runs per side, interleaved, {report['clock']} clock"
            f"{', --quick' if report['quick'] else ''}; {report['seconds']:.0f} s")


def _summary_lines(report: dict[str, Any]) -> list[str]:
    t = f"{report['threshold'] * 100:g} %"
    ratios = [r for r in report["rows"] if r.get("compared") != "value"]
    bad = [r for r in ratios if r.get("breaks_rule")]
    open_ = [r for r in ratios if r.get("undecided")]
    lines = [f"rows lower by more than {t} against their baseline (whole interval below "
             f"-{t}): {len(bad)}"]
    lines += [f"  {r['group']} {r['size']} {r['row']}: {_change_cell(r)}" for r in bad]
    lines.append(f"rows whose interval reaches below -{t} without showing it "
                 f"(more runs needed): {len(open_)}")
    lines += [f"  {r['group']} {r['size']} {r['row']}: {_change_cell(r)}" for r in open_]
    spent = report.get("group_seconds") or {}
    if spent:
        lines.append("seconds per group, before + after: " + ", ".join(
            f"{g} {s['before']:.0f} + {s['after']:.0f}" for g, s in spent.items()))
    return lines


def text(report: dict[str, Any]) -> str:
    """The report as plain-text tables, one per group, and the summary."""
    lines = [_head(report)]
    for g, rows in _groups(report):
        lines += ["", f"== {g}",
                  f"{'size':>5} {'row':38} {'ratio before':>20} {'ratio after':>20} "
                  f"{'change [interval]':>26}  verdict"]
        for r in rows:
            lines.append(f"{r['size']:>5} {r['row'][:38]:38} {_ratio_cell(r, 'before'):>20} "
                         f"{_ratio_cell(r, 'after'):>20} {_change_cell(r):>26}  "
                         f"{r['verdict']}")
    return "\n".join([*lines, "", *_summary_lines(report)])


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables (one per group) for docs/performance.md."""
    lvl = {r["change"]["level"] for r in report["rows"] if r.get("change")}
    cover = f"{min(lvl):.1%}" if lvl else "—"
    lines = [f"Compare mode: {_head(report)}. Ratios: median [min–max] over the runs "
             f"against the same-run baseline; change: median of the per-run changes "
             f"[interval, {cover} coverage].", ""]
    for g, rows in _groups(report):
        lines += [f"#### Group `{g}`", "",
                  "| size | row | ratio before | ratio after | change | verdict |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['size']} | {r['row']} | {_ratio_cell(r, 'before')} | "
                  f"{_ratio_cell(r, 'after')} | {_change_cell(r)} | {r['verdict']} |"
                  for r in rows]
        lines.append("")
    lines += [f"* {line.strip()}" for line in _summary_lines(report) if line.strip()]
    return "\n".join(lines) + "\n"
