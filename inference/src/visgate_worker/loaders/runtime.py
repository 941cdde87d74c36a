"""Where and in which precision a model runs."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Runtime:
    device: str  # "cuda" or "cpu"
    half: torch.dtype  # the 16-bit type for the GPU; CPU runs float32

    @classmethod
    def detect(cls) -> Runtime:
        if torch.cuda.is_available():
            half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return cls("cuda", half)
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
