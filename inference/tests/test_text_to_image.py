"""text-to-image: few-step families' defaults, the echoed parameters, output
formats, the result-size bound, and stopping between steps."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import TINY_T2I
from visgate_worker.config import Config
from visgate_worker.handler import make_handler
from visgate_worker.jobs import Stop
from visgate_worker.loaders import families, text_to_image
from visgate_worker.loaders.runtime import Runtime

FILES = ("unet/diffusion_pytorch_model.safetensors",)
CPU = Runtime("cpu", torch.float32)


@pytest.fixture(scope="module")
def tiny_path(tiny_models: Path) -> Path:
    return tiny_models / TINY_T2I


def _model(path: Path, name: str):
    return text_to_image.load(path, FILES, CPU, name)


def _unet_calls(model) -> list[int]:
    calls: list[int] = []
    model.pipe.unet.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("stabilityai/sdxl-turbo", ("sdxl-turbo", 1, 0.0, 512)),
        ("stabilityai/sd-turbo", ("sd-turbo", 1, 0.0, 512)),
        ("black-forest-labs/FLUX.1-schnell", ("flux-schnell", 4, 0.0, None)),
        ("ByteDance/SDXL-Lightning", ("lightning", 4, 0.0, None)),
        ("SimianLuo/LCM_Dreamshaper_v7", ("lcm", 4, 1.0, None)),
        ("ByteDance/Hyper-SD", ("hyper-sd", 8, 0.0, None)),
        ("stabilityai/stable-diffusion-xl-base-1.0", ("default", None, None, None)),
    ],
)
def test_the_table(tmp_path, name, want):
    d = families.defaults_for(name, tmp_path)
    assert (d.family, d.num_inference_steps, d.guidance_scale, d.size) == want


def test_the_models_own_files_say_first(tmp_path):
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "LCMScheduler"}))
    assert families.defaults_for("org/plain-name", tmp_path).family == "lcm"

    flux = tmp_path / "flux"
    (flux / "scheduler").mkdir(parents=True)
    (flux / "transformer").mkdir()
    (flux / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    (flux / "transformer" / "config.json").write_text(json.dumps({"guidance_embeds": False}))
    sched = {"_class_name": "FlowMatchEulerDiscreteScheduler", "use_dynamic_shifting": False}
    (flux / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched))
    d = families.defaults_for("someone/my-flux-finetune", flux)
    assert (d.family, d.num_inference_steps, d.max_sequence_length) == ("flux-schnell", 4, 256)
    # FLUX.1-dev: guidance embedded, dynamic shifting: the pipeline's own defaults.
    (flux / "transformer" / "config.json").write_text(json.dumps({"guidance_embeds": True}))
    assert families.defaults_for("someone/my-flux-finetune", flux).family == "default"


def test_a_turbo_model_runs_its_own_defaults_and_says_so(tiny_path):
    model = _model(tiny_path, "stabilityai/sdxl-turbo")
    calls = _unet_calls(model)
    cfg = Config(model="stabilityai/sdxl-turbo", task="text-to-image", library="diffusers")
    out = make_handler(model, cfg)({"id": "j", "input": {"prompt": "a red square", "seed": 7}})
    assert "error" not in out, out
    p = out["parameters"]
    assert (p["num_inference_steps"], p["guidance_scale"], p["width"], p["height"]) == (1, 0.0, 512, 512)
    assert (p["seed"], p["scheduler"], p["defaults"]) == (7, "DDIMScheduler", "sdxl-turbo")
    assert len(calls) == 1  # one step, and no second (unconditional) pass: guidance 0
    # The user's own values win.
    mine = make_handler(model, cfg)(
        {
            "id": "j",
            "input": {
                "prompt": "x",
                "num_inference_steps": 2,
                "guidance_scale": 3,
                "width": 64,
                "height": 64,
            },
        }
    )["parameters"]
    assert (mine["num_inference_steps"], mine["guidance_scale"], mine["width"]) == (2, 3.0, 64)


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_output_formats(tiny_path, fmt, pil):
    model = _model(tiny_path, TINY_T2I)
    cfg = Config(model=TINY_T2I, task="text-to-image", library="diffusers")
    raw = {
        "prompt": "a red square",
        "width": 64,
        "height": 64,
        "num_inference_steps": 1,
        "output_format": fmt,
    }
    out = make_handler(model, cfg)({"id": "j", "input": raw})
    img = Image.open(io.BytesIO(base64.b64decode(out["images"][0])))
    assert img.format == pil
    assert img.size == (64, 64)
    assert out["parameters"]["output_format"] == fmt
    bad = make_handler(model, cfg)({"id": "j", "input": {**raw, "output_format": "gif"}})
    assert bad == {"error": "output_format must be one of png, jpeg, webp."}


def test_a_result_over_runpods_limit_is_refused_before_computing(tiny_path):
    model = _model(tiny_path, TINY_T2I)
    calls = _unet_calls(model)
    cfg = Config(model=TINY_T2I, task="text-to-image", library="diffusers")
    raw = {"prompt": "x", "width": 2048, "height": 2048, "num_images": 4, "num_inference_steps": 1}
    out = make_handler(model, cfg)({"id": "j", "input": raw})
    assert out["error"].startswith("4 images of 2048x2048 as png could exceed RunPod's 20 MB result limit")
    assert out["error"].endswith("or output_format jpeg or webp.")
    assert calls == []
    jpeg = make_handler(model, cfg)({"id": "j", "input": {**raw, "output_format": "jpeg"}})
    assert "could exceed" in jpeg["error"]  # 4 x 2048² at 1.5 B/px is over too
    assert calls == []


def test_a_cancelled_job_stops_between_steps(tiny_path):
    model = _model(tiny_path, TINY_T2I)
    calls = _unet_calls(model)
    stop = Stop(600)
    model.pipe.unet.register_forward_hook(lambda *_: stop.cancel() if len(calls) >= 2 else None)
    cfg = Config(model=TINY_T2I, task="text-to-image", library="diffusers")
    raw = {"prompt": "x", "width": 64, "height": 64, "num_inference_steps": 50, "guidance_scale": 0}
    out = make_handler(model, cfg)({"id": "j", "input": raw}, stop)
    assert out == {"error": "The job was cancelled: its computation stopped."}
    assert len(calls) == 2


def test_a_job_past_its_limit_stops(tiny_path):
    model = _model(tiny_path, TINY_T2I)
    calls = _unet_calls(model)
    now = [0.0]
    stop = Stop(10, clock=lambda: now[0])
    model.pipe.unet.register_forward_hook(lambda *_: now.__setitem__(0, now[0] + 4))  # 4 s a step
    cfg = Config(model=TINY_T2I, task="text-to-image", library="diffusers")
    raw = {"prompt": "x", "width": 64, "height": 64, "num_inference_steps": 50, "guidance_scale": 0}
    out = make_handler(model, cfg)({"id": "j", "input": raw}, stop)
    assert out["error"].startswith("The job ran longer than its limit of 10 s and was stopped")
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("files", "variant"),
    [
        (("model_index.json", "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json"), "fp16"),
        (("text_encoder/model.bf16-00001-of-00002.safetensors",), "bf16"),
        (("unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.json"), None),
        (("pytorch_model.bin",), None),
        (("transformer/diffusion_pytorch_model.safetensors.index.json",), None),
    ],
)
def test_variant_of_the_chosen_files(files, variant):
    assert text_to_image.variant_of(files) == variant
