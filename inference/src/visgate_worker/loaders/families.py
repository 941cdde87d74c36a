"""The settings each text-to-image family's authors meant.

Distilled few-step models (turbo, lightning, LCM, schnell) run badly with
diffusers' generic 50 steps and classifier-free guidance. Their defaults come
from the model's own files where those say so (the scheduler's class, FLUX's
scheduler and transformer configs), else from the table below, matched on the
repository's name; a user's own value always wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Defaults:
    family: str
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    size: int | None = None  # width and height when the user gives none
    max_sequence_length: int | None = None


# Name fragments (lower case) of well-known few-step models, first match wins.
TABLE: tuple[tuple[str, Defaults], ...] = (
    ("flux.1-schnell", Defaults("flux-schnell", 4, 0.0, None, 256)),
    ("schnell", Defaults("flux-schnell", 4, 0.0, None, 256)),
    ("sdxl-turbo", Defaults("sdxl-turbo", 1, 0.0, 512)),
    ("sd-turbo", Defaults("sd-turbo", 1, 0.0, 512)),
    ("sd3.5-large-turbo", Defaults("sd3.5-turbo", 4, 0.0)),
    ("stable-diffusion-3.5-large-turbo", Defaults("sd3.5-turbo", 4, 0.0)),
    ("turbo", Defaults("turbo", 4, 0.0)),
    ("lightning", Defaults("lightning", 4, 0.0)),
    ("lcm", Defaults("lcm", 4, 1.0)),
    ("latent-consistency", Defaults("lcm", 4, 1.0)),
    ("hyper-sd", Defaults("hyper-sd", 8, 0.0)),
)
NONE = Defaults("default")


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def from_files(path: Path) -> Defaults | None:
    """What the model's own files say, if they say it."""
    scheduler = _json(path / "scheduler" / "scheduler_config.json")
    index = _json(path / "model_index.json")
    if str(scheduler.get("_class_name", "")).startswith("LCM"):
        return Defaults("lcm", 4, 1.0)
    if str(index.get("_class_name", "")).startswith("Flux") and "Img2Img" not in str(
        index.get("_class_name")
    ):
        transformer = _json(path / "transformer" / "config.json")
        # FLUX.1-schnell: no guidance embedding and no dynamic shifting (timestep-distilled).
        if transformer.get("guidance_embeds") is False and scheduler.get("use_dynamic_shifting") is False:
            return Defaults("flux-schnell", 4, 0.0, None, 256)
    return None


def defaults_for(model: str, path: Path) -> Defaults:
    found = from_files(path)
    if found is not None:
        return found
    name = model.lower().rsplit("/", 1)[-1]
    for fragment, defaults in TABLE:
        if fragment in name:
            return defaults
    return NONE
