"""An async streamed call ends the SDK's whole event stream before it returns, not only the HTTP response.

Leaving ``async for`` over an SDK ``AsyncStream`` with ``break`` after the terminal event left its event generators
suspended inside the HTTP library's body iterator; the event loop then finalized them, out of order, which the
lowest supported ``httpcore2`` reports as "an error occurred during closing of asynchronous generator" (found by
the lowest-versions job through the benchmark suite). Judged on any version by the event loop's own bookkeeping:
no async generator of the SDK or its HTTP stack is handed to the loop's finalizer (garbage-collected unfinished)
or left suspended once the call has returned."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageGenerator, StreamEvent
from imagegen_tool.testing import Emulator

_HTTP_STACK = ("/openai/", "/httpx", "/httpcore", "/anyio/")


def _from_http_stack(agen: AsyncGenerator[Any, Any]) -> bool:
    return any(part in agen.ag_code.co_filename for part in _HTTP_STACK)


@contextmanager
def _unfinished_http_generators() -> Iterator[list[str]]:
    """Names of the SDK's/HTTP stack's async generators that were finalized by the garbage collector or are still
    suspended when the block ends (a generator that ran to its end or was closed explicitly is neither)."""
    hooks = sys.get_asyncgen_hooks()
    found: list[str] = []

    def finalizer(agen: AsyncGenerator[Any, Any]) -> None:
        if _from_http_stack(agen):
            found.append(f"finalized: {agen.ag_code.co_qualname}")
        if hooks.finalizer is not None:
            hooks.finalizer(agen)

    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
    try:
        yield found
        gc.collect()
        tracked = getattr(asyncio.get_running_loop(), "_asyncgens", ())
        found.extend(
            f"suspended: {agen.ag_code.co_qualname}"
            for agen in list(tracked)
            if agen.ag_frame is not None and _from_http_stack(agen)
        )
    finally:
        sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=hooks.finalizer)


@pytest.mark.parametrize("api", ["responses", "images"])
async def test_streamed_call_leaves_no_unfinished_http_generator(
    api: str, store_dir: Path, openai_client: OpenAI, async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(store=store_dir, api=api, client=openai_client, async_client=async_openai_client)
    seen: list[StreamEvent] = []

    async def on_event(event: StreamEvent) -> None:
        seen.append(event)

    with _unfinished_http_generators() as unfinished:
        for attempt in range(2):
            result = await generator.agenerate(f"a red kite {attempt}", partial_images=2, on_event=on_event)
            assert result.images
            gc.collect()
            await asyncio.sleep(0)  # let the loop run any finalizer it was handed
    assert unfinished == []
    assert seen
