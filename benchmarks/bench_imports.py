"""Import time of the package and its LangChain adapter against what they build on, in fresh interpreters.

``import imagegen_tool`` against ``import openai``; ``import imagegen_tool.langchain`` against
``import openai, langchain_core.tools``. Each measurement is a new ``python`` process timing only the import
statement (interpreter start-up is the same for both and left out); the two sides alternate.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .harness import Figure, Settings, interleaved, median

NAME = "imports"

_SCRIPT = (
    "import time, json; t = time.perf_counter(); import {modules}; print(json.dumps((time.perf_counter() - t) * 1000))"
)

PAIRS = [
    ("import imagegen_tool", "openai", "imagegen_tool", 1.10),
    ("import imagegen_tool.langchain", "openai, langchain_core.tools", "imagegen_tool.langchain", 1.20),
]


def import_ms(modules: str) -> float:
    """Milliseconds to import ``modules`` in a fresh interpreter (bytecode caches already written)."""
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(modules=modules)], capture_output=True, text=True, check=True
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def run(settings: Settings) -> list[Figure]:
    figures = []
    for label, baseline, ours, target in PAIRS:
        if not settings.quick:
            import_ms(baseline), import_ms(ours)  # bytecode caches, file-system caches
        runs = interleaved(
            settings.pick(1, 9), {"baseline": lambda b=baseline: import_ms(b), "ours": lambda o=ours: import_ms(o)}
        )
        figures.append(
            Figure(NAME, label, median(runs["baseline"]), median(runs["ours"]), "ms", f"import {baseline}", target)
        )
    return figures
