"""The live web page in a real headless browser: Debian's Chromium driven by Selenium through /usr/bin/chromedriver.

The app and the emulator run on loopback ports; the test types a prompt like a user and takes a screenshot of the
image each time the page reports a new picture on screen. The screenshots must go partial → final: each one is
nearest (in pixels) to the stored image the page says it shows, the stages never go backwards, partials differ
from the final image, and the last screenshot is the stored final image scaled to the displayed size. Skipped
(and counted as skipped in the test command's summary) where Chromium is not installed; ``python3 dev.py`` installs
it when it runs as root.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from imagegen_tool.testing import Emulator
from tests.templates.loader import load_example

web = load_example("web/app.py")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOWN = "return window.imagegenShown"
# The flags that work on a machine without network: no sandbox (root in a container), no GPU, and none of the
# background connections (updates, sync, QUIC) that a closed network refuses.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
    "--window-size=1000,1000",
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="browser test skipped: Chromium is not installed (python3 dev.py installs chromium and "
        "chromium-driver when it runs as root)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="imagegen-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    except WebDriverException as exc:
        shutil.rmtree(profile, ignore_errors=True)
        pytest.fail(f"Chromium is installed but did not start: {exc.msg}")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: webdriver.Chrome, imagegen_emulator: Emulator, tmp_path: Path) -> Iterator[tuple[Any, Emulator]]:
    tool, store = web.make_tool(tmp_path / "store", partial_images=2, base_url=imagegen_emulator.url, api_key="t")
    # Partials arrive 1.5 s apart (real ones take longer still): time for a screenshot of each, even on a busy
    # machine; the assertions allow for a picture replaced before its screenshot.
    imagegen_emulator.set_partial_delay(1.5)
    with web.AppServer(web.create_app(tool, store)) as server:
        browser.get(server.url + "/")
        yield store, imagegen_emulator


def draw(browser: webdriver.Chrome, prompt: str) -> None:
    field = browser.find_element(By.ID, "prompt")
    field.clear()
    field.send_keys(prompt)
    browser.find_element(By.ID, "draw").click()


def screenshots_until_final(browser: webdriver.Chrome, already: int = 0) -> list[tuple[dict[str, Any], Image.Image]]:
    """A screenshot of the <img> after each picture the page reports on screen, until the final one."""
    taken: list[tuple[dict[str, Any], Image.Image]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        shown = browser.execute_script(SHOWN)
        if len(shown) > already + len(taken):
            entry = shown[already + len(taken)]
            shot = browser.find_element(By.ID, "image").screenshot_as_png
            taken.append((entry, Image.open(io.BytesIO(shot)).convert("RGB")))
            if entry["kind"] == "final":
                return taken
        else:
            time.sleep(0.05)
    raise AssertionError(f"no final image on screen; the page showed {browser.execute_script(SHOWN)}")


def distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0-255) of two images at ``a``'s size."""
    scaled = b.convert("RGB").resize(a.size, Image.Resampling.BILINEAR)
    return sum(ImageStat.Stat(ImageChops.difference(a, scaled)).mean) / 3


def test_partials_then_the_final_image_on_screen(browser: webdriver.Chrome, page: tuple[Any, Emulator]) -> None:
    store, _ = page
    draw(browser, "a lighthouse at dusk")
    taken = screenshots_until_final(browser)
    kinds = [entry["kind"] for entry, _ in taken]
    assert kinds[-1] == "final" and "partial" in kinds, kinds
    assert all(entry["naturalWidth"] == 1024 for entry, _ in taken)

    # Candidates: every picture of this drawing, in stage order (partial 0, partial 1, ..., final).
    final_entry = taken[-1][0]
    partial_dir = next((store.root / ".partials").iterdir())
    candidates = [*sorted(partial_dir.iterdir()), store.root / final_entry["src"].rsplit("/", 1)[1]]
    pictures = [Image.open(path).convert("RGB") for path in candidates]
    names = [path.name for path in candidates]
    stages = []
    for entry, shot in taken:
        distances = [distance(shot, picture) for picture in pictures]
        nearest = distances.index(min(distances))
        # On screen is the picture the page reported, or a later one that replaced it before the screenshot.
        assert nearest >= names.index(entry["src"].rsplit("/", 1)[1]), (entry, distances)
        stages.append(nearest)
    assert stages == sorted(stages), stages  # never back to an earlier picture
    assert stages[0] < len(pictures) - 1  # a partial was on screen before the final image
    final_shot = taken[-1][1]
    assert distance(final_shot, pictures[-1]) < 8  # the stored final image, scaled to the displayed size
    assert min(distance(final_shot, p) for p in pictures[:-1]) > distance(final_shot, pictures[-1]) + 2
    assert browser.find_element(By.ID, "status").text == "Done."


def test_edit_by_handle_and_errors_on_screen(browser: webdriver.Chrome, page: tuple[Any, Emulator]) -> None:
    _, api = page
    api.set_partial_delay(0)
    draw(browser, "a red kite")
    first = screenshots_until_final(browser)[-1][0]
    image_id = browser.find_element(By.ID, "caption").text.split()[0]
    assert image_id.startswith("ig_") and image_id in first["src"]

    browser.find_element(By.ID, "edit").click()
    before = len(browser.execute_script(SHOWN))
    draw(browser, "make the kite blue")
    edited = screenshots_until_final(browser, already=before)[-1]
    assert edited[0]["src"] != first["src"]
    assert f"edited from {image_id}" in browser.find_element(By.ID, "caption").text

    browser.find_element(By.ID, "edit").click()  # back to drawing anew
    draw(browser, "something forbidden")  # the emulator's moderation trigger
    deadline = time.monotonic() + 60
    error = browser.find_element(By.ID, "error")
    while not error.is_displayed() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "rephrase" in error.text.lower()  # the agent message, shown as text
