"""Keep secrets and payloads out of messages, logs and the exceptions this package raises.

Every OpenAI key format (legacy ``sk-...``, ``sk-proj-``, ``sk-svcacct-``, ``sk-admin-``, ``sk-None-``), Azure
keys in ``api-key`` / ``Ocp-Apim-Subscription-Key`` headers, bearer tokens and basic credentials are removed
completely (no characters of the secret are kept; only the kind of key is shown). Data URLs and long base64 runs
are shortened to a length marker. :func:`scrub_exception` applies the same to an exception chain, so an SDK
error chained as ``__cause__`` cannot carry a key a server echoed back into a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "redact", "redact_payload", "scrub_exception"]

#: What replaces a secret.
REDACTED = "***"

# OpenAI keys: a known prefix, then the secret (letters, digits, "_" and "-"; legacy keys have 48 characters,
# project/service-account/admin keys 100+). The family prefix is kept, the secret never.
_OPENAI_KEY = re.compile(
    r"(?<![A-Za-z0-9])(sk-(?:proj|svcacct|admin|None|ant-api\d+)-|sk-|rk-|sess-)[A-Za-z0-9_\-]{12,}"
)
# Header-style credentials: "api-key: X", "'api-key': 'X'", "Authorization=X", in any quoting.
_HEADER_SECRET = re.compile(
    r"(?i)(\b(?:api[-_]key|x-api-key|openai[-_]api[-_]key|ocp-apim-subscription-key|authorization|"
    r"proxy-authorization|cookie)\b['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(bearer|basic|token)\s+)?([^\s'\",;}]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]{6,}")
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)?;base64,[A-Za-z0-9+/=_-]{16,}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{120,}={0,2}")


def _header(match: re.Match[str]) -> str:
    scheme = f"{match.group(2)} " if match.group(2) else ""
    return f"{match.group(1)}{scheme}{REDACTED}"


def redact(text: str) -> str:
    """``text`` with credentials removed and base64 data shortened to a length marker."""
    if not text:
        return text
    text = _DATA_URL.sub(lambda m: f"data:{m.group(1) or ''};base64,<{len(m.group(0))} chars>", text)
    text = _OPENAI_KEY.sub(lambda m: m.group(1) + REDACTED, text)
    text = _HEADER_SECRET.sub(_header, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _BASE64.sub(lambda m: f"<base64 {len(m.group(0))} chars>", text)


def redact_payload(value: Any) -> Any:
    """A copy of a JSON-like request or response with every string passed through :func:`redact` and the
    values of credential keys (``api_key``, ``authorization``, ...) replaced whatever they look like."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _is_secret_key(key) and value[key] else redact_payload(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_payload(item) for item in value]
    return value


def _is_secret_key(key: object) -> bool:
    name = str(key).lower().replace("_", "-")
    return name in {
        "api-key",
        "x-api-key",
        "openai-api-key",
        "authorization",
        "proxy-authorization",
        "ocp-apim-subscription-key",
        "cookie",
    }


def scrub_exception(exc: BaseException) -> BaseException:
    """Remove credentials from ``exc`` and every exception chained to it (``__cause__``/``__context__``), in
    place: their ``args`` and the SDK's ``message``/``body`` attributes. Returns ``exc``.

    Used on SDK and transport exceptions before they are chained to an imagegen-tool error, because tracebacks
    and logging print every exception of the chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    pending: list[BaseException] = []
    while current is not None or pending:
        if current is None:
            current = pending.pop()
        if id(current) in seen:
            current = None
            continue
        seen.add(id(current))
        _scrub_one(current)
        if current.__context__ is not None and current.__context__ is not current.__cause__:
            pending.append(current.__context__)
        current = current.__cause__
    return exc


def _scrub_one(exc: BaseException) -> None:
    try:
        exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
        for name in ("message", "msg", "strerror"):
            value = getattr(exc, name, None)
            if isinstance(value, str):
                setattr(exc, name, redact(value))
        body = getattr(exc, "body", None)
        if isinstance(body, str | Mapping | list):
            exc.body = redact_payload(body)  # type: ignore[attr-defined]
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [redact(n) if isinstance(n, str) else n for n in notes]
    except (AttributeError, TypeError):  # read-only attributes of an exotic exception: keep what we could do
        pass
