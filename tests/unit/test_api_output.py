"""Untrusted API output: each returned image is checked per format (decodable header, size limits, complete
bytes, SVG without active content); a bad one fails alone with a typed error, odd bytes never raise raw parser
exceptions, and ids from the API become safe handle ids instead of errors after the image was paid for."""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagegen_tool import GenerationFailedError, ImageGenerator, ImageRequest
from imagegen_tool.imageinfo import ImageDataError, check_image, inspect_image
from imagegen_tool.parse import ParsedResponse, parse_response
from imagegen_tool.store import is_valid_image_id
from tests.fixtures.recorded import AZURE_JSON, load_json


def _raster(fmt: str, size: tuple[int, int] = (20, 12), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "teal").save(buffer, fmt)
    return buffer.getvalue()


def _gif(frames: int = 3) -> bytes:
    buffer = io.BytesIO()
    images = [Image.new("RGB", (16, 16), (40 * n % 256, 90, 200 - 20 * n % 200)) for n in range(frames)]
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    return buffer.getvalue()


SVG_OK = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="32"><rect width="10" height="10"/></svg>'


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny but well-formed PNG whose header claims ``width`` x ``height`` (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "fmt", "size"),
    [
        (_raster("PNG"), "png", (20, 12)),
        (_raster("JPEG"), "jpeg", (20, 12)),
        (_raster("WEBP"), "webp", (20, 12)),
        (_gif(), "gif", (16, 16)),
        (SVG_OK, "svg", (64, 32)),
    ],
)
def test_valid_images_pass_with_their_format_and_size(data: bytes, fmt: str, size: tuple[int, int]) -> None:
    info = check_image(data)
    assert (info.format, (info.width, info.height)) == (fmt, size)


def test_gif_frames_are_counted_and_limited() -> None:
    assert check_image(_gif(5)).frames == 5
    with pytest.raises(ImageDataError, match="frames"):
        check_image(_gif(5), max_frames=4)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"definitely not an image", "not a png, jpeg"),
        (b"<html><body>502 Bad Gateway</body></html>", "not a png, jpeg"),
        (_raster("PNG")[:-20], "truncated|damaged"),
        (_raster("JPEG")[:-30], "truncated|damaged"),
        (_raster("WEBP")[:-10], "truncated|damaged"),
        (_gif()[:-1], "truncated|damaged"),
        (_png_claiming(100_000, 100_000), "more than the limit|far more pixels"),
        (_png_claiming(20_000, 10), "more than the limit"),
        (_png_claiming(0, 10), "no size|damaged|not a png"),
        (_raster("BMP"), "not a png, jpeg"),
        (_raster("TIFF"), "not a png, jpeg"),
    ],
)
def test_unusable_bytes_are_a_typed_error_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageDataError, match=reason):
        check_image(data)


def test_size_limit_in_bytes() -> None:
    with pytest.raises(ImageDataError, match="bytes, more than the limit"):
        check_image(_raster("PNG"), max_bytes=10)


UNSAFE_SVGS = {
    "script": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "event handler": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    "handler on child": b'<svg xmlns="http://www.w3.org/2000/svg"><rect ONCLICK="x()"/></svg>',
    "external href": b'<svg xmlns="http://www.w3.org/2000/svg"><image href="https://evil.example/x.png"/></svg>',
    "xlink href": (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        b'<use xlink:href="http://evil.example/s.svg#a"/></svg>'
    ),
    "javascript link": b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)"><text>x</text></a></svg>',
    "foreignObject": (
        b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><iframe src="https://evil.example"/>'
        b"</foreignObject></svg>"
    ),
    "css url": b'<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill: url(https://evil.example/p)"/></svg>',
    "style import": b'<svg xmlns="http://www.w3.org/2000/svg"><style>@import "https://evil.example/a.css";</style></svg>',
    "stylesheet pi": b'<?xml-stylesheet href="https://evil.example/a.css"?><svg xmlns="http://www.w3.org/2000/svg"/>',
    "entities": (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>'
    ),
    "external dtd": (
        b'<?xml version="1.0"?><!DOCTYPE svg SYSTEM "http://evil.example/svg.dtd">'
        b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    ),
    "animated href": (
        b'<svg xmlns="http://www.w3.org/2000/svg"><a><set attributeName="href" to="javascript:alert(1)"/>'
        b"<text>x</text></a></svg>"
    ),
}


@pytest.mark.parametrize("name", sorted(UNSAFE_SVGS))
def test_svg_with_active_content_or_external_references_is_refused(name: str) -> None:
    with pytest.raises(ImageDataError) as caught:
        check_image(UNSAFE_SVGS[name])
    assert caught.value.code in ("unsafe_svg", "invalid_image")
    assert inspect_image(UNSAFE_SVGS[name]).format in ("svg", "bin")  # describing it never raises


