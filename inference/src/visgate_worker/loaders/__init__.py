"""One loader per task: each returns a Model that runs validated inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..config import Config
from ..jobs import Stop
from .runtime import Runtime


class Model(Protocol):
    def __call__(self, inputs: Any, stop: Stop = ...) -> dict[str, Any]:
        """Runs one validated input (see inputs.py); returns the job's output."""
        ...

    def warmup(self) -> None:
        """Runs one small real inference, so the first job is not the slow one."""
        ...


def load(config: Config, path: Path, files: tuple[str, ...], runtime: Runtime | None = None) -> Model:
    """Loads the model in `path` (a local snapshot) for config.task."""
    runtime = runtime or Runtime.detect(config.gpu, allow_cpu=config.allow_cpu)
    task = config.task
    if task == "text-to-image":
        from .text_to_image import load as load_text_to_image

        return load_text_to_image(path, files, runtime, config.model)
    if task == "sentence-similarity" or (
        task == "feature-extraction" and config.library == "sentence-transformers"
    ):
        from .sentence_embeddings import load as load_embeddings

        return load_embeddings(path, runtime)
    if task == "automatic-speech-recognition":
        from .speech import load as load_speech

        return load_speech(path, runtime)
    from .transformers_tasks import load as load_pipeline

    return load_pipeline(task, path, runtime)
