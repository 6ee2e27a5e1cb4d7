"""A griffe extension: the static reading of mcastkit's docstrings sees what Python sees.

Owns: two rules that mirror run-time behaviour griffe's static analysis does not know.
(1) ``@_doc(Part.method)`` / ``@same_doc(...)`` (``mcastkit._sockbase.same_doc``) copies
    the docstring of the part's method onto the façade's one-line delegation (for a
    property, ``Part.prop.fget``): the façade entry gets the part's docstring.
(2) ``x = property(get_x, set_x)`` in a class body: Python gives the property the
    getter's docstring; the extension does the same (without the getter's Args /
    Returns / Raises sections, and with the getter's return type as the property's
    type), labels it a property (writable when there is a setter), so
    ``MCast.loopback`` reads like ``MCast.get_loopback``.
(3) ``self.op = op`` in ``__init__``: the instance attribute shows no value (the page
    would read "op = op") and takes its description from the class's ``Attributes:``
    section, where the class documents it once.
Used by mkdocs.yml (mkdocstrings ``extensions:``) and scripts/docstring_gaps.py, so the
site and the gap report read the same docstrings.
Must not: invent text: every docstring it sets is one written in the source.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import griffe

_COPIERS = {"_doc", "same_doc"}


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


class McastkitDocs(griffe.Extension):
    """Copies docstrings the way ``same_doc`` and ``property()`` do at run time."""

    def __init__(self) -> None:
        super().__init__()
        self._copies: list[tuple[griffe.Object, str]] = []
        self._props: list[tuple[griffe.Attribute, str]] = []

    def on_instance(self, *, node: Any, obj: griffe.Object, **kwargs: Any) -> None:
        for dec in getattr(node, "decorator_list", ()):
            if isinstance(dec, ast.Call) and _dotted(dec.func) in _COPIERS and dec.args:
                src = _dotted(dec.args[0])
                if src:
                    self._copies.append((obj, src.removesuffix(".fget")))

    def on_attribute_instance(self, *, node: Any, attr: griffe.Attribute,
                              **kwargs: Any) -> None:
        value = getattr(node, "value", None)
        if (attr.parent is not None and attr.parent.is_class
                and isinstance(value, ast.Call) and _dotted(value.func) == "property"
                and value.args):
            getter = _dotted(value.args[0])
            if getter and getter != "None":
                self._props.append((attr, getter))
            attr.labels -= {"class-attribute", "instance-attribute"}
            attr.labels.add("property")
            if len(value.args) > 1 and _dotted(value.args[1]) not in (None, "None"):
                attr.labels.add("writable")

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        init = cls.members.get("__init__")
        params = {p.name for p in init.parameters} \
            if init is not None and not init.is_alias and init.is_function else set()
        doc = cls.docstring
        described: dict[str, str] = {}
        for section in doc.parse("google", warnings=False) if doc is not None else ():
            if section.kind is griffe.DocstringSectionKind.attributes:
                described.update({a.name: a.description for a in section.value})
        for name, member in cls.members.items():
            if member.is_alias or not member.is_attribute:
                continue
            if str(member.value) == name and name in params:
                member.value = None
            if doc is not None and member.docstring is None and described.get(name):
                member.docstring = _copy(doc, member, described[name])

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader,
                   **kwargs: Any) -> None:
        for obj, src in self._copies:
            head, _, rest = src.partition(".")
            try:
                path = obj.parent.resolve(head) + (f".{rest}" if rest else "")  # type: ignore[union-attr]
                found = loader.modules_collection[path]
            except (KeyError, griffe.NameResolutionError, AttributeError):
                continue
            if found.docstring is not None and obj.docstring is None:
                obj.docstring = _copy(found.docstring, obj)
                obj.extra["mcastkit"]["doc_from"] = found.path  # for the gap report
        for attr, getter in self._props:
            fget = attr.parent.members.get(getter) if attr.parent else None  # type: ignore[union-attr]
            if fget is not None and fget.docstring is not None and attr.docstring is None:
                # the getter's words; its Returns section becomes the attribute's type
                attr.docstring = _copy(fget.docstring, attr, _SECTION.split(
                    fget.docstring.value, maxsplit=1)[0].rstrip())
                if attr.annotation is None and fget.is_function:
                    attr.annotation = fget.returns
        self._copies.clear()
        self._props.clear()


_SECTION = re.compile(r"^\s*(?:Args|Returns|Raises):\s*$", re.M)


def _copy(doc: griffe.Docstring, parent: griffe.Object, text: str | None = None
          ) -> griffe.Docstring:
    return griffe.Docstring(doc.value if text is None else text, lineno=doc.lineno,
                            endlineno=doc.endlineno, parent=parent, parser=doc.parser,
                            parser_options=doc.parser_options)
