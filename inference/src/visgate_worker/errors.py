"""Turns any start-up or job failure into one sentence a user understands."""

from __future__ import annotations

import errno

import requests
from huggingface_hub import errors as hub_errors

from .config import Config, ConfigError
from .download import DiskSpaceError


class ExplainedError(RuntimeError):
    """An error whose message is already the sentence the user sees."""


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def is_out_of_memory(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is in the lock
        pass
    text = str(exc)
    return "CUDA out of memory" in text or "CUBLAS_STATUS_ALLOC_FAILED" in text


def is_network_error(exc: BaseException) -> bool:
    """A connection that failed or timed out, from requests or from the httpx
    family that huggingface_hub uses (httpx, httpx2), or the Hub's own
    "not reachable and not cached"."""
    if isinstance(exc, hub_errors.LocalEntryNotFoundError | requests.ConnectionError | requests.Timeout):
        return True
    return any(
        cls.__module__.split(".")[0].startswith("httpx") and cls.__name__ == "TransportError"
        for cls in type(exc).__mro__
    )


def out_of_memory(config: Config) -> str:
    gpu = config.gpu or "the GPU"
    estimate = f" (estimated {config.vram_gb} GB)" if config.vram_gb else ""
    return (
        f"{config.model} ran out of GPU memory on {gpu}{estimate}: "
        "choose a GPU with more memory or a smaller model."
    )


def describe(exc: BaseException, config: Config, phase: str) -> str:
    """The user's sentence for an exception raised while `phase` ("download",
    "load", "warm-up" or "inference") ran for config.model."""
    model = config.model
    if isinstance(exc, ConfigError | ExplainedError):
        return str(exc)
    if is_out_of_memory(exc):
        return out_of_memory(config)
    if isinstance(exc, hub_errors.GatedRepoError):
        if config.hf_token:
            return (
                f"{model} is gated and the HF token in the deployment has no access: "
                "accept the model's terms on the Hugging Face Hub with that account."
            )
        return f"{model} is gated: deploy it with an HF token of an account that accepted its terms."
    if isinstance(exc, hub_errors.RevisionNotFoundError):
        return f"Revision {config.revision or 'main'} of {model} does not exist on the Hugging Face Hub."
    if isinstance(exc, hub_errors.RepositoryNotFoundError):
        if config.hf_token:
            return f"{model} was not found, or the HF token in the deployment cannot read it."
        return f"{model} was not found on the Hugging Face Hub; if it is private, deploy it with an HF token."
    if is_network_error(exc):
        return f"The worker could not reach the Hugging Face Hub to download {model}: {_short(exc)}"
    if isinstance(exc, hub_errors.EntryNotFoundError):
        return f"A file the deployment selected is missing from {model}: {_short(exc)}"
    if isinstance(exc, hub_errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return f"The Hugging Face Hub refused the HF token for {model} (401): check the token."
        if status == 429:
            return f"The Hugging Face Hub rate-limited the download of {model}: try again in a few minutes."
        return f"The Hugging Face Hub failed while serving {model} (HTTP {status})."
    if isinstance(exc, DiskSpaceError):
        return (
            f"{model} needs {_gb(exc.needed)} of disk and the worker has {_gb(exc.free)} free: "
            "attach a larger network volume or raise the container disk."
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"The worker ran out of disk during the {phase} of {model}: attach a larger volume."
    if phase == "load":
        return f"{model} could not be loaded as a {config.task} model: {_short(exc)}"
    return f"The {phase} of {model} failed: {_short(exc)}"


def _short(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    first = text.split(". ")[0]
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    return first if first.endswith(".") else first + "."
