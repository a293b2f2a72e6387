"""Variants of a Responses API event stream, as real servers send them (wire fidelity for the emulator).

:func:`shape_stream` turns the plain event list of :func:`.wire.response_events` into what a given server sends:

- ``obfuscation`` on every ``*.delta`` event, on by default as the SDK says (``stream_options.include_obfuscation``
  turns it off); the padding makes ``len(delta) + len(obfuscation)`` a multiple of 16, as in the recorded stream
  (every recorded pair sums to 16);
- text sent as word-sized deltas (the recordings send one token per event);
- ``style="azure"``: no ``response.image_generation_call.completed`` event, and the image item is ``done`` (and
  listed in the final response) with ``status: "generating"`` although its result is there, as the recorded Azure
  OpenAI stream shows (vercel-ai ``azure-image-generation-tool.1.chunks.txt``);
- ``ending``: ``"failed"`` (``response.failed`` with an ``error``), ``"incomplete"`` (``response.incomplete`` with
  ``incomplete_details.reason``, ``max_output_tokens`` or ``content_filter``), or ``"error"`` (an in-stream
  ``error`` event and nothing after it), each placed after the image call like the paid-but-broken cases;
- ``queued``: a ``response.queued`` event (status ``queued``) before ``response.in_progress``, as background
  responses send.
"""

from __future__ import annotations

import copy
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["StreamShape", "obfuscation_for", "shape_body", "shape_stream"]

_ALNUM = string.ascii_letters + string.digits
_WORDS = re.compile(r"\s*\S+")


@dataclass(frozen=True, slots=True)
class StreamShape:
    """How a planned stream deviates from the plain OpenAI sequence."""

    style: Literal["openai", "azure"] = "openai"
    ending: Literal["completed", "failed", "incomplete", "error"] = "completed"
    incomplete_reason: Literal["max_output_tokens", "content_filter"] = "max_output_tokens"
    error_code: str = "server_error"
    error_message: str = "The server had an error while processing your request."
    queued: bool = False
    keep_image: bool = True
    """With an early ending: whether the image call finished first (paid) or the response ended before it."""


def obfuscation_for(delta: str) -> str:
    """Random padding so that ``len(delta) + len(padding)`` is the next multiple of 16 (at least one char)."""
    size = 16 - len(delta) % 16
    return "".join(secrets.choice(_ALNUM) for _ in range(size))


def _split_text_deltas(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for event in events:
        if event.get("type") == "response.output_text.delta" and len(str(event.get("delta", ""))) > 1:
            for word in _WORDS.findall(str(event["delta"])):
                out.append({**event, "delta": word})
        else:
            out.append(dict(event))
    return out


def _image_items_generating(response: dict[str, Any]) -> None:
    for item in response.get("output") or []:
        if item.get("type") == "image_generation_call" and item.get("status") == "completed":
            item["status"] = "generating"


def shape_stream(
    events: Sequence[Mapping[str, Any]], shape: StreamShape, *, request: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The events a server of ``shape`` sends for ``events`` (a fresh list; the input is not changed)."""
    options = request.get("stream_options")
    obfuscate = not (isinstance(options, Mapping) and options.get("include_obfuscation") is False)
    out = _split_text_deltas(copy.deepcopy(list(events)))
    if shape.style == "azure":
        shaped = []
        for event in out:
            kind = event.get("type")
            if kind == "response.image_generation_call.completed":
                continue
            item = event.get("item")
            if (
                kind == "response.output_item.done"
                and isinstance(item, dict)
                and item.get("type") == "image_generation_call"
                and item.get("status") == "completed"
            ):
                item["status"] = "generating"
            if kind == "response.completed":
                _image_items_generating(event["response"])
            shaped.append(event)
        out = shaped
    if shape.queued and out and out[0].get("type") == "response.created":
        queued = copy.deepcopy(out[0])
        queued["type"] = "response.queued"
        queued["response"]["status"] = "queued"
        out[0]["response"]["status"] = "queued"
        out.insert(1, queued)
    if shape.ending != "completed":
        out = _end_early(out, shape)
    if obfuscate:
        for event in out:
            if str(event.get("type", "")).endswith(".delta") and isinstance(event.get("delta"), str):
                event["obfuscation"] = obfuscation_for(event["delta"])
    return out


def _end_early(events: list[dict[str, Any]], shape: StreamShape) -> list[dict[str, Any]]:
    """Cut the stream after the image call's ``output_item.done`` and end it as ``shape.ending`` says."""
    final = next((e for e in events if e.get("type") == "response.completed"), None)
    cut = len(events) - 1
    for index, event in enumerate(events):
        item = event.get("item")
        is_image = isinstance(item, Mapping) and item.get("type") == "image_generation_call"
        if is_image and event.get("type") == "response.output_item.done" and shape.keep_image:
            cut = index + 1
        elif is_image and event.get("type") == "response.output_item.added" and not shape.keep_image:
            cut = index
            break
    kept = events[:cut]
    if shape.ending == "error":
        kept.append({"type": "error", "code": shape.error_code, "message": shape.error_message, "param": None})
        return kept
    if final is None:
        return kept
    response = copy.deepcopy(final["response"])
    produced = {
        str(e["item"].get("id"))
        for e in kept
        if e.get("type") == "response.output_item.done" and isinstance(e.get("item"), Mapping)
    }
    response["output"] = [item for item in response.get("output") or [] if str(item.get("id")) in produced]
    response["completed_at"] = None
    if shape.ending == "failed":
        response["status"] = "failed"
        response["error"] = {"code": shape.error_code, "message": shape.error_message}
        kept.append({"type": "response.failed", "response": response})
    else:
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": shape.incomplete_reason}
        kept.append({"type": "response.incomplete", "response": response})
    return kept


def shape_body(body: Mapping[str, Any], shape: StreamShape) -> dict[str, Any]:
    """The non-streaming body (and the stored response) of a server of ``shape``. The recorded Azure body is
    completed like OpenAI's; an early ending keeps the items produced up to the image call."""
    out = copy.deepcopy(dict(body))
    if shape.ending == "completed":
        return out
    output = out.get("output") or []
    images = [i for i, item in enumerate(output) if item.get("type") == "image_generation_call"]
    if shape.keep_image:
        out["output"] = output[: (images[-1] + 1) if images else len(output)]
    else:
        out["output"] = output[: images[0]] if images else output
    out["completed_at"] = None
    if shape.ending == "incomplete":
        out["status"] = "incomplete"
        out["incomplete_details"] = {"reason": shape.incomplete_reason}
    else:
        out["status"] = "failed"
        out["error"] = {"code": shape.error_code, "message": shape.error_message}
    return out
