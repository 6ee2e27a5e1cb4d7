"""Progress of long-running verbs (record, replay): a live line on a terminal, a plain
line (or a JSON ``progress`` object) every ``--interval`` seconds otherwise.

Owns: :class:`RunProgress`. Must not: count anything (callers hand it their text and
their JSON object).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ._common import Progress, emit_json
from ._env import Env

__all__ = ["RunProgress"]


class RunProgress:
    """Call :meth:`report` as often as convenient; it draws or prints when due."""

    def __init__(self, env: Env, args: argparse.Namespace, label: str) -> None:
        self.env = env
        self.json = bool(args.json)
        self.interval = float(args.interval)
        self.label = label
        self.live = Progress(env, not self.json)
        self._last = env.monotonic()

    @property
    def every_s(self) -> float:
        """How often the engine should call back."""
        return 0.25 if self.live.enabled else min(self.interval, 1.0)

    def report(self, text: str, obj: Callable[[], dict[str, Any]]) -> None:
        """``text`` for people, ``obj()`` for ``--json``."""
        if self.live.enabled:
            self.live.update(f"{self.label}: {text}")
            return
        now = self.env.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        if self.json:
            emit_json(self.env, {"type": "progress", **obj()})
        else:
            self.env.out(f"{self.label}: {text}")

    def close(self) -> None:
        """Erase the live line (before the summary)."""
        self.live.close()
