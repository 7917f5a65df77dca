"""Cross-thread calls awaited from trio, without asyncio.

:class:`Call` is a ``concurrent.futures.Future`` whose outcome a trio task awaits: the
future's done-callback wakes trio through ``TrioToken.run_sync_soon``, and a call that has
finished by the time its result is taken costs no wake-up at all. Two kinds of work make
them: the NATS store's asyncio loop (``osfs.store.nats.loop.Bridge.start_call``, the only
place asyncio is touched) and blocking functions started in a worker thread
(:func:`call_in_thread`), so the caller goes on and takes the result when it needs it.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Generic, TypeVar

import trio

from .errors import Unavailable

T = TypeVar("T")


class BridgeClosed(Unavailable):
    """The thread a call ran on stopped before the call finished (the store's loop was
    closed, or never started)."""


class Call(Generic[T]):
    """A call running on another thread (the store's asyncio loop, or a worker thread),
    awaited from trio.

    The trio side is woken only when somebody waits: a call that has finished by the time
    its result is taken costs no wake-up across threads.
    """

    def __init__(self, fut: concurrent.futures.Future[T], token: trio.lowlevel.TrioToken) -> None:
        self._fut = fut
        self._token = token

    def done(self) -> bool:
        """True once the call has finished (its result can be taken without waiting)."""
        return self._fut.done()

    def cancel(self) -> None:
        """Ask the asyncio task to stop (it unwinds later, on the loop)."""
        self._fut.cancel()

    async def result(self) -> T:
        """Wait for the call to finish; return its result or raise its exception.

        Cancelling the waiter leaves the call running. ``BridgeClosed`` when the loop was
        closed under it.
        """
        if not self._fut.done():  # a finished call returns without a schedule point
            done = trio.Event()
            token = self._token

            # refers to the event only: a reference to ``self`` would make a cycle through
            # the future's callbacks that keeps the result (a MiB of data) alive until a GC
            def wake(_f: object) -> None:
                with suppress(trio.RunFinishedError):
                    token.run_sync_soon(done.set)

            self._fut.add_done_callback(wake)  # runs at once if the call finished meanwhile
            await done.wait()
        if self._fut.cancelled():
            raise BridgeClosed("bridge closed while the call ran")
        return self._fut.result()


def call_in_thread(fn: Callable[[], T]) -> Call[T]:
    """Start the blocking ``fn()`` in a worker thread and return at once; await
    :meth:`Call.result` later (once or more) for its result or exception.

    Must be called from trio. Nobody waits while ``fn`` runs: the caller goes on and takes
    the outcome when it needs it. ``fn`` cannot be cancelled: it runs to its end.
    """
    fut: concurrent.futures.Future[T] = concurrent.futures.Future()
    fut.set_running_or_notify_cancel()

    def deliver(outcome: Any) -> None:  # in the worker thread
        try:
            fut.set_result(outcome.unwrap())
        except BaseException as exc:
            fut.set_exception(exc)

    trio.lowlevel.start_thread_soon(fn, deliver)
    return Call(fut, trio.lowlevel.current_trio_token())
