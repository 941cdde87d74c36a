from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from huggingface_hub import errors as hub_errors

from conftest import TINY_T2I
from visgate_worker.config import Config
from visgate_worker.download import DiskSpaceError, download
from visgate_worker.errors import describe

CFG = Config(model="org/flux", task="text-to-image", library="diffusers", gpu="ADA_24", vram_gb=33)


def _hub_error(hub, tmp_path: Path, *, token: str | None = None, **state) -> Exception:
    url, hs = hub
    for k, v in state.items():
        getattr(hs, k).update(v)
    cfg = Config(
        model=TINY_T2I,
        task="text-to-image",
        library="diffusers",
        hub_endpoint=url,
        hf_home=tmp_path,
        hf_token=token,
        files=("model_index.json",),
    )
    with pytest.raises(hub_errors.HfHubHTTPError) as info:
        download(cfg, lambda d, t: None)
    return info.value, cfg


def test_out_of_memory_names_the_gpu_and_the_estimate():
    msg = describe(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), CFG, "load")
    assert msg == (
        "org/flux ran out of GPU memory on ADA_24 (estimated 33 GB): "
        "choose a GPU with more memory or a smaller model."
    )
    # Some kernels raise a plain RuntimeError with the same text.
    assert "ADA_24" in describe(RuntimeError("CUDA out of memory."), CFG, "warm-up")


def test_gated_without_token_asks_for_one(hub, tmp_path):
    exc, cfg = _hub_error(hub, tmp_path, gated={TINY_T2I})
    assert isinstance(exc, hub_errors.GatedRepoError)
    msg = describe(exc, cfg, "download")
    assert msg == f"{TINY_T2I} is gated: deploy it with an HF token of an account that accepted its terms."


def test_gated_with_token_names_the_token(hub, tmp_path):
    exc, cfg = _hub_error(hub, tmp_path, token="hf_x", gated={TINY_T2I})
    assert isinstance(exc, hub_errors.GatedRepoError)
    msg = describe(exc, cfg, "download")
    assert msg == (
        f"{TINY_T2I} is gated and the HF token in the deployment has no access: "
        "accept the model's terms on the Hugging Face Hub with that account."
    )


def test_private_repo_with_a_wrong_token(hub, tmp_path):
    exc, cfg = _hub_error(hub, tmp_path, token="hf_wrong", private={TINY_T2I: "hf_right"})
    msg = describe(exc, cfg, "download")
    assert "HF token" in msg
    assert "hf_wrong" not in msg


def test_missing_repo(hub, tmp_path):
    url, _ = hub
    cfg = Config(
        model="nobody/nothing",
        task="fill-mask",
        library="transformers",
        hub_endpoint=url,
        hf_home=tmp_path,
        files=("config.json",),
    )
    with pytest.raises(hub_errors.RepositoryNotFoundError) as info:
        download(cfg, lambda d, t: None)
    assert describe(info.value, cfg, "download") == (
        "nobody/nothing was not found on the Hugging Face Hub; if it is private, deploy it with an HF token."
    )


def test_disk_space_in_gb():
    msg = describe(DiskSpaceError(24_000_000_000, 10_000_000_000, Path("/x")), CFG, "download")
    assert msg.startswith("org/flux needs 24.0 GB of disk and the worker has 10.0 GB free")
    assert "ran out of disk" in describe(OSError(errno.ENOSPC, "No space left"), CFG, "download")


def test_load_and_other_failures_are_one_sentence():
    msg = describe(ValueError("Unrecognized model in /x. Should have a model_type key"), CFG, "load")
    assert msg == "org/flux could not be loaded as a text-to-image model: Unrecognized model in /x."
    assert describe(KeyError("boom"), CFG, "warm-up") == "The warm-up of org/flux failed: 'boom'."


def test_unreachable_hub(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = Config(
        model="org/m",
        task="text-to-image",
        library="diffusers",
        hub_endpoint=f"http://127.0.0.1:{port}",
        hf_home=tmp_path,
        files=("model_index.json",),
    )
    with pytest.raises(Exception) as info:  # noqa: PT011 - whatever the HTTP stack raises
        download(cfg, lambda d, t: None)
    msg = describe(info.value, cfg, "download")
    assert msg.startswith("The worker could not reach the Hugging Face Hub to download org/m:")


def test_local_entry_not_found_is_a_network_failure():
    exc = hub_errors.LocalEntryNotFoundError("Cannot find the requested files in the disk cache")
    assert describe(exc, CFG, "download").startswith("The worker could not reach the Hugging Face Hub")