def test_svg_with_local_references_and_embedded_rasters_is_fine() -> None:
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 300 150">'
        b'<defs><linearGradient id="g"/></defs><rect fill="url(#g)" width="5" height="5"/>'
        b'<use xlink:href="#g"/><image href="data:image/png;base64,iVBORw0KGgo="/></svg>'
    )
    info = check_image(svg)
    assert (info.format, info.width, info.height) == ("svg", 300, 150)


@pytest.mark.parametrize(
    "root",
    [
        'width="1.2.3" height="5"',
        'width="1e999" height="1e999"',
        'width="-5" height="nan"',
        'width="50%" height="10em"',
        'viewBox="0 0 a b"',
        'viewBox="1 2 3"',
        'width="" height="  "',
    ],
)
def test_odd_svg_dimensions_are_no_size_not_an_exception(root: str) -> None:
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" {root}><rect/></svg>'.encode()
    info = inspect_image(svg)
    assert info.format == "svg"
    assert check_image(svg).format == "svg"


def test_broken_svg_xml_is_refused_but_described() -> None:
    broken = b'<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5"><rect></svg>'
    assert inspect_image(broken).format == "svg"
    with pytest.raises(ImageDataError, match="not well-formed"):
        check_image(broken)


_SAMPLES = [_raster("PNG"), _raster("JPEG"), _raster("WEBP"), _gif(4), SVG_OK, _raster("PNG", mode="RGBA")]


@settings(max_examples=300, deadline=None)
@given(
    sample=st.sampled_from(_SAMPLES),
    cut=st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
)
def test_damaged_bytes_never_raise_anything_but_image_data_error(
    sample: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(sample[: max(1, len(sample) - cut)] if cut < len(sample) else sample)
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    inspect_image(bytes(data))  # never raises
    with contextlib.suppress(ImageDataError):
        check_image(bytes(data))


# -- through the generator: one bad image never costs the others --------------------------------------------


class BodyBackend:
    """Answers with a given Responses body (an in-process backend, not a mock of the HTTP server)."""

    name = "recorded"

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def run(self, request: ImageRequest) -> ParsedResponse:
        return parse_response(copy.deepcopy(self.body))

    async def arun(self, request: ImageRequest) -> ParsedResponse:
        return self.run(request)


def _body(*calls: tuple[str, bytes]) -> dict[str, Any]:
    body = load_json(AZURE_JSON)
    template = next(item for item in body["output"] if item["type"] == "image_generation_call")
    body["output"] = [{**template, "id": call_id, "result": base64.b64encode(data).decode()} for call_id, data in calls]
    return body


def test_bad_images_fail_alone_and_the_good_ones_are_stored(tmp_path: Path) -> None:
    body = _body(
        ("ig_good", _raster("PNG")),
        ("ig_script", UNSAFE_SVGS["script"]),
        ("ig_junk", b"<html>oops</html>"),
        ("ig_cut", _raster("PNG")[:-30]),
        ("ig_svg", SVG_OK),
    )
    generator = ImageGenerator(store=tmp_path, backend=BodyBackend(body))
    result = generator.generate("two pictures")
    assert [image.id for image in result.images] == ["ig_good", "ig_svg"]
    failures = {failure.call_id: failure for failure in result.failures}
    assert set(failures) == {"ig_script", "ig_junk", "ig_cut"}
    assert failures["ig_script"].code == "unsafe_svg"
    assert all(f.status == "not_stored" and "image service returned" in f.message for f in failures.values())
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "ig_good.json",
        "ig_good.png",
        "ig_svg.json",
        "ig_svg.svg",
    ]


def test_only_bad_images_raise_a_typed_error_naming_the_response(tmp_path: Path) -> None:
    body = _body(("ig_junk", b"\x00\x01\x02 not an image"))
    with pytest.raises(GenerationFailedError) as caught:
        ImageGenerator(store=tmp_path, backend=BodyBackend(body)).generate("a picture")
    assert caught.value.response_id == body["id"]
    assert caught.value.code == "invalid_image"
    assert "image service returned an unusable image" in str(caught.value)


@pytest.mark.parametrize("call_id", ["../../etc/passwd", "ig with spaces", "ig_" + "x" * 300, "ig_\x00\n", "ig.png"])
def test_odd_call_ids_from_the_api_become_safe_handle_ids(tmp_path: Path, call_id: str) -> None:
    generator = ImageGenerator(store=tmp_path, backend=BodyBackend(_body((call_id, _raster("PNG")))))
    image = generator.generate("a picture").image
    assert is_valid_image_id(image.id)
    assert Path(image.path or "").parent == tmp_path
    assert generator.store.get(image.id) == image
    assert image.call_id in (call_id, None)  # the API's own id is kept as data, for continuation
