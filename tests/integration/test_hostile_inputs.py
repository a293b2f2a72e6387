"""Hostile input suite: agent-supplied and caller-supplied values that must be refused before any request.

Each case goes through the LangChain tool (as an agent's tool call) and/or through ``ImageGenerator`` against
the emulator over real HTTP. For every case: a clear, specific message (no control characters echoed back),
0 requests logged by the emulator, and 0 file-system operations outside the store and input folders (checked
with a Python audit hook on every path the process opens, lists, creates or removes).
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import sys
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from openai import OpenAI
from PIL import Image

from imagegen_tool import GeneratedImage, ImageGenerator, ImageRecord
from imagegen_tool.errors import ImageGenerationError
from imagegen_tool.imageinfo import inspect_image
from imagegen_tool.inputs import AGENT_INPUT_POLICY, input_policy
from imagegen_tool.langchain import ImageGenerationTool
from imagegen_tool.testing import Emulator

# -- watching the file system ---------------------------------------------------------------------------------

_PATH_EVENTS = {
    "open": 1,
    "os.listdir": 1,
    "os.scandir": 1,
    "os.remove": 1,
    "os.rmdir": 1,
    "os.mkdir": 1,
    "os.rename": 2,
    "os.link": 2,
    "os.symlink": 2,
    "os.chmod": 1,
    "os.chown": 1,
    "os.truncate": 1,
    "os.utime": 1,
}
_watch: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watch or event not in _PATH_EVENTS:
        return
    for value in args[: _PATH_EVENTS[event]]:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, str) and os.path.isabs(value):
            _watch[-1].append(os.path.normpath(value))


sys.addaudithook(_audit)

SENSITIVE = ("/etc/passwd", "/etc/shadow", "/proc/self/environ", os.path.expanduser("~/.ssh"))


# -- helpers -------------------------------------------------------------------------------------------------


def _png(color: str = "red", size: tuple[int, int] = (32, 32), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(buffer, fmt)
    return buffer.getvalue()


def _bomb() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 200_000, 200_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 99)) + chunk(b"IEND", b"")
    )


def _noisy_png(size: tuple[int, int] = (256, 256)) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 90).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class World:
    """A store with some images, an input folder, and an outside folder nothing may touch."""

    store_dir: Path
    inputs_dir: Path
    outside: Path
    generator: ImageGenerator
    tool: ImageGenerationTool
    emulator: Emulator
    ids: dict[str, str] = field(default_factory=dict)

    def stored(self, image_id: str, data: bytes | None = None, **record: Any) -> str:
        data = _png() if data is None else data
        info = inspect_image(data)
        fields: dict[str, Any] = {
            "id": image_id,
            "mime_type": info.mime_type,
            "format": info.format,
            "width": info.width,
            "height": info.height,
            "prompt": "earlier",
        }
        fields.update(record)
        return self.generator.store.save(data, ImageRecord(**fields)).id


@pytest.fixture
def world(tmp_path: Path, openai_client: OpenAI, imagegen_emulator: Emulator) -> World:
    store_dir, inputs_dir, outside = tmp_path / "store", tmp_path / "inputs", tmp_path / "outside"
    for directory in (store_dir, inputs_dir, outside):
        directory.mkdir()
    (outside / "secret.png").write_bytes(_png("black"))
    (outside / "secret-dir").mkdir()
    (outside / "secret-dir" / "cat.png").write_bytes(_png("black"))
    (inputs_dir / "cat.png").write_bytes(_png("green"))
    (inputs_dir / "cat").write_bytes(_png("green"))
    generator = ImageGenerator(store=store_dir, client=openai_client, input_roots=[inputs_dir])
    tool = ImageGenerationTool(generator=generator, exposed_options=("size", "quality"))
    return World(store_dir, inputs_dir, outside, generator, tool, imagegen_emulator)


@dataclass(frozen=True)
class Case:
    name: str
    message: str
    """A phrase the refusal must contain (case-insensitive)."""
    agent_args: Callable[[World], dict[str, Any]] | None = None
    """Tool-call arguments from an agent (through the LangChain tool, and through ImageGenerator under the
    agent input policy)."""
    developer_call: Callable[[World], Callable[[], Any]] | None = None
    """Prepares a developer's own ImageGenerator call (default input policy) and returns it."""


