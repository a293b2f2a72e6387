"""Offline emulator of the OpenAI image endpoints, for tests, demos and CI.

:class:`Emulator` serves the parts of the OpenAI HTTP API that imagegen-tool uses (the Responses API with the
``image_generation`` tool, the Images API and the Files API) on a loopback port, so the real ``openai``
client works against it unchanged through ``base_url``. It returns real, deterministic images, keeps
responses and files in memory, logs every request (credentials redacted) and injects faults on demand.
Needs the ``emulator`` extra (``pip install imagegen-tool[emulator]``). With pytest, the ``imagegen_emulator``,
``openai_client`` and ``async_openai_client`` fixtures are available automatically.
"""

from __future__ import annotations

from .emulator import Emulator
from .state import REDACTED, RecordedFile, RecordedRequest, StoredFile

__all__ = ["REDACTED", "Emulator", "RecordedFile", "RecordedRequest", "StoredFile"]
