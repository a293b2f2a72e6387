"""Unit tests of the emulator's pure parts: image synthesis, wire helpers, header redaction."""

from __future__ import annotations

import io
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagegen_tool.testing.state import REDACTED, redact_headers
from imagegen_tool.testing.synthesis import (
    ImageSpec,
    RenderJob,
    UnreadableImageError,
    placeholder_image,
    read_image_size,
    render_final,
    render_partial,
)
from imagegen_tool.testing.wire import id_group, new_id, tool_echo


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_rendered_image_is_cached_not_drawn_again() -> None:
    # How long drawing takes is for benchmarks/ (a loaded machine moves any time limit); what a test can hold is
    # that a repeated job is served from the cache: the very same bytes object, nothing drawn again.
    job = RenderJob(prompt=f"cache prompt {time.time()}", spec=ImageSpec(1024, 1024))
    first = render_final(job)
    assert render_final(job) is first
    assert render_final(RenderJob(prompt=job.prompt, spec=ImageSpec(1024, 1024))) is first


def test_same_job_same_bytes_other_prompt_or_seed_other_bytes() -> None:
    spec = ImageSpec(256, 256)
    a = render_final(RenderJob("a cat", spec))
    assert render_final(RenderJob("a cat", spec)) == a
    assert render_final(RenderJob("a dog", spec)) != a
    assert render_final(RenderJob("a cat", spec, seed=1)) != a
    assert render_final(RenderJob("a cat", spec, variant=1)) != a


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_still_formats(fmt: str, pil_format: str) -> None:
    image = open_image(render_final(RenderJob("x", ImageSpec(320, 160, fmt))))  # type: ignore[arg-type]
    assert (image.format, image.size) == (pil_format, (320, 160))


def test_transparent_png_and_webp_have_clear_pixels() -> None:
    for fmt in ("png", "webp"):
        image = open_image(render_final(RenderJob("logo", ImageSpec(128, 128, fmt, transparent=True))))  # type: ignore[arg-type]
        alpha = image.convert("RGBA").getchannel("A")
        assert alpha.getextrema()[0] == 0, fmt


def test_compression_changes_jpeg_size() -> None:
    job = RenderJob("photo", ImageSpec(256, 256, "jpeg", compression=95))
    low = RenderJob("photo", ImageSpec(256, 256, "jpeg", compression=10))
    assert len(render_final(low)) < len(render_final(job))


def test_gif_frames_duration_and_transparency() -> None:
    data = render_final(
        RenderJob("spin", ImageSpec(96, 64, "gif", transparent=True, frame_count=5, frame_duration_ms=70))
    )
    image = open_image(data)
    assert (image.format, image.size, image.n_frames) == ("GIF", (96, 64), 5)
    assert image.info["duration"] == 70
    assert "transparency" in image.info


def test_svg_document() -> None:
    text = render_final(RenderJob("a <tree> & sun", ImageSpec(200, 100, "svg"))).decode()
    assert re.search(r'<svg [^>]*width="200" height="100"', text)
    assert "&lt;tree&gt; &amp; sun" in text
    import xml.etree.ElementTree as ET

    ET.fromstring(text)


def test_partials_are_decodable_and_sharpen() -> None:
    job = RenderJob("sharpening", ImageSpec(256, 256))
    final = open_image(render_final(job)).convert("RGB")
    partials = [open_image(render_partial(job, i, 3)).convert("RGB") for i in range(3)]

    def distance(a: Image.Image) -> int:
        return sum(abs(x - y) for x, y in zip(a.tobytes(), final.tobytes(), strict=True))

    errors = [distance(p) for p in partials]
    assert errors[0] > errors[1] > errors[2] > 0
    with pytest.raises(ValueError, match="partial index"):
        render_partial(job, 3, 3)


def test_edit_keeps_the_input_and_mask_limits_it() -> None:
    base = io.BytesIO()
    Image.new("RGB", (100, 100), (0, 128, 255)).save(base, "PNG")
    edited = open_image(render_final(RenderJob("add a sun", ImageSpec(200, 200), base=base.getvalue()))).convert("RGB")
    assert edited.getpixel((0, 0)) == (0, 128, 255)
    assert edited.getcolors(1) is None

    mask = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    mask.paste((0, 0, 0, 255), (0, 0, 10, 5))  # keep the top half
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    masked = open_image(
        render_final(RenderJob("sea", ImageSpec(200, 200), base=base.getvalue(), mask=buffer.getvalue()))
    ).convert("RGB")
    assert masked.crop((0, 0, 200, 100)).getcolors(1) == [(200 * 100, (0, 128, 255))]
    assert masked.crop((0, 100, 200, 200)).getcolors(1) is None


def test_unreadable_input_and_placeholder() -> None:
    with pytest.raises(UnreadableImageError):
        read_image_size(b"definitely not an image")
    with pytest.raises(UnreadableImageError):
        render_final(RenderJob("x", ImageSpec(16, 16), base=b"junk"))
    assert read_image_size(placeholder_image("https://example.com/a.png")) == (512, 512)
    assert placeholder_image("https://a") != placeholder_image("https://b")


@settings(max_examples=25, deadline=None)
@given(
    width=st.integers(1, 40).map(lambda n: n * 16),
    height=st.integers(1, 40).map(lambda n: n * 16),
    fmt=st.sampled_from(["png", "webp", "jpeg"]),
    transparent=st.booleans(),
)
def test_any_size_comes_out_exactly(width: int, height: int, fmt: str, transparent: bool) -> None:
    spec = ImageSpec(width, height, fmt, transparent=transparent and fmt != "jpeg")  # type: ignore[arg-type]
    assert open_image(render_final(RenderJob("prop", spec))).size == (width, height)


def test_ids_look_like_the_apis() -> None:
    response_id = new_id("resp")
    assert re.fullmatch(r"resp_[0-9a-f]{50}", response_id)
    item = new_id("ig", id_group(response_id))
    assert re.fullmatch(r"ig_[0-9a-f]{50}", item)
    assert item[3:21] == response_id[5:23]


def test_tool_echo_fills_api_defaults_and_keeps_auto() -> None:
    echo = tool_echo({"type": "image_generation", "output_format": "webp", "partial_images": 2, "input_fidelity": None})
    assert echo == {
        "type": "image_generation",
        "background": "auto",
        "moderation": "auto",
        "n": 1,
        "output_compression": 100,
        "output_format": "webp",
        "quality": "auto",
        "size": "auto",
    }


def test_redact_headers() -> None:
    headers = redact_headers({"Authorization": "Bearer sk-123", "api-key": "abc", "X-Other": "v"})
    assert headers == {"authorization": f"Bearer {REDACTED}", "api-key": REDACTED, "x-other": "v"}
