"""The transformers pipelines for text-classification, token-classification,
fill-mask, feature-extraction and image-classification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..inputs import InputError, MediaInput, TextsInput
from .media import decode_image, fetch
from .runtime import Runtime


def jsonable(value: Any) -> Any:
    """Pipeline outputs with numpy scalars and arrays made JSON-ready."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


class TextPipeline:
    """text-classification, token-classification, fill-mask: one prediction per input."""

    def __init__(self, task: str, pipe: Any) -> None:
        self.task = task
        self.pipe = pipe
        self._kwargs: dict[str, Any] = {}
        if task == "token-classification":
            self._kwargs["aggregation_strategy"] = "simple"
        self.mask = getattr(pipe.tokenizer, "mask_token", None) if task == "fill-mask" else None

    def __call__(self, inp: TextsInput) -> dict[str, Any]:
        if self.mask is not None:
            for text in inp.texts:
                if text.count(self.mask) != 1:
                    raise InputError(f"Each input must hold the mask token {self.mask} exactly once.")
        with torch.inference_mode():
            out = [self.pipe(text, **self._kwargs) for text in inp.texts]
        return {"predictions": jsonable(out)}

    def warmup(self) -> None:
        text = f"This is a {self.mask} test." if self.mask else "This is a warm-up."
        self(TextsInput(texts=[text], single=True))


class TokenEmbeddings:
    """feature-extraction on a plain transformers model: the mean of its token vectors."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def __call__(self, inp: TextsInput) -> dict[str, Any]:
        vectors = []
        with torch.inference_mode():
            for text in inp.texts:
                tokens = np.asarray(self.pipe(text, truncation=True), dtype=np.float32)
                vectors.append(tokens.reshape(-1, tokens.shape[-1]).mean(axis=0).tolist())
        return {"embeddings": vectors}

    def warmup(self) -> None:
        self(TextsInput(texts=["warm-up"], single=True))


class ImageClassification:
    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def classify(self, image: Image.Image) -> dict[str, Any]:
        with torch.inference_mode():
            return {"predictions": jsonable(self.pipe(image))}

    def __call__(self, inp: MediaInput) -> dict[str, Any]:
        return self.classify(decode_image(fetch(inp, "image_url")))

    def warmup(self) -> None:
        self.classify(Image.new("RGB", (224, 224), (128, 128, 128)))


def load(task: str, path: Path, runtime: Runtime) -> TextPipeline | TokenEmbeddings | ImageClassification:
    from transformers import pipeline

    pipe = pipeline(
        task,
        model=str(path),
        device=runtime.pipeline_device,
        dtype=runtime.dtype(torch.float16),
        trust_remote_code=False,
    )
    if task == "feature-extraction":
        return TokenEmbeddings(pipe)
    if task == "image-classification":
        return ImageClassification(pipe)
    return TextPipeline(task, pipe)
