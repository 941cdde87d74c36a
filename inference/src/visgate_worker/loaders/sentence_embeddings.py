"""sentence-similarity / feature-extraction with sentence-transformers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch

from ..inputs import TextsInput
from ..jobs import NO_STOP, Stop
from .runtime import Runtime


class SentenceEmbeddings:
    def __init__(self, model: Any) -> None:
        self.model = model
        # Jobs run concurrently (concurrency_modifier); a fast tokenizer is
        # not safe to call from two threads at once ("Already borrowed").
        self._lock = threading.Lock()

    def __call__(self, inp: TextsInput, stop: Stop = NO_STOP) -> dict[str, Any]:
        stop.check()
        with self._lock, torch.inference_mode():
            vectors = self.model.encode(inp.texts, convert_to_numpy=True, show_progress_bar=False)
        return {"embeddings": vectors.astype("float32").tolist()}

    def warmup(self) -> None:
        self(TextsInput(texts=["warm-up"], single=True))


def load(path: Path, runtime: Runtime) -> SentenceEmbeddings:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(path),
        device=runtime.device,
        trust_remote_code=False,
        local_files_only=True,
        model_kwargs={"dtype": runtime.dtype(torch.float16)},
    )
    return SentenceEmbeddings(model)
