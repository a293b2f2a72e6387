"""Secrets never survive in messages, logs or the exception chain the package raises."""

from __future__ import annotations

import logging
import traceback

import httpx2
import openai
import pytest

from imagegen_tool.backends import translate_openai_error
from imagegen_tool.redact import redact, redact_payload, scrub_exception

LEGACY = "sk-" + "A1b2C3d4E5f6G7h8I9j0" + "T3BlbkFJ" + "k1L2m3N4o5P6q7R8s9T0"
PROJECT = "sk-proj-" + "Xy9_" * 20 + "abc-DEF"
SERVICE = "sk-svcacct-" + "Q" * 40 + "_z-9"
ADMIN = "sk-admin-" + "m" * 60
AZURE = "0123456789abcdef0123456789abcdef"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize("key", [LEGACY, PROJECT, SERVICE, ADMIN])
def test_openai_keys_are_removed_completely(key: str) -> None:
    for text in (key, f"Incorrect API key provided: {key}.", f"api_key='{key}'", f'{{"key": "{key}"}}'):
        cleaned = redact(text)
        secret = key.split("-", 2)[-1]
        assert secret[:6] not in cleaned and secret[-6:] not in cleaned, cleaned
        assert "***" in cleaned


@pytest.mark.parametrize(
    "text",
    [
        f"api-key: {AZURE}",
        f"'api-key': '{AZURE}'",
        f'"Ocp-Apim-Subscription-Key": "{AZURE}"',
        f"Authorization: Bearer {JWT}",
        f"authorization=Bearer {PROJECT}",
        "headers={'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}",
        f"Bearer {JWT}",
    ],
)
def test_header_credentials_and_bearer_tokens_are_removed(text: str) -> None:
    cleaned = redact(text)
    for secret in (AZURE, JWT[10:30], PROJECT[10:30], "dXNlcjpwYXNzd29yZA"):
        assert secret not in cleaned, cleaned


def test_ordinary_text_and_ids_are_kept() -> None:
    text = "request id req_0123456789abcdef0123456789abcdef for resp_abc; sk-learn and a task-manager"
    assert redact(text) == text


def test_payloads_redact_secret_keys_whatever_their_value() -> None:
    cleaned = redact_payload({"headers": {"api-key": "short", "Authorization": "x"}, "n": 1, "list": [LEGACY]})
    assert cleaned == {"headers": {"api-key": "***", "Authorization": "***"}, "n": 1, "list": ["sk-***"]}


def _status_error(message: str) -> openai.APIStatusError:
    request = httpx2.Request(
        "POST", "https://api.openai.com/v1/responses", headers={"authorization": f"Bearer {LEGACY}"}
    )
    response = httpx2.Response(401, request=request, json={"error": {"message": message, "code": "invalid_api_key"}})
    return openai.AuthenticationError(message, response=response, body={"error": {"message": message}})


def test_an_echoed_key_leaves_no_trace_in_the_error_its_cause_or_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sdk = _status_error(f"Incorrect API key provided: {LEGACY}. You can find your API key at ...")
    try:
        try:
            raise sdk
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from exc
    except Exception as raised:
        error = raised
    rendered = "".join(traceback.format_exception(error))
    assert LEGACY not in rendered and LEGACY[3:20] not in rendered
    assert LEGACY not in str(error.__cause__) and LEGACY not in repr(getattr(error.__cause__, "body", ""))
    with caplog.at_level(logging.ERROR):
        logging.getLogger("test").exception("failed", exc_info=error)
    assert LEGACY not in caplog.text


def test_scrub_walks_context_chains_without_looping() -> None:
    inner = ValueError(f"token {PROJECT}")
    outer = RuntimeError(f"wrapped {ADMIN}")
    outer.__context__ = inner
    inner.__context__ = outer  # a cycle must not hang
    scrub_exception(outer)
    assert PROJECT not in str(inner) and ADMIN not in str(outer)
