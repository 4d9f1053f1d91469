"""What the training tests share: training/train.py loaded as a module, accelerate's singletons reset after each
test, and a local VGG16 file for the LPIPS term (the real weights cannot be downloaded here).

tests/conftest.py registers this module as a pytest plugin, so its fixtures are available everywhere; a module
that runs the trainer in-process opts in with ``pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[1] / "training"


def load_train_script(module_name: str = "vistok_train_script"):
    """training/train.py as a module (its folder goes on sys.path so that ``trainkit`` imports)."""
    if str(TRAINING) not in sys.path:
        sys.path.insert(0, str(TRAINING))
    spec = importlib.util.spec_from_file_location(module_name, TRAINING / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fresh_accelerate_state():
    """Each in-process run builds its own Accelerator; accelerate keeps process-wide singletons."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """A torchvision-format VGG16 ``features.*`` file with random weights, under torchvision's own file name."""
    from vistok.metrics.testing import save_random_vgg16_weights

    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    save_random_vgg16_weights(path)
    return path
