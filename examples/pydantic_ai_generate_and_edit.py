"""A pydantic-ai agent draws an image, then edits it by its handle.

Offline by default: the OpenAI API is replaced by imagegen-tool's emulator (real HTTP through the real ``openai``
SDK, real image files) and the agent's model is pydantic-ai's own ``FunctionModel`` running a short script, so
this runs anywhere for free. To use OpenAI for real (billed), set both ``OPENAI_API_KEY`` and
``IMAGEGEN_OFFLINE=0``: the agent then runs on ``--agent-model`` (default ``openai:gpt-5.4-mini``) and the images
come from GPT Image.

    python examples/pydantic_ai_generate_and_edit.py [--out DIR] [--prompt TEXT] [--edit TEXT]

The tool is ``imagegen_tool.pydantic_ai.ImageToolset``: the model gets a typed ``ToolResult`` (each image's id,
file, size), is asked to fix invalid arguments (``ModelRetry``), and is told plainly when a call cannot succeed
(moderation, quota). The run's dependencies carry the conversation id, so a follow-up edit without an id continues
from the conversation's latest image. Needs ``pip install 'imagegen-tool[pydantic-ai,emulator]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, FunctionModel

from imagegen_tool import GeneratedImage
from imagegen_tool.agent_tool import ToolResult
from imagegen_tool.pydantic_ai import ImageToolset

INSTRUCTIONS = (
    "You make images for the user with the generate_image tool. To change an image you made, call the tool "
    "again with its id in image_ids. When done, answer with one short sentence."
)


@dataclass
class Conversation:
    """The run's dependencies: which conversation this is (its latest image is remembered per conversation)."""

    id: str


def offline_mode() -> bool:
    """Offline unless the user asked for OpenAI explicitly: a key alone does not start billed calls."""
    flag = os.environ.get("IMAGEGEN_OFFLINE", "1").strip().lower()
    return flag not in {"0", "false", "no", "off"} or not os.environ.get("OPENAI_API_KEY")


def scripted_model(prompt: str, edit: str) -> Model:
    """The offline stand-in for a model: generate, edit the id the tool returned, then answer."""

    def turn(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        answered = sum(isinstance(message, ModelResponse) for message in messages)
        if answered == 0:
            return ModelResponse(parts=[ToolCallPart("generate_image", {"prompt": prompt}, tool_call_id="draw")])
        last = messages[-1].parts[-1]
        if answered == 1 and isinstance(last, ToolReturnPart) and isinstance(last.content, ToolResult):
            args = {"prompt": edit, "image_ids": [last.content.images[0].id]}
            return ModelResponse(parts=[ToolCallPart("generate_image", args, tool_call_id="edit")])
        return ModelResponse(parts=[TextPart("Done: I drew the image and then edited it as you asked.")])

    return FunctionModel(turn)


@contextlib.contextmanager
def image_service(offline: bool) -> Iterator[dict[str, Any]]:
    """Client settings for the tool: the emulator's address offline, the SDK's defaults online."""
    if not offline:
        yield {}
        return
    from imagegen_tool.testing import Emulator

    with Emulator() as api:
        yield {"base_url": api.url, "api_key": "offline"}


async def run(args: argparse.Namespace, offline: bool, service: dict[str, Any]) -> list[GeneratedImage]:
    images = ImageToolset(
        store=args.out,
        options={"quality": "low"},
        thread_sessions=True,
        thread_id=lambda ctx: ctx.deps.id,
        **service,
    )
    model: Model | str = scripted_model(args.prompt, args.edit) if offline else args.agent_model
    agent = Agent(model, instructions=INSTRUCTIONS, toolsets=[images], deps_type=Conversation)
    request = f"Draw this: {args.prompt}. Then edit the image you drew: {args.edit}."
    print(f"[user] {request}")
    result = await agent.run(request, deps=Conversation("demo"))  # the toolset closes its clients after the run
    handles: list[GeneratedImage] = []
    for message in result.new_messages():
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                print(f"[agent] calls {part.tool_name}({part.args_as_json_str()})")
            elif isinstance(part, ToolReturnPart):
                print(f"[tool] {part.model_response_str()}")
                handles.extend(part.metadata or ())  # the full GeneratedImage handles, never sent to the model
    print(f"[agent] {result.output}")
    return handles


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="generated-images", help="directory for the images (default: %(default)s)")
    parser.add_argument("--prompt", default="a red kite flying over green hills, flat illustration")
    parser.add_argument("--edit", default="make the kite blue and add a small yellow sun; keep everything else")
    parser.add_argument("--agent-model", default="openai:gpt-5.4-mini", help="the agent's model when online")
    args = parser.parse_args()

    offline = offline_mode()
    print("mode:", "offline (emulated OpenAI API, scripted agent model)" if offline else "online (OpenAI API, billed)")
    if offline:
        print("      for OpenAI: export OPENAI_API_KEY=sk-... IMAGEGEN_OFFLINE=0")
    with image_service(offline) as service:
        images = asyncio.run(run(args, offline, service))
    if len(images) < 2:
        print(f"expected a generated and an edited image, got {len(images)}", file=sys.stderr)
        return 1
    print("\nimages:")
    for image in images:
        with Image.open(image.path or "") as opened:
            opened.verify()
        parent = f", edited from {image.input_ids[0]}" if image.input_ids else ""
        print(f"  {image.id}: {Path(image.path or '').resolve()} ({image.width}x{image.height} {image.format}{parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
