"""A worker placed on a GPU never serves silently from the CPU."""

from __future__ import annotations

import pytest
import torch

from visgate_worker.config import Config
from visgate_worker.errors import describe
from visgate_worker.loaders.runtime import NoGPUError, Runtime

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a working GPU")


def test_a_gpu_endpoint_without_cuda_fails_with_a_sentence():
    with pytest.raises(NoGPUError) as info:
        Runtime.detect("NVIDIA GeForce RTX 4090")
    cfg = Config(model="org/m", task="text-to-image", library="diffusers", gpu="NVIDIA GeForce RTX 4090")
    message = describe(info.value, cfg, "load")
    assert message.startswith("The endpoint asked for NVIDIA GeForce RTX 4090 but CUDA is not available")
    assert "driver" in message
    assert info.value.problem  # the driver's own reason, or that no device is visible
    assert "CPU" in message


def test_the_cpu_only_where_no_gpu_was_asked_for_or_it_is_allowed():
    assert Runtime.detect(None).device == "cpu"
    assert Runtime.detect("cpu").device == "cpu"
    assert Runtime.detect("ADA_24", allow_cpu=True).device == "cpu"


def test_start_up_reports_failed_naming_the_card(callback, tmp_path):
    from visgate_worker.callback import Backoff, CallbackClient, Reporter
    from visgate_worker.download import Downloaded
    from visgate_worker.worker import StartupError, start

    cb_url, cb = callback
    cfg = Config(model="org/m", task="fill-mask", library="transformers", gpu="NVIDIA A100 80GB PCIe")
    reporter = Reporter(
        CallbackClient(cb_url, "cb-secret", backoff=Backoff(attempts=2, initial=0.01)), interval=0
    )
    with pytest.raises(StartupError):
        start(cfg, reporter, download_fn=lambda c, p: Downloaded(tmp_path, ("config.json",), None, 1))
    last = cb.received[-1]
    assert last["status"] == "failed"
    assert last["error"].startswith("The endpoint asked for NVIDIA A100 80GB PCIe but CUDA is not available")
    assert "ready" not in cb.statuses()
