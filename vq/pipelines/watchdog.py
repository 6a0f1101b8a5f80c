"""A per-item watchdog for batch jobs: one input can never stall or kill a batch.

Items run one at a time in a worker process. The parent waits at most `timeout` seconds
for each result; an item that takes longer (a decoder spinning, a network source that
trickles a byte a second, a demuxer blocked inside C) or that kills the worker (a crash in
a native library on a hostile file) becomes an error record, the worker is killed and a
fresh one takes the next item. Only a watchdog outside the stuck process can promise
this: a thread cannot interrupt a C call, and a deadline checked in Python never runs
while the C call blocks.

The worker is built once per process by `factory(*args)` (module-level and picklable, as
the spawn start method needs) and called per item; it must return a picklable result and
should turn its own errors into records. A worker that cannot start at all (a library
locked by another writer, a missing model) re-raises its error in the parent: that is
not one bad item but a job that cannot run.

Processes are started with "spawn": ONNX Runtime's and BLAS's thread pools do not survive
a fork.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vq.errors import UsageError, VqError, one_line

DEFAULT_TIMEOUT = 600.0  # seconds per item in a batch before the watchdog gives up on it


@dataclass
class Stalled:
    """Why an item produced no result: it passed the timeout, or its worker died."""

    item: Any
    reason: str  # "timeout" | "crash" | "error" (the work raised; `detail` is its first line)
    seconds: float
    detail: str = ""

    def describe(self) -> str:
        """What an error record says about the item (one line)."""
        return {
            "timeout": f"no result after {self.seconds:.0f} s (per-video --timeout); stopped",
            "crash": f"the worker died on this video ({self.detail}); the batch went on",
            "error": f"failed: {self.detail}",
        }[self.reason]


def _worker_main(conn, factory: Callable[..., Callable[[Any], Any]], args: tuple) -> None:
    # Ctrl-C is the parent's to handle: it stops the worker (a second traceback from here
    # would only bury the one line the parent prints).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        work = factory(*args)
    except VqError as e:
        conn.send(("fatal", type(e).__name__, str(e), e.exit_code))
        return
    except BaseException as e:  # a bug: the parent re-raises it with the traceback text
        conn.send(("fatal", type(e).__name__, "".join(traceback.format_exception(e)), 1))
        return
    conn.send(("ready", None))
    try:
        while True:
            item = conn.recv()
            if item is None:
                break
            try:
                conn.send(("result", work(item)))
            except Exception as e:  # one bad item: say why in one line and take the next
                conn.send(("error", one_line(e)))
    except EOFError:
        pass
    finally:
        close = getattr(work, "close", None)
        if close is not None:
            close()


class _Worker:
    def __init__(self, factory, args, start_timeout: float):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, factory, args), daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(start_timeout):
            self.kill()
            raise VqError(f"the batch worker did not start within {start_timeout:.0f} s")
        try:
            message = self.conn.recv()
        except EOFError:
            self.kill()
            raise VqError("the batch worker died while starting") from None
        if message[0] == "fatal":
            _, _kind, text, code = message
            self.kill()
            error = VqError(text)
            error.exit_code = code
            raise error

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def finish(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(None)
        self.process.join(30)
        self.kill()


def run_isolated(
    items: Iterable[Any],
    factory: Callable[..., Callable[[Any], Any]],
    args: tuple = (),
    *,
    timeout: float,
    start_timeout: float = 300.0,
) -> Iterator[Any | Stalled]:
    """Yield `factory(*args)(item)` for each item, computed in a worker process, or a
    `Stalled` for an item that took longer than `timeout` seconds or killed its worker."""
    worker: _Worker | None = None
    finished = False
    try:
        for item in items:
            if worker is None:
                worker = _Worker(factory, args, start_timeout)
            start = time.monotonic()
            try:
                worker.conn.send(item)
                ready = worker.conn.poll(timeout)
                message = worker.conn.recv() if ready else None
            except (EOFError, BrokenPipeError, OSError):
                ready, message = True, None
            elapsed = time.monotonic() - start
            if message is not None and message[0] == "error":
                yield Stalled(item, "error", elapsed, message[1])
                continue
            if message is not None:
                yield message[1]
                continue
            worker.kill()
            code = worker.process.exitcode
            worker = None
            if not ready:
                yield Stalled(item, "timeout", elapsed)
            else:
                yield Stalled(item, "crash", elapsed, f"worker exit code {code}")
        finished = True
    finally:
        if worker is not None:
            if finished:
                worker.finish()
            else:  # interrupted, or the caller stopped iterating: do not wait for it
                worker.kill()


def run_items(
    items: Iterable[Any],
    factory: Callable[..., Callable[[Any], Any]],
    args: tuple = (),
    *,
    timeout: float | None,
    start_timeout: float = 300.0,
) -> Iterator[Any | Stalled]:
    """`run_isolated` when `timeout` is set; otherwise the same worker in this process (no
    watchdog: `timeout` None or 0), closed at the end. The one switch every batch job uses."""
    if timeout is not None and timeout < 0:
        raise UsageError(f"--timeout must be >= 0 seconds (0: no watchdog), got {timeout:g}")
    if timeout:
        yield from run_isolated(items, factory, args, timeout=timeout, start_timeout=start_timeout)
        return
    worker = factory(*args)
    try:
        yield from map(worker, items)
    finally:
        close = getattr(worker, "close", None)
        if close is not None:
            close()
