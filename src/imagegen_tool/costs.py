"""The cost values: a :class:`Cost` (an estimate or an actual cost, in US dollars, with its lines and evidence) and
the :class:`ImageCost` every handle and result carries. Computed by :mod:`imagegen_tool.pricing`."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Cost", "CostLine", "ImageCost", "format_usd"]


class CostLine(BaseModel):
    """One priced item of a cost: tokens × price (``usd=None`` when the price is unknown)."""

    model_config = ConfigDict(frozen=True)

    item: str
    """What is priced, e.g. ``image output (gpt-image-1.5)``."""
    tokens: int | None = None
    usd_per_million: Decimal | None = None
    usd: Decimal | None = None


class Cost(BaseModel):
    """A cost in US dollars: ``usd`` is the sum of ``lines``, or ``None`` when something in it has no known
    price (``unknown`` says what). An ``estimate`` is an upper bound; an ``actual`` cost is computed from the
    usage the API reported."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["estimate", "actual"]
    usd: Decimal | None
    model: str | None = None
    text_model: str | None = None
    images: int = 1
    """How many images the cost covers (a call's cost is shared by the images it made)."""
    completion_window: str | None = None
    lines: tuple[CostLine, ...] = ()
    unknown: tuple[str, ...] = ()
    """What could not be priced (then ``usd`` is ``None``)."""
    assumptions: tuple[str, ...] = ()
    """Ceilings an estimate assumed where nothing is published (see ``docs/cost.md``)."""
    evidence: tuple[str, ...] = ()
    """Keys of the price table's evidence behind the prices used (``docs/prices.md``)."""

    @property
    def known(self) -> bool:
        return self.usd is not None

    def describe(self) -> str:
        """A short human text, e.g. ``$0.0421`` or ``unknown (no published price for ...)``."""
        if self.usd is None:
            return "unknown (" + "; ".join(self.unknown[:2]) + ")" if self.unknown else "unknown"
        return format_usd(self.usd)


class ImageCost(BaseModel):
    """The cost of the call that produced an image (or a result): the estimate made before it was sent and the
    actual cost from the usage the API reported. A call's cost is shared by all the images it made."""

    model_config = ConfigDict(frozen=True)

    estimate: Cost | None = None
    actual: Cost | None = None

    @property
    def usd(self) -> Decimal | None:
        """The actual cost when known, else ``None``."""
        return self.actual.usd if self.actual is not None else None


def format_usd(value: Decimal) -> str:
    """``$0.0421``: four decimals (cents are too coarse for one low-quality image), rounded up."""
    return "$" + str(value.quantize(Decimal("0.0001"), rounding=ROUND_CEILING))
