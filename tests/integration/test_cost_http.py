"""Costs through the emulator over real HTTP: every handle and result carries the estimate and the actual cost, the
estimate is never below the actual cost the emulator's usage gives for the same request (every priced row of the
table, both API routes, partial images, input images), totals add up per generator, session and process, and the
discounted completion window reaches the wire."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from openai import AsyncOpenAI, OpenAI
from PIL import Image

from imagegen_tool import ImageGenerator, pricing
from imagegen_tool.budget import process_spending
from imagegen_tool.errors import ConfigurationError, InvalidOptionsError
from imagegen_tool.images import Usage
from imagegen_tool.parse import parse_usage
from imagegen_tool.testing import Emulator

TABLE = pricing.default_table()
ROWS = [(name, q, s) for name, prices in TABLE.models.items() for q, s in prices.published_pairs()]


def _png(width: int = 64, height: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def small_images(imagegen_emulator: Emulator) -> Emulator:
    # The rows' costs do not depend on the pixels: serve small images so 50+ calls stay quick.
    imagegen_emulator.set_payload(image_bytes=_png(), partial_image_bytes=_png(32, 32))
    return imagegen_emulator


@pytest.mark.parametrize(("model", "quality", "size"), ROWS)
def test_estimate_is_at_least_the_actual_cost_on_the_responses_route(
    tmp_path: Path, openai_client: OpenAI, small_images: Emulator, model: str, quality: str, size: str
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False)
    result = generator.generate("a red fox in the snow", model=model, quality=quality, size=size)
    cost = result.cost
    assert cost is not None and cost.estimate is not None and cost.actual is not None
    assert cost.estimate.usd is not None and cost.actual.usd is not None, (cost.estimate.unknown, cost.actual.unknown)
    assert cost.estimate.usd >= cost.actual.usd > 0
    # The actual cost is the emulator's reported usage priced by the table (checked from the stored response).
    body = small_images.responses[result.response_id or ""]
    again = pricing.actual_cost(parse_usage(body), model=model, text_model=body["model"])
    assert again.usd == cost.actual.usd
    # ... and it is on the handle, in the store's record too.
    stored = generator.store.get(result.image.id)
    assert stored.cost is not None and stored.cost.actual is not None and stored.cost.actual.usd == cost.actual.usd
    assert stored.cost.estimate is not None and stored.cost.estimate.usd == cost.estimate.usd


@pytest.mark.parametrize(("model", "quality", "size"), ROWS)
def test_estimate_is_at_least_the_actual_cost_on_the_images_route_with_partials_and_n(
    tmp_path: Path, openai_client: OpenAI, small_images: Emulator, model: str, quality: str, size: str
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, api="images")
    result = generator.generate("a lighthouse at dusk", model=model, quality=quality, size=size, n=2, partial_images=2)
    cost = result.cost
    assert cost is not None and cost.estimate is not None and cost.actual is not None
    assert cost.estimate.usd is not None and cost.actual.usd is not None
    assert cost.estimate.usd >= cost.actual.usd
    assert cost.actual.images == 2 and len(result.images) == 2
    # The partial images were billed (the emulator adds their tokens): the same call without them costs less.
    plain = generator.generate("a lighthouse at dusk", model=model, quality=quality, size=size, n=2)
    assert plain.cost is not None and plain.cost.actual is not None and plain.cost.actual.usd is not None
    assert plain.cost.actual.usd < cost.actual.usd


def test_input_images_and_continuation_stay_under_the_estimate(
    tmp_path: Path, openai_client: OpenAI, small_images: Emulator
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False)
    first = generator.generate("a cat", model="gpt-image-1.5", quality="low", size="1024x1024", session="s")
    edit = generator.edit(
        "make it blue", [first.image, _png(), _png()], model="gpt-image-1.5", quality="high", size="1536x1024"
    )
    assert edit.cost is not None and edit.cost.estimate is not None and edit.cost.actual is not None
    assert edit.cost.estimate.usd is not None and edit.cost.actual.usd is not None
    assert edit.cost.estimate.usd >= edit.cost.actual.usd


async def test_async_results_carry_costs_and_totals_add_up(
    tmp_path: Path, async_openai_client: AsyncOpenAI, small_images: Emulator
) -> None:
    generator = ImageGenerator(store=tmp_path, async_client=async_openai_client, background=False)
    before = process_spending()
    results = [
        await generator.agenerate("a boat", model="gpt-image-1.5", quality="low", size="1024x1024", session=s)
        for s in ("a", "a", "b")
    ]
    actual = [r.cost.actual.usd for r in results if r.cost and r.cost.actual and r.cost.actual.usd is not None]
    assert len(actual) == 3
    assert generator.spending().usd == sum(actual, Decimal(0))
    assert generator.spending().images == 3 and generator.spending().calls == 3
    assert generator.spending("a").usd == actual[0] + actual[1]
    assert generator.spending("b").images == 1
    after = process_spending()
    assert after.usd - before.usd >= sum(actual, Decimal(0))  # other generators may run in this process too
    assert after.calls - before.calls >= 3


def test_unpriced_model_has_an_unknown_cost_not_a_guess(
    tmp_path: Path, openai_client: OpenAI, small_images: Emulator
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False)
    result = generator.generate("a tree", quality="low", size="1024x1024")  # the default model: no token table
    cost = result.cost
    assert cost is not None and cost.estimate is not None and cost.estimate.usd is None and cost.estimate.unknown
    # Its token prices are published, so the actual cost from the reported usage is known.
    assert cost.actual is not None and cost.actual.usd is not None
    assert generator.spending().unpriced_calls == 0
    assert "cost_usd" in result.image.summary()


def test_completion_window_reaches_the_wire_and_discounts_the_text_model(
    tmp_path: Path, openai_client: OpenAI, small_images: Emulator
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, completion_window="8h")
    result = generator.generate("a quiet harbour", model="gpt-image-1.5", quality="low", size="1024x1024")
    body = small_images.requests_to("/responses", "POST")[-1].json
    assert isinstance(body, dict)
    assert body["background_options"] == {"completion_window": "8h"} and body["background"] is True
    assert result.cost is not None and result.cost.actual is not None
    assert result.cost.actual.completion_window == "8h"
    standard = pricing.actual_cost(
        result.image.usage, model="gpt-image-1.5", text_model=result.image.text_model, completion_window=None
    )
    assert standard.usd is not None and result.cost.actual.usd is not None
    assert result.cost.actual.usd < standard.usd


def test_completion_window_is_validated_before_any_request(
    tmp_path: Path, openai_client: OpenAI, small_images: Emulator
) -> None:
    with pytest.raises(ConfigurationError, match="completion_window"):
        ImageGenerator(store=tmp_path, client=openai_client, completion_window="1h")
    with pytest.raises(ConfigurationError, match="background"):
        ImageGenerator(store=tmp_path, client=openai_client, completion_window="2h", background=False)
    with pytest.raises(ConfigurationError, match="Images API"):
        ImageGenerator(store=tmp_path, client=openai_client, completion_window="2h", api="images")
    generator = ImageGenerator(store=tmp_path, client=openai_client, completion_window="2h")
    with pytest.raises(InvalidOptionsError, match="partial_images"):
        generator.generate("x", partial_images=2)
    with pytest.raises(ConfigurationError, match="streaming"):
        next(iter(generator.stream_generate("x")))
    assert small_images.requests_to("/responses", "POST") == []


def test_the_emulator_refuses_a_discounted_window_without_background(
    openai_client: OpenAI, small_images: Emulator
) -> None:
    import openai

    with pytest.raises(openai.BadRequestError, match="completion window"):
        openai_client.responses.create(
            model="gpt-5.4-mini",
            input="x",
            tools=[{"type": "image_generation"}],
            # extra_body: the server's check, on every supported SDK (openai 3.30 has no background_options).
            extra_body={"background_options": {"completion_window": "2h"}},
        )
    with pytest.raises(openai.BadRequestError, match="Supported values"):
        openai_client.responses.create(
            model="gpt-5.4-mini",
            input="x",
            background=True,
            extra_body={"background_options": {"completion_window": "1h"}},
        )


def test_usage_reports_partial_tokens_from_the_emulator_rules(
    tmp_path: Path, openai_client: OpenAI, small_images: Emulator
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, api="images")
    plain = generator.generate("x", model="gpt-image-1.5", quality="low", size="1024x1024")
    streamed = generator.generate("x", model="gpt-image-1.5", quality="low", size="1024x1024", partial_images=3)
    assert isinstance(plain.usage, Usage) and plain.usage.image is not None
    assert streamed.usage is not None and streamed.usage.image is not None
    assert plain.usage.image.output_tokens == 272
    assert streamed.usage.image.output_tokens == 272 + 3 * 100
