"""Validates a job's input per task (the contract in docs/worker.md, "Inputs and outputs").

Each validator takes the job's "input" object and returns the normalised
arguments, or raises InputError with one sentence that says what to fix.
Unknown fields are refused, so a misspelt option is not silently ignored.
"""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .tasks import TASKS

MAX_TEXTS = 256
MAX_TEXT_CHARS = 100_000
MAX_MEDIA_BYTES = 50 * 1024 * 1024
OUTPUT_FORMATS = ("png", "jpeg", "webp")


class InputError(ValueError):
    """The job's input does not follow the task's contract."""


@dataclass(frozen=True)
class TextToImageInput:
    prompt: str
    negative_prompt: str | None
    num_inference_steps: int | None
    guidance_scale: float | None
    width: int | None
    height: int | None
    seed: int
    num_images: int
    output_format: str = "png"


@dataclass(frozen=True)
class MediaInput:
    data: bytes | None  # decoded from base64
    url: str | None  # an https URL to fetch


@dataclass(frozen=True)
class SpeechInput:
    media: MediaInput
    language: str | None = None  # Whisper: e.g. "en", "french"; None: detected
    task: str = "transcribe"  # Whisper: or "translate" (to English)
    batch_size: int = 1  # 30 s chunks per forward pass on long audio
    return_timestamps: bool = False


@dataclass(frozen=True)
class TextsInput:
    texts: list[str]
    single: bool  # the caller sent one string, not a list


def _check_fields(raw: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InputError(
            f"Unknown input field {unknown[0]!r}; this model accepts {', '.join(sorted(allowed))}."
        )


def _int(raw: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(f"{name} must be a whole number between {low} and {high}.")
    if not low <= value <= high:
        shown = str(value) if abs(value) < 10**18 else f"a number of {len(str(abs(value)))} digits"
        raise InputError(f"{name} must be between {low} and {high}; got {shown}.")
    return value


def _float(raw: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} must be a number between {low:g} and {high:g}.")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low:g} and {high:g}; got {value:g}.")
    return float(value)


def _str(raw: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise InputError(f"{name} is required.")
        return None
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string.")
    if required and not value.strip():
        raise InputError(f"{name} must not be empty.")
    if len(value) > MAX_TEXT_CHARS:
        raise InputError(f"{name} is longer than {MAX_TEXT_CHARS} characters.")
    return value


def text_to_image(raw: Mapping[str, Any]) -> TextToImageInput:
    _check_fields(
        raw,
        {
            "prompt",
            "negative_prompt",
            "num_inference_steps",
            "guidance_scale",
            "width",
            "height",
            "seed",
            "num_images",
            "output_format",
        },
    )
    prompt = _str(raw, "prompt", required=True)
    assert prompt is not None
    dims = {}
    for name in ("width", "height"):
        value = _int(raw, name, 64, 2048)
        if value is not None and value % 8:
            raise InputError(f"{name} must be a multiple of 8; got {value}.")
        dims[name] = value
    seed = _int(raw, "seed", 0, 2**32 - 1)
    output_format = _str(raw, "output_format", required=False) or "png"
    if output_format not in OUTPUT_FORMATS:
        raise InputError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}.")
    return TextToImageInput(
        prompt=prompt,
        negative_prompt=_str(raw, "negative_prompt", required=False),
        num_inference_steps=_int(raw, "num_inference_steps", 1, 100),
        guidance_scale=_float(raw, "guidance_scale", 0, 30),
        width=dims["width"],
        height=dims["height"],
        seed=seed if seed is not None else random.randrange(2**32),
        num_images=_int(raw, "num_images", 1, 4) or 1,
        output_format=output_format,
    )


def _media(raw: Mapping[str, Any], data_field: str, url_field: str) -> MediaInput:
    data, url = raw.get(data_field), raw.get(url_field)
    if (data is None) == (url is None):
        raise InputError(f"Send exactly one of {data_field} (base64) and {url_field} (an https URL).")
    if data is not None:
        if not isinstance(data, str) or not data:
            raise InputError(f"{data_field} must be a base64 string.")
        if data.startswith("data:") and "," in data:
            data = data.split(",", 1)[1]  # a data: URL
        if len(data) > MAX_MEDIA_BYTES * 4 // 3 + 4:
            raise InputError(f"{data_field} is larger than {MAX_MEDIA_BYTES // (1024 * 1024)} MB.")
        try:
            decoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{data_field} is not valid base64.") from None
        if not decoded:
            raise InputError(f"{data_field} is empty.")
        return MediaInput(data=decoded, url=None)
    if not isinstance(url, str):
        raise InputError(f"{url_field} must be an https URL.")
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.hostname:
        raise InputError(f"{url_field} must be an https URL.")
    return MediaInput(data=None, url=url)


def speech(raw: Mapping[str, Any]) -> SpeechInput:
    _check_fields(raw, {"audio", "audio_url", "language", "task", "batch_size", "return_timestamps"})
    media = _media({k: v for k, v in raw.items() if k in ("audio", "audio_url")}, "audio", "audio_url")
    language = _str(raw, "language", required=False)
    if language is not None and not (0 < len(language) <= 32):
        raise InputError("language must be a language name or code, e.g. en or french.")
    task = _str(raw, "task", required=False) or "transcribe"
    if task not in ("transcribe", "translate"):
        raise InputError("task must be transcribe or translate.")
    stamps = raw.get("return_timestamps", False)
    if not isinstance(stamps, bool):
        raise InputError("return_timestamps must be true or false.")
    return SpeechInput(
        media=media,
        language=language,
        task=task,
        batch_size=_int(raw, "batch_size", 1, 32) or 1,
        return_timestamps=stamps,
    )


def image(raw: Mapping[str, Any]) -> MediaInput:
    _check_fields(raw, {"image", "image_url", "inputs"})
    if "inputs" in raw:
        if "image" in raw:
            raise InputError("Send the image once: as image or as inputs, not both.")
        raw = {**{k: v for k, v in raw.items() if k != "inputs"}, "image": raw["inputs"]}
    return _media(raw, "image", "image_url")


def texts(raw: Mapping[str, Any]) -> TextsInput:
    _check_fields(raw, {"inputs"})
    value = raw.get("inputs")
    if value is None:
        raise InputError("inputs is required: a string or a list of strings.")
    single = isinstance(value, str)
    items = [value] if single else value
    if not isinstance(items, list) or not items or not all(isinstance(t, str) for t in items):
        raise InputError("inputs must be a string or a non-empty list of strings.")
    if len(items) > MAX_TEXTS:
        raise InputError(f"inputs holds {len(items)} strings; at most {MAX_TEXTS} per request.")
    for t in items:
        if not t.strip():
            raise InputError("inputs must not hold an empty string.")
        if len(t) > MAX_TEXT_CHARS:
            raise InputError(f"an input is longer than {MAX_TEXT_CHARS} characters.")
    return TextsInput(texts=list(items), single=single)


# The validators by name; tasks.json names each task's.
BY_NAME: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "text_to_image": text_to_image,
    "speech": speech,
    "texts": texts,
    "image": image,
}
VALIDATORS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    name: BY_NAME[task.input] for name, task in TASKS.items()
}


def validate(task: str, raw: Any) -> Any:
    if not isinstance(raw, Mapping):
        raise InputError("input must be a JSON object.")
    return VALIDATORS[task](raw)
