"""The worker as RunPod runs it: `python -m visgate_worker` in its own process,
with the endpoint's env, then the RunPod SDK's local job API (/runsync)."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from PIL import Image

from conftest import T2I_FILES, TINY_T2I

SRC = Path(__file__).resolve().parents[1] / "src"
TOKEN = "hf_TestTokenThatMustNeverBeLogged0123"
SECRET = "callback-secret-that-must-never-be-logged"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(hub_url: str, cb_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "VISGATE_", "RUNPOD_"))}
    env.update(
        PYTHONPATH=str(SRC),
        HF_ENDPOINT=hub_url,
        HF_HOME=str(tmp_path / "hf"),
        HF_TOKEN=TOKEN,
        MODEL_NAME=TINY_T2I,
        VISGATE_TASK="text-to-image",
        VISGATE_LIBRARY="diffusers",
        VISGATE_FILES=json.dumps(T2I_FILES),
        VISGATE_DEPLOYMENT_ID="dep-1",
        VISGATE_CALLBACK_URL=cb_url,
        VISGATE_CALLBACK_SECRET=SECRET,
        VISGATE_GPU="cpu",
        VISGATE_VRAM_GB="1",
        RUNPOD_DEBUG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=10)
        return out, err
    return proc.communicate(timeout=10)


def test_worker_process_reports_ready_and_serves_runsync(hub, callback, tmp_path):
    hub_url, _ = hub
    cb_url, cb = callback
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "visgate_worker",
            "--rp_serve_api",
            "--rp_api_host",
            "127.0.0.1",
            "--rp_api_port",
            str(port),
        ],
        env=_env(hub_url, cb_url, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert cb.ready.wait(180), "no ready/failed report within 180 s"
        assert cb.statuses()[-1] == "ready", cb.received
        assert all(h["X-Visgate-Internal-Secret"] == SECRET for h in cb.headers)

        deadline = time.monotonic() + 60
        body = {"input": {"prompt": "a red square", "width": 64, "height": 64, "num_inference_steps": 2}}
        while True:
            try:
                resp = requests.post(f"http://127.0.0.1:{port}/runsync", json=body, timeout=60)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the SDK's API did not come up"
                assert proc.poll() is None, "the worker exited"
                time.sleep(0.2)
        assert resp.status_code == 200, resp.text
        job = resp.json()
        assert job["status"] == "COMPLETED", job
        img = Image.open(io.BytesIO(base64.b64decode(job["output"]["images"][0])))
        assert img.size == (64, 64)

        bad = requests.post(f"http://127.0.0.1:{port}/runsync", json={"input": {"prompt": ""}}, timeout=60)
        assert bad.json()["status"] == "FAILED"
        assert "prompt must not be empty" in str(bad.json().get("error"))
    finally:
        out, err = _stop(proc)
    logs = out + err
    assert "ready" in logs
    assert TOKEN not in logs
    assert SECRET not in logs


def test_secrets_are_redacted_from_logs_and_reports(hub, callback, tmp_path):
    hub_url, _ = hub
    cb_url, cb = callback
    # A model id that holds the token: every line and report that names the
    # model must mask it.
    env = _env(hub_url, cb_url, tmp_path, MODEL_NAME=f"visgate-tiny/{TOKEN}", VISGATE_FILES='["config.json"]')
    proc = subprocess.run(
        [sys.executable, "-m", "visgate_worker"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 1, logs
    assert "visgate-tiny/[REDACTED]" in logs
    assert TOKEN not in logs
    assert SECRET not in logs
    assert cb.statuses() == ["failed"]
    error = cb.received[0]["error"]
    assert error.startswith("visgate-tiny/[REDACTED] was not found")
    assert TOKEN not in str(cb.received)


def test_bad_config_is_reported_as_failed(callback, tmp_path):
    cb_url, cb = callback
    env = _env("http://127.0.0.1:9", cb_url, tmp_path, VISGATE_TASK="text-generation")
    proc = subprocess.run(
        [sys.executable, "-m", "visgate_worker"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert cb.statuses() == ["failed"]
    assert cb.received[0]["error"].startswith("VISGATE_TASK is 'text-generation'; this worker serves")
