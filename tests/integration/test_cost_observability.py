"""Cost where people watch it: OpenTelemetry spans (GenAI semantic conventions, checked with the SDK's in-memory
exporter), the agent tool's text and structured result, the LangChain ToolMessage's metadata, and the agent
message of a refused call."""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI
from PIL import Image

from imagegen_tool import ImageGenerator
from imagegen_tool.agent_tool import AgentImageTool
from imagegen_tool.budget import Budget
from imagegen_tool.errors import ImageGenerationError
from imagegen_tool.langchain import ImageGenerationTool
from imagegen_tool.testing import Emulator

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

LOW = {"model": "gpt-image-1.5", "quality": "low", "size": "1024x1024"}
_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider() -> None:
    # The global provider can be set once per process; later tests in this process keep this one.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _ours(exporter: InMemorySpanExporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("generate_content")]


def test_a_call_is_one_genai_span_with_tokens_and_cost(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator, spans: InMemorySpanExporter
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False)
    result = generator.generate("a fox", **LOW)
    [span] = _ours(spans)
    attributes = dict(span.attributes or {})
    assert span.name == "generate_content gpt-image-1.5" and span.kind == trace.SpanKind.CLIENT
    assert attributes["gen_ai.operation.name"] == "generate_content"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-image-1.5"
    assert attributes["gen_ai.response.id"] == result.response_id
    usage = result.usage
    assert usage is not None and usage.text is not None and usage.image is not None
    assert attributes["gen_ai.usage.input_tokens"] == usage.text.input_tokens + usage.image.input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == usage.text.output_tokens + usage.image.output_tokens
    assert result.cost is not None and result.cost.actual is not None and result.cost.estimate is not None
    assert attributes["imagegen.cost.usd"] == pytest.approx(float(result.cost.actual.usd or 0))
    assert attributes["imagegen.cost.estimate_usd"] == pytest.approx(float(result.cost.estimate.usd or 0))
    assert span.end_time is not None and span.start_time is not None and span.end_time > span.start_time
    assert span.status.status_code != trace.StatusCode.ERROR


async def test_failed_and_streamed_calls_are_spans_too(
    tmp_path: Path, async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator, spans: InMemorySpanExporter
) -> None:
    generator = ImageGenerator(store=tmp_path, async_client=async_openai_client, background=False)
    imagegen_emulator.fail_next(400)
    with pytest.raises(ImageGenerationError):
        await generator.agenerate("a fox", **LOW)
    imagegen_emulator.set_payload(image_bytes=_png(), partial_image_bytes=_png())
    await generator.agenerate("a fox", partial_images=2, **LOW)
    failed, streamed = _ours(spans)
    assert failed.status.status_code == trace.StatusCode.ERROR and failed.attributes["error.type"]
    assert streamed.status.status_code != trace.StatusCode.ERROR
    assert streamed.attributes["imagegen.cost.usd"] > 0 and streamed.attributes["gen_ai.usage.output_tokens"] > 0


def test_the_agent_sees_the_cost_in_text_and_structured_result(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False, options=LOW)
    tool = AgentImageTool(generator=generator)
    output = tool.call({"prompt": "a fox"})
    assert output.result is not None and output.result.cost is not None and output.result.cost.actual is not None
    usd = output.result.cost.actual.usd
    assert usd is not None
    assert "Cost of this call: $" in output.text
    structured = output.structured()
    assert structured.cost_usd == pytest.approx(float(usd)) and structured.estimated_cost_usd is not None
    assert "cost_usd" in type(structured).json_schema()["properties"]


def test_a_refused_call_tells_the_agent_what_was_spent_and_not_to_retry(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(
        store=tmp_path, client=openai_client, background=False, options=LOW, budget=Budget(max_images=1)
    )
    tool = AgentImageTool(generator=generator)
    assert not tool.call_safely({"prompt": "one"}).is_error
    refused = tool.call_safely({"prompt": "two"})
    assert refused.is_error and refused.error_type == "BudgetExceededError"
    assert "1 of 1 images used" in refused.text and "will not help" in refused.text
    assert refused.structured().retryable is False
    assert len(imagegen_emulator.requests_to("/responses", "POST")) == 1


def test_the_langchain_tool_message_carries_cost_and_usage(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False, options=LOW)
    tool = ImageGenerationTool(generator=generator)
    message = tool.invoke({"type": "tool_call", "id": "call_1", "name": tool.name, "args": {"prompt": "a fox"}})
    metadata = message.response_metadata["imagegen"]
    [image] = message.artifact
    assert image.cost is not None and image.cost.actual is not None
    assert Decimal(metadata["cost_usd"]) == image.cost.actual.usd
    assert metadata["usage_metadata"]["total_tokens"] > 0 and metadata["model"] == "gpt-image-1.5"
    assert "Cost of this call" in message.text


def test_a_stream_refused_by_the_budget_sends_nothing_and_ends_its_span(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator, spans: InMemorySpanExporter
) -> None:
    from imagegen_tool.errors import BudgetExceededError

    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False, budget=Budget(max_images=0))
    with pytest.raises(BudgetExceededError), generator.stream_generate("a fox", partial_images=1, **LOW) as events:
        next(iter(events))
    [span] = _ours(spans)
    assert span.attributes["error.type"] == "BudgetExceededError"
    assert imagegen_emulator.requests_to("/responses") == []
