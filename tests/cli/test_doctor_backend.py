"""`doctor` says which batched I/O backend runs: the C accelerator, a forced fallback, or
a fallback because the accelerator was not built (with the way to build it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.addrs import G4

pytestmark = pytest.mark.kernel


def _backend_finding(env_batch: str | None) -> dict[str, object]:
    env = dict(os.environ)
    env.pop("MCASTKIT_BATCH", None)
    if env_batch is not None:
        env["MCASTKIT_BATCH"] = env_batch
    argv = ["doctor", f"{G4}:5000", "-i", "lo", "--json", "--no-probe", "--window", "0"]
    r = subprocess.run([sys.executable, "-m", "mcastkit", *argv], capture_output=True,
                       text=True, env=env, timeout=120)
    found = [json.loads(x) for x in r.stdout.splitlines() if '"backend"' in x]
    assert len(found) == 1, (r.stdout, r.stderr)
    return found[0]


def test_doctor_names_the_backend(netns: object) -> None:
    from mcastkit import _io

    f = _backend_finding(None)
    if "c" in _io.available_impls():
        assert f["severity"] == "ok" and "accelerator is loaded" in str(f["title"])
    else:
        assert "not built" in str(f["title"]) and "--no-binary" in str(f["fix"])
    forced = _backend_finding("python")
    assert forced["severity"] == "info" and "MCASTKIT_BATCH" in str(forced["title"])
