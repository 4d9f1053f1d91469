"""Which tokenizers the Space serves: the bundled ones and the names its owner lists; anything else (a server path, an
unlisted zoo download) is refused unless a local run allows any name. And a name that fails to load leaves nothing
behind in the cache (no per-name lock or slot), whether one request or several at once asked for it."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import pytest

import vistok

ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = ROOT / "spaces" / "vistok-demo"
PHOTO = str(SPACE_DIR / "examples" / "coffee.jpg")
sys.path.insert(0, str(SPACE_DIR))

from vistok_space.pipeline import run_request  # noqa: E402
from vistok_space.tokenizers import (  # noqa: E402
    ALLOW_ANY_ENV,
    DEFAULT_TOKENIZER_ENV,
    SERVED_TOKENIZERS_ENV,
    TokenizerCache,
    TokenizerLoadError,
    TokenizerPolicy,
    default_tokenizer_name,
)

BUNDLED_FOLDER = Path(vistok.__file__).parent / "pretrained" / "default"
REFUSED = "is not one of the tokenizers this Space serves"
THREAD_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def owner_settings_unset(monkeypatch):
    """Each test starts from a Space whose owner set nothing (the default tokenizer may still be set by the run)."""
    monkeypatch.delenv(SERVED_TOKENIZERS_ENV, raising=False)
    monkeypatch.delenv(ALLOW_ANY_ENV, raising=False)


def load_app():
    """spaces/vistok-demo/app.py as a module (it is not a package)."""
    spec = importlib.util.spec_from_file_location("vistok_space_app_policy_tests", SPACE_DIR / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    return app


def allow_any() -> TokenizerPolicy:
    return TokenizerPolicy.from_environment(allow_any=True)


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory) -> Path:
    """A real vistok tokenizer folder on the server."""
    folder = tmp_path_factory.mktemp("tokenizers") / "mine"
    config = vistok.VisTokenizerConfig(
        image_size=32,
        net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 0, "num_downsamples": 3},
        quantizer={"type": "vq", "codebook_size": 32, "codebook_dim": 4},
    )
    vistok.VisTokenizer(config).save_pretrained(folder)
    return folder


@pytest.fixture
def from_pretrained_calls(monkeypatch) -> list[str]:
    """The names ``VisTokenizer.from_pretrained`` is called with (it still loads them: a spy, not a stand-in)."""
    calls: list[str] = []
    real = vistok.VisTokenizer.from_pretrained.__func__

    def spy(cls, name, *args, **kwargs):
        calls.append(str(name))
        return real(cls, name, *args, **kwargs)

    monkeypatch.setattr(vistok.VisTokenizer, "from_pretrained", classmethod(spy))
    return calls


# ------------------------------------------------------------------------------------------------- the policy
def test_by_default_only_the_bundled_tokenizers_are_served():
    policy = TokenizerPolicy.from_environment()
    assert policy.names[0] == default_tokenizer_name()
    assert set(vistok.hub.list_bundled()) <= set(policy.names)
    assert not policy.allow_any
    offered = [name for _, name in policy.choices()]
    assert offered == list(policy.names)  # no zoo download the owner did not choose
    assert not any(name in offered for name in (row["name"] for row in vistok.list_pretrained()))


def test_the_owner_lists_zoo_entries_and_other_names(monkeypatch):
    monkeypatch.setenv(SERVED_TOKENIZERS_ENV, " vqgan-llamagen-vq16, org/their-tokenizer ,,vqgan-llamagen-vq16")
    policy = TokenizerPolicy.from_environment()
    assert policy.names == (default_tokenizer_name(), *[
        n for n in vistok.hub.list_bundled() if n != default_tokenizer_name()
    ], "vqgan-llamagen-vq16", "org/their-tokenizer")
    labels = {name: label for label, name in policy.choices()}
    assert labels["vqgan-llamagen-vq16"].startswith("vqgan-llamagen-vq16 — zoo: 256 tokens")  # labelled as a zoo entry
    assert labels["org/their-tokenizer"] == "org/their-tokenizer"
    assert "vqgan-llamagen-vq8" not in labels
    # build_demo's / --tokenizers' list replaces the environment's
    assert TokenizerPolicy.from_environment(tokenizers=["vqgan-llamagen-vq8"]).names[-1] == "vqgan-llamagen-vq8"


def test_allow_any_offers_every_zoo_entry_and_comes_from_the_flag_or_the_environment(monkeypatch):
    app = load_app()
    assert app.parse_args([]).allow_any_tokenizer is None
    assert app.parse_args(["--allow-any-tokenizer"]).allow_any_tokenizer is True
    assert not TokenizerPolicy.from_environment().allow_any
    monkeypatch.setenv(ALLOW_ANY_ENV, "1")
    policy = TokenizerPolicy.from_environment()
    assert policy.allow_any and policy.allows("/any/folder") and policy.allows("org/anything")
    offered = [name for _, name in policy.choices()]
    assert "vqgan-llamagen-vq16" in offered and offered[0] == default_tokenizer_name()
    assert not TokenizerPolicy.from_environment(allow_any=False).allow_any  # the explicit option wins


# ------------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    "name",
    [
        "server-folder",  # a real tokenizer folder on the server, typed in as a path
        str(BUNDLED_FOLDER),  # the bundled tokenizer itself, but by its path
        "/etc",
        "../../../../etc/passwd",
        "vqgan-llamagen-vq8",  # a zoo entry the owner did not list (a download of hundreds of MB)
        "vqgan-janus-pro-1b",  # a tokenizer inside a multi-GB multimodal release
        "nobody/no-such-tokenizer",
    ],
)
def test_unlisted_names_and_server_paths_are_refused_before_any_lookup(name, saved_folder, from_pretrained_calls):
    name = str(saved_folder) if name == "server-folder" else name
    cache = TokenizerCache()
    start = time.perf_counter()
    result = run_request(PHOTO, name, "256", cache)
    assert not result.ok
    assert REFUSED in result.status and "--allow-any-tokenizer" in result.status
    assert "Traceback" not in result.status and len(result.status) < 400
    assert from_pretrained_calls == [] and cache.loading_names() == []
    assert time.perf_counter() - start < 5
    with pytest.raises(TokenizerLoadError, match=REFUSED):
        cache.get(name)
    # the served default still works
    assert run_request(PHOTO, default_tokenizer_name(), "128", cache).ok


def test_a_listed_folder_and_any_name_when_allowed_do_load(saved_folder):
    listed = TokenizerCache(policy=TokenizerPolicy.from_environment(tokenizers=[str(saved_folder)]))
    assert run_request(PHOTO, str(saved_folder), "128", listed).ok
    assert run_request(PHOTO, str(saved_folder), "128", TokenizerCache(policy=allow_any())).ok


def test_a_very_long_refused_name_is_not_repeated_whole():
    name = "x" * 5000
    with pytest.raises(TokenizerLoadError) as err:
        TokenizerCache().get(name)
    assert len(str(err.value)) < 400 and REFUSED in str(err.value)


def test_nothing_chosen_says_what_can_be_chosen():
    with pytest.raises(TokenizerLoadError, match="No tokenizer chosen: pick one of"):
        TokenizerCache().get("  ")
    with pytest.raises(TokenizerLoadError, match="type a Hub repo id or a local folder"):
        TokenizerCache(policy=allow_any()).get(None)


# --------------------------------------------------------------------------------------------------- the app
def components(demo: gr.Blocks, kind: type) -> list:
    return [block for block in demo.blocks.values() if isinstance(block, kind)]


def test_the_page_offers_only_the_served_tokenizers_and_says_so(monkeypatch):
    app = load_app()
    monkeypatch.setenv(SERVED_TOKENIZERS_ENV, "vqgan-llamagen-vq16")
    demo = app.build_demo()
    dropdown, compare = components(demo, gr.Dropdown)  # the Reconstruct tab's, the Compare tab's (multi-select)
    for box in (dropdown, compare):
        assert not box.allow_custom_value
        assert [name for _, name in box.choices] == [*TokenizerPolicy.from_environment().names]
        assert "type a Hub repo id" not in box.info
    assert dropdown.value == default_tokenizer_name() and compare.value == [default_tokenizer_name()]
    assert compare.multiselect and compare.max_choices == 4
    intro = components(demo, gr.Markdown)[0].value
    assert "Type any Hub repo id" not in intro and "--allow-any-tokenizer" in intro

    demo = app.build_demo(allow_any_tokenizer=True)
    for box in components(demo, gr.Dropdown):
        assert box.allow_custom_value and "vqgan-llamagen-vq8" in [name for _, name in box.choices]
    assert "Type any Hub repo id or local folder" in components(demo, gr.Markdown)[0].value
    with pytest.raises(ValueError, match="either a TokenizerCache"):
        app.build_demo(TokenizerCache(), allow_any_tokenizer=True)


def test_the_handler_refuses_a_server_path_and_serves_a_listed_one(saved_folder):
    app = load_app()
    refused = app.make_handler(TokenizerCache())(PHOTO, str(saved_folder), "128")
    assert refused[1] is None and REFUSED in refused[6]
    served = app.make_handler(TokenizerCache(policy=TokenizerPolicy.from_environment(tokenizers=str(saved_folder))))
    outputs = served(PHOTO, str(saved_folder), "128")
    assert outputs[1] is not None and outputs[6].startswith("**Reconstructed**"), outputs[6]


# ------------------------------------------------------------------------------------ failed loads leave nothing
def test_a_failed_name_then_a_good_one(tmp_path):
    cache = TokenizerCache(policy=allow_any())
    bad = str(tmp_path)  # a folder without a tokenizer
    for _ in range(2):  # the second time too: nothing of the first failure is left to block or answer it
        with pytest.raises(TokenizerLoadError, match="Could not load"):
            cache.get(bad)
        assert cache.loading_names() == []
    assert not cache.get(default_tokenizer_name()).training
    assert cache.loading_names() == []


class SlowCache(TokenizerCache):
    """The real cache whose loads take a while, so that concurrent requests really overlap; counts the loads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loads: list[str] = []

    def _load(self, name):
        self.loads.append(name)
        time.sleep(0.3)
        return super()._load(name)


