from __future__ import annotations

import io
import logging

from visgate_worker.redact import MASK, RedactingFilter, RedactingStream, Redactor

TOKEN = "hf_abcdefghijklmnopqrstuvwxyz012345"
SECRET = "cb-0123456789abcdef"


def test_redactor_masks_every_secret_longest_first():
    r = Redactor([TOKEN, SECRET, "", TOKEN[:5]])
    assert r(f"a {TOKEN} b {SECRET} c") == f"a {MASK} b {MASK} c"
    assert not Redactor(["", ""])


def test_filter_redacts_message_args_and_tracebacks():
    out = io.StringIO()
    logger = logging.getLogger("test_redact.filter")
    logger.propagate = False
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter(Redactor([TOKEN, SECRET])))
    logger.addHandler(handler)
    try:
        logger.warning("token %s and %r", TOKEN, {"secret": SECRET})
        try:
            raise RuntimeError(f"401 for Bearer {TOKEN}")
        except RuntimeError:
            logger.exception("download failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert TOKEN not in text
    assert SECRET not in text
    assert text.count(MASK) == 3
    assert "RuntimeError: 401 for Bearer [REDACTED]" in text


def test_stream_redacts_what_bypasses_logging():
    out = io.StringIO()
    stream = RedactingStream(out, Redactor([TOKEN]))
    print(f"HF_TOKEN={TOKEN}", file=stream)
    stream.write(f"\r{TOKEN} 50%")
    stream.flush()
    assert TOKEN not in out.getvalue()
    assert out.getvalue() == f"HF_TOKEN={MASK}\n\r{MASK} 50%"
