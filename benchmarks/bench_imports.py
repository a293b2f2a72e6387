"""Import time of the package and its LangChain adapter against what they build on, in fresh interpreters.

``import imagegen_tool`` against ``import openai``; ``import imagegen_tool.langchain`` against
``import openai, langchain_core.tools``. Each measurement is a new ``python`` process timing only the import
statement (interpreter start-up is the same for both and left out); the two sides alternate. Bytecode caches are
written first (as ``pip install`` does for a wheel), even where ``PYTHONDONTWRITEBYTECODE`` is set.

``import langchain_core.tools`` alone loads almost nothing: the package is lazy (its names are imported on first
access). Any LangChain tool needs ``BaseTool``, which loads langsmith and most of langchain-core, so no adapter can
come near the issue's baseline. Two more figures therefore show where the floor is: the smallest LangChain tool
anyone can write (one ``StructuredTool.from_function``) against that baseline, and ``import
imagegen_tool.langchain`` against that smallest tool (what the adapter adds over any tool).

Fresh interpreters vary by +-20% in how long the same import takes (disk and page-cache timing on a shared
machine), so each pair is also measured **paired**: one interpreter times the baseline's imports, then what ours
adds on top of them (``import openai`` then ``import imagegen_tool``). Ours is then the sum, the baseline the first
part, from the same process: the machine's noise moves both alike.
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

_PAIRED_SCRIPT = (
    "import time, json; t0, c0 = time.perf_counter(), time.process_time(); {first}; "
    "t1, c1 = time.perf_counter(), time.process_time(); {then}; t2, c2 = time.perf_counter(), time.process_time(); "
    "print(json.dumps([(t1 - t0) * 1000, (c1 - c0) * 1000, (t2 - t0) * 1000, (c2 - c0) * 1000]))"
)

#: The smallest LangChain tool: what any tool costs to import and build, whoever writes it.
SMALLEST_TOOL = (
    "import openai; from langchain_core.tools import StructuredTool; "
    "StructuredTool.from_function(func=lambda prompt: prompt, name='draw', description='Draw an image.')"
)

PAIRS: list[tuple[str, str, str, float | None]] = [
    ("import imagegen_tool", "import openai", "import imagegen_tool", 1.10),
    ("import imagegen_tool.langchain", "import openai, langchain_core.tools", "import imagegen_tool.langchain", 1.20),
    (
        "the smallest LangChain tool (the floor of any adapter)",
        "import openai, langchain_core.tools",
        SMALLEST_TOOL,
        None,
    ),
    (
        "import imagegen_tool.langchain (vs the smallest LangChain tool)",
        SMALLEST_TOOL,
        "import imagegen_tool.langchain",
        1.20,
    ),
]
_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def import_ms(statement: str) -> list[float]:
    """Milliseconds (wall, CPU) to run ``statement`` (imports) in a fresh interpreter."""
    return _python(_SCRIPT.format(statement=statement))


def paired_ms(first: str, then: str) -> list[float]:
    """Milliseconds (wall, CPU) to run ``first`` and (wall, CPU) to run ``first`` then ``then``, in one fresh
    interpreter."""
    return _python(_PAIRED_SCRIPT.format(first=first, then=then))


def _python(script: str) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env=_ENV,
    )
    return [float(value) for value in json.loads(done.stdout.strip().splitlines()[-1])]


def _extra(baseline: str, ours: str) -> str | None:
    """What ``ours`` imports beyond ``baseline`` when ours is ``baseline``'s imports plus more, else None."""
    if ours == "import imagegen_tool" and baseline == "import openai":
        return "import imagegen_tool"
    if ours == "import imagegen_tool.langchain":
        return "import imagegen_tool.langchain"
    return None


def run(settings: Settings) -> list[Figure]:
    figures = []
    rounds = settings.pick(1, 11)
    for label, baseline, ours, target in PAIRS[:2] if settings.quick else PAIRS:
        shown = "the smallest LangChain tool" if baseline == SMALLEST_TOOL else baseline
        if not settings.quick:
            import_ms(baseline), import_ms(ours)  # bytecode caches, file-system caches
        runs = interleaved(rounds, {"baseline": lambda b=baseline: import_ms(b), "ours": lambda o=ours: import_ms(o)})
        for kind, index in (("wall", 0), ("CPU", 1)):
            figures.append(
                Figure(
                    NAME,
                    f"{label} ({kind})",
                    median([r[index] for r in runs["baseline"]]),
                    median([r[index] for r in runs["ours"]]),
                    "ms",
                    shown,
                    target,
                )
            )
        extra = _extra(baseline, ours)
        if extra is None:
            continue
        paired = [paired_ms(baseline, extra) for _ in range(rounds)]
        for kind, index in (("wall", 0), ("CPU", 1)):
            figures.append(
                Figure(
                    NAME,
                    f"{label} ({kind}, paired in one interpreter)",
                    median([r[index] for r in paired]),
                    median([r[index + 2] for r in paired]),
                    "ms",
                    shown,
                    target,
                    note="" if kind == "CPU" else f"ours adds {median([r[2] - r[0] for r in paired]):.1f} ms",
                )
            )
    return figures
