"""A worker process for the shared-budget tests: ``python -m tests.integration.budget_worker CONFIG_JSON``.

It makes ``threads`` x ``calls`` generate calls (or until the budget refuses) with a budget shared through the store
named in the config, and prints one JSON line: the handles it got and how many calls the budget refused.
Command ``hold``: reserves a budget share and then waits to be killed (a crash in the middle of a call).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from decimal import Decimal
from typing import Any

from imagegen_tool import ImageGenerator
from imagegen_tool.budget import Budget
from imagegen_tool.errors import BudgetExceededError


def _generator(config: dict[str, Any]) -> ImageGenerator:
    budget = Budget(
        max_usd=Decimal(config["max_usd"]) if config.get("max_usd") else None,
        max_images=config.get("max_images"),
        shared=config["shared"],
    )
    return ImageGenerator(
        store=config["store"],
        storage_options=config.get("storage_options"),
        base_url=config["emulator"],
        api_key="test-key",
        background=False,
        budget=budget,
    )


def main(argv: list[str]) -> None:
    config = json.loads(argv[-1])
    generator = _generator(config)
    if argv[0] == "hold":
        request = generator.request("held", model=config["model"], quality="low", size="1024x1024")
        generator._reserve(request, None)
        sys.stdout.write("reserved\n")
        sys.stdout.flush()
        time.sleep(600)
        return
    made: list[str] = []
    refused = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal refused
        for i in range(config["calls"]):
            try:
                result = generator.generate(
                    f"budget picture {i}", model=config["model"], quality="low", size="1024x1024"
                )
            except BudgetExceededError:
                with lock:
                    refused += 1
                continue
            with lock:
                made.extend(image.id for image in result.images)

    threads = [threading.Thread(target=work) for _ in range(config.get("threads", 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    generator.close()
    sys.stdout.write(json.dumps({"made": made, "refused": refused}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
