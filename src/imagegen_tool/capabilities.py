"""The per-model capability table (``models.toml``), loaded once into typed values with the evidence of each fact.

Every fact in the table says whether a model *accepts*, *refuses* or has an *unknown* answer for some values of
one field, and names its evidence (the installed SDK's docstrings, an OpenAI page, a third-party source, or
nothing verified) with the date it was checked. Validation in :mod:`imagegen_tool.options` reads the table
through :meth:`ModelCapabilities.status`, so a model change is a data change, and the generated docs page
(:mod:`imagegen_tool.capabilities_doc`) shows users what is known and what is a guess. Unknown model names have
no entry: callers get ``None`` and check types only.
"""

from __future__ import annotations

import datetime
import os
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigurationError

__all__ = [
    "EVIDENCE_KINDS",
    "FIELD_VALUES",
    "TODAY_ENV",
    "CustomSizeRule",
    "Evidence",
    "EvidenceKind",
    "Fact",
    "GeneralRules",
    "GifSheetRule",
    "ModelCapabilities",
    "Status",
    "ValidationMode",
    "Verdict",
    "all_evidence",
    "capabilities_for",
    "current_date",
    "default_image_model",
    "evidence",
    "general_rules",
    "known_models",
    "offered_models",
]

EvidenceKind = Literal["sdk", "openai-docs", "third-party", "unverified"]
EVIDENCE_KINDS: tuple[EvidenceKind, ...] = ("sdk", "openai-docs", "third-party", "unverified")
Status = Literal["accepts", "refuses", "unknown"]
#: ``"strict"``: refuse what the table does not positively know; ``"known"`` (default): refuse only what evidence
#: says the API refuses, send the unknown; ``"off"``: type checks only, the API decides.
ValidationMode = Literal["strict", "known", "off"]
VALIDATION_MODES: tuple[ValidationMode, ...] = ("strict", "known", "off")

#: Every value the SDK's types allow per enum-like field (the domain the table's facts are about).
FIELD_VALUES: dict[str, tuple[str, ...]] = {
    "action": ("generate", "edit", "auto"),
    "background": ("transparent", "opaque", "auto"),
    "quality": ("low", "medium", "high", "xhigh", "max", "auto"),
    "output_format": ("png", "webp", "jpeg", "gif", "svg"),
    "moderation": ("auto", "low"),
    "complexity": ("low", "medium", "high"),
    "input_fidelity": ("high", "low"),
}


#: Environment variable: an ISO date (``2026-11-25``) used instead of today's for every lifecycle check, by the
#: package and the emulator alike. For test suites that must give the same answers whatever the calendar says
#: (a model's shutdown date passing must not turn yesterday's green tests red); never needed in production.
TODAY_ENV = "IMAGEGEN_TODAY"


def current_date() -> datetime.date:
    """Today in UTC (or the date in ``$IMAGEGEN_TODAY``): the date lifecycle facts are compared with unless a
    caller injects its own. An unreadable ``$IMAGEGEN_TODAY`` raises :class:`ConfigurationError` (never ignored:
    a test suite would then silently run on the real date)."""
    pinned = os.environ.get(TODAY_ENV)
    if pinned:
        try:
            return datetime.date.fromisoformat(pinned.strip())
        except ValueError:
            raise ConfigurationError(
                f"{TODAY_ENV}={pinned!r} is not a date; use the ISO form YYYY-MM-DD, or unset it"
            ) from None
    return datetime.datetime.now(datetime.UTC).date()


class Evidence(BaseModel):
    """Where a fact comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    kind: EvidenceKind
    source: str
    """The SDK file and field, or the URL."""
    quote: str
    checked: datetime.date
    """When the source was last read for this fact."""


class Fact(BaseModel):
    """What one model family does with some values of one field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    status: Status
    values: tuple[str, ...]
    evidence: tuple[str, ...]
    note: str | None = None


class Verdict(NamedTuple):
    """The table's answer for one value: its status and the evidence behind it."""

    status: Status
    evidence: tuple[Evidence, ...]
    note: str | None = None

    def cite(self) -> str:
        """A short citation for messages and docs (``sdk: ...; third-party: https://...``)."""
        return "; ".join(f"{item.kind}: {item.source}" for item in self.evidence) or "no evidence"


