"""imagegen-tool: an image generation and editing tool for LLM agents.

OpenAI GPT Image models through the Responses API's hosted ``image_generation`` tool; images are stored and
agents get small file handles, never base64. The core is framework-neutral; ``imagegen_tool.langchain`` adapts
it to LangChain, ``imagegen_tool.testing`` emulates the API offline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# First, before the SDK: pydantic reads ImageOptions' attribute docstrings by walking frames, and on Python < 3.13
# that makes ``inspect`` resolve the path of every module already loaded (~1,000 once openai is imported).
from . import options as _options  # noqa: F401
from .backends import ImageBackend, ResponsesBackend
from .budget import Budget
from .capabilities import ModelCapabilities, capabilities_for, default_image_model, known_models
from .costs import Cost, ImageCost
from .errors import (
    APIError,
    BudgetExceededError,
    ConfigurationError,
    GenerationFailedError,
    ImageGenerationError,
    ImageNotFoundError,
    InvalidInputError,
    InvalidOptionsError,
    MalformedResponseError,
    ModerationBlockedError,
    NoImageReturnedError,
    QuotaExceededError,
    StorageError,
)
from .generator import ImageGenerator
from .images import GeneratedImage, ImageRecord, ImageTokenUsage, PartialImage, ReportedSettings, TokenUsage, Usage
from .inputs import ImageInput, InputImage
from .options import ImageMask, ImageOptions, ImageReference, SvgOptions
from .request import DEFAULT_TEXT_MODEL, ImageRequest
from .results import GenerationResult
from .store import ImageStore, LocalImageStore, PruneReport
from .streaming import (
    GenerationCompleted,
    PartialImageEvent,
    ProgressEvent,
    StreamEvent,
    StreamInterruptedError,
)

if TYPE_CHECKING:
    from .images_api import ImagesBackend


def __getattr__(name: str) -> Any:
    # The Images API route (and Pillow, which it needs) loads on first use, keeping `import imagegen_tool` light.
    if name == "ImagesBackend":
        from .images_api import ImagesBackend

        return ImagesBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "APIError",
    "Budget",
    "BudgetExceededError",
    "ConfigurationError",
    "Cost",
    "GeneratedImage",
    "GenerationCompleted",
    "GenerationFailedError",
    "GenerationResult",
    "ImageBackend",
    "ImageCost",
    "ImageGenerationError",
    "ImageGenerator",
    "ImageInput",
    "ImageMask",
    "ImageNotFoundError",
    "ImageOptions",
    "ImageRecord",
    "ImageReference",
    "ImageRequest",
    "ImageStore",
    "ImageTokenUsage",
    "ImagesBackend",
    "InputImage",
    "InvalidInputError",
    "InvalidOptionsError",
    "LocalImageStore",
    "MalformedResponseError",
    "ModelCapabilities",
    "ModerationBlockedError",
    "NoImageReturnedError",
    "PartialImage",
    "PartialImageEvent",
    "ProgressEvent",
    "PruneReport",
    "QuotaExceededError",
    "ReportedSettings",
    "ResponsesBackend",
    "StorageError",
    "StreamEvent",
    "StreamInterruptedError",
    "SvgOptions",
    "TokenUsage",
    "Usage",
    "capabilities_for",
    "default_image_model",
    "known_models",
]
