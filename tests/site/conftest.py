"""Documentation-site tests: ``built_site`` (one strict build per run), from
tests/support/site.py."""

from __future__ import annotations

from tests.support.site import built_site

__all__ = ["built_site"]
