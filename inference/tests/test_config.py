from __future__ import annotations

import os
from pathlib import Path

import pytest

from visgate_worker.config import ConfigError, from_env

BASE = {
    "MODEL_NAME": "org/model",
    "VISGATE_TASK": "text-to-image",
    "VISGATE_LIBRARY": "diffusers",
    "VISGATE_FILES": '["model_index.json"]',
}


def test_reads_the_contract(tmp_path):
    env = {
        **BASE,
        "MODEL_REVISION": "abc123",
        "HF_TOKEN": "hf_secret",
        "VISGATE_DEPLOYMENT_ID": "dep-1",
        "VISGATE_CALLBACK_URL": "http://127.0.0.1:1/internal/deployment-ready/dep-1",
        "VISGATE_CALLBACK_SECRET": "cb-secret",
        "VISGATE_FILES": '["model_index.json", "unet/config.json", "model_index.json"]',
        "VISGATE_GPU": "ADA_24",
        "VISGATE_VRAM_GB": "14",
        "HF_ENDPOINT": "http://127.0.0.1:2/",
    }
    cfg = from_env(env, volume=tmp_path / "absent")
    assert cfg.model == "org/model"
    assert cfg.revision == "abc123"
    assert cfg.files == ("model_index.json", "unet/config.json")
    assert cfg.vram_gb == 14
    assert cfg.gpu == "ADA_24"
    assert cfg.hub_endpoint == "http://127.0.0.1:2"
    assert cfg.hf_home is None
    assert set(cfg.secrets) == {"hf_secret", "cb-secret"}
    assert "hf_secret" not in repr(cfg)
    assert "cb-secret" not in repr(cfg)


def test_volume_is_the_hub_cache_when_mounted(tmp_path):
    cfg = from_env(BASE, volume=tmp_path)
    assert cfg.hf_home == tmp_path / "huggingface"
    assert cfg.hub_cache == tmp_path / "huggingface" / "hub"
    assert from_env({**BASE, "HF_HOME": "/x"}, volume=tmp_path).hf_home == Path("/x")


def test_unwritable_volume_falls_back_to_the_container_disk(tmp_path, monkeypatch, caplog):
    # The image runs as uid 1000; a volume only root can write is not used.
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    assert from_env(BASE, volume=tmp_path).hf_home is None
    assert "not writable" in caplog.text


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"VISGATE_TASK": "text-to-image"}, "MODEL_NAME"),
        ({**BASE, "VISGATE_TASK": "text-generation"}, "VISGATE_TASK"),
        ({**BASE, "VISGATE_LIBRARY": "vllm"}, "VISGATE_LIBRARY"),
        ({**BASE, "VISGATE_LIBRARY": "transformers"}, "cannot be served"),
        ({**BASE, "VISGATE_FILES": "model.safetensors"}, "JSON array"),
        ({**BASE, "VISGATE_FILES": '["../etc/passwd"]'}, "not a path inside"),
        ({**BASE, "VISGATE_VRAM_GB": "lots"}, "VISGATE_VRAM_GB"),
        ({**BASE, "VISGATE_CALLBACK_URL": "http://127.0.0.1:1/cb"}, "VISGATE_CALLBACK_SECRET"),
        (
            {**BASE, "VISGATE_CALLBACK_URL": "ftp://x", "VISGATE_CALLBACK_SECRET": "s"},
            "http(s)",
        ),
    ],
)
def test_bad_env_is_named(env, needle, tmp_path):
    with pytest.raises(ConfigError, match=r".*") as info:
        from_env(env, volume=tmp_path / "absent")
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("task", "library"),
    [
        ("text-to-image", "diffusers"),
        ("sentence-similarity", "sentence-transformers"),
        ("automatic-speech-recognition", "transformers"),
        ("fill-mask", "transformers"),
    ],
)
def test_library_defaults_per_task(task, library, tmp_path):
    cfg = from_env({**BASE, "VISGATE_TASK": task, "VISGATE_LIBRARY": ""}, volume=tmp_path / "absent")
    assert cfg.library == library


@pytest.mark.parametrize("files", [None, "", " ", "[]"])
def test_files_are_required(files, tmp_path):
    # The orchestrator chooses the files; the worker has no selection of its own.
    env = {k: v for k, v in BASE.items() if k != "VISGATE_FILES"}
    if files is not None:
        env["VISGATE_FILES"] = files
    with pytest.raises(ConfigError, match="VISGATE_FILES is not set"):
        from_env(env, volume=tmp_path / "absent")


def test_runpod_cached_models_are_found_on_the_volume(tmp_path):
    assert from_env(BASE, volume=tmp_path).cached_models is None
    (tmp_path / "huggingface-cache" / "hub").mkdir(parents=True)
    assert from_env(BASE, volume=tmp_path).cached_models == tmp_path / "huggingface-cache" / "hub"


def test_allow_cpu_only_when_set(tmp_path):
    assert not from_env(BASE, volume=tmp_path / "absent").allow_cpu
    assert from_env({**BASE, "VISGATE_ALLOW_CPU": "1"}, volume=tmp_path / "absent").allow_cpu


def test_job_timeout_from_the_env_else_the_tasks_default(tmp_path):
    absent = tmp_path / "absent"
    assert from_env(BASE, volume=absent).job_timeout == 600
    emb = {**BASE, "VISGATE_TASK": "sentence-similarity", "VISGATE_LIBRARY": "sentence-transformers"}
    assert from_env(emb, volume=absent).job_timeout == 120
    assert from_env({**BASE, "VISGATE_JOB_TIMEOUT": "900"}, volume=absent).job_timeout == 900
    for bad in ("ten", "0", "-5"):
        with pytest.raises(ConfigError, match="VISGATE_JOB_TIMEOUT"):
            from_env({**BASE, "VISGATE_JOB_TIMEOUT": bad}, volume=absent)
