"""An agent draws an image, then edits it by its handle: the README's first command.

Offline by default: the OpenAI API is replaced by imagegen-tool's emulator (real HTTP through the real
``openai`` SDK, real image files) and the agent's chat model is scripted, so this runs anywhere for free. To use
OpenAI for real (billed), set both ``OPENAI_API_KEY`` and ``IMAGEGEN_OFFLINE=0``: the agent is then a real chat
model (``langchain-openai``, ``--agent-model``, default gpt-5.4-mini) and the images come from GPT Image.

    python examples/agent_generate_and_edit.py [--out DIR] [--prompt TEXT] [--edit TEXT]

The agent is a LangGraph agent (``langchain.agents.create_agent``) with one tool, ``generate_image``; partial
images stream in as custom events while each image renders, and every image ends up as a file in ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from PIL import Image

from imagegen_tool import GeneratedImage, ImageOptions
from imagegen_tool.langchain import COMPLETED_EVENT, PARTIAL_IMAGE_EVENT, PROGRESS_EVENT, ImageGenerationTool

SYSTEM_PROMPT = (
    "You make images for the user with the generate_image tool. To change an image you made, call the tool "
    "again with its id in image_ids. When done, answer with one short sentence."
)
IMAGE_ID = re.compile(r"\bid: ([A-Za-z0-9][A-Za-z0-9_-]*)")


def offline_mode() -> bool:
    """Offline unless the user asked for OpenAI explicitly: a key alone does not start billed calls."""
    flag = os.environ.get("IMAGEGEN_OFFLINE", "1").strip().lower()
    return flag not in {"0", "false", "no", "off"} or not os.environ.get("OPENAI_API_KEY")


def scripted_agent(prompt: str, edit: str) -> BaseChatModel:
    """The offline stand-in for a chat model: generate, edit the id the tool returned, then answer."""
    from imagegen_tool.testing.agents import ScriptedChatModel

    def draw(messages: list[BaseMessage]) -> AIMessage:
        return AIMessage("", tool_calls=[{"name": "generate_image", "args": {"prompt": prompt}, "id": "call_draw"}])

    def revise(messages: list[BaseMessage]) -> AIMessage:
        match = IMAGE_ID.search(str(messages[-1].content))
        if match is None:
            return AIMessage(f"I could not draw it: {messages[-1].content}")
        args = {"prompt": edit, "image_ids": [match.group(1)]}
        return AIMessage("", tool_calls=[{"name": "generate_image", "args": args, "id": "call_edit"}])

    def answer(messages: list[BaseMessage]) -> AIMessage:
        return AIMessage("Done: I drew the image and then edited it as you asked.")

    return ScriptedChatModel(steps=[draw, revise, answer])


def online_agent(model: str) -> BaseChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        sys.exit("online mode needs langchain-openai: pip install 'imagegen-tool[examples]'")
    return ChatOpenAI(model=model)


@contextlib.contextmanager
def image_service(offline: bool) -> Iterator[dict[str, Any]]:
    """Client settings for the tool: the emulator's address offline, the SDK's defaults online."""
    if not offline:
        yield {}
        return
    from openai import AsyncOpenAI, OpenAI

    from imagegen_tool.testing import Emulator

    with Emulator() as api:
        yield {
            "client": OpenAI(base_url=api.url, api_key="offline"),
            "async_client": AsyncOpenAI(base_url=api.url, api_key="offline"),
        }


def show(update: Any) -> None:
    """Print what happens, as a UI would show it."""
    mode, data = update
    if mode == "custom":
        if data["event"] == PARTIAL_IMAGE_EVENT:
            print(f"    preview {data['index'] + 1}: {data['width']}x{data['height']} {data['mime_type']}")
        elif data["event"] == PROGRESS_EVENT and data.get("call_id") and data["stage"] == "generating":
            print("    rendering ...")
        elif data["event"] == COMPLETED_EVENT:
            print(f"    stored {', '.join(data['image_ids'])}")
        return
    for node, change in data.items():
        for message in (change or {}).get("messages", []):
            if isinstance(message, AIMessage) and message.tool_calls:
                for call in message.tool_calls:
                    print(f"[{node}] calls {call['name']}({call['args']})")
            elif isinstance(message, AIMessage):
                print(f"[{node}] {message.content}")
            elif isinstance(message, ToolMessage):
                print(f"[tool] {message.content}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="generated-images", help="directory for the images (default: %(default)s)")
    parser.add_argument("--prompt", default="a red kite flying over green hills, flat illustration")
    parser.add_argument("--edit", default="make the kite blue and add a small yellow sun; keep everything else")
    parser.add_argument("--agent-model", default="gpt-5.4-mini", help="chat model of the agent when online")
    args = parser.parse_args()

    offline = offline_mode()
    print("mode:", "offline (emulated OpenAI API, scripted agent)" if offline else "online (OpenAI API, billed)")
    if offline:
        print("      for OpenAI: export OPENAI_API_KEY=sk-... IMAGEGEN_OFFLINE=0")
    with image_service(offline) as client_settings:
        tool = ImageGenerationTool(
            store=args.out,
            options=ImageOptions(quality="low", partial_images=1),
            **client_settings,
        )
        model = scripted_agent(args.prompt, args.edit) if offline else online_agent(args.agent_model)
        agent = create_agent(model, tools=[tool], system_prompt=SYSTEM_PROMPT)
        request = f"Draw this: {args.prompt}. Then edit the image you drew: {args.edit}."
        print(f"[user] {request}")
        final: dict[str, Any] = {}
        for update in agent.stream({"messages": [HumanMessage(request)]}, stream_mode=["updates", "custom", "values"]):
            if update[0] == "values":
                final = update[1]
            else:
                show(update)

    images = [img for m in final.get("messages", []) if isinstance(m, ToolMessage) for img in (m.artifact or [])]
    return report(images)


def report(images: list[GeneratedImage]) -> int:
    if len(images) < 2:
        print(f"expected a generated and an edited image, got {len(images)}", file=sys.stderr)
        return 1
    print("\nimages:")
    for image in images:
        with Image.open(image.path or "") as opened:
            opened.verify()
        parent = f", edited from {image.input_ids[0]}" if image.input_ids else ""
        tokens = image.usage.image.total_tokens if image.usage and image.usage.image else "?"
        print(
            f"  {image.id}: {Path(image.path or '').resolve()} ({image.width}x{image.height} {image.format}, "
            f"{image.byte_size} bytes, {tokens} image tokens{parent})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
