"""`signals_held`: a Ctrl-C or SIGTERM during a verb's set-up is delivered when the verb
enters the block that prints its summary, not lost in the gap before it (a listen or ping
stopped right after its join printed no summary on a loaded machine)."""

from __future__ import annotations

import signal
import threading

import pytest

from mcastkit.cli._app import _sigterm_like_ctrl_c
from mcastkit.cli._common import Terminated
from mcastkit.cli._signals import signals_held


@pytest.mark.parametrize("sig, exc", [(signal.SIGINT, KeyboardInterrupt),
                                      (signal.SIGTERM, Terminated)])
def test_a_signal_during_set_up_is_raised_by_release(sig: int, exc: type[BaseException]) -> None:
    reached = []
    with _sigterm_like_ctrl_c(), pytest.raises(exc), signals_held() as release:
        signal.raise_signal(sig)  # held: nothing happens yet
        reached.append("set-up finished")
        try:
            release()
        except BaseException:
            reached.append("raised inside the summary block")
            raise
    assert reached == ["set-up finished", "raised inside the summary block"]
    assert sig not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # mask restored


def test_leaving_the_block_releases_and_release_is_idempotent() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    with signals_held() as release:
        assert {signal.SIGINT, signal.SIGTERM} <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
        release()
        release()
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    with pytest.raises(RuntimeError), signals_held():
        raise RuntimeError("set-up failed")
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


def test_off_the_main_thread_it_does_nothing() -> None:
    seen: list[set[int]] = []

    def body() -> None:
        with signals_held() as release:
            seen.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
            release()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert signal.SIGINT not in seen[0]
