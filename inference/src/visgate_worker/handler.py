"""The RunPod job handler: validated input in, the task's output or {"error"} out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import inputs
from .config import Config
from .errors import describe, is_out_of_memory, out_of_memory
from .jobs import Stop, over_limit
from .loaders import Model

log = logging.getLogger(__name__)

Handler = Callable[..., dict[str, Any]]
AsyncHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

# The orchestrator's health check (Go: workerenv.HealthCheck, HealthReady):
# a job whose input is {"visgate_health": true}. The handler runs only once
# start-up and the warm-up inference succeeded, so answering it says the
# model is ready, even when the ready report was lost.
HEALTH_CHECK = "visgate_health"
HEALTH_READY = "ready"


def make_handler(model: Model, config: Config) -> Handler:
    """The job function: validated input in, output or {"error"} out; never raises."""

    def handler(job: dict[str, Any], stop: Stop | None = None) -> dict[str, Any]:
        job_id = job.get("id", "?") if isinstance(job, dict) else "?"
        if isinstance(job, dict) and job.get("input") == {HEALTH_CHECK: True}:
            return {HEALTH_CHECK: HEALTH_READY, "model": config.model, "task": config.task}
        started = time.monotonic()
        stop = stop or Stop(config.job_timeout)
        try:
            validated = inputs.validate(config.task, job.get("input") if isinstance(job, dict) else None)
            stop.check()
            output = model(validated, stop=stop)
        except inputs.InputError as exc:
            log.info("job %s: bad input: %s", job_id, exc)
            return {"error": str(exc)}
        except Exception as exc:
            if is_out_of_memory(exc):
                _free_gpu_cache()
                message = out_of_memory(config)
            else:
                message = describe(exc, config, "inference")
            log.exception("job %s failed: %s", job_id, message)
            return {"error": message}
        log.info("job %s done in %.2f s", job_id, time.monotonic() - started)
        return output

    return handler


def make_async_handler(handler: Handler, limit: float, *, grace: float = 30.0) -> AsyncHandler:
    """The handler for the RunPod SDK: the job runs in a thread, so the SDK's
    loop stays free to hear a cancellation (its stop signal cancels this
    coroutine) and to run more jobs at once where concurrency_modifier allows.
    Cancelled, the job's Stop is set and the computation stops at its next
    check; a computation that does not reach one within limit + grace is
    answered with the limit's sentence all the same."""

    async def run(job: dict[str, Any]) -> dict[str, Any]:
        stop = Stop(limit)
        future = asyncio.get_running_loop().run_in_executor(None, handler, job, stop)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=limit + grace)
        except TimeoutError:
            stop.cancel()
            log.error("job %s: no answer within %g s: reported as over its limit", job.get("id", "?"), limit)
            return {"error": over_limit(limit)}
        except asyncio.CancelledError:
            stop.cancel()
            log.info("job %s cancelled: stopping its computation", job.get("id", "?"))
            raise

    return run


def _free_gpu_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
