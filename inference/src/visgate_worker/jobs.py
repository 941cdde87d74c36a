"""A job's wall-clock limit and cancellation, seen from the computation.

The handler gives each job a Stop; the models call check() where they can
stop (between diffusion steps, before a forward pass), so a job past its
limit, or cancelled on RunPod, stops computing instead of running on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import ExplainedError


class JobStoppedError(ExplainedError):
    """The job passed its wall-clock limit or was cancelled."""


def over_limit(limit: float) -> str:
    return (
        f"The job ran longer than its limit of {limit:g} s and was stopped: "
        "ask for less (fewer steps, images or inputs, a smaller size)."
    )


class Stop:
    def __init__(self, limit: float | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._deadline = clock() + limit if limit is not None else None
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def expired(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    def check(self) -> None:
        """Raises JobStoppedError once the job is cancelled or past its limit."""
        if self.cancelled:
            raise JobStoppedError("The job was cancelled: its computation stopped.")
        if self.expired():
            assert self.limit is not None
            raise JobStoppedError(over_limit(self.limit))


NO_STOP = Stop()
