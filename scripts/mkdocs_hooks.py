"""MkDocs hooks for the mcastkit site (mkdocs.yml ``hooks:``).

Owns: four build-time rules.
(1) The nav may list pages that other work has not landed yet (docs/relay.md, ...): an
    entry whose file does not exist is left out with an INFO line instead of failing
    ``--strict``; every page that exists is still link-checked.
(2) Every public name of ``mcastkit``, ``mcastkit.aio`` and ``mcastkit.compat`` (their
    ``__all__``) must have a docstring of its own: one without fails the strict build.
(3) KNOWN_GAPS: docstring problems already reported, to be fixed in the modules that own
    them. Each is logged at INFO instead of WARNING, so the strict build stays green while
    every *new* problem still fails it. Remove an entry once its docstring is fixed.
(4) The docstrings use Sphinx roles (``:class:`~mcastkit.MulticastSocket```), which
    mkdocstrings leaves as text: in the rendered pages the role prefix is dropped and the
    name becomes an optional cross-reference (a link when it names a documented object,
    plain code otherwise), so the reader sees ``MulticastSocket``, not ``:class:``.
Must not: change the words of a page, or hide a broken link or a docstring problem not
listed.
"""

from __future__ import annotations

import importlib
import logging
import re
from pathlib import Path
from typing import Any

import griffe

log = logging.getLogger("mkdocs.hooks.mcastkit")

PUBLIC_MODULES = ("mcastkit", "mcastkit.aio", "mcastkit.compat")

# (substring of the log message, why it is tolerated for now)
KNOWN_GAPS: tuple[tuple[str, str], ...] = (
    ("mcastkit.aio.DropPolicy has no docstring",
     "a Literal type alias in _aio_queue.py without a docstring below it"),
)


class _KnownGaps(logging.Filter):
    """Downgrades the warnings listed in KNOWN_GAPS to INFO (they stay visible)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            msg = record.getMessage()
            if any(gap in msg for gap, _ in KNOWN_GAPS):
                record.levelno, record.levelname = logging.INFO, "INFO"
                record.msg, record.args = f"known docstring gap: {msg}", ()
        return True


ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const|ref):"
                  r"<code>(~?)([^<]+?)</code>")
_SHORT: dict[str, str] = {}  # unambiguous public short name -> its full identifier


def _public_short_names() -> dict[str, str]:
    seen: dict[str, list[str]] = {}
    for modname in PUBLIC_MODULES:
        for name in importlib.import_module(modname).__all__:
            seen.setdefault(name, []).append(f"{modname}.{name}")
        seen.setdefault(modname.rsplit(".", 1)[-1], []).append(modname)
    return {short: full[0] for short, full in seen.items() if len(full) == 1}


def _role_to_ref(match: re.Match[str]) -> str:
    tilde, target = match.group(1), match.group(2).strip()
    bare = target.removesuffix("()")
    head, _, rest = bare.partition(".")
    if bare.startswith("mcastkit"):
        ident = bare
    elif head in _SHORT:
        ident = _SHORT[head] + (f".{rest}" if rest else "")
    else:
        ident = bare
    shown = target.rsplit(".", 1)[-1] if tilde else target
    return f'<autoref identifier="{ident}" optional><code>{shown}</code></autoref>'


def on_page_content(html: str, **kwargs: Any) -> str:
    if not _SHORT:
        _SHORT.update(_public_short_names())
    return ROLE.sub(_role_to_ref, html)


def _prune(items: list[Any], docs: Path) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                sub = _prune(value, docs)
                if sub:
                    kept.append({title: sub})
                continue
            if isinstance(value, str) and "://" not in value and not (docs / value).exists():
                log.info("nav: %s (%s) is not written yet; left out of the nav", title, value)
                continue
        elif isinstance(item, str) and not (docs / item).exists():
            log.info("nav: %s is not written yet; left out of the nav", item)
            continue
        kept.append(item)
    return kept


def undocumented(src: Path) -> list[str]:
    """Public names (``__all__`` of PUBLIC_MODULES) whose object has no docstring."""
    pkg = griffe.load("mcastkit", search_paths=[str(src)], resolve_aliases=True,
                      resolve_external=False)
    missing = []
    for modname in PUBLIC_MODULES:
        mod = pkg if modname == "mcastkit" else pkg[modname.split(".", 1)[1]]
        for name in mod.exports or ():
            obj = mod[name]
            target = obj.final_target if obj.is_alias else obj
            if not (target.docstring and target.docstring.value.strip()):
                missing.append(f"{modname}.{name}")
    return missing


def on_config(config: Any) -> Any:
    for handler in logging.getLogger("mkdocs").handlers:
        if not any(isinstance(f, _KnownGaps) for f in handler.filters):
            handler.addFilter(_KnownGaps())
    docs = Path(config["docs_dir"])
    if config["nav"]:
        config["nav"] = _prune(config["nav"], docs)
    for name in undocumented(Path(config["config_file_path"]).parent / "src"):
        log.warning("%s has no docstring: the API reference would show an empty entry "
                    "(write one in its module)", name)
    return config
