"""vistok reconstruction Space: upload a photo, pick a tokenizer, see what survives the trip through tokens.

Run locally with ``python spaces/vistok-demo/app.py`` (http://127.0.0.1:7860; GRADIO_SERVER_PORT / GRADIO_SERVER_NAME
are honoured). The default tokenizer is the one bundled with vistok (``vistok/default``); set VISTOK_SPACE_TOKENIZER
to serve another name, Hub repo id or folder as the default.

The Space serves only the bundled tokenizers and the names its owner lists (VISTOK_SPACE_TOKENIZERS, comma-separated,
or ``--tokenizers``); any other name is refused. ``--allow-any-tokenizer`` (or VISTOK_SPACE_ALLOW_ANY=1) lets a local
run load any Hub repo id or folder typed in.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the Space's own helpers (vistok_space/) next to this file

from vistok_space import gradio_cache  # noqa: E402
from vistok_space.compare import MAX_COMPARED, LPIPSScorer, run_compare  # noqa: E402
from vistok_space.inputs import ORIGINAL, RESOLUTIONS  # noqa: E402
from vistok_space.pipeline import run_request  # noqa: E402
from vistok_space.tokenizers import (  # noqa: E402
    ALLOW_ANY_ENV,
    ALLOW_ANY_FLAG,
    SERVED_TOKENIZERS_ENV,
    TokenizerCache,
    TokenizerLoadError,
    TokenizerPolicy,
)
from vistok_space.visuals import ERROR_MAP_MAX  # noqa: E402

EXAMPLES_DIR = HERE / "examples"
# Which example photos the bundled default tokenizer (vistok/default) was trained on: crops of skimage's astronaut
# and coffee are in vistok's `samples` train split; chelsea is one of its two held-out evaluation photos; coins and
# immunohistochemistry appear in neither split (see examples/SOURCES.md).
UNSEEN_EXAMPLES = ("immunohistochemistry.jpg", "chelsea.jpg", "coins.png")
TRAINING_EXAMPLES = ("coffee.jpg", "astronaut.jpg")
EXAMPLE_FILES = UNSEEN_EXAMPLES + TRAINING_EXAMPLES
# Narrow screens (phones, ~420 px): columns and side-by-side pairs stack once they would get less than this.
PANEL_MIN_WIDTH = 320
PICTURE_MIN_WIDTH = 240
QUEUE_MAX_SIZE = 64
# One request at a time per worker: torch already spreads each forward pass over every core.
CONCURRENCY_LIMIT = 1

INTRO = """\
# vistok: see what a visual tokenizer keeps

Upload a photo (or pick an example), choose a tokenizer and a resolution. The image is encoded into a grid of
integer tokens and decoded back. You get the reconstruction, the token-id map, where the errors are, and the
numbers: PSNR / SSIM on the saved 8-bit images, tokens and bits per image, compression against raw 24-bit RGB,
and how much of the codebook this one image uses. The **Compare** tab puts up to four tokenizers side by side.
"""
# The intro's last sentence, by what the tokenizer box accepts.
INTRO_ANY_TOKENIZER = (
    "Type any Hub repo id or local folder of a vistok tokenizer into the tokenizer box to try your own."
)
INTRO_SERVED_TOKENIZERS = (
    "This Space serves the tokenizers in the menu. To try your own (any Hub repo id or local folder of a vistok "
    f"tokenizer), run the demo on your machine with `python app.py {ALLOW_ANY_FLAG}`."
)


def intro(policy: TokenizerPolicy) -> str:
    """The page's introduction, saying truly what the tokenizer box accepts under ``policy``."""
    return INTRO + "\n" + (INTRO_ANY_TOKENIZER if policy.allow_any else INTRO_SERVED_TOKENIZERS) + "\n"


