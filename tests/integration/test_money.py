"""Money: a paid image is never lost or paid twice. Every fault here happens after (or instead of) a real answer
of the emulator, through the real SDK over HTTP; the emulator's generation ledger counts what was billed."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest
from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageGenerator
from imagegen_tool.errors import (
    APIError,
    GenerationFailedError,
    ImageGenerationError,
    MalformedResponseError,
    ModerationBlockedError,
    QuotaExceededError,
    StorageError,
)
from imagegen_tool.testing import Emulator
from tests.integration.conftest import image_files


def _billed(emulator: Emulator) -> list[int]:
    return list(emulator.generations_per_response().values())


def test_default_call_runs_in_background_and_polls_by_id(
    generator: ImageGenerator, imagegen_emulator: Emulator
) -> None:
    result = generator.generate("a lighthouse", quality="low")
    (create,) = imagegen_emulator.requests_to("/v1/responses")
    assert create.json["background"] is True and create.json["store"] is True
    polls = [r for r in imagegen_emulator.requests if r.method == "GET"]
    assert polls and all(r.path == f"/v1/responses/{result.response_id}" for r in polls)
    assert _billed(imagegen_emulator) == [1]


def test_opt_out_sends_a_plain_call(imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client, background=False)
    generator.generate("a lighthouse")
    (create,) = imagegen_emulator.requests_to("/v1/responses")
    assert "background" not in create.json
    assert [r.method for r in imagegen_emulator.requests] == ["POST"]


def test_background_needs_stored_responses(store_dir: Path) -> None:
    from imagegen_tool.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="store"):
        ImageGenerator(store=store_dir, api_key="k", store_responses=False, background=True)


def test_dropped_poll_after_the_image_is_retried_not_rebought(
    generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    imagegen_emulator.drop_after_image(times=2)
    result = generator.generate("a lighthouse")
    assert image_files(store_dir) == [Path(result.image.path or "").name]
    assert _billed(imagegen_emulator) == [1]
    assert len(imagegen_emulator.requests_to("/v1/responses")) == 1


async def test_async_dropped_poll_is_retried(
    store_dir: Path, async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(store=store_dir, async_client=async_openai_client)
    imagegen_emulator.drop_after_image()
    imagegen_emulator.answer_with_html(path=None, method="GET")
    result = await generator.agenerate("a lighthouse")
    assert Path(result.image.path or "").is_file()
    assert _billed(imagegen_emulator) == [1]


def test_cut_json_body_names_the_response_and_is_retrieved_once(
    imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client, background=False)
    imagegen_emulator.answer_with_bad_json(path="/responses", method="POST")
    result = generator.generate("a lighthouse")
    gets = [r for r in imagegen_emulator.requests if r.method == "GET"]
    assert [r.path for r in gets] == [f"/v1/responses/{result.response_id}"]
    assert _billed(imagegen_emulator) == [1]


def test_unreadable_body_and_failed_retrieve_name_the_response(
    imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client, background=False)
    imagegen_emulator.answer_with_bad_json(path="/responses", method="POST")
    imagegen_emulator.answer_with_html(method="GET")
    with pytest.raises(MalformedResponseError) as caught:
        generator.generate("a lighthouse")
    (billed,) = imagegen_emulator.generations_per_response()
    assert caught.value.response_id == billed and billed in str(caught.value)
    assert not caught.value.retryable and "not your arguments" in caught.value.agent_message
    recovered = generator.recover(billed)
    assert recovered.response_id == billed and Path(recovered.image.path or "").is_file()
    assert _billed(imagegen_emulator) == [1]


def test_html_page_with_status_200_is_a_typed_error(
    imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client, background=False)
    imagegen_emulator.answer_with_html(path="/responses", method="POST")
    with pytest.raises(MalformedResponseError, match="HTML"):
        generator.generate("a lighthouse")
    assert len(imagegen_emulator.requests_to("/v1/responses")) == 1  # never re-sent automatically


def test_insufficient_quota_is_not_retried(imagegen_emulator: Emulator, store_dir: Path) -> None:
    generator = ImageGenerator(store=store_dir, base_url=imagegen_emulator.url, api_key="sk-test")
    imagegen_emulator.fail_next(429, code="insufficient_quota", times=5)
    with pytest.raises(QuotaExceededError) as caught:
        generator.generate("a lighthouse")
    assert not caught.value.retryable
    assert "billing" in caught.value.agent_message and "will not help" in caught.value.agent_message
    assert len(imagegen_emulator.requests_to("/v1/responses")) == 1
    generator.close()


def test_rate_limit_is_retried_with_retry_after(imagegen_emulator: Emulator, store_dir: Path) -> None:
    generator = ImageGenerator(store=store_dir, base_url=imagegen_emulator.url, api_key="sk-test")
    imagegen_emulator.fail_next(429, retry_after=0.2, path="/responses")
    result = generator.generate("a lighthouse")
    assert result.image.id
    assert [r.status for r in imagegen_emulator.requests_to("/v1/responses")] == [429, 200]
    generator.close()


def test_rate_limit_error_keeps_retry_after(
    imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client)  # a client with max_retries=0
    imagegen_emulator.fail_next(429, retry_after=3)
    with pytest.raises(APIError) as caught:
        generator.generate("a lighthouse")
    assert (caught.value.retryable, caught.value.retry_after) == (True, 3.0)
    assert "3 s" in caught.value.agent_message


@pytest.mark.parametrize("background", [True, False])
def test_in_stream_moderation_error_is_a_moderation_block(
    imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path, background: bool
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client, background=background)
    imagegen_emulator.error_in_next_stream("moderation_blocked", after_events=3)
    with pytest.raises(ModerationBlockedError) as caught:
        generator.generate("a lighthouse", partial_images=1)
    assert not caught.value.retryable and "Do not retry" in caught.value.agent_message


def test_in_stream_server_error_is_retryable(
    imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client)
    imagegen_emulator.error_in_next_stream("server_error", after_events=2)
    with pytest.raises(GenerationFailedError) as caught:
        generator.generate("a lighthouse", partial_images=1)
    assert caught.value.retryable and caught.value.code == "server_error"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_storage_failure_keeps_the_paid_image_recoverable(
    imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client)
    store_dir.mkdir(parents=True)
    store_dir.chmod(0o500)
    try:
        with pytest.raises(StorageError) as caught:
            generator.generate("a lighthouse")
    finally:
        store_dir.chmod(0o700)
    error = caught.value
    assert error.response_id and error.response_id in str(error)
    assert error.undelivered and error.undelivered[0][1][:8] == b"\x89PNG\r\n\x1a\n"
    first = generator.recover(error.response_id)
    again = generator.recover(error.response_id)
    assert [i.id for i in again.images] == [i.id for i in first.images]
    assert len(image_files(store_dir)) == 1
    assert _billed(imagegen_emulator) == [1]


def test_storage_failure_of_any_kind_is_typed_and_recoverable(
    imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client)

    def disk_full(*args: object, **kwargs: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(generator.store, "save", disk_full)
    with pytest.raises(StorageError) as caught:
        generator.generate("a lighthouse")
    assert caught.value.response_id
    assert "recover" in str(caught.value) and "Do not generate it again" in caught.value.agent_message
    monkeypatch.undo()
    recovered = generator.recover(caught.value.response_id)
    assert recovered.image.response_id == caught.value.response_id
    # Judged per response: a render finishing late from an earlier test may share the emulator's ledger.
    billed = imagegen_emulator.generations_per_response()
    assert billed.get(caught.value.response_id) == 1 and set(billed.values()) == {1}


def test_unwritable_session_pointer_still_returns_the_images(
    generator: ImageGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(generator.store, "set_latest", read_only)
    result = generator.generate("a lighthouse", session="thread-1")
    assert Path(result.image.path or "").is_file()


def test_unwritable_previews_are_not_fatal(generator: ImageGenerator, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(generator.store, "save_partial", read_only)
    result = generator.generate("a lighthouse", partial_images=2)
    assert Path(result.image.path or "").is_file()


def test_recover_unknown_response_is_a_typed_error(generator: ImageGenerator) -> None:
    with pytest.raises(APIError) as caught:
        generator.recover("resp_does_not_exist")
    assert caught.value.status_code == 404


def test_eight_threads_share_one_client(imagegen_emulator: Emulator, store_dir: Path) -> None:
    generator = ImageGenerator(store=store_dir, base_url=imagegen_emulator.url, api_key="sk-test")
    backend = generator.backend
    barrier = threading.Barrier(8)
    clients: list[object] = []

    def first_call() -> None:
        barrier.wait()
        clients.append(backend.client)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in clients}) == 1
    generator.close()
    assert clients[0].is_closed()  # type: ignore[attr-defined]


def test_async_client_closed_when_the_loop_ends_and_when_replaced(imagegen_emulator: Emulator, store_dir: Path) -> None:
    generator = ImageGenerator(store=store_dir, base_url=imagegen_emulator.url, api_key="sk-test")
    backend = generator.backend

    async def call() -> object:
        await generator.agenerate("a kite")
        return backend.async_client  # type: ignore[attr-defined]

    first = asyncio.run(call())
    assert first.is_closed()  # type: ignore[attr-defined]  # closed by the loop's shutdown, no aclose() needed
    second = asyncio.run(call())
    assert second is not first and second.is_closed()  # type: ignore[attr-defined]


async def test_leaving_async_with_closes_the_stream_and_removes_previews(
    generator: ImageGenerator, imagegen_emulator: Emulator, store_dir: Path
) -> None:
    imagegen_emulator.set_partial_delay(0.2)
    async with generator.astream_generate("a kite", partial_images=3) as events:
        async for event in events:
            if event.type == "partial_image":
                assert Path(event.partial.path or "").is_file()
                break
    assert [p for p in store_dir.iterdir() if ".partial-" in p.name] == []


def test_breaking_out_of_stream_generate_closes_it(generator: ImageGenerator, store_dir: Path) -> None:
    with generator.stream_generate("a kite", partial_images=2) as events:
        for event in events:
            if event.type == "partial_image":
                break
    assert [p for p in store_dir.iterdir() if ".partial-" in p.name] == []


def test_every_failure_is_typed(imagegen_emulator: Emulator, openai_client: OpenAI, store_dir: Path) -> None:
    generator = ImageGenerator(store=store_dir, client=openai_client, background=False)
    for plan in (
        lambda: imagegen_emulator.answer_with_html(path="/responses"),
        lambda: imagegen_emulator.answer_with_bad_json(path="/responses"),
        lambda: imagegen_emulator.fail_next(500),
        lambda: imagegen_emulator.drop_after_image(path="/responses"),
    ):
        imagegen_emulator.reset()
        plan()
        imagegen_emulator.answer_with_html(method="GET")  # and the retrieve fails too
        with pytest.raises(ImageGenerationError):
            generator.generate("a lighthouse")


def test_recover_needs_a_backend_that_keeps_responses(imagegen_emulator: Emulator, store_dir: Path) -> None:
    from imagegen_tool.errors import ConfigurationError

    generator = ImageGenerator(store=store_dir, base_url=imagegen_emulator.url, api_key="sk-test", api="images")
    with pytest.raises(ConfigurationError, match="recover"):
        generator.recover("resp_123")
    assert imagegen_emulator.requests == []
    generator.close()
