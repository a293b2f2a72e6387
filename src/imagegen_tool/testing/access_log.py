"""One log line per request the emulator answers, for ``imagegen-emulator -v`` and for debugging tests.

The line says what a developer watching the emulator wants to see at a glance: method, path, status, time,
and for image requests the model, the prompt (shortened) and the options that shape the image. It is built
only when the ``imagegen_tool.testing.requests`` logger is enabled for INFO, so a quiet emulator pays nothing.
Bodies come from the request log, which never holds credentials; image data (base64, data URLs) is never
printed, only its size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .state import RecordedRequest

__all__ = ["describe_request", "log_request", "logger"]

#: The logger the emulator's per-request lines go to (INFO).
logger = logging.getLogger("imagegen_tool.testing.requests")

_PROMPT_LIMIT = 60
_OPTION_KEYS = ("size", "quality", "background", "output_format", "partial_images", "n", "action")


def log_request(record: RecordedRequest, elapsed_seconds: float) -> None:
    """Log ``record`` (already answered with ``record.status``) at INFO, if anyone listens."""
    if logger.isEnabledFor(logging.INFO):
        logger.info("%s (%d ms)", describe_request(record), round(elapsed_seconds * 1000))


def describe_request(record: RecordedRequest) -> str:
    """``POST /v1/responses -> 200 model=gpt-5.4-mini image_model=gpt-image-1 stream prompt='a red kite' ...``."""
    parts = [f"{record.method} {record.path} -> {record.status if record.status is not None else '?'}"]
    body: Mapping[str, Any] | None = record.json if isinstance(record.json, Mapping) else None
    if body is None and record.form:
        body = record.form
    if body is not None:
        parts += _describe_body(body)
    if record.files:
        sizes = ", ".join(f"{f.field}={f.size} B" for f in record.files)
        parts.append(f"files[{sizes}]")
    return " ".join(parts)


def _describe_body(body: Mapping[str, Any]) -> list[str]:
    parts: list[str] = []
    if isinstance(body.get("model"), str):
        parts.append(f"model={body['model']}")
    tool = _image_tool(body.get("tools"))
    if tool is not None and isinstance(tool.get("model"), str):
        parts.append(f"image_model={tool['model']}")
    if body.get("stream") in (True, "true"):
        parts.append("stream")
    if body.get("background") is True:
        parts.append("background")
    if isinstance(body.get("previous_response_id"), str):
        parts.append(f"previous_response_id={body['previous_response_id']}")
    options = tool if tool is not None else body
    for key in _OPTION_KEYS:
        value = options.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            parts.append(f"{key}={value}")
    prompt = _prompt(body)
    if prompt is not None:
        parts.append(f"prompt={_shorten(prompt)!r}")
    if isinstance(body.get("purpose"), str):
        parts.append(f"purpose={body['purpose']}")
    return parts


def _image_tool(tools: Any) -> Mapping[str, Any] | None:
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, Mapping) and tool.get("type") == "image_generation":
                return tool
    return None


def _prompt(body: Mapping[str, Any]) -> str | None:
    """The prompt text: ``prompt`` (Images API) or the last text of ``input`` (Responses API)."""
    if isinstance(body.get("prompt"), str):
        return str(body["prompt"])
    value = body.get("input")
    if isinstance(value, str):
        return value
    texts: list[str] = []
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, Mapping):
                continue
            content = item.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [str(part["text"]) for part in content if _is_input_text(part)]
    return texts[-1] if texts else None


def _is_input_text(part: Any) -> bool:
    return isinstance(part, Mapping) and part.get("type") == "input_text" and isinstance(part.get("text"), str)


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PROMPT_LIMIT else flat[: _PROMPT_LIMIT - 1] + "…"
