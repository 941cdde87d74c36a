"""text-to-image: any diffusers pipeline AutoPipelineForText2Image knows
(Stable Diffusion 1.x/2.x, SDXL, SDXL-Turbo, SD3, FLUX.1, ...)."""

from __future__ import annotations

import base64
import inspect
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..inputs import InputError, TextToImageInput
from ..jobs import NO_STOP, Stop
from .families import Defaults, defaults_for
from .runtime import Runtime

# Pipelines trained in bfloat16 that overflow in float16.
_BF16_PIPELINES = ("Flux", "StableDiffusion3", "Sana", "Lumina", "HunyuanDiT", "PixArtSigma", "QwenImage")

# RunPod returns a job's result up to about 20 MB; the images' base64 stays
# under this. The bound is checked before computing from a worst case per
# pixel (PNG of an image as busy as noise: its 3 bytes; JPEG and WebP at
# quality 90: 1.5), and the real encoded size is checked again after.
MAX_RESULT_BYTES = 18_000_000
WORST_BYTES_PER_PIXEL = {"png": 3.0, "jpeg": 1.5, "webp": 1.5}
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def _encoded_bound(num_images: int, width: int, height: int, fmt: str) -> int:
    return int(num_images * width * height * WORST_BYTES_PER_PIXEL[fmt] * 4 / 3) + 1024 * num_images


class TextToImage:
    def __init__(self, pipe: Any, runtime: Runtime, defaults: Defaults) -> None:
        self.pipe = pipe
        self.runtime = runtime
        self.defaults = defaults
        params = inspect.signature(pipe.__call__).parameters
        self._params = set(params)
        self._pipe_defaults = {name: p.default for name, p in params.items()}
        self.default_size = _default_size(pipe, defaults)

    def _resolve(self, inp: TextToImageInput) -> dict[str, Any]:
        d = self.defaults
        steps = (
            inp.num_inference_steps or d.num_inference_steps or self._pipe_defaults.get("num_inference_steps")
        )
        guidance = inp.guidance_scale if inp.guidance_scale is not None else d.guidance_scale
        if guidance is None:
            guidance = self._pipe_defaults.get("guidance_scale")
        return {
            "num_inference_steps": steps if isinstance(steps, int) else None,
            "guidance_scale": float(guidance) if isinstance(guidance, int | float) else None,
            "width": inp.width or self.default_size[0],
            "height": inp.height or self.default_size[1],
        }

    def __call__(self, inp: TextToImageInput, stop: Stop = NO_STOP) -> dict[str, Any]:
        resolved = self._resolve(inp)
        width, height = resolved["width"], resolved["height"]
        bound = _encoded_bound(inp.num_images, width, height, inp.output_format)
        if bound > MAX_RESULT_BYTES:
            raise InputError(
                f"{inp.num_images} images of {width}x{height} as {inp.output_format} could exceed "
                f"RunPod's 20 MB result limit: ask for fewer images, a smaller size"
                + (", or output_format jpeg or webp." if inp.output_format == "png" else ".")
            )
        for name, given in (
            ("negative_prompt", inp.negative_prompt),
            ("num_inference_steps", inp.num_inference_steps),
            ("guidance_scale", inp.guidance_scale),
            ("width", inp.width),
            ("height", inp.height),
        ):
            if given is not None and name not in self._params:
                raise InputError(f"This model ({type(self.pipe).__name__}) does not take {name}.")
        generator = torch.Generator(device=self.runtime.device).manual_seed(inp.seed)
        kwargs: dict[str, Any] = {
            "prompt": inp.prompt,
            "num_images_per_prompt": inp.num_images,
            "generator": generator,
        }
        if inp.negative_prompt is not None:
            kwargs["negative_prompt"] = inp.negative_prompt
        for name, value in resolved.items():
            if value is not None and name in self._params:
                kwargs[name] = value
        if self.defaults.max_sequence_length and "max_sequence_length" in self._params:
            kwargs["max_sequence_length"] = self.defaults.max_sequence_length
        if "callback_on_step_end" in self._params:

            def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                stop.check()  # cancelled or past the limit: stop between steps
                return tensors

            kwargs["callback_on_step_end"] = on_step
        stop.check()
        with torch.inference_mode():
            images = self.pipe(**kwargs).images
        encoded = [_encode(img, inp.output_format) for img in images]
        size = sum(len(e) for e in encoded)
        if size > MAX_RESULT_BYTES:
            raise InputError(
                f"The {len(encoded)} images came to {size / 1e6:.1f} MB as base64, over RunPod's 20 MB "
                "result limit: ask for fewer images, a smaller size, or output_format jpeg or webp."
            )
        first = images[0]
        parameters = {
            "num_inference_steps": kwargs.get("num_inference_steps"),
            "guidance_scale": kwargs.get("guidance_scale"),
            "width": first.width,
            "height": first.height,
            "seed": inp.seed,
            "num_images": len(images),
            "scheduler": type(self.pipe.scheduler).__name__,
            "output_format": inp.output_format,
            "defaults": self.defaults.family,
        }
        if "max_sequence_length" in kwargs:
            parameters["max_sequence_length"] = kwargs["max_sequence_length"]
        return {"images": encoded, "seed": inp.seed, "parameters": parameters}

    def warmup(self) -> None:
        # One step at the default size: the memory of a real job.
        self(
            TextToImageInput(
                prompt="a photograph of a red square",
                negative_prompt=None,
                num_inference_steps=1,
                guidance_scale=None,
                width=None,
                height=None,
                seed=0,
                num_images=1,
            )
        )


def _default_size(pipe: Any, defaults: Defaults) -> tuple[int, int]:
    if defaults.size:
        return defaults.size, defaults.size
    scale = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    sample = getattr(pipe, "default_sample_size", None)
    if not isinstance(sample, int):
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        sample = getattr(getattr(denoiser, "config", None), "sample_size", None)
    if isinstance(sample, int) and sample > 0:
        # FLUX packs latents 2x2: its default_sample_size is counted that way.
        return sample * scale, sample * scale
    return 512, 512


def _encode(img: Any, fmt: str) -> str:
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG")
    else:
        img.convert("RGB").save(buf, format=PIL_FORMATS[fmt], quality=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")


def variant_of(files: Iterable[str]) -> str | None:
    """The weight variant ("fp16", "bf16") of the files the orchestrator chose
    (VISGATE_FILES: one weight set per component), if any:
    "unet/diffusion_pytorch_model.fp16.safetensors" is variant fp16."""
    for name in files:
        stem, dot, ext = name.rpartition("/")[2].rpartition(".")
        if not dot or not stem or ext.lower() not in ("safetensors", "bin"):
            continue
        variant = _SHARD_SUFFIX.sub("", stem).partition(".")[2]
        if variant in ("fp16", "bf16"):
            return variant
    return None


def load(path: Path, files: tuple[str, ...], runtime: Runtime, model: str = "") -> TextToImage:
    from diffusers import AutoPipelineForText2Image

    index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    class_name = str(index.get("_class_name", ""))
    preferred = torch.bfloat16 if class_name.startswith(_BF16_PIPELINES) else torch.float16
    variant = variant_of(files)
    pipe = AutoPipelineForText2Image.from_pretrained(
        str(path),
        dtype=runtime.dtype(preferred),
        variant=variant,
        use_safetensors=any(f.endswith(".safetensors") for f in files),
        local_files_only=True,
    )
    pipe = pipe.to(runtime.device)
    pipe.set_progress_bar_config(disable=True)
    return TextToImage(pipe, runtime, defaults_for(model, path))
