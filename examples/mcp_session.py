"""A scripted MCP session: start ``imagegen mcp`` over stdio, draw an image, edit it by its id, read it back.

This is what an MCP client (Claude Desktop, Cursor, Codex, VS Code) does with the server, driven here by the
official ``mcp`` SDK's own client so you can see every message: the tool list with its schemas, a call with
progress notifications (partial images), the structured result with the image handle, an edit by that handle,
and the image read as the resource ``imagegen://images/{id}``.

Offline by default: the server runs with ``--offline`` (the built-in emulator, no key, nothing billed). To use
OpenAI for real (billed), set both ``OPENAI_API_KEY`` and ``IMAGEGEN_OFFLINE=0``; the key is passed to the server
process in its environment, as a client configuration's ``env`` section does.

    python examples/mcp_session.py [--out DIR] [--prompt TEXT] [--edit TEXT]

``examples/mcp_client_config.json`` is the matching client configuration (Claude Desktop / Cursor format).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import BlobResourceContents, CallToolResult, TextContent

EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


def offline_mode() -> bool:
    """Offline unless the user asked for OpenAI explicitly: a key alone does not start billed calls."""
    flag = os.environ.get("IMAGEGEN_OFFLINE", "1").strip().lower()
    return flag not in {"0", "false", "no", "off"} or not os.environ.get("OPENAI_API_KEY")


def server_parameters(store: Path, offline: bool) -> StdioServerParameters:
    """How a client starts the server: ``imagegen mcp`` with flags, and the environment it needs (clients pass
    only a reduced environment by default, so the key must be given explicitly)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    args = ["-m", "imagegen_tool.cli", "mcp", "--store", str(store), "--partial-images", "1", "--preview-size", "256"]
    if offline:
        args.append("--offline")  # the server gets no key at all
    else:
        env["OPENAI_API_KEY"] = os.environ["OPENAI_API_KEY"]
        if os.environ.get("OPENAI_BASE_URL"):
            env["OPENAI_BASE_URL"] = os.environ["OPENAI_BASE_URL"]
    return StdioServerParameters(command=sys.executable, args=args, env=env)


def handle_of(result: CallToolResult) -> dict[str, Any]:
    text = next((block.text for block in result.content if isinstance(block, TextContent)), "")
    if result.is_error:
        raise SystemExit(f"the tool refused: {text}")
    print(text)
    assert isinstance(result.structured_content, dict)
    image: dict[str, Any] = result.structured_content["images"][0]
    return image


async def session(out: Path, prompt: str, edit: str, offline: bool) -> None:
    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        print(f"  progress {progress:g}: {message}")

    with tempfile.TemporaryDirectory(prefix="imagegen-mcp-") as store:
        async with Client(stdio_client(server_parameters(Path(store), offline)), read_timeout_seconds=600) as client:
            tools = await client.list_tools()
            for tool in tools.tools:
                print(f"tool {tool.name}: arguments {', '.join(tool.input_schema['properties'])}")

            print(f"\ngenerate_image: {prompt!r}")
            first = handle_of(
                await client.call_tool("generate_image", {"prompt": prompt}, progress_callback=on_progress)
            )

            print(f"\ngenerate_image (edit of {first['id']}): {edit!r}")
            edited = handle_of(
                await client.call_tool(
                    "generate_image", {"prompt": edit, "image_ids": [first["id"]]}, progress_callback=on_progress
                )
            )

            out.mkdir(parents=True, exist_ok=True)
            for image in (first, edited):
                read = await client.read_resource(f"imagegen://images/{image['id']}")
                contents = read.contents[0]
                assert isinstance(contents, BlobResourceContents)
                path = out / (image["id"] + EXTENSIONS.get(contents.mime_type or "", ".bin"))
                path.write_bytes(base64.b64decode(contents.blob))
                print(f"read imagegen://images/{image['id']} -> {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("mcp-images"), help="where to save the images read back")
    parser.add_argument("--prompt", default="a watercolour fox in a snowy forest")
    parser.add_argument("--edit", default="add a red scarf to the fox, keep everything else")
    args = parser.parse_args()
    offline = offline_mode()
    print(f"mode: {'offline (emulator, nothing billed)' if offline else 'online (OpenAI, billed)'}")
    asyncio.run(session(args.out, args.prompt, args.edit, offline))


if __name__ == "__main__":
    main()
