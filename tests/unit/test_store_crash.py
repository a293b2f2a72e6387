"""Crash safety of the local store: a writer killed with SIGKILL at random points of 1.6 MB writes never leaves
a record pointing to a missing or partial image, leftovers stay invisible, and a fresh process works and cleans
up. ``IMAGEGEN_CRASH_RUNS`` sets the number of kills (default 32; e.g. 500 for a long run)."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from imagegen_tool import LocalImageStore
from imagegen_tool.errors import ImageNotFoundError

RUNS = int(os.environ.get("IMAGEGEN_CRASH_RUNS", "32"))
IMAGE_BYTES = 1_600_000

WRITER = textwrap.dedent(
    """
    import os, sys
    from imagegen_tool.images import ImageRecord
    from imagegen_tool.store import LocalImageStore

    root, run, named, durability, size = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], int(sys.argv[5])
    store = LocalImageStore(root, durability=durability)
    if named:
        store._anonymous_temp = False  # the named temporary files of file systems without O_TMPFILE
    data = b"\\x89PNG\\r\\n\\x1a\\n" + os.urandom(size - 8)
    previous = None
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    for n in range(1_000_000):
        image_id = f"ig_{run}_{n}"
        store.save_partial(data[:300_000], call_id=image_id, index=0)
        store.save(data, ImageRecord(id=image_id, mime_type="image/png", format="png", prompt="crash test"))
        sys.stdout.write("saved\\n")
        sys.stdout.flush()
        store.set_latest("session", image_id)
        store.put_upload(os.urandom(32).hex(), "file-x", expires_at=None)
        store.delete_partials(image_id)
        if previous is not None and n % 3 == 0:
            store.delete(previous)
        previous = image_id
    """
)


def _check_consistent(root: Path) -> tuple[int, set[str]]:
    """Every record is complete and its image intact; images without records are invisible. Returns (complete
    images, names of the invisible leftovers)."""
    store = LocalImageStore(root, grace_period=timedelta(days=1))  # a reader: cleans nothing that matters here
    records = {p.stem for p in root.glob("*.json")}
    for image_id in records:
        handle = store.get(image_id)  # never a damaged or half-written record
        data = store.read_bytes(image_id)  # never a missing image
        assert len(data) == handle.byte_size == IMAGE_BYTES
        assert hashlib.sha256(data).hexdigest() == handle.sha256
    listed = {image.id for image in store.list_images()}
    assert listed == records
    leftovers: set[str] = set()
    for image in root.glob("*.png"):
        if image.stem not in records:
            leftovers.add(image.name)
            with pytest.raises(ImageNotFoundError):
                store.get(image.stem)
    latest = store.latest("session")
    assert latest is None or latest.startswith("ig_")
    return len(records), leftovers


@pytest.mark.slow
def test_kill_9_at_random_points_of_writes_leaves_a_consistent_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    rng = random.Random(1234)
    killed_mid_write = 0
    seen: set[str] = set()
    for run in range(RUNS):
        writer = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(root),
                str(run),
                str(run % 2),
                "durable" if run % 4 else "process",
                str(IMAGE_BYTES),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline() == b"ready\n", writer.stderr.read() if writer.stderr else ""
        if run % 4 == 0:
            # Some runs are killed only after a save finished, whatever the machine's speed: the store must then
            # hold complete images (judged by what the writer did, not by how long it had).
            assert writer.stdout.readline() == b"saved\n", writer.stderr.read() if writer.stderr else ""
        try:
            writer.wait(timeout=rng.uniform(0.0, 0.3))
        except subprocess.TimeoutExpired:
            writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=30) == -signal.SIGKILL, "the writer stopped by itself"
        _complete, leftovers = _check_consistent(root)
        temporaries = {p.name for p in (root / ".tmp").glob("*")} if (root / ".tmp").exists() else set()
        killed_mid_write += bool((leftovers | temporaries) - seen)
        seen |= leftovers | temporaries
    complete, _ = _check_consistent(root)
    assert complete > 0

    # A fresh process: opening the store removes stale temporaries and previews; prune removes the orphans.
    cleaner = textwrap.dedent(
        """
        import sys
        from datetime import timedelta
        from imagegen_tool.images import ImageRecord
        from imagegen_tool.store import LocalImageStore

        store = LocalImageStore(sys.argv[1], grace_period=timedelta(0))
        report = store.prune()
        handle = store.save(b"\\x89PNG\\r\\n\\x1a\\n" + b"x" * 100, ImageRecord(
            id="ig_after", mime_type="image/png", format="png", prompt="after the crashes"))
        print(report.orphans_removed, report.temp_removed, len(store.list_images()), handle.id)
        """
    )
    out = subprocess.run([sys.executable, "-c", cleaner, str(root)], capture_output=True, text=True, check=True)
    orphans_removed, _temp_removed, listed, new_id = out.stdout.split()
    assert new_id == "ig_after" and int(listed) == complete + 1
    records = {p.stem for p in root.glob("*.json")}
    images = {p.stem for p in root.glob("*.png")}
    assert images == records, "orphan images left after prune"
    for folder in (".tmp", ".partials"):
        assert not any((root / folder).iterdir()) if (root / folder).exists() else True, f"{folder} not emptied"
    assert not list((root / ".sessions").glob(".tmp-*"))
    assert not list((root / ".uploads").glob(".tmp-*"))
    assert int(orphans_removed) >= 0
    print(f"{RUNS} kills, {killed_mid_write} left temporaries or orphans, {complete} complete images kept")
