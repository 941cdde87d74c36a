"""A test tone as a base64 WAV, the audio input the worker's tests and
bench_jobs.py send to speech recognition."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np


def tone_wav(seconds: float, rate: int = 16000, channels: int = 1) -> str:
    """A 440 Hz sine of `seconds` at `rate` Hz, 16-bit PCM, `channels`
    identical channels, as base64 of the WAV file."""
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(samples, channels).tobytes())
    return base64.b64encode(buf.getvalue()).decode()
