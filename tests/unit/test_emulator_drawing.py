"""Emulated images show what they are: the prompt's words at the top and an "EMULATED" caption at the bottom."""

from __future__ import annotations

import io
import re

from PIL import Image

from imagegen_tool.testing.synthesis import (
    CAPTION,
    ImageSpec,
    RenderJob,
    annotate,
    render_final,
    render_partial,
    svg_annotation,
    wrap_words,
)

WHITE = (255, 255, 255)
CAPTION_YELLOW = (255, 214, 0)


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def _has_color(
    image: Image.Image, color: tuple[int, int, int], box: tuple[int, int, int, int], tolerance: int = 0
) -> bool:
    """Whether a pixel in ``box`` is ``color`` (each channel within ``tolerance``: small text is antialiased)."""
    colors = image.crop(box).getcolors(maxcolors=1 << 20) or []
    return any(all(abs(a - b) <= tolerance for a, b in zip(rgb, color, strict=True)) for _, rgb in colors)


def test_prompt_text_at_the_top_and_caption_at_the_bottom() -> None:
    image = _open(render_final(RenderJob("a red kite", ImageSpec(512, 512))))
    assert _has_color(image, WHITE, (0, 0, 512, 64)), "no white prompt text in the top band"
    assert _has_color(image, CAPTION_YELLOW, (0, 448, 512, 512)), "no caption at the bottom"
    assert not _has_color(image, CAPTION_YELLOW, (0, 0, 512, 400))


def test_the_words_drawn_differ_with_the_prompt() -> None:
    def top(prompt: str) -> bytes:
        canvas = Image.new("RGBA", (400, 300), (40, 90, 160, 255))
        annotate(canvas, prompt)
        return canvas.crop((0, 0, 400, 40)).tobytes()

    assert top("a red kite") == top("a red kite")
    assert top("a red kite") != top("a blue boat")


def test_text_shows_on_edits_only_where_the_edit_applies() -> None:
    base = io.BytesIO()
    Image.new("RGB", (256, 256), (0, 128, 255)).save(base, "PNG")
    edited = _open(render_final(RenderJob("add a sun", ImageSpec(256, 256), base=base.getvalue())))
    assert edited.getpixel((0, 0)) == (0, 128, 255)  # corners keep the input
    assert _has_color(edited, WHITE, (64, 64, 192, 90), tolerance=40), "no prompt text in the edited middle"
    assert _has_color(edited, CAPTION_YELLOW, (64, 170, 192, 192), tolerance=60), "no caption in the edited middle"


def test_tiny_images_get_no_text() -> None:
    canvas = Image.new("RGBA", (40, 40), (1, 2, 3, 255))
    annotate(canvas, "a red kite")
    assert canvas.getcolors() == [(1600, (1, 2, 3, 255))]


def test_transparent_images_stay_transparent_between_the_bands() -> None:
    image = Image.open(io.BytesIO(render_final(RenderJob("x", ImageSpec(256, 256, transparent=True)))))
    assert image.getchannel("A").crop((0, 100, 256, 150)).getextrema()[0] == 0


def test_partials_and_gif_frames_carry_the_caption_too() -> None:
    job = RenderJob("a red kite", ImageSpec(256, 256))
    partial = _open(render_partial(job, 2, 3))
    assert partial.crop((0, 220, 256, 256)).getextrema() != partial.crop((0, 120, 256, 156)).getextrema()
    gif = Image.open(io.BytesIO(render_final(RenderJob("a red kite", ImageSpec(128, 128, "gif", frame_count=2)))))
    assert gif.n_frames == 2


def test_svg_has_the_prompt_and_caption_as_text_escaped() -> None:
    text = render_final(RenderJob("a <red> kite & sun", ImageSpec(400, 300, "svg"))).decode()
    assert re.search(r"<text[^>]*>a &lt;red&gt; kite &amp; sun</text>", text)
    assert CAPTION in text
    assert svg_annotation("x", 30, 30) == []


def test_wrapping_is_at_most_three_lines_and_marks_a_cut() -> None:
    def measure(text: str) -> float:
        return float(len(text))

    assert wrap_words("a red kite", 20, measure) == ["a red kite"]
    assert wrap_words("one two three four", 9, measure) == ["one two", "three", "four"]
    lines = wrap_words("one two three four five six seven eight", 9, measure)
    assert len(lines) == 3 and lines[-1].endswith("…") and all(len(line) <= 9 for line in lines)
    assert wrap_words("supercalifragilistic", 6, measure) == ["superc"]
    assert wrap_words("   ", 10, measure) == []


def test_transparent_images_keep_clear_corners_with_outlined_text() -> None:
    image = Image.open(io.BytesIO(render_final(RenderJob("a logo", ImageSpec(512, 512, transparent=True)))))
    alpha = image.getchannel("A")
    assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((511, 511)) == 0
    assert _has_color(image.convert("RGB"), WHITE, (0, 0, 512, 64)), "no prompt text on the transparent image"
    svg = render_final(RenderJob("a logo", ImageSpec(200, 200, "svg", transparent=True))).decode()
    assert "fill-opacity" not in svg and "a logo</text>" in svg


def test_any_unicode_prompt_is_drawn_without_error() -> None:
    for prompt in ("一只红色的风筝 🪁", "naïve café — “quoted” …", "\u202etext\u0000with controls"):
        image = _open(render_final(RenderJob(prompt, ImageSpec(256, 256))))
        assert image.size == (256, 256)
