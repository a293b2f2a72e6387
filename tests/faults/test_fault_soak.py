"""Fault-injection soak: a mixed workload (sync, async, streaming, edits) with ~5% injected faults of every kind.

Checked, from the emulator's generation ledger and the store on disk:

- every call ends as a handle or a typed :class:`ImageGenerationError` (nothing else escapes);
- no response was billed twice, and no call (one unique prompt each) was billed twice;
- every billed image whose response id the caller learned (a handle, or an error naming it) is delivered, or
  recoverable with ``ImageGenerator.recover``;
- no temp, partial or orphan file is left in the store.

CI runs ``IMAGEGEN_FAULT_CALLS`` (default 300) calls; ``IMAGEGEN_FAULT_CALLS=1000 pytest tests/faults`` runs more.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from imagegen_tool import GenerationResult, ImageGenerator
from imagegen_tool.errors import ImageGenerationError, StorageError
from imagegen_tool.testing import Emulator

CALLS = int(os.environ.get("IMAGEGEN_FAULT_CALLS", "300"))
FAULT_RATE = float(os.environ.get("IMAGEGEN_FAULT_RATE", "0.05"))
SEED = int(os.environ.get("IMAGEGEN_FAULT_SEED", "1234"))


def _faults(api: Emulator) -> dict[str, Callable[[], None]]:
    return {
        "drop_after_image": lambda: api.drop_after_image(),
        "drop_create_answer": lambda: api.drop_after_image(path="/responses"),
        "html_200": lambda: api.answer_with_html(),
        "bad_json": lambda: api.answer_with_bad_json(),
        "rate_limit": lambda: api.fail_next(429, retry_after=0.01, path="/responses"),
        "insufficient_quota": lambda: api.fail_next(429, code="insufficient_quota", path="/responses"),
        "server_error": lambda: api.fail_next(500),
        "stream_error": lambda: api.error_in_next_stream(random.choice(["server_error", "moderation_blocked"])),
        "cut_stream": lambda: api.cut_next_stream(after_events=random.randint(1, 12)),
        "moderation": lambda: api.block_next_with_moderation(),
    }


@pytest.mark.slow
def test_fault_soak(tmp_path: Path) -> None:
    random.seed(SEED)
    store_dir = tmp_path / "store"
    outcomes: Counter[str] = Counter()
    named: set[str] = set()  # response ids the caller learned (handles and errors)
    delivered: set[str] = set()
    with Emulator() as api:
        api.moderation_trigger = None
        sync_gen = ImageGenerator(
            store=store_dir, base_url=api.url, api_key="sk-soak", client_options={"max_retries": 1}
        )
        plain_gen = ImageGenerator(
            store=store_dir, base_url=api.url, api_key="sk-soak", background=False, client_options={"max_retries": 1}
        )
        faults = _faults(api)
        storage_failures = 0

        def record(result: GenerationResult | BaseException) -> None:
            if isinstance(result, GenerationResult):
                outcomes["handle"] += 1
                assert result.response_id
                named.add(result.response_id)
                delivered.add(result.response_id)
                for image in result.images:
                    assert Path(image.path or "").is_file()
                return
            assert isinstance(result, ImageGenerationError), f"untyped failure: {type(result).__name__}: {result}"
            outcomes[type(result).__name__] += 1
            response_id = getattr(result, "response_id", None)
            if response_id:
                named.add(response_id)

        async def one_async(generator: ImageGenerator, prompt: str, stream: bool) -> GenerationResult | BaseException:
            try:
                if stream:
                    return await generator.agenerate(prompt, quality="low", partial_images=1)
                return await generator.agenerate(prompt, quality="low")
            except Exception as exc:  # checked by record()
                return exc

        last: GenerationResult | None = None
        kinds = [*faults, "storage"]
        planned = 0
        for number in range(CALLS):
            prompt = f"soak call {number}"
            fault = None
            if random.random() < FAULT_RATE:  # kinds in turn, so every kind is injected even in a short run
                fault = kinds[planned % len(kinds)]
                planned += 1
            if fault == "storage":
                storage_failures += 1
            elif fault is not None:
                faults[fault]()
            generator = plain_gen if number % 5 == 4 else sync_gen
            kind = number % 4
            original_save = generator.store.save
            if fault == "storage":

                def disk_full(*args: object, **kwargs: object) -> object:
                    raise OSError(28, "No space left on device")

                generator.store.save = disk_full  # type: ignore[method-assign]
            try:
                if kind == 0:
                    outcome: GenerationResult | BaseException = generator.generate(prompt, quality="low")
                elif kind == 1:
                    outcome = generator.generate(prompt, quality="low", partial_images=2)
                elif kind == 2:
                    outcome = asyncio.run(one_async(generator, prompt, stream=number % 8 == 2))
                elif last is not None:
                    outcome = generator.edit(prompt, last.image, quality="low")
                else:
                    outcome = generator.generate(prompt, quality="low")
            except Exception as exc:  # checked by record()
                outcome = exc
            finally:
                generator.store.save = original_save  # type: ignore[method-assign]
            record(outcome)
            if isinstance(outcome, GenerationResult):
                last = outcome
            elif isinstance(outcome, StorageError):
                assert outcome.response_id and outcome.undelivered
            api.clear_faults()  # a fault that did not fit this call does not pile up on later ones

        # A concurrent phase: async calls in flight together on one loop (one async client), faults planned ahead.
        async def concurrent(start: int, count: int) -> list[GenerationResult | BaseException]:
            calls = []
            for number in range(start, start + count):
                if random.random() < FAULT_RATE * 2:
                    faults[random.choice(list(faults))]()
                calls.append(one_async(sync_gen, f"soak call {number}", stream=number % 2 == 0))
            results = await asyncio.gather(*calls)
            await sync_gen.aclose()
            return results

        batch = max(1, CALLS // 30)
        for start in range(CALLS, CALLS + CALLS // 3, batch):
            for outcome in asyncio.run(concurrent(start, batch)):
                record(outcome)
            api.clear_faults()

        ledger = api.generations
        per_response = Counter(g.response_id for g in ledger)
        per_prompt = Counter(g.prompt.split(".")[0] for g in ledger)
        assert max(per_response.values()) == 1, "a response was billed twice"
        doubles = {p: n for p, n in per_prompt.items() if n > 1}
        assert doubles == {}, f"calls billed twice: {doubles}"
        undelivered = {g.response_id for g in ledger} & named - delivered
        for response_id in sorted(undelivered):  # recoverable: store them now, without paying again
            recovered = sync_gen.recover(response_id)
            assert recovered.images
        assert Counter(g.response_id for g in api.generations) == per_response  # recovery bought nothing
        sync_gen.close()
        plain_gen.close()

    leftovers = [
        p.name for p in store_dir.rglob("*") if p.is_file() and (".partial-" in p.name or p.name.startswith(".tmp"))
    ]
    assert leftovers == []
    images = {p.stem for p in store_dir.iterdir() if p.is_file() and p.suffix in (".png", ".jpeg", ".webp", ".gif")}
    records = {p.stem for p in store_dir.iterdir() if p.is_file() and p.suffix == ".json"}
    assert images == records, "orphan image or record"
    assert sum(outcomes.values()) >= CALLS
    print(f"\nfault soak: {CALLS} calls, {storage_failures} storage faults, outcomes {dict(outcomes)}")
