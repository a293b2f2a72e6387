"""The JSON the emulator sends: ids, error bodies, Responses API objects and stream events, Images API bodies.

Pure functions shaped after the recorded OpenAI traffic in ``shared/fixtures/openai-recorded`` and the
installed SDK's types (which are newer than the recordings: ``tool_usage``, ``action``, ``error`` on image
calls). Key order follows the recordings, so a dumped emulator response reads like a real one.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import secrets
import string
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FunctionCall",
    "ImageCall",
    "ResponseDraft",
    "Usage",
    "encrypted_reasoning",
    "error_body",
    "file_id",
    "function_call_id",
    "function_call_item",
    "image_call_item",
    "image_tool_usage",
    "images_response",
    "images_usage",
    "is_reasoning_model",
    "message_item",
    "new_id",
    "reasoning_item",
    "request_id",
    "response_events",
    "response_object",
    "revise_prompt",
    "sse",
    "tool_echo",
]

_ALNUM = string.ascii_letters + string.digits

# Output tokens of one image at 1024x1024 per quality (the published GPT Image figures), scaled by area.
_IMAGE_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 6240, "max": 8320}

# Defaults the API fills into the echoed image_generation tool (see the recordings' `tools`).
_TOOL_DEFAULTS: dict[str, Any] = {
    "background": "auto",
    "moderation": "auto",
    "n": 1,
    "output_compression": 100,
    "output_format": "png",
    "quality": "auto",
    "size": "auto",
}


def new_id(prefix: str, group: str | None = None) -> str:
    """An id like the API's: ``prefix_`` + 50 hex digits.

    Real ids of one response share their first 18 digits, then carry the creation time in hex; ``group``
    (the 18-digit part) reproduces that for the items of one response.
    """
    head = group if group is not None else secrets.token_hex(9)
    return f"{prefix}_{head}{int(time.time()):08x}{secrets.token_hex(12)}"


def id_group(response_id: str) -> str:
    """The shared 18-digit part of a response id, for :func:`new_id`'s ``group``."""
    return response_id.partition("_")[2][:18]


def file_id() -> str:
    """``file-`` + 22 letters and digits, like the Files API."""
    return "file-" + "".join(secrets.choice(_ALNUM) for _ in range(22))


def request_id() -> str:
    return "req_" + secrets.token_hex(16)


