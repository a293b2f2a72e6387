"""The ``imagegen`` command line: JSON output, exit codes per error class, --offline without a key, the store
commands, and progress on a terminal (under a pty) that never reaches stdout."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import typer  # noqa: F401  (the cli extra: where it is not installed, this module is left out)
from PIL import Image

from imagegen_tool.cli import main
from imagegen_tool.testing import Emulator
from tests.fixtures.env import clean_environ, clear_user_settings

SECRET = "sk-proj-CLITESTSECRET0123456789abcdefghijklmnop"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No OpenAI settings from the developer's shell; the store in a temporary directory."""
    clear_user_settings(monkeypatch)
    store = tmp_path / "store"
    monkeypatch.setenv("IMAGEGEN_STORE_DIR", str(store))
    monkeypatch.chdir(tmp_path)
    return store


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, imagegen_emulator: Emulator) -> Emulator:
    """The CLI talking to the test's emulator through OPENAI_BASE_URL / OPENAI_API_KEY, as a user would."""
    monkeypatch.setenv("OPENAI_BASE_URL", imagegen_emulator.url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return imagegen_emulator


def imagegen(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _png(path: Path, size: tuple[int, int] = (64, 64), mode: str = "RGB", color: Any = "blue") -> Path:
    Image.new(mode, size, color).save(path, "PNG")
    return path


def _mask(path: Path, size: tuple[int, int] = (64, 64)) -> Path:
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    image.save(path, "PNG")
    return path


# --- results -----------------------------------------------------------------------------------------------


def test_offline_generate_json_needs_no_key_and_prints_only_json(
    capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    code, out, err = imagegen(capsys, "generate", "a red kite", "--offline", "--json", "--size", "1536x1024")
    assert code == 0, err
    [result] = json.loads(out)
    assert set(result) >= {"id", "path", "size", "mime_type", "revised_prompt", "usage"}
    assert result["size"] == "1536x1024" and result["mime_type"] == "image/png"
    assert result["usage"]["image"]["output_tokens"] > 0
    assert Path(result["path"]).is_file() and Path(result["path"]).parent == clean_env
    assert "generating" in err  # progress went to stderr


def test_images_api_n_and_out_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = imagegen(
        capsys, "generate", "owls", "--offline", "--api", "images", "--n", "3", "--out", str(tmp_path / "out"), "--json"
    )
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == 3 and {r["backend"] for r in results} == {"images"}
    for result in results:
        copy = Path(result["path"])
        assert copy.parent == (tmp_path / "out").resolve() and copy.name == f"{result['id']}.png"
        assert copy.read_bytes() == Path(result["store_path"]).read_bytes()


def test_plain_output_is_one_path_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = imagegen(capsys, "generate", "a boat", "--offline", "--api", "images", "--n", "2", "--quiet")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and all(Path(line).is_file() for line in lines)


def test_edit_paths_and_ids_with_a_mask_then_show_list_prune(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    photo = _png(tmp_path / "photo.png", (64, 64))
    mask = _mask(tmp_path / "mask.png", (64, 64))
    code, out, err = imagegen(
        capsys, "edit", str(photo), "a red hat", "--mask", str(mask), "--offline", "--api", "images", "--json"
    )
    assert code == 0, err
    [first] = json.loads(out)
    assert first["size"] == "64x64" or first["size"]  # the emulator keeps or resolves the size

    code, out, err = imagegen(capsys, "edit", first["id"], "now blue", "--offline", "--json")
    assert code == 0, err
    [second] = json.loads(out)

    code, out, _ = imagegen(capsys, "show", second["id"], "--json")
    record = json.loads(out)
    assert record["id"] == second["id"] and record["input_ids"] == [first["id"]] and record["prompt"] == "now blue"
    code, out, _ = imagegen(capsys, "show", second["id"])
    assert code == 0 and f"id: {second['id']}" in out and "prompt: now blue" in out

    code, out, _ = imagegen(capsys, "list", "--json")
    assert [item["id"] for item in json.loads(out)] == [second["id"], first["id"]]  # newest first
    code, out, _ = imagegen(capsys, "list")
    assert out.splitlines()[0].startswith(second["id"])

    code, out, _ = imagegen(capsys, "prune", "--keep-last", "1", "--json")
    assert code == 0 and json.loads(out)["images_removed"] == 1
    code, out, _ = imagegen(capsys, "list", "--json")
    assert [item["id"] for item in json.loads(out)] == [second["id"]]


# --- exit codes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "x", "--size", "5x5"],
        ["generate", "x", "--quality", "superb"],
        ["generate", "x", "--n", "3"],  # several images need --api images
        ["generate", "x", "--api", "images", "--n", "11"],
        ["generate", "x", "--api", "dalle"],
        ["generate", "   "],
        ["edit", "no-such-image", "make it blue"],
        ["edit", "only-a-prompt"],
        ["generate", "x", "--no-such-option"],
    ],
)
def test_invalid_options_and_input_exit_2_and_send_nothing(
    capsys: pytest.CaptureFixture[str], online: Emulator, args: list[str]
) -> None:
    code, out, err = imagegen(capsys, *args)
    assert code == 2 and out == ""
    assert err.strip() and "Traceback" not in err
    assert online.requests == []


def test_moderation_exits_3(capsys: pytest.CaptureFixture[str], online: Emulator) -> None:
    code, out, err = imagegen(capsys, "generate", "something forbidden", "--json")
    assert (code, out) == (3, "")
    assert "moderation" in err and len(err.strip().splitlines()) <= 2


@pytest.mark.parametrize(
    ("plan", "args"),
    [
        (lambda e: e.fail_next(500, times=5), ["generate", "a boat"]),
        (lambda e: e.fail_next(503, times=5), ["generate", "a boat", "--api", "images"]),
        (lambda e: e.fail_next(400, message="Invalid value for 'size'."), ["generate", "a boat", "--api", "images"]),
        (lambda e: e.cut_next_stream(after_events=1), ["generate", "a boat", "--api", "images", "--partials", "2"]),
    ],
    ids=["500-responses", "503-images", "400-api-refusal", "cut-stream"],
)
def test_api_and_network_errors_exit_4(
    capsys: pytest.CaptureFixture[str], online: Emulator, plan: Any, args: list[str]
) -> None:
    plan(online)
    code, out, err = imagegen(capsys, *args, "--json")
    assert (code, out) == (4, "")
    errors = [line for line in err.splitlines() if line.startswith("imagegen: error:")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]) and "Traceback" not in err


def test_no_server_exits_4(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    code, _, err = imagegen(capsys, "generate", "a boat", "--api", "images")
    assert code == 4 and "cannot reach" in err


def test_storage_errors_exit_5(
    capsys: pytest.CaptureFixture[str], online: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("IMAGEGEN_STORE_DIR", str(blocker / "store"))
    code, out, err = imagegen(capsys, "generate", "a boat", "--api", "images", "--json")
    assert (code, out) == (5, "")
    assert "imagegen: error:" in err


def test_an_unwritable_out_directory_exits_5(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, out, _ = imagegen(capsys, "generate", "a boat", "--offline", "--out", str(blocker / "out"), "--json")
    assert (code, out) == (5, "")


def test_missing_key_exits_2_and_suggests_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = imagegen(capsys, "generate", "a boat")
    assert (code, out) == (2, "") and "OPENAI_API_KEY" in err and "--offline" in err


def test_the_key_is_never_printed_even_with_debug(capsys: pytest.CaptureFixture[str], online: Emulator) -> None:
    online.fail_next(401, times=2, message=f"Incorrect API key provided: {SECRET}.")
    code, _, err = imagegen(capsys, "generate", "a boat", "--api", "images")
    assert code == 4 and SECRET not in err and SECRET[:20] not in err
    code, _, err = imagegen(capsys, "generate", "a boat", "--api", "images", "--debug")
    assert code == 4 and "Traceback" in err and SECRET not in err and SECRET[:20] not in err


def test_unknown_id_for_show_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = imagegen(capsys, "show", "img_missing")
    assert (code, out) == (2, "") and "img_missing" in err


def test_bad_prune_duration_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = imagegen(capsys, "prune", "--older-than", "soon")
    assert code == 2 and "30m, 12h, 7d" in err


# --- other programs ------------------------------------------------------------------------------------------


def test_mcp_says_what_to_install_when_absent(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import imagegen_tool.mcp  # noqa: F401
    except ImportError:
        code, _, err = imagegen(capsys, "mcp", "--help")
        assert code == 2 and "pip install" in err and "mcp" in err
    else:  # pragma: no cover - once the MCP server exists, its own tests cover it
        pytest.skip("imagegen_tool.mcp exists")


def test_emulator_subcommand_serves_until_stopped(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen_tool.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        from openai import OpenAI

        with OpenAI(base_url=url, api_key="x", max_retries=0) as client:
            assert client.images.generate(prompt="a cat", model="gpt-image-1.5").data
    finally:
        process.terminate()
        process.wait(10)


def test_help_lists_the_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = imagegen(capsys, "--help")
    assert code == 0
    for command in ("generate", "edit", "show", "list", "prune", "emulator", "mcp"):
        assert command in out
    assert "5 storage error" in " ".join(out.split())


def test_the_console_script_is_declared() -> None:
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts.get("imagegen") == "imagegen_tool.cli:main"


# --- progress on a terminal -------------------------------------------------------------------------------


def _run_with_tty_stderr(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal and stdout on a pipe."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen_tool.cli", *args],
        stdout=subprocess.PIPE,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    os.close(follower)
    chunks: list[bytes] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done with it
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    out = process.stdout.read().decode()
    code = process.wait(30)
    os.close(leader)
    return code, out, b"".join(chunks).decode(errors="replace")


def test_progress_on_a_terminal_and_json_alone_on_stdout(tmp_path: Path) -> None:
    env = clean_environ()
    env.update({"IMAGEGEN_STORE_DIR": str(tmp_path / "store"), "COLUMNS": "120", "TERM": "xterm"})
    args = ["generate", "a comet", "--offline", "--api", "images", "--n", "2", "--partials", "2", "--json"]
    code, out, err = _run_with_tty_stderr(args, env, tmp_path)
    assert code == 0, err
    results = json.loads(out)  # stdout is the JSON document and nothing else
    assert len(results) == 2
    assert "\x1b[" in err  # the live display (spinner, cursor control) is drawn on the terminal
    assert "generating with" in err and "0:00:0" in err  # what is happening, and the elapsed time
    assert err.count("partial ") >= 4 and "of image 2" in err
    for result in results:
        assert f"saved {result['id']}" in err and result["path"] in err


def test_no_live_display_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    env = clean_environ()
    env["IMAGEGEN_STORE_DIR"] = str(tmp_path / "store")
    done = subprocess.run(
        [sys.executable, "-m", "imagegen_tool.cli", "generate", "a comet", "--offline", "--partials", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stderr and "partial 1" in done.stderr
    assert Path(done.stdout.strip()).is_file()


def test_an_input_image_is_read_from_any_path_the_user_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "deep" / "folder"
    elsewhere.mkdir(parents=True)
    photo = elsewhere / "photo.png"
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), "green").save(buffer, "PNG")
    photo.write_bytes(buffer.getvalue())
    code, out, err = imagegen(capsys, "edit", str(photo), "add a sun", "--offline", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["id"]


def test_the_prompt_can_come_from_stdin(tmp_path: Path) -> None:
    env = clean_environ()
    env["IMAGEGEN_STORE_DIR"] = str(tmp_path / "store")
    done = subprocess.run(
        [sys.executable, "-m", "imagegen_tool.cli", "generate", "-", "--offline", "--json", "--quiet"],
        input="a lighthouse\nat dusk\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["prompt"] == "a lighthouse\nat dusk\n"
