"""Every job ends COMPLETED or FAILED with a sentence: an over-long integer,
a cancellation, a job past its limit; concurrency for the embedding tasks."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from servers import serve
from visgate_worker import sdk, worker
from visgate_worker.config import Config
from visgate_worker.handler import make_async_handler, make_handler

HUGE = "9" * 5000


class _JobTake(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = self.server.state.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_5000_digit_seed_is_a_job_that_fails_with_a_sentence(monkeypatch):
    import aiohttp
    from runpod.serverless.modules import rp_job

    payload = '{"id": "j-huge", "input": {"prompt": "a red square", "seed": ' + HUGE + "}}"
    with pytest.raises(ValueError, match="integer string conversion"):
        json.loads(payload)  # what the SDK's own job-take does, then drops the job

    async def take(url: str) -> list | None:
        monkeypatch.setattr(rp_job, "_job_get_url", lambda n=1: url + "/job-take")
        async with aiohttp.ClientSession() as session:
            return await sdk.get_job(session)

    with serve(_JobTake, payload) as url:
        jobs = asyncio.run(take(url))
    assert jobs is not None
    (job,) = jobs
    assert job["id"] == "j-huge"

    class NeverCalled:
        def __call__(self, inputs, stop=None):
            raise AssertionError("the model ran")

    cfg = Config(model="m/m", task="text-to-image", library="diffusers")
    assert make_handler(NeverCalled(), cfg)(job) == {
        "error": "seed must be a whole number between 0 and 4294967295."
    }


def test_install_replaces_the_sdks_job_take():
    from runpod.serverless.modules import rp_scale

    before = rp_scale.get_job
    try:
        sdk.install()
        assert rp_scale.JobScaler({"handler": lambda j: {}}).jobs_fetcher is sdk.get_job
    finally:
        rp_scale.get_job = before


def test_large_but_fine_integers_are_ints():
    assert sdk.loads('{"a": 4294967295, "b": -3, "c": 1.5}') == {"a": 4294967295, "b": -3, "c": 1.5}
    assert sdk.loads("[" + "1" * 101 + ", -" + "1" * 101 + "]") == [float("inf"), float("-inf")]


def test_cancelling_the_job_stops_its_computation():
    started, stopped = threading.Event(), threading.Event()

    def handler(job, stop):
        started.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if stop.cancelled:
                stopped.set()
                return {"error": "stopped"}
            time.sleep(0.01)
        return {"done": True}

    async def run() -> None:
        task = asyncio.create_task(make_async_handler(handler, 60)({"id": "j", "input": {}}))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        task.cancel()  # what the SDK does on RunPod's stop signal
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert stopped.wait(5)


def test_a_computation_that_cannot_stop_is_answered_at_the_limit():
    release = threading.Event()

    def handler(job, stop):
        release.wait(10)  # a forward pass that does not look at stop
        return {"done": True}

    async def run() -> tuple[dict, float]:
        t0 = time.monotonic()
        out = await make_async_handler(handler, 0.2, grace=0.1)({"id": "j", "input": {}})
        elapsed = time.monotonic() - t0
        release.set()
        return out, elapsed

    out, elapsed = asyncio.run(run())
    assert out["error"].startswith("The job ran longer than its limit of 0.2 s and was stopped")
    assert elapsed < 5


def test_the_limit_reaches_the_model():
    seen = []

    class Model:
        def __call__(self, inputs, stop=None):
            seen.append(stop.limit)
            return {}

    cfg = Config(model="m/m", task="fill-mask", library="transformers", job_timeout=42)
    make_handler(Model(), cfg)({"id": "j", "input": {"inputs": "a [MASK]"}})
    assert seen == [42]


def test_embedding_tasks_take_several_jobs_at_once():
    assert worker.CONCURRENT_JOBS["sentence-similarity"] > 1
    assert worker.CONCURRENT_JOBS["feature-extraction"] > 1
    assert worker.CONCURRENT_JOBS.get("text-to-image", 1) == 1
    assert sdk.concurrency(4)(1) == 4