class CustomSizeRule(BaseModel):
    """Limits on arbitrary ``WIDTHxHEIGHT`` sizes; a size outside them is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    multiple: int = 16
    max_aspect: float = 3.0
    max_edge: int = 3840
    min_pixels: int | None = None
    max_pixels: int | None = None
    evidence: tuple[str, ...] = ()

    def describe(self) -> str:
        text = (
            f"WIDTHxHEIGHT with both edges divisible by {self.multiple}, aspect ratio between "
            f"1:{self.max_aspect:g} and {self.max_aspect:g}:1, edges at most {self.max_edge}"
        )
        if self.min_pixels is not None and self.max_pixels is not None:
            text += f", {self.min_pixels:,} to {self.max_pixels:,} pixels in total"
        elif self.max_pixels is not None:
            text += f", at most {self.max_pixels:,} pixels"
        return text

    def problem(self, width: int, height: int) -> str | None:
        """Why ``width`` x ``height`` is outside these limits, or ``None`` if it is within them."""
        long_edge, short_edge = max(width, height), min(width, height)
        if width % self.multiple or height % self.multiple:
            return f"width and height must both be divisible by {self.multiple}"
        if long_edge > self.max_aspect * short_edge:
            return f"aspect ratio {width}:{height} is outside 1:{self.max_aspect:g} to {self.max_aspect:g}:1"
        if long_edge > self.max_edge:
            return f"an edge of {long_edge} px is longer than the maximum {self.max_edge} px"
        if self.max_pixels is not None and width * height > self.max_pixels:
            return f"{width * height:,} pixels is more than the maximum {self.max_pixels:,}"
        if self.min_pixels is not None and width * height < self.min_pixels:
            return f"{width * height:,} pixels is fewer than the minimum {self.min_pixels:,}"
        return None


class GifSheetRule(BaseModel):
    """GIF output: ``size`` is one frame; all frames are drawn on one sprite sheet that must fit the image limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    frame_multiple: int
    max_edge: int
    max_pixels: int
    default_frame_count: int
    grids: tuple[tuple[int, int, int, int], ...]
    evidence: tuple[str, ...]
    grid_evidence: tuple[str, ...]

    def grid_for(self, frame_count: int) -> tuple[int, int]:
        """``(columns, rows)`` of the sheet for ``frame_count`` frames."""
        for first, last, columns, rows in self.grids:
            if first <= frame_count <= last:
                return columns, rows
        raise ValueError(f"no sprite-sheet grid for {frame_count} frames")

    def sheet_size(self, width: int, height: int, frame_count: int | None) -> tuple[int, int]:
        columns, rows = self.grid_for(frame_count or self.default_frame_count)
        return width * columns, height * rows

    def problem(self, width: int, height: int, frame_count: int | None) -> str | None:
        """Why frames of ``width`` x ``height`` do not fit the sheet, or ``None``."""
        if width % self.frame_multiple or height % self.frame_multiple:
            return f"GIF frame width and height must both be divisible by {self.frame_multiple}"
        count = frame_count or self.default_frame_count
        sheet_w, sheet_h = self.sheet_size(width, height, count)
        if max(sheet_w, sheet_h) > self.max_edge or sheet_w * sheet_h > self.max_pixels:
            return (
                f"{count} frames of {width}x{height} make a {sheet_w}x{sheet_h} sprite sheet, over the limit of "
                f"{self.max_edge} px per edge and {self.max_pixels:,} pixels; use smaller frames or fewer frames"
            )
        return None

    def largest_square_frame(self, frame_count: int | None) -> int:
        """The largest square frame edge (a multiple of ``frame_multiple``) that fits ``frame_count`` frames."""
        columns, rows = self.grid_for(frame_count or self.default_frame_count)
        edge = self.max_edge // max(columns, rows)
        while edge * edge * columns * rows > self.max_pixels:
            edge -= self.frame_multiple
        return edge - edge % self.frame_multiple


