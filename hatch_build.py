"""Hatchling build hook: compile the optional accelerator ``mcastkit._speedups``.

Compiles ``src/mcastkit/_speedups.c`` with the building interpreter's own compiler and
flags (sysconfig) into ``src/mcastkit/`` (gitignored), so editable installs import it
from the source tree and wheels carry it. If anything goes wrong (no compiler, no Python
headers, a compile error), it prints a warning and the package installs without it:
mcastkit then uses its ctypes or pure-Python paths. ``MCASTKIT_NO_SPEEDUPS=1`` skips it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SRC = Path("src") / "mcastkit" / "_speedups.c"


def build_speedups(root: Path) -> Path | None:
    """Compile the extension next to its source; return its path or None (warned)."""
    src = root / SRC
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    out = src.with_name("_speedups" + suffix)
    if os.environ.get("MCASTKIT_NO_SPEEDUPS") == "1" or sys.platform != "linux":
        return None
    cc = shlex.split(sysconfig.get_config_var("CC") or "") or [shutil.which("gcc") or "cc"]
    if shutil.which(cc[0]) is None:
        print(f"warning: mcastkit: no C compiler ({cc[0]}); installing without the "
              "optional accelerator", file=sys.stderr)
        return None
    include = sysconfig.get_paths()["include"]
    cmd = [*cc, "-shared", "-fPIC", "-O2", "-Wall", f"-I{include}", str(src), "-o",
           str(out)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"warning: mcastkit: cannot build the accelerator ({exc}); installing "
              "without it", file=sys.stderr)
        return None
    if r.returncode != 0:
        print("warning: mcastkit: building the optional accelerator failed; installing "
              f"without it:\n{' '.join(cmd)}\n{r.stderr[-2000:]}", file=sys.stderr)
        return None
    return out


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Builds the accelerator for wheel and editable builds; never fails the build."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        try:
            out = build_speedups(Path(self.root))
        except Exception as exc:  # the install must never fail because of the accelerator
            print(f"warning: mcastkit: accelerator build hook failed ({exc}); installing "
                  "without it", file=sys.stderr)
            return
        if out is None:
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":  # an editable install imports it from src/ directly
            build_data["force_include"][str(out)] = f"mcastkit/{out.name}"
