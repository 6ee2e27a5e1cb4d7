"""List the public callables whose docstrings lack Args / Returns / Raises sections.

Owns: a report, for whoever fills the docstrings the API reference is built from (the
site's pages under docs/api/). Reads the source with griffe (as mkdocstrings does), for
every name in ``__all__`` of ``mcastkit``, ``mcastkit.aio`` and ``mcastkit.compat`` and
the public methods of those classes. "Raises" is flagged when the body itself has a
``raise`` statement (a heuristic: errors raised deeper down are not seen). A class with an
``Attributes`` section counts as documenting its constructor's arguments.
Must not: edit anything; fail a build (``--strict`` builds catch the hard errors).

Usage: ``.venv/bin/python scripts/docstring_gaps.py`` (exit 1 when there are gaps).
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

import griffe

PUBLIC_MODULES = ("mcastkit", "mcastkit.aio", "mcastkit.compat")
# classes whose public methods come from mixins: list inherited members too
MIXED = {"MulticastSocket", "AsyncMulticastSocket", "MCast"}


def _sections(obj: Any) -> set[str]:
    if obj.docstring is None:
        return set()
    return {s.kind.value for s in obj.docstring.parse("google", warnings=False)}


def _function_gaps(fn: Any) -> list[str]:
    if fn.docstring is None:
        return ["no docstring"]
    sections = _sections(fn)
    missing = []
    if [p for p in fn.parameters if p.name not in ("self", "cls")] and \
            "parameters" not in sections:
        missing.append("Args")
    returns = str(fn.returns) if fn.returns is not None else "None"
    if returns != "None" and not fn.has_labels("property") and "returns" not in sections:
        missing.append("Returns")
    if re.search(r"^\s*raise\s+\w", fn.source or "", flags=re.M) and "raises" not in sections:
        missing.append("Raises")
    return [f"missing {'/'.join(missing)}"] if missing else []


def gaps(src: Path) -> dict[str, list[str]]:
    pkg = griffe.load("mcastkit", search_paths=[str(src)], resolve_aliases=True,
                      resolve_external=False)
    found: dict[str, list[str]] = {}
    for modname in PUBLIC_MODULES:
        runtime = importlib.import_module(modname)
        mod = pkg if modname == "mcastkit" else pkg[modname.split(".", 1)[1]]
        for name in runtime.__all__:
            obj = mod[name]
            target = obj.final_target if obj.is_alias else obj
            path = f"{modname}.{name}"
            if target.is_function:
                found[path] = _function_gaps(target)
            elif target.is_class:
                found[path] = [] if target.docstring else ["no docstring"]
                members = target.all_members if name in MIXED else target.members
                for mname, member in members.items():
                    m = member.final_target if member.is_alias else member
                    if mname.startswith("_") or not m.is_function:
                        continue
                    found[f"{path}.{mname}"] = _function_gaps(m)
                init = members.get("__init__")
                if init is not None and "attributes" not in _sections(target) and \
                        "parameters" not in _sections(target) | _sections(init) and \
                        [p for p in init.parameters if p.name != "self"]:
                    found[path].append("constructor: missing Args")
            elif target.docstring is None:
                found[path] = ["no docstring"]
    return {k: v for k, v in found.items() if v}


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    result = gaps(root / "src")
    for path, problems in sorted(result.items()):
        print(f"{path}: {'; '.join(problems)}")
    print(f"{len(result)} public callables or names with docstring gaps", file=sys.stderr)
    return 1 if result else 0


if __name__ == "__main__":
    sys.exit(main())