def get_from_threads(cache: TokenizerCache, names: list[str]) -> list:
    """``cache.get`` of each name from its own thread, all started together: the tokenizer or the exception each got."""
    results: list = [None] * len(names)
    barrier = threading.Barrier(len(names))

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = cache.get(names[i])
        except Exception as err:  # noqa: BLE001  (kept for the assertions)
            results[i] = err

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(names))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT_S)
        assert not thread.is_alive(), "a request never got its answer (a per-name lock left held?)"
    return results


def test_the_same_bad_name_from_two_threads(tmp_path):
    cache = SlowCache(policy=allow_any())
    bad = str(tmp_path)
    first, second = get_from_threads(cache, [bad, bad])
    assert isinstance(first, TokenizerLoadError) and isinstance(second, TokenizerLoadError)
    assert str(first) == str(second) and "Could not load" in str(first)
    assert cache.loads == [bad]  # the waiting request got the first one's answer instead of failing again
    assert cache.loading_names() == []
    # a later request tries again (failures are not cached), and good names load, also side by side with a bad one
    with pytest.raises(TokenizerLoadError, match="Could not load"):
        cache.get(bad)
    assert cache.loads == [bad, bad]
    good, failed = get_from_threads(cache, [default_tokenizer_name(), bad])
    assert isinstance(good, vistok.VisTokenizer) and isinstance(failed, TokenizerLoadError)
    assert cache.loading_names() == []


def test_a_refused_name_from_two_threads_takes_no_lock():
    cache = SlowCache()
    results = get_from_threads(cache, ["/etc", "/etc"])
    assert all(isinstance(r, TokenizerLoadError) and REFUSED in str(r) for r in results)
    assert cache.loads == [] and cache.loading_names() == []


def test_the_owners_default_is_served_even_as_a_path(monkeypatch, saved_folder):
    monkeypatch.setenv(DEFAULT_TOKENIZER_ENV, str(saved_folder))
    cache = TokenizerCache()
    assert cache.policy.names[0] == str(saved_folder)
    assert run_request(PHOTO, str(saved_folder), "128", cache).ok
    assert REFUSED not in run_request(PHOTO, "vistok/default", "128", cache).status  # bundled: still served
