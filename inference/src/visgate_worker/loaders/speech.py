"""automatic-speech-recognition (Whisper and other transformers ASR models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..inputs import MediaInput
from .media import decode_audio, fetch
from .runtime import Runtime

CHUNK_SECONDS = 30


class SpeechRecognition:
    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.rate = int(pipe.feature_extractor.sampling_rate)

    def transcribe(self, samples: np.ndarray) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if samples.size > CHUNK_SECONDS * self.rate:
            kwargs["chunk_length_s"] = CHUNK_SECONDS
        with torch.inference_mode():
            out = self.pipe({"raw": samples, "sampling_rate": self.rate}, **kwargs)
        return {"text": str(out["text"]).strip()}

    def __call__(self, inp: MediaInput) -> dict[str, Any]:
        return self.transcribe(decode_audio(fetch(inp, "audio_url"), self.rate))

    def warmup(self) -> None:
        self.transcribe(np.zeros(self.rate, dtype=np.float32))


def load(path: Path, runtime: Runtime) -> SpeechRecognition:
    from transformers import pipeline

    pipe = pipeline(
        "automatic-speech-recognition",
        model=str(path),
        device=runtime.pipeline_device,
        dtype=runtime.dtype(torch.float16),
        trust_remote_code=False,
    )
    return SpeechRecognition(pipe)
