"""Real, deterministic image bytes for the emulator, made with Pillow.

A picture is a two-colour gradient with a few shapes, all derived from a hash of the prompt (and the
emulator's seed), so the same request always yields the same bytes and tests can assert on them. The prompt's
words are written across the top and an "EMULATED" caption along the bottom, so whoever opens the file sees
at once what was asked and that no real model drew it. Edits start
from the decoded input image, so their result visibly derives from it; a mask limits the change to the mask's
transparent area, as the API does. Partial images are the final picture at a coarser resolution, less blurred
with each index. Everything is drawn at the requested size with cheap operations (a 1024x1024 PNG takes a few
tens of milliseconds) and the encoded results are cached.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

__all__ = [
    "Format",
    "ImageSpec",
    "RenderJob",
    "UnreadableImageError",
    "placeholder_image",
    "read_image_size",
    "render_final",
    "render_partial",
]

Format = Literal["png", "webp", "jpeg", "gif", "svg"]
RGB = tuple[int, int, int]

# Largest edge of the input image embedded into an SVG edit: enough to see it, small enough to stay cheap.
_SVG_EMBED_EDGE = 256
#: The caption on every emulated image.
CAPTION = "EMULATED · imagegen-tool"
# Below this edge (pixels) text would be unreadable smudges: such images get no text.
_MIN_TEXT_EDGE = 48
_MAX_PROMPT_LINES = 3


class UnreadableImageError(ValueError):
    """Bytes given as an input image or mask that Pillow cannot decode."""


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """What to produce: concrete values only (``auto`` already resolved)."""

    width: int
    height: int
    output_format: Format = "png"
    transparent: bool = False
    compression: int | None = None
    frame_count: int = 9
    frame_duration_ms: int = 200


@dataclass(frozen=True, slots=True)
class RenderJob:
    """One image to render. Hashable, so results can be cached per job.

    ``variant`` tells apart the images of one request (``n`` > 1); ``base`` is the encoded input image of an
    edit and ``mask`` the encoded inpainting mask.
    """

    prompt: str
    spec: ImageSpec
    seed: int = 0
    variant: int = 0
    base: bytes | None = None
    mask: bytes | None = None


def render_final(job: RenderJob) -> bytes:
    """The encoded final image for ``job``."""
    return _encode_final(job)


def render_partial(job: RenderJob, index: int, count: int) -> bytes:
    """Partial image ``index`` (0-based) of ``count``: the final picture, coarser for lower indexes."""
    if not 0 <= index < count:
        raise ValueError(f"partial index {index} outside 0..{count - 1}")
    return _encode_partial(job, index, count)


def placeholder_image(source: str, *, size: int = 512) -> bytes:
    """A PNG standing in for an image the emulator must not fetch (an http(s) URL), derived from ``source``."""
    return _encode_placeholder(source, size)


def read_image_size(data: bytes) -> tuple[int, int]:
    """Width and height of encoded image bytes; raises :class:`UnreadableImageError` when not an image."""
    return _decode(data).size


# --- drawing -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Palette:
    digest: bytes

    def color(self, index: int) -> RGB:
        offset = (index * 3) % (len(self.digest) - 3)
        r, g, b = self.digest[offset : offset + 3]
        return (r, g, b)

    def byte(self, index: int) -> int:
        return self.digest[index % len(self.digest)]


def _palette(prompt: str, seed: int, variant: int, salt: str = "") -> _Palette:
    text = f"{seed}\x00{variant}\x00{salt}\x00{prompt}".encode()
    # 64 bytes: enough for a dozen colours and shape parameters.
    return _Palette(hashlib.sha512(text).digest())


def _gradient(palette: _Palette, width: int, height: int) -> Image.Image:
    # Built at 64x64 and scaled up: a full-size composite costs ~20 ms, this ~5 ms, and looks the same.
    ramp = Image.linear_gradient("L").rotate(90 * (palette.byte(0) % 4)).resize((64, 64))
    small = Image.composite(
        Image.new("RGB", (64, 64), palette.color(1)), Image.new("RGB", (64, 64), palette.color(2)), ramp
    )
    return small.resize((width, height), Image.Resampling.BILINEAR)


def _shapes(
    draw: ImageDraw.ImageDraw, palette: _Palette, width: int, height: int, *, count: int, frame: float = 0.0
) -> None:
    """Draw ``count`` hash-derived shapes; ``frame`` in [0, 1) moves them along a circle for animations."""
    short = min(width, height)
    for i in range(count):
        px, py, ps, kind = (palette.byte(8 + 4 * i + k) for k in range(4))
        cx = (px * width // 256 + int(frame * width)) % width
        cy = py * height // 256
        radius = max(2, (ps % 96 + 32) * short // 512)
        fill = (*palette.color(20 + i), 255)
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        if kind % 3 == 0:
            draw.ellipse(box, fill=fill)
        elif kind % 3 == 1:
            draw.rectangle((cx - radius, cy - radius // 2, cx + radius, cy + radius // 2), fill=fill)
        else:
            draw.polygon([(cx, cy - radius), (cx + radius, cy + radius), (cx - radius, cy + radius)], fill=fill)


def _shape_count(palette: _Palette) -> int:
    return 4 + palette.byte(1) % 3


def _picture(job: RenderJob, frame: float = 0.0) -> Image.Image:
    """The final picture as an RGBA image (before encoding)."""
    spec = job.spec
    size = (spec.width, spec.height)
    palette = _palette(job.prompt, job.seed, job.variant)
    if job.base is None:
        canvas = (
            Image.new("RGBA", size, (0, 0, 0, 0)) if spec.transparent else _gradient(palette, *size).convert("RGBA")
        )
        _shapes(ImageDraw.Draw(canvas), palette, *size, count=_shape_count(palette), frame=frame)
        annotate(canvas, job.prompt, bands=not spec.transparent)
        return canvas
    base = ImageOps.fit(_decode(job.base).convert("RGBA"), size, Image.Resampling.BILINEAR)
    if job.mask is not None:
        # The API edits where the mask is transparent and keeps the input where it is opaque.
        keep = _decode(job.mask).convert("RGBA").getchannel("A").resize(size, Image.Resampling.NEAREST)
        fresh = _gradient(palette, *size).convert("RGBA")
        _shapes(ImageDraw.Draw(fresh), palette, *size, count=_shape_count(palette), frame=frame)
        annotate(fresh, job.prompt)  # shows only where the mask lets the edit through
        return Image.composite(base, fresh, keep)
    # Without a mask: the input stays recognisable (corners untouched), the prompt adds shapes in the middle.
    inner = Image.new("RGBA", (spec.width // 2 or 1, spec.height // 2 or 1), (0, 0, 0, 0))
    _shapes(ImageDraw.Draw(inner), palette, *inner.size, count=2, frame=frame)
    annotate(inner, job.prompt)
    base.alpha_composite(inner, (spec.width // 4, spec.height // 4))
    return base


# --- text: the prompt and the "emulated" caption ---------------------------------------------------------


def annotate(canvas: Image.Image, prompt: str, *, bands: bool = True) -> None:
    """Write ``prompt`` (wrapped, at most three lines) across the top of ``canvas`` and :data:`CAPTION` along its
    bottom. With ``bands`` each sits on a translucent dark band so it reads on any background; without (for
    transparent images, whose clear pixels must stay clear) the letters get a dark outline instead.
    ``canvas`` is RGBA, changed in place.
    """
    width, height = canvas.size
    if min(width, height) < _MIN_TEXT_EDGE:
        return
    margin = max(2, min(width, height) // 64)
    size = max(10, min(height // 16, width // 14))
    font = _font(size)
    caption, ellipsis = CAPTION, "…"
    if not isinstance(font, ImageFont.FreeTypeFont):
        # The bitmap fallback font of old Pillow encodes text as latin-1 and raises on anything else.
        prompt, caption, ellipsis = _latin1(prompt), _latin1(caption), "..."
    measure = ImageDraw.Draw(canvas)
    outline = {} if bands else {"stroke_width": max(1, size // 14), "stroke_fill": (0, 0, 0, 255)}
    lines = wrap_words(prompt, width - 2 * margin, lambda text: measure.textlength(text, font=font), ellipsis)
    if lines:
        line_height = _line_height(measure, font)
        layer, origin = _layer(canvas, width, margin * 2 + line_height * len(lines), 0, bands)
        draw = ImageDraw.Draw(layer)
        for index, line in enumerate(lines):
            position = (margin, origin + margin + index * line_height)
            draw.text(position, line, font=font, fill=(255, 255, 255, 255), **outline)  # type: ignore[arg-type]
        if bands:
            canvas.alpha_composite(layer)

    caption_font = _font(max(8, size * 2 // 3))
    caption_height = _line_height(measure, caption_font) + 2 * margin
    top = max(0, height - caption_height)
    layer, origin = _layer(canvas, width, caption_height, top, bands)
    caption_width = measure.textlength(caption, font=caption_font)
    ImageDraw.Draw(layer).text(
        (width - margin - caption_width, origin + margin),
        caption,
        font=caption_font,
        fill=(255, 214, 0, 255),
        **outline,  # type: ignore[arg-type]
    )
    if bands:
        canvas.alpha_composite(layer, (0, top))


def _layer(canvas: Image.Image, width: int, height: int, top: int, bands: bool) -> tuple[Image.Image, int]:
    """Where to draw a line of text: a band of its own to composite at ``top`` (origin 0), or the canvas itself."""
    return (_band(width, height), 0) if bands else (canvas, top)


def _band(width: int, height: int) -> Image.Image:
    # Only the band is composited (not a full-size overlay): a few milliseconds less per 1024x1024 image.
    return Image.new("RGBA", (width, height), (0, 0, 0, 150))


def wrap_words(text: str, max_width: float, measure: Callable[[str], float], ellipsis: str = "…") -> list[str]:
    """``text`` split into lines no wider than ``max_width`` (by ``measure``), at most three; an overlong word
    is cut to fit, and a prompt that does not fit ends with an ellipsis."""
    lines: list[str] = []
    current = ""
    truncated = False
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if measure(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        if len(lines) == _MAX_PROMPT_LINES:
            current, truncated = "", True
            break
        current = _cut(word, max_width, measure)
    if current:
        lines.append(current)
    if truncated:
        lines[-1] = _cut(lines[-1], max_width, measure, suffix=ellipsis)
    return lines


def _cut(text: str, max_width: float, measure: Callable[[str], float], suffix: str = "") -> str:
    """``text`` shortened from the end until it fits with ``suffix`` appended (the suffix always is)."""
    while text and measure(text + suffix) > max_width:
        text = text[:-1]
    return text + suffix


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        # Pillow >= 10.1 ships a scalable default font (with FreeType, as in every wheel).
        return ImageFont.load_default(size=size)
    except (TypeError, AttributeError, ImportError, OSError):  # older Pillow: the small bitmap font
        return ImageFont.load_default()


def _latin1(text: str) -> str:
    return text.replace("…", "...").encode("latin-1", "replace").decode("latin-1")


def _line_height(draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    _, top, _, bottom = draw.textbbox((0, 0), "Ag", font=font)
    return int(bottom - min(top, 0)) + 2


@functools.lru_cache(maxsize=16)
def _cached_picture(job: RenderJob) -> Image.Image:
    return _picture(job)


def _decode(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImageError("not a decodable image (png, webp, jpeg or gif expected)") from exc
    return image


# --- encoding ------------------------------------------------------------------------------------------


def _encode(image: Image.Image, spec: ImageSpec) -> bytes:
    out = io.BytesIO()
    fmt = spec.output_format
    if fmt == "png":
        # compress_level=1: 3-4x faster than the default for a few percent more bytes.
        (image if spec.transparent else image.convert("RGB")).save(out, "PNG", compress_level=1)
    elif fmt == "jpeg":
        image.convert("RGB").save(out, "JPEG", quality=_quality(spec))
    elif fmt == "webp":
        (image if spec.transparent else image.convert("RGB")).save(out, "WEBP", quality=_quality(spec), method=0)
    else:
        raise ValueError(f"cannot encode a still image as {fmt}")
    return out.getvalue()


def _quality(spec: ImageSpec) -> int:
    # output_compression is "100 = best"; Pillow's quality scale reads the same way. 95 is Pillow's useful max
    # for jpeg (100 disables parts of the compression and is several times larger for no gain).
    value = 100 if spec.compression is None else spec.compression
    return max(1, min(95, value))


@functools.lru_cache(maxsize=64)
def _encode_final(job: RenderJob) -> bytes:
    fmt = job.spec.output_format
    if fmt == "gif":
        return _encode_gif(job)
    if fmt == "svg":
        return _svg_document(job).encode()
    return _encode(_cached_picture(job), job.spec)


@functools.lru_cache(maxsize=64)
def _encode_partial(job: RenderJob, index: int, count: int) -> bytes:
    spec = job.spec
    if spec.output_format == "svg":
        return _svg_document(job, shapes_limit=index + 1).encode()
    picture = _cached_picture(job)
    # Index 0 is the coarsest; the last partial is still 4x coarser than the final image.
    factor = 2 ** (count - index + 2)
    small = picture.resize((max(1, spec.width // factor), max(1, spec.height // factor)), Image.Resampling.BOX)
    blurred = small.resize(picture.size, Image.Resampling.BILINEAR)
    still = spec if spec.output_format != "gif" else ImageSpec(spec.width, spec.height, "png", spec.transparent)
    return _encode(blurred, still)


def _encode_gif(job: RenderJob) -> bytes:
    spec = job.spec
    frames = [_picture(job, frame=i / spec.frame_count) for i in range(spec.frame_count)]
    converted = [_gif_frame(frame, spec.transparent) for frame in frames]
    out = io.BytesIO()
    extra: dict[str, int] = {"transparency": 255} if spec.transparent else {}
    converted[0].save(
        out,
        "GIF",
        save_all=True,
        append_images=converted[1:],
        duration=spec.frame_duration_ms,
        loop=0,
        disposal=2,
        optimize=False,
        **extra,
    )
    return out.getvalue()


def _gif_frame(frame: Image.Image, transparent: bool) -> Image.Image:
    if not transparent:
        return frame.convert("RGB").quantize(64, method=Image.Quantize.FASTOCTREE)
    # GIF transparency is one palette index: quantize to 255 colours and use index 255 for clear pixels.
    paletted = frame.convert("RGB").quantize(255, method=Image.Quantize.FASTOCTREE)
    clear = frame.getchannel("A").point(lambda a: 255 if a < 128 else 0)
    paletted.paste(255, mask=clear)
    return paletted


def _svg_document(job: RenderJob, shapes_limit: int | None = None) -> str:
    spec = job.spec
    width, height = spec.width, spec.height
    palette = _palette(job.prompt, job.seed, job.variant)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(job.prompt[:200])}</title>",
    ]
    if job.base is not None:
        thumb = _decode(job.base).convert("RGBA")
        thumb.thumbnail((_SVG_EMBED_EDGE, _SVG_EMBED_EDGE))
        buffer = io.BytesIO()
        thumb.save(buffer, "PNG", compress_level=1)
        href = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        parts.append(
            f'<image href={quoteattr(href)} x="0" y="0" width="{width}" height="{height}" '
            'preserveAspectRatio="xMidYMid slice"/>'
        )
    elif not spec.transparent:
        c1, c2 = palette.color(1), palette.color(2)
        parts += [
            '<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">',
            f'<stop offset="0" stop-color="{_hex(c2)}"/><stop offset="1" stop-color="{_hex(c1)}"/>',
            "</linearGradient></defs>",
            f'<rect width="{width}" height="{height}" fill="url(#bg)"/>',
        ]
    count = _shape_count(palette) if job.base is None else 2
    if shapes_limit is not None:
        count = min(count, shapes_limit)
    short = min(width, height)
    for i in range(count):
        px, py, ps, kind = (palette.byte(8 + 4 * i + k) for k in range(4))
        cx, cy = px * width // 256, py * height // 256
        radius = max(2, (ps % 96 + 32) * short // 512)
        fill = _hex(palette.color(20 + i))
        if kind % 3 == 0:
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="{fill}"/>')
        elif kind % 3 == 1:
            parts.append(
                f'<rect x="{cx - radius}" y="{cy - radius // 2}" width="{2 * radius}" height="{radius}" fill="{fill}"/>'
            )
        else:
            points = f"{cx},{cy - radius} {cx + radius},{cy + radius} {cx - radius},{cy + radius}"
            parts.append(f'<polygon points="{points}" fill="{fill}"/>')
    parts += svg_annotation(job.prompt, width, height, bands=not (spec.transparent and job.base is None))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def svg_annotation(prompt: str, width: int, height: int, *, bands: bool = True) -> list[str]:
    """The SVG elements of :func:`annotate`: the prompt's words at the top, the caption at the bottom, on
    translucent bands (or, without ``bands``, outlined so a transparent background stays clear)."""
    if min(width, height) < _MIN_TEXT_EDGE:
        return []
    margin = max(2, min(width, height) // 64)
    size = max(10, min(height // 16, width // 14))
    # No font metrics in SVG: an average glyph is about 0.55 em wide in sans-serif faces.
    lines = wrap_words(prompt, width - 2 * margin, lambda text: len(text) * size * 0.55)
    line_height = round(size * 1.25)
    caption_size = max(8, size * 2 // 3)
    caption_band = round(caption_size * 1.25) + 2 * margin
    outline = "" if bands else f' stroke="#000" stroke-width="{max(1, size // 14)}" paint-order="stroke"'
    parts = [f'<g font-family="sans-serif"{outline}>']
    band = '<rect y="{}" width="{}" height="{}" fill="#000" fill-opacity="0.59" stroke="none"/>'
    if lines:
        if bands:
            parts.append(band.format(0, width, 2 * margin + line_height * len(lines)))
        for index, line in enumerate(lines):
            y = margin + size + index * line_height
            parts.append(f'<text x="{margin}" y="{y}" font-size="{size}" fill="#fff">{escape(line)}</text>')
    if bands:
        parts.append(band.format(height - caption_band, width, caption_band))
    parts += [
        f'<text x="{width - margin}" y="{height - margin - caption_size // 4}" font-size="{caption_size}" '
        f'text-anchor="end" fill="#ffd600">{escape(CAPTION)}</text>',
        "</g>",
    ]
    return parts


def _hex(color: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


@functools.lru_cache(maxsize=32)
def _encode_placeholder(source: str, size: int) -> bytes:
    job = RenderJob(prompt=f"url:{source}", spec=ImageSpec(size, size))
    return _encode(_picture(job), job.spec)
