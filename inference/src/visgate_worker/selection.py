"""Which repository files the worker downloads when VISGATE_FILES is empty.

The same rules as the orchestrator's VRAM estimate (shared/huggingface,
selectFiles), so that what is counted is what is loaded:

- Weights are grouped into sets: one format, one shard series, one folder
  ("unet/diffusion_pytorch_model.fp16.safetensors" is folder unet, base
  diffusion_pytorch_model, variant fp16, format safetensors).
- diffusers: for each component of model_index.json, one set in its folder,
  preferring fp16 safetensors, bf16 safetensors, plain safetensors, then the
  same order in .bin; else the smallest other safetensors/.bin set.
- Other libraries: the root "model" safetensors series, else the largest root
  safetensors set, else the largest root .bin set; sentence-transformers
  models add one set per module folder (2_Dense/, ...).
- Beside the weights, every configuration and tokenizer file (.json, .txt,
  .model, .tiktoken, .jinja; not README.md nor dotfiles) at the root or in a
  diffusers component folder, or in any other folder that does not hold
  another runtime's copy (onnx/, openvino/, original/, ...); the shard index
  of a set that was not chosen is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

WEIGHT_EXTS = frozenset(
    {"safetensors", "bin", "pt", "pth", "ckpt", "h5", "msgpack", "gguf", "onnx", "onnx_data", "ot", "tflite"}
)
SUPPORT_EXTS = frozenset({"json", "txt", "model", "tiktoken", "jinja"})
OTHER_RUNTIME_DIRS = frozenset(
    {"onnx", "openvino", "coreml", "tf", "flax", "mlx", "gguf", "original", "tflite", "rust"}
)
COMPONENT_PREFERENCE = (
    ("fp16", "safetensors"),
    ("bf16", "safetensors"),
    ("", "safetensors"),
    ("fp16", "bin"),
    ("bf16", "bin"),
    ("", "bin"),
)
_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")
_SHARD_INDEX = re.compile(r"^([^.]+)\.([a-z_]+)\.index(?:\.([^.]+))?\.json$")


@dataclass
class WeightSet:
    dir: str
    base: str
    variant: str
    ext: str
    files: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.dir, self.base, self.variant, self.ext)


def _split(name: str) -> tuple[str, str]:
    path = PurePosixPath(name)
    parent = str(path.parent)
    return ("" if parent == "." else parent), path.name


def weight_sets(siblings: Mapping[str, int]) -> list[WeightSet]:
    sets: dict[tuple[str, str, str], WeightSet] = {}
    for name, size in siblings.items():
        folder, file = _split(name)
        dot = file.rfind(".")
        if dot <= 0:
            continue
        stem, ext = file[:dot], file[dot + 1 :].lower()
        if ext not in WEIGHT_EXTS:
            continue
        stem = _SHARD_SUFFIX.sub("", stem)
        base, _, variant = stem.partition(".")
        key = (folder, stem, ext)
        if key not in sets:
            sets[key] = WeightSet(folder, base, variant, ext)
        sets[key].files.append(name)
        sets[key].size += size
    return list(sets.values())


def _choose_component_set(sets: list[WeightSet]) -> WeightSet | None:
    for variant, ext in COMPONENT_PREFERENCE:
        for s in sets:
            if s.variant == variant and s.ext == ext:
                return s
    candidates = [s for s in sets if s.ext in ("safetensors", "bin")]
    return min(candidates, key=lambda s: s.size) if candidates else None


def _loadable_root_set(sets: list[WeightSet]) -> WeightSet | None:
    root_st = [s for s in sets if s.dir == "" and s.ext == "safetensors"]
    for s in root_st:
        if s.base == "model" and s.variant == "":
            return s
    if root_st:
        return max(root_st, key=lambda s: s.size)
    root_bin = [s for s in sets if s.dir == "" and s.ext == "bin"]
    return max(root_bin, key=lambda s: s.size) if root_bin else None


def diffusers_components(model_index: Mapping[str, Any]) -> list[str]:
    """The model_index.json entries that name a [library, class] pair."""
    return sorted(
        name
        for name, value in model_index.items()
        if not name.startswith("_")
        and isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
    )


def select_files(
    siblings: Mapping[str, int],
    library: str,
    model_index: Mapping[str, Any] | None = None,
) -> list[str]:
    """The sorted download list for a repo whose files and sizes are siblings."""
    sets = weight_sets(siblings)
    chosen: list[WeightSet] = []
    components: list[str] | None = None
    if library == "diffusers":
        components = diffusers_components(model_index or {})
        for comp in components:
            picked = _choose_component_set([s for s in sets if s.dir == comp])
            if picked:
                chosen.append(picked)
    else:
        root = _loadable_root_set(sets)
        if root:
            chosen.append(root)
        if library == "sentence-transformers":
            module_dirs = sorted(
                {s.dir for s in sets if s.dir and "/" not in s.dir and s.dir not in OTHER_RUNTIME_DIRS}
            )
            for folder in module_dirs:
                picked = _choose_component_set([s for s in sets if s.dir == folder])
                if picked:
                    chosen.append(picked)

    out: dict[str, None] = {}
    for s in chosen:
        out.update(dict.fromkeys(s.files))
    chosen_keys = {s.key for s in chosen}
    component_set = set(components or [])
    for name in siblings:
        folder, file = _split(name)
        ext = file.rpartition(".")[2].lower() if "." in file else ""
        if ext not in SUPPORT_EXTS or file.startswith(".") or file.lower() == "readme.md":
            continue
        m = _SHARD_INDEX.match(file)
        if m and (folder, m.group(1), m.group(3) or "", m.group(2)) not in chosen_keys:
            continue
        top = folder.split("/", 1)[0]
        if folder and ((components is not None and top not in component_set) or top in OTHER_RUNTIME_DIRS):
            continue
        out[name] = None
    return sorted(out)


def variant_of(files: Iterable[str]) -> str | None:
    """The weight variant ("fp16", "bf16") the selection holds, if any."""
    for s in weight_sets(dict.fromkeys(files, 0)):
        if s.variant in ("fp16", "bf16"):
            return s.variant
    return None
