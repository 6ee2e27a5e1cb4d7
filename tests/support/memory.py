"""Resident memory of this process, for tests that check what stays allocated.

Owns: :func:`live_rss_kib` (VmRSS after glibc gave back its free heap, so only live
allocations count) and :func:`skip_under_asan` (AddressSanitizer keeps freed memory in
quarantine, so resident memory says nothing there; ``scripts/asan-batch`` preloads it).
"""

from __future__ import annotations

import ctypes
import gc
import os

import pytest

__all__ = ["live_rss_kib", "skip_under_asan"]


def live_rss_kib() -> int:
    """This process's resident set in KiB, after a full collection and ``malloc_trim``."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def skip_under_asan() -> None:
    """Skip (visibly) when running under ``scripts/asan-batch``."""
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("resident memory says nothing under AddressSanitizer (its allocator "
                    "keeps freed memory in quarantine)")
