"""The tasks this worker serves, read from tasks.json: the one list that
config (which tasks and libraries), inputs (each task's validator), loaders
(each task and library's loader) and worker (jobs at once) read, and that
Go's tests hold the orchestrator to (shared/serving, functions/provision)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

TABLE_PATH = Path(__file__).with_name("tasks.json")


@dataclass(frozen=True)
class Task:
    name: str
    # library -> loader (a module of visgate_worker.loaders); the first
    # library is the default.
    loaders: MappingProxyType[str, str]
    input: str  # a validator of visgate_worker.inputs
    job_timeout_seconds: int
    concurrent_jobs: int

    @property
    def default_library(self) -> str:
        return next(iter(self.loaders))


def _read(path: Path) -> tuple[MappingProxyType[str, Task], int]:
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    default_timeout = int(raw["default_job_timeout_seconds"])
    tasks = {
        name: Task(
            name=name,
            loaders=MappingProxyType(dict(spec["libraries"])),
            input=spec["input"],
            job_timeout_seconds=int(spec.get("job_timeout_seconds", default_timeout)),
            concurrent_jobs=int(spec.get("concurrent_jobs", 1)),
        )
        for name, spec in raw["tasks"].items()
    }
    return MappingProxyType(tasks), default_timeout


TASKS, DEFAULT_JOB_TIMEOUT = _read(TABLE_PATH)
LIBRARIES = frozenset(lib for task in TASKS.values() for lib in task.loaders)
