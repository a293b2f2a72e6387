"""The Agents SDK and pydantic-ai adapters are optional: the core never imports either framework (only
``imagegen_tool.openai_agents`` / ``imagegen_tool.pydantic_ai`` do). Checked in a fresh interpreter, by the modules
loaded."""

from __future__ import annotations

import json
import subprocess
import sys


def _loaded_after(statement: str) -> set[str]:
    script = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


def test_the_core_never_imports_the_frameworks() -> None:
    loaded = _loaded_after("import imagegen_tool, imagegen_tool.agent_tool, imagegen_tool.generator")
    assert "agents" not in loaded
    assert "pydantic_ai" not in loaded
