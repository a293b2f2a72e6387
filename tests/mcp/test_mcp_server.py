"""``imagegen mcp`` as a real subprocess, driven by the ``mcp`` SDK's stdio and streamable-HTTP clients against the
emulator: the tool's schemas, generate then edit by id, the image resources (bytes equal to the store's, nothing
outside the store readable), progress notifications with partial images, and tool errors the agent can act on."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import mcp_types as types
import pytest
from mcp import MCPError

from imagegen_tool.agent_tool import ToolResult
from imagegen_tool.store import LocalImageStore
from imagegen_tool.testing import Emulator
from tests.mcp.conftest import SECRET_KEY, stdio_connection


def structured(result: types.CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict)
    jsonschema.validate(result.structured_content, ToolResult.json_schema())
    return result.structured_content


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_lists_the_tool_with_valid_schemas(connect: Any) -> None:
    async with connect() as connection:
        listed = await connection.client.list_tools()
        [tool] = listed.tools
        assert tool.name == "generate_image" and tool.description and "edit" in tool.description
        for schema in (tool.input_schema, tool.output_schema):
            assert schema is not None and schema["type"] == "object"
            jsonschema.Draft202012Validator.check_schema(schema)
        inputs = tool.input_schema
        assert inputs["required"] == ["prompt"] and inputs["additionalProperties"] is False
        assert {"prompt", "image_ids", "mask_id", "size", "quality"} <= set(inputs["properties"])
        # Portable for every provider (OpenAI strict mode refuses 'default'; no titles, no patterns).
        assert '"default"' not in json.dumps(inputs) and '"title"' not in json.dumps(inputs)
        assert tool.output_schema == ToolResult.json_schema()
        assert tool.annotations is not None and tool.annotations.read_only_hint is False


async def test_generate_then_edit_by_id_then_read_the_resource(connect: Any, api: Emulator) -> None:
    async with connect() as connection:
        client = connection.client
        first = await client.call_tool("generate_image", {"prompt": "a red kite over the sea", "size": "1536x1024"})
        assert not first.is_error, text_of(first)
        data = structured(first)
        [image] = data["images"]
        assert (image["width"], image["height"], image["format"]) == (1536, 1024, "png")
        assert image["id"] in text_of(first)
        kinds = [block.type for block in first.content]
        assert kinds == ["text", "image", "resource_link"]
        preview = next(block for block in first.content if isinstance(block, types.ImageContent))
        assert (
            preview.mime_type == "image/jpeg" and len(base64.b64decode(preview.data)) < 40_000
        )  # small, not the image
        link = next(block for block in first.content if isinstance(block, types.ResourceLink))
        assert link.uri == f"imagegen://images/{image['id']}" and link.mime_type == "image/png"
        assert link.size == image["byte_size"]

        edit = await client.call_tool(
            "generate_image", {"prompt": "make the kite blue", "image_ids": [image["id"]], "size": None, "quality": ""}
        )
        assert not edit.is_error, text_of(edit)
        [edited] = structured(edit)["images"]
        assert edited["input_ids"] == [image["id"]] and edited["id"] != image["id"]
        assert len(api.requests) >= 2

        store = LocalImageStore(connection.store)
        for handle in (image, edited):
            read = await client.read_resource(f"imagegen://images/{handle['id']}")
            [contents] = read.contents
            assert isinstance(contents, types.BlobResourceContents) and contents.mime_type == "image/png"
            assert base64.b64decode(contents.blob) == store.read_bytes(handle["id"])
            assert base64.b64decode(contents.blob) == Path(handle["path"]).read_bytes()

        listed = await client.list_resources()
        uris = {resource.uri for resource in listed.resources}
        assert {f"imagegen://images/{image['id']}", f"imagegen://images/{edited['id']}"} <= uris
        templates = await client.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == ["imagegen://images/{id}"]


async def test_progress_notifications_carry_partial_images(connect: Any) -> None:
    progress: list[tuple[float, str | None]] = []
    metas: list[dict[str, Any]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async def on_message(message: Any) -> None:  # the raw notifications, to see their _meta
        if getattr(message, "method", None) == "notifications/progress":
            metas.append(message.params.meta or {})

    async with connect(message_handler=on_message) as connection:
        result = await connection.client.call_tool(
            "generate_image", {"prompt": "a lighthouse at dusk"}, progress_callback=on_progress
        )
    assert not result.is_error, text_of(result)
    messages = [message or "" for _, message in progress]
    partials = [m for m in messages if m.startswith("partial image")]
    assert partials == ["partial image 1 (1024x1024)", "partial image 2 (1024x1024)"], messages
    assert messages[-1] == "completed: 1 image"
    values = [value for value, _ in progress]
    assert values == sorted(values) and len(set(values)) == len(values)  # increasing, as the spec asks

    partial_metas = [m for m in metas if m.get("imagegen/event", {}).get("event") == "imagegen_partial_image"]
    assert [meta["imagegen/event"]["index"] for meta in partial_metas] == [0, 1], metas
    for meta in partial_metas:
        event = meta["imagegen/event"]
        assert (event["width"], event["height"]) == (1024, 1024) and event["call_id"]
        preview = meta["imagegen/preview"]
        assert preview["mime_type"] == "image/jpeg" and base64.b64decode(preview["data"])[:2] == b"\xff\xd8"
        assert len(preview["data"]) < 20_000  # --preview-size 128: a thumbnail, not the 1.5 MB partial


INVALID_CALLS = [
    ({"prompt": "a kite", "size": "7x7"}, "Invalid option size='7x7'"),
    ({"prompt": "a kite", "quality": "ultra"}, "quality='ultra'"),
    ({"prompt": "a kite", "colour": "red"}, "'colour' is not an argument"),
    ({"prompt": "   "}, "the prompt is empty"),
    ({"prompt": "a kite", "image_ids": ["../../etc/passwd"]}, "not an image id"),
    ({"prompt": "a kite", "image_ids": ["img_doesnotexist"]}, "img_doesnotexist"),
    ({}, "'prompt' is required"),
]


async def test_invalid_arguments_are_tool_errors_and_nothing_is_sent(connect: Any, api: Emulator) -> None:
    async with connect() as connection:
        for arguments, expected in INVALID_CALLS:
            result = await connection.client.call_tool("generate_image", arguments)
            assert result.is_error, arguments
            text = text_of(result)
            assert expected in text, text
            data = structured(result)
            assert data["is_error"] and data["error"] == text and data["images"] == []
            assert data["error_type"] in ("ToolArgumentsError", "InvalidOptionsError", "ImageNotFoundError"), data
    assert api.requests == []  # each refused before any request: nothing billed


async def test_service_errors_are_tool_errors_the_agent_can_act_on(connect: Any, api: Emulator) -> None:
    async with connect() as connection:
        blocked = await connection.client.call_tool("generate_image", {"prompt": "a forbidden thing"})
        api.fail_next(429, code="insufficient_quota", times=5)
        quota = await connection.client.call_tool("generate_image", {"prompt": "a kite"})
    assert blocked.is_error and quota.is_error
    text = text_of(blocked)
    assert "moderation" in text and "Do not retry the same prompt" in text
    assert (structured(blocked)["error_type"], structured(blocked)["retryable"]) == ("ModerationBlockedError", False)
    assert (structured(quota)["error_type"], structured(quota)["retryable"]) == ("QuotaExceededError", False)
    assert "quota" in text_of(quota).lower()


OUTSIDE_URIS = [
    "imagegen://images/../../etc/passwd",
    "imagegen://images/%2e%2e%2fsecret",
    "imagegen://images/img_nosuchimage",
    "imagegen://images/planted",
    "imagegen://images/",
    "imagegen://images/a/b",
    "file:///etc/passwd",
    "imagegen://images/abc?x=1",
]


async def test_resources_outside_the_store_are_refused(connect: Any) -> None:
    async with connect() as connection:
        # A file planted in the store folder without a record is not an image this store handed out.
        connection.store.mkdir(parents=True, exist_ok=True)
        (connection.store / "planted.png").write_bytes(b"\x89PNG not from the store")
        for uri in OUTSIDE_URIS:
            with pytest.raises(MCPError) as caught:
                await connection.client.read_resource(uri)
            assert "/etc" not in caught.value.message and "Traceback" not in caught.value.message, uri


async def test_locked_options_are_not_offered_and_display_id_hides_paths(api: Emulator, tmp_path: Path) -> None:
    flags = ["--option", "quality=low", "--model", "gpt-image-2", "--expose", "size,background", "--no-preview"]
    flags += ["--display", "id"]
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with stdio_connection(api.url, tmp_path / "store", tmp_path / "log", flags=flags) as connection:
        [tool] = (await connection.client.list_tools()).tools
        assert set(tool.input_schema["properties"]) == {"prompt", "image_ids", "mask_id", "size", "background"}
        refused = await connection.client.call_tool("generate_image", {"prompt": "a kite", "quality": "high"})
        assert refused.is_error and "'quality' is not an argument" in text_of(refused)
        result = await connection.client.call_tool(
            "generate_image", {"prompt": "a kite"}, progress_callback=on_progress
        )
        assert not result.is_error and [b.type for b in result.content] == ["text", "resource_link"]
    # display="id": the model sees ids only, never where the server keeps its files.
    [image] = structured(result)["images"]
    assert image["path"] is None and image["url"] is None
    dumped = json.dumps(result.model_dump(mode="json"))
    assert str(tmp_path) not in dumped and str(tmp_path) not in " ".join(progress)
    [tool_spec] = [t for t in api.requests[-1].json["tools"] if t["type"] == "image_generation"]
    assert (tool_spec["quality"], tool_spec["model"]) == ("low", "gpt-image-2")


async def test_legacy_handshake_clients_work(api: Emulator, tmp_path: Path) -> None:
    """Clients on the initialize handshake (today's Claude Desktop, Cursor, ...) get the same tool."""
    async with stdio_connection(api.url, tmp_path / "store", tmp_path / "log", mode="legacy") as connection:
        result = await connection.client.call_tool("generate_image", {"prompt": "a kite"})
        assert not result.is_error
        image_id = structured(result)["images"][0]["id"]
        read = await connection.client.read_resource(f"imagegen://images/{image_id}")
        assert read.contents


async def test_the_end_user_is_sent_with_every_request(api: Emulator, tmp_path: Path) -> None:
    """``--safety-identifier`` (or ``IMAGEGEN_MCP_SAFETY_IDENTIFIER``): the end user this server acts for."""
    async with stdio_connection(
        api.url, tmp_path / "store", tmp_path / "log", flags=["--safety-identifier", "user-7-hash"]
    ) as connection:
        assert not (await connection.client.call_tool("generate_image", {"prompt": "a kite"})).is_error
    async with stdio_connection(
        api.url, tmp_path / "store", tmp_path / "log2", IMAGEGEN_MCP_SAFETY_IDENTIFIER="user-8-hash"
    ) as connection:
        assert not (await connection.client.call_tool("generate_image", {"prompt": "a boat"})).is_error
    sent = [request.json.get("safety_identifier") for request in api.requests_to("/v1/responses", "POST")]
    assert sent == ["user-7-hash", "user-8-hash"]


async def test_offline_mode_needs_no_key(tmp_path: Path) -> None:
    """``imagegen mcp --offline`` starts the emulator in-process: no key, no OPENAI_BASE_URL."""
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from tests.mcp.conftest import SERVER_COMMAND, server_env

    env = server_env("http://127.0.0.1:9/v1", tmp_path / "store")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(name)
    params = StdioServerParameters(command=SERVER_COMMAND[0], args=[*SERVER_COMMAND[1:], "--offline"], env=env)
    with (tmp_path / "log").open("w") as log:
        async with Client(stdio_client(params, errlog=log), read_timeout_seconds=60) as client:
            result = await client.call_tool("generate_image", {"prompt": "a kite"})
    assert not result.is_error and structured(result)["images"]
    assert "emulator" in (tmp_path / "log").read_text()


@pytest.mark.parametrize(
    ("flags", "drop_key", "expected"),
    [
        ([], True, "OPENAI_API_KEY"),
        (["--option", "quality=ultra"], False, "quality"),
        (["--safety-identifier", SECRET_KEY], False, "safety_identifier looks like an API key"),
    ],
    ids=["no-key", "bad-option", "key-as-end-user"],
)
def test_configuration_errors_fail_clearly(tmp_path: Path, flags: list[str], drop_key: bool, expected: str) -> None:
    import subprocess

    from tests.mcp.conftest import SERVER_COMMAND, server_env

    env = server_env("http://127.0.0.1:9/v1", tmp_path / "store")
    if drop_key:
        env.pop("OPENAI_API_KEY")
    done = subprocess.run(
        [*SERVER_COMMAND, *flags], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 2 and done.stdout == ""  # stdout is the protocol channel: nothing else goes there
    assert expected in done.stderr and SECRET_KEY not in done.stderr
    if drop_key:
        assert "--offline" in done.stderr


def test_http_refuses_foreign_host_and_origin_headers(http_server: Any) -> None:
    """DNS-rebinding protection on the loopback HTTP server: a page on another site cannot drive it."""
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    foreign_host = httpx.post(http_server.url, json=body, headers={**headers, "Host": "evil.example"}, timeout=30)
    assert foreign_host.status_code == 421
    foreign_origin = httpx.post(
        http_server.url, json=body, headers={**headers, "Origin": "http://evil.example"}, timeout=30
    )
    assert foreign_origin.status_code == 403


def test_the_example_client_configuration_matches_the_server_flags() -> None:
    from imagegen_tool.mcp import _parser

    config = json.loads((Path(__file__).parents[2] / "examples" / "mcp_client_config.json").read_text("utf-8"))
    servers = config["mcpServers"]
    assert servers
    for server in servers.values():
        assert server["command"] == "imagegen-mcp" and isinstance(server["env"], dict)
        _parser().parse_args(server["args"])  # every flag exists (argparse exits on an unknown one)
    assert any("--offline" in server["args"] for server in servers.values())
