"""Fixtures for the batch I/O tests: run each receive/send test on both implementations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcastkit import _batch


@pytest.fixture(params=["mmsg", "python"])
def impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """``"mmsg"`` (recvmmsg/sendmmsg through ctypes) or ``"python"`` (forced fallback)."""
    if request.param == "mmsg" and not _batch.mmsg_available():
        pytest.skip("recvmmsg/sendmmsg not callable through ctypes here")
    _batch.force_python(request.param == "python")
    try:
        yield str(request.param)
    finally:
        _batch.force_python(False)