def tokenizer_info(policy: TokenizerPolicy) -> str:
    """The tokenizer box's help line under ``policy``."""
    if policy.allow_any:
        return (
            "The bundled default, a zoo tokenizer (downloaded and converted on first use), or type a Hub repo id "
            "(org/name) or a local save_pretrained folder."
        )
    return "The tokenizers this Space serves (a zoo tokenizer is downloaded and converted on first use)."


def image_upload(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` whose uploads reach the app as the raw file path (or data URL), undecoded.

    ``gr.Image`` otherwise opens the file with PIL itself and fails with a bare "Error" on anything that is not an
    image. Decoding in :func:`vistok_space.inputs.open_upload` gives every odd upload (not an image, animated,
    palette, 16-bit, huge) an explanation instead. (Overridden on the instance: a ``gr.Image`` subclass would make
    Gradio write an ``app.pyi`` stub next to this file.)
    """
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    component.preprocess = lambda payload: None if payload is None else (payload.path or payload.url)
    return component


def example_gallery(upload: gr.Image, names: tuple[str, ...], label: str) -> gr.Examples:
    """Clickable example photos (those of ``names`` present in examples/) that fill ``upload``."""
    paths = [[str(EXAMPLES_DIR / name)] for name in names if (EXAMPLES_DIR / name).is_file()]
    return gr.Examples(examples=paths, inputs=[upload], label=label, cache_examples=False)


def make_handler(cache: TokenizerCache):
    """The button's callback; its parameter names are the API's (``/reconstruct``)."""

    def reconstruct(
        image: Any, tokenizer: str, resolution: str, progress: gr.Progress = gr.Progress(track_tqdm=True)  # noqa: B008
    ) -> tuple:
        # track_tqdm shows huggingface_hub's download bars while a zoo tokenizer is fetched on first use
        result = run_request(image, tokenizer, resolution, cache)
        return (
            result.original,
            result.reconstruction,
            result.token_map,
            result.error_map,
            result.histogram,
            result.metrics_table,
            result.status,
            result.metrics,
        )

    return reconstruct


def make_compare_handler(cache: TokenizerCache, lpips: LPIPSScorer):
    """The Compare button's callback (API ``/compare``): status, the original, the table, then per slot (of
    ``MAX_COMPARED``) its panel's visibility, reconstruction, token map and numbers, and the metrics as JSON."""

    def compare(image: Any, tokenizers: Any, resolution: str) -> tuple:
        result = run_compare(image, tokenizers, resolution, cache, lpips)
        slots: list[Any] = []
        for index in range(MAX_COMPARED):
            entry = result.entries[index] if index < len(result.entries) else None
            slots += [
                gr.update(visible=entry is not None),
                entry.reconstruction if entry else None,
                entry.token_map if entry else None,
                entry.summary() if entry else "",
            ]
        return (result.status, result.original, result.table, *slots, result.metrics())

    return compare


def build_demo(
    cache: TokenizerCache | None = None,
    tokenizers: str | Iterable[str] | None = None,
    allow_any_tokenizer: bool | None = None,
) -> gr.Blocks:
    """The Space's page. ``cache`` holds the loaded tokenizers and decides which names are served (its policy); by
    default a fresh one serving the bundled tokenizers plus ``tokenizers`` (names, or one comma-separated string;
    VISTOK_SPACE_TOKENIZERS when ``None``), or any name with ``allow_any_tokenizer`` (VISTOK_SPACE_ALLOW_ANY when
    ``None``). Pass either ``cache`` or the two options."""
    if cache is not None and (tokenizers is not None or allow_any_tokenizer is not None):
        raise ValueError("pass either a TokenizerCache (its policy decides the names) or tokenizers/allow_any_tokenizer")
    cache = cache or TokenizerCache(
        policy=TokenizerPolicy.from_environment(tokenizers=tokenizers, allow_any=allow_any_tokenizer)
    )
    gradio_cache.install()  # concurrent identical outputs must not truncate each other's images mid-download
    policy = cache.policy
    default = policy.names[0]
    resolutions = [(f"{n} × {n}", str(n)) for n in RESOLUTIONS] + [("Original aspect (≤ 512 px)", ORIGINAL)]
    with gr.Blocks(title="vistok: visual tokenizer reconstruction") as demo:
        gr.Markdown(intro(policy))
        with gr.Tab("Reconstruct", id="reconstruct", elem_id="tab-reconstruct"):
            build_reconstruct_tab(cache, policy, default, resolutions)
        with gr.Tab("Compare", id="compare", elem_id="tab-compare"):
            build_compare_tab(cache, policy, default, resolutions)
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=CONCURRENCY_LIMIT)
    return demo


def build_reconstruct_tab(cache: TokenizerCache, policy: TokenizerPolicy, default: str, resolutions: list) -> None:
    """One tokenizer on one image: reconstruction, token map, error map, histogram and numbers."""
    with gr.Row():
        with gr.Column(scale=1, min_width=PANEL_MIN_WIDTH):
            upload = image_upload(
                label="Image", sources=["upload", "clipboard"], height=320, elem_id="upload"
            )
            # Only the served names can be picked, unless any name is allowed; the cache refuses the others
            # whichever way they arrive (the /reconstruct API included).
            tokenizer = gr.Dropdown(
                choices=policy.choices(),
                value=default,
                allow_custom_value=policy.allow_any,
                label="Tokenizer",
                info=tokenizer_info(policy),
            )
            resolution = gr.Radio(resolutions, value="256", label="Resolution")
            button = gr.Button(
                "Tokenize and reconstruct", variant="primary", elem_id="reconstruct-button"
            )
            example_gallery(upload, UNSEEN_EXAMPLES, "Photos the default tokenizer never saw in training")
            example_gallery(
                upload,
                TRAINING_EXAMPLES,
                "Photos the default tokenizer was trained on (expect better results than on new ones)",
            )
        with gr.Column(scale=2, min_width=PANEL_MIN_WIDTH):
            status = gr.Markdown(
                "Upload an image or pick an example, then press the button.",
                label="Status",
                elem_id="status",
            )
            # Pairs side by side while each picture gets PICTURE_MIN_WIDTH px, one under the other below that.
            with gr.Row():
                original = gr.Image(
                    label="Original (as tokenized)",
                    format="png",
                    interactive=False,
                    min_width=PICTURE_MIN_WIDTH,
                )
                reconstruction = gr.Image(
                    label="Reconstruction",
                    format="png",
                    interactive=False,
                    elem_id="reconstruction",
                    min_width=PICTURE_MIN_WIDTH,
                )
            with gr.Row():
                token_map = gr.Image(
                    label="Token ids (blue = 0 … red = K−1)",
                    format="png",
                    interactive=False,
                    min_width=PICTURE_MIN_WIDTH,
                )
                error_map = gr.Image(
                    label=f"Absolute error (black = 0 … yellow ≥ {ERROR_MAP_MAX}/255)",
                    format="png",
                    interactive=False,
                    min_width=PICTURE_MIN_WIDTH,
                )
            # Side by side on wide screens; on narrow ones the columns stack, so the table keeps its width.
            with gr.Row():
                with gr.Column(min_width=PANEL_MIN_WIDTH):
                    metrics_table = gr.Markdown(label="Metrics table", elem_id="metrics")
                with gr.Column(min_width=PANEL_MIN_WIDTH):
                    # No Gradio label: it would sit on top of the plot; the figure's title says what it shows.
                    histogram = gr.Plot(
                        label="Histogram of the codes in this image",
                        show_label=False,
                        format="png",
                        elem_id="histogram",
                    )
            with gr.Accordion("Metrics as JSON", open=False):
                metrics_json = gr.JSON(label="Metrics")
    button.click(
        make_handler(cache),
        inputs=[upload, tokenizer, resolution],
        outputs=[
            original,
            reconstruction,
            token_map,
            error_map,
            histogram,
            metrics_table,
            status,
            metrics_json,
        ],
        api_name="reconstruct",
    )


def build_compare_tab(cache: TokenizerCache, policy: TokenizerPolicy, default: str, resolutions: list) -> None:
    """Up to four tokenizers on one image, side by side: reconstructions, token maps, PSNR / LPIPS, tokens."""
    with gr.Row():
        with gr.Column(scale=1, min_width=PANEL_MIN_WIDTH):
            upload = image_upload(label="Image", sources=["upload", "clipboard"], height=260, elem_id="compare-upload")
            tokenizers = gr.Dropdown(
                choices=policy.choices(),
                value=[default],
                multiselect=True,
                max_choices=MAX_COMPARED,
                allow_custom_value=policy.allow_any,
                label=f"Tokenizers (up to {MAX_COMPARED})",
                info=tokenizer_info(policy),
                elem_id="compare-tokenizers",
            )
            resolution = gr.Radio(resolutions, value="256", label="Resolution")
            button = gr.Button("Compare", variant="primary", elem_id="compare-button")
            example_gallery(upload, UNSEEN_EXAMPLES, "Example photos")
        with gr.Column(scale=2, min_width=PANEL_MIN_WIDTH):
            status = gr.Markdown("Upload an image, choose tokenizers, then press Compare.", elem_id="compare-status")
            table = gr.Markdown(elem_id="compare-table")
            slots: list[Any] = []
            # The original, then one panel per tokenizer: side by side while each gets PICTURE_MIN_WIDTH px.
            with gr.Row(elem_id="compare-panels"):
                original = gr.Image(label="Original (as tokenized)", format="png", interactive=False,
                                    min_width=PICTURE_MIN_WIDTH, elem_id="compare-original")  # fmt: skip
                for index in range(MAX_COMPARED):
                    with gr.Column(visible=False, min_width=PICTURE_MIN_WIDTH,
                                   elem_id=f"compare-panel-{index}") as panel:  # fmt: skip
                        numbers = gr.Markdown(elem_classes="compare-numbers")  # the name first, then the pictures
                        reconstruction = gr.Image(label="Reconstruction", format="png", interactive=False,
                                                  elem_classes="compare-reconstruction")  # fmt: skip
                        token_map = gr.Image(label="Token ids", format="png", interactive=False,
                                             elem_classes="compare-token-map")  # fmt: skip
                    slots += [panel, reconstruction, token_map, numbers]
            with gr.Accordion("Metrics as JSON", open=False):
                metrics_json = gr.JSON(label="Metrics")
    button.click(
        make_compare_handler(cache, LPIPSScorer()),
        inputs=[upload, tokenizers, resolution],
        outputs=[status, original, table, *slots, metrics_json],
        api_name="compare",
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The vistok reconstruction demo (Gradio).")
    parser.add_argument(
        ALLOW_ANY_FLAG,
        dest="allow_any_tokenizer",
        action="store_true",
        default=None,
        help="serve any tokenizer name typed in (Hub repo ids, zoo names, folders on this machine): for local use, "
        f"never on a public Space (also {ALLOW_ANY_ENV}=1)",
    )
    parser.add_argument(
        "--tokenizers",
        default=None,
        metavar="NAMES",
        help="comma-separated tokenizer names to serve besides the bundled ones (zoo names, Hub repo ids, folders); "
        f"default: {SERVED_TOKENIZERS_ENV}",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cache = TokenizerCache(
        policy=TokenizerPolicy.from_environment(tokenizers=args.tokenizers, allow_any=args.allow_any_tokenizer)
    )
    try:
        # Load before the first visitor; if it fails, each request reports why.
        cache.get(cache.policy.names[0])
    except TokenizerLoadError as err:
        logging.getLogger("vistok_space").error("%s", err)
    build_demo(cache).launch()


if __name__ == "__main__":
    main()
