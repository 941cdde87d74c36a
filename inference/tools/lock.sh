#!/usr/bin/env bash
# Regenerates the worker's lock from requirements*.in with uv
# (pip install uv==0.13.8). Every transitive dependency is pinned with its
# hashes; commit the .in and .lock files together.
#
#   requirements.lock   runtime + test tools, for Python 3.11 on x86_64
#                       Linux: the one environment, in two forms. The venv
#                       (scripts/inference-env.sh) and the image
#                       (inference/Dockerfile) both install it with
#                       pip install --no-deps --require-hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
"$UV" pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
	--index-url https://pypi.org/simple --custom-compile-command "inference/tools/lock.sh" \
	requirements-dev.in -o requirements.lock
