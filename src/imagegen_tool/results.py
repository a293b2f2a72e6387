"""The outcome of a generate or edit call, shared by the plain and the streaming paths."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .costs import ImageCost
from .images import GeneratedImage, Usage
from .parse import CallFailure

__all__ = ["GenerationResult"]


class GenerationResult(BaseModel):
    """The outcome of one call: the stored images, plus what the API said about the call."""

    model_config = ConfigDict(frozen=True)

    images: tuple[GeneratedImage, ...]
    response_id: str | None = None
    usage: Usage | None = None
    output_text: str = ""
    """Any text the model added besides the image (usually empty)."""
    failures: tuple[CallFailure, ...] = ()
    """Image calls of the same response that produced no image (when at least one other did)."""
    cost: ImageCost | None = None
    """The call's estimated (upper bound) and actual cost in US dollars (``usd`` ``None`` where a price is unknown)."""

    @property
    def image(self) -> GeneratedImage:
        """The first (usually only) image."""
        return self.images[0]
