"""The emulated server's own option rules: what the fake API accepts, with its own data (``api_rules.toml``).

The emulator is a model of the *server*, so it never validates with the client's capability table: a table error
would otherwise be invisible to every emulator test. These rules decide, from their own data, whether an
``image_generation`` tool (or an Images API form) is refused, and with which error body: the real shape
(``type: image_generation_user_error``, ``code: invalid_value``, the API's "Invalid value: ... Supported values
are: ..." wording). Tests switch any answer to play a given real API: ``rules.refuse("input_fidelity", "high",
model="gpt-image-2.5-sunburst")`` or ``rules.accept("output_format", "gif", model="gpt-image-2.5-flare")``.
"""

from __future__ import annotations

import datetime
import os
import re
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["ApiRules", "RuleViolation"]

#: The environment variable the package also reads (``imagegen_tool.capabilities.TODAY_ENV``; read here on its own:
#: the emulator shares no code with the client's table): an ISO date used instead of today's for lifecycle rules.
TODAY_ENV = "IMAGEGEN_TODAY"


def current_date() -> datetime.date:
    """Today in UTC, or the date in ``$IMAGEGEN_TODAY`` (a test suite's pinned date); an unreadable value raises."""
    pinned = os.environ.get(TODAY_ENV)
    if pinned:
        try:
            return datetime.date.fromisoformat(pinned.strip())
        except ValueError:
            raise ValueError(
                f"{TODAY_ENV}={pinned!r} is not a date; use the ISO form YYYY-MM-DD, or unset it"
            ) from None
    return datetime.datetime.now(datetime.UTC).date()


# What the SDK's types allow (the server refuses anything else as an invalid value whatever the model).
_ENUMS: dict[str, tuple[str, ...]] = {
    "action": ("generate", "edit", "auto"),
    "background": ("transparent", "opaque", "auto"),
    "quality": ("low", "medium", "high", "xhigh", "max", "auto"),
    "output_format": ("png", "webp", "jpeg", "gif", "svg"),
    "moderation": ("auto", "low"),
    "complexity": ("low", "medium", "high"),
    "input_fidelity": ("high", "low"),
}
_INTS: dict[str, tuple[int, int]] = {
    "partial_images": (0, 3),
    "output_compression": (0, 100),
    "frame_count": (2, 16),
    "frame_duration_ms": (1, 655_350),
}
_TOOL_KEYS = frozenset(
    {"type", "model", "size", "input_image_mask", "svg", "frame_count", "frame_duration_ms"} | set(_ENUMS) | set(_INTS)
)
_SVG_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SIZE = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")


@dataclass(frozen=True, slots=True)
class RuleViolation(Exception):
    """A refusal in the API's error shape."""

    status: int
    message: str
    param: str | None
    code: str
    type: str = "image_generation_user_error"


@cache
def _data() -> dict[str, Any]:
    return tomllib.loads(resources.files(__package__).joinpath("api_rules.toml").read_text("utf-8"))


