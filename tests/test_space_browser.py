"""The Space in a real browser: Debian's Chromium driven by Playwright loads the page, uploads a photo, presses the
button and waits for the reconstruction and the PSNR, on a desktop window and on a 420-px-wide phone screen. The
layout is measured on the rendered page (metrics table cells wide enough and no word broken across lines, no label
cut off, nothing drawn over the code histogram, no sideways scrolling); a screenshot of each is saved under the
test's output folder.

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
def second_tokenizer(tmp_path_factory) -> str:
    """A second served tokenizer (a small random f8 folder) for the Compare tab, and random LPIPS weights so that its
    LPIPS column shows numbers (meaningless ones: only the page is tested here)."""
    import torch

    from vistok import VisTokenizer, VisTokenizerConfig
    from vistok.metrics.testing import save_random_vgg16_weights

    root = tmp_path_factory.mktemp("compare_tab")
    torch.manual_seed(0)
    VisTokenizer(VisTokenizerConfig(
        image_size=64, net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 1, "num_downsamples": 3},
        quantizer={"type": "vq", "codebook_size": 512, "codebook_dim": 4},
    )).save_pretrained(root / "tiny-f8")  # fmt: skip
    save_random_vgg16_weights(root / "vgg16.pth")
    return str(root / "tiny-f8")


@pytest.fixture(scope="module")
def space_url(second_tokenizer):
    """The Space served in this process on a free port (the bundled default plus ``second_tokenizer``)."""
    spec = importlib.util.spec_from_file_location("vistok_space_app", SPACE_DIR / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VISTOK_LPIPS_VGG_WEIGHTS", str(Path(second_tokenizer).parent / "vgg16.pth"))
        demo = app.build_demo(tokenizers=[second_tokenizer])
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


# Widths in CSS pixels; "phone" is a narrow phone held upright.
VIEWPORTS = {"desktop": {"width": 1400, "height": 1100}, "phone": {"width": 420, "height": 900}}
# A metrics-table cell must hold at least this many digits side by side (the bug: one letter per line).
MIN_CELL_CHARACTERS = 10

# For every cell: its width, the width of one digit in its font, and the words the browser split across lines.
_MEASURE_CELLS_JS = """
(cells) => {
  const canvas = document.createElement("canvas").getContext("2d");
  return cells.map((cell) => {
    const style = getComputedStyle(cell);
    canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const broken = [];
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lineTops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
        if (lineTops.size > 1) broken.push(match[0]);
      }
    }
    return {
      text: cell.innerText.trim(),
      width: cell.getBoundingClientRect().width,
      right: cell.getBoundingClientRect().right,
      digit: canvas.measureText("0123456789").width / 10,
      broken,
    };
  });
}
"""

# Visible Gradio labels that do not show whole: text overflowing the label, the label running past its block's
# edge, or the block's icon buttons (fullscreen, download, share: the ones with an aria-label) drawn over it.
_CUT_LABELS_JS = """
() => {
  const overlaps = (a, b) => a.left < b.right && a.right > b.left && a.top < b.bottom && a.bottom > b.top;
  return [...document.querySelectorAll("[data-testid=block-label]")]
    .filter((label) => label.offsetParent !== null && !label.classList.contains("sr-only"))
    .filter((label) => {
      const box = label.getBoundingClientRect();
      const block = label.closest(".block") || label.parentElement;
      const buttons = [...block.querySelectorAll("button[aria-label]")].filter((b) => b.offsetParent !== null);
      return (
        label.scrollWidth > label.clientWidth + 1 ||
        box.right > block.getBoundingClientRect().right + 1 ||
        buttons.some((button) => overlaps(box, button.getBoundingClientRect()))
      );
    })
    .map((label) => label.innerText.trim());
}
"""


# What is drawn over the histogram image: visible Gradio labels whose box overlaps it (they ignore the pointer, so
# elementFromPoint does not see them), and anything else the browser shows at points spread over the image.
_HISTOGRAM_COVER_JS = """
(image) => {
  const box = image.getBoundingClientRect();
  const covering = [...document.querySelectorAll("[data-testid=block-label]")]
    .filter((label) => label.offsetParent !== null && !label.classList.contains("sr-only"))
    .filter((label) => {
      const r = label.getBoundingClientRect();
      return r.width > 1 && r.height > 1 && r.left < box.right && r.right > box.left && r.top < box.bottom && r.bottom > box.top;
    })
    .map((label) => `label "${label.innerText.trim()}"`);
  for (const fx of [0.02, 0.25, 0.5, 0.75, 0.98]) {
    for (const fy of [0.02, 0.1, 0.5, 0.98]) {
      const hit = document.elementFromPoint(box.left + fx * box.width, box.top + fy * box.height);
      if (hit !== image) covering.push(`${hit ? hit.tagName : "nothing"} at (${fx}, ${fy})`);
    }
  }
  return covering;
}
"""


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, shared by this module's tests."""
    sync_api = chromium_and_playwright()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_upload_and_reconstruct_in_chromium(browser, space_url, output_dir, screen):
    page = browser.new_page(viewport=VIEWPORTS[screen])
    try:
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(space_url, wait_until="networkidle")
        page.locator("input[type=file]").first.set_input_files(str(SPACE_DIR / "examples" / "chelsea.jpg"))
        page.locator("#upload img").wait_for()  # the preview appears once the upload is on the server
        page.click("#reconstruct-button")
        page.locator("#reconstruction img").wait_for()
        page.locator("#metrics").get_by_text("PSNR").wait_for()
        histogram = page.locator("[data-testid=matplotlib] img")  # the code histogram, the only plot
        histogram.wait_for()
        page.wait_for_function(
            "(image) => image.complete && image.naturalWidth > 0", arg=histogram.element_handle()
        )
        metrics = page.locator("#metrics").inner_text()
        cells = page.locator("#metrics th, #metrics td").evaluate_all(_MEASURE_CELLS_JS)
        cut_labels = page.evaluate(_CUT_LABELS_JS)
        histogram.scroll_into_view_if_needed()
        histogram_cover = histogram.evaluate(_HISTOGRAM_COVER_JS)
        page_width = page.evaluate("document.scrollingElement.scrollWidth")
        screenshot = output_dir / f"space-{screen}.png"
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()

    assert "dB" in metrics and "Tokens per image" in metrics, metrics
    assert screenshot.stat().st_size > 10_000
    viewport_width = VIEWPORTS[screen]["width"]
    assert page_width <= viewport_width, (
        f"the page scrolls sideways: {page_width} px wide in a {viewport_width} px window"
    )

    assert len(cells) >= 2 * 9, cells  # header + the nine metrics, two columns
    narrow = [c for c in cells if c["width"] < MIN_CELL_CHARACTERS * c["digit"]]
    assert not narrow, f"metrics table cells narrower than {MIN_CELL_CHARACTERS} characters: {narrow}"
    broken = [c for c in cells if c["broken"]]
    assert not broken, f"words split across lines in the metrics table: {broken}"
    assert max(c["right"] for c in cells) <= viewport_width, "the metrics table runs off the screen"

    assert not cut_labels, f"labels cut off: {cut_labels}"
    assert not histogram_cover, f"something covers the code histogram: {histogram_cover}"


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_compare_tab_in_chromium(browser, space_url, second_tokenizer, output_dir, screen):
    """The Compare tab: the photo through the default and a second tokenizer, side by side on a desktop window and
    stacked on a phone, with the table of PSNR / LPIPS / tokens; nothing cut off, no sideways scrolling."""
    page = browser.new_page(viewport=VIEWPORTS[screen])
    try:
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(space_url, wait_until="networkidle")
        page.get_by_role("tab", name="Compare").click()
        page.locator("#compare-upload input[type=file]").set_input_files(str(SPACE_DIR / "examples" / "chelsea.jpg"))
        page.locator("#compare-upload img").wait_for()
        page.locator("#compare-tokenizers input").click()
        page.get_by_role("option", name=second_tokenizer).click()
        page.keyboard.press("Escape")
        page.click("#compare-button")
        for index in range(2):
            page.locator(f"#compare-panel-{index} .compare-reconstruction img").wait_for()
            page.locator(f"#compare-panel-{index} .compare-token-map img").wait_for()
        page.locator("#compare-table").get_by_text("LPIPS").wait_for()
        table = page.locator("#compare-table").inner_text()
        numbers = [page.locator(f"#compare-panel-{i} .compare-numbers").first.inner_text() for i in range(2)]
        hidden = [page.locator(f"#compare-panel-{i}").is_visible() for i in range(2, 4)]
        boxes = [page.locator(f"#compare-panel-{i} .compare-reconstruction img").bounding_box() for i in range(2)]
        cells = page.locator("#compare-table th, #compare-table td").evaluate_all(_MEASURE_CELLS_JS)
        cut_labels = page.evaluate(_CUT_LABELS_JS)
        page_width = page.evaluate("document.scrollingElement.scrollWidth")
        screenshot = output_dir / f"space-compare-{screen}.png"
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()

    assert "vistok/default" in table and "tiny-f8" in table and "dB" in table, table
    assert len(cells) == 3 * 3, cells  # header + two tokenizers, three columns
    narrow = [c for c in cells if c["width"] < 6 * c["digit"]]
    assert not narrow, f"comparison table cells narrower than 6 characters: {narrow}"
    broken = [c for c in cells if c["broken"]]
    assert not broken, f"words split across lines in the comparison table: {broken}"
    assert all("PSNR" in text and "LPIPS" in text and "tokens" in text for text in numbers), numbers
    assert hidden == [False, False], "the two unused panels are shown"
    viewport_width = VIEWPORTS[screen]["width"]
    assert page_width <= viewport_width, f"the page scrolls sideways: {page_width} px in a {viewport_width} px window"
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= viewport_width for box in boxes), boxes
    if screen == "desktop":
        assert abs(boxes[0]["y"] - boxes[1]["y"]) < 2, f"not side by side on a desktop window: {boxes}"
    assert max(c["right"] for c in cells) <= viewport_width, "the comparison table runs off the screen"
    assert not cut_labels, f"labels cut off: {cut_labels}"
    assert screenshot.stat().st_size > 10_000
