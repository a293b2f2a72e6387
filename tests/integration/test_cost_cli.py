"""The ``imagegen`` command line shows what a call cost: ``cost_usd`` / ``estimated_cost_usd`` in ``--json``, a
``cost:`` line on stderr otherwise (stdout keeps only the data)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.test_cli import clean_env, imagegen  # noqa: F401 - the fixture is used by name


def test_json_output_carries_the_cost(capsys: pytest.CaptureFixture[str], clean_env: Path) -> None:  # noqa: F811
    code, out, _ = imagegen(
        capsys, "generate", "a kite", "--offline", "--json", "--model", "gpt-image-1.5", "--quality", "low"
    )
    assert code == 0
    [image] = json.loads(out)
    assert Decimal(image["cost_usd"]) > 0
    assert Decimal(image["estimated_cost_usd"]) >= Decimal(image["cost_usd"])


def test_the_cost_line_goes_to_stderr(capsys: pytest.CaptureFixture[str], clean_env: Path) -> None:  # noqa: F811
    code, out, err = imagegen(capsys, "generate", "a kite", "--offline", "--model", "gpt-image-1.5", "--quality", "low")
    assert code == 0 and "cost: $" in err and "cost:" not in out
    code, out, err = imagegen(capsys, "generate", "a kite", "--offline", "--quality", "low")  # no token table
    assert code == 0 and "estimated at most unknown" in err
