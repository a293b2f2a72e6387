"""Identify and check image bytes: format, mime type and dimensions, read from the data itself.

The API reports the format it used, but the bytes are the truth (and are what a viewer will see), so handles
record what is detected here. :func:`inspect_image` describes any bytes and never raises (previews, labels);
:func:`check_image` decides whether bytes the API returned are a usable image of a known format (a decodable
header within size limits, not truncated, and for SVG no scripts, event handlers or external references) and
raises :class:`ImageDataError` with the reason otherwise. Everything here reads untrusted bytes: no parser
error of any kind escapes as anything but "not a usable image".
"""

from __future__ import annotations

import io
import math
import re
import warnings
import xml.parsers.expat

from pydantic import BaseModel, ConfigDict

__all__ = [
    "EXTENSIONS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_EDGE",
    "MAX_IMAGE_FRAMES",
    "MAX_IMAGE_PIXELS",
    "MIME_TYPES",
    "ImageDataError",
    "ImageInfo",
    "check_image",
    "inspect_image",
]

MIME_TYPES = {
    "png": "image/png",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
    "bin": "application/octet-stream",
}
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg", "gif": "gif", "svg": "svg", "bin": "bin"}

#: Limits for images the API returns. The largest documented outputs are 3840 px per edge and about 8.3 MP
#: (GIF sprite sheets included) and a few MB; these bounds leave room for future sizes while refusing bytes
#: whose header claims absurd dimensions (a decompression bomb) before anything decodes them.
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_IMAGE_EDGE = 16_384
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
MAX_IMAGE_FRAMES = 1_000
MAX_SVG_ELEMENTS = 200_000

_PIL_FORMATS = {"PNG": "png", "WEBP": "webp", "JPEG": "jpeg", "MPO": "jpeg", "GIF": "gif"}
_SVG_START = (b"<?xml", b"<svg", b"<!DOCTYPE svg", b"<!--", b"\xef\xbb\xbf")
_NUMBER = re.compile(r"\s*([+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*(px)?\s*")
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"

