"""The ``imagegen`` commands take store URLs like the library does (one factory decides, no ``s3:`` folders)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from imagegen_tool.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_generate_list_show_prune_on_a_url_store(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"memory://cli-{secrets.token_hex(4)}"
    code, out, err = run(capsys, "generate", "--offline", "--store", url, "--json", "a lighthouse")
    assert code == 0, err
    made = json.dumps(json.loads(out))
    code, out, err = run(capsys, "list", "--store", url, "--json")
    assert code == 0, err
    listed = json.loads(out)
    ids = [item["id"] for item in (listed if isinstance(listed, list) else listed["images"])]
    assert len(ids) == 1 and ids[0] in made
    code, out, err = run(capsys, "show", ids[0], "--store", url, "--json")
    assert code == 0, err
    assert url in out
    code, out, err = run(capsys, "prune", "--store", url, "--keep-last", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["images_removed"] == 1
    assert list(tmp_path.iterdir()) == []  # nothing was created locally: no "memory:" folder


def test_environment_url_and_unknown_scheme(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMAGEGEN_STORE_DIR", "nosuch://bucket/images")
    code, _, err = run(capsys, "list")
    assert code != 0
    assert "unknown store URL scheme 'nosuch'" in err
