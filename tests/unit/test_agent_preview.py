"""Previews for vision-capable agents are made within a pixel budget: a small file declaring huge dimensions is
never decoded, a large JPEG is decoded at a reduced scale, and peak memory (measured in a fresh process with
``resource.getrusage``) stays small. Pillow's image memory is allocated in C, so ``tracemalloc`` would not see it.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from imagegen_tool.agent_tool import DEFAULT_PREVIEW_SOURCE_PIXELS, make_preview


def png_declaring(width: int, height: int, *, rows: int, color_type: int = 2) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but whose data holds only ``rows`` rows of zeros (the
    shape of the 140 kB file that once made a preview allocate 1.3 GB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    channels = {2: 3, 6: 4}[color_type]
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + width * channels)
    data = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


MEASURE = """
import json, resource, sys
from pathlib import Path
from imagegen_tool.agent_tool import make_preview
data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
preview = make_preview(data, image_id="img_x", max_side=512)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kib": after - before, "size": [preview.width, preview.height] if preview else None}))
"""


def measure(path: Path) -> dict[str, object]:
    """Peak memory added by ``make_preview`` on the file at ``path`` (KiB), in a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True, timeout=120
    )
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def test_a_small_png_declaring_huge_dimensions_is_not_decoded(tmp_path: Path) -> None:
    # 9000x9000 RGB: 243 MB decoded (and below Pillow's own bomb warning at 89.5 MP, so only our budget helps).
    data = png_declaring(9000, 9000, rows=5000)
    assert len(data) < 200_000
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    result = measure(path)
    assert result["size"] is None
    assert isinstance(result["kib"], int) and result["kib"] < 40 * 1024, result


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path: Path) -> None:
    path = tmp_path / "large.jpg"
    Image.new("RGB", (6000, 6000), (20, 120, 200)).save(path, "JPEG", quality=70)  # 36 MP, over the budget
    assert DEFAULT_PREVIEW_SOURCE_PIXELS < 6000 * 6000
    result = measure(path)
    assert result["size"] == [512, 512]
    assert isinstance(result["kib"], int) and result["kib"] < 40 * 1024, result  # full decode: 108 MB


def test_real_output_sizes_get_a_preview() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (3840, 2160), (10, 200, 10, 100)).save(buffer, "PNG")
    preview = make_preview(buffer.getvalue(), image_id="img_1")
    assert preview is not None and (preview.width, preview.height) == (512, 288)
    with Image.open(io.BytesIO(preview.data)) as opened:
        assert opened.format == "JPEG" and opened.size == (512, 288)
    assert preview.data_url.startswith("data:image/jpeg;base64,")


@pytest.mark.parametrize(
    "data",
    [
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"not an image at all",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    ],
)
def test_unreadable_or_vector_images_get_no_preview(data: bytes) -> None:
    assert make_preview(data, image_id="img_1") is None


def test_palette_and_animated_images_get_a_preview() -> None:
    frames = [Image.new("P", (300, 200), index) for index in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    preview = make_preview(buffer.getvalue(), max_side=100)
    assert preview is not None and (preview.width, preview.height) == (100, 67)
