"""One background thread per slow component, so the control loop never waits on it.

The control loop submits a job only when the worker is idle and polls for the result on
later ticks; it never joins. A job's exception is kept and handed back like a result, so the
caller decides what a failure means (the agent stops the robot).
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any


class BackgroundWorker:
    """At most one job in flight; `poll()` returns the finished job's outcome exactly once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"agent-{name}")
        self._future: cf.Future | None = None
        self._tag: Any = None

    @property
    def busy(self) -> bool:
        return self._future is not None and not self._future.done()

    def submit(self, fn: Callable[[], Any], tag: Any = None) -> bool:
        """Start `fn` unless a job is still running or its outcome was not collected yet."""
        if self._future is not None:
            return False
        self._future, self._tag = self._pool.submit(fn), tag
        return True

    def poll(self) -> tuple[bool, Any, Any, BaseException | None]:
        """(finished, tag, result, error); finished is False while running or when idle."""
        f = self._future
        if f is None or not f.done():
            return False, None, None, None
        self._future = None
        err = f.exception()
        return True, self._tag, (None if err else f.result()), err

    def wait(self, timeout_s: float | None = None) -> None:
        """Block until the job in flight ends (reset and tests only, never in `step`)."""
        if self._future is not None:
            cf.wait([self._future], timeout=timeout_s)

    def call(self, fn: Callable[[], Any], timeout_s: float | None = None) -> Any:
        """Run `fn` on the worker thread after the job in flight, and wait for it (reset)."""
        self.wait(timeout_s)
        self._future = None
        return self._pool.submit(fn).result(timeout=timeout_s)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
