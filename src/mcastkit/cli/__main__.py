"""``python -m mcastkit.cli``: run the command-line tool."""

from __future__ import annotations

from mcastkit.cli import run

if __name__ == "__main__":
    run()
