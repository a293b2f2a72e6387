"""pytest fixtures for the emulator, registered through the ``pytest11`` entry point.

``imagegen_emulator`` is one server shared by the whole session, reset (request log, stored responses and
files, faults, latency) before each test that uses it. ``openai_client`` and ``async_openai_client`` are real
``openai`` clients pointed at it with ``max_retries=0``, so an injected 429 or 5xx reaches the test at once.
Imports of the emulator and the client happen inside the fixtures: installing imagegen-tool without the
``emulator`` extra must not break anyone's pytest (the plugin loads in every project that installs the
package), so without it the plugin does nothing until a test asks for one of these fixtures, and that test
fails with the command that installs the extra.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

    from .emulator import Emulator

__all__ = ["async_openai_client", "imagegen_emulator", "openai_client"]

#: The API key the client fixtures send (the emulator accepts any key and never records it).
TEST_API_KEY = "test-key"


def _emulator_class() -> type[Emulator]:
    from . import EmulatorNotInstalledError

    try:
        from . import Emulator
    except EmulatorNotInstalledError as exc:
        reason = str(exc)
    else:
        return Emulator
    # Outside the except block: the report shows this one line, not the chain of import errors.
    pytest.fail(f"the imagegen_emulator fixture cannot start: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def _imagegen_emulator_server() -> Iterator[Emulator]:
    with _emulator_class()() as emulator:
        yield emulator


@pytest.fixture
def imagegen_emulator(_imagegen_emulator_server: Emulator) -> Iterator[Emulator]:
    """The session's running :class:`~imagegen_tool.testing.Emulator`, reset to a clean state for this test."""
    _imagegen_emulator_server.reset()
    yield _imagegen_emulator_server
    _imagegen_emulator_server.reset()


@pytest.fixture
def openai_client(imagegen_emulator: Emulator) -> Iterator[OpenAI]:
    """A synchronous ``openai.OpenAI`` client talking to the emulator (``max_retries=0``)."""
    from openai import OpenAI

    client = OpenAI(base_url=imagegen_emulator.url, api_key=TEST_API_KEY, max_retries=0)
    try:
        yield client
    finally:
        client.close()


try:
    import pytest_asyncio
except ImportError:  # the async fixture needs pytest-asyncio: say so when a test asks for it

    @pytest.fixture(name="async_openai_client")
    def _async_openai_client_needs_pytest_asyncio() -> None:
        """Needs pytest-asyncio (``pip install pytest-asyncio``)."""
        pytest.fail(
            "the async_openai_client fixture needs pytest-asyncio: pip install pytest-asyncio "
            '(and set asyncio_mode = "auto" or mark the test with @pytest.mark.asyncio)',
            pytrace=False,
        )

else:

    @pytest_asyncio.fixture
    async def async_openai_client(imagegen_emulator: Emulator) -> AsyncIterator[AsyncOpenAI]:
        """An ``openai.AsyncOpenAI`` client talking to the emulator (``max_retries=0``)."""
        from openai import AsyncOpenAI

        client = AsyncOpenAI(base_url=imagegen_emulator.url, api_key=TEST_API_KEY, max_retries=0)
        try:
            yield client
        finally:
            await client.close()
