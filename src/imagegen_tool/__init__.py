"""imagegen-tool: an image generation and editing tool for LLM agents.

OpenAI GPT Image models through the Responses API's hosted ``image_generation`` tool; images are stored and
agents get small file handles, never base64. The core is framework-neutral; ``imagegen_tool.langchain`` adapts
it to LangChain, ``imagegen_tool.testing`` emulates the API offline.
"""

from __future__ import annotations

from .backends import ImageBackend, ResponsesBackend
from .capabilities import ModelCapabilities, capabilities_for, default_image_model, known_models
from .errors import (
    APIError,
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
from .images_api import ImagesBackend
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

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "APIError",
    "ConfigurationError",
    "GeneratedImage",
    "GenerationCompleted",
    "GenerationFailedError",
    "GenerationResult",
    "ImageBackend",
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
