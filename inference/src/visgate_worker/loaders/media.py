"""Fetching and decoding the audio and images that jobs send."""

from __future__ import annotations

import io
from math import gcd

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..inputs import InputError, MediaInput
from .fetch import fetch_url


def fetch(media: MediaInput, field: str) -> bytes:
    if media.data is not None:
        return media.data
    assert media.url is not None
    return fetch_url(media.url, field)


# Decoded-size bounds, checked from the header before anything is decoded.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
MAX_IMAGE_PIXELS = 4096 * 4096  # 48 MiB as RGB
MAX_AUDIO_SECONDS = 3600
MAX_AUDIO_SAMPLES = 1 << 27  # frames x channels: 512 MiB as float32


def decode_audio(data: bytes, sampling_rate: int) -> np.ndarray:
    """Mono float32 samples at sampling_rate from WAV, FLAC, OGG or MP3 bytes."""
    import soundfile
    from scipy.signal import resample_poly

    undecodable = InputError("The audio could not be decoded: send WAV, FLAC, OGG or MP3.")
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        raise undecodable from None
    rate, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    if rate <= 0 or channels <= 0:
        raise undecodable
    if frames > MAX_AUDIO_SECONDS * rate or frames * channels > MAX_AUDIO_SAMPLES:
        raise InputError(
            f"The audio is {frames / rate:.0f} s of {channels} channels at {rate} Hz: "
            f"at most {MAX_AUDIO_SECONDS // 60} minutes and {MAX_AUDIO_SAMPLES:,} samples in all."
        )
    try:
        # frames= bounds the read even where the header undercounts.
        limit = max(1, min(MAX_AUDIO_SECONDS * rate, MAX_AUDIO_SAMPLES // channels))
        samples, rate = soundfile.read(
            io.BytesIO(data),
            frames=min(frames, limit) if frames > 0 else limit,
            dtype="float32",
            always_2d=True,
        )
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        raise undecodable from None
    mono = samples.mean(axis=1)
    if mono.size == 0:
        raise InputError("The audio is empty.")
    if rate != sampling_rate:
        g = gcd(int(rate), sampling_rate)
        mono = resample_poly(mono, sampling_rate // g, int(rate) // g).astype(np.float32)
    return mono


def decode_image(data: bytes) -> Image.Image:
    """An RGB image from PNG, JPEG or WebP bytes, its size checked from the
    header before the pixels are decoded."""
    undecodable = InputError("The image could not be decoded: send PNG, JPEG or WebP.")
    try:
        img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise undecodable from None
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(
            f"The image is {width}x{height} pixels: at most {MAX_IMAGE_PIXELS:,} pixels (4096x4096)."
        )
    try:
        img.load()
    except (OSError, Image.DecompressionBombError, ValueError):
        raise undecodable from None
    return img.convert("RGB")