def _prompt(**extra: Any) -> Callable[[World], dict[str, Any]]:
    return lambda world: {"prompt": "edit it", **extra}


def _with_ids(*make: Callable[[World], str]) -> Callable[[World], dict[str, Any]]:
    return lambda world: {"prompt": "edit it", "image_ids": [m(world) for m in make]}


def _damaged_record(world: World) -> str:
    image_id = world.stored("ig_damaged")
    (world.store_dir / f"{image_id}.json").write_bytes(b"\xff\xfe not a record")
    return image_id


def _record_pointing_outside(world: World) -> str:
    image_id = world.stored("ig_pointer")
    record = json.loads((world.store_dir / f"{image_id}.json").read_text())
    record["filename"] = str(world.outside / "secret.png")
    (world.store_dir / f"{image_id}.json").write_text(json.dumps(record))
    (world.store_dir / f"{image_id}.png").unlink()  # only the outside file exists under that "filename"
    return image_id


def _fifo_image(world: World) -> str:
    image_id = world.stored("ig_fifo")
    (world.store_dir / f"{image_id}.png").unlink()
    os.mkfifo(world.store_dir / f"{image_id}.png")
    return image_id


def _linked_image(world: World) -> str:
    image_id = world.stored("ig_linked")
    (world.store_dir / f"{image_id}.png").unlink()
    (world.store_dir / f"{image_id}.png").symlink_to(world.outside / "secret.png")
    return image_id


