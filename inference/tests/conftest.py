from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import CallbackHandler, CallbackState, HubHandler, HubState, serve

TINY_T2I = "visgate-tiny/text-to-image"
TINY_EMB = "visgate-tiny/sentence-embeddings"

# What the orchestrator sends as VISGATE_FILES for the tiny models (its
# selection, shared/huggingface): the worker downloads exactly these.
T2I_FILES = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
)
EMB_FILES = (
    "1_Pooling/config.json",
    "2_Normalize/config.json",
    "config.json",
    "config_sentence_transformers.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny models: VISGATE_TINY_MODELS (made by scripts/inference-env.sh),
    else generated here by the same tool."""
    import make_tiny_models

    given = os.environ.get("VISGATE_TINY_MODELS")
    # scripts/inference-env.sh stamps the folder with the generator's sha256
    # once every model is written: a folder of another generator (an older
    # layout) or an unfinished one is not used.
    if given:
        stamp = Path(given) / ".visgate-generator"
        generator = hashlib.sha256(Path(make_tiny_models.__file__).read_bytes()).hexdigest()
        if stamp.is_file() and stamp.read_text().strip() == generator:
            return Path(given)

    out = tmp_path_factory.mktemp("tiny-models")
    make_tiny_models.main(["--out", str(out)])
    return out


@pytest.fixture
def hub_root(tmp_path: Path, tiny_models: Path) -> Path:
    root = tmp_path / "hub"
    shutil.copytree(tiny_models / "visgate-tiny", root / "visgate-tiny")
    return root


@pytest.fixture
def hub(hub_root: Path) -> Iterator[tuple[str, HubState]]:
    state = HubState(root=hub_root)
    with serve(HubHandler, state) as url:
        yield url, state


@pytest.fixture
def callback() -> Iterator[tuple[str, CallbackState]]:
    state = CallbackState()
    with serve(CallbackHandler, state) as url:
        yield url + "/internal/deployment-ready/dep-1", state
