"""List the public callables and classes whose docstrings are incomplete for the API pages.

Owns: the docstring rules the API reference (docs/api/) relies on, checked on the source
with griffe and the same extension the site uses (scripts/griffe_mcastkit.py: a façade
method's ``same_doc`` copy counts as its docstring), for every name in ``__all__`` of
PUBLIC_MODULES and the public methods of those classes. The rules, Google style:

- every public function, method and class has a docstring;
- ``Args`` names every parameter of the signature (``*args`` / ``**kw`` too), and names
  nothing the signature lacks; a class documents its constructor's parameters in
  ``Args`` (of the class or of ``__init__``) or, for a value, in ``Attributes``;
- ``Returns`` (or ``Yields``) when the annotation is not None (properties excepted);
  one value unless it returns a tuple (a continuation line that is not indented
  renders as a second returned value);
- ``Raises`` when the body (for a ``same_doc`` copy: the original's body) raises, or
  calls a checker that raises (RAISING_CALLS), a heuristic: errors raised deeper down
  are not seen;
- a value class (a dataclass, or a class setting instance attributes in ``__init__``)
  lists every public field in ``Attributes`` (or the field has a docstring of its own).

tests/site/test_docstrings.py runs it, so a new gap fails the suite.
Must not: edit anything, or import the modules it checks (griffe reads the source).

Usage: ``.venv/bin/python scripts/docstring_gaps.py`` (exit 1 when there are gaps).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import griffe

PUBLIC_MODULES = ("mcastkit", "mcastkit.aio", "mcastkit.compat", "mcastkit.capture",
                  "mcastkit.relay", "mcastkit.seq")
# classes whose public methods come from mixins: list inherited members too
MIXED = {"MulticastSocket", "AsyncMulticastSocket", "MCast"}
# calls that raise a typed error on bad input or a closed socket: a body making one
# needs a Raises section even without a ``raise`` statement of its own
RAISING_CALLS = re.compile(
    r"\b(?:check_open|_check_range|check_int|check_timeout|check_policy|running_loop|"
    r"translate|setopt|component_error|parse_ip|parse_endpoint|resolve_interface|"
    r"Group\.parse|flow)\(")
EXTENSION = Path(__file__).with_name("griffe_mcastkit.py")


def _parsed(obj: Any) -> list[Any]:
    if obj is None or obj.docstring is None:
        return []
    return list(obj.docstring.parse("google", warnings=False))


def _kinds(obj: Any) -> set[str]:
    return {s.kind.value for s in _parsed(obj)}


def _names(obj: Any, kind: str) -> list[str]:
    return [item.name.lstrip("*") for s in _parsed(obj) if s.kind.value == kind
            for item in s.value]


def _params(fn: Any) -> list[str]:
    return [p.name for p in fn.parameters if p.name not in ("self", "cls")]


def _raises(fn: Any, origin: Any) -> bool:
    src = "\n".join(x.source or "" for x in (fn, origin) if x is not None)
    body = src.split('"""', 2)[-1] if src.count('"""') >= 2 else src
    return bool(re.search(r"^\s*raise\s+\w", body, flags=re.M) or RAISING_CALLS.search(body))


def _function_gaps(fn: Any, origin: Any = None) -> list[str]:
    if fn.docstring is None:
        return ["no docstring"]
    kinds = _kinds(fn)
    problems = []
    params, documented = _params(fn), _names(fn, "parameters")
    if params and "parameters" not in kinds:
        problems.append("missing Args")
    else:
        if missing := [p for p in params if p not in documented]:
            problems.append(f"Args lacks {', '.join(missing)}")
        if extra := [p for p in documented if p not in params]:
            problems.append(f"Args names {', '.join(extra)}, not in the signature")
    returns = str(fn.returns) if fn.returns is not None else "None"
    if returns not in ("None", "NoReturn") and not fn.has_labels("property") and \
            not kinds & {"returns", "yields"}:
        problems.append("missing Returns")
    items = [item for s in _parsed(fn) if s.kind.value == "returns" for item in s.value]
    if len(items) > 1 and not returns.startswith("tuple["):
        problems.append("Returns reads as several values: indent its continuation lines")
    if "raises" not in kinds and _raises(fn, origin):
        problems.append("missing Raises")
    return problems


def _is_enum(cls: Any) -> bool:
    return any("Enum" in str(b) for b in cls.bases)


def _class_gaps(cls: Any) -> list[str]:
    if cls.docstring is None:
        return ["no docstring"]
    problems = []
    attrs = set(_names(cls, "attributes"))
    init = cls.members.get("__init__")
    if init is not None and not init.is_alias and init.is_function:
        documented = set(_names(cls, "parameters")) | set(_names(init, "parameters")) | attrs
        if missing := [p for p in _params(init) if p not in documented]:
            problems.append(f"constructor: Args lacks {', '.join(missing)}")
    if _is_enum(cls):
        return problems
    dataclass = any("dataclass" in str(d.value) for d in cls.decorators)
    fields = [n for n, m in cls.members.items()
              if not n.startswith("_") and not m.is_alias and m.is_attribute
              and not m.has_labels("property")
              and (dataclass or not m.has_labels("class-attribute"))
              and m.docstring is None and n not in attrs]
    if fields:
        problems.append(f"Attributes lacks {', '.join(fields)}")
    return problems


def _origin(obj: Any, loader: griffe.GriffeLoader) -> Any:
    path = obj.extra.get("mcastkit", {}).get("doc_from")
    return loader.modules_collection[path] if path else None


def gaps(src: Path, package: str = "mcastkit",
         modules: tuple[str, ...] = PUBLIC_MODULES) -> dict[str, list[str]]:
    """Every gap, by dotted name, of the public API of ``package`` under ``src``."""
    loader = griffe.GriffeLoader(search_paths=[str(src)], docstring_parser="google",
                                 extensions=griffe.load_extensions(str(EXTENSION)))
    pkg = loader.load(package)
    loader.resolve_aliases(external=False)
    found: dict[str, list[str]] = {}
    for modname in modules:
        mod = pkg if modname == package else pkg[modname.split(".", 1)[1]]
        for name in sorted(mod.exports or ()):
            obj = mod[name]
            target = obj.final_target if obj.is_alias else obj
            path = f"{modname}.{name}"
            if target.is_function:
                found[path] = _function_gaps(target)
            elif target.is_class:
                found[path] = _class_gaps(target)
                members = target.all_members if name in MIXED else target.members
                for mname, member in members.items():
                    m = member.final_target if member.is_alias else member
                    if mname.startswith("_") or not m.is_function:
                        continue
                    found[f"{path}.{mname}"] = _function_gaps(m, _origin(m, loader))
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
