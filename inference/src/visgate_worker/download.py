"""Downloads exactly the chosen repository files, reporting bytes as they arrive."""

from __future__ import annotations

import itertools
import logging
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import (
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    try_to_load_from_cache,
)
from tqdm.auto import tqdm

from .config import NO_FILES, Config, ConfigError

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


class DiskSpaceError(OSError):
    def __init__(self, needed: int, free: int, where: Path) -> None:
        super().__init__(f"needs {needed} bytes, {free} free at {where}")
        self.needed, self.free, self.where = needed, free, where


@dataclass(frozen=True)
class Downloaded:
    path: Path  # the local snapshot: the repo's files at their relative paths
    files: tuple[str, ...]
    revision: str | None  # the commit the files came from
    bytes_total: int


class _Progress:
    """Bytes received per file, from every download thread.

    With hf-xet, huggingface_hub opens two bars for one file from the same
    class (bytes received and bytes written), so each bar counts on its own
    and a file's progress is its furthest bar, never their sum; a file never
    counts past its size, and done() never goes backwards.
    """

    def __init__(self, sizes: dict[str, int]) -> None:
        self._sizes = sizes
        self._bars: dict[str, dict[int, int]] = {name: {} for name in sizes}
        self._finished: set[str] = set()
        self._lock = threading.Lock()
        self._reported = 0

    @property
    def total(self) -> int:
        return sum(self._sizes.values())

    def _file_done(self, name: str) -> int:
        if name in self._finished:
            return self._sizes[name]
        return min(self._sizes[name], max(self._bars[name].values(), default=0))

    def done(self) -> int:
        with self._lock:
            now = sum(self._file_done(name) for name in self._sizes)
            self._reported = max(self._reported, min(now, self.total))
            return self._reported

    def advance(self, name: str, n: int, bar: int = 0) -> None:
        with self._lock:
            bars = self._bars[name]
            bars[bar] = bars.get(bar, 0) + max(0, n)

    def finish(self, name: str) -> None:
        with self._lock:
            self._finished.add(name)

    def bar_class(self, name: str) -> type[tqdm]:
        """A tqdm class that counts one file's bytes (shown or not)."""
        progress = self
        numbers = itertools.count()

        class _Bar(tqdm):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self._visgate_bar = next(numbers)
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)
                initial = kwargs.get("initial") or 0
                if initial:
                    progress.advance(name, int(initial), self._visgate_bar)

            def update(self, n: float | None = 1) -> bool | None:
                progress.advance(name, int(n or 0), self._visgate_bar)
                return super().update(n)

        return _Bar


def resolve_files(config: Config) -> list[str]:
    """The files to download: VISGATE_FILES, which the orchestrator chose
    (shared/huggingface, the same files its VRAM estimate counted)."""
    if not config.files:
        raise ConfigError(NO_FILES)
    return list(config.files)


def download(
    config: Config,
    on_progress: ProgressFn,
    *,
    workers: int = 4,
    tick: float = 1.0,
) -> Downloaded:
    """Fetches the files into the Hub cache; on_progress(done, total) is called
    at the start, about every `tick` seconds while bytes arrive, and at the end."""
    files = resolve_files(config)
    if config.cached_models is not None:
        cached = from_cached_models(config, config.cached_models)
        if cached is not None:
            log.info(
                "using RunPod's cached model at %s (%d files, %d bytes): nothing to download",
                cached.path,
                len(cached.files),
                cached.bytes_total,
            )
            on_progress(cached.bytes_total, cached.bytes_total)
            return cached

    # Sizes first (one HEAD each), so the first report has the total; the
    # commit of the first answer pins the rest to the same revision.
    sizes: dict[str, int] = {}
    revision = config.revision
    for name in files:
        meta = get_hf_file_metadata(
            hf_hub_url(config.model, name, revision=revision, endpoint=config.hub_endpoint),
            token=config.hf_token,
            endpoint=config.hub_endpoint,
            retry_on_errors=True,  # 429 and 5xx: the Hub's own backoff
        )
        sizes[name] = int(meta.size or 0)
        revision = revision or meta.commit_hash
    progress = _Progress(sizes)
    _check_disk(progress.total, config.hub_cache)
    on_progress(0, progress.total)

    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(tick):
            on_progress(progress.done(), progress.total)

    def fetch(name: str) -> Path:
        local = hf_hub_download(
            config.model,
            name,
            revision=revision,
            cache_dir=config.hub_cache,
            token=config.hf_token,
            endpoint=config.hub_endpoint,
            tqdm_class=progress.bar_class(name),
        )
        progress.finish(name)
        return Path(local)

    thread = threading.Thread(target=ticker, name="download-progress", daemon=True)
    thread.start()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="download")
    try:
        paths = list(pool.map(fetch, files))
    finally:
        # On a failure, do not wait for the other files: the worker reports it now.
        pool.shutdown(wait=False, cancel_futures=True)
        stop.set()
        thread.join()
    on_progress(progress.total, progress.total)

    first = paths[0]
    root = first.parents[len(Path(files[0]).parts) - 1]
    return Downloaded(path=root, files=tuple(files), revision=revision, bytes_total=progress.total)


def from_cached_models(config: Config, cache: Path) -> Downloaded | None:
    """The model from RunPod's cached models (a read-only Hub cache), if every
    chosen file is there at the pinned revision (MODEL_REVISION; the default
    branch's when none is pinned); None otherwise, and the worker downloads
    as usual (logging why, when the cache holds the repo at all)."""
    paths: list[Path] = []
    for name in config.files:
        found = try_to_load_from_cache(config.model, name, cache_dir=cache, revision=config.revision)
        if not isinstance(found, str):
            _say_why_not_cached(config, cache, name)
            return None
        paths.append(Path(found))
    root = paths[0].parents[len(Path(config.files[0]).parts) - 1]
    if any(root not in p.parents for p in paths):
        return None  # files of different snapshots: not one revision
    return Downloaded(
        path=root,
        files=config.files,
        revision=root.name,
        bytes_total=sum(p.stat().st_size for p in paths),
    )


def _say_why_not_cached(config: Config, cache: Path, missing: str) -> None:
    """Logs why RunPod's cached models do not serve this model, when they
    hold it at all: the user turned them on and pays for a download."""
    repo = cache / f"models--{config.model.replace('/', '--')}"
    if not repo.is_dir():
        return
    snapshots = (
        sorted(p.name for p in (repo / "snapshots").glob("*")) if (repo / "snapshots").is_dir() else []
    )
    wanted = config.revision or "the default branch"
    log.warning(
        "RunPod's cached models hold %s at %s, not %s with %s: downloading instead",
        config.model,
        ", ".join(snapshots) or "no snapshot",
        wanted,
        missing,
    )


def _check_disk(needed: int, cache: Path | None) -> None:
    where = cache or Path(constants.HF_HUB_CACHE)
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise DiskSpaceError(needed, free, where)
