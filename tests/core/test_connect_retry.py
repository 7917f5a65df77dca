"""The JetStream check of ``open_store``: "unavailable" is waited out, other errors are not."""

from __future__ import annotations

import pytest
import trio

from osfs import connect
from osfs.store import errors as se
from osfs.store.memory import MemoryStore


class _Flaky(MemoryStore):
    def __init__(self, failures: list[se.StoreError]) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    async def account_usage(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return await super().account_usage()


def test_unavailable_jetstream_is_retried_until_it_answers(monkeypatch) -> None:
    monkeypatch.setattr(connect, "JETSTREAM_RETRY", 0.01)
    store = _Flaky([se.Unavailable("JetStream system temporarily unavailable")] * 3)
    trio.run(connect._jetstream_answers, store, 5.0)
    assert store.calls == 4


def test_other_errors_and_lasting_unavailability_are_raised(monkeypatch) -> None:
    monkeypatch.setattr(connect, "JETSTREAM_RETRY", 0.01)
    store = _Flaky([se.StoreError("jetstream not enabled for account")])
    with pytest.raises(se.StoreError, match="not enabled"):
        trio.run(connect._jetstream_answers, store, 5.0)
    assert store.calls == 1
    store = _Flaky([se.Unavailable("no responders")] * 1000)
    with pytest.raises(se.Unavailable):
        trio.run(connect._jetstream_answers, store, 0.1)
    assert 1 < store.calls < 1000