def error_body(
    message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The API's error JSON: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def sse(event: Mapping[str, Any]) -> bytes:
    """One server-sent event as the API frames it: ``event:`` line with the type, then ``data:``."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def is_reasoning_model(model: str) -> bool:
    """Whether the text model reasons (its output starts with a ``reasoning`` item), like gpt-5 and o-series."""
    name = model.lower()
    return name.startswith(("gpt-5", "o1", "o3", "o4"))


def revise_prompt(prompt: str, *, edit: bool) -> str:
    """The deterministic stand-in for the model's prompt rewriting."""
    text = " ".join(prompt.split()).rstrip(".") or "An image"
    if edit:
        return f"{text}. Keep the composition, lighting and subject of the input image; change only what is asked."
    return f"{text}. Balanced composition, soft natural lighting, crisp detail, no text or watermark."


def tool_echo(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The ``image_generation`` tool as the response echoes it: API defaults filled, ``null``s dropped.

    ``auto`` stays ``auto`` here; the resolved values are on the ``image_generation_call`` item.
    """
    echo: dict[str, Any] = {"type": "image_generation"}
    keys = sorted(set(_TOOL_DEFAULTS) | {k for k in tool if k not in ("type", "partial_images")})
    for key in keys:
        value = tool.get(key, _TOOL_DEFAULTS.get(key))
        if value is not None:
            echo[key] = value
    return echo


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of the text model for one response."""

    input_tokens: int
    output_tokens: int
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


def estimate_tokens(text: str) -> int:
    """Roughly one token per four characters, like the tokenizers on English text."""
    return max(1, math.ceil(len(text) / 4))


def image_output_tokens(quality: str, width: int, height: int, model: str | None = None) -> int:
    """One image's output tokens by the emulator's own usage rules (``api_rules.toml`` ``[usage]``): the model's
    published count for a standard size, else the default 1024x1024 count scaled by area."""
    rules = _usage_rules()
    name = rules.get("aliases", {}).get(model, model) if model else None
    table = rules.get("models", {}).get(name) if name else None
    counts = (table or {}).get(f"{width}x{height}")
    if counts and quality in counts:
        return int(counts[quality])
    default = rules.get("default", {}).get("1024x1024") or _IMAGE_TOKENS_1024
    per_image = default.get(quality, default["medium"])
    return max(1, round(per_image * width * height / (1024 * 1024)))


@functools.cache
def _usage_rules() -> dict[str, Any]:
    from importlib import resources

    text = resources.files("imagegen_tool.testing").joinpath("api_rules.toml").read_text("utf-8")
    usage: dict[str, Any] = tomllib.loads(text).get("usage", {})
    return usage


def images_usage(
    *,
    prompt: str,
    quality: str,
    width: int,
    height: int,
    n: int,
    input_images: int,
    model: str | None = None,
    partials: int = 0,
) -> dict[str, Any]:
    """The Images API ``usage`` object (also the Responses ``tool_usage.image_gen`` core). Each streamed partial
    image adds the rules' ``partial_image_tokens`` of output."""
    rules = _usage_rules()
    text_tokens = estimate_tokens(prompt)
    image_tokens = int(rules.get("input_image_tokens", 323)) * input_images
    partial_tokens = int(rules.get("partial_image_tokens", 100)) * partials
    output = image_output_tokens(quality, width, height, model) * n + partial_tokens
    return {
        "input_tokens": text_tokens + image_tokens,
        "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text_tokens},
        "output_tokens": output,
        "total_tokens": text_tokens + image_tokens + output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
    }


def image_tool_usage(calls: Sequence[ImageCall]) -> dict[str, Any]:
    """The response's ``tool_usage``: image generation tokens summed over the calls; no web searches."""
    total = {"input_tokens": 0, "text": 0, "image": 0, "output_tokens": 0}
    for call in calls:
        if call.usage is None:
            continue
        total["input_tokens"] += call.usage["input_tokens"]
        total["text"] += call.usage["input_tokens_details"]["text_tokens"]
        total["image"] += call.usage["input_tokens_details"]["image_tokens"]
        total["output_tokens"] += call.usage["output_tokens"]
    return {
        "image_gen": {
            "input_tokens": total["input_tokens"],
            "input_tokens_details": {"image_tokens": total["image"], "text_tokens": total["text"]},
            "output_tokens": total["output_tokens"],
            "total_tokens": total["input_tokens"] + total["output_tokens"],
            "output_tokens_details": {"image_tokens": total["output_tokens"], "text_tokens": 0},
        },
        "web_search": {"num_requests": 0},
    }


@dataclass(frozen=True, slots=True)
class ImageCall:
    """One ``image_generation_call`` of a response, with its resolved options and its result.

    ``partials`` are the base64 partial images streamed before the result; ``error`` is set (and ``result``
    ``None``) when moderation blocked the call.
    """

    id: str
    action: str
    background: str
    output_format: str
    quality: str
    size: str
    revised_prompt: str
    result: str | None
    partials: tuple[str, ...] = ()
    error: Mapping[str, Any] | None = None
    usage: Mapping[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def reasoning_item(item_id: str, encrypted_content: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
    if encrypted_content is not None:
        item["encrypted_content"] = encrypted_content
    return item


def encrypted_reasoning() -> str:
    """An opaque stand-in for ``include=["reasoning.encrypted_content"]`` (the real one is Fernet-like)."""
    return "gAAAAA" + base64.urlsafe_b64encode(secrets.token_bytes(96)).decode()


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A call of one of the request's function tools (the emulated model's only other move)."""

    id: str
    call_id: str
    name: str
    arguments: str = "{}"


def function_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ALNUM) for _ in range(24))


def function_call_item(call: FunctionCall, *, status: str = "completed") -> dict[str, Any]:
    arguments = "" if status == "in_progress" else call.arguments
    return {
        "id": call.id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call.call_id,
        "name": call.name,
    }


def image_call_item(call: ImageCall, *, status: str | None = None) -> dict[str, Any]:
    """The ``image_generation_call`` output item; ``status="in_progress"`` gives the bare ``added`` form."""
    if status == "in_progress":
        return {"id": call.id, "type": "image_generation_call", "status": "in_progress"}
    item: dict[str, Any] = {
        "id": call.id,
        "type": "image_generation_call",
        "status": "failed" if call.failed else "completed",
        "action": call.action,
        "background": call.background,
        "output_format": call.output_format,
        "quality": call.quality,
        "result": call.result,
        "revised_prompt": call.revised_prompt,
        "size": call.size,
    }
    if call.error is not None:
        item["error"] = dict(call.error)
    return item


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(item_id: str, text: str, *, status: str = "completed") -> dict[str, Any]:
    content = [] if status == "in_progress" else [_output_text(text)]
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


@dataclass(frozen=True, slots=True)
class ResponseDraft:
    """Everything that makes up one response, before it is rendered as JSON or as stream events."""

    id: str
    created_at: int
    request: Mapping[str, Any]
    reasoning_id: str | None
    calls: tuple[ImageCall, ...]
    message_id: str | None
    message_text: str
    usage: Usage
    function_call: FunctionCall | None = None
    reasoning_encrypted: str | None = None
    reasoning_after_id: str | None = None
    """A reasoning model thinks again after the image call (the recorded body: reasoning, image call,
    reasoning, message)."""

    def output(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if self.reasoning_id is not None:
            items.append(reasoning_item(self.reasoning_id, self.reasoning_encrypted))
        items += [image_call_item(call) for call in self.calls]
        if self.reasoning_after_id is not None:
            items.append(reasoning_item(self.reasoning_after_id, self.reasoning_encrypted))
        if self.function_call is not None:
            items.append(function_call_item(self.function_call))
        if self.message_id is not None:
            items.append(message_item(self.message_id, self.message_text))
        return items


def response_object(draft: ResponseDraft, *, final: bool) -> dict[str, Any]:
    """The ``response`` object: the in-progress form (empty output, no usage) or the completed one."""
    req = draft.request
    model = str(req.get("model", ""))
    reasoning_request = req.get("reasoning") if isinstance(req.get("reasoning"), Mapping) else {}
    assert isinstance(reasoning_request, Mapping)
    effort = reasoning_request.get("effort") or ("medium" if is_reasoning_model(model) else None)
    text_request = req.get("text") if isinstance(req.get("text"), Mapping) else {}
    assert isinstance(text_request, Mapping)
    service_tier = req.get("service_tier") or "auto"
    tools = [tool_echo(t) if t.get("type") == "image_generation" else dict(t) for t in _tools(req)]
    return {
        "id": draft.id,
        "object": "response",
        "created_at": draft.created_at,
        "status": "completed" if final else "in_progress",
        "background": bool(req.get("background", False)),
        "billing": {"payer": "developer"},
        "completed_at": (draft.created_at + 1) if final else None,
        "error": None,
        "incomplete_details": None,
        "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"),
        "max_tool_calls": req.get("max_tool_calls"),
        "model": model,
        "output": draft.output() if final else [],
        "parallel_tool_calls": req.get("parallel_tool_calls", True),
        "previous_response_id": req.get("previous_response_id"),
        "prompt_cache_key": req.get("prompt_cache_key"),
        "prompt_cache_retention": req.get("prompt_cache_retention"),
        "reasoning": {"effort": effort, "summary": reasoning_request.get("summary")},
        "safety_identifier": req.get("safety_identifier"),
        "service_tier": ("default" if service_tier == "auto" else service_tier) if final else service_tier,
        "store": req.get("store", True) is not False,
        "temperature": req.get("temperature", 1),
        "text": {"format": {"type": "text"}, "verbosity": "medium", **text_request},
        "tool_choice": req.get("tool_choice", "auto"),
        "tools": tools,
        "top_logprobs": req.get("top_logprobs", 0),
        "top_p": req.get("top_p", 1),
        "truncation": req.get("truncation", "disabled"),
        "usage": draft.usage.to_wire() if final else None,
        "tool_usage": image_tool_usage(draft.calls) if final else None,
        "user": req.get("user"),
        "metadata": req.get("metadata") or {},
    }


def _tools(request: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tools = request.get("tools") or []
    return [t for t in tools if isinstance(t, Mapping)]


def response_events(draft: ResponseDraft) -> list[dict[str, Any]]:
    """The stream of a response, event by event, in the order the API sends them (without sequence numbers:
    the server numbers what it actually sends)."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response_object(draft, final=False)},
        {"type": "response.in_progress", "response": response_object(draft, final=False)},
    ]
    index = 0
    if draft.reasoning_id is not None:
        item = reasoning_item(draft.reasoning_id, draft.reasoning_encrypted)
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        index += 1
    for call in draft.calls:
        ref = {"output_index": index, "item_id": call.id}
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": image_call_item(call, status="in_progress"),
            }
        )
        events.append({"type": "response.image_generation_call.in_progress", **ref})
        if not call.failed:
            events.append({"type": "response.image_generation_call.generating", **ref})
            for number, partial in enumerate(call.partials):
                events.append(
                    {
                        "type": "response.image_generation_call.partial_image",
                        **ref,
                        "partial_image_index": number,
                        "partial_image_b64": partial,
                        "size": call.size,
                        "quality": call.quality,
                        "background": call.background,
                        "output_format": call.output_format,
                    }
                )
            events.append({"type": "response.image_generation_call.completed", **ref})
        events.append({"type": "response.output_item.done", "output_index": index, "item": image_call_item(call)})
        index += 1
    if draft.reasoning_after_id is not None:
        item = reasoning_item(draft.reasoning_after_id, draft.reasoning_encrypted)
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        index += 1
    if draft.function_call is not None:
        events += _function_call_events(draft.function_call, index)
        index += 1
    if draft.message_id is not None:
        events += _message_events(draft.message_id, draft.message_text, index)
    events.append({"type": "response.completed", "response": response_object(draft, final=True)})
    return events


