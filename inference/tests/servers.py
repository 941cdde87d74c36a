"""Loopback HTTP servers for the tests: a small Hugging Face Hub that serves
repositories from a folder, and the orchestrator's callback endpoint."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from huggingface_hub.repocard import metadata_load

CARD_FIELDS = ("pipeline_tag", "library_name", "tags")
OVERRIDE_FILE = "visgate-repo.json"  # the Go Hub simulator's override: not a repo file


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], state: Any) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.state = state  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class HubState:
    root: Path  # root/<org>/<name>/<files>
    gated: set[str] = field(default_factory=set)
    granted: set[str] = field(default_factory=set)  # tokens that accepted every gated repo
    private: dict[str, str] = field(default_factory=dict)  # repo -> the token that reads it
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def commit(self, repo: str) -> str:
        return hashlib.sha1(repo.encode()).hexdigest()

    def files(self, repo: str) -> dict[str, Path]:
        base = self.root / repo
        return {
            p.relative_to(base).as_posix(): p
            for p in sorted(base.rglob("*"))
            if p.is_file() and p.name != OVERRIDE_FILE and not p.name.startswith(".")
        }

    def downloaded(self) -> list[str]:
        """The repo-relative paths fetched with GET .../resolve/..."""
        with self.lock:
            return [
                path.split("/resolve/", 1)[1].split("/", 1)[1]
                for m, path in self.requests
                if m == "GET" and "/resolve/" in path
            ]


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def hub(self) -> HubState:
        return self.server.state  # type: ignore[attr-defined]

    def _error(self, status: int, code: str | None, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _access(self, repo: str) -> bool:
        if not (self.hub.root / repo).is_dir():
            self._error(404, "RepoNotFound", "Repository not found")
            return False
        auth = self.headers.get("Authorization", "")
        if repo in self.hub.private and auth != f"Bearer {self.hub.private[repo]}":
            self._error(401, None, "Invalid username or password.")
            return False
        if repo in self.hub.gated and auth.removeprefix("Bearer ") not in self.hub.granted:
            self._error(403, "GatedRepo", f"Access to model {repo} is restricted.")
            return False
        return True

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        with self.hub.lock:
            self.hub.requests.append((self.command, path))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            self._model_info("/".join(parts[2:4]), "blobs" in parse_qs(url.query))
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._resolve("/".join(parts[:2]), "/".join(parts[4:]))
        else:
            self._error(404, None, "Not found")

    def _model_info(self, repo: str, blobs: bool) -> None:
        if not self._access(repo):
            return
        # As the Hub does: pipeline_tag, library_name and tags from the model
        # card's front matter.
        card = self.hub.root / repo / "README.md"
        front = (metadata_load(card) or {}) if card.is_file() else {}
        meta = {k: front[k] for k in CARD_FIELDS if k in front}
        siblings = []
        for name, p in self.hub.files(repo).items():
            entry: dict[str, Any] = {"rfilename": name}
            if blobs:
                entry["size"] = p.stat().st_size
            siblings.append(entry)
        body = json.dumps(
            {"id": repo, "sha": self.hub.commit(repo), "private": False, "siblings": siblings, **meta}
        )
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _resolve(self, repo: str, name: str) -> None:
        if not self._access(repo):
            return
        p = self.hub.files(repo).get(name)
        if p is None:
            self._error(404, "EntryNotFound", f"{name} does not exist")
            return
        data = p.read_bytes()
        self.send_response(200)
        self.send_header("X-Repo-Commit", self.hub.commit(repo))
        self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


@dataclass
class CallbackState:
    # Status codes to answer, in order; 200 once they run out.
    script: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ready: threading.Event = field(default_factory=threading.Event)

    def statuses(self) -> list[str]:
        with self.lock:
            return [r["status"] for r in self.received]


class CallbackHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        state: CallbackState = self.server.state  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        with state.lock:
            status = state.script.pop(0) if state.script else 200
            state.headers.append(dict(self.headers.items()))
            if status < 300:
                state.received.append(body)
        if status == 429:
            answer = b'{"error":"slow down"}'
            self.send_response(429)
            self.send_header("Retry-After", "0")
        elif status < 300:
            answer = json.dumps(
                {"deployment_id": "dep-1", "status": body.get("status"), "webhook_delivered": False}
            ).encode()
            self.send_response(status)
        else:
            answer = b'{"error":"no"}'
            self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        if status < 300 and body.get("status") in ("ready", "failed"):
            state.ready.set()
