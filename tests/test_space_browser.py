"""The Space in a real browser: Debian's Chromium driven by Playwright loads the page, uploads a photo, presses the
button and waits for the reconstruction and the PSNR; a screenshot is saved under the test's output folder.

Needs ``apt-get install -y chromium`` (``make test`` / ``.ci/run`` install it). Playwright's own browser downloads
are never used. With ``VISTOK_REQUIRE_BROWSER=1`` (what ``make test`` exports) a missing Chromium or Playwright fails
the test; otherwise (a plain local ``pytest``) it is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = ROOT / "spaces" / "vistok-demo"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 60_000

pytestmark = pytest.mark.browser


def browser_required() -> bool:
    """Whether a missing browser is a failure (``VISTOK_REQUIRE_BROWSER`` set to anything but "", "0", "false")."""
    return os.environ.get("VISTOK_REQUIRE_BROWSER", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it when the browser was required (CI must not pass without running it)."""
    if browser_required():
        pytest.fail(f"{reason} (VISTOK_REQUIRE_BROWSER is set, so the browser test must run)", pytrace=False)
    pytest.skip(reason)


def chromium_and_playwright():
    """Playwright's sync API, once Debian's Chromium and Playwright are both present (else skip, or fail if required)."""
    if not os.path.exists(CHROMIUM):
        skip_or_fail("Debian's Chromium is not installed (apt-get install -y chromium; `make test` does it)")
    try:
        from playwright import sync_api
    except ImportError:
        skip_or_fail("playwright (Python) is not installed; it is part of vistok[dev]")
    return sync_api


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def space_url():
    """The Space served in this process on a free port."""
    spec = importlib.util.spec_from_file_location("vistok_space_app", SPACE_DIR / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    demo = app.build_demo()
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture
def output_dir(tmp_path) -> Path:
    """tmp_path, or $VISTOK_TEST_OUTPUT/<test> when set (CI keeps that folder as an artefact)."""
    root = os.environ.get("VISTOK_TEST_OUTPUT")
    if not root:
        return tmp_path
    path = Path(root) / "space-browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_upload_and_reconstruct_in_chromium(space_url, output_dir):
    sync_api = chromium_and_playwright()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(space_url, wait_until="networkidle")
            page.locator("input[type=file]").first.set_input_files(
                str(SPACE_DIR / "examples" / "chelsea.jpg")
            )
            page.locator("#upload img").wait_for()  # the preview appears once the upload is on the server
            page.click("#reconstruct-button")
            page.locator("#reconstruction img").wait_for()
            page.locator("#metrics").get_by_text("PSNR").wait_for()
            metrics = page.locator("#metrics").inner_text()
            page.screenshot(path=str(output_dir / "space.png"), full_page=True)
        finally:
            browser.close()

    assert "dB" in metrics and "Tokens per image" in metrics, metrics
    assert (output_dir / "space.png").stat().st_size > 10_000
