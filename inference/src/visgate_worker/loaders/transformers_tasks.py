"""The transformers pipelines for text-classification, token-classification,
fill-mask, feature-extraction and image-classification."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..inputs import InputError, MediaInput, TextsInput
from ..jobs import NO_STOP, Stop
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


# Model types whose position ids start after the padding index (RoBERTa's
# scheme): max_position_embeddings counts pad_token_id + 1 positions more
# than a text can use.
_OFFSET_POSITIONS = frozenset(
    {
        "roberta",
        "xlm-roberta",
        "xlm-roberta-xl",
        "camembert",
        "roberta-prelayernorm",
        "data2vec-text",
        "ibert",
    }
)
DEFAULT_MAX_TOKENS = 512


def token_limit(tokenizer: Any, config: Any) -> int:
    """The most tokens the model takes: its position embeddings' length and
    the tokenizer's model_max_length (when that is a real limit), whichever
    is smaller."""
    limits = []
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
            positions -= int(getattr(config, "pad_token_id", 1) or 1) + 1
        limits.append(positions)
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 1_000_000:
        limits.append(declared)
    return min(limits) if limits else DEFAULT_MAX_TOKENS


class _Texts:
    """What the text tasks share: the token limit, and which inputs it cuts."""

    def __init__(self, tokenizer: Any, model_config: Any) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = token_limit(tokenizer, model_config)
        # The pipelines truncate to this (token-classification always does).
        tokenizer.model_max_length = self.max_tokens

    def truncated(self, texts: list[str]) -> list[int]:
        """The indexes of the inputs longer than max_tokens (cut to it)."""
        lengths = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        return [i for i, ids in enumerate(lengths) if len(ids) > self.max_tokens]


class TextPipeline(_Texts):
    """text-classification, token-classification, fill-mask: one prediction
    per input, one forward pass per request; longer inputs are truncated to
    the model's limit and listed in "truncated"."""

    def __init__(self, task: str, pipe: Any) -> None:
        super().__init__(pipe.tokenizer, pipe.model.config)
        self.task = task
        self.pipe = pipe
        self._kwargs: dict[str, Any] = {}
        if task == "token-classification":
            self._kwargs["aggregation_strategy"] = "simple"
        elif task == "fill-mask":
            self._kwargs["tokenizer_kwargs"] = {"truncation": True}
        else:
            self._kwargs["truncation"] = True
        self.mask = getattr(pipe.tokenizer, "mask_token", None) if task == "fill-mask" else None

    def _check_masks(self, texts: list[str]) -> None:
        assert self.mask is not None
        for text in texts:
            if text.count(self.mask) != 1:
                raise InputError(f"Each input must hold the mask token {self.mask} exactly once.")
        mask_id = self.tokenizer.mask_token_id
        for ids in self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]:
            at = ids.index(mask_id) if mask_id in ids else 0
            if at >= self.max_tokens - 1:
                raise InputError(
                    f"The mask token is token {at + 1} of an input, beyond this model's limit of "
                    f"{self.max_tokens} tokens: put it nearer the start."
                )

    def __call__(self, inp: TextsInput, stop: Stop = NO_STOP) -> dict[str, Any]:
        if self.mask is not None:
            self._check_masks(inp.texts)
        truncated = self.truncated(inp.texts)
        stop.check()
        with torch.inference_mode():
            if len(inp.texts) == 1:  # a list of one comes back unwrapped for some tasks
                out = [self.pipe(inp.texts[0], **self._kwargs)]
            else:
                out = self.pipe(list(inp.texts), batch_size=len(inp.texts), **self._kwargs)
        if self.task == "text-classification":
            out = [[p] if isinstance(p, dict) else p for p in out]
        return {"predictions": jsonable(out), "truncated": truncated, "max_tokens": self.max_tokens}

    def warmup(self) -> None:
        text = f"This is a {self.mask} test." if self.mask else "This is a warm-up."
        self(TextsInput(texts=[text], single=True))


class TokenEmbeddings(_Texts):
    """feature-extraction on a plain transformers model: the mean of its token
    vectors (padding left out), every input in one forward pass."""

    def __init__(self, model: Any, tokenizer: Any, device: str) -> None:
        super().__init__(tokenizer, model.config)
        self.model = model
        self.device = device
        self._lock = threading.Lock()

    def __call__(self, inp: TextsInput, stop: Stop = NO_STOP) -> dict[str, Any]:
        with self._lock:  # concurrent jobs: one tokenizer call at a time
            truncated = self.truncated(inp.texts)
            enc = self.tokenizer(
                list(inp.texts),
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            ).to(self.device)
        stop.check()
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        vectors = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return {"embeddings": vectors.cpu().tolist(), "truncated": truncated, "max_tokens": self.max_tokens}

    def warmup(self) -> None:
        self(TextsInput(texts=["warm-up"], single=True))


class ImageClassification:
    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def classify(self, image: Image.Image) -> dict[str, Any]:
        with torch.inference_mode():
            return {"predictions": jsonable(self.pipe(image))}

    def __call__(self, inp: MediaInput, stop: Stop = NO_STOP) -> dict[str, Any]:
        image = decode_image(fetch(inp, "image_url"))
        stop.check()
        return self.classify(image)

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
        return TokenEmbeddings(pipe.model, pipe.tokenizer, runtime.device)
    if task == "image-classification":
        return ImageClassification(pipe)
    return TextPipeline(task, pipe)
