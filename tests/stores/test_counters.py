"""The stores' atomic counters (what shared budgets count with): every kind of store, several store objects on one
location ("workers") updating at once lose no update, a failing update writes nothing; and two processes sharing an
S3 store (SeaweedFS on loopback) spend at most a shared budget, counted in the emulator's log."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from imagegen_tool import pricing
from imagegen_tool.errors import ConfigurationError
from imagegen_tool.parse import parse_usage
from imagegen_tool.store import ImageStore
from imagegen_tool.testing import Emulator
from tests.fixtures.seaweedfs import SeaweedS3
from tests.stores.conftest import BUCKET, StoreLocation

ROOT = Path(__file__).resolve().parents[2]


def _increment(state: dict[str, Any] | None) -> dict[str, Any]:
    return {"n": (state or {}).get("n", 0) + 1}


def test_updates_are_sequential_and_a_failing_update_writes_nothing(store: ImageStore) -> None:
    assert store.update_counter("c1", _increment) == {"n": 1}
    assert store.update_counter("c1", _increment) == {"n": 2}

    def boom(state: dict[str, Any] | None) -> dict[str, Any]:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        store.update_counter("c1", boom)
    assert store.update_counter("c1", lambda s: dict(s or {})) == {"n": 2}
    with pytest.raises(ValueError, match="counter key"):
        store.update_counter("../escape", _increment)


def test_concurrent_workers_lose_no_update(store_location: StoreLocation) -> None:
    workers, rounds = 4, 10
    stores = [store_location.open() for _ in range(workers)]
    errors: list[BaseException] = []

    def work(store: ImageStore) -> None:
        try:
            for _ in range(rounds):
                store.update_counter("shared", _increment)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert stores[0].update_counter("shared", lambda s: dict(s or {})) == {"n": workers * rounds}


async def test_async_updates(store: ImageStore) -> None:
    results = await asyncio.gather(*(store.aupdate_counter("async", _increment) for _ in range(5)))
    assert sorted(r["n"] for r in results) == [1, 2, 3, 4, 5]


def test_a_store_without_atomic_updates_refuses_shared_budgets() -> None:
    class Minimal(ImageStore):  # only what the ABC requires
        save = get = read_bytes = delete = save_partial = delete_partials = None  # type: ignore[assignment]
        set_latest = latest = list_images = None  # type: ignore[assignment]

    Minimal.__abstractmethods__ = frozenset()
    with pytest.raises(ConfigurationError, match="atomic counters"):
        Minimal().update_counter("x", _increment)


@pytest.mark.slow
def test_two_processes_sharing_an_s3_store_spend_at_most_the_budget(
    s3_server: SeaweedS3, imagegen_emulator: Emulator
) -> None:
    limit = Decimal("0.20")
    config = {
        "store": f"s3://{BUCKET}/budget-{os.getpid()}",
        "storage_options": {"client_kwargs": {"endpoint_url": s3_server.endpoint}},
        "emulator": imagegen_emulator.url,
        "shared": "team",
        "max_usd": str(limit),
        "model": "gpt-image-1.5",
        "calls": 6,
        "threads": 2,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3_server.environment())
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.budget_worker", "spend", json.dumps(config)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    made = sum(len(r["made"]) for r in results)
    refused = sum(r["refused"] for r in results)
    posts = imagegen_emulator.requests_to("/responses", "POST")
    spent = Decimal(0)
    for body in imagegen_emulator.responses.values():
        cost = pricing.actual_cost(parse_usage(body), model=body["tools"][0].get("model"), text_model=body["model"])
        assert cost.usd is not None
        spent += cost.usd
    assert len(posts) == made and made > 0 and refused > 0
    assert spent <= limit


def test_s3_compare_and_swap_retries_when_another_worker_wrote_in_between(store_location: StoreLocation) -> None:
    if store_location.kind != "s3":
        pytest.skip("the race is staged through a second S3 client (lock-based stores would wait for each other)")
    mine, other = store_location.open(), store_location.open()
    mine.update_counter("race", _increment)
    calls = 0

    def racing(state: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:  # another worker's update lands between this worker's read and its write
            writer = threading.Thread(target=lambda: asyncio.run(other.aupdate_counter("race", _increment)))
            writer.start()
            writer.join()
        return _increment(state)

    assert mine.update_counter("race", racing) == {"n": 3}  # the stale write was refused (If-Match) and redone
    assert calls == 2
