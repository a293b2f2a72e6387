"""``imagegen_tool.testing``: what it exports, and that importing it needs no optional extra."""

from __future__ import annotations

import subprocess
import sys


def test_scripted_chat_model_is_exported_from_testing() -> None:
    import imagegen_tool.testing as testing
    from imagegen_tool.testing.agents import ScriptedChatModel

    assert testing.ScriptedChatModel is ScriptedChatModel
    assert "ScriptedChatModel" in testing.__all__ and "ScriptedChatModel" in dir(testing)


def test_importing_the_package_does_not_import_the_server() -> None:
    code = "import sys, imagegen_tool.testing; print(sorted(m for m in ('uvicorn', 'starlette') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
