"""The worker's configuration, read once from the endpoint's environment."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .tasks import LIBRARIES, TASKS


def default_timeout(task: str) -> int:
    """A job's wall-clock limit when the env sets none (VISGATE_JOB_TIMEOUT);
    the orchestrator sets the same (functions/provision, JobTimeoutSeconds)."""
    return TASKS[task].job_timeout_seconds


# Where a RunPod network volume is mounted; its huggingface/ folder is the
# Hub cache when present, so a restarted worker does not download again.
# RunPod's cached models (an endpoint's Model setting) appear read-only in
# the same place, under huggingface-cache/hub, in the Hub cache's layout.
RUNPOD_VOLUME = Path("/runpod-volume")
RUNPOD_CACHED_MODELS = Path("huggingface-cache") / "hub"

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The endpoint's environment does not describe a deployable model."""


# The worker downloads exactly the files the orchestrator chose (its
# validate step, shared/huggingface: the files its VRAM estimate counted);
# it has no selection of its own.
NO_FILES = (
    "VISGATE_FILES is not set: the orchestrator names the repository files to download "
    "(a JSON array of paths); this worker does not choose them."
)


@dataclass(frozen=True)
class Config:
    model: str
    task: str
    library: str
    revision: str | None = None
    files: tuple[str, ...] = ()
    hf_token: str | None = field(default=None, repr=False)
    hf_home: Path | None = None
    deployment_id: str | None = None
    callback_url: str | None = None
    callback_secret: str | None = field(default=None, repr=False)
    gpu: str | None = None
    vram_gb: int | None = None
    hub_endpoint: str | None = None  # HF_ENDPOINT: another Hub (the simulator)
    # RunPod's cached models (/runpod-volume/huggingface-cache/hub), when
    # present: looked in before any download.
    cached_models: Path | None = None
    # VISGATE_ALLOW_CPU=1: serve from the CPU although VISGATE_GPU names a
    # card (the GPU-free local simulation only; never set by create_endpoint).
    allow_cpu: bool = False
    # VISGATE_JOB_TIMEOUT: a job's wall-clock limit in seconds (the endpoint's
    # execution timeout is set a little above it); else the task's default.
    job_timeout: float | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or a report."""
        return tuple(s for s in (self.hf_token, self.callback_secret) if s)

    @property
    def hub_cache(self) -> Path | None:
        return self.hf_home / "hub" if self.hf_home else None


def from_env(env: Mapping[str, str] | None = None, volume: Path = RUNPOD_VOLUME) -> Config:
    """Reads the contract's variables; raises ConfigError naming what is wrong."""
    env = os.environ if env is None else env

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    model = get("MODEL_NAME")
    if not model:
        raise ConfigError("MODEL_NAME is not set: the endpoint does not say which model to serve.")
    task = get("VISGATE_TASK")
    if task not in TASKS:
        raise ConfigError(f"VISGATE_TASK is {task!r}; this worker serves {', '.join(sorted(TASKS))}.")
    library = get("VISGATE_LIBRARY")
    if library is None:
        library = TASKS[task].default_library
    if library not in LIBRARIES:
        raise ConfigError(
            f"VISGATE_LIBRARY is {library!r}; this worker loads {', '.join(sorted(LIBRARIES))}."
        )
    if library not in TASKS[task].loaders:
        raise ConfigError(f"Task {task} cannot be served with the {library} library.")

    files = _parse_files(get("VISGATE_FILES"))
    callback_url = get("VISGATE_CALLBACK_URL")
    callback_secret = get("VISGATE_CALLBACK_SECRET")
    if callback_url and not callback_secret:
        raise ConfigError("VISGATE_CALLBACK_URL is set without VISGATE_CALLBACK_SECRET.")
    if callback_url and not callback_url.startswith(("http://", "https://")):
        raise ConfigError("VISGATE_CALLBACK_URL must be an http(s) URL.")

    vram = get("VISGATE_VRAM_GB")
    vram_gb: int | None = None
    if vram is not None:
        try:
            vram_gb = int(vram)
        except ValueError:
            raise ConfigError(f"VISGATE_VRAM_GB is {vram!r}, not a whole number of GB.") from None

    job_timeout = float(default_timeout(task))
    raw_timeout = get("VISGATE_JOB_TIMEOUT")
    if raw_timeout is not None:
        try:
            job_timeout = float(int(raw_timeout))
        except ValueError:
            raise ConfigError(
                f"VISGATE_JOB_TIMEOUT is {raw_timeout!r}, not a whole number of seconds."
            ) from None
        if job_timeout <= 0:
            raise ConfigError("VISGATE_JOB_TIMEOUT must be a positive number of seconds.")

    hf_home: Path | None = None
    if get("HF_HOME"):
        hf_home = Path(env["HF_HOME"].strip())
    elif volume.is_dir():
        cache = volume / "huggingface"
        if os.access(cache if cache.is_dir() else volume, os.W_OK):
            hf_home = cache
        else:
            log.warning(
                "%s is mounted but not writable by this user: caching models on the container disk", volume
            )

    cached = volume / RUNPOD_CACHED_MODELS
    return Config(
        model=model,
        task=task,
        library=library,
        revision=get("MODEL_REVISION"),
        files=files,
        hf_token=get("HF_TOKEN"),
        hf_home=hf_home,
        deployment_id=get("VISGATE_DEPLOYMENT_ID"),
        callback_url=callback_url,
        callback_secret=callback_secret,
        gpu=get("VISGATE_GPU"),
        vram_gb=vram_gb,
        hub_endpoint=(get("HF_ENDPOINT") or "").rstrip("/") or None,
        cached_models=cached if cached.is_dir() else None,
        allow_cpu=get("VISGATE_ALLOW_CPU") in ("1", "true"),
        job_timeout=job_timeout,
    )


def _parse_files(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        raise ConfigError(NO_FILES)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError("VISGATE_FILES is not a JSON array of file paths.") from None
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ConfigError("VISGATE_FILES is not a JSON array of file paths.")
    if not value:
        raise ConfigError(NO_FILES)
    for path in value:
        if path.startswith("/") or ".." in path.split("/"):
            raise ConfigError(f"VISGATE_FILES names {path!r}, which is not a path inside the repository.")
    return tuple(dict.fromkeys(value))