class ModelCapabilities(BaseModel):
    """What one image model accepts, with evidence, and its lifecycle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    family: str
    alias_of: str | None = None
    deprecated: datetime.date | None = None
    """When OpenAI announced the shutdown."""
    shutdown: datetime.date | None = None
    """The first day the API refuses the model."""
    replacement: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    facts: tuple[Fact, ...] = ()
    custom_size: CustomSizeRule | None = None
    custom_sizes: Status = "unknown"
    """Sizes other than the fixed ones, for a model without :attr:`custom_size` limits."""
    custom_sizes_evidence: tuple[str, ...] = ()

    # -- facts ----------------------------------------------------------------------------------------------

    def status(self, field: str, value: str) -> Verdict:
        """Does this model accept ``value`` for ``field``? Values no fact names are unknown."""
        for fact in self.facts:
            if fact.field == field and value in fact.values:
                return Verdict(fact.status, _evidence_of(fact.evidence), fact.note)
        return Verdict("unknown", (), None)

    def allowed_values(self, field: str, mode: ValidationMode = "known") -> tuple[str, ...] | None:
        """The values validation in ``mode`` lets through for an enum-like field, or ``None`` when it does
        not limit the field at all (every value of the SDK type)."""
        domain = FIELD_VALUES.get(field)
        if domain is None or mode == "off":
            return None
        refused = "unknown refuses" if mode == "strict" else "refuses"
        allowed = tuple(value for value in domain if self.status(field, value).status not in refused.split())
        return None if allowed == domain else allowed

    # The values validation lets through per field (default mode), as attributes: ``caps.quality`` etc.
    @property
    def quality(self) -> tuple[str, ...] | None:
        return self.allowed_values("quality")

    @property
    def background(self) -> tuple[str, ...] | None:
        return self.allowed_values("background")

    @property
    def output_format(self) -> tuple[str, ...] | None:
        return self.allowed_values("output_format")

    @property
    def moderation(self) -> tuple[str, ...] | None:
        return self.allowed_values("moderation")

    @property
    def complexity(self) -> tuple[str, ...] | None:
        return self.allowed_values("complexity")

    @property
    def input_fidelity(self) -> tuple[str, ...] | None:
        return self.allowed_values("input_fidelity")

    def fixed_sizes(self) -> tuple[str, ...]:
        """The standard sizes (and ``auto``) with a fact about them, accepted ones first."""
        return tuple(value for fact in self.facts if fact.field == "size" for value in fact.values)

    @property
    def sizes(self) -> tuple[str, ...]:
        """The accepted fixed ``WIDTHxHEIGHT`` sizes."""
        return tuple(s for s in self.fixed_sizes() if s != "auto" and self.status("size", s).status == "accepts")

    @property
    def auto_size(self) -> bool:
        """Whether ``size="auto"`` is let through (accepted, or not known to be refused)."""
        return self.status("size", "auto").status != "refuses"

    def describe_sizes(self) -> str:
        parts = list(self.sizes)
        if self.auto_size:
            parts.append("auto")
        text = ", ".join(parts)
        if self.custom_size is not None:
            text += f", or any {self.custom_size.describe()}"
        return text

    # -- lifecycle ------------------------------------------------------------------------------------------

    def lifecycle(self, today: datetime.date | None = None) -> Literal["active", "deprecated", "shutdown"]:
        today = today or current_date()
        if self.shutdown is not None and today >= self.shutdown:
            return "shutdown"
        if self.shutdown is not None or (self.deprecated is not None and today >= self.deprecated):
            return "deprecated"
        return "active"

    @property
    def retired(self) -> str | None:
        """A sentence saying the model was shut down (as of today), or ``None`` while it still works."""
        if self.lifecycle() != "shutdown":
            return None
        return f"{self.name} was shut down on {self.shutdown}"

    def lifecycle_message(self, today: datetime.date | None = None) -> str | None:
        """What to tell a caller of a deprecated or shut-down model (``None`` for an active one)."""
        state = self.lifecycle(today)
        replacement = " or ".join(self.replacement) or "a current GPT Image model"
        if state == "shutdown":
            return f"{self.name} was shut down on {self.shutdown}; use {replacement} instead"
        if state == "deprecated":
            return f"{self.name} is deprecated and shuts down on {self.shutdown}; move to {replacement}"
        return None


class GeneralRules(BaseModel):
    """Cross-field rules that hold for every model, with their evidence keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha_formats: tuple[str, ...]
    compression_formats: tuple[str, ...]
    default_compression: int
    gif_frame_count: tuple[int, int]
    gif_frame_duration_ms: tuple[int, int]
    max_input_images: int
    partial_images: tuple[int, int]
    gif_sheet: GifSheetRule
    evidence: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Rule name → evidence keys."""


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True)

    default_model: str
    default_evidence: tuple[str, ...]
    models: dict[str, ModelCapabilities]
    rules: GeneralRules
    evidence: dict[str, Evidence]


def _facts(raw: Iterable[Mapping[str, Any]]) -> tuple[Fact, ...]:
    facts = []
    for item in raw:
        statuses = [status for status in ("accepts", "refuses", "unknown") if status in item]
        if len(statuses) != 1:
            raise ValueError(f"models.toml: a fact needs exactly one of accepts/refuses/unknown: {dict(item)}")
        status = statuses[0]
        facts.append(
            Fact(
                field=item["field"],
                status=status,
                values=tuple(item[status]),
                evidence=tuple(item.get("evidence", ())),
                note=item.get("note"),
            )
        )
    return tuple(facts)


@cache
def _table() -> _Table:
    raw = tomllib.loads(resources.files(__package__).joinpath("models.toml").read_text("utf-8"))
    evidence = {key: Evidence(key=key, **value) for key, value in raw["evidence"].items()}
    families: dict[str, dict[str, Any]] = raw["families"]
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
            base = {**entries[target], **{k: v for k, v in base.items() if k not in ("alias_of", "evidence")}}
        family = families[base["family"]]
        models[name] = ModelCapabilities(
            name=name,
            family=base["family"],
            alias_of=entry.get("alias_of"),
            deprecated=base.get("deprecated"),
            shutdown=base.get("shutdown"),
            replacement=tuple(base.get("replacement", ())),
            evidence=tuple(entry.get("evidence", base.get("evidence", ()))),
            facts=_facts(family.get("facts", ())),
            custom_size=CustomSizeRule(**family["custom_size"]) if "custom_size" in family else None,
            custom_sizes="accepts" if "custom_size" in family else family.get("custom_sizes", "unknown"),
            custom_sizes_evidence=tuple(family.get("custom_sizes_evidence", ())),
        )
    rules_raw = dict(raw["rules"])
    sheet = dict(rules_raw.pop("gif_sheet"))
    rule_evidence = {
        key.removesuffix("_evidence"): tuple(rules_raw.pop(key)) for key in list(rules_raw) if key.endswith("_evidence")
    }
    rules = GeneralRules(
        **rules_raw,
        gif_sheet=GifSheetRule(**{**sheet, "grids": tuple(tuple(g) for g in sheet["grids"])}),
        evidence=rule_evidence,
    )
    return _Table(
        default_model=raw["defaults"]["model"],
        default_evidence=tuple(raw["defaults"].get("evidence", ())),
        models=models,
        rules=rules,
        evidence=evidence,
    )


def _evidence_of(keys: Iterable[str]) -> tuple[Evidence, ...]:
    table = _table().evidence
    return tuple(table[key] for key in keys)


def capabilities_for(model: str) -> ModelCapabilities | None:
    """The capabilities of ``model``, or ``None`` for a model the table does not know."""
    return _table().models.get(model)


def known_models() -> tuple[str, ...]:
    """Every model name in the table, shut-down ones included."""
    return tuple(_table().models)


def offered_models(today: datetime.date | None = None) -> tuple[str, ...]:
    """The models an agent is offered by default: neither deprecated nor shut down on ``today``."""
    return tuple(name for name, caps in _table().models.items() if caps.lifecycle(today) == "active")


def default_image_model() -> str:
    """The image model used when none is configured (the API's own default, per the SDK)."""
    return _table().default_model


def general_rules() -> GeneralRules:
    return _table().rules


def evidence(key: str) -> Evidence:
    """One evidence entry by key."""
    return _table().evidence[key]


def all_evidence() -> dict[str, Evidence]:
    """Every evidence entry of the table, by key."""
    return dict(_table().evidence)
