"""The price table and the pure cost functions: every number has evidence, unknown stays unknown, the estimate is
an upper bound of the actual cost for the same call."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources

import pytest

from imagegen_tool import pricing
from imagegen_tool.capabilities import known_models
from imagegen_tool.images import ImageTokenUsage, SvgUsage, TokenUsage, Usage

TABLE = pricing.default_table()
RAW = tomllib.loads(resources.files("imagegen_tool").joinpath("prices.toml").read_text("utf-8"))


def _rows() -> list[tuple[str, str, str]]:
    rows = []
    for name, prices in TABLE.models.items():
        for quality, size in prices.published_pairs():
            rows.append((name, quality, size))
    return rows


def test_every_numeric_fact_has_evidence_that_exists() -> None:
    for name, entry in RAW["models"].items():
        if "alias_of" in entry:
            assert entry["alias_of"] in RAW["models"], name
            continue
        numbers = [f for f in pricing.PRICE_FIELDS if f in entry]
        if numbers:
            assert entry.get("evidence"), f"{name}: prices without evidence"
        if "partial_image_output_tokens" in entry:
            assert entry.get("partial_evidence"), f"{name}: partial image tokens without evidence"
        for fact in (*entry.get("output_tokens", ()), *entry.get("output_usd", ())):
            assert fact.get("evidence"), f"{name} {fact}: no evidence"
        keys = [*entry.get("evidence", ()), *entry.get("partial_evidence", ())]
        keys += [k for f in (*entry.get("output_tokens", ()), *entry.get("output_usd", ())) for k in f["evidence"]]
        for key in keys:
            assert key in TABLE.evidence, f"{name}: unknown evidence {key}"
    for key in (*TABLE.bounds_evidence, *TABLE.window_evidence):
        assert key in TABLE.evidence
    for evidence in TABLE.evidence.values():
        assert evidence.source and evidence.quote and evidence.checked
        if evidence.kind in ("openai-docs", "third-party"):
            assert evidence.source.startswith("https://"), evidence.key


def test_every_image_model_of_the_capability_table_has_a_price_entry() -> None:
    for model in known_models():
        assert model in RAW["models"], f"{model} is in models.toml but not in prices.toml"
    from imagegen_tool.request import DEFAULT_TEXT_MODEL

    assert TABLE.prices_for(DEFAULT_TEXT_MODEL) is not None


def test_snapshots_resolve_to_their_entry() -> None:
    assert TABLE.prices_for("gpt-image-2-2026-04-21") == TABLE.prices_for("gpt-image-2")
    assert TABLE.prices_for("chatgpt-image-latest") == TABLE.prices_for("gpt-image-1.5")
    assert TABLE.prices_for("no-such-model") is None


@pytest.mark.parametrize(("model", "quality", "size"), _rows())
def test_each_published_row_gives_a_known_estimate_at_least_its_published_output(
    model: str, quality: str, size: str
) -> None:
    cost = pricing.estimate(model, quality=quality, size=size, prompt="a fox", text_model="gpt-5.4-mini")
    assert cost.usd is not None, cost.unknown
    prices = TABLE.models[model]
    published, _ = prices.output_bound(quality, size)
    assert published is not None
    assert cost.usd >= published
    assert cost.evidence and all(k in TABLE.evidence for k in cost.evidence)
    assert cost.assumptions  # the text-model ceilings are said on the estimate


def test_the_image_output_of_a_token_row_is_its_tokens_at_the_output_price() -> None:
    cost = pricing.estimate("gpt-image-1.5", quality="high", size="1536x1024", api="images", prompt="x")
    output = next(line for line in cost.lines if line.item.startswith("image output"))
    assert output.usd == Decimal(6208) * Decimal("32.00") / Decimal(1_000_000)


def test_unpublished_token_counts_make_the_estimate_unknown_never_guessed() -> None:
    cost = pricing.estimate("gpt-image-2.6-sunburst", quality="low", size="1024x1024", text_model="gpt-5.4-mini")
    assert cost.usd is None
    assert any("not published" in u for u in cost.unknown)
    custom = pricing.estimate("gpt-image-2", quality="low", size="2048x1152", api="images")
    assert custom.usd is None
    assert pricing.estimate("unknown-model", quality="low", size="1024x1024").usd is None
    assert pricing.estimate("gpt-image-1", quality="low", size="1024x1024").usd is None  # shut down
    assert pricing.estimate("gpt-image-1.5", quality="low", size="1024x1024", text_model="gpt-9").usd is None


def test_gif_and_svg_outputs_are_unknown() -> None:
    for fmt in ("gif", "svg"):
        cost = pricing.estimate("gpt-image-1.5", quality="low", size="1024x1024", output_format=fmt, api="images")
        assert cost.usd is None, fmt


def test_auto_takes_the_highest_published_price() -> None:
    auto = pricing.estimate("gpt-image-1.5", quality="auto", size="auto", api="images", prompt="x")
    high = pricing.estimate("gpt-image-1.5", quality="high", size="1024x1536", api="images", prompt="x")
    assert auto.usd == high.usd
    assert any("auto" in a for a in auto.assumptions)


def test_n_partials_inputs_and_prompt_length_raise_the_estimate() -> None:
    base = pricing.estimate("gpt-image-1.5", quality="low", size="1024x1024", prompt="x", text_model="gpt-5.4-mini")
    assert base.usd is not None

    def usd(**changes: object) -> Decimal:
        args: dict[str, object] = {"quality": "low", "size": "1024x1024", "prompt": "x", "text_model": "gpt-5.4-mini"}
        args.update(changes)
        value = pricing.estimate("gpt-image-1.5", **args).usd  # type: ignore[arg-type]
        assert value is not None
        return value

    assert usd(n=3) > base.usd
    partials = usd(partial_images=3) - base.usd
    assert partials == Decimal(3 * 100) * Decimal(32) / Decimal(1_000_000)
    assert usd(input_images=2) > base.usd
    assert usd(has_mask=True) > base.usd
    assert usd(prompt="x" * 5000) > base.usd


def test_completion_window_discounts_only_the_text_model_tokens() -> None:
    def cost(window: str | None) -> pricing.Cost:
        return pricing.estimate(
            "gpt-image-1.5",
            quality="low",
            size="1024x1024",
            prompt="x",
            text_model="gpt-5.4-mini",
            completion_window=window,
        )

    standard, two, eight = cost(None), cost("2h"), cost("8h")
    assert standard.usd is not None and two.usd is not None and eight.usd is not None
    assert standard.usd > two.usd > eight.usd
    text = [line for line in standard.lines if line.item.startswith("text model")]
    text_usd = sum((line.usd or Decimal(0) for line in text), Decimal(0))
    assert standard.usd - eight.usd == text_usd * Decimal("0.40")
    assert "openai-background-discount" in eight.evidence
    assert cost("soonest").usd == standard.usd
    with pytest.raises(ValueError, match="completion_window"):
        cost("1h")


def test_actual_cost_from_a_full_usage() -> None:
    usage = Usage(
        text=TokenUsage(input_tokens=1000, output_tokens=200, cached_input_tokens=400),
        image=ImageTokenUsage(
            input_tokens=300,
            output_tokens=4160,
            input_text_tokens=50,
            input_image_tokens=250,
            output_image_tokens=4160,
            cached_tokens=100,
            cached_text_tokens=0,
            cached_image_tokens=100,
        ),
    )
    cost = pricing.actual_cost(usage, model="gpt-image-2", text_model="gpt-5.4-mini")
    million = Decimal(1_000_000)
    expected = (
        50 * Decimal(5)
        + 150 * Decimal(8)
        + 100 * Decimal(2)
        + 4160 * Decimal(30)  # image model
        + 600 * Decimal("0.75")
        + 400 * Decimal("0.075")
        + 200 * Decimal("4.50")  # text model
    ) / million
    assert cost.usd == expected
    assert cost.kind == "actual" and not cost.unknown


def test_actual_cost_is_unknown_without_usage_or_price() -> None:
    assert pricing.actual_cost(None, model="gpt-image-1.5").usd is None
    image = ImageTokenUsage(input_tokens=10, output_tokens=272, input_text_tokens=10, input_image_tokens=0)
    assert pricing.actual_cost(Usage(image=image), model="mystery").usd is None
    svg = Usage(image=image, svg=SvgUsage(input_tokens=5, output_tokens=5, model="unknown-svg-model"))
    assert pricing.actual_cost(svg, model="gpt-image-1.5").usd is None


def test_cached_tokens_without_a_cached_price_cost_the_full_price() -> None:
    image = ImageTokenUsage(
        input_tokens=100,
        output_tokens=0,
        input_text_tokens=100,
        input_image_tokens=0,
        cached_text_tokens=100,
        cached_image_tokens=0,
    )
    flare = pricing.actual_cost(Usage(image=image), model="gpt-image-2.6-flare")  # no cached price published
    assert flare.usd == Decimal(100) * Decimal(5) / Decimal(1_000_000)


def test_input_without_split_is_priced_at_the_higher_input_price() -> None:
    image = ImageTokenUsage(input_tokens=1000, output_tokens=0)
    cost = pricing.actual_cost(Usage(image=image), model="gpt-image-1.5")
    assert cost.usd == Decimal(1000) * Decimal(8) / Decimal(1_000_000)


def test_combine_sums_and_keeps_unknown() -> None:
    a = pricing.actual_cost(
        Usage(image=ImageTokenUsage(output_tokens=272, output_image_tokens=272)), model="gpt-image-1.5"
    )
    b = pricing.actual_cost(None, model="gpt-image-1.5")
    total = pricing.combine([a, a])
    assert total is not None and a.usd is not None and total.usd == 2 * a.usd
    unknown = pricing.combine([a, b])
    assert unknown is not None and unknown.usd is None and unknown.unknown
    assert pricing.combine([]) is None


def test_a_custom_table_overrides_the_packaged_one(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "prices.toml"
    path.write_text(
        '[evidence.mine]\nkind = "unverified"\nsource = "our contract"\nquote = "negotiated"\nchecked = 2026-11-25\n'
        '[models."gpt-image-2.6-sunburst"]\nimage_output = "30"\ntext_input = "5"\nimage_input = "8"\n'
        'evidence = ["mine"]\n'
        'output_tokens = [{ quality = "low", size = "1024x1024", tokens = 1000, evidence = ["mine"] }]\n'
        "[bounds]\ninstructions_overhead_tokens = 10\ntext_output_tokens = 10\ninput_image_tokens = 10\n"
        'evidence = ["mine"]\n',
        "utf-8",
    )
    table = pricing.PriceTable.load(path)
    cost = pricing.estimate("gpt-image-2.6-sunburst", quality="low", size="1024x1024", api="images", table=table)
    assert cost.usd is not None


def test_the_prices_page_is_generated_from_the_table(tmp_path: object) -> None:
    from pathlib import Path

    from imagegen_tool import pricing_doc

    root = Path(__file__).resolve().parents[2]
    page = root / "docs" / "prices.md"
    assert page.read_text("utf-8") == pricing_doc.render(), (
        "docs/prices.md is stale: python -m imagegen_tool.pricing_doc"
    )
    stale = Path(str(tmp_path)) / "prices.md"
    stale.write_text("old", "utf-8")
    assert pricing_doc.main([str(stale), "--check"]) == 1
    assert pricing_doc.main([str(stale)]) == 0
    assert pricing_doc.main([str(stale), "--check"]) == 0
    rendered = pricing_doc.render()
    for key in TABLE.evidence:
        assert f"### {key}" in rendered
