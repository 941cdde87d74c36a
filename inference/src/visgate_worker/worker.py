"""Start-up: download, load, warm up, report each phase; then serve jobs."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from . import redact
from .callback import CallbackClient, Reporter
from .config import Config, ConfigError, from_env
from .download import Downloaded, ProgressFn, download
from .errors import describe
from .loaders import Model, load
from .loaders.runtime import Runtime
from .tasks import TASKS

log = logging.getLogger("visgate_worker")


# Jobs a worker takes at once (tasks.json): the embedding tasks are short
# forward passes whose HTTP round trips with RunPod overlap the next job's
# computation.
CONCURRENT_JOBS = {name: task.concurrent_jobs for name, task in TASKS.items()}


class StartupError(RuntimeError):
    """Start-up failed; the message was reported as the deployment's error."""


def start(
    config: Config,
    reporter: Reporter,
    *,
    download_fn: Callable[[Config, ProgressFn], Downloaded] = download,
    load_fn: Callable[[Config, Path, tuple[str, ...], Runtime | None], Model] = load,
    runtime: Runtime | None = None,
) -> Model:
    """Runs the start-up protocol; returns the warmed-up model or raises StartupError."""
    importing = _import_in_background(config.library)
    phase = "download"
    try:
        t0 = time.monotonic()
        files = download_fn(
            config,
            lambda done, total: reporter.downloading(done, total, force=done in (0, total)),
        )
        t1 = time.monotonic()
        log.info("downloaded %d files (%d bytes) in %.1f s", len(files.files), files.bytes_total, t1 - t0)
        phase = "load"
        reporter.loading()
        if importing is not None:
            # A library half-imported by another thread is not safe to use.
            importing.join()
        model = load_fn(config, files.path, files.files, runtime)
        t2 = time.monotonic()
        log.info("loaded %s for %s in %.1f s", config.model, config.task, t2 - t1)
        phase = "warm-up"
        model.warmup()
        t3 = time.monotonic()
    except Exception as exc:
        message = describe(exc, config, phase)
        log.exception("start-up failed in the %s phase", phase)
        reporter.failed(message)
        raise StartupError(message) from exc
    # Usually acknowledged at once; when the orchestrator is unreachable the
    # report keeps trying in the background and the worker serves jobs (the
    # orchestrator's health check finds it ready meanwhile).
    reporter.ready(t1 - t0, t2 - t1, t3 - t2).join(timeout=READY_WAIT)
    return model


# How long start-up waits for the ready report's acknowledgement before the
# worker serves jobs anyway.
READY_WAIT = 30.0


# What each loader imports first; diffusers and transformers import lazily,
# so the name itself has to be looked up.
_LIBRARY_ENTRY = {
    "diffusers": ("diffusers", "AutoPipelineForText2Image"),
    "transformers": ("transformers", "pipeline"),
    "sentence-transformers": ("sentence_transformers", "SentenceTransformer"),
}


def _import_in_background(library: str) -> threading.Thread | None:
    """Imports the model library (seconds of CPU) while the files download."""
    entry = _LIBRARY_ENTRY.get(library)
    if entry is None:
        return None
    module, name = entry

    def run() -> None:
        try:
            getattr(importlib.import_module(module), name)
        except Exception:  # load() imports it again and reports the error
            log.debug("background import of %s failed", module, exc_info=True)

    thread = threading.Thread(target=run, name=f"import-{module}", daemon=True)
    thread.start()
    return thread


def _reporter(config: Config, redactor: redact.Redactor) -> Reporter:
    if not config.callback_url or not config.callback_secret:
        log.warning("VISGATE_CALLBACK_URL is not set: start-up is only logged")
        return Reporter(None)
    return Reporter(CallbackClient(config.callback_url, config.callback_secret, redact=redactor))


def _report_config_error(env: Mapping[str, str], redactor: redact.Redactor, error: str) -> None:
    url, secret = env.get("VISGATE_CALLBACK_URL", "").strip(), env.get("VISGATE_CALLBACK_SECRET", "").strip()
    if url.startswith(("http://", "https://")) and secret:
        Reporter(CallbackClient(url, secret, redact=redactor)).failed(error)


def main() -> int:
    env = os.environ
    logging.basicConfig(
        level=os.environ.get("VISGATE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Before anything can print them: the token and the callback secret.
    redactor = redact.install(
        [env.get("HF_TOKEN", "").strip(), env.get("VISGATE_CALLBACK_SECRET", "").strip()]
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # The SDK logs every job's whole output at DEBUG (its default): base64 images.
    os.environ.setdefault("RUNPOD_DEBUG_LEVEL", "INFO")
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = from_env(env)
    except ConfigError as exc:
        log.error("configuration: %s", exc)
        _report_config_error(env, redactor, str(exc))
        return 2
    # The secret is ours alone: nothing the worker runs needs it in its env.
    os.environ.pop("VISGATE_CALLBACK_SECRET", None)
    log.info(
        "starting: model %s (revision %s), task %s, library %s, %d files selected, GPU %s, estimate %s GB",
        config.model,
        config.revision or "default",
        config.task,
        config.library,
        len(config.files),
        config.gpu or "unknown",
        config.vram_gb if config.vram_gb is not None else "unknown",
    )
    try:
        model = start(config, _reporter(config, redactor))
    except StartupError:
        return 1

    import runpod

    from . import sdk
    from .handler import make_async_handler, make_handler

    sdk.install()
    limit = config.job_timeout or 600.0
    settings: dict[str, object] = {"handler": make_async_handler(make_handler(model, config), limit)}
    jobs = CONCURRENT_JOBS.get(config.task, 1)
    if jobs > 1:
        settings["concurrency_modifier"] = sdk.concurrency(jobs)
    log.info("serving: jobs limited to %g s, %d at once", limit, jobs)
    runpod.serverless.start(settings)
    return 0
