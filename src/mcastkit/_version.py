"""The version of mcastkit, in one place.

Owns: ``__version__``. The build (hatch, ``[tool.hatch.version]`` in pyproject.toml) reads
it from this file and ``mcastkit.__version__`` imports it, so the wheel's metadata and
the running code cannot disagree. Bump it together with a CHANGELOG.md entry.
Must not: import anything (the build parses this file without running the package).
"""

__version__ = "0.1.0"
