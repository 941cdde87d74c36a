#!/usr/bin/env bash
# Regenerates the worker's lock files from requirements*.in with uv
# (pip install uv==0.13.8). Every transitive dependency is pinned with its
# hashes; commit the .in and .lock files together.
#
#   requirements.lock        runtime + test tools: the local/CI venv
#                            (scripts/inference-env.sh installs it with
#                            pip --require-hashes)
#   requirements-image.lock  runtime minus what the image's PyTorch base
#                            provides (torch, triton, the CUDA wheels): the
#                            Dockerfile installs it on pytorch/pytorch
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes
        --index-url https://pypi.org/simple --custom-compile-command "inference/tools/lock.sh")
"$UV" pip compile "${common[@]}" requirements-dev.in -o requirements.lock
# The base image's torch stack: torch itself and every package only torch needs.
base=(torch triton setuptools cuda-bindings cuda-pathfinder cuda-toolkit)
for p in $(grep -oE '^nvidia-[a-z0-9-]+' requirements.lock); do base+=("$p"); done
noemit=()
for p in "${base[@]}"; do noemit+=(--no-emit-package "$p"); done
"$UV" pip compile "${common[@]}" "${noemit[@]}" requirements.in -o requirements-image.lock
