"""Group commit for submits: requests that arrive together share one transaction.

Each submit is one small write, and with one SQLite file the writes take turns.
Under load, instead of one transaction per request, the submits waiting while a
transaction runs go into the next one together, so the cost of a commit and of
a hop to the writing thread is shared. A lone submit still commits at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from reelserve.errors import ReelserveError
from reelserve.jobs import JobOrder, Refusal, Submitted

MAX_BATCH = 256


class SubmitBatcher:
    def __init__(self, write: Callable[[Sequence[JobOrder]],
                                       Awaitable[list[Submitted | Refusal]]]) -> None:
        """``write`` stores a batch in one transaction (``AsyncStore.submit_jobs``)."""
        self._write = write
        self._waiting: list[tuple[JobOrder, asyncio.Future[Submitted]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, order: JobOrder) -> Submitted:
        """Queue ``order``'s job and hold its price; raise the store's refusal."""
        future: asyncio.Future[Submitted] = asyncio.get_running_loop().create_future()
        self._waiting.append((order, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        return await future

    async def _write_batches(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                outcomes = await self._write([order for order, _ in batch])
            except Exception as error:  # the store failed: every waiting submit hears it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its client went away
                    continue
                if isinstance(outcome, ReelserveError):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
