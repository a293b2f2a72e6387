"""Which failures of a generation request may be retried automatically: only those that prove nothing was made."""

from __future__ import annotations

import httpx2
import openai
import pytest

from imagegen_tool.backends import MAX_RETRY_AFTER, _maybe_generated, _retry_delay, translate_openai_error
from imagegen_tool.errors import QuotaExceededError

REQUEST = httpx2.Request("POST", "https://api.openai.com/v1/responses")


def _status(status: int, code: str | None = None, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    body = {"error": {"message": "m", "code": code}}
    response = httpx2.Response(status, request=REQUEST, json=body, headers=headers or {})
    return openai.APIStatusError("m", response=response, body=body)


def _connection(cause: BaseException) -> openai.APIConnectionError:
    try:
        try:
            raise cause
        except Exception as exc:
            raise openai.APIConnectionError(request=REQUEST) from exc
    except openai.APIConnectionError as error:
        return error


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_refusals_are_retried(status: int) -> None:
    assert _retry_delay(_status(status), 0, 2) is not None
    assert _retry_delay(_status(status), 2, 2) is None  # budget used up


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not(status: int) -> None:
    assert _retry_delay(_status(status), 0, 2) is None


def test_insufficient_quota_is_never_retried() -> None:
    error = _status(429, "insufficient_quota")
    assert _retry_delay(error, 0, 5) is None
    translated = translate_openai_error(error)
    assert isinstance(translated, QuotaExceededError) and not translated.retryable


def test_retry_after_is_honoured_and_capped() -> None:
    assert _retry_delay(_status(429, headers={"retry-after": "1.5"}), 0, 2) == 1.5
    assert _retry_delay(_status(429, headers={"retry-after-ms": "250"}), 0, 2) == 0.25
    assert _retry_delay(_status(429, headers={"retry-after": str(MAX_RETRY_AFTER + 1)}), 0, 2) is None


def test_connection_never_established_is_retried_but_a_lost_answer_is_not() -> None:
    not_sent = _connection(httpx2.ConnectError("refused"))
    assert not _maybe_generated(not_sent) and _retry_delay(not_sent, 0, 2) is not None
    for cause in (httpx2.ReadTimeout("slow"), httpx2.RemoteProtocolError("cut"), httpx2.ReadError("reset")):
        lost = _connection(cause)
        assert _maybe_generated(lost) and _retry_delay(lost, 0, 2) is None
