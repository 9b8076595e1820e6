"""Micro-batching: concurrent small requests share one forward pass.

Requests put their arrays (same channels and size) on a queue; a worker task takes what
has arrived within ``max_wait_ms`` (up to ``max_batch`` items), runs one forward pass in a
thread, and hands every request its slice. Arrays of another size form their own batch.
The worker keeps no reference to a batch once it is answered, so a large request's arrays
are freed with the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Item:
    array: np.ndarray
    future: asyncio.Future[np.ndarray]


@dataclass
class Batcher:
    """Collects (C, H, W) arrays and answers each with its row of ``forward(stacked)``."""

    forward: Callable[[np.ndarray], np.ndarray]
    max_batch: int = 16
    max_wait_ms: float = 5.0
    batches: int = 0
    items: int = 0
    _queue: asyncio.Queue[_Item] | None = field(default=None, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def submit(self, array: np.ndarray) -> np.ndarray:
        """The model output for one (C, H, W) array, computed with whatever else is waiting."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run())
        fut: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(array, fut))
        return await fut

    async def _run(self) -> None:
        while True:
            await self._serve_next()  # its locals (the batch) are gone when it returns

    async def _serve_next(self) -> None:
        assert self._queue is not None
        first = await self._queue.get()
        group = [first]
        deadline = asyncio.get_running_loop().time() + self.max_wait_ms / 1000
        while len(group) < self.max_batch:
            timeout = deadline - asyncio.get_running_loop().time()
            if timeout <= 0:
                break
            try:
                group.append(await asyncio.wait_for(self._queue.get(), timeout))
            except TimeoutError:
                break
        by_shape: dict[tuple[int, ...], list[_Item]] = {}
        for item in group:
            by_shape.setdefault(item.array.shape, []).append(item)
        for items in by_shape.values():
            await self._answer(items)

    async def _answer(self, items: list[_Item]) -> None:
        try:
            out = await asyncio.to_thread(self.forward, np.stack([i.array for i in items]))
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for i in items:
                if not i.future.done():
                    i.future.set_exception(exc)
            return
        self.batches += 1
        self.items += len(items)
        for i, row in zip(items, out, strict=True):
            if not i.future.done():
                i.future.set_result(row)

    async def close(self) -> None:
        """Stop the worker task."""
        if self._task is not None:
            self._task.cancel()
