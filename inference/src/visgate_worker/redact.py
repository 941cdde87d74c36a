"""Keeps the HF token and the callback secret out of every line the worker prints.

Two layers: a logging.Filter that rewrites records before any handler formats
them, and a wrapper around sys.stdout / sys.stderr for what bypasses logging
(print, tracebacks, the RunPod SDK's own logger, library progress bars).
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterable
from typing import TextIO

MASK = "[REDACTED]"


class Redactor:
    """Replaces every known secret value with MASK."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class RedactingFilter(logging.Filter):
    """Formats the record's message once, redacted, and drops its args."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self._redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


class RedactingStream(io.TextIOBase):
    """A text stream that redacts before writing to the wrapped one.

    Writes are passed through at once (a progress bar's carriage returns
    included); a secret split across two writes is the one case it cannot
    see, which is why logging is redacted at the record as well.
    """

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self._stream = stream
        self._redact = redactor

    def write(self, text: str) -> int:
        self._stream.write(self._redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


def install(secrets: Iterable[str]) -> Redactor:
    """Redacts the secrets from the root logger's records and from stdout/stderr."""
    redactor = Redactor(secrets)
    if not redactor:
        return redactor
    sys.stdout = RedactingStream(sys.stdout, redactor)
    sys.stderr = RedactingStream(sys.stderr, redactor)
    root = logging.getLogger()
    log_filter = RedactingFilter(redactor)
    for handler in root.handlers:
        handler.addFilter(log_filter)
    # Filters on handlers see every record that reaches them, from any logger;
    # a handler added later (by a library) is covered by the stream wrapper.
    return redactor
