"""``imagegen batch ...`` against the emulator, as a user runs it: settings from the environment, the job kept in
the store between commands, data on stdout, progress and errors on stderr, the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer  # noqa: F401  (the cli extra: where it is not installed, this module is left out)

from imagegen_tool.cli import EXIT_API, EXIT_INVALID, main
from imagegen_tool.testing import Emulator
from tests.fixtures.env import clear_user_settings

SECRET = "sk-proj-BATCHCLISECRET0123456789abcdefghijklmn"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    clear_user_settings(monkeypatch)
    store = tmp_path / "store"
    monkeypatch.setenv("IMAGEGEN_STORE_DIR", str(store))
    monkeypatch.chdir(tmp_path)
    return store


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, imagegen_emulator: Emulator) -> Emulator:
    monkeypatch.setenv("OPENAI_BASE_URL", imagegen_emulator.url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return imagegen_emulator


def imagegen(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def prompts_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_submit_status_wait_collect_list_across_commands(
    capsys: pytest.CaptureFixture[str], online: Emulator, tmp_path: Path, clean_env: Path
) -> None:
    path = prompts_file(
        tmp_path,
        "# a comment, then an empty line",
        "",
        "a red kite over the sea",
        '{"prompt": "two boats", "size": "1536x1024", "custom_id": "boats"}',
        '"a quoted prompt"',
    )
    code, out, err = imagegen(capsys, "batch", "submit", str(path), "--quality", "low")
    assert code == 0, err
    job_id = out.strip()
    assert job_id.startswith("bj_") and "submitted 3 requests" in err
    assert SECRET not in out + err

    code, out, _ = imagegen(capsys, "batch", "status", job_id, "--json")
    assert code == 0 and json.loads(out)["job_id"] == job_id

    code, out, err = imagegen(capsys, "batch", "wait", job_id, "--poll", "0.05", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "completed" and json.loads(out)["done"] is True

    code, out, err = imagegen(capsys, "batch", "collect", job_id, "--out", str(tmp_path / "copies"))
    assert code == 0, err
    paths = out.split()
    assert len(paths) == 3 and all(Path(p).is_file() and "copies" in p for p in paths)
    assert any("-boats-0" in p for p in paths)

    code, again, _ = imagegen(capsys, "batch", "collect", job_id, "--json")
    assert code == 0
    collected = json.loads(again)
    assert len(collected["images"]) == 3 and collected["failures"] == []
    assert {image["size"] for image in collected["images"]} == {"1024x1024", "1536x1024"}
    assert len([p for p in clean_env.iterdir() if p.suffix == ".png"]) == 3

    code, out, _ = imagegen(capsys, "batch", "list", "--json")
    assert code == 0 and [job["job_id"] for job in json.loads(out)] == [job_id]
    assert len(online.generations) == 3


def test_bad_lines_are_all_named_by_line_number_and_nothing_is_uploaded(
    capsys: pytest.CaptureFixture[str], online: Emulator, tmp_path: Path
) -> None:
    path = prompts_file(
        tmp_path,
        "a fine prompt",
        '{"prompt": 3}',
        "{not json",
        '{"prompt": "a square", "size": "3x3"}',
        "[1, 2]",
        '{"prompt": "fine too", "quality": "low"}',
    )
    code, out, err = imagegen(capsys, "batch", "submit", str(path))
    assert code == EXIT_INVALID and out == ""
    for line in ("line 2:", "line 3:", "line 4:", "line 5:"):
        assert line in err
    assert "line 1:" not in err and "line 6:" not in err and "nothing was sent" in err
    assert online.requests == []


def test_failed_requests_make_collect_exit_4_after_storing_the_others(
    capsys: pytest.CaptureFixture[str], online: Emulator, tmp_path: Path
) -> None:
    path = prompts_file(tmp_path, "a lighthouse", '{"prompt": "a forbidden thing", "custom_id": "nope"}')
    code, out, _ = imagegen(capsys, "batch", "submit", str(path), "--wait", "--poll", "0.05", "--json")
    assert code == EXIT_API
    result = json.loads(out)
    assert len(result["images"]) == 1
    assert [f["custom_id"] for f in result["failures"]] == ["nope"]
    assert result["failures"][0]["error"]["code"] == "moderation_blocked"


def test_cancel_and_unknown_jobs(capsys: pytest.CaptureFixture[str], online: Emulator, tmp_path: Path) -> None:
    online.set_batch_clock(per_line=0.5)
    path = prompts_file(tmp_path, *(f"frame {i}" for i in range(6)))
    code, out, _ = imagegen(capsys, "batch", "submit", str(path))
    job_id = out.strip()
    code, out, err = imagegen(capsys, "batch", "cancel", job_id)
    assert code == 0, err
    assert "cancel" in out
    code, out, err = imagegen(capsys, "batch", "wait", job_id, "--poll", "0.05")
    assert code == 0 and "cancelled" in out
    code, _, err = imagegen(capsys, "batch", "status", "bj_00000000000000ff")
    assert code == EXIT_INVALID and "bj_00000000000000ff" in err
    code, _, err = imagegen(capsys, "batch", "wait", job_id.replace("bj_", "xx_"))
    assert code == EXIT_INVALID and "not a batch job id" in err


def test_wait_timeout_exits_4_and_the_job_goes_on(
    capsys: pytest.CaptureFixture[str], online: Emulator, tmp_path: Path
) -> None:
    online.set_batch_clock(per_line=0.5)
    code, out, _ = imagegen(capsys, "batch", "submit", str(prompts_file(tmp_path, "a", "b", "c", "d")))
    job_id = out.strip()
    code, _, err = imagegen(capsys, "batch", "wait", job_id, "--poll", "0.05", "--timeout", "0.1")
    assert code == EXIT_API and "wait again" in err
    code, out, _ = imagegen(capsys, "batch", "wait", job_id, "--poll", "0.05")
    assert code == 0 and "completed" in out


def test_offline_submit_needs_wait(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = imagegen(capsys, "batch", "submit", str(prompts_file(tmp_path, "a")), "--offline")
    assert code == EXIT_INVALID and "--wait" in err
    code, out, err = imagegen(
        capsys, "batch", "submit", str(prompts_file(tmp_path, "a", "b")), "--offline", "--wait", "--quality", "low"
    )
    assert code == 0, err
    assert len(out.split()) == 2
