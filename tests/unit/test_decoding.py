"""Base64 decoding: strictly the standard library's answers, and never while holding the event loop.

The loop tests judge by ticks, never by time: a decode runs on the loop's thread (or holds the GIL) exactly when
no loop tick can happen between its start and its end. Each test decodes large strings until one decode has seen
the loop tick while it ran, so a slow or loaded machine only makes it take more rounds, never fail; a decoder
that blocks the loop can never see a tick and fails after the last round.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import threading
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegen_tool import decoding

# 16 MB of base64 (12 MB of image): above the inline limits of both decoders, so it goes to the decode thread.
LARGE = base64.b64encode(os.urandom(12 * 1024 * 1024)).decode("ascii")
ROUNDS = 40  # on a loaded machine a round may see no tick; forty rounds without one means a blocked loop


@pytest.fixture(params=["pybase64", "stdlib-chunked"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with each decoder: the SIMD one, and the chunked standard-library fallback."""
    if request.param == "stdlib-chunked":
        monkeypatch.setattr(decoding, "_fast", None)
        monkeypatch.setattr(decoding, "_fast_checked", True)
    elif decoding.decoder_name() != "pybase64":
        pytest.skip("pybase64's C extension is not available here")
    assert decoding.decoder_name() == request.param
    return str(request.param)


def _outcome(decode: Callable[[str], bytes], data: str) -> bytes | str:
    """The decoded bytes, or "error" for what the caller catches (``binascii.Error`` or ``ValueError``)."""
    try:
        return decode(data)
    except (binascii.Error, ValueError):
        return "error"


VALID = base64.b64encode(os.urandom(700_000)).decode("ascii")  # several chunks of the fallback decoder
CHUNK = decoding.CHUNK_CHARS

CASES = [
    "",
    "YQ==",
    "YWI=",
    "YWJj",
    "YQ=",
    "YQ",
    "Y Q==",
    "YQ==YQ==",
    "=YQ=",
    "YW=j",
    "YWJj\n",
    "YWJj\r\n",
    "data:image/png;base64,YWJj",
    "é",
    VALID,
    VALID[:-1],
    VALID + "=",
    VALID[: CHUNK - 1] + "=" + VALID[CHUNK:],  # padding ending an inner chunk
    VALID[: CHUNK - 2] + "==" + VALID[CHUNK:],
    VALID[:CHUNK] + "=" + VALID[CHUNK + 1 :],  # padding starting an inner chunk
    VALID[:CHUNK] + "!" + VALID[CHUNK + 1 :],
    VALID[:100] + "-_" + VALID[102:],  # the URL-safe alphabet is not the API's
]


@pytest.mark.parametrize("data", CASES, ids=range(len(CASES)))
def test_same_answer_as_the_standard_library(decoder: str, data: str) -> None:
    expected = _outcome(lambda s: base64.b64decode(s, validate=True), data)
    assert _outcome(decoding.b64decode, data) == expected


@given(st.binary(max_size=3000), st.integers(0, 3))
def test_round_trip_and_truncation_match_the_standard_library(payload: bytes, cut: int) -> None:
    encoded = base64.b64encode(payload).decode("ascii")
    assert decoding.b64decode(encoded) == payload
    assert decoding._chunked_b64decode(encoded) == payload
    truncated = encoded[: len(encoded) - cut]
    expected = _outcome(lambda s: base64.b64decode(s, validate=True), truncated)
    assert _outcome(decoding._chunked_b64decode, truncated) == expected


def test_chunked_decoder_handles_many_chunks_and_bytes_input() -> None:
    assert decoding._chunked_b64decode(VALID.encode()) == base64.b64decode(VALID)
    assert decoding._chunked_b64decode(VALID) == base64.b64decode(VALID)


async def _ticked_during_a_decode() -> tuple[bool, int, bool]:
    """Decode LARGE up to ROUNDS times through ``adecode_b64``; say whether the loop ticked between the start
    and the end of one of those decodes, after how many rounds, and whether a decode ran on the loop's thread."""
    ticks = 0
    seen: list[bool] = []
    threads: set[int] = set()
    original = decoding.b64decode

    def watched(data: str | bytes) -> bytes:
        threads.add(threading.get_ident())
        before = ticks
        result = original(data)
        seen.append(ticks != before)
        return result

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    decoding.b64decode = watched  # type: ignore[assignment]
    rounds = 0
    try:
        while rounds < ROUNDS and not any(seen):
            assert await decoding.adecode_b64(LARGE) == EXPECTED_LARGE
            rounds += 1
    finally:
        decoding.b64decode = original  # type: ignore[assignment]
        task.cancel()
    return any(seen), rounds, threading.get_ident() in threads


EXPECTED_LARGE = base64.b64decode(LARGE)


async def test_large_decode_leaves_the_event_loop_running(decoder: str) -> None:
    ticked, rounds, on_loop = await _ticked_during_a_decode()
    assert not on_loop, "a large image was decoded on the event loop's thread"
    assert ticked, f"the event loop never ticked while {decoder} decoded ({rounds} decodes of {len(LARGE)} chars)"


async def test_the_check_catches_a_decode_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: decoding inline (as if the limits were huge) never lets the loop tick."""
    monkeypatch.setattr(decoding, "FAST_INLINE_LIMIT", len(LARGE))
    monkeypatch.setattr(decoding, "SLOW_INLINE_LIMIT", len(LARGE))
    ticked, rounds, on_loop = await _ticked_during_a_decode()
    assert on_loop
    assert not ticked
    assert rounds == ROUNDS


async def test_small_strings_decode_inline_without_a_thread_hop() -> None:
    assert await decoding.adecode_b64("YWJj") == b"abc"
    with pytest.raises(binascii.Error):
        await decoding.adecode_b64("YWJ")
