"""Many workers, one S3 store: separate processes against SeaweedFS on loopback and the emulator.

What a LangGraph or Celery deployment relies on: an image made by one worker is edited by id in another, two
workers making 50 images each at once lose none and share no id, and a worker killed in the middle of a write
leaves nothing visible that is not whole.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from imagegen_tool.fsspec_store import FsspecImageStore
from imagegen_tool.testing import Emulator
from tests.fixtures.seaweedfs import SeaweedS3
from tests.stores.conftest import BUCKET

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def worker_env(server: SeaweedS3) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(server.environment())
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def worker_config(server: SeaweedS3, url: str, **extra: Any) -> dict[str, Any]:
    # Only the endpoint is passed; the credentials reach the worker through AWS_* variables.
    return {"store": url, "storage_options": {"client_kwargs": {"endpoint_url": server.endpoint}}, **extra}


def start_worker(server: SeaweedS3, command: str, config: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.stores.s3_worker", command, json.dumps(config)],
        cwd=ROOT,
        env=worker_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 240) -> Any:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"worker failed ({process.returncode}):\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def s3_url() -> str:
    return f"s3://{BUCKET}/workers-{os.urandom(4).hex()}"


def open_store(server: SeaweedS3, url: str, **options: Any) -> FsspecImageStore:
    return FsspecImageStore(url, storage_options=server.storage_options(), **options)


def test_an_image_made_in_one_process_is_edited_by_id_in_another(
    s3_server: SeaweedS3, s3_url: str, imagegen_emulator: Emulator
) -> None:
    made = finish(
        start_worker(
            s3_server,
            "generate",
            worker_config(s3_server, s3_url, emulator=imagegen_emulator.url, count=1, label="fox"),
        )
    )
    image_id = made[0]["id"]
    edited = finish(
        start_worker(
            s3_server, "edit", worker_config(s3_server, s3_url, emulator=imagegen_emulator.url, image_id=image_id)
        )
    )
    assert edited["input_ids"] == [image_id]
    assert edited["id"] != image_id
    store = open_store(s3_server, s3_url)
    assert {h.id for h in store.list_images()} == {image_id, edited["id"]}
    assert store.get(edited["id"]).input_ids == (image_id,)
    store.close()


def test_two_processes_times_50_generations_lose_nothing_and_share_no_id(
    s3_server: SeaweedS3, s3_url: str, imagegen_emulator: Emulator
) -> None:
    workers = [
        start_worker(
            s3_server,
            "generate",
            worker_config(s3_server, s3_url, emulator=imagegen_emulator.url, count=50, label=f"worker {n}"),
        )
        for n in range(2)
    ]
    made = [item for worker in workers for item in finish(worker)]
    ids = [item["id"] for item in made]
    assert len(ids) == 100
    assert len(set(ids)) == 100, "id collision"
    store = open_store(s3_server, s3_url)
    listed = {h.id: h for h in store.list_images()}
    assert set(listed) == set(ids), "lost records"
    for item in made:
        assert listed[item["id"]].sha256 == item["sha256"]
    generations = imagegen_emulator.requests_to("/v1/responses", "POST")
    assert len(generations) >= 100
    store.close()


def test_two_processes_racing_for_one_id_never_overwrite_each_other(s3_server: SeaweedS3, s3_url: str) -> None:
    """The conditional create is what keeps ids unique here: every save asks for the same id at once."""
    workers = [
        start_worker(
            s3_server, "race", worker_config(s3_server, s3_url, image_id="img_contested", count=25, label=f"w{n}")
        )
        for n in range(2)
    ]
    saved = [item for worker in workers for item in finish(worker)]
    ids = [item["id"] for item in saved]
    assert len(set(ids)) == 50
    store = open_store(s3_server, s3_url)
    for item in saved:
        assert store.get(item["id"]).sha256 == item["sha256"]
    assert sum(1 for h in store.list_images() if h.id.startswith("img_contested")) == 50
    store.close()


def test_a_worker_killed_mid_write_leaves_no_visible_partial_image(s3_server: SeaweedS3, s3_url: str) -> None:
    runs = int(os.environ.get("IMAGEGEN_KILL_RUNS", "6"))
    rng = random.Random(20261125)
    reported: dict[str, str] = {}
    for run in range(runs):
        worker = start_worker(s3_server, "save-loop", worker_config(s3_server, s3_url, label=f"k{run}"))
        assert worker.stdout is not None
        first = worker.stdout.readline()  # at least one save went through: the loop is in full swing
        assert first, worker.stderr.read() if worker.stderr else ""
        time.sleep(rng.uniform(0.05, 0.6))
        worker.send_signal(signal.SIGKILL)
        out, _ = worker.communicate(timeout=30)
        for line in [first, *out.splitlines()]:
            if line.strip():
                item = json.loads(line)
                reported[item["id"]] = item["sha256"]

    store = open_store(s3_server, s3_url)
    visible = store.list_images()
    visible_ids = {h.id for h in visible}
    # Every save that returned is visible; at most one more per run (record written, not yet reported).
    assert set(reported) <= visible_ids
    assert len(visible_ids - set(reported)) <= runs
    for handle in visible:
        data = store.read_bytes(handle.id)  # checks size and sha256 against the record
        assert len(data) == handle.byte_size > 1_500_000
        if handle.id in reported:
            assert handle.sha256 == reported[handle.id]

    # Whatever a kill left half-done is invisible, and a prune past the grace period removes it.
    report = open_store(s3_server, s3_url, grace_period=timedelta(0)).prune()
    assert report.images_removed == 0
    images_left = store._run(lambda io: io.list("images/"))
    assert len(images_left) == len(visible)
    assert {h.id for h in store.list_images()} == visible_ids
    store.close()
