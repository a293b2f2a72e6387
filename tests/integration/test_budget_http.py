"""Budgets through the emulator over real HTTP: sync, async, threads and several processes sharing a store spend at
most the budget (the emulator's own log and usage are the judge), a refused call sends nothing, and a process killed
in the middle of a call does not leak its reservation."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI

from imagegen_tool import ImageGenerator, pricing
from imagegen_tool.budget import Budget
from imagegen_tool.errors import BudgetExceededError, ImageGenerationError
from imagegen_tool.parse import parse_usage
from imagegen_tool.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
MODEL = "gpt-image-1.5"
LOW = {"model": MODEL, "quality": "low", "size": "1024x1024"}


def spent_by_emulator(emulator: Emulator) -> tuple[int, Decimal]:
    """How many generation requests the emulator served, and what they cost by its own reported usage."""
    posts = emulator.requests_to("/responses", "POST")
    total = Decimal(0)
    for body in emulator.responses.values():
        tool = body["tools"][0]
        cost = pricing.actual_cost(parse_usage(body), model=tool.get("model"), text_model=body["model"])
        assert cost.usd is not None
        total += cost.usd
    return len(posts), total


def test_a_per_call_budget_refuses_before_sending(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(
        store=tmp_path, client=openai_client, background=False, budget=Budget(max_usd=Decimal("0.01"), per="call")
    )
    with pytest.raises(BudgetExceededError) as caught:
        generator.generate("a fox", **LOW)
    assert caught.value.reason == "usd" and caught.value.per == "call"
    message = caught.value.agent_message
    assert "0.01" in message and "will not help" in message and "Nothing was sent" in message
    assert imagegen_emulator.requests_to("/responses") == []
    roomy = ImageGenerator(
        store=tmp_path, client=openai_client, background=False, budget=Budget(max_usd=Decimal("1"), per="call")
    )
    roomy.generate("a fox", **LOW)
    roomy.generate("a fox", **LOW)  # per call: no running total
    assert len(imagegen_emulator.requests_to("/responses", "POST")) == 2


def test_sync_calls_stop_at_the_budget(tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator) -> None:
    limit = Decimal("0.10")
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False, budget=Budget(max_usd=limit))
    made = 0
    error: BudgetExceededError | None = None
    for _ in range(50):
        try:
            generator.generate("a fox", **LOW)
        except BudgetExceededError as exc:
            error = exc
            break
        made += 1
    assert error is not None
    assert made >= 2  # settled to the (lower) actual cost, so more than limit / estimate calls fit
    posts, spent = spent_by_emulator(imagegen_emulator)
    assert posts == made and spent <= limit
    assert generator.spending().usd == spent
    assert error.limit_usd == limit and error.spent_usd is not None and Decimal(str(error.spent_usd)) > 0
    message = error.agent_message
    assert "will not help" in message and f"${limit}" in message and "spent" in message


async def test_concurrent_async_calls_spend_at_most_the_budget(
    tmp_path: Path, async_openai_client: AsyncOpenAI, imagegen_emulator: Emulator
) -> None:
    limit = Decimal("0.15")
    generator = ImageGenerator(
        store=tmp_path, async_client=async_openai_client, background=False, budget=Budget(max_usd=limit)
    )
    results = await asyncio.gather(
        *(generator.agenerate(f"boat {i}", **LOW) for i in range(12)), return_exceptions=True
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(made) + len(refused) == 12 and made and refused
    posts, spent = spent_by_emulator(imagegen_emulator)
    assert posts == len(made) and spent <= limit


def test_threads_share_a_generator_budget(tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator) -> None:
    limit = Decimal("0.12")
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False, budget=Budget(max_usd=limit))
    outcomes: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for i in range(6):
            try:
                generator.generate(f"tree {i}", **LOW)
                outcome = "made"
            except BudgetExceededError:
                outcome = "refused"
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    posts, spent = spent_by_emulator(imagegen_emulator)
    assert posts == outcomes.count("made") and outcomes.count("refused") > 0 and spent <= limit


def test_max_images_counts_every_image_of_a_call(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    generator = ImageGenerator(store=tmp_path, client=openai_client, api="images", budget=Budget(max_images=5))
    generator.generate("x", n=3, **LOW)
    with pytest.raises(BudgetExceededError) as caught:
        generator.generate("x", n=3, **LOW)
    assert caught.value.reason == "images" and caught.value.spent_images == 3
    generator.generate("x", n=2, **LOW)
    assert len(imagegen_emulator.requests_to("/images/generations", "POST")) == 2


def test_session_budgets_are_separate(tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator) -> None:
    generator = ImageGenerator(
        store=tmp_path, client=openai_client, background=False, budget=Budget(max_images=1, per="session")
    )
    generator.generate("x", session="alice", **LOW)
    with pytest.raises(BudgetExceededError) as caught:
        generator.generate("y", session="alice", action="generate", **LOW)
    assert "conversation" in caught.value.agent_message
    generator.generate("x", session="bob", **LOW)
    assert len(imagegen_emulator.requests_to("/responses", "POST")) == 2


def test_an_unpriced_call_is_refused_under_a_dollar_budget_unless_allowed(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    strict = ImageGenerator(store=tmp_path, client=openai_client, background=False, budget=Budget(max_usd=Decimal(5)))
    with pytest.raises(BudgetExceededError) as caught:
        strict.generate("a fox", quality="low", size="1024x1024")  # the default model publishes no token table
    assert caught.value.reason == "unpriced" and "cannot be estimated" in caught.value.agent_message
    assert imagegen_emulator.requests_to("/responses") == []
    allowed = ImageGenerator(
        store=tmp_path, client=openai_client, background=False, budget=Budget(max_usd=Decimal(5), unpriced="allow")
    )
    result = allowed.generate("a fox", quality="low", size="1024x1024")
    assert result.cost is not None and result.cost.actual is not None and result.cost.actual.usd is not None
    assert allowed.budgets.remaining(allowed.budgets.budgets[0])[0] == Decimal(5) - result.cost.actual.usd


def test_a_failed_call_releases_its_reservation(
    tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator
) -> None:
    budget = Budget(max_usd=Decimal("0.06"))
    generator = ImageGenerator(store=tmp_path, client=openai_client, background=False, budget=budget)
    imagegen_emulator.fail_next(400)
    with pytest.raises(ImageGenerationError):
        generator.generate("a fox", **LOW)
    assert generator.budgets.remaining(budget)[0] == Decimal("0.06")
    generator.generate("a fox", **LOW)  # the refused call's estimate is not held


# -- several processes sharing the store ---------------------------------------------------------------------


def _worker(command: str, config: dict[str, Any]) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.budget_worker", command, json.dumps(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_two_processes_sharing_a_local_store_spend_at_most_the_budget(
    tmp_path: Path, imagegen_emulator: Emulator
) -> None:
    limit = Decimal("0.20")
    config = {
        "store": str(tmp_path / "store"),
        "emulator": imagegen_emulator.url,
        "shared": "team",
        "max_usd": str(limit),
        "model": MODEL,
        "calls": 8,
        "threads": 2,
    }
    workers = [_worker("spend", config) for _ in range(2)]
    results = [_finish(w) for w in workers]
    made = sum(len(r["made"]) for r in results)
    refused = sum(r["refused"] for r in results)
    posts, spent = spent_by_emulator(imagegen_emulator)
    assert posts == made and refused > 0 and made > 0
    assert spent <= limit
    counter = json.loads((tmp_path / "store" / ".counters" / "budget-team.json").read_text())
    assert Decimal(counter["spent_usd"]) == spent and counter["reservations"] == {}


@pytest.mark.slow
def test_a_killed_process_does_not_leak_its_reservation(tmp_path: Path, imagegen_emulator: Emulator) -> None:
    config = {
        "store": str(tmp_path / "store"),
        "emulator": imagegen_emulator.url,
        "shared": "crash",
        "max_usd": "0.06",  # room for one estimate only
        "model": MODEL,
    }
    holder = _worker("hold", config)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "reserved"
    counter = tmp_path / "store" / ".counters" / "budget-crash.json"
    assert len(json.loads(counter.read_text())["reservations"]) == 1
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    generator = ImageGenerator(
        store=tmp_path / "store",
        base_url=imagegen_emulator.url,
        api_key="test-key",
        background=False,
        budget=Budget(max_usd=Decimal("0.06"), shared="crash"),
    )
    generator.generate("after the crash", **LOW)  # the dead process's reservation was dropped
    assert json.loads(counter.read_text())["reservations"] == {}
    generator.close()
