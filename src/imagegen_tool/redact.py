"""Keep secrets and payloads out of messages and logs.

API keys (``sk-...``), bearer tokens, data URLs and long base64 runs are shortened before any text built from
API errors or requests reaches a log line, an exception message or an agent.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact", "redact_payload"]

_KEY = re.compile(r"\b(sk-[A-Za-z0-9]{0,12}-?)[A-Za-z0-9_\-*]{8,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._\-]{8,}")
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)?;base64,[A-Za-z0-9+/=_-]{16,}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{120,}={0,2}")


def redact(text: str) -> str:
    """``text`` with API keys masked and base64 data shortened to a length marker."""
    text = _KEY.sub(lambda m: m.group(1) + "***", text)
    text = _BEARER.sub(lambda m: m.group(1) + "***", text)
    text = _DATA_URL.sub(lambda m: f"data:{m.group(1) or ''};base64,<{len(m.group(0))} chars>", text)
    return _BASE64.sub(lambda m: f"<base64 {len(m.group(0))} chars>", text)


def redact_payload(value: Any) -> Any:
    """A copy of a JSON-like request or response with every string passed through :func:`redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_payload(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_payload(item) for item in value]
    return value