def _supported(values: tuple[str, ...] | list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


class ApiRules:
    """The rules one emulator applies; thread-safe; overrides last until :meth:`reset`."""

    def __init__(self, *, today: datetime.date | None = None) -> None:
        self._lock = threading.Lock()
        self._overrides: dict[tuple[str, str, str], str | None] = {}
        self.today = today
        if today is None:
            current_date()  # an unreadable $IMAGEGEN_TODAY fails the emulator's start, not each request with a 500

    # -- switches --------------------------------------------------------------------------------------------

    def refuse(self, field: str, value: str = "*", *, model: str = "*", message: str | None = None) -> None:
        """From now on refuse ``field=value`` (``"*"``: any value) for ``model`` (``"*"``: every model)."""
        with self._lock:
            self._overrides[(model, field, str(value))] = message or ""

    def accept(self, field: str, value: str = "*", *, model: str = "*") -> None:
        """From now on accept ``field=value`` for ``model`` even where the rules data refuses it."""
        with self._lock:
            self._overrides[(model, field, str(value))] = None

    def reset(self) -> None:
        with self._lock:
            self._overrides.clear()

    def _override(self, model: str, field: str, value: str) -> tuple[bool, str | None] | None:
        with self._lock:
            for key in ((model, field, value), (model, field, "*"), ("*", field, value), ("*", field, "*")):
                if key in self._overrides:
                    message = self._overrides[key]
                    return (message is None, message or None)
        return None

    # -- checks ----------------------------------------------------------------------------------------------

    def check_tool(self, tool: Mapping[str, Any], *, prefix: str, input_count: int = 0) -> None:
        """Refuse an ``image_generation`` tool (or Images API parameters) the emulated API would refuse."""
        data = _data()

        def param(name: str) -> str:
            return f"{prefix}.{name}" if prefix else name

        for key in tool:
            if key not in _TOOL_KEYS:
                raise RuleViolation(
                    400, f"Unknown parameter: '{param(key)}'.", param(key), "unknown_parameter", "invalid_request_error"
                )
        model = tool.get("model") or data["server"]["default_model"]
        if not isinstance(model, str):
            raise RuleViolation(
                400, f"Invalid type for '{param('model')}': expected a string.", param("model"), "invalid_type"
            )
        entry = data["models"].get(model)
        today = self.today or current_date()
        if entry is not None and entry.get("shutdown") is not None and today >= entry["shutdown"]:
            raise RuleViolation(
                400,
                f"The model `{model}` does not exist or you do not have access to it.",
                param("model"),
                "model_not_found",
                "invalid_request_error",
            )
        family = data["families"].get(entry["family"], {}) if entry is not None else {}
        for field, allowed in _ENUMS.items():
            value = tool.get(field)
            if value is None:
                continue
            if value not in allowed:
                self._invalid(param(field), value, allowed)
            family_allowed = family.get(field) if entry is not None else None
            self._decide(model, field, str(value), param(field), family_allowed, allowed)
        for field, (low, high) in _INTS.items():
            value = tool.get(field)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise RuleViolation(
                    400,
                    f"Invalid value for '{param(field)}': {value!r}. Expected an integer between {low} and {high}.",
                    param(field),
                    "invalid_value",
                )
            self._decide(model, field, str(value), param(field), None, ())
        self._check_size(tool, model, family, param)
        self._check_combinations(tool, param, input_count)

    def _decide(
        self,
        model: str,
        field: str,
        value: str,
        name: str,
        family_allowed: list[str] | None,
        domain: tuple[str, ...],
    ) -> None:
        override = self._override(model, field, value)
        if override is not None:
            accepted, message = override
            if not accepted:
                if message:
                    raise RuleViolation(400, message, name, "invalid_value")
                supported = [v for v in (family_allowed or domain) if v != value]
                self._invalid(name, value, supported, model=model)
            return
        if family_allowed is not None and value not in family_allowed:
            if not family_allowed:
                raise RuleViolation(
                    400,
                    f"Invalid value: '{value}'. '{name}' is not supported with model '{model}'; omit it.",
                    name,
                    "invalid_value",
                )
            self._invalid(name, value, family_allowed, model=model)

    @staticmethod
    def _invalid(name: str, value: object, supported: Any, *, model: str | None = None) -> None:
        shown = value if isinstance(value, str) else repr(value)
        suffix = f" with model '{model}'" if model else ""
        raise RuleViolation(
            400,
            f"Invalid value: '{shown}'. Supported values are: {_supported(tuple(supported))}{suffix}.",
            name,
            "invalid_value",
        )

    def _check_size(self, tool: Mapping[str, Any], model: str, family: Mapping[str, Any], param: Any) -> None:
        size = tool.get("size")
        if size is None:
            return
        name = param("size")
        match = _SIZE.fullmatch(size) if isinstance(size, str) else None
        if size != "auto" and match is None:
            raise RuleViolation(
                400,
                f"Invalid value: '{size}'. Expected 'auto' or a size of the form WIDTHxHEIGHT.",
                name,
                "invalid_value",
            )
        override = self._override(model, "size", str(size))
        if override is not None:
            if not override[0]:
                raise RuleViolation(
                    400, override[1] or f"Invalid value: '{size}'. Unsupported size.", name, "invalid_value"
                )
            return
        if not family or size == "auto":
            return
        width, height = int(match.group(1)), int(match.group(2))  # type: ignore[union-attr]
        if tool.get("output_format") == "gif":  # GIF sizes are per frame, on one sprite sheet
            sheet = family.get("gif_sheet") or _data()["server"]["gif_sheet"]
            self._check_gif_sheet(width, height, tool.get("frame_count"), sheet, name)
            return
        if size in family.get("sizes", ()):
            return
        rule = family.get("custom_size")
        if rule is None:
            raise RuleViolation(
                400,
                f"Invalid value: '{size}'. Supported values are: {_supported(family.get('sizes', ()))}.",
                name,
                "invalid_value",
            )
        long_edge, short_edge, pixels = max(width, height), min(width, height), width * height
        problem = None
        if width % rule["multiple"] or height % rule["multiple"]:
            problem = f"width and height must be multiples of {rule['multiple']}"
        elif long_edge > rule["max_aspect"] * short_edge:
            problem = "the aspect ratio must be between 1:3 and 3:1"
        elif long_edge > rule["max_edge"]:
            problem = f"the longest edge must be at most {rule['max_edge']}px"
        elif not rule["min_pixels"] <= pixels <= rule["max_pixels"]:
            problem = f"the total pixel count must be between {rule['min_pixels']} and {rule['max_pixels']}"
        if problem:
            raise RuleViolation(400, f"Invalid value: '{size}'. Invalid size: {problem}.", name, "invalid_value")

    @staticmethod
    def _check_gif_sheet(width: int, height: int, frames: object, sheet: Mapping[str, Any], name: str) -> None:
        count = frames if isinstance(frames, int) else sheet["default_frames"]
        columns, rows = (
            (count, 1) if count <= 4 else (4, 2) if count <= 8 else (3, 3) if count == 9 else (4, (count + 3) // 4)
        )
        sheet_w, sheet_h = width * columns, height * rows
        if (
            width % sheet["frame_multiple"]
            or height % sheet["frame_multiple"]
            or max(sheet_w, sheet_h) > sheet["max_edge"]
            or sheet_w * sheet_h > sheet["max_pixels"]
        ):
            raise RuleViolation(
                400,
                f"Invalid value: '{width}x{height}'. Size too large for this frame count: {count} frames make a "
                f"{sheet_w}x{sheet_h} sheet (at most {sheet['max_edge']}px per edge and {sheet['max_pixels']} pixels).",
                name,
                "invalid_value",
            )

    @staticmethod
    def _check_combinations(tool: Mapping[str, Any], param: Any, input_count: int) -> None:
        fmt = tool.get("output_format") or "png"
        if tool.get("background") == "transparent" and fmt not in ("png", "webp"):
            raise RuleViolation(
                400,
                "Invalid value: 'transparent'. Transparent backgrounds require output_format 'png' or 'webp', "
                f"not '{fmt}'.",
                param("background"),
                "invalid_value",
            )
        compression = tool.get("output_compression")
        if compression not in (None, 100) and fmt not in ("jpeg", "webp"):
            raise RuleViolation(
                400,
                f"Invalid value: {compression}. output_compression is only supported with 'jpeg' and 'webp'.",
                param("output_compression"),
                "invalid_value",
            )
        if fmt in ("gif", "svg") and tool.get("partial_images"):
            raise RuleViolation(
                400,
                f"Invalid value: {tool['partial_images']}. Partial images are not supported with {fmt} output.",
                param("partial_images"),
                "invalid_value",
            )
        if fmt == "gif" and tool.get("input_image_mask") is not None:
            raise RuleViolation(
                400, "GIF output does not support input_image_mask.", param("input_image_mask"), "invalid_value"
            )
        for key in ("frame_count", "frame_duration_ms"):
            if tool.get(key) is not None and fmt != "gif":
                raise RuleViolation(400, f"'{param(key)}' requires output_format 'gif'.", param(key), "invalid_value")
        svg = tool.get("svg")
        if svg is not None:
            if fmt != "svg":
                raise RuleViolation(
                    400, f"'{param('svg')}' requires output_format 'svg'.", param("svg"), "invalid_value"
                )
            if not isinstance(svg, Mapping) or set(svg) - {"model", "reasoning"}:
                raise RuleViolation(
                    400, f"Invalid value for '{param('svg')}'.", param("svg"), "invalid_value", "invalid_request_error"
                )
            reasoning = svg.get("reasoning")
            if reasoning is not None and (
                not isinstance(reasoning, Mapping) or reasoning.get("effort") not in _SVG_EFFORTS
            ):
                raise RuleViolation(
                    400,
                    f"Invalid value. Supported values are: {_supported(_SVG_EFFORTS)}.",
                    param("svg.reasoning.effort"),
                    "invalid_value",
                )
        mask = tool.get("input_image_mask")
        if mask is not None and (
            not isinstance(mask, Mapping)
            or set(mask) - {"file_id", "image_url"}
            or ("file_id" in mask) == ("image_url" in mask)
        ):
            raise RuleViolation(
                400,
                f"Invalid value for '{param('input_image_mask')}': give exactly one of file_id or image_url.",
                param("input_image_mask"),
                "invalid_value",
                "invalid_request_error",
            )
        limit = int(_data()["server"]["max_input_images"])
        if input_count > limit:
            raise RuleViolation(
                400, f"Too many input images: {input_count}. At most {limit} are supported.", "input", "invalid_value"
            )
