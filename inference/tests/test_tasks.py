"""tasks.json is the one list of tasks: every module that names tasks reads it."""

from __future__ import annotations

import json

import pytest

from visgate_worker import inputs, loaders, tasks, worker
from visgate_worker.config import ConfigError, default_timeout, from_env

BASE = {"MODEL_NAME": "acme/m", "VISGATE_FILES": '["config.json"]'}


def test_every_task_has_its_validator_and_loaders():
    for name, task in tasks.TASKS.items():
        assert task.input in inputs.BY_NAME, name
        assert inputs.VALIDATORS[name] is inputs.BY_NAME[task.input]
        for library, loader in task.loaders.items():
            assert loader in loaders.LOADERS, (name, library)
    assert set(inputs.VALIDATORS) == set(tasks.TASKS)
    used_inputs = {t.input for t in tasks.TASKS.values()}
    used_loaders = {loader for t in tasks.TASKS.values() for loader in t.loaders.values()}
    assert set(inputs.BY_NAME) == used_inputs, "a validator no task uses"
    assert set(loaders.LOADERS) == used_loaders, "a loader no task uses"


def test_the_table_as_read():
    raw = json.loads(tasks.TABLE_PATH.read_text(encoding="utf-8"))
    assert list(tasks.TASKS) == list(raw["tasks"])
    assert {"diffusers", "transformers", "sentence-transformers"} == tasks.LIBRARIES
    assert default_timeout("text-to-image") == 600
    assert default_timeout("fill-mask") == tasks.DEFAULT_JOB_TIMEOUT == 120
    assert worker.CONCURRENT_JOBS["sentence-similarity"] == 4
    assert worker.CONCURRENT_JOBS["text-to-image"] == 1


@pytest.mark.parametrize(("task", "library"), [(t, lib) for t in tasks.TASKS for lib in tasks.LIBRARIES])
def test_config_accepts_exactly_the_tables_pairs(task, library, tmp_path):
    env = {**BASE, "VISGATE_TASK": task, "VISGATE_LIBRARY": library}
    if library in tasks.TASKS[task].loaders:
        assert from_env(env, volume=tmp_path / "absent").library == library
    else:
        with pytest.raises(ConfigError, match="cannot be served"):
            from_env(env, volume=tmp_path / "absent")


@pytest.mark.parametrize("task", list(tasks.TASKS))
def test_default_library_is_the_first(task, tmp_path):
    cfg = from_env({**BASE, "VISGATE_TASK": task}, volume=tmp_path / "absent")
    assert cfg.library == next(iter(tasks.TASKS[task].loaders))
