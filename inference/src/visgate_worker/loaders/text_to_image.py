"""text-to-image: any diffusers pipeline AutoPipelineForText2Image knows
(Stable Diffusion 1.x/2.x, SDXL, SDXL-Turbo, SD3, FLUX.1, ...)."""

from __future__ import annotations

import base64
import inspect
import io
import json
from pathlib import Path
from typing import Any

import torch

from ..inputs import InputError, TextToImageInput
from ..selection import variant_of
from .runtime import Runtime

# Pipelines trained in bfloat16 that overflow in float16.
_BF16_PIPELINES = ("Flux", "StableDiffusion3", "Sana", "Lumina", "HunyuanDiT", "PixArtSigma", "QwenImage")


class TextToImage:
    def __init__(self, pipe: Any, runtime: Runtime) -> None:
        self.pipe = pipe
        self.runtime = runtime
        self._params = set(inspect.signature(pipe.__call__).parameters)

    def __call__(self, inp: TextToImageInput) -> dict[str, Any]:
        generator = torch.Generator(device=self.runtime.device).manual_seed(inp.seed)
        kwargs: dict[str, Any] = {
            "prompt": inp.prompt,
            "num_images_per_prompt": inp.num_images,
            "generator": generator,
        }
        optional = {
            "negative_prompt": inp.negative_prompt,
            "num_inference_steps": inp.num_inference_steps,
            "guidance_scale": inp.guidance_scale,
            "width": inp.width,
            "height": inp.height,
        }
        for name, value in optional.items():
            if value is None:
                continue
            if name not in self._params:
                raise InputError(f"This model ({type(self.pipe).__name__}) does not take {name}.")
            kwargs[name] = value
        with torch.inference_mode():
            images = self.pipe(**kwargs).images
        return {"images": [_png_base64(img) for img in images], "seed": inp.seed}

    def warmup(self) -> None:
        # One step at the pipeline's own default size: the memory of a real job.
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


def _png_base64(img: Any) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def load(path: Path, files: tuple[str, ...], runtime: Runtime) -> TextToImage:
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
    return TextToImage(pipe, runtime)
