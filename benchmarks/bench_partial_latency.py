"""Partial image to callback: from the emulator sending a realistic partial (~1.5 MB PNG at 1024x1024) to the
caller holding it decoded, against the raw SDK stream in the same run.

The emulator (its own process) stamps each ``partial_image`` event with ``time.perf_counter`` when it serialises
it; the client stamps it again when (a) the raw ``openai`` stream yields it and its base64 is decoded (the
baseline) and (b) ``ImageGenerator``'s ``on_event`` callback receives the stored, decoded :class:`PartialImageEvent`
(ours). Sync and async. Partials are spaced (real ones arrive seconds apart) so one event's processing never
queues the next.

    python -m benchmarks partial_latency [--quick]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from itertools import count
from pathlib import Path

from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageGenerator, PartialImageEvent, StreamEvent

from .baselines import aplain_stream, plain_stream
from .harness import TEXT_MODEL, Figure, RemoteEmulator, Settings, ainterleaved, interleaved, median

NAME = "partial_latency"
_ids = count()


def run(settings: Settings) -> list[Figure]:
    partials = 2
    spacing = settings.pick(0.05, 0.15)
    rounds = settings.pick(1, 10)
    with RemoteEmulator(realistic=True) as api, tempfile.TemporaryDirectory(prefix="imagegen-bench-") as tmp:
        api.set_partial_delay(spacing)
        figures = [_sync(api, Path(tmp), partials, rounds)]
        figures.append(asyncio.run(_async(api, Path(tmp), partials, rounds)))
        figures.append(asyncio.run(_langchain(api, Path(tmp), partials, rounds)))
    return figures


def _sync(api: RemoteEmulator, root: Path, partials: int, rounds: int) -> Figure:
    client = OpenAI(base_url=api.url, api_key="bench", max_retries=0)
    generator = ImageGenerator(store=root / "sync", client=client, text_model=TEXT_MODEL)
    received: dict[tuple[str, int], float] = {}

    def on_partial(call_id: str, index: int, data: bytes) -> None:
        received[(call_id, index)] = _now()

    def on_event(event: StreamEvent) -> None:
        if isinstance(event, PartialImageEvent):
            received[(event.partial.call_id, event.partial.index)] = _now()

    def plain() -> list[float]:
        plain_stream(client, f"plain {next(_ids)}", partials, on_partial)
        return _delays(api, received)

    def ours() -> list[float]:
        generator.generate(f"ours {next(_ids)}", partial_images=partials, on_event=on_event)
        return _delays(api, received)

    interleaved(1, {"plain": plain, "ours": ours})
    runs = interleaved(rounds, {"plain": plain, "ours": ours})
    client.close()
    return _figure("sync", runs)


async def _async(api: RemoteEmulator, root: Path, partials: int, rounds: int) -> Figure:
    client = AsyncOpenAI(base_url=api.url, api_key="bench", max_retries=0)
    generator = ImageGenerator(store=root / "async", async_client=client, text_model=TEXT_MODEL)
    received: dict[tuple[str, int], float] = {}

    def on_partial(call_id: str, index: int, data: bytes) -> None:
        received[(call_id, index)] = _now()

    async def on_event(event: StreamEvent) -> None:
        if isinstance(event, PartialImageEvent):
            received[(event.partial.call_id, event.partial.index)] = _now()

    async def plain() -> list[float]:
        await aplain_stream(client, f"plain {next(_ids)}", partials, on_partial)
        return _delays(api, received)

    async def ours() -> list[float]:
        await generator.agenerate(f"ours {next(_ids)}", partial_images=partials, on_event=on_event)
        return _delays(api, received)

    await ainterleaved(1, {"plain": plain, "ours": ours})
    runs = await ainterleaved(rounds, {"plain": plain, "ours": ours})
    await client.close()
    return _figure("async", runs)


async def _langchain(api: RemoteEmulator, root: Path, partials: int, rounds: int) -> Figure:
    """The LangChain tool's custom events (``astream_events``), with the partial's bytes in the payload (the
    tool's default), against the raw async SDK stream."""
    from imagegen_tool import ImageOptions
    from imagegen_tool.langchain import PARTIAL_IMAGE_EVENT, ImageGenerationTool

    client = AsyncOpenAI(base_url=api.url, api_key="bench", max_retries=0)
    tool = ImageGenerationTool(
        store=root / "langchain", async_client=client, options=ImageOptions(partial_images=partials)
    )
    received: dict[tuple[str, int], float] = {}

    def on_partial(call_id: str, index: int, data: bytes) -> None:
        received[(call_id, index)] = _now()

    async def plain() -> list[float]:
        await aplain_stream(client, f"plain {next(_ids)}", partials, on_partial)
        return _delays(api, received)

    async def ours() -> list[float]:
        async for event in tool.astream_events({"prompt": f"ours {next(_ids)}"}, version="v2"):
            if event["event"] == "on_custom_event" and event["name"] == PARTIAL_IMAGE_EVENT:
                received[(event["data"]["call_id"], event["data"]["index"])] = _now()
        return _delays(api, received)

    await ainterleaved(1, {"plain": plain, "ours": ours})
    runs = await ainterleaved(rounds, {"plain": plain, "ours": ours})
    await client.close()
    figure = _figure("LangChain astream_events custom event", runs)
    figure.note = "ours: decoded, stored, and the bytes put into the custom event; baseline: decoded only"
    return figure


def _now() -> float:
    return time.perf_counter()


def _delays(api: RemoteEmulator, received: dict[tuple[str, int], float]) -> list[float]:
    sent = api.take_partial_stamps()
    delays = [(received[key] - sent[key]) * 1000 for key in received if key in sent]
    received.clear()
    return delays


def _figure(mode: str, runs: dict[str, list[list[float]]]) -> Figure:
    plain = [d for batch in runs["plain"] for d in batch]
    ours = [d for batch in runs["ours"] for d in batch]
    return Figure(
        NAME,
        f"partial image to callback, {mode}, realistic 1.5 MB partials (median of {len(ours)})",
        median(plain),
        median(ours),
        "ms",
        "raw SDK stream + b64decode",
        1.05,
        note="ours: decoded and stored as a file, then the callback; baseline: decoded only",
    )


if __name__ == "__main__":  # pragma: no cover - `python -m benchmarks partial_latency` is the entry point
    import sys

    from .__main__ import main

    sys.exit(main([NAME, *sys.argv[1:]]))
