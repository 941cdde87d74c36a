"""Start-up and jobs with the real tiny models on the CPU, through the local Hub
and the callback server: the whole worker but the RunPod SDK's job loop."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from conftest import EMB_FILES, T2I_FILES, TINY_EMB, TINY_T2I
from visgate_worker import loaders
from visgate_worker.callback import Backoff, CallbackClient, Reporter
from visgate_worker.config import Config
from visgate_worker.handler import make_handler
from visgate_worker.worker import StartupError, start


def _reporter(url: str) -> Reporter:
    return Reporter(CallbackClient(url, "cb-secret", backoff=Backoff(attempts=2, initial=0.01)), interval=0)


def _config(hub_url: str, tmp_path: Path, **kw) -> Config:
    return Config(hub_endpoint=hub_url, hf_home=tmp_path / "hf", gpu="cpu", vram_gb=1, **kw)


def test_text_to_image_start_up_and_job(hub, callback, tmp_path):
    hub_url, hub_state = hub
    cb_url, cb = callback
    cfg = _config(
        hub_url, tmp_path, model=TINY_T2I, task="text-to-image", library="diffusers", files=T2I_FILES
    )

    model = start(cfg, _reporter(cb_url))

    statuses = cb.statuses()
    assert statuses[0] == "downloading_model"
    assert statuses[-2:] == ["loading_model", "ready"]
    assert set(statuses[:-2]) == {"downloading_model"}
    first, last = cb.received[0], cb.received[len(statuses) - 3]
    assert first["bytes_done"] == 0
    assert last["bytes_done"] == last["bytes_total"] == first["bytes_total"] > 0
    timings = cb.received[-1]["timings"]
    assert set(timings) == {"download_seconds", "load_seconds", "warmup_seconds"}
    assert all(v >= 0 for v in timings.values())
    assert sorted(hub_state.downloaded()) == sorted(T2I_FILES)

    handler = make_handler(model, cfg)
    job = {
        "id": "j1",
        "input": {"prompt": "a red square", "width": 64, "height": 64, "num_inference_steps": 2},
    }
    out = handler(job)
    assert set(out) == {"images", "seed", "parameters"}
    assert out["parameters"] == {
        "num_inference_steps": 2,
        "guidance_scale": 7.5,  # the pipeline's own default: no few-step family
        "width": 64,
        "height": 64,
        "seed": out["seed"],
        "num_images": 1,
        "scheduler": "DDIMScheduler",
        "output_format": "png",
        "defaults": "default",
    }
    assert len(out["images"]) == 1
    png = base64.b64decode(out["images"][0])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(png))
    assert img.size == (64, 64)
    # The same seed gives the same image; two images when asked.
    again = handler({"id": "j2", "input": {**job["input"], "seed": out["seed"]}})
    assert again["images"] == out["images"]
    two = handler(
        {"id": "j3", "input": {"prompt": "a red square", "num_images": 2, "num_inference_steps": 1}}
    )
    assert len(two["images"]) == 2

    bad = handler({"id": "j4", "input": {"prompt": "x", "width": 65}})
    assert bad == {"error": "width must be a multiple of 8; got 65."}


def test_sentence_embeddings_one_vector_per_input(hub, callback, tmp_path):
    hub_url, _ = hub
    cb_url, cb = callback
    cfg = _config(
        hub_url,
        tmp_path,
        model=TINY_EMB,
        task="sentence-similarity",
        library="sentence-transformers",
        files=EMB_FILES,
    )
    model = start(cfg, _reporter(cb_url))
    assert cb.statuses()[-1] == "ready"

    handler = make_handler(model, cfg)
    out = handler({"id": "j", "input": {"inputs": ["hello world", "a red square", "a cat"]}})
    vectors = out["embeddings"]
    assert len(vectors) == 3
    assert {len(v) for v in vectors} == {32}
    assert vectors[0] != vectors[1]
    norm = sum(x * x for x in vectors[0]) ** 0.5
    assert norm == pytest.approx(1.0, abs=1e-4)  # the model ends in Normalize
    assert handler({"id": "j", "input": {"inputs": "hello world"}})["embeddings"][0] == pytest.approx(
        vectors[0]
    )
    assert "error" in handler({"id": "j", "input": {"inputs": []}})


def test_load_failure_is_reported_as_failed(hub, callback, tmp_path):
    hub_url, _ = hub
    cb_url, cb = callback
    # The embeddings repo served as a text-to-image pipeline: no model_index.json.
    cfg = _config(
        hub_url, tmp_path, model=TINY_EMB, task="text-to-image", library="diffusers", files=("config.json",)
    )
    with pytest.raises(StartupError) as info:
        start(cfg, _reporter(cb_url))
    assert cb.statuses()[-2:] == ["loading_model", "failed"]
    error = cb.received[-1]["error"]
    assert error == str(info.value)
    assert error.startswith(f"{TINY_EMB} could not be loaded as a text-to-image model:")


def test_download_failure_is_reported_and_nothing_is_loaded(hub, callback, tmp_path):
    hub_url, state = hub
    cb_url, cb = callback
    state.gated.add(TINY_T2I)
    loaded = []
    cfg = _config(
        hub_url, tmp_path, model=TINY_T2I, task="text-to-image", library="diffusers", files=T2I_FILES
    )
    with pytest.raises(StartupError):
        start(cfg, _reporter(cb_url), load_fn=lambda *a: loaded.append(a))
    assert loaded == []
    assert cb.statuses() == ["failed"]
    assert "is gated" in cb.received[0]["error"]


def test_out_of_memory_during_warm_up_names_gpu_and_estimate(callback, tmp_path):
    import torch

    from visgate_worker.download import Downloaded

    cb_url, cb = callback

    class Model:
        def warmup(self) -> None:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    cfg = Config(
        model="black-forest-labs/FLUX.1-schnell",
        task="text-to-image",
        library="diffusers",
        gpu="ADA_24",
        vram_gb=33,
    )
    with pytest.raises(StartupError):
        start(
            cfg,
            _reporter(cb_url),
            download_fn=lambda c, p: Downloaded(tmp_path, ("model_index.json",), None, 1),
            load_fn=lambda *a: Model(),
        )
    assert cb.received[-1] == {
        "status": "failed",
        "error": "black-forest-labs/FLUX.1-schnell ran out of GPU memory on ADA_24 (estimated 33 GB): "
        "choose a GPU with more memory or a smaller model.",
    }


@pytest.mark.parametrize(
    ("task", "library", "module"),
    [
        ("text-to-image", "diffusers", "text_to_image"),
        ("sentence-similarity", "sentence-transformers", "sentence_embeddings"),
        ("feature-extraction", "sentence-transformers", "sentence_embeddings"),
        ("feature-extraction", "transformers", "transformers_tasks"),
        ("automatic-speech-recognition", "transformers", "speech"),
        ("fill-mask", "transformers", "transformers_tasks"),
        ("text-classification", "transformers", "transformers_tasks"),
        ("token-classification", "transformers", "transformers_tasks"),
        ("image-classification", "transformers", "transformers_tasks"),
    ],
)
def test_task_routing(task, library, module, monkeypatch, tmp_path):
    import importlib

    calls = []
    mod = importlib.import_module(f"visgate_worker.loaders.{module}")
    monkeypatch.setattr(mod, "load", lambda *a: calls.append(a) or "model")
    cfg = Config(model="m/m", task=task, library=library)
    assert loaders.load(cfg, tmp_path, (), loaders.Runtime("cpu", None)) == "model"
    assert len(calls) == 1
    if module == "transformers_tasks":
        assert calls[0][0] == task


def test_handler_maps_exceptions_to_errors():
    class Broken:
        def __call__(self, inputs, stop=None):
            raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")

        def warmup(self) -> None:
            pass

    cfg = Config(model="m/m", task="fill-mask", library="transformers", gpu="AMPERE_16", vram_gb=3)
    out = make_handler(Broken(), cfg)({"id": "j", "input": {"inputs": "a [MASK] b"}})
    assert out == {
        "error": "m/m ran out of GPU memory on AMPERE_16 (estimated 3 GB): "
        "choose a GPU with more memory or a smaller model."
    }
