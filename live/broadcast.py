"""Handing messages to the channel layer from synchronous code, without making it wait.

Domain events are published in the request (or task) that made the change, right after its commit:
on gunicorn's sync workers, in Celery workers, in management commands, and in the thread pool of an
ASGI server (daphne, ``manage.py runserver``). ``send(group, message)`` queues the message and
returns at once; a sender task hands the queue to the layer in order, on one of two event loops:

- the loop this process's WebSocket consumers run on, once one has connected (``serve_here``): the
  in-memory layer only delivers there, and on daphne it saves a thread;
- otherwise a loop of our own, in a daemon thread started by the first ``send`` of the process (so a
  gunicorn worker forked from its master starts its own), which keeps one Redis connection open for
  the life of the process instead of one loop and one connection per event (``async_to_sync``'s).

A send that fails is logged and dropped: pages catch up when their socket reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

# Past this many waiting messages (a layer that stopped answering) new ones are dropped, not hoarded.
QUEUE_LIMIT = 10_000


class _Sender:
    """A queue drained into the channel layer by one task on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue | None = None

    def usable(self) -> bool:
        return self.loop.is_running() and not self.loop.is_closed()

    def submit(self, group: str, message: dict) -> None:
        # Thread-safe: the queue is only ever touched on its own loop.
        self.loop.call_soon_threadsafe(self._put, group, message)

    def _put(self, group: str, message: dict) -> None:
        if self.queue is None:
            self.queue = asyncio.Queue(maxsize=QUEUE_LIMIT)
            self.loop.create_task(self._drain())
        try:
            self.queue.put_nowait((group, message))
        except asyncio.QueueFull:
            logger.error("Live updates: %s messages waiting for the channel layer; dropped one", QUEUE_LIMIT)

    async def _drain(self) -> None:
        while True:
            group, message = await self.queue.get()
            try:
                layer = get_channel_layer()
                if layer is not None:
                    await layer.group_send(group, message)
            except Exception:
                logger.exception("Live updates: could not send a message to the group %s", group)
            finally:
                self.queue.task_done()

    async def drained(self) -> None:
        if self.queue is not None:
            await self.queue.join()


_lock = threading.Lock()
_consumers_loop: _Sender | None = None
_own_loop: _Sender | None = None


def serve_here() -> None:
    """Called by the consumers, on their loop: this process's messages go out on it from now on."""
    global _consumers_loop
    loop = asyncio.get_running_loop()
    if _consumers_loop is None or _consumers_loop.loop is not loop:
        with _lock:
            _consumers_loop = _Sender(loop)


def _own_sender() -> _Sender:
    global _own_loop
    with _lock:
        if _own_loop is None or not _own_loop.usable():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-broadcast", daemon=True).start()
            _own_loop = _Sender(loop)
        return _own_loop


def _sender() -> _Sender | None:
    serving = _consumers_loop
    if serving is not None and serving.usable():
        return serving
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        # Only consumers of this process could receive it, and none has connected.
        return None
    return _own_sender()


def send(group: str, message: dict) -> None:
    """Queue ``message`` for every consumer in ``group``; returns at once."""
    sender = _sender()
    if sender is not None:
        sender.submit(group, message)


def wait_until_sent(timeout: float = 5.0) -> None:
    """Block until everything queued so far has been handed to the layer (tests, benchmarks)."""
    sender = _own_loop
    if sender is not None and sender.usable() and sender.queue is not None:
        asyncio.run_coroutine_threadsafe(sender.drained(), sender.loop).result(timeout)


def _forget_after_fork() -> None:
    # A forked child (a gunicorn worker) has none of its parent's threads: it starts its own loop.
    global _consumers_loop, _own_loop, _lock
    _consumers_loop = _own_loop = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
