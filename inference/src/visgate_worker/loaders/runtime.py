"""Where and in which precision a model runs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ExplainedError


class NoGPUError(ExplainedError):
    """The endpoint asked for a GPU and CUDA does not work in this worker."""

    def __init__(self, gpu: str, problem: str) -> None:
        super().__init__(
            f"The endpoint asked for {gpu} but CUDA is not available in the worker ({problem}): "
            f"this image's torch {torch.__version__} needs an NVIDIA driver for CUDA "
            f"{torch.version.cuda or '13'} (r580 or newer); the worker will not serve from the CPU."
        )
        self.gpu, self.problem = gpu, problem


def cuda_problem() -> str:
    """Why torch sees no GPU, in the driver's own words where torch has them."""
    if torch.version.cuda is None:
        return "this torch was built without CUDA"
    try:
        torch.cuda.init()
    except Exception as exc:  # torch says what the driver lacks
        text = " ".join(str(exc).split()).split(". ")[0].rstrip(".")
        return text[:200] or type(exc).__name__
    return "no CUDA device is visible"


@dataclass(frozen=True)
class Runtime:
    device: str  # "cuda" or "cpu"
    half: torch.dtype  # the 16-bit type for the GPU; CPU runs float32

    @classmethod
    def detect(cls, gpu: str | None = None, *, allow_cpu: bool = False) -> Runtime:
        """The GPU when CUDA works; the CPU otherwise, but only where no GPU
        was asked for (gpu None or "cpu") or allow_cpu is set (a GPU-free
        simulation): a worker placed on a GPU never serves silently from the
        CPU in float32, where a large model would not even fit in RAM."""
        if torch.cuda.is_available():
            half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return cls("cuda", half)
        if gpu and gpu.lower() != "cpu" and not allow_cpu:
            raise NoGPUError(gpu, cuda_problem())
        return cls("cpu", torch.float32)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    def dtype(self, preferred: torch.dtype = torch.float16) -> torch.dtype:
        """preferred on the GPU (bfloat16 only where the card has it), float32 on the CPU."""
        if not self.cuda:
            return torch.float32
        if preferred == torch.bfloat16 and self.half != torch.bfloat16:
            return torch.float16
        return preferred

    @property
    def pipeline_device(self) -> int | str:
        return 0 if self.cuda else "cpu"
