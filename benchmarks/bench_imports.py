"""Import time of the package and its LangChain adapter against what they build on, in fresh interpreters.

``import imagegen_tool`` against ``import openai``; ``import imagegen_tool.langchain`` against
``import openai, langchain_core.tools``. Each measurement is a new ``python`` process timing only the import
statement (interpreter start-up is the same for both and left out); the two sides alternate. Bytecode caches are
written first (as ``pip install`` does for a wheel), even where ``PYTHONDONTWRITEBYTECODE`` is set.

``import langchain_core.tools`` alone loads almost nothing (the package is lazy); any LangChain tool, ours
included, needs ``BaseTool``, which loads langsmith and most of langchain-core. A third figure therefore compares
``import imagegen_tool.langchain`` with ``import openai; from langchain_core.tools import BaseTool``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .harness import Figure, Settings, interleaved, median

NAME = "imports"

# Wall time, and the process's CPU time (steadier on a loaded machine, where the wall time mostly measures the
# wait for a core).
_SCRIPT = (
    "import time, json; t, c = time.perf_counter(), time.process_time(); {statement}; "
    "print(json.dumps([(time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000]))"
)

PAIRS: list[tuple[str, str, str, float | None]] = [
    ("import imagegen_tool", "import openai", "import imagegen_tool", 1.10),
    ("import imagegen_tool.langchain", "import openai, langchain_core.tools", "import imagegen_tool.langchain", 1.20),
    (
        "import imagegen_tool.langchain (vs what any LangChain tool loads)",
        "import openai; from langchain_core.tools import BaseTool",
        "import imagegen_tool.langchain",
        None,
    ),
]
_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def import_ms(statement: str) -> list[float]:
    """Milliseconds (wall, CPU) to run ``statement`` (imports) in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
        env=_ENV,
    )
    wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return [float(wall), float(cpu)]


def run(settings: Settings) -> list[Figure]:
    figures = []
    for label, baseline, ours, target in PAIRS[:2] if settings.quick else PAIRS:
        if not settings.quick:
            import_ms(baseline), import_ms(ours)  # bytecode caches, file-system caches
        runs = interleaved(
            settings.pick(1, 5), {"baseline": lambda b=baseline: import_ms(b), "ours": lambda o=ours: import_ms(o)}
        )
        for kind, index in (("wall", 0), ("CPU", 1)):
            figures.append(
                Figure(
                    NAME,
                    f"{label} ({kind})",
                    median([r[index] for r in runs["baseline"]]),
                    median([r[index] for r in runs["ours"]]),
                    "ms",
                    baseline,
                    target,
                )
            )
    return figures
