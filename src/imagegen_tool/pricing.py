"""What a call costs: an upper-bound :func:`estimate` before it is sent, the :func:`actual_cost` after.

Prices are data (``prices.toml``, with the evidence for every number, rendered as ``docs/prices.md``): token prices
per 1M tokens for each image model and for the text models that drive the Responses API's image tool, and the image
output tokens (or per-image prices) per size and quality where they are published. A price that is not published is
unknown: a cost that needs it is ``usd=None``, never a guess. Both functions are pure and return a frozen
:class:`Cost` naming the price table's evidence, the lines it adds up, what could not be priced and the assumptions
the estimate made (each one said on the estimate, see ``docs/cost.md``).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .costs import Cost, CostLine, ImageCost, format_usd
from .images import ImageTokenUsage, TokenUsage, Usage

__all__ = [
    "COMPLETION_WINDOWS",
    "Cost",
    "CostLine",
    "ImageCost",
    "ModelPrices",
    "PriceEvidence",
    "PriceTable",
    "actual_cost",
    "combine",
    "default_table",
    "describe_evidence",
    "estimate",
    "format_usd",
]

PRICE_FIELDS = ("text_input", "cached_text_input", "image_input", "cached_image_input", "image_output", "text_output")
#: ``background_options.completion_window`` values the installed SDK accepts (``soonest`` is the default).
COMPLETION_WINDOWS = ("soonest", "2h", "8h")
CompletionWindow = Literal["soonest", "2h", "8h"]
_MILLION = Decimal(1_000_000)
_STANDARD_SIZES = ("1024x1024", "1024x1536", "1536x1024")


class PriceEvidence(BaseModel):
    """Where a price comes from."""

    model_config = ConfigDict(frozen=True)

    key: str
    kind: Literal["openai-docs", "sdk", "third-party", "unverified"]
    source: str
    quote: str
    checked: str


class OutputFact(BaseModel):
    """One published figure for one output image of a size and quality: its tokens, or its price."""

    model_config = ConfigDict(frozen=True)

    quality: str
    size: str
    tokens: int | None = None
    usd: Decimal | None = None
    evidence: tuple[str, ...]


class ModelPrices(BaseModel):
    """The prices of one model (USD per 1M tokens; ``None`` = not published, so unknown)."""

    model_config = ConfigDict(frozen=True)

    model: str
    text_input: Decimal | None = None
    cached_text_input: Decimal | None = None
    image_input: Decimal | None = None
    cached_image_input: Decimal | None = None
    image_output: Decimal | None = None
    text_output: Decimal | None = None
    evidence: tuple[str, ...] = ()
    partial_image_output_tokens: int | None = None
    """Image output tokens billed for each streamed partial image."""
    partial_evidence: tuple[str, ...] = ()
    output_tokens: tuple[OutputFact, ...] = ()
    output_usd: tuple[OutputFact, ...] = ()
    rounding: Decimal | None = None
    """The step the publisher rounded ``output_usd`` to."""
    note: str | None = None
    status: str | None = None
    """Set for a model that is refused before any request (shut down or retired)."""

    def output_bound(self, quality: str, size: str) -> tuple[Decimal | None, tuple[str, ...]]:
        """An upper bound of one output image's price at ``quality`` and ``size`` (both concrete), with its
        evidence; ``(None, ())`` when nothing is published for that pair."""
        for fact in self.output_tokens:
            if fact.quality == quality and fact.size == size and fact.tokens is not None:
                if self.image_output is None:
                    return None, ()
                return fact.tokens * self.image_output / _MILLION, fact.evidence + self.evidence
        for fact in self.output_usd:
            if fact.quality == quality and fact.size == size and fact.usd is not None:
                margin = (self.rounding or Decimal(0)) / 2
                return fact.usd + margin, fact.evidence
        return None, ()

    def published_pairs(self) -> list[tuple[str, str]]:
        return [(f.quality, f.size) for f in (*self.output_tokens, *self.output_usd)]


class PriceTable:
    """The parsed ``prices.toml`` (or your own file in the same format: ``PriceTable.load(path)``)."""

    def __init__(self, data: Mapping[str, Any], *, source: str = "prices.toml") -> None:
        self.source = source
        self.evidence: dict[str, PriceEvidence] = {
            key: PriceEvidence(key=key, **{k: str(v) for k, v in entry.items()})
            for key, entry in (data.get("evidence") or {}).items()
        }
        raw_models: Mapping[str, Any] = data.get("models") or {}
        self.aliases: dict[str, str] = {
            name: str(entry["alias_of"]) for name, entry in raw_models.items() if "alias_of" in entry
        }
        self.models: dict[str, ModelPrices] = {
            name: _model_prices(name, entry) for name, entry in raw_models.items() if "alias_of" not in entry
        }
        bounds = dict(data.get("bounds") or {})
        self.bounds_evidence: tuple[str, ...] = tuple(bounds.pop("evidence", ()))
        self.bounds: dict[str, int] = {k: int(v) for k, v in bounds.items()}
        window = dict(data.get("completion_window") or {})
        self.window_discounts: dict[str, Decimal] = {
            k: Decimal(str(v)) for k, v in (window.get("text_model_discount") or {}).items()
        }
        self.window_evidence: tuple[str, ...] = tuple(window.get("evidence", ()))
        self.window_note: str = str(window.get("note", ""))

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """The table in ``path``, or the packaged ``prices.toml``."""
        if path is None:
            text = resources.files("imagegen_tool").joinpath("prices.toml").read_text("utf-8")
            return cls(tomllib.loads(text))
        return cls(tomllib.loads(Path(path).read_text("utf-8")), source=str(path))

    def prices_for(self, model: str | None) -> ModelPrices | None:
        """The prices of ``model`` (a dated snapshot resolves to its entry); ``None`` for a model not in the table."""
        if not model:
            return None
        name = self.aliases.get(model, model)
        return self.models.get(name)

    def bound(self, name: str) -> int:
        return self.bounds[name]


@functools.cache
def default_table() -> PriceTable:
    """The packaged price table (parsed once)."""
    return PriceTable.load()


# -- estimate -----------------------------------------------------------------------------------------------


def estimate(
    model: str | None,
    *,
    size: str | None = None,
    quality: str | None = None,
    n: int = 1,
    partial_images: int = 0,
    input_images: int = 0,
    has_mask: bool = False,
    prompt: str = "",
    instructions: str | None = None,
    output_format: str | None = None,
    api: Literal["responses", "images"] = "responses",
    text_model: str | None = None,
    completion_window: str | None = None,
    text_output_tokens: int | None = None,
    table: PriceTable | None = None,
) -> Cost:
    """An upper bound of what one call costs, before it is sent.

    Image model: ``n`` output images at the published tokens (or per-image price) for ``size`` and ``quality``
    (``auto`` takes the highest published one), each streamed partial image's tokens, the prompt (at most its
    UTF-8 bytes in tokens, plus the text model's rewrite on the Responses route) and each input image (and mask)
    at the assumed ceiling. Responses route: the text model reads the prompt, the instructions, the tool
    definition and the input images, and writes at most ``text_output_tokens`` (default: the table's assumed
    ceiling, reasoning included). ``completion_window`` ``2h``/``8h`` applies the published discount to the text
    model's tokens. Cached input is never assumed (it only lowers a cost). Anything without a published price
    makes ``usd`` ``None`` and is listed in ``unknown``.
    """
    table = table or default_table()
    lines: list[CostLine] = []
    unknown: list[str] = []
    assumptions: list[str] = []
    evidence: list[str] = []
    prices = table.prices_for(model)
    label = model or "the API's default image model"
    n = max(1, n)
    window = _checked_window(completion_window)
    if prices is None or prices.status:
        why = prices.status if prices is not None and prices.status else "not in the price table"
        unknown.append(f"image model {label}: {why}")
    else:
        evidence += prices.evidence
        _image_output_lines(prices, size, quality, n, output_format, lines, unknown, assumptions, evidence)
        if partial_images:
            _partial_lines(prices, partial_images * n, lines, unknown, evidence)
        rewrite = (
            table.bound("text_output_tokens") if api == "responses" else table.bound("instructions_overhead_tokens")
        )
        prompt_tokens = _bytes(prompt) + rewrite
        lines.append(_line(f"image model text input ({prices.model})", prompt_tokens, prices.text_input, unknown))
        images_in = input_images + (1 if has_mask else 0)
        if images_in:
            tokens = images_in * table.bound("input_image_tokens")
            lines.append(_line(f"image model image input ({prices.model})", tokens, prices.image_input, unknown))
            assumptions.append(f"each input image at most {table.bound('input_image_tokens')} tokens")
        assumptions.append(
            "the image model reads at most the prompt's UTF-8 bytes in tokens"
            + (" plus the text model's rewrite" if api == "responses" else " plus a fixed allowance")
        )
    if api == "responses":
        _text_model_lines(
            table,
            text_model,
            prompt,
            instructions,
            input_images,
            text_output_tokens,
            window,
            lines,
            unknown,
            assumptions,
            evidence,
        )
    if any(line.usd is None for line in lines):
        unknown.extend(f"{line.item}: no published price" for line in lines if line.usd is None and line.tokens)
    total = None if unknown else sum((line.usd or Decimal(0) for line in lines), Decimal(0))
    if table.bounds_evidence and assumptions:
        evidence += table.bounds_evidence
    return Cost(
        kind="estimate",
        usd=total,
        model=model,
        text_model=text_model if api == "responses" else None,
        images=n,
        completion_window=window if api == "responses" else None,
        lines=tuple(lines),
        unknown=tuple(dict.fromkeys(unknown)),
        assumptions=tuple(dict.fromkeys(assumptions)),
        evidence=tuple(dict.fromkeys(evidence)),
    )


def _image_output_lines(
    prices: ModelPrices,
    size: str | None,
    quality: str | None,
    n: int,
    output_format: str | None,
    lines: list[CostLine],
    unknown: list[str],
    assumptions: list[str],
    evidence: list[str],
) -> None:
    if output_format == "gif":
        unknown.append("animated GIF output: the sheet of frames has no published token count")
        return
    if output_format == "svg":
        unknown.append("SVG output: the SVG author model's tokens have no published bound")
    pairs = prices.published_pairs()
    sizes = [size] if size and size != "auto" else sorted({s for _, s in pairs} or set(_STANDARD_SIZES))
    if not size or size == "auto":
        assumptions.append("size auto: the largest published price of the standard sizes")
    qualities = [quality] if quality and quality != "auto" else sorted({q for q, _ in pairs}) or ["auto"]
    if not quality or quality == "auto":
        assumptions.append("quality auto: the highest published quality's price")
    best: Decimal | None = None
    for s in sizes:
        for q in qualities:
            bound, keys = prices.output_bound(q, s)
            if bound is None:
                unknown.append(f"image output of {prices.model} at quality={q} size={s}: token count not published")
                lines.append(CostLine(item=f"image output ({prices.model})", tokens=None, usd=None))
                return
            evidence.extend(keys)
            best = bound if best is None else max(best, bound)
    assert best is not None
    lines.append(CostLine(item=f"image output ({prices.model}) x{n}", usd=best * n))


def _partial_lines(
    prices: ModelPrices, count: int, lines: list[CostLine], unknown: list[str], evidence: list[str]
) -> None:
    if prices.partial_image_output_tokens is None:
        unknown.append(f"partial images of {prices.model}: billing not published")
        return
    tokens = count * prices.partial_image_output_tokens
    lines.append(_line(f"partial images ({count})", tokens, prices.image_output, unknown))
    evidence.extend(prices.partial_evidence)


def _text_model_lines(
    table: PriceTable,
    text_model: str | None,
    prompt: str,
    instructions: str | None,
    input_images: int,
    text_output_tokens: int | None,
    window: str | None,
    lines: list[CostLine],
    unknown: list[str],
    assumptions: list[str],
    evidence: list[str],
) -> None:
    prices = table.prices_for(text_model)
    name = text_model or "the configured text model"
    if prices is None:
        unknown.append(f"text model {name}: not in the price table")
        return
    evidence.extend(prices.evidence)
    discount = _discount(table, window, evidence)
    tokens_in = (
        _bytes(prompt)
        + _bytes(instructions or "")
        + table.bound("instructions_overhead_tokens")
        + input_images * table.bound("input_image_tokens")
    )
    out = text_output_tokens if text_output_tokens is not None else table.bound("text_output_tokens")
    lines.append(
        _line(f"text model input ({prices.model})", tokens_in, _discounted(prices.text_input, discount), unknown)
    )
    lines.append(_line(f"text model output ({prices.model})", out, _discounted(prices.text_output, discount), unknown))
    assumptions.append(
        f"the text model reads at most the prompt and instructions in bytes plus "
        f"{table.bound('instructions_overhead_tokens')} tokens"
    )
    if text_output_tokens is None:
        assumptions.append(f"the text model writes at most {out} tokens, reasoning included")


# -- actual cost --------------------------------------------------------------------------------------------


def actual_cost(
    usage: Usage | None,
    *,
    model: str | None,
    text_model: str | None = None,
    completion_window: str | None = None,
    images: int = 1,
    table: PriceTable | None = None,
) -> Cost:
    """The cost of a call from the usage the API reported (``usage.image``: the image model's tokens,
    ``usage.text``: the text model's, ``usage.svg``: the SVG author model's).

    Cached tokens are priced at the cached price where both the split and that price are known, otherwise at the
    uncached price (never less than the truth). An input total without its text/image split is priced at the
    higher of the two input prices. ``usd`` is ``None`` when the usage is missing or a non-zero count has no
    published price.
    """
    table = table or default_table()
    lines: list[CostLine] = []
    unknown: list[str] = []
    evidence: list[str] = []
    window = _checked_window(completion_window)
    if usage is None or (usage.image is None and usage.text is None and usage.svg is None):
        unknown.append("the API reported no usage")
    else:
        if usage.image is not None:
            _image_usage_lines(table, model, usage.image, lines, unknown, evidence)
        if usage.text is not None:
            _text_usage_lines(table, text_model, usage.text, window, lines, unknown, evidence, "text model")
        if usage.svg is not None:
            _text_usage_lines(table, usage.svg.model, usage.svg, None, lines, unknown, evidence, "SVG author model")
    total = None if unknown else sum((line.usd or Decimal(0) for line in lines), Decimal(0))
    return Cost(
        kind="actual",
        usd=total,
        model=model,
        text_model=text_model if usage is not None and usage.text is not None else None,
        images=images,
        completion_window=window if usage is not None and usage.text is not None else None,
        lines=tuple(lines),
        unknown=tuple(dict.fromkeys(unknown)),
        evidence=tuple(dict.fromkeys(evidence)),
    )


def _image_usage_lines(
    table: PriceTable,
    model: str | None,
    usage: ImageTokenUsage,
    lines: list[CostLine],
    unknown: list[str],
    evidence: list[str],
) -> None:
    prices = table.prices_for(model)
    label = model or "the API's default image model"
    if prices is None or prices.status:
        if usage.total_tokens or usage.input_tokens or usage.output_tokens:
            unknown.append(
                f"image model {label}: {prices.status if prices and prices.status else 'not in the price table'}"
            )
        return
    evidence.extend(prices.evidence)
    name = prices.model
    text_in, image_in = usage.input_text_tokens, usage.input_image_tokens
    if text_in is None and image_in is None:
        highest = _max_price(prices.text_input, prices.image_input)
        lines.append(_line(f"image model input, split not reported ({name})", usage.input_tokens, highest, unknown))
    else:
        if text_in is None:
            text_in = max(0, usage.input_tokens - (image_in or 0))
        if image_in is None:
            image_in = max(0, usage.input_tokens - text_in)
        cached_text, cached_image = usage.cached_text_tokens, usage.cached_image_tokens
        if cached_text is not None and prices.cached_text_input is not None:
            cached_text = min(cached_text, text_in)
            lines.append(
                _line(f"image model cached text input ({name})", cached_text, prices.cached_text_input, unknown)
            )
            text_in -= cached_text
        if cached_image is not None and prices.cached_image_input is not None:
            cached_image = min(cached_image, image_in)
            lines.append(
                _line(f"image model cached image input ({name})", cached_image, prices.cached_image_input, unknown)
            )
            image_in -= cached_image
        lines.append(_line(f"image model text input ({name})", text_in, prices.text_input, unknown))
        lines.append(_line(f"image model image input ({name})", image_in, prices.image_input, unknown))
    text_out = usage.output_text_tokens or 0
    image_out = usage.output_image_tokens
    if image_out is None:
        image_out = max(0, usage.output_tokens - text_out)
    lines.append(_line(f"image output ({name})", image_out, prices.image_output, unknown))
    if text_out:
        lines.append(_line(f"image model text output ({name})", text_out, prices.text_output, unknown))


def _text_usage_lines(
    table: PriceTable,
    model: str | None,
    usage: TokenUsage,
    window: str | None,
    lines: list[CostLine],
    unknown: list[str],
    evidence: list[str],
    role: str,
) -> None:
    if not (usage.input_tokens or usage.output_tokens):
        return
    prices = table.prices_for(model)
    if prices is None:
        unknown.append(f"{role} {model or '(not reported)'}: not in the price table")
        return
    evidence.extend(prices.evidence)
    discount = _discount(table, window, evidence)
    cached = min(usage.cached_input_tokens or 0, usage.input_tokens)
    fresh = usage.input_tokens - cached
    if cached and prices.cached_text_input is not None:
        lines.append(
            _line(
                f"{role} cached input ({prices.model})",
                cached,
                _discounted(prices.cached_text_input, discount),
                unknown,
            )
        )
    else:
        fresh += cached
    lines.append(_line(f"{role} input ({prices.model})", fresh, _discounted(prices.text_input, discount), unknown))
    lines.append(
        _line(
            f"{role} output ({prices.model})", usage.output_tokens, _discounted(prices.text_output, discount), unknown
        )
    )


# -- sums ---------------------------------------------------------------------------------------------------


def combine(costs: Iterable[Cost | None], *, kind: Literal["estimate", "actual"] | None = None) -> Cost | None:
    """The sum of several costs (``usd`` unknown if any part is unknown); ``None`` for nothing to add."""
    items = [c for c in costs if c is not None]
    if not items:
        return None
    unknown = tuple(dict.fromkeys(u for c in items for u in c.unknown))
    known = all(c.usd is not None for c in items)
    return Cost(
        kind=kind or items[0].kind,
        usd=sum((c.usd or Decimal(0) for c in items), Decimal(0)) if known else None,
        model=items[0].model,
        text_model=items[0].text_model,
        images=sum(c.images for c in items),
        completion_window=items[0].completion_window,
        lines=tuple(line for c in items for line in c.lines),
        unknown=unknown if not known else (),
        assumptions=tuple(dict.fromkeys(a for c in items for a in c.assumptions)),
        evidence=tuple(dict.fromkeys(e for c in items for e in c.evidence)),
    )


# -- helpers ------------------------------------------------------------------------------------------------


def _model_prices(name: str, entry: Mapping[str, Any]) -> ModelPrices:
    values: dict[str, Any] = {"model": name}
    for field in PRICE_FIELDS:
        if field in entry:
            values[field] = Decimal(str(entry[field]))
    for key in ("evidence", "partial_evidence"):
        values[key] = tuple(entry.get(key, ()))
    for key in ("partial_image_output_tokens", "note", "status"):
        if key in entry:
            values[key] = entry[key]
    if "rounding" in entry:
        values["rounding"] = Decimal(str(entry["rounding"]))
    values["output_tokens"] = tuple(_fact(f) for f in entry.get("output_tokens", ()))
    values["output_usd"] = tuple(_fact(f) for f in entry.get("output_usd", ()))
    return ModelPrices(**values)


def _fact(raw: Mapping[str, Any]) -> OutputFact:
    return OutputFact(
        quality=str(raw["quality"]),
        size=str(raw["size"]),
        tokens=int(raw["tokens"]) if "tokens" in raw else None,
        usd=Decimal(str(raw["usd"])) if "usd" in raw else None,
        evidence=tuple(raw.get("evidence", ())),
    )


def _line(item: str, tokens: int, price: Decimal | None, unknown: list[str]) -> CostLine:
    if price is None:
        return CostLine(item=item, tokens=tokens, usd=None if tokens else Decimal(0))
    return CostLine(item=item, tokens=tokens, usd_per_million=price, usd=tokens * price / _MILLION)


def _max_price(*prices: Decimal | None) -> Decimal | None:
    known = [p for p in prices if p is not None]
    return max(known) if len(known) == len(prices) else None


def _bytes(text: str) -> int:
    # A token is at least one byte of UTF-8, so the byte count bounds the token count of any tokenizer.
    return len(text.encode("utf-8", "surrogatepass"))


def _checked_window(window: str | None) -> str | None:
    if window is None:
        return None
    if window not in COMPLETION_WINDOWS:
        raise ValueError(f"completion_window must be one of {', '.join(COMPLETION_WINDOWS)}, not {window!r}")
    return window


def _discount(table: PriceTable, window: str | None, evidence: list[str]) -> Decimal:
    if window is None or window == "soonest":
        return Decimal(0)
    evidence.extend(table.window_evidence)
    return table.window_discounts.get(window, Decimal(0))


def _discounted(price: Decimal | None, discount: Decimal) -> Decimal | None:
    if price is None or not discount:
        return price
    return price * (1 - discount)


def describe_evidence(keys: Sequence[str], table: PriceTable | None = None) -> list[PriceEvidence]:
    """The evidence entries behind ``keys`` (e.g. ``cost.evidence``)."""
    table = table or default_table()
    return [table.evidence[k] for k in keys if k in table.evidence]
