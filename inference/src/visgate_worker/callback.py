"""Reports the worker's start-up to the orchestrator (POST VISGATE_CALLBACK_URL).

Network errors, 5xx and 429 are retried with exponential backoff (Retry-After
is honoured when the server sends it); any other 4xx is final. The ready
report is retried until the orchestrator acknowledges it (for up to about
two hours), in the background while the worker serves jobs: an outage of the
orchestrator when the model becomes ready must not lose it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from .redact import Redactor

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Visgate-Internal-Secret"
MAX_MESSAGE = 500


class CallbackError(RuntimeError):
    """The orchestrator did not accept a report after every attempt."""


@dataclass
class Backoff:
    attempts: int = 6
    initial: float = 0.5
    maximum: float = 15.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Full jitter: a random wait up to initial * multiplier**attempt."""
        ceiling = min(self.maximum, self.initial * self.multiplier**attempt)
        return random.uniform(ceiling / 2, ceiling)


# The ready report's retries: until acknowledged, every 30 s at most, for
# about two hours.
READY_BACKOFF = Backoff(attempts=240, initial=0.5, maximum=30.0)


class CallbackClient:
    def __init__(
        self,
        url: str,
        secret: str,
        *,
        session: requests.Session | None = None,
        backoff: Backoff | None = None,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        redact: Redactor | None = None,
    ) -> None:
        self._url = url
        self._secret = secret
        self._session = session or requests.Session()
        self._backoff = backoff or Backoff()
        self._timeout = timeout
        self._sleep = sleep
        self._redact = redact or Redactor([secret])
        self._lock = threading.Lock()

    def send(self, status: str, *, backoff: Backoff | None = None, **fields: Any) -> dict[str, Any]:
        """POSTs one report; returns the orchestrator's JSON answer.

        `backoff` replaces the client's own for this report.
        """
        policy = backoff or self._backoff
        body: dict[str, Any] = {"status": status, **fields}
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                body[key] = self._redact(body[key])[:MAX_MESSAGE]
        headers = {SECRET_HEADER: self._secret, "Content-Type": "application/json"}
        last = ""
        with self._lock:  # reports arrive in the order they were made
            for attempt in range(policy.attempts):
                wait: float | None = None
                try:
                    resp = self._session.post(self._url, json=body, headers=headers, timeout=self._timeout)
                except requests.RequestException as exc:
                    last = f"{type(exc).__name__}"
                else:
                    if resp.status_code < 300:
                        try:
                            answer = resp.json()
                        except ValueError:
                            answer = {}
                        return answer if isinstance(answer, dict) else {}
                    last = f"HTTP {resp.status_code}"
                    if resp.status_code != 429 and resp.status_code < 500:
                        raise CallbackError(
                            f"the orchestrator refused the {status!r} report ({last}): not retrying"
                        )
                    wait = _retry_after(resp)
                if attempt + 1 < policy.attempts:
                    delay = wait if wait is not None else policy.delay(attempt)
                    log.warning("callback %s failed (%s); retrying in %.1f s", status, last, delay)
                    self._sleep(delay)
        raise CallbackError(
            f"the orchestrator did not take the {status!r} report after {policy.attempts} attempts ({last})"
        )


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After", "")
    try:
        return min(60.0, max(0.0, float(value)))
    except ValueError:
        return None


class Reporter:
    """The start-up protocol on top of a client; logs every report.

    Without a callback URL (a worker started by hand) it only logs. Progress
    reports are throttled to one per `interval` seconds; the first and the
    last always go out.
    """

    def __init__(
        self,
        client: CallbackClient | None,
        *,
        interval: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        ready_backoff: Backoff = READY_BACKOFF,
    ) -> None:
        self._client = client
        self._interval = interval
        self._clock = clock
        self._ready_backoff = ready_backoff
        self._last_progress: float | None = None

    def _send(self, status: str, backoff: Backoff | None = None, **fields: Any) -> None:
        if self._client is None:
            return
        try:
            self._client.send(status, backoff=backoff, **fields)
        except CallbackError as exc:
            # Start-up goes on: the orchestrator also watches the endpoint's
            # workers, and a lost progress report is not worth a dead worker.
            log.error("callback: %s", exc)

    def downloading(self, done: int, total: int, *, force: bool = False) -> None:
        now = self._clock()
        if not force and self._last_progress is not None and now - self._last_progress < self._interval:
            return
        self._last_progress = now
        log.info("downloading_model: %s of %s", _size(done), _size(total))
        self._send("downloading_model", bytes_done=done, bytes_total=total)

    def loading(self) -> None:
        log.info("loading_model")
        self._send("loading_model")

    def ready(self, download_seconds: float, load_seconds: float, warmup_seconds: float) -> threading.Thread:
        """Reports ready until the orchestrator acknowledges it, in the background.

        Returns the reporting thread; the worker serves jobs meanwhile (the
        orchestrator's health check can find it ready before the report
        gets through).
        """
        timings = {
            "download_seconds": round(download_seconds, 3),
            "load_seconds": round(load_seconds, 3),
            "warmup_seconds": round(warmup_seconds, 3),
        }
        log.info("ready: %s", timings)
        thread = threading.Thread(
            target=self._send,
            args=("ready", self._ready_backoff),
            kwargs={"timings": timings},
            name="report-ready",
            daemon=True,
        )
        thread.start()
        return thread

    def failed(self, error: str) -> None:
        log.error("failed: %s", error)
        self._send("failed", error=error)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
