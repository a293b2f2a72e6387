"""OpenTelemetry spans for image calls, following the GenAI semantic conventions, when ``opentelemetry-api`` is
installed (the ``[otel]`` extra); otherwise nothing is imported and nothing is recorded.

Each generate or edit call is one ``CLIENT`` span named ``generate_content <model>`` with the conventions'
attributes (``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.id``,
``gen_ai.usage.input_tokens`` / ``output_tokens``, ``error.type``) and imagegen-tool's own under ``imagegen.*``: the
actual and estimated cost in US dollars, the number of images, the API route, the text model. The span's duration
is the call's latency; a failed call sets the span status to error. Configure a tracer provider as usual (the SDK, an
exporter): the spans go wherever your other spans go.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .costs import Cost
    from .request import ImageRequest
    from .results import GenerationResult

__all__ = ["CallSpan", "call_span", "tracing_available"]

logger = logging.getLogger(__name__)

_INSTRUMENTATION = "imagegen_tool"


@functools.cache
def _trace() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace


def tracing_available() -> bool:
    """Whether ``opentelemetry-api`` is importable (spans are then recorded by the configured provider)."""
    return _trace() is not None


class CallSpan:
    """The span of one call; :meth:`finish` records the outcome (a no-op without OpenTelemetry)."""

    def __init__(self, span: Any) -> None:
        self.span = span

    def finish(self, result: GenerationResult) -> None:
        span = self.span
        if span is None:
            return
        try:
            _set_result(span, result)
        except Exception as exc:  # observability must never break a paid call
            logger.debug("could not record the span attributes: %s", exc)


@contextlib.contextmanager
def call_span(request: ImageRequest, *, api: str, text_model: str | None, estimate: Cost | None) -> Iterator[CallSpan]:
    """A span around one call: attributes of the request now, of the result on :meth:`CallSpan.finish`; an
    exception leaves with ``error.type`` and the error status."""
    trace = _trace()
    if trace is None:
        yield CallSpan(None)
        return
    model = request.options.effective_model
    tracer = trace.get_tracer(_INSTRUMENTATION)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": model,
        "gen_ai.output.type": "image",
        "imagegen.api": api,
        "imagegen.action": request.options.action or "auto",
        "imagegen.request.images": request.options.n or 1,
        "imagegen.input_images": len(request.inputs),
    }
    if request.options.size:
        attributes["imagegen.request.size"] = request.options.size
    if request.options.quality:
        attributes["imagegen.request.quality"] = request.options.quality
    if text_model and api == "responses":
        attributes["imagegen.text_model"] = text_model
    if estimate is not None and estimate.usd is not None:
        attributes["imagegen.cost.estimate_usd"] = float(estimate.usd)
    # Not made the current span: a streamed call's span stays open across yields, where attaching a context
    # in one task and detaching it in another would break the caller's context.
    span = tracer.start_span(f"generate_content {model}", kind=trace.SpanKind.CLIENT, attributes=attributes)
    try:
        yield CallSpan(span)
    except BaseException as exc:
        cancelled = isinstance(exc, GeneratorExit | asyncio.CancelledError | KeyboardInterrupt)
        span.set_attribute("error.type", "cancelled" if cancelled else type(exc).__name__)
        span.set_status(trace.Status(trace.StatusCode.ERROR, "cancelled" if cancelled else str(exc)[:200]))
        raise
    finally:
        span.end()


def _set_result(span: Any, result: GenerationResult) -> None:
    usage = result.usage
    input_tokens = output_tokens = 0
    if usage is not None:
        for part in (usage.text, usage.image):
            if part is not None:
                input_tokens += part.input_tokens
                output_tokens += part.output_tokens
        span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        if usage.image is not None:
            span.set_attribute("imagegen.usage.image_output_tokens", usage.image.output_tokens)
    if result.response_id:
        span.set_attribute("gen_ai.response.id", result.response_id)
    span.set_attribute("imagegen.images", len(result.images))
    if result.images and result.images[0].text_model:
        span.set_attribute("gen_ai.response.model", result.images[0].text_model)
    cost = result.cost
    if cost is not None and cost.actual is not None and cost.actual.usd is not None:
        span.set_attribute("imagegen.cost.usd", float(cost.actual.usd))
    if result.failures:
        span.set_attribute("imagegen.failed_calls", len(result.failures))