def _truncated_image(world: World) -> str:
    data = _noisy_png()
    return world.stored("ig_truncated", data[: len(data) // 2])  # no stored response: bytes must be sent


def _gif_image(world: World) -> str:
    return world.stored("ig_gif", _encoded("GIF"))


def _no_alpha_mask(world: World) -> dict[str, Any]:
    return {"prompt": "edit it", "image_ids": [world.stored("ig_base")], "mask_id": world.stored("ig_mask")}


def _wrong_size_mask(world: World) -> dict[str, Any]:
    mask = world.stored("ig_mask_small", _png(size=(8, 8), mode="RGBA"))
    return {"prompt": "edit it", "image_ids": [world.stored("ig_base")], "mask_id": mask}


def _seventeen(world: World) -> dict[str, Any]:
    ids = [world.stored(f"ig_many_{n}", _png(color=f"#{n * 12:02x}2040")) for n in range(17)]
    return {"prompt": "combine them", "image_ids": ids}


AGENT_CASES = [
    Case("file id", "no image with id", _with_ids(lambda w: "file-AbC123xyz")),
    Case(
        "file id mask",
        "no image with id",
        lambda w: {"prompt": "x", "image_ids": [w.stored("ig_b")], "mask_id": "file-abc"},
    ),
    Case("http url", "not an image id|not allowed", _with_ids(lambda w: "http://169.254.169.254/latest/meta-data")),
    Case("https url", "not an image id|not allowed", _with_ids(lambda w: "https://example.com/cat.png")),
    Case(
        "data url",
        "not an image id|not allowed",
        _with_ids(lambda w: "data:image/png;base64," + base64.b64encode(_png()).decode()),
    ),
    Case("file url", "not an image id|not a usable input", _with_ids(lambda w: "file:///etc/passwd")),
    Case("absolute path", "not an image id", _with_ids(lambda w: "/etc/passwd")),
    Case("outside path", "not an image id", _with_ids(lambda w: str(w.outside / "secret.png"))),
    Case("dot-dot path", "not an image id", _with_ids(lambda w: "../../../../etc/passwd")),
    Case("file name in input folder", "not an image id", _with_ids(lambda w: "cat.png")),
    Case("bare name in input folder", "no image with id", _with_ids(lambda w: "cat")),
    Case("home path", "not an image id", _with_ids(lambda w: "~/.ssh/id_rsa")),
    Case("unknown id", "no image with id", _with_ids(lambda w: "ig_doesnotexist")),
    Case("NUL in id", "not an image id", _with_ids(lambda w: "ig_a\x00b")),
    Case("newline in id", "not an image id|no image with id", _with_ids(lambda w: "ig_a\n")),
    Case("escape codes in id", "not an image id", _with_ids(lambda w: "ig_\x1b[31mred\x1b[0m")),
    Case("bidi override in id", "not an image id", _with_ids(lambda w: "ig_\u202egnp.exe")),
    Case("huge id", "not an image id", _with_ids(lambda w: "ig_" + "a" * 10_000)),
    Case("id list is a string", "image_ids|no image with id", _prompt(image_ids="ig_a")),
    Case("id list of numbers", "image_ids", _prompt(image_ids=[1, 2, 3])),
    Case("id list of objects", "image_ids", _prompt(image_ids=[{"path": "/etc/passwd"}])),
    Case(
        "mask path",
        "not an image id",
        lambda w: {"prompt": "x", "image_ids": [w.stored("ig_b")], "mask_id": "/etc/passwd"},
    ),
    Case(
        "mask without image",
        "mask needs an image",
        lambda w: {"prompt": "x", "mask_id": w.stored("ig_m", _png(mode="RGBA"))},
    ),
    Case("mask without alpha", "alpha channel", _no_alpha_mask),
    Case("mask of another size", "same size", _wrong_size_mask),
    Case("17 distinct images", "at most 16", _seventeen),
    Case("empty prompt", "prompt", _prompt(prompt="")),
    Case("whitespace prompt", "only whitespace|prompt is empty", _prompt(prompt=" \n\t\u3000 ")),
    Case("invisible prompt", "only whitespace|prompt is empty", _prompt(prompt="\x00\x01\u200b")),
    Case("overlong prompt", "prompt", _prompt(prompt="draw " * 8000)),
    Case("prompt not text", "prompt", _prompt(prompt={"text": "x"})),
    Case("unknown argument", "not an argument|invalid option", _prompt(api_key="sk-test")),
    Case("locked option", "not an argument|invalid option", _prompt(model="gpt-image-1")),
    Case("escape codes in argument name", "not an argument", _prompt(**{"\x1b[2Jx": 1})),
    Case("size out of range", "size", _prompt(size="99999x99999")),
    Case("size not a size", "size", _prompt(size="../../etc")),
    Case("quality unknown", "quality", _prompt(quality="ultra\x07")),
    Case("damaged record", "damaged", _with_ids(_damaged_record)),
    Case("record naming an outside file", "no image|damaged|cannot read", _with_ids(_record_pointing_outside)),
    Case("FIFO as image", "regular file", _with_ids(_fifo_image)),
    Case("link as image", "link|cannot read", _with_ids(_linked_image)),
    Case("truncated stored image", "truncated or corrupt", _with_ids(_truncated_image)),
    Case("gif as input", "png, jpeg or webp", _with_ids(_gif_image)),
]


def _dev_fn(make: Callable[[World], Any], **kwargs: Any) -> Callable[[World], Callable[[], Any]]:
    """Prepare the input (outside the watched part), then edit it."""

    def prepare(world: World) -> Callable[[], Any]:
        value = make(world)
        return lambda: world.generator.edit("edit it", value, **kwargs)

    return prepare


def _data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _symlinked_folder(world: World) -> str:
    (world.inputs_dir / "folder").symlink_to(world.outside / "secret-dir", target_is_directory=True)
    return "folder/cat.png"


def _symlinked_file(world: World) -> str:
    (world.inputs_dir / "link.png").symlink_to(world.outside / "secret.png")
    return "link.png"


def _fifo_input(world: World) -> str:
    os.mkfifo(world.inputs_dir / "pipe.png")
    return "pipe.png"


def _forged_handle(world: World) -> GeneratedImage:
    real = world.generator.store.get(world.stored("ig_real"))
    return real.model_copy(update={"id": "ig_from_a_checkpoint", "path": str(world.outside / "secret.png")})


DEVELOPER_CASES = [
    Case(
        "dev: absolute path outside",
        "outside the directories",
        developer_call=_dev_fn(lambda w: str(w.outside / "secret.png")),
    ),
    Case("dev: Path outside", "outside the directories", developer_call=_dev_fn(lambda w: w.outside / "secret.png")),
    Case("dev: /etc/passwd", "outside the directories", developer_call=_dev_fn(lambda w: "/etc/passwd")),
    Case("dev: dot-dot escape", "outside", developer_call=_dev_fn(lambda w: "../outside/secret.png")),
    Case("dev: home path", "outside the directories", developer_call=_dev_fn(lambda w: "~/.ssh/id_rsa")),
    Case("dev: linked file", "symbolic link", developer_call=_dev_fn(_symlinked_file)),
    Case("dev: linked folder", "symbolic link", developer_call=_dev_fn(_symlinked_folder)),
    Case("dev: FIFO", "regular file", developer_call=_dev_fn(_fifo_input)),
    Case("dev: a directory", "regular file|directory|outside", developer_call=_dev_fn(lambda w: str(w.inputs_dir))),
    Case("dev: NUL in path", "not a usable file path", developer_call=_dev_fn(lambda w: "cat\x00.png")),
    Case("dev: overlong path", "not a usable file path", developer_call=_dev_fn(lambda w: "a/" * 3000)),
    Case("dev: ftp url", "not a usable input", developer_call=_dev_fn(lambda w: "ftp://example.com/x.png")),
    Case("dev: truncated bytes", "truncated or corrupt", developer_call=_dev_fn(lambda w: _noisy_png()[:5000])),
    Case(
        "dev: corrupt bytes",
        "truncated or corrupt|not a readable",
        developer_call=_dev_fn(lambda w: (lambda d: d[:2000] + b"\x00" * 500 + d[2500:])(_noisy_png())),
    ),
    Case("dev: not an image", "not a readable image", developer_call=_dev_fn(lambda w: b"%PDF-1.7 not an image")),
    Case("dev: bmp", "png, jpeg or webp", developer_call=_dev_fn(lambda w: _encoded("BMP"))),
    Case("dev: gif", "png, jpeg or webp", developer_call=_dev_fn(lambda w: _encoded("GIF"))),
    Case("dev: decompression bomb", "pixels", developer_call=_dev_fn(lambda w: _bomb())),
    Case("dev: bad base64", "base64", developer_call=_dev_fn(lambda w: "data:image/png;base64,@@@not-base64")),
    Case(
        "dev: truncated data url",
        "truncated or corrupt",
        developer_call=_dev_fn(lambda w: _data_url(_noisy_png()[:3000])),
    ),
    Case(
        "dev: data url of text",
        "not a readable image",
        developer_call=_dev_fn(lambda w: _data_url(b"hello", "image/png")),
    ),
    Case(
        "dev: 17 distinct byte images",
        "at most 16",
        developer_call=_dev_fn(lambda w: [_png(color=f"#{n * 10:02x}0000") for n in range(17)]),
    ),
    Case("dev: forged handle", "no image with id", developer_call=_dev_fn(_forged_handle)),
    Case(
        "dev: mask without alpha",
        "alpha channel",
        developer_call=lambda w: lambda: w.generator.edit("x", _png(), mask=_png()),
    ),
    Case(
        "dev: mask of another size",
        "same size",
        developer_call=lambda w: (
            lambda: w.generator.edit("x", _png(size=(32, 32)), mask=_png(size=(16, 16), mode="RGBA"))
        ),
    ),
    Case(
        "dev: mask without image",
        "mask needs an image",
        developer_call=lambda w: lambda: w.generator.generate("x", mask=_png(mode="RGBA")),
    ),
    Case("dev: whitespace prompt", "only whitespace", developer_call=lambda w: lambda: w.generator.generate("   \n ")),
    Case(
        "dev: urls switched off",
        "not allowed",
        developer_call=lambda w: (
            lambda: ImageGenerator(store=w.store_dir, backend=w.generator.backend, allow_input_urls=False).edit(
                "x", "https://e.com/a.png"
            )
        ),
    ),
]

ALL = [pytest.param(case, id=case.name) for case in AGENT_CASES + DEVELOPER_CASES]


def _check_clean(world: World, events: list[str], message: str) -> None:
    assert world.emulator.requests == [], f"a request was sent: {[r.path for r in world.emulator.requests]}"
    allowed = (str(world.store_dir), str(world.inputs_dir))
    for path in events:
        assert not path.startswith(str(world.outside)), f"touched {path}"
        assert not any(path == s or path.startswith(s + os.sep) for s in SENSITIVE), f"touched {path}"
        if path.startswith(str(world.store_dir.parent)):
            assert path.startswith(allowed), f"touched {path} outside the store and input folders"
    assert all(ch.isprintable() or ch == "\n" for ch in message), f"control characters echoed: {message!r}"
    assert (world.outside / "secret.png").read_bytes() == _png("black")


def _run_watched(action: Callable[[], Any]) -> tuple[Any, list[str]]:
    _watch.append([])
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(action())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=target, daemon=True)  # a hang (FIFO) fails the test instead of the run
    worker.start()
    worker.join(timeout=60)
    events = _watch.pop()
    assert not worker.is_alive(), "the call hung"
    return outcome[0], events


@pytest.mark.parametrize("case", [p for p in ALL if p.values[0].agent_args is not None])  # type: ignore[union-attr]
def test_agent_tool_call_is_refused_before_any_request(world: World, case: Case) -> None:
    assert case.agent_args is not None
    args = case.agent_args(world)
    world.emulator.reset()
    call = {"type": "tool_call", "id": "call_1", "name": world.tool.name, "args": args}
    message, events = _run_watched(lambda: world.tool.invoke(call))
    assert isinstance(message, ToolMessage), message
    assert message.status == "error", message.content
    text = str(message.content)
    assert case.message.lower() in text.lower() or any(
        part.lower() in text.lower() for part in case.message.split("|")
    ), text
    _check_clean(world, events, text)


@pytest.mark.parametrize("case", [p for p in ALL if p.values[0].agent_args is not None])  # type: ignore[union-attr]
def test_agent_arguments_through_the_generator_are_refused(world: World, case: Case) -> None:
    assert case.agent_args is not None
    args = case.agent_args(world)
    prompt = args.pop("prompt", None)
    if not isinstance(prompt, str) or any(not isinstance(v, list | str | type(None)) for v in args.values()):
        pytest.skip("not expressible as generator arguments (the tool's schema refuses it)")
    images, mask = args.pop("image_ids", []), args.pop("mask_id", None)
    if not isinstance(images, list) or any(not isinstance(i, str) for i in images):
        pytest.skip("not expressible as generator arguments (the tool's schema refuses it)")
    world.emulator.reset()

    def call() -> Any:
        with input_policy(AGENT_INPUT_POLICY):
            return world.generator.generate(prompt, images=images, mask=mask, **args)

    outcome, events = _run_watched(call)
    assert isinstance(outcome, ImageGenerationError), outcome
    text = outcome.agent_message
    assert any(part.lower() in text.lower() for part in case.message.split("|")), text
    _check_clean(world, events, text)


@pytest.mark.parametrize("case", [p for p in ALL if p.values[0].developer_call is not None])  # type: ignore[union-attr]
def test_developer_call_is_refused_before_any_request(world: World, case: Case) -> None:
    assert case.developer_call is not None
    world.emulator.reset()
    outcome, events = _run_watched(case.developer_call(world))
    assert isinstance(outcome, ImageGenerationError), outcome
    text = str(outcome)
    assert any(part.lower() in text.lower() for part in case.message.split("|")), text
    _check_clean(world, events, text)


def test_the_suite_is_large_enough() -> None:
    assert len(AGENT_CASES) + len(DEVELOPER_CASES) >= 60


def test_repeated_ids_are_sent_once(world: World) -> None:
    image_id = world.generator.generate("a kite").image.id
    sending = ImageGenerator(
        store=world.store_dir,
        client=world.generator.backend.client,
        store_responses=False,  # type: ignore[attr-defined]
    )
    for generator, uploads, image_parts in ((world.generator, 0, 0), (sending, 1, 1)):
        before = len(world.emulator.requests)
        with input_policy(AGENT_INPUT_POLICY):
            result = generator.edit("make it blue", [image_id] * 120)
        new = world.emulator.requests[before:]
        (request,) = [r for r in new if r.endpoint == "POST /v1/responses"]
        assert sum(r.endpoint == "POST /v1/files" for r in new) == uploads
        content = [part for item in request.json["input"] if isinstance(item, dict) for part in item["content"]]
        assert sum(part.get("type") == "input_image" for part in content) == image_parts
        assert result.image.input_ids == (image_id,)
