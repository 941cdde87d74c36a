"""automatic-speech-recognition (Whisper and other transformers ASR models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..inputs import InputError, MediaInput, SpeechInput
from ..jobs import NO_STOP, Stop
from .media import decode_audio, fetch
from .runtime import Runtime

CHUNK_SECONDS = 30


class SpeechRecognition:
    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.rate = int(pipe.feature_extractor.sampling_rate)
        self.whisper = getattr(pipe.model.config, "model_type", "") == "whisper"

    def transcribe(self, samples: np.ndarray, options: SpeechInput | None = None) -> dict[str, Any]:
        opts = options or SpeechInput(media=MediaInput(data=b"", url=None))
        kwargs: dict[str, Any] = {}
        if samples.size > CHUNK_SECONDS * self.rate:
            kwargs["chunk_length_s"] = CHUNK_SECONDS
            kwargs["batch_size"] = opts.batch_size
        generate: dict[str, Any] = {}
        if opts.language or opts.task != "transcribe":
            if not self.whisper:
                raise InputError("language and task are Whisper options; this model takes neither.")
            if opts.language:
                generate["language"] = opts.language
            generate["task"] = opts.task
        if generate:
            kwargs["generate_kwargs"] = generate
        if opts.return_timestamps:
            kwargs["return_timestamps"] = True if self.whisper else "word"
        with torch.inference_mode():
            try:
                out = self.pipe({"raw": samples, "sampling_rate": self.rate}, **kwargs)
            except ValueError as exc:  # an unknown language, as transformers words it
                if "language" in str(exc).lower() and opts.language:
                    raise InputError(f"This model does not know the language {opts.language!r}.") from None
                raise
        result: dict[str, Any] = {"text": str(out["text"]).strip()}
        if opts.return_timestamps:
            result["chunks"] = [
                {"text": str(c.get("text", "")).strip(), "timestamp": list(c.get("timestamp") or ())}
                for c in out.get("chunks", [])
            ]
        result["parameters"] = {
            "language": opts.language,
            "task": opts.task,
            "batch_size": opts.batch_size,
            "return_timestamps": opts.return_timestamps,
            "chunk_length_s": kwargs.get("chunk_length_s"),
            "seconds": round(samples.size / self.rate, 3),
        }
        return result

    def __call__(self, inp: SpeechInput, stop: Stop = NO_STOP) -> dict[str, Any]:
        samples = decode_audio(fetch(inp.media, "audio_url"), self.rate)
        stop.check()
        return self.transcribe(samples, inp)

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