def _function_call_events(call: FunctionCall, index: int) -> list[dict[str, Any]]:
    ref = {"item_id": call.id, "output_index": index}
    return [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": function_call_item(call, status="in_progress"),
        },
        {"type": "response.function_call_arguments.delta", **ref, "delta": call.arguments},
        {"type": "response.function_call_arguments.done", **ref, "arguments": call.arguments},
        {"type": "response.output_item.done", "output_index": index, "item": function_call_item(call)},
    ]


def _message_events(message_id: str, text: str, index: int) -> list[dict[str, Any]]:
    text_ref = {"item_id": message_id, "output_index": index, "content_index": 0}
    events: list[dict[str, Any]] = [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": message_item(message_id, "", status="in_progress"),
        },
        {"type": "response.content_part.added", **text_ref, "part": _output_text("")},
    ]
    if text:
        events.append({"type": "response.output_text.delta", **text_ref, "delta": text, "logprobs": []})
    events += [
        {"type": "response.output_text.done", **text_ref, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **text_ref, "part": _output_text(text)},
        {"type": "response.output_item.done", "output_index": index, "item": message_item(message_id, text)},
    ]
    return events


def images_response(
    *,
    created: int,
    images: Sequence[str],
    background: str,
    output_format: str,
    quality: str,
    size: str,
    usage: Mapping[str, Any],
) -> dict[str, Any]:
    """The Images API body (``POST /v1/images/generations`` and ``/edits``)."""
    return {
        "created": created,
        "background": background,
        "data": [{"b64_json": image} for image in images],
        "output_format": output_format,
        "quality": quality,
        "size": size,
        "usage": dict(usage),
    }
