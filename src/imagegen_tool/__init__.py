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
    ModerationBlockedError,
    NoImageReturnedError,
    StorageError,
)
from .generator import GenerationResult, ImageGenerator
from .images import GeneratedImage, ImageRecord, ImageTokenUsage, ReportedSettings, TokenUsage, Usage
from .options import ImageMask, ImageOptions, ImageReference, SvgOptions
from .request import DEFAULT_TEXT_MODEL, ImageRequest
from .store import ImageStore, LocalImageStore

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "APIError",
    "ConfigurationError",
    "GeneratedImage",
    "GenerationFailedError",
    "GenerationResult",
    "ImageBackend",
    "ImageGenerationError",
    "ImageGenerator",
    "ImageMask",
    "ImageNotFoundError",
    "ImageOptions",
    "ImageRecord",
    "ImageReference",
    "ImageRequest",
    "ImageStore",
    "ImageTokenUsage",
    "InvalidInputError",
    "InvalidOptionsError",
    "LocalImageStore",
    "ModelCapabilities",
    "ModerationBlockedError",
    "NoImageReturnedError",
    "ReportedSettings",
    "ResponsesBackend",
    "StorageError",
    "SvgOptions",
    "TokenUsage",
    "Usage",
    "capabilities_for",
    "default_image_model",
    "known_models",
]
