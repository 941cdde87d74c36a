"""Our hooks into the RunPod SDK (runpod 1.12.0, pinned in the lock).

get_job: the SDK's own job-take (rp_job.get_job) reads the answer with
json.loads, which refuses an integer of more than 4,300 digits; the SDK then
logs at DEBUG and drops the job, which RunPod shows IN_PROGRESS for ever.
Ours reads every integer of more than MAX_INT_DIGITS digits as an infinite
float, which the job's validation refuses with a sentence, so the job ends
FAILED. The rest is the SDK's behaviour.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)

MAX_INT_DIGITS = 100


def _int(text: str) -> int | float:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


def loads(text: str) -> Any:
    """json.loads, but an integer too long to be one is an infinite float."""
    return json.loads(text, parse_int=_int)


async def get_job(session: Any, num_jobs: int = 1) -> list[dict[str, Any]] | None:
    from runpod.http_client import TooManyRequests
    from runpod.serverless.modules.rp_job import _job_get_url

    async with session.get(_job_get_url(num_jobs)) as response:
        if response.status in (204, 400):
            return None
        if response.status == 429:
            raise TooManyRequests(
                response.request_info, response.history, status=response.status, message=response.reason
            )
        response.raise_for_status()
        if response.content_type != "application/json" or response.content_length == 0:
            return None
        text = await response.text()
    try:
        jobs = loads(text)
    except ValueError as exc:
        log.error("a job from RunPod is not valid JSON (%s): it cannot be answered", type(exc).__name__)
        return None
    if isinstance(jobs, dict):
        if "id" not in jobs or "input" not in jobs:
            raise ValueError("Job has missing field(s): id or input.")
        return [jobs]
    if isinstance(jobs, list):
        return jobs
    return None


def install() -> None:
    """Makes the SDK's job loop take jobs with get_job above."""
    from runpod.serverless.modules import rp_scale

    rp_scale.get_job = get_job


def concurrency(jobs: int) -> Any:
    """A concurrency_modifier that keeps `jobs` jobs at once."""

    def modifier(current: int) -> int:
        return jobs

    return modifier
