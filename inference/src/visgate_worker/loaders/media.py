"""Fetching and decoding the audio and images that jobs send."""

from __future__ import annotations

import io
from math import gcd

import numpy as np
import requests
from PIL import Image, UnidentifiedImageError

from ..inputs import MAX_MEDIA_BYTES, InputError, MediaInput


def fetch(media: MediaInput, field: str) -> bytes:
    if media.data is not None:
        return media.data
    assert media.url is not None
    try:
        with requests.get(media.url, stream=True, timeout=30) as resp:
            if resp.status_code != 200:
                raise InputError(f"{field} could not be fetched: HTTP {resp.status_code}.")
            chunks, size = [], 0
            for chunk in resp.iter_content(1 << 16):
                size += len(chunk)
                if size > MAX_MEDIA_BYTES:
                    raise InputError(f"{field} is larger than {MAX_MEDIA_BYTES // (1024 * 1024)} MB.")
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise InputError(f"{field} could not be fetched ({type(exc).__name__}).") from None
    return b"".join(chunks)


def decode_audio(data: bytes, sampling_rate: int) -> np.ndarray:
    """Mono float32 samples at sampling_rate from WAV, FLAC, OGG or MP3 bytes."""
    import soundfile
    from scipy.signal import resample_poly

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        raise InputError("The audio could not be decoded: send WAV, FLAC, OGG or MP3.") from None
    mono = samples.mean(axis=1)
    if mono.size == 0:
        raise InputError("The audio is empty.")
    if rate != sampling_rate:
        g = gcd(int(rate), sampling_rate)
        mono = resample_poly(mono, sampling_rate // g, int(rate) // g).astype(np.float32)
    return mono


def decode_image(data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InputError("The image could not be decoded: send PNG, JPEG or WebP.") from None
    return img.convert("RGB")
