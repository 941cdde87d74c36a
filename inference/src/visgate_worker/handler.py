"""The RunPod job handler: validated input in, the task's output or {"error"} out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from . import inputs
from .config import Config
from .errors import describe, is_out_of_memory, out_of_memory
from .loaders import Model

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]

# The orchestrator's health check (Go: workerenv.HealthCheck, HealthReady):
# a job whose input is {"visgate_health": true}. The handler runs only once
# start-up and the warm-up inference succeeded, so answering it says the
# model is ready, even when the ready report was lost.
HEALTH_CHECK = "visgate_health"
HEALTH_READY = "ready"


def make_handler(model: Model, config: Config) -> Handler:
    def handler(job: dict[str, Any]) -> dict[str, Any]:
        job_id = job.get("id", "?")
        if job.get("input") == {HEALTH_CHECK: True}:
            return {HEALTH_CHECK: HEALTH_READY, "model": config.model, "task": config.task}
        started = time.monotonic()
        try:
            validated = inputs.validate(config.task, job.get("input"))
            output = model(validated)
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


def _free_gpu_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
