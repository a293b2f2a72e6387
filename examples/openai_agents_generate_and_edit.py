"""An OpenAI Agents SDK agent draws an image, then edits it by its handle.

Offline by default: the OpenAI API is replaced by imagegen-tool's emulator (real HTTP through the real ``openai``
SDK, real image files) and the agent's model is the Agents SDK's own scripted test model
(``agents.testing.ScriptedModel``), so this runs anywhere for free. To use OpenAI for real (billed), set both
``OPENAI_API_KEY`` and ``IMAGEGEN_OFFLINE=0``: the agent then runs on ``--agent-model`` (default gpt-5.4-mini)
and the images come from GPT Image.

    python examples/openai_agents_generate_and_edit.py [--out DIR] [--prompt TEXT] [--edit TEXT] [--hosted]

The tool is ``imagegen_tool.openai_agents.image_function_tool``: a strict ``FunctionTool`` any model can call. The
model reads a short text with each image's id; the program reads the structured handles with ``tool_results``.
``--hosted`` instead gives the agent the SDK's hosted ``ImageGenerationTool`` (Responses API models only) with
``HostedImageCapture``, which stores each image as a handle and keeps its base64 out of the run history.
Needs ``pip install 'imagegen-tool[openai-agents,emulator]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agents import Agent, ImageGenerationTool, Model, OpenAIResponsesModel, Runner, set_tracing_disabled
from PIL import Image

from imagegen_tool.openai_agents import HostedImageCapture, image_function_tool, tool_results

INSTRUCTIONS = (
    "You make images for the user with the generate_image tool. To change an image you made, call the tool "
    "again with its id in image_ids. When done, answer with one short sentence."
)
IMAGE_ID = re.compile(r"\bid: ([A-Za-z0-9][A-Za-z0-9_-]*)")


def offline_mode() -> bool:
    """Offline unless the user asked for OpenAI explicitly: a key alone does not start billed calls."""
    flag = os.environ.get("IMAGEGEN_OFFLINE", "1").strip().lower()
    return flag not in {"0", "false", "no", "off"} or not os.environ.get("OPENAI_API_KEY")


def scripted_model(prompt: str, edit: str) -> Model:
    """The offline stand-in for a model: generate, edit the id the tool returned, then answer."""
    from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call

    def revise(call: ModelCall) -> Any:
        output = next(i["output"] for i in reversed(call.input) if i.get("type") == "function_call_output")
        match = IMAGE_ID.search(output if isinstance(output, str) else str(output))
        if match is None:
            return [assistant_message(f"I could not draw it: {output}")]
        args = {"prompt": edit, "image_ids": [match.group(1)]}
        return [function_call("generate_image", args, call_id="call_edit")]

    return ScriptedModel(
        [
            [function_call("generate_image", {"prompt": prompt}, call_id="call_draw")],
            ModelStep.respond(revise),
            [assistant_message("Done: I drew the image and then edited it as you asked.")],
        ]
    )


@contextlib.contextmanager
def image_service(offline: bool) -> Iterator[dict[str, Any]]:
    """Client settings for the tool: the emulator's address offline, the SDK's defaults online."""
    if not offline:
        yield {}
        return
    from imagegen_tool.testing import Emulator

    with Emulator() as api:
        yield {"base_url": api.url, "api_key": "offline"}


async def function_tool_agent(args: argparse.Namespace, offline: bool, service: dict[str, Any]) -> list[Path]:
    tool = image_function_tool(store=args.out, options={"quality": "low"}, **service)
    model: Model | str = scripted_model(args.prompt, args.edit) if offline else args.agent_model
    agent = Agent(name="Illustrator", instructions=INSTRUCTIONS, model=model, tools=[tool])
    request = f"Draw this: {args.prompt}. Then edit the image you drew: {args.edit}."
    print(f"[user] {request}")
    async with tool:  # closes the HTTP clients the tool made
        result = await Runner.run(agent, request)
    for item in result.new_items:
        if item.type == "tool_call_item":
            print(f"[agent] calls {getattr(item.raw_item, 'name', '?')}({getattr(item.raw_item, 'arguments', '')})")
        elif item.type == "tool_call_output_item":
            print(f"[tool] {item.output}")
    print(f"[agent] {result.final_output}")
    paths = []
    for outcome in tool_results(result):
        for image in outcome.images:
            parent = f", edited from {image.input_ids[0]}" if image.input_ids else ""
            print(f"  {image.id}: {image.path} ({image.width}x{image.height} {image.format}{parent})")
            paths.append(Path(image.path or ""))
    return paths


async def hosted_tool_agent(args: argparse.Namespace, offline: bool, service: dict[str, Any]) -> list[Path]:
    """The SDK's hosted image tool; the emulator plays the Responses API model offline."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=service["base_url"], api_key=service["api_key"]) if offline else AsyncOpenAI()
    capture = HostedImageCapture(store=args.out)
    agent = Agent(
        name="Illustrator",
        model=OpenAIResponsesModel(model=args.agent_model, openai_client=client),
        tools=[ImageGenerationTool(tool_config={"type": "image_generation", "quality": "low"})],
    )
    history: list[Any] = []
    for turn in (f"Draw this: {args.prompt}", f"Edit the image you drew: {args.edit}"):
        print(f"[user] {turn}")
        result = await Runner.run(
            agent, [*history, {"role": "user", "content": turn}], hooks=capture.hooks, run_config=capture.run_config()
        )
        print(f"[agent] {result.final_output}")
        history = result.to_input_list()  # no base64 in it: earlier images travel as item references
    await client.close()
    await capture.aclose()
    for image in capture.images:
        print(f"  {image.id}: {image.path} ({image.width}x{image.height} {image.format})")
    return [Path(image.path or "") for image in capture.images]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="generated-images", help="directory for the images (default: %(default)s)")
    parser.add_argument("--prompt", default="a red kite flying over green hills, flat illustration")
    parser.add_argument("--edit", default="make the kite blue and add a small yellow sun; keep everything else")
    parser.add_argument("--agent-model", default="gpt-5.4-mini", help="the agent's model when online")
    parser.add_argument("--hosted", action="store_true", help="use the SDK's hosted ImageGenerationTool instead")
    args = parser.parse_args()

    offline = offline_mode()
    print("mode:", "offline (emulated OpenAI API, scripted agent model)" if offline else "online (OpenAI API, billed)")
    if offline:
        print("      for OpenAI: export OPENAI_API_KEY=sk-... IMAGEGEN_OFFLINE=0")
        set_tracing_disabled(True)  # the SDK would export traces to OpenAI
    with image_service(offline) as service:
        run = hosted_tool_agent if args.hosted else function_tool_agent
        paths = asyncio.run(run(args, offline, service))
    if len(paths) < 2:
        print(f"expected a generated and an edited image, got {len(paths)}", file=sys.stderr)
        return 1
    for path in paths:
        with Image.open(path) as opened:
            opened.verify()
    return 0


if __name__ == "__main__":
    sys.exit(main())
