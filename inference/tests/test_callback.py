from __future__ import annotations

import socket

import pytest

from visgate_worker.callback import SECRET_HEADER, Backoff, CallbackClient, CallbackError, Reporter

FAST = Backoff(attempts=4, initial=0.01, maximum=0.02)


def _client(url: str, sleeps: list[float] | None = None, **kw) -> CallbackClient:
    sleeps = sleeps if sleeps is not None else []
    return CallbackClient(url, "cb-secret", backoff=FAST, sleep=sleeps.append, timeout=5, **kw)


def test_posts_json_with_the_secret_header(callback):
    url, state = callback
    answer = _client(url).send("loading_model")
    assert answer == {"deployment_id": "dep-1", "status": "loading_model", "webhook_delivered": False}
    assert state.received == [{"status": "loading_model"}]
    assert state.headers[0][SECRET_HEADER] == "cb-secret"
    assert state.headers[0]["Content-Type"] == "application/json"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_retries_5xx_and_429_then_succeeds(callback, status):
    url, state = callback
    state.script = [status, status]
    sleeps: list[float] = []
    _client(url, sleeps).send("ready", timings={"download_seconds": 1})
    assert state.statuses() == ["ready"]
    assert len(state.headers) == 3
    assert len(sleeps) == 2
    if status == 429:
        assert sleeps == [0.0, 0.0]  # the server's Retry-After: 0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_gives_up_at_once_on_other_4xx(callback, status):
    url, state = callback
    state.script = [status]
    sleeps: list[float] = []
    with pytest.raises(CallbackError, match=f"HTTP {status}"):
        _client(url, sleeps).send("loading_model")
    assert len(state.headers) == 1
    assert sleeps == []


def test_gives_up_after_the_last_attempt(callback):
    url, state = callback
    state.script = [503] * 10
    sleeps: list[float] = []
    with pytest.raises(CallbackError, match="after 4 attempts"):
        _client(url, sleeps).send("loading_model")
    assert len(state.headers) == 4
    assert len(sleeps) == 3


def test_network_errors_are_retried():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(CallbackError, match="ConnectionError"):
        _client(f"http://127.0.0.1:{port}/cb", sleeps).send("loading_model")
    assert len(sleeps) == 3


def test_backoff_grows_and_is_capped():
    b = Backoff(attempts=10, initial=1, maximum=8)
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (3, 8), (6, 8)]:
        d = b.delay(attempt)
        assert ceiling / 2 <= d <= ceiling


def test_message_and_error_are_redacted_and_capped(callback):
    url, state = callback
    _client(url).send("failed", error="token cb-secret leaked " + "x" * 600)
    sent = state.received[0]["error"]
    assert "cb-secret" not in sent
    assert sent.startswith("token [REDACTED] leaked")
    assert len(sent) == 500


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reporter_throttles_progress_but_sends_first_and_last(callback):
    url, state = callback
    clock = Clock()
    r = Reporter(_client(url), interval=3, clock=clock)
    r.downloading(0, 100, force=True)
    clock.now = 1
    r.downloading(10, 100)  # within 3 s: dropped
    clock.now = 3.5
    r.downloading(40, 100)
    clock.now = 4
    r.downloading(100, 100, force=True)
    r.loading()
    r.ready(1.23456, 2, 3).join(5)
    assert state.received == [
        {"status": "downloading_model", "bytes_done": 0, "bytes_total": 100},
        {"status": "downloading_model", "bytes_done": 40, "bytes_total": 100},
        {"status": "downloading_model", "bytes_done": 100, "bytes_total": 100},
        {"status": "loading_model"},
        {
            "status": "ready",
            "timings": {"download_seconds": 1.235, "load_seconds": 2, "warmup_seconds": 3},
        },
    ]


def test_reporter_survives_a_refused_report(callback, caplog):
    url, state = callback
    state.script = [400]
    Reporter(_client(url)).loading()
    assert "refused" in caplog.text


def test_reporter_without_url_only_logs(caplog):
    import logging

    caplog.set_level(logging.INFO)
    Reporter(None).failed("it broke")
    assert "failed: it broke" in caplog.text


def test_ready_is_reported_until_acknowledged(callback):
    """Issue 23, item 1: an orchestrator down longer than a progress report's
    retries (six attempts) must not lose the ready report."""
    url, state = callback
    state.script = [503] * 12  # down for 12 attempts, then back
    sleeps: list[float] = []
    client = CallbackClient(url, "cb-secret", sleep=sleeps.append, timeout=5)
    reporter = Reporter(client)
    reporter.ready(1, 2, 3).join(5)
    assert state.statuses() == ["ready"]
    assert len(state.headers) == 13
    assert max(sleeps) <= 30


def test_handler_answers_the_health_check():
    """Issue 23, item 1: the orchestrator asks a worker that is up whether
    its model is ready; a worker that serves jobs is."""
    from visgate_worker.config import Config
    from visgate_worker.handler import make_handler

    class Model:
        def __call__(self, inputs):
            raise AssertionError("the health check runs no inference")

        def warmup(self) -> None:
            pass

    cfg = Config(model="m/m", task="fill-mask", library="transformers")
    out = make_handler(Model(), cfg)({"id": "j", "input": {"visgate_health": True}})
    assert out == {"visgate_health": "ready", "model": "m/m", "task": "fill-mask"}
