"""The per-model capability table (``models.toml``), loaded once into typed values.

Validation in :mod:`imagegen_tool.options` and the LangChain schema generation both read this table, so a
model change is a data change. Unknown model names have no entry: callers get ``None`` and check types only.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CustomSizeRule",
    "GeneralRules",
    "ModelCapabilities",
    "capabilities_for",
    "default_image_model",
    "general_rules",
    "known_models",
]


class CustomSizeRule(BaseModel):
    """Limits on arbitrary ``WIDTHxHEIGHT`` sizes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    multiple: int = 16
    max_aspect: float = 3.0
    max_long_edge: int = 3840
    max_short_edge: int = 2160
    min_pixels: int | None = None
    max_pixels: int | None = None

    def describe(self) -> str:
        return (
            f"WIDTHxHEIGHT with both edges divisible by {self.multiple}, aspect ratio between "
            f"1:{self.max_aspect:g} and {self.max_aspect:g}:1, at most "
            f"{self.max_long_edge}x{self.max_short_edge} (either orientation)"
        )


class ModelCapabilities(BaseModel):
    """What one image model accepts. ``None`` for a field means every value the SDK type allows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    retired: str | None = None
    replaced_by: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    auto_size: bool = True
    custom_size: CustomSizeRule | None = None
    quality: tuple[str, ...] | None = None
    background: tuple[str, ...] | None = None
    output_format: tuple[str, ...] | None = None
    moderation: tuple[str, ...] | None = None
    complexity: tuple[str, ...] | None = None
    input_fidelity: tuple[str, ...] | None = None

    def allowed_values(self, field: str) -> tuple[str, ...] | None:
        """The values this model accepts for an enum-like field, or ``None`` when the table does not limit it."""
        value = getattr(self, field, None)
        return value if isinstance(value, tuple) else None

    def describe_sizes(self) -> str:
        parts = list(self.sizes)
        if self.auto_size:
            parts.append("auto")
        text = ", ".join(parts)
        if self.custom_size is not None:
            text += f", or any {self.custom_size.describe()}"
        return text


class GeneralRules(BaseModel):
    """Cross-field rules that hold for every known model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha_formats: tuple[str, ...]
    compression_formats: tuple[str, ...]
    default_compression: int
    gif_frame_count: tuple[int, int]
    gif_frame_duration_ms: tuple[int, int]


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True)

    default_model: str
    models: dict[str, ModelCapabilities] = Field(default_factory=dict)
    rules: GeneralRules


@cache
def _table() -> _Table:
    raw = tomllib.loads(resources.files(__package__).joinpath("models.toml").read_text("utf-8"))
    entries: dict[str, dict[str, Any]] = raw["models"]
    models: dict[str, ModelCapabilities] = {}
    for name, entry in entries.items():
        base = entry
        seen = {name}
        while "alias_of" in base:
            target = base["alias_of"]
            if target in seen or target not in entries:
                raise ValueError(f"models.toml: bad alias_of chain at {name!r}")
            seen.add(target)
            base = {**entries[target], **{k: v for k, v in base.items() if k != "alias_of"}}
        models[name] = ModelCapabilities(name=name, **base)
    return _Table(default_model=raw["defaults"]["model"], models=models, rules=GeneralRules(**raw["rules"]))


def capabilities_for(model: str) -> ModelCapabilities | None:
    """The capabilities of ``model``, or ``None`` for a model the table does not know."""
    return _table().models.get(model)


def known_models() -> tuple[str, ...]:
    """Every model name in the table, retired ones included."""
    return tuple(_table().models)


def default_image_model() -> str:
    """The image model used when none is configured (the API's own default, per the SDK)."""
    return _table().default_model


def general_rules() -> GeneralRules:
    return _table().rules
