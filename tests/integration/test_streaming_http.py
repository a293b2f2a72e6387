"""Streaming against the emulator: 0-3 partials, order, callbacks, cut streams, gif, parity with the plain call."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from openai import AsyncOpenAI, OpenAI
from PIL import Image

from imagegen_tool import (
    GenerationCompleted,
    ImageGenerator,
    PartialImageEvent,
    ProgressEvent,
    StreamEvent,
    StreamInterruptedError,
)
from imagegen_tool.testing import Emulator
from tests.integration.conftest import image_files


def _partials(events: list[StreamEvent]) -> list[PartialImageEvent]:
    return [e for e in events if isinstance(e, PartialImageEvent)]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_partials_arrive_in_order_as_stored_images_then_the_final(
    generator: ImageGenerator, imagegen_emulator: Emulator, count: int
) -> None:
    seen: list[StreamEvent] = []
    paths_existed: list[bool] = []

    def on_event(event: StreamEvent) -> None:
        seen.append(event)
        if isinstance(event, PartialImageEvent):
            paths_existed.append(Path(event.partial.path or "").exists())
            with Image.open(event.partial.path or "") as opened:
                assert opened.size == (1024, 1024)

    result = generator.generate("a forest", partial_images=count, quality="low", on_event=on_event)
    partials = _partials(seen)
    assert [p.partial.index for p in partials] == list(range(count))
    assert all(paths_existed)
    assert all(p.partial.data[:4] == b"\x89PNG" for p in partials)
    assert isinstance(seen[-1], GenerationCompleted)
    assert seen[-1].result == result
    assert imagegen_emulator.requests_to("/v1/responses")[0].json["stream"] is True
    stages = [e.stage for e in seen if isinstance(e, ProgressEvent)]
    assert stages.index("generating") < stages.index("completed")


def test_partial_files_are_removed_after_completion_unless_kept(
    store_dir: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    plain = ImageGenerator(store=store_dir, client=openai_client)
    result = plain.generate("a fox", partial_images=2)
    assert image_files(store_dir) == [Path(result.image.path or "").name]
    assert not any(".partial-" in p.name for p in store_dir.rglob("*"))
    keeping = ImageGenerator(store=store_dir, client=openai_client, keep_partials=True)
    kept = keeping.generate("a fox", partial_images=2)
    assert sum(".partial-" in p.name for p in store_dir.rglob("*")) == 2
    assert kept.image.id in " ".join(image_files(store_dir))


def test_streamed_result_matches_the_plain_call(generator: ImageGenerator) -> None:
    plain = generator.generate("a blue whale", quality="low").image
    streamed = generator.generate("a blue whale", quality="low", partial_images=1).image
    assert streamed.sha256 == plain.sha256
    assert (streamed.width, streamed.height, streamed.mime_type, streamed.revised_prompt) == (
        plain.width,
        plain.height,
        plain.mime_type,
        plain.revised_prompt,
    )
    assert streamed.reported == plain.reported
    assert streamed.usage is not None
    assert streamed.usage.image is not None


def test_stream_generate_iterator_yields_in_order(generator: ImageGenerator) -> None:
    events = list(generator.stream_generate("a comet", partial_images=2))
    kinds = [e.type for e in events]
    assert kinds[-1] == "completed"
    assert kinds.count("completed") == 1
    assert kinds.count("partial_image") == 2
    assert kinds.index("partial_image") < kinds.index("completed")


def test_cut_stream_raises_and_leaves_no_final_file(
    imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path
) -> None:
    # Without stored responses nothing can be resumed or retrieved: the cut is an error, and retrying is fine.
    generator = ImageGenerator(store=store_dir, client=openai_client, store_responses=False)
    imagegen_emulator.cut_next_stream(after_events=7)
    seen: list[StreamEvent] = []
    with pytest.raises(StreamInterruptedError) as caught:
        generator.generate("a storm", partial_images=2, on_event=seen.append)
    assert caught.value.retryable
    assert not any(isinstance(e, GenerationCompleted) for e in seen)
    assert image_files(store_dir) == []


def test_cut_background_stream_resumes_without_paying_twice(
    generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    imagegen_emulator.cut_next_stream(after_events=7)
    seen: list[StreamEvent] = []
    result = generator.generate("a storm", partial_images=2, on_event=seen.append)
    assert image_files(store_dir) == [Path(result.image.path or "").name]
    assert [type(e).__name__ for e in seen].count("PartialImageEvent") == 2  # none repeated by the resume
    assert list(imagegen_emulator.generations_per_response().values()) == [1]
    (resumed,) = [r for r in imagegen_emulator.requests if r.method == "GET"]
    assert resumed.query["stream"] == "true" and int(resumed.query["starting_after"]) == 6


def test_slow_partials_are_delivered_before_the_stream_ends(
    generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    imagegen_emulator.set_partial_delay(0.3)
    stream = generator.stream_generate("a sunrise", partial_images=2)
    first_partial = next(e for e in stream if isinstance(e, PartialImageEvent))
    assert first_partial.partial.index == 0
    rest = list(stream)
    assert isinstance(rest[-1], GenerationCompleted)


def test_gif_streams_lifecycle_events_without_partials(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    seen: list[StreamEvent] = []
    result = generator.generate(
        "a waving flag", model="gpt-image-2.6-flare", output_format="gif", frame_count=3, on_event=seen.append
    )
    assert _partials(seen) == []
    assert any(isinstance(e, ProgressEvent) and e.stage == "generating" for e in seen)
    assert result.image.mime_type == "image/gif"
    assert "partial_images" not in imagegen_emulator.requests_to("/v1/responses")[0].json["tools"][0]


async def test_async_callback_variants(generator: ImageGenerator) -> None:
    received: list[int] = []
    loop_thread = threading.get_ident()

    async def on_event(event: StreamEvent) -> None:
        assert threading.get_ident() == loop_thread
        await asyncio.sleep(0)
        if isinstance(event, PartialImageEvent):
            received.append(event.partial.index)

    result = await generator.agenerate("a meadow", partial_images=3, on_event=on_event)
    assert received == [0, 1, 2]
    sync_seen: list[StreamEvent] = []
    await generator.agenerate("a meadow", partial_images=1, on_event=sync_seen.append)
    assert isinstance(sync_seen[-1], GenerationCompleted)
    assert Path(result.image.path or "").exists()


async def test_astream_generate_and_cut_stream(
    store_dir: Path, async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(store=store_dir, async_client=async_openai_client)
    kinds = [e.type async for e in generator.astream_generate("a moon", partial_images=1)]
    assert kinds.count("partial_image") == 1
    assert kinds[-1] == "completed"
    imagegen_emulator.cut_next_stream(after_events=5)
    kinds = [e.type async for e in generator.astream_generate("a moon", partial_images=1)]  # resumed
    assert kinds.count("partial_image") == 1 and kinds[-1] == "completed"
    assert len(image_files(store_dir)) == 2
    assert sorted(imagegen_emulator.generations_per_response().values()) == [1, 1]
    unstored = ImageGenerator(store=store_dir, async_client=async_openai_client, store_responses=False)
    imagegen_emulator.cut_next_stream(after_events=5)
    with pytest.raises(StreamInterruptedError):
        async for _ in unstored.astream_generate("a moon", partial_images=1):
            pass
    assert len(image_files(store_dir)) == 2


def test_streaming_moderation_is_typed(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    from imagegen_tool import ModerationBlockedError

    imagegen_emulator.block_next_with_moderation(["violence"])
    with pytest.raises(ModerationBlockedError):
        generator.generate("a duel", partial_images=2)


def test_cut_after_the_final_item_keeps_the_paid_image(generator: ImageGenerator, imagegen_emulator: Emulator) -> None:
    # With one partial, event 9 is output_item.done for the image: cut right after it, before response.completed.
    imagegen_emulator.cut_next_stream(after_events=10)
    result = generator.generate("a harbour", partial_images=1)
    with Image.open(result.image.path or "") as opened:
        assert opened.size == (1024, 1024)
    # The cut stream was resumed after its last event: response.completed (with usage) came, nothing was re-bought.
    assert result.usage is not None
    assert list(imagegen_emulator.generations_per_response().values()) == [1]
    assert result.image.revised_prompt
