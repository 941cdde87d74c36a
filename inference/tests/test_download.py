from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import errors as hub_errors

from conftest import TINY_T2I
from visgate_worker.config import Config, ConfigError
from visgate_worker.download import DiskSpaceError, Downloaded, download, from_cached_models


def _config(url: str, tmp_path: Path, **kw) -> Config:
    base = {"model": TINY_T2I, "task": "text-to-image", "library": "diffusers"}
    return Config(**{**base, "hub_endpoint": url, "hf_home": tmp_path / "hf", **kw})


def test_downloads_exactly_the_chosen_files_with_progress(hub, tmp_path):
    url, state = hub
    files = ("model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors")
    reports: list[tuple[int, int]] = []
    got = download(_config(url, tmp_path, files=files), lambda d, t: reports.append((d, t)))

    assert sorted(state.downloaded()) == sorted(files)
    assert got.files == files
    assert got.revision == state.commit(TINY_T2I)
    sizes = {f: (state.root / TINY_T2I / f).stat().st_size for f in files}
    assert got.bytes_total == sum(sizes.values())
    assert reports[0] == (0, got.bytes_total)
    assert reports[-1] == (got.bytes_total, got.bytes_total)
    assert all(t == got.bytes_total for _, t in reports)
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
    # The snapshot holds the files at their repo paths, in the Hub cache under HF_HOME.
    for f in files:
        assert (got.path / f).read_bytes() == (state.root / TINY_T2I / f).read_bytes()
    assert (tmp_path / "hf" / "hub") in got.path.parents


def test_no_files_is_a_configuration_error(hub, tmp_path):
    url, state = hub
    with pytest.raises(ConfigError, match="VISGATE_FILES is not set"):
        download(_config(url, tmp_path), lambda d, t: None)
    assert state.requests == []  # nothing asked of the Hub


def test_second_download_is_served_from_the_cache(hub, tmp_path):
    url, state = hub
    files = ("model_index.json", "vae/diffusion_pytorch_model.safetensors")
    download(_config(url, tmp_path, files=files), lambda d, t: None)
    state.requests.clear()
    reports: list[tuple[int, int]] = []
    got = download(_config(url, tmp_path, files=files), lambda d, t: reports.append((d, t)))
    assert state.downloaded() == []  # HEADs only
    assert reports[-1] == (got.bytes_total, got.bytes_total)


def _runpod_cache(url: str, tmp_path: Path, files: tuple[str, ...]) -> tuple[Path, Downloaded]:
    """A Hub cache as RunPod's cached models hold it: the snapshot, and the
    default branch's ref pointing at it."""
    got = download(_config(url, tmp_path / "runpod", files=files), lambda d, t: None)
    cache = tmp_path / "runpod" / "hf" / "hub"
    ref = cache / f"models--{TINY_T2I.replace('/', '--')}" / "refs" / "main"
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(got.path.name)
    return cache, got


def test_runpod_cached_model_is_used_without_asking_the_hub(hub, tmp_path):
    url, state = hub
    files = ("model_index.json", "vae/config.json", "vae/diffusion_pytorch_model.safetensors")
    cached, first = _runpod_cache(url, tmp_path, files)
    state.requests.clear()

    reports: list[tuple[int, int]] = []
    cfg = _config(url, tmp_path / "own", files=files, cached_models=cached)
    got = download(cfg, lambda d, t: reports.append((d, t)))

    assert state.requests == []  # not even a HEAD
    assert got.path == first.path
    assert cached in got.path.parents
    assert got.revision == state.commit(TINY_T2I)
    assert got.bytes_total == first.bytes_total
    assert reports == [(got.bytes_total, got.bytes_total)]
    assert not (tmp_path / "own" / "hf").exists()  # nothing written to the worker's own cache
    # The same files pinned to their commit are found too.
    pinned = _config(url, tmp_path / "own", files=files, cached_models=cached, revision=got.revision)
    assert from_cached_models(pinned, cached) == got


def test_runpod_cached_model_at_another_revision_is_not_used(hub, tmp_path, caplog):
    url, _ = hub
    files = ("model_index.json", "vae/config.json")
    cached, _ = _runpod_cache(url, tmp_path, files)
    other = _config(url, tmp_path / "own", files=files, revision="0" * 40)
    with caplog.at_level(logging.WARNING):
        assert from_cached_models(other, cached) is None
    assert f"not {'0' * 40} with model_index.json: downloading instead" in caplog.text


def test_incomplete_runpod_cached_model_falls_back_to_a_download(hub, tmp_path):
    url, state = hub
    download(_config(url, tmp_path / "runpod", files=("model_index.json",)), lambda d, t: None)
    cached = tmp_path / "runpod" / "hf" / "hub"
    state.requests.clear()

    files = ("model_index.json", "vae/config.json")
    got = download(_config(url, tmp_path / "own", files=files, cached_models=cached), lambda d, t: None)

    assert sorted(state.downloaded()) == sorted(files)
    assert (tmp_path / "own" / "hf" / "hub") in got.path.parents


def test_gated_repo_raises_gated_error(hub, tmp_path):
    url, state = hub
    state.gated.add(TINY_T2I)
    with pytest.raises(hub_errors.GatedRepoError):
        download(_config(url, tmp_path, files=("model_index.json",)), lambda d, t: None)


def test_missing_file_raises_entry_not_found(hub, tmp_path):
    url, _ = hub
    with pytest.raises(hub_errors.EntryNotFoundError):
        download(_config(url, tmp_path, files=("nope.safetensors",)), lambda d, t: None)


def test_not_enough_disk_fails_before_downloading(hub, tmp_path, monkeypatch):
    url, state = hub
    import visgate_worker.download as dl

    class Usage:
        free = 10

    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: Usage())
    with pytest.raises(DiskSpaceError) as info:
        download(_config(url, tmp_path, files=("model_index.json",)), lambda d, t: None)
    assert info.value.free == 10
    assert state.downloaded() == []


def test_progress_counts_hf_xets_two_bars_once():
    """hf-xet opens two bars per file from the worker's class (received and
    written): 400 received and 300 written of 1,000 is 400, not 700."""
    from visgate_worker.download import _Progress

    progress = _Progress({"model.safetensors": 1000, "config.json": 10})
    bar = progress.bar_class("model.safetensors")
    received, written = bar(total=1000), bar(total=1000)
    received.update(400)
    written.update(300)
    assert progress.done() == 400
    written.update(300)  # written overtakes received
    assert progress.done() == 600
    received.update(900)  # a bar that over-counts stops at the file's size
    assert progress.done() == 1000
    progress.finish("config.json")
    assert progress.done() == progress.total == 1010
    seen = [progress.done() for _ in range(3)]
    assert seen == sorted(seen)
    assert max(seen) <= progress.total


def test_model_info_reads_the_card_as_the_hub_does(hub):
    """The loopback Hub serves a repository's pipeline_tag, library_name and
    tags from its model card's front matter, and the card as a sibling."""
    url, _ = hub
    with urllib.request.urlopen(f"{url}/api/models/{TINY_T2I}") as resp:
        info = json.load(resp)
    assert info["pipeline_tag"] == "text-to-image"
    assert info["library_name"] == "diffusers"
    assert "stable-diffusion" in info["tags"]
    assert {"rfilename": "README.md"} in info["siblings"]
