"""Identify image bytes: format, mime type and dimensions, read from the data itself.

The API reports the format it used, but the bytes are the truth (and are what a viewer will see), so handles
record what is detected here. Pillow reads only the header; SVG dimensions come from the root element.
"""

from __future__ import annotations

import io
import re
import warnings

from pydantic import BaseModel, ConfigDict

__all__ = ["MIME_TYPES", "ImageInfo", "inspect_image"]

MIME_TYPES = {
    "png": "image/png",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
    "bin": "application/octet-stream",
}
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg", "gif": "gif", "svg": "svg", "bin": "bin"}

_PIL_FORMATS = {"PNG": "png", "WEBP": "webp", "JPEG": "jpeg", "MPO": "jpeg", "GIF": "gif"}
_SVG_ROOT = re.compile(rb"<svg\b[^>]*>", re.IGNORECASE | re.DOTALL)
_ATTR = r"""\b{}\s*=\s*["']\s*([0-9.]+)\s*(?:px)?\s*["']"""
_VIEWBOX = re.compile(r"""\bviewBox\s*=\s*["']\s*[-0-9.]+[ ,]+[-0-9.]+[ ,]+([0-9.]+)[ ,]+([0-9.]+)\s*["']""")


class ImageInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: str
    mime_type: str
    extension: str
    width: int | None = None
    height: int | None = None
    frames: int = 1


def inspect_image(data: bytes) -> ImageInfo:
    """What ``data`` is. Unrecognised bytes give format ``bin`` rather than an error: they were paid for."""
    svg = _inspect_svg(data)
    if svg is not None:
        return svg
    from PIL import Image, UnidentifiedImageError  # on first use: keeps Pillow out of `import imagegen_tool`

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = _PIL_FORMATS.get(image.format or "")
                if fmt is None:
                    return _unknown()
                frames = int(getattr(image, "n_frames", 1))
                return ImageInfo(
                    format=fmt,
                    mime_type=MIME_TYPES[fmt],
                    extension=EXTENSIONS[fmt],
                    width=image.width,
                    height=image.height,
                    frames=frames,
                )
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return _unknown()


def _unknown() -> ImageInfo:
    return ImageInfo(format="bin", mime_type=MIME_TYPES["bin"], extension="bin")


def _inspect_svg(data: bytes) -> ImageInfo | None:
    head = data[:4096].lstrip()
    if not (head.startswith(b"<?xml") or head.startswith(b"<svg") or head.startswith(b"<!DOCTYPE svg")):
        return None
    match = _SVG_ROOT.search(head)
    if match is None:
        return None
    root = match.group(0).decode("utf-8", "replace")
    width = _number(root, "width")
    height = _number(root, "height")
    if width is None or height is None:
        box = _VIEWBOX.search(root)
        if box:
            width, height = round(float(box.group(1))), round(float(box.group(2)))
    return ImageInfo(format="svg", mime_type=MIME_TYPES["svg"], extension="svg", width=width, height=height)


def _number(tag: str, name: str) -> int | None:
    match = re.search(_ATTR.format(name), tag)
    return round(float(match.group(1))) if match else None
