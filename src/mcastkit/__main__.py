"""``python -m mcastkit``: run the command-line tool (same as the ``mcastkit`` script)."""

from __future__ import annotations

from mcastkit.cli import run

if __name__ == "__main__":
    run()
