"""The trio ↔ asyncio boundary: an asyncio loop in a dedicated thread, driven from trio.

Calls started here are :class:`osfs.store.bridge.Call` objects (no asyncio on the trio side).

nats-py needs asyncio; pyfuse3 runs on trio. Ways to cross between them, measured with tiny
direct gets on 2 vCPU (requests/s with 1 and 16 concurrent callers; docs/baselines.md):

=====================================================================  ===========  ========
how                                                                    1 task       16 tasks
=====================================================================  ===========  ========
asyncio loop in a second thread, trio woken by ``TrioToken.run_sync_soon`` 2,378 req/s  8,134
trio as a guest of asyncio's loop (``start_guest_run``, one thread)       2,638        11,580
trio-asyncio (one thread)                                                 2,065        4,679
``trio.to_thread.run_sync(future.result)``                                1,563        2,523
pure asyncio, no boundary (for reference)                                 4,965        23,812
=====================================================================  ===========  ========

The first is what this module does. Guest mode costs less per crossing on its own (CPU of
the process per crossing of an empty coroutine, 1 / 16 concurrent: 48-64 / 13-14 µs with the
trio event set directly from the task's done-callback, against 66-88 / 34-55 µs here), but
trio then waits for its own I/O (``/dev/fuse``) in a helper thread, so every time trio goes
idle (after each FUSE request, around each store call) it hands over to that thread and
back. Through the mount it measured worse: osfs CPU for ``cp -r`` of 1,000 files of 4 KiB
2.6-3.4 s against 2.3 s, ``rm -r`` of them 3.5-4.1 s against 2.8-3.2 s, twice the context
switches of the trio thread, and no change for streams (about one crossing per MiB), while
the FUSE work and the socket work no longer run on two cores. So the loop keeps its thread.

:meth:`Bridge.run` submits a coroutine with ``asyncio.run_coroutine_threadsafe`` and sleeps
on a ``trio.Event`` that the future's done-callback sets through ``run_sync_soon``. A
crossing costs tens of microseconds of CPU and two thread wake-ups, so callers cross **at
most once per high-level call**: chunk pipelines (upload windows, read-ahead, whole-object
gets) run wholly on the asyncio side, and :meth:`Bridge.stream` moves the items of an asyncio
async iterator to trio in batches (every wake-up drains everything buffered so far) through
a bounded buffer. A streaming copy crosses about once per MiB written (the upload hand-off)
and about once per 5 MiB read (``cp`` of 256 MiB out: 20-28 calls and 30 read-ahead hand-offs;
cached reads are served on the trio thread, and read-ahead is handed to the loop once per
half window: ``read/fetch.py``).

Our own quick measure (whole-object get of 64 MiB in 128 KiB chunks, on a busy 2-vCPU
machine): the asyncio side alone ran at 133-182 MB/s, the same get streamed through
:meth:`Bridge.stream` to trio at 115-133 MB/s, so a crossing per *batch* costs 10-30%; a
crossing per chunk (what :meth:`run` per chunk would do) is what baselines.md measured at
1.4-1.6x the time.

Cancellation from trio cancels the asyncio task (``concurrent.futures.Future.cancel``
propagates to the task); the trio side does not wait for the asyncio side to unwind.

Thread rules: the asyncio thread touches only its own objects and immutable values handed
to it; the only shared mutable state is a stream's buffer, guarded by a lock.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import trio

from ..bridge import BridgeClosed, Call

T = TypeVar("T")


class Bridge:
    """One asyncio event loop in a daemon thread, usable from any trio run.

    ``start()`` (blocking, sync) starts the thread; ``close()`` stops the loop and joins it.
    Coroutine functions are called *in the loop thread*, never in the caller's.
    """

    def __init__(self, name: str = "osfs-asyncio") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        #: Coroutines submitted to the loop so far (each is one crossing; for tests and
        #: diagnostics of how often a path crosses).
        self.crossings = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            raise BridgeClosed("bridge is not running")
        return self._loop

    def start(self) -> Bridge:
        """Start the loop thread and wait until the loop runs."""
        if self._thread is not None:
            return self
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=main, name=self._name, daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loop (pending tasks are cancelled) and join the thread; idempotent."""
        thread, self._thread = self._thread, None
        loop = self._loop
        if thread is None or loop is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def submit(self, fn: Callable[..., Awaitable[T]], *args: Any) -> concurrent.futures.Future[T]:
        """Schedule ``fn(*args)`` on the loop from any thread; returns a concurrent future."""
        loop = self.loop

        async def call() -> T:
            return await fn(*args)

        self.crossings += 1
        return asyncio.run_coroutine_threadsafe(call(), loop)

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop and return its result (or raise its exception).

        Must be called from trio. Cancelling the trio task cancels the asyncio task.
        """
        call = self.start_call(fn, *args)
        try:
            return await call.result()
        except BaseException:
            call.cancel()
            raise

    def start_call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Call[T]:
        """Start ``fn(*args)`` on the loop and return at once; await :meth:`Call.result` later.

        Must be called from trio. The call runs to its end whether or not anybody waits for
        it: this is how a caller keeps working on the trio side while the asyncio side
        works on what it handed over (one crossing, no waiting in between).
        """
        return Call(self.submit(fn, *args), trio.lowlevel.current_trio_token())

    @asynccontextmanager
    async def stream(
        self, fn: Callable[..., AsyncIterator[T]], *args: Any, buffer: int = 64
    ) -> AsyncIterator[AsyncIterator[T]]:
        """Run the async iterator ``fn(*args)`` on the loop; yield a trio async iterator of it.

        The producer pauses while ``buffer`` items wait in the channel; the consumer takes
        them all at once, so at most ``2 * buffer + 1`` items are produced and not consumed.
        An exception of the producer is raised by the trio iterator after the items before
        it. Leaving the context cancels the producer.
        """
        chan = _Channel(self.loop, trio.lowlevel.current_trio_token(), buffer)
        fut = self.submit(chan.pump, fn, args)
        try:
            yield chan.receive()
        finally:
            fut.cancel()
            chan.closed = True


_END = object()


class _Channel:
    """A bounded, batch-draining hand-off from an asyncio producer to one trio consumer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken, size: int) -> None:
        self._loop = loop
        self._token = token
        self._size = max(1, size)
        self._lock = threading.Lock()
        self._items: collections.deque = collections.deque()
        self._trio_waiting: trio.Event | None = None
        self._space: asyncio.Event | None = None
        #: The producer waits for space (only then does a drain wake the loop).
        self._producer_waiting = False
        #: A wake-up of the consumer is scheduled on the loop.
        self._wake_pending = False
        self._error: BaseException | None = None
        self.closed = False

    # -- asyncio side -----------------------------------------------------------------
    async def pump(self, fn: Callable[..., AsyncIterator[Any]], args: tuple) -> None:
        self._space = asyncio.Event()
        try:
            async for item in fn(*args):
                while True:
                    with self._lock:
                        if len(self._items) < self._size or self.closed:
                            self._items.append(item)
                            self._wake_trio_soon()
                            break
                        self._space.clear()
                        self._producer_waiting = True
                    await self._space.wait()
                if self.closed:
                    return
        except asyncio.CancelledError:
            # The consumer left (nobody waits) or the loop is closing (the consumer must not
            # wait for ever).
            with self._lock:
                self._error = BridgeClosed("bridge closed while streaming")
                self._items.append(_END)
                self._wake_trio()
            raise
        except BaseException as exc:  # delivered to the consumer
            with self._lock:
                self._error = exc
        with self._lock:
            self._items.append(_END)
            self._wake_trio()

    def _wake_trio(self) -> None:
        ev, self._trio_waiting = self._trio_waiting, None
        if ev is not None:
            with suppress(trio.RunFinishedError):
                self._token.run_sync_soon(ev.set)

    def _wake_trio_soon(self) -> None:
        """Wake a waiting consumer once the loop has run what is ready now (caller holds the
        lock), so that items arriving together (the metas of one socket read) are handed
        over in one wake-up rather than one each."""
        if self._trio_waiting is not None and not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon(self._deferred_wake)

    def _deferred_wake(self) -> None:
        with self._lock:
            self._wake_pending = False
            self._wake_trio()

    def _make_space(self) -> None:
        if self._space is not None:
            self._space.set()

    # -- trio side ----------------------------------------------------------------------
    async def receive(self) -> AsyncIterator[Any]:
        while True:
            with self._lock:
                batch = list(self._items)
                self._items.clear()
                if not batch:
                    ev = self._trio_waiting = trio.Event()
                wake, self._producer_waiting = self._producer_waiting, False
            if not batch:
                await ev.wait()
                continue
            if wake:  # waking the loop costs a syscall and a thread switch: only if needed
                with suppress(RuntimeError):  # the loop is closed: nobody to make space for
                    self._loop.call_soon_threadsafe(self._make_space)
            for item in batch:
                if item is _END:
                    if self._error is not None:
                        raise self._error
                    return
                yield item
