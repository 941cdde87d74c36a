"""One loader per task and library (tasks.json): each returns a Model that
runs validated inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..config import Config
from ..jobs import Stop
from ..tasks import TASKS
from .runtime import Runtime


class Model(Protocol):
    def __call__(self, inputs: Any, stop: Stop = ...) -> dict[str, Any]:
        """Runs one validated input (see inputs.py); returns the job's output."""
        ...

    def warmup(self) -> None:
        """Runs one small real inference, so the first job is not the slow one."""
        ...


def _text_to_image(config: Config, path: Path, files: tuple[str, ...], runtime: Runtime) -> Model:
    from .text_to_image import load as load_text_to_image

    return load_text_to_image(path, files, runtime, config.model)


def _sentence_embeddings(config: Config, path: Path, files: tuple[str, ...], runtime: Runtime) -> Model:
    from .sentence_embeddings import load as load_embeddings

    return load_embeddings(path, runtime)


def _speech(config: Config, path: Path, files: tuple[str, ...], runtime: Runtime) -> Model:
    from .speech import load as load_speech

    return load_speech(path, runtime)


def _transformers_tasks(config: Config, path: Path, files: tuple[str, ...], runtime: Runtime) -> Model:
    from .transformers_tasks import load as load_pipeline

    return load_pipeline(config.task, path, runtime)


# The loaders by name; tasks.json names each task and library's. The
# modules are imported when used: each pulls in its own heavy library.
LOADERS: dict[str, Callable[[Config, Path, tuple[str, ...], Runtime], Model]] = {
    "text_to_image": _text_to_image,
    "sentence_embeddings": _sentence_embeddings,
    "speech": _speech,
    "transformers_tasks": _transformers_tasks,
}


def load(config: Config, path: Path, files: tuple[str, ...], runtime: Runtime | None = None) -> Model:
    """Loads the model in `path` (a local snapshot) for config.task with
    config.library."""
    runtime = runtime or Runtime.detect(config.gpu, allow_cpu=config.allow_cpu)
    return LOADERS[TASKS[config.task].loaders[config.library]](config, path, files, runtime)