# SVG content that runs code or fetches something when a browser shows the image.
_ACTIVE_ELEMENTS = frozenset(
    {"script", "foreignobject", "iframe", "embed", "object", "audio", "video", "handler", "listener"}
)
_LINK_ATTRIBUTES = frozenset({"href", "src", "action", "formaction"})
_SAFE_DATA_URL = re.compile(r"data:image/(?:png|jpeg|jpg|gif|webp)[;,]", re.IGNORECASE)
_CSS_URL = re.compile(r"url\s*\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)
_CSS_ACTIVE = re.compile(r"@import|expression\s*\(|javascript\s*:|behavior\s*:|-moz-binding", re.IGNORECASE)


class ImageDataError(ValueError):
    """Bytes that are not a usable image; ``reason`` says why (for the caller's typed error)."""

    def __init__(self, reason: str, *, code: str = "invalid_image") -> None:
        self.reason = reason
        self.code = code
        super().__init__(reason)


class ImageInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: str
    mime_type: str
    extension: str
    width: int | None = None
    height: int | None = None
    frames: int = 1


def inspect_image(data: bytes) -> ImageInfo:
    """What ``data`` is, from its header. Never raises: unrecognised or damaged bytes give format ``bin``."""
    try:
        return _inspect(data, strict=False)
    except Exception:  # untrusted bytes: any parser failure means "unknown"
        return _unknown()


def check_image(
    data: bytes,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_edge: int = MAX_IMAGE_EDGE,
    max_frames: int = MAX_IMAGE_FRAMES,
) -> ImageInfo:
    """``data`` as a usable image, or :class:`ImageDataError`: a known format (png, jpeg, webp, gif, svg) whose
    header decodes, within the size limits, not cut short, and for SVG free of scripts, event handlers and
    external references (a browser showing it runs nothing and fetches nothing)."""
    if not data:
        raise ImageDataError("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageDataError(f"the image is {len(data)} bytes, more than the limit of {max_bytes}")
    try:
        info = _inspect(data, strict=True)
    except ImageDataError:
        raise
    except Exception as exc:  # untrusted bytes: any parser failure means "not a usable image"
        raise ImageDataError(f"the image data is damaged ({type(exc).__name__})") from None
    if info.format == "bin":
        head = data[:16].hex(" ")
        raise ImageDataError(f"the bytes are not a png, jpeg, webp, gif or svg image (they start with {head})")
    if info.format != "svg":
        width, height = info.width or 0, info.height or 0
        if width <= 0 or height <= 0:
            raise ImageDataError(f"the image declares no size ({width}x{height})")
        if width > max_edge or height > max_edge or width * height > max_pixels:
            raise ImageDataError(
                f"the image declares {width}x{height} pixels, more than the limit ({max_edge} per edge, "
                f"{max_pixels} in all)"
            )
        if info.frames > max_frames:
            raise ImageDataError(f"the animation has {info.frames} frames, more than the limit of {max_frames}")
        _check_complete(data, info.format)
    return info


def _inspect(data: bytes, *, strict: bool) -> ImageInfo:
    if data.lstrip()[:16].startswith(_SVG_START) or data.lstrip()[:16].lower().startswith(b"<svg"):
        svg = _inspect_svg(data, strict=strict)
        if svg is not None:
            return svg
    # Pillow loads on the first image, not with the package (it costs ~0.1 s of start-up).
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # A header claiming a huge size is judged by check_image's own limits; Pillow's warning is noise here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            return _unknown()
        except Image.DecompressionBombError:
            raise ImageDataError("the image declares far more pixels than any real image") from None
        with opened as image:
            fmt = _PIL_FORMATS.get(image.format or "")
            if fmt is None:
                return _unknown()
            # Pillow counts GIF and WebP frames from their headers, without decoding them; damaged frame
            # headers raise here.
            frames = int(getattr(image, "n_frames", 1)) if fmt in ("gif", "webp") else 1
            return ImageInfo(
                format=fmt,
                mime_type=MIME_TYPES[fmt],
                extension=EXTENSIONS[fmt],
                width=image.width,
                height=image.height,
                frames=frames or 1,
            )


def _check_complete(data: bytes, fmt: str) -> None:
    """Cheap end-of-file checks that catch bytes cut short (decoding the whole image would cost milliseconds
    per megabyte for every generated image)."""
    if fmt == "png" and not data.endswith(_PNG_END):
        raise ImageDataError("the png image is truncated (no IEND chunk at the end)")
    if fmt == "jpeg" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ImageDataError("the jpeg image is truncated (no end-of-image marker)")
    if fmt == "gif" and not data.rstrip(b"\x00").endswith(b";"):
        raise ImageDataError("the gif image is truncated (no trailer)")
    if fmt == "webp":
        declared = int.from_bytes(data[4:8], "little") + 8
        if len(data) < declared:
            raise ImageDataError(f"the webp image is truncated ({len(data)} of {declared} bytes)")


def _unknown() -> ImageInfo:
    return ImageInfo(format="bin", mime_type=MIME_TYPES["bin"], extension="bin")


# -- SVG ------------------------------------------------------------------------------------------------


class _SvgScan:
    """An expat pass over an SVG document: the root's size, and in strict mode every active construct."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.root: dict[str, str] | None = None
        self.root_name = ""
        self.elements = 0
        self.in_style = 0
        self.problem: str | None = None

    def flag(self, problem: str) -> None:
        if self.strict and self.problem is None:
            self.problem = problem

    def start(self, name: str, attributes: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > MAX_SVG_ELEMENTS:
            raise ImageDataError(f"the svg image has more than {MAX_SVG_ELEMENTS} elements")
        local = _local(name)
        if self.root is None:
            self.root, self.root_name = attributes, local
            if not self.strict:
                raise _StopScan
        if local in _ACTIVE_ELEMENTS:
            self.flag(f"it contains a <{local}> element")
        if local == "style":
            self.in_style += 1
        for raw_name, value in attributes.items():
            attribute = _local(raw_name)
            if attribute.startswith("on"):
                self.flag(f"it has an event handler ({attribute})")
            elif attribute in _LINK_ATTRIBUTES and not _local_reference(value):
                self.flag(f"it refers to an external resource ({attribute}={value[:60]!r})")
            elif attribute == "style":
                self._check_css(value)
            elif (
                local in ("set", "animate")
                and attribute == "attributename"
                and (_local(value).startswith("on") or _local(value) in _LINK_ATTRIBUTES)
            ):
                self.flag(f"it animates the {value[:40]!r} attribute")
            elif "javascript:" in value.lower().replace(" ", ""):
                self.flag("it contains a javascript: URL")
            elif "url(" in value.lower():
                self._check_css(value)

    def end(self, name: str) -> None:
        if _local(name) == "style":
            self.in_style -= 1

    def text(self, data: str) -> None:
        if self.in_style:
            self._check_css(data)

    def _check_css(self, css: str) -> None:
        if _CSS_ACTIVE.search(css):
            self.flag("its style sheet runs code or imports another one")
        for target in _CSS_URL.findall(css):
            if not _local_reference(target):
                self.flag(f"its style refers to an external resource ({target[:60]!r})")

    def instruction(self, target: str, data: str) -> None:
        if target.lower() == "xml-stylesheet":
            self.flag("it loads an external style sheet")

    def doctype(self, name: str, sysid: str | None, pubid: str | None, has_internal_subset: int) -> None:
        if has_internal_subset or sysid:
            self.flag("it has a DOCTYPE with declarations or an external DTD")

    def entity(self, *args: object) -> None:
        raise ImageDataError("the svg image declares XML entities", code="unsafe_svg")


class _StopScan(Exception):
    pass


def _inspect_svg(data: bytes, *, strict: bool) -> ImageInfo | None:
    scan = _SvgScan(strict=strict)
    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler = scan.start
    parser.EndElementHandler = scan.end
    parser.CharacterDataHandler = scan.text
    parser.ProcessingInstructionHandler = scan.instruction
    parser.StartDoctypeDeclHandler = scan.doctype
    parser.EntityDeclHandler = scan.entity
    parser.UnparsedEntityDeclHandler = scan.entity
    parser.ExternalEntityRefHandler = lambda *args: 0  # never fetch; 0 makes expat stop with an error
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except _StopScan:
        pass
    except xml.parsers.expat.ExpatError as exc:
        if scan.root is None or scan.root_name != "svg":
            return None  # not an SVG document at all
        if strict:
            raise ImageDataError(f"the svg image is not well-formed XML ({exc})") from None
    if scan.root is None or scan.root_name != "svg":
        return None
    if scan.problem is not None:
        raise ImageDataError(f"the svg image is unsafe to display: {scan.problem}", code="unsafe_svg")
    width, height = _dimension(scan.root, "width"), _dimension(scan.root, "height")
    if width is None or height is None:
        box = _view_box(scan.root)
        if box is not None:
            width, height = width or box[0], height or box[1]
    return ImageInfo(format="svg", mime_type=MIME_TYPES["svg"], extension="svg", width=width, height=height)


def _local(name: str) -> str:
    return name.rpartition(":")[2].lower()


def _local_reference(value: str) -> bool:
    text = value.strip()
    return text == "" or text.startswith("#") or bool(_SAFE_DATA_URL.match(text))


def _dimension(attributes: dict[str, str], name: str) -> int | None:
    """A root ``width``/``height`` in user units (plain or ``px``); anything else (``1.2.3``, ``50%``,
    ``1e999``) is no size rather than an error."""
    value = next((v for k, v in attributes.items() if _local(k) == name), None)
    if value is None:
        return None
    match = _NUMBER.fullmatch(value)
    if match is None:
        return None
    return _finite_size(match.group(1))


def _view_box(attributes: dict[str, str]) -> tuple[int, int] | None:
    value = next((v for k, v in attributes.items() if _local(k) == "viewbox"), None)
    if value is None:
        return None
    parts = value.replace(",", " ").split()
    if len(parts) != 4:
        return None
    width, height = _finite_size(parts[2]), _finite_size(parts[3])
    return (width, height) if width and height else None


def _finite_size(text: str) -> int | None:
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number) or number <= 0 or number > 10 * MAX_IMAGE_EDGE:
        return None
    return max(1, round(number))
