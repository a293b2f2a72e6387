"""Several variants from one Images API call, then an inpainting edit of the chosen one with a mask.

The Images API route (``ImageGenerator(api="images")``) sends the prompt to the image model as written (no text
model in between), returns ``--n`` images from one call, and edits with a PNG mask whose transparent pixels mark
where to change the picture. Partial images are printed as they stream in.

Offline by default: the OpenAI API is replaced by imagegen-tool's emulator (real HTTP through the real ``openai``
SDK, real image files), so this runs anywhere for free. To use OpenAI for real (billed), set both
``OPENAI_API_KEY`` and ``IMAGEGEN_OFFLINE=0``.

    python examples/images_api_variants.py [--out DIR] [--prompt TEXT] [--edit TEXT] [--n N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from imagegen_tool import GenerationCompleted, ImageGenerator, PartialImageEvent, StreamEvent


def offline_mode() -> bool:
    """Offline unless the user asked for OpenAI explicitly: a key alone does not start billed calls."""
    flag = os.environ.get("IMAGEGEN_OFFLINE", "1").strip().lower()
    return flag not in {"0", "false", "no", "off"} or not os.environ.get("OPENAI_API_KEY")


@contextlib.contextmanager
def images_generator(out: Path) -> Iterator[ImageGenerator]:
    if not offline_mode():
        print("online: OpenAI Images API (billed)")
        with ImageGenerator(store=out, api="images") as generator:
            yield generator
        return
    from imagegen_tool.testing import Emulator

    with Emulator() as api, ImageGenerator(store=out, api="images", base_url=api.url, api_key="offline") as generator:
        print(f"offline: emulated OpenAI API at {api.url}")
        yield generator


def left_half_mask(width: int, height: int) -> bytes:
    """A PNG mask the size of the image: transparent (to be edited) on the left half, opaque elsewhere."""
    mask = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, width // 2, height))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def show(event: StreamEvent) -> None:
    if isinstance(event, PartialImageEvent):
        partial = event.partial
        print(f"  partial {partial.index + 1} of {partial.call_id}: {partial.width}x{partial.height}")
    elif isinstance(event, GenerationCompleted):
        print(f"  done: {len(event.result.images)} image(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("generated-images"), help="where the images go")
    parser.add_argument("--prompt", default="a paper crane on a wooden desk, soft morning light")
    parser.add_argument("--edit", default="replace the left half with a small potted cactus")
    parser.add_argument("--n", type=int, default=3, help="variants to make in one call (1-10)")
    args = parser.parse_args()

    with images_generator(args.out) as generator:
        print(f"generating {args.n} variants...")
        variants = generator.generate(
            args.prompt, n=args.n, size="1024x1024", quality="low", partial_images=1, on_event=show
        )
        for image in variants.images:
            print(f"variant {image.id}: {image.path}")
        usage = variants.usage.image if variants.usage and variants.usage.image else None
        if usage is not None:
            print(f"one call: {usage.input_tokens} input and {usage.output_tokens} output image tokens")

        chosen = variants.images[0]
        mask = left_half_mask(chosen.width or 1024, chosen.height or 1024)
        edited = generator.edit(args.edit, chosen.id, mask=mask, quality="low").image
        print(f"edited {chosen.id} -> {edited.id}: {edited.path}")


if __name__ == "__main__":
    main()
