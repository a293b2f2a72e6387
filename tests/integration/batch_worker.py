"""A worker process for the batch crash tests: submits a job or resumes one, against an emulator's URL.

    python -m tests.integration.batch_worker submit URL STORE COUNT [SLOW]   # prints the job id, waits, collects
    python -m tests.integration.batch_worker resume URL STORE JOB_ID [SLOW]  # waits and collects, prints the ids

``SLOW`` (seconds, default 0) makes each image save take that long (a slow disk), so a test can kill the process
in the middle of collecting. The tests kill it with SIGKILL at chosen moments.
"""

from __future__ import annotations

import json
import sys
import time

from imagegen_tool import ImageGenerator
from imagegen_tool.images import GeneratedImage, ImageRecord
from imagegen_tool.store import LocalImageStore


class SlowDiskStore(LocalImageStore):
    """The local store on a slow disk: every image save takes ``delay`` seconds more."""

    def __init__(self, root: str, delay: float) -> None:
        super().__init__(root)
        self.delay = delay

    def save(self, data: bytes, record: ImageRecord) -> GeneratedImage:
        time.sleep(self.delay)
        return super().save(data, record)


def main(argv: list[str]) -> int:
    mode, url, store_dir, arg = argv[:4]
    delay = float(argv[4]) if len(argv) > 4 else 0.0
    store = SlowDiskStore(store_dir, delay) if delay else LocalImageStore(store_dir)
    generator = ImageGenerator(store=store, api_key="test", base_url=url, api="images")
    if mode == "submit":
        job = generator.submit_batch([f"picture number {i} of a lighthouse" for i in range(int(arg))])
        print(json.dumps({"job_id": job.job_id}), flush=True)
    else:
        job = generator.batch_job(arg)
    job.wait(poll_interval=0.05, on_progress=lambda p: print(json.dumps({"progress": p.status}), flush=True))
    result = job.collect()
    print(json.dumps({"images": [image.id for image in result.images]}), flush=True)
    generator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
