"""Batch jobs against the emulator's Batch API over real HTTP: submit, crash (kill -9), resume, collect exactly once.

The emulator runs each batch line through its direct endpoint handlers, so its generation ledger counts every
billed image; the store is counted on disk. Clocks are compressed (``set_batch_clock``) so each test takes seconds.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from imagegen_tool import ImageGenerator
from imagegen_tool.batch import (
    MAX_BATCH_REQUESTS,
    BatchNotFinishedError,
    BatchValidationError,
)
from imagegen_tool.errors import ImageNotFoundError, InvalidInputError
from imagegen_tool.testing import Emulator
from tests.integration.conftest import image_files

ROOT = Path(__file__).resolve().parents[2]


def make_generator(api: Emulator, store: Path, route: str = "images") -> ImageGenerator:
    return ImageGenerator(store=store, api_key="test", base_url=api.url, api=route)  # type: ignore[arg-type]


def posts(api: Emulator, path: str) -> int:
    return len(api.requests_to(path, "POST"))


# --- kill -9 and resume ------------------------------------------------------------------------------------


def _start(mode: str, api: Emulator, store: Path, arg: str, *, slow_save: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.batch_worker", mode, api.url, str(store), arg, str(slow_save)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(process: subprocess.Popen[str], key: str, timeout: float = 30.0) -> dict[str, object]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        message = json.loads(line)
        if key in message:
            return message  # type: ignore[no-any-return]
    process.kill()
    raise AssertionError(f"the worker never printed {key!r}: {process.stderr.read() if process.stderr else ''}")


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL


def test_twenty_prompts_survive_kill_9_while_waiting_and_while_collecting(
    imagegen_emulator: Emulator, tmp_path: Path
) -> None:
    api = imagegen_emulator
    api.set_batch_clock(per_line=0.05)  # 20 lines: about 1 s in progress, long enough to be killed waiting
    store = tmp_path / "store"

    # 1. submit, then killed while waiting for the batch
    first = _start("submit", api, store, "20")
    job_id = str(_read_until(first, "job_id")["job_id"])
    _read_until(first, "progress")
    _kill(first)
    assert api.batches[0]["status"] in ("validating", "in_progress")

    # 2. resumed in a new process on a slow disk, killed in the middle of collecting
    second = _start("resume", api, store, job_id, slow_save=0.15)
    deadline = time.monotonic() + 30
    while len(image_files(store)) < 5 and time.monotonic() < deadline and second.poll() is None:
        time.sleep(0.01)
    assert second.poll() is None, "the worker finished before it could be killed mid-collect"
    _kill(second)
    stored_before = len(image_files(store))
    assert 5 <= stored_before < 20

    # 3. resumed again: every image exactly once
    third = _start("resume", api, store, job_id)
    images = _read_until(third, "images")["images"]
    assert third.wait(30) == 0
    assert isinstance(images, list) and len(images) == 20 and len(set(images)) == 20
    assert len(image_files(store)) == 20  # no duplicate and no stray copy on disk
    assert not any(name.split(".")[0].endswith(("-2", "-3")) for name in image_files(store))

    # billed once: one upload, one batch, 20 lines run, 20 images in the ledger
    assert posts(api, "/files") == 1
    assert posts(api, "/batches") == 1
    assert len(api.batch_executions) == 20
    assert len({e.custom_id for e in api.batch_executions}) == 20
    assert len(api.generations) == 20
    assert max(Counter(g.response_id for g in api.generations).values()) == 1

    # and the job says so when read back in this process
    job = make_generator(api, store).batch_job(job_id)
    assert job.progress.images == 20 and job.progress.collected == 20
    assert len(job.collect().images) == 20
    assert len(image_files(store)) == 20


def test_a_submission_cut_after_the_batch_was_created_is_resumed_without_a_second_batch(
    imagegen_emulator: Emulator, tmp_path: Path
) -> None:
    api = imagegen_emulator
    generator = make_generator(api, tmp_path)
    job = generator.submit_batch(["a kite", "a boat"])
    # The process died after the batch was created and before the batch id was saved.
    crashed = job.manifest.model_copy(update={"batch_id": None, "status": "preparing"})
    generator.store.put_document(job.job_id, crashed.model_dump_json().encode())

    resumed = generator.batch_job(job.job_id)
    resumed.wait(poll_interval=0.05, timeout=30)
    assert resumed.batch_id == job.batch_id
    assert posts(api, "/batches") == 1 and posts(api, "/files") == 1
    assert len(resumed.collect().images) == 2


def test_a_submission_cut_before_the_upload_is_finished_on_resume(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    generator = make_generator(api, tmp_path)
    api.fail_next(500, times=5, path="/files")  # the upload fails (the SDK's own retries included)
    with pytest.raises(Exception, match="resume it later") as caught:
        generator.submit_batch(["a kite", "a boat"])
    api.clear_faults()
    job_id = next(p.job_id for p in generator.batch_jobs())
    assert job_id in str(caught.value)
    assert posts(api, "/batches") == 0
    job = generator.batch_job(job_id)
    assert job.progress.status == "preparing"
    job.wait(poll_interval=0.05, timeout=30)
    assert len(job.collect().images) == 2
    assert posts(api, "/batches") == 1


# --- outcomes of single requests -------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["images", "responses"])
def test_failed_lines_keep_their_error_and_the_others_their_images(
    imagegen_emulator: Emulator, tmp_path: Path, route: str
) -> None:
    api = imagegen_emulator
    api.fail_batch_line("broken", status=500)
    generator = make_generator(api, tmp_path, route)
    job = generator.submit_batch(
        [
            "a lighthouse at dusk",
            {"prompt": "a forbidden scene", "custom_id": "blocked"},
            {"prompt": "a harbour", "custom_id": "broken"},
            {"prompt": "a wide harbour", "size": "1536x1024", "quality": "low"},
        ]
    )
    job.wait(poll_interval=0.05, timeout=30)
    result = job.collect()
    assert result.status == "completed"
    assert len(result.images) == 2
    assert {image.width for image in result.images} == {1024, 1536}
    failures = {f.custom_id: f.error for f in result.failures}
    assert set(failures) == {"blocked", "broken"}
    assert failures["blocked"].code == "moderation_blocked" and not failures["blocked"].retryable
    assert "Rephrase" in failures["blocked"].agent_message
    assert failures["broken"].status_code == 500 and failures["broken"].retryable
    assert "Try again later" in failures["broken"].agent_message
    assert all(image.usage is not None and image.usage.image is not None for image in result.images)
    assert result.images_by_request.keys() == {"r00001", "r00004"}
    assert len(api.generations) == 2


def test_n_images_per_request_on_the_images_route(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    job = make_generator(api, tmp_path).submit_batch([{"prompt": "three cats", "n": 3}, "one dog"])
    job.wait(poll_interval=0.05, timeout=30)
    result = job.collect()
    assert [len(ids) for ids in result.images_by_request.values()] == [3, 1]
    assert len(result.images) == len(image_files(tmp_path)) == len(api.generations) == 4


def test_an_expired_batch_keeps_its_partial_results(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    api.expire_next_batch(after_lines=3)
    job = make_generator(api, tmp_path).submit_batch([f"tile {i}" for i in range(6)])
    progress = job.wait(poll_interval=0.05, timeout=30)
    assert progress.status == "expired"
    result = job.collect()
    assert len(result.images) == 3
    assert [f.error.code for f in result.failures] == ["batch_expired"] * 3
    assert all(f.error.retryable and "Submit it again" in f.error.agent_message for f in result.failures)
    assert len(api.generations) == 3


def test_a_batch_past_its_compressed_window_expires(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    api.set_batch_clock(window=0.5, per_line=0.2)
    job = make_generator(api, tmp_path).submit_batch([f"tile {i}" for i in range(8)])
    assert job.wait(poll_interval=0.05, timeout=30).status == "expired"
    result = job.collect()
    assert 1 <= len(result.images) < 8
    assert len(result.images) + len(result.failures) == 8


def test_cancel_keeps_what_already_ran(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    api.set_batch_clock(per_line=0.2)
    job = make_generator(api, tmp_path).submit_batch([f"frame {i}" for i in range(10)])
    deadline = time.monotonic() + 30
    while job.refresh().completed < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.cancel().status in ("cancelling", "cancelled")
    assert job.wait(poll_interval=0.05, timeout=30).status == "cancelled"
    result = job.collect()
    assert 2 <= len(result.images) < 10
    assert {f.error.code for f in result.failures} == {"batch_cancelled"}
    assert len(result.images) + len(result.failures) == 10
    assert job.cancel().status == "cancelled"  # an ended batch is left as it is


def test_collect_before_the_end_says_to_wait(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    api.set_batch_clock(per_line=0.3)
    job = make_generator(api, tmp_path).submit_batch(["a", "b", "c", "d"])
    with pytest.raises(BatchNotFinishedError) as caught:
        job.collect()
    assert "still" in caught.value.agent_message and caught.value.retryable
    with pytest.raises(BatchNotFinishedError, match="wait again"):
        job.wait(poll_interval=0.05, timeout=0.2)
    assert image_files(tmp_path) == []


def test_an_image_save_cut_by_a_crash_is_redone_under_the_same_id(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    generator = make_generator(api, tmp_path)
    job = generator.submit_batch(["a mill", "a barn"])
    job.wait(poll_interval=0.05, timeout=30)
    # A collector killed between writing the image file and its record leaves the file alone under the id.
    orphan = tmp_path / f"{job.job_id}-r00001-0.png"
    orphan.write_bytes(b"half an image")
    result = generator.batch_job(job.job_id).collect()
    assert sorted(image.id for image in result.images) == [f"{job.job_id}-r00001-0", f"{job.job_id}-r00002-0"]
    assert orphan.read_bytes() != b"half an image"
    assert len(image_files(tmp_path)) == 2


def test_two_collectors_at_once_store_each_image_once(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    generator = make_generator(api, tmp_path)
    job = generator.submit_batch([f"bird {i}" for i in range(8)])
    job.wait(poll_interval=0.05, timeout=30)
    results: list[int] = []

    def collect() -> None:
        results.append(len(make_generator(api, tmp_path).batch_job(job.job_id).collect().images))

    threads = [threading.Thread(target=collect) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [8, 8]
    assert len(image_files(tmp_path)) == 8


# --- refused before anything is sent ---------------------------------------------------------------------


def test_invalid_requests_are_all_listed_and_nothing_is_uploaded(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    generator = make_generator(api, tmp_path, "responses")
    with pytest.raises(BatchValidationError) as caught:
        generator.submit_batch(
            [
                "fine",
                {"prompt": "bad size", "size": "17x17"},
                {"prompt": "   "},
                {"prompt": "two", "n": 2},
                {"prompt": "streamed", "partial_images": 2},
                {"prompt": "x", "custom_id": "../etc"},
                {"prompt": "dup", "custom_id": "same"},
                {"prompt": "dup", "custom_id": "same"},
                {"size": "1024x1024"},
            ]
        )
    numbers = [number for number, _ in caught.value.problems]
    assert numbers == [2, 3, 4, 5, 6, 8, 9]
    text = str(caught.value)
    assert "request 2" in text and "size" in text and "nothing was sent" in text
    assert api.requests == []
    assert generator.batch_jobs() == []


def test_the_batch_api_limits_are_checked_before_upload(
    imagegen_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = imagegen_emulator
    generator = make_generator(api, tmp_path)
    with pytest.raises(InvalidInputError, match="at most 50000"):
        generator.submit_batch(["x"] * (MAX_BATCH_REQUESTS + 1))
    monkeypatch.setattr("imagegen_tool.batch.MAX_BATCH_FILE_BYTES", 1000)
    with pytest.raises(InvalidInputError, match="200 MB"):
        generator.submit_batch(["a long prompt " * 10] * 10)
    with pytest.raises(InvalidInputError, match="input image"):
        generator.submit_batch([{"prompt": "edit it", "action": "edit"}])
    assert api.requests == []


def test_an_unknown_job_id_is_a_clear_error(tmp_path: Path, imagegen_emulator: Emulator) -> None:
    generator = make_generator(imagegen_emulator, tmp_path)
    with pytest.raises(ImageNotFoundError):
        generator.batch_job("bj_0123456789abcdef")
    with pytest.raises(InvalidInputError, match="not a batch job id"):
        generator.batch_job("../../etc/passwd")


# --- async --------------------------------------------------------------------------------------------------


async def test_the_async_twins_submit_wait_collect_and_cancel(imagegen_emulator: Emulator, tmp_path: Path) -> None:
    api = imagegen_emulator
    generator = make_generator(api, tmp_path, "responses")
    job = await generator.asubmit_batch(["a fox", "a hare"], options={"quality": "low"})
    seen: list[str] = []

    async def note(progress: object) -> None:
        seen.append(getattr(progress, "status", "?"))

    progress = await job.await_done(poll_interval=0.05, timeout=30, on_progress=note)
    assert progress.done and seen[-1] == "completed"
    resumed = await generator.abatch_job(job.job_id)
    result = await resumed.acollect()
    assert len(result.images) == 2 and all(i.options.quality == "low" for i in result.images)
    assert len((await resumed.acollect()).images) == 2
    assert len(image_files(tmp_path)) == 2

    api.set_batch_clock(per_line=0.5)
    other = await generator.asubmit_batch(["slow 1", "slow 2", "slow 3"])
    assert (await other.acancel()).status in ("cancelling", "cancelled")
    assert (await other.await_done(poll_interval=0.05, timeout=30)).status == "cancelled"
    await asyncio.to_thread(generator.close)
