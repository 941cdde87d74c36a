"""Jobs per second of the worker's handler on the tiny models, on the CPU.

    PYTHONPATH=inference/src python inference/tools/bench_jobs.py --tiny DIR [--seconds 5]

Loads each tiny model with the worker's own loaders (whichever worker
PYTHONPATH points at, so the same script measures two versions), then runs
the same job through make_handler(...) for about --seconds per case after
one warm-up job, and prints jobs/s per case as JSON lines. Nothing leaves the
process: no network, no GPU (CUDA_VISIBLE_DEVICES is emptied).

Compare two versions:

    git archive main inference/src | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/inference/src python inference/tools/bench_jobs.py --tiny DIR > before.jsonl
    PYTHONPATH=inference/src python inference/tools/bench_jobs.py --tiny DIR > after.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from tone import tone_wav

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXTS = [f"the red square number {i} is next to a small blue circle" for i in range(16)]


def cases() -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(name, repo, task, library, job input)"""
    masked = [t.replace("square", "[MASK]") for t in TEXTS]
    return [
        (
            "text-classification x16",
            "text-classification",
            "text-classification",
            "transformers",
            {"inputs": TEXTS},
        ),
        (
            "token-classification x16",
            "token-classification",
            "token-classification",
            "transformers",
            {"inputs": TEXTS},
        ),
        ("fill-mask x16", "fill-mask", "fill-mask", "transformers", {"inputs": masked}),
        (
            "feature-extraction x16",
            "feature-extraction",
            "feature-extraction",
            "transformers",
            {"inputs": TEXTS},
        ),
        (
            "sentence-similarity x16",
            "sentence-embeddings",
            "sentence-similarity",
            "sentence-transformers",
            {"inputs": TEXTS},
        ),
        (
            "speech 95 s",
            "speech-recognition",
            "automatic-speech-recognition",
            "transformers",
            {"audio": tone_wav(95)},
        ),
        (
            "speech 95 s language en",
            "speech-recognition",
            "automatic-speech-recognition",
            "transformers",
            {"audio": tone_wav(95), "language": "en"},
        ),
        (
            "speech 95 s batch_size 4",
            "speech-recognition",
            "automatic-speech-recognition",
            "transformers",
            {"audio": tone_wav(95), "batch_size": 4, "language": "en"},
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tiny", required=True, type=Path, help="the tiny models (make_tiny_models.py --out)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="time per case")
    parser.add_argument("--max-jobs", type=int, default=200, help="jobs per case at most")
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args(argv)

    import torch

    from visgate_worker import loaders
    from visgate_worker.config import Config
    from visgate_worker.handler import make_handler
    from visgate_worker.loaders.runtime import Runtime

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    cpu = Runtime("cpu", torch.float32)
    for name, repo, task, library, raw in cases():
        if args.only not in name:
            continue
        cfg = Config(model=f"visgate-tiny/{repo}", task=task, library=library)
        handler = make_handler(loaders.load(cfg, args.tiny / "visgate-tiny" / repo, (), cpu), cfg)
        first = handler({"id": "warm", "input": raw})
        if "error" in first:
            print(json.dumps({"case": name, "error": first["error"]}), flush=True)
            continue
        jobs, t0 = 0, time.perf_counter()
        while jobs < args.max_jobs and time.perf_counter() - t0 < args.seconds:
            handler({"id": str(jobs), "input": raw})
            jobs += 1
        elapsed = time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "case": name,
                    "jobs": jobs,
                    "seconds": round(elapsed, 3),
                    "jobs_per_s": round(jobs / elapsed, 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
