"""Release tests: ``wheelhouse`` and ``dist`` (artifacts built once per run), from
tests/support/packaging.py."""

from __future__ import annotations

from tests.support.packaging import dist, wheelhouse

__all__ = ["dist", "wheelhouse"]
