"""training/train.py: recipes and overrides, a few steps of every recipe family, exact resume after a kill,
crash-safe checkpoints, NaN stop, and two processes keeping identical codebooks."""

from __future__ import annotations

import json
import os
import pickle
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vistok import VisTokenizer

from .training_support import load_train_script

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "training"
TINY = TRAINING / "configs" / "tiny.yaml"
RECIPES = sorted((TRAINING / "configs").rglob("*.yaml"))


train_script = load_train_script()
from trainkit.checkpoints import CheckpointManager, read_state  # noqa: E402
from trainkit.config import load_recipe  # noqa: E402
from trainkit.trainer import TrainingDiverged, enable_activation_checkpointing  # noqa: E402

# A few 16-px steps on 32 sample crops: what every smoke test starts from.
FAST = [
    "--config", str(TINY), "--model.image_size", "16", "--model.net.hidden_channels", "16",
    "--model.quantizer.codebook_size", "32", "--model.quantizer.codebook_dim", "4",
    "--data.num_samples", "32", "--train.batch_size", "4", "--train.max_steps", "3", "--train.warmup_steps", "1",
    "--output.log_every", "1", "--output.image_every", "100", "--output.checkpoint_every", "100",
    "--output.num_images", "2", "--output.tracker", "none", "--output.progress_bar", "false",
]


def run(tmp_path: Path, *extra: str, name: str = "run"):
    return train_script.main([*FAST, "--output_dir", str(tmp_path / name), *extra])


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


# --------------------------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(TRAINING / "configs")))
def test_every_recipe_parses_and_builds_its_model(path):
    from trainkit.model import build_tokenizer

    recipe = load_recipe(path)
    with torch.device("meta"):
        tok = build_tokenizer(recipe.model)
    assert tok.config.image_size in (32, 64, 256)


def test_overrides_are_typed_and_unknown_keys_list_the_valid_ones():
    recipe = load_recipe(TINY, ["--train.lr", "1e-4", "--data.hflip=false", "--max_steps", "7", "--mixed_precision", "no",
                                "--train.betas", "[0.5, 0.9]", "--model.quantizer.codebook_size", "64"])
    assert recipe.train.lr == pytest.approx(1e-4) and isinstance(recipe.train.lr, float)
    assert recipe.data.hflip is False and recipe.train.max_steps == 7 and recipe.train.betas == (0.5, 0.9)
    assert recipe.model["quantizer"]["codebook_size"] == 64 and recipe.train.mixed_precision == "no"
    with pytest.raises(ValueError, match=r"valid train options: .*\blr\b"):
        load_recipe(TINY, ["--train.learning_rate", "1e-4"])
    with pytest.raises(ValueError, match="section"):
        load_recipe(TINY, ["--optim.lr", "1e-4"])
    with pytest.raises(ValueError, match="an integer"):
        load_recipe(TINY, ["--train.max_steps", "many"])
    with pytest.raises(ValueError, match="one of"):
        load_recipe(TINY, ["--train.optimizer", "sgd"])
    with pytest.raises(ValueError, match="valid model options"):
        load_recipe(TINY, ["--model.codebook_size", "3"])
    with pytest.raises(SystemExit, match="valid loss options"):
        train_script.main(["--config", str(TINY), "--loss.lpips", "1"])


# ---------------------------------------------------------------------------------------------- smoke
@pytest.mark.parametrize(
    "family, extra",
    [
        ("vq-ema-accumulation", ["--model.quantizer.ema_decay", "0.9", "--train.gradient_accumulation_steps", "2",
                                 "--train.ema_decay", "0.9"]),
        ("fsq", ["--model.quantizer", "{type: fsq, levels: [4, 3, 2]}", "--train.grad_clip", "1.0",
                 "--train.optimizer", "adamw", "--train.gradient_checkpointing", "true"]),
        ("lfq-bf16", ["--model.quantizer", "{type: lfq, codebook_dim: 5}", "--train.mixed_precision", "bf16"]),
        ("simvq", ["--model.quantizer", "{type: simvq, codebook_size: 32, codebook_dim: 4}",
                   "--train.lr_schedule", "constant"]),
    ],
)
def test_recipe_family_trains_and_exports_a_loadable_tokenizer(tmp_path, family, extra):
    result = run(tmp_path, *extra)
    assert result.step == 3 and len(result.history) == 3
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    tok = VisTokenizer.from_pretrained(result.output_dir)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert tok(x).reconstruction.shape == (2, 3, 16, 16)
    assert (result.output_dir / "README.md").is_file()
    assert json.loads((result.output_dir / "config.json").read_text())["metadata"]["training"]["steps"] == 3
    assert (result.output_dir / "images" / "reconstructions-00000003.png").is_file()
    assert CheckpointManager(result.output_dir).latest().name == "checkpoint-00000003"


def test_vqgan_with_lpips_and_discriminator_trains(tmp_path, vgg_weights):
    result = run(
        tmp_path,
        "--model", "{image_size: 32, net: {type: vqgan, base_channels: 8, channel_multiplier: [1, 2], "
        "num_res_blocks: 1, latent_channels: 8, norm_groups: 4}, quantizer: {type: vq, codebook_size: 32, "
        "codebook_dim: 4}}",
        "--loss.reconstruction", "l1", "--loss.perceptual_weight", "1.0", "--loss.perceptual_weights",
        str(vgg_weights), "--loss.adversarial_weight", "0.8", "--loss.adversarial_start", "1",
        "--loss.discriminator", "{base_channels: 8, num_layers: 2}", "--train.betas", "[0.5, 0.9]",
        "--output.tracker", "tensorboard", "--train.max_steps", "2",
    )
    first, later = result.history[0], result.history[-1]
    assert "discriminator_loss" not in first and "perceptual_loss" in first
    assert {"discriminator_loss", "generator_adversarial_loss", "adaptive_weight"} <= set(later)
    assert list((result.output_dir / "logs").rglob("events.out.tfevents.*"))
    assert VisTokenizer.from_pretrained(result.output_dir).config.net["type"] == "vqgan"


def test_push_to_hub_uploads_the_exported_folder_without_checkpoints(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id)))

    def upload_folder(self, repo_id, folder_path, ignore_patterns, **kwargs):
        calls.append(("upload", repo_id, sorted(os.listdir(folder_path)), ignore_patterns))

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    run(tmp_path, "--push_to_hub", "someone/tiny-vq", "--train.max_steps", "1")
    assert calls[0] == ("create", "someone/tiny-vq")
    _, repo, files, ignored = calls[1]
    assert repo == "someone/tiny-vq" and {"config.json", "model.safetensors", "README.md"} <= set(files)
    assert "checkpoints/*" in ignored


def test_streaming_local_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "images" / "train"
    folder.mkdir(parents=True)
    for i in range(12):
        Image.new("RGB", (40, 30), (20 * i, 100, 200)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    result = run(tmp_path, "--data.dataset", str(tmp_path / "images"), "--data.streaming", "true",
                 "--train.max_steps", "4")
    assert result.step == 4 and result.history[-1]["samples_skipped"] >= 1


def test_nan_loss_stops_naming_step_and_term_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    from vistok.losses import TokenizerLoss

    original = TokenizerLoss.generator_loss

    def poisoned(self, pixel_values, output, step, *args, **kwargs):
        result = original(self, pixel_values, output, step, *args, **kwargs)
        if step == 2:
            result.terms["reconstruction_loss"] = torch.tensor(float("nan"))
        return result

    monkeypatch.setattr(TokenizerLoss, "generator_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 3: reconstruction_loss = nan.*checkpoint-00000002"):
        run(tmp_path, "--train.max_steps", "4", "--output.checkpoint_every", "2")
    manager = CheckpointManager(tmp_path / "run")
    assert [step for step, _ in manager.checkpoints()] == [2]
    assert not (tmp_path / "run" / "model.safetensors").exists()


# ------------------------------------------------------------------------------- resume and crash safety
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {training!r})
    import accelerate
    original = accelerate.Accelerator.save_state

    def save_state_then_die(self, output_dir=None, **kwargs):
        location = original(self, output_dir, **kwargs)
        if output_dir.endswith("{kill_at}"):
            os.kill(os.getpid(), signal.SIGKILL)  # mid-checkpoint: state written, not yet complete or renamed
        return location

    accelerate.Accelerator.save_state = save_state_then_die
    import importlib.util
    spec = importlib.util.spec_from_file_location("train", {script!r})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(sys.argv[1:])
    """
)

RESUME_ARGS = [
    "--train.max_steps", "4", "--model.quantizer.ema_decay", "0.9", "--train.ema_decay", "0.9",
    "--model.image_size", "32", "--loss.adversarial_weight", "0.5", "--loss.adversarial_start", "1",
    "--loss.discriminator", "{base_channels: 8, num_layers: 2}", "--train.grad_clip", "1.0",
    "--train.deterministic", "true",
]


def test_kill_during_checkpoint_then_resume_matches_an_uninterrupted_run(tmp_path):
    straight = run(tmp_path, *RESUME_ARGS, name="straight")

    killer = tmp_path / "killer.py"
    killer.write_text(KILLER.format(training=str(TRAINING), script=str(TRAINING / "train.py"),
                                    kill_at="checkpoint-00000004"))
    interrupted = tmp_path / "interrupted"
    command = [sys.executable, str(killer), *FAST, "--output_dir", str(interrupted), *RESUME_ARGS,
               "--output.checkpoint_every", "2"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert proc.returncode == -9, proc.stderr[-3000:]

    # The write in progress is not a checkpoint; the previous one is complete and loadable.
    manager = CheckpointManager(interrupted)
    assert [step for step, _ in manager.checkpoints()] == [2]
    assert manager.temporary_path_for(4).is_dir()
    assert read_state(manager.latest())["step"] == 2
    saved = VisTokenizer.from_pretrained(manager.latest() / "tokenizer")
    with torch.no_grad():
        assert saved(torch.rand(1, 3, 32, 32) * 2 - 1).reconstruction.shape == (1, 3, 32, 32)

    resumed = run(tmp_path, *RESUME_ARGS, "--output.checkpoint_every", "2", "--resume", "latest",
                  name="interrupted")
    assert resumed.step == 4 and not manager.temporary_path_for(4).exists()
    expected, actual = weights(straight.output_dir), weights(resumed.output_dir)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert [step for step, _ in manager.checkpoints()] == [2, 4]
    # the history is part of the checkpoint: every record, the ones logged before the kill included
    history = json.loads((interrupted / "training_history.json").read_text())
    assert [r["step"] for r in history] == [1, 2, 3, 4]
    for record, straight_record in zip(history, straight.history, strict=True):
        assert {k: v for k, v in record.items() if k != "steps_per_second"} == \
            {k: v for k, v in straight_record.items() if k != "steps_per_second"}


def test_two_processes_keep_identical_codebooks_and_weights(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(
        f"""
        import importlib.util
        import os
        import sys

        import torch
        spec = importlib.util.spec_from_file_location("train", {str(TRAINING / "train.py")!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = module.main(sys.argv[1:])
        rank = int(os.environ.get("RANK", "0"))  # accelerate's end_training has closed the process group
        state = {{k: v.detach().cpu() for k, v in result.tokenizer.state_dict().items()}}
        torch.save(state, {str(tmp_path)!r} + f"/rank{{rank}}.pt")
        """
    ))
    command = [
        # On a CPU-only machine accelerate's multi-process launcher is `--multi_gpu` (torchrun); its `--cpu` flag
        # alone starts a single process unless an MPI hostfile is given.
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", str(driver), *FAST,
        "--output_dir", str(tmp_path / "ddp"), "--model.quantizer.ema_decay", "0.9", "--train.max_steps", "3",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    cluster_size = rank0["quantizer.ema_cluster_size"]
    assert not torch.allclose(cluster_size, torch.ones_like(cluster_size)), "the EMA statistics never moved"


# ------------------------------------------------------------------------------------------------ loss
@pytest.mark.slow
def test_tiny_recipe_lowers_the_reconstruction_loss(tmp_path):
    result = train_script.main(["--config", str(TINY), "--output_dir", str(tmp_path / "tiny"),
                                "--train.max_steps", "300", "--output.tracker", "none",
                                "--output.progress_bar", "false"])
    first, last = result.history[0]["reconstruction_loss"], result.history[-1]["reconstruction_loss"]
    assert last < 0.5 * first, (first, last)


# --------------------------------------------------------------------------------- quantizer loss weights
# The expected losses are written from the upstream code, not from vistok:
# - Taming, taming/modules/vqvae/quantize.py, VectorQuantizer2(beta=0.25, legacy=True) (its released VQGANs):
#   loss = mean((z_q.detach() − z)²) + β · mean((z_q − z.detach())²), β = 0.25 — β on the codebook term.
# - LlamaGen, tokenizer/tokenizer_image/vq_model.py VectorQuantizer with vq_train.py's defaults (codebook_l2_norm,
#   commit_loss_beta 0.25, entropy_loss_ratio 0): z and the codebook l2-normalised, then
#   vq_loss = mean((z_q − z.detach())²) + commit_loss = β · mean((z_q.detach() − z)²).
# The loss *values* of the two terms are equal, so only the gradients tell the weights apart: the test compares
# the gradients reaching the encoder output and the codebook.
def _upstream_loss(z: torch.Tensor, codebook: torch.Tensor, family: str) -> torch.Tensor:
    if family == "llamagen":
        z, codebook = torch.nn.functional.normalize(z, dim=-1), torch.nn.functional.normalize(codebook, dim=-1)
    distances = (z.detach()[:, None, :] - codebook.detach()[None, :, :]).pow(2).sum(-1)
    z_q = codebook[distances.argmin(dim=1)]
    beta = 0.25
    if family == "taming":
        return torch.mean((z_q.detach() - z) ** 2) + beta * torch.mean((z_q - z.detach()) ** 2)
    return torch.mean((z_q - z.detach()) ** 2) + beta * torch.mean((z_q.detach() - z) ** 2)


def _gradients(spec: dict, family: str) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(d loss / d z, d loss / d codebook) of vistok's quantizer built from ``spec`` and of the upstream formula."""
    from vistok.registry import QUANTIZERS

    options = {k: v for k, v in spec.items() if k != "type"}
    quantizer = QUANTIZERS.get(spec["type"])(**options).train()
    generator = torch.Generator().manual_seed(0)
    dim = quantizer.codebook_dim
    codebook = torch.randn(quantizer.codebook_size, dim, generator=generator)
    grid = torch.randn(2, dim, 4, 4, generator=generator)
    with torch.no_grad():
        quantizer.codebook.copy_(codebook)
    grid.requires_grad_(True)
    out = quantizer(grid)
    sum(out.losses.values()).backward()
    ours = (grid.grad.permute(0, 2, 3, 1).reshape(-1, dim), quantizer.codebook.grad)

    z = grid.detach().permute(0, 2, 3, 1).reshape(-1, dim).requires_grad_(True)
    upstream_codebook = codebook.clone().requires_grad_(True)
    _upstream_loss(z, upstream_codebook, family).backward()
    assert upstream_codebook.grad.abs().sum() > 0 and z.grad.abs().sum() > 0
    return ours, (z.grad, upstream_codebook.grad)


def _assert_upstream_gradients(spec: dict, family: str, where: str) -> None:
    (ours_z, ours_codebook), (ref_z, ref_codebook) = _gradients(spec, family)
    torch.testing.assert_close(ours_z, ref_z, rtol=1e-5, atol=1e-8, msg=f"{where}: gradient on the encoder output")
    torch.testing.assert_close(ours_codebook, ref_codebook, rtol=1e-5, atol=1e-8, msg=f"{where}: codebook gradient")


def _taming_layout(tok: VisTokenizer) -> dict[str, torch.Tensor]:
    """A vistok vqgan state dict renamed into Taming's checkpoint layout (the inverse of the converter's map)."""
    levels = len(tok.config.net["channel_multiplier"])
    mid = {"0": "block_1", "1": "attn_1", "2": "block_2"}
    out = {}
    for key, value in tok.state_dict().items():
        if key == "quantizer.codebook":
            key = "quantize.embedding.weight"
        elif m := re.match(r"^(encoder|decoder)\.conv_blocks\.(\d+)\.(res|attn|downsample|upsample)\.(.*)$", key):
            part, level = m.group(1), int(m.group(2))
            kind = "block" if m.group(3) == "res" else m.group(3)
            group = "down" if part == "encoder" else "up"
            level = level if part == "encoder" else levels - 1 - level
            key = f"{part}.{group}.{level}.{kind}.{m.group(4)}"
        elif m := re.match(r"^(encoder|decoder)\.mid\.(\d)\.(.*)$", key):
            key = f"{m.group(1)}.mid.{mid[m.group(2)]}.{m.group(3)}"
        out[key] = value
    return out


def _recipe_and_preset_quantizers(recipe_file: str, presets: tuple[str, ...]) -> dict[str, dict]:
    """The full quantizer spec an ImageNet-256 recipe builds and each named preset's, keyed by where it came from."""
    from trainkit.model import build_tokenizer

    from vistok.registry import PRESETS, QUANTIZERS, normalize_spec

    recipe = load_recipe(TRAINING / "configs" / "imagenet256" / recipe_file)
    with torch.device("meta"):
        sources = {f"recipe {recipe_file}": build_tokenizer(recipe.model).config.quantizer}
    for name in presets:
        sources[f"preset {name}"] = normalize_spec(QUANTIZERS, PRESETS.get(name).config["quantizer"])
    return sources


def test_taming_quantizer_weights_agree_between_preset_recipe_and_converter_and_match_taming(tmp_path):
    from safetensors.torch import save_file

    from vistok import VisTokenizerConfig
    from vistok.families.taming import convert_taming

    sources = _recipe_and_preset_quantizers("vqgan-taming.yaml", ("vqgan-taming-f16-1024", "vqgan-taming-f16-16384"))

    tiny = VisTokenizer(VisTokenizerConfig(
        image_size=16, net={"type": "vqgan", "base_channels": 32, "channel_multiplier": [1, 1], "num_res_blocks": 1,
                            "latent_channels": 8},
        quantizer={"type": "vq", "codebook_size": 16, "codebook_dim": 4},
    ))
    save_file({k: v.contiguous() for k, v in _taming_layout(tiny).items()}, str(tmp_path / "taming.safetensors"))
    sources["convert_taming"] = convert_taming(tmp_path / "taming.safetensors").config.quantizer

    for where, spec in sources.items():
        assert (spec["commitment_weight"], spec["codebook_weight"]) == (1.0, 0.25), where
        assert spec["l2_norm"] is False and spec["ema_decay"] is None, where
        _assert_upstream_gradients({**spec, "codebook_size": 64, "codebook_dim": 8}, "taming", where)


def test_llamagen_quantizer_weights_agree_between_preset_recipe_and_converter_and_match_llamagen():
    from vistok.families.llamagen import convert_llamagen

    sources = _recipe_and_preset_quantizers("vqgan-llamagen.yaml", ("vqgan-llamagen-vq16", "vqgan-llamagen-vq8"))
    # tests/data/llamagen_tiny.pt stores no commit_loss_beta / entropy_loss_ratio: LlamaGen's defaults apply.
    sources["convert_llamagen"] = convert_llamagen(ROOT / "tests" / "data" / "llamagen_tiny.pt").config.quantizer

    for where, spec in sources.items():
        assert (spec["commitment_weight"], spec["codebook_weight"], spec["entropy_weight"]) == (0.25, 1.0, 0.0), where
        assert spec["l2_norm"] is True and spec["ema_decay"] is None, where
        _assert_upstream_gradients({**spec, "codebook_size": 64}, "llamagen", where)


# ------------------------------------------------------------------------------------------ output folder
def _previous_run(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A finished two-step run (checkpoints, images, history, exported model), plus a file of the user's."""
    folder = run(tmp_path, "--train.max_steps", "2", "--output.image_every", "1", "--output.checkpoint_every", "1",
                 name="run").output_dir
    (folder / "notes.txt").write_text("kept")
    return folder, _snapshot(folder)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_non_empty_output_folder_is_refused_without_resume_or_overwrite(tmp_path):
    from trainkit.output_dir import OutputDirNotEmptyError, check_output_dir

    folder, before = _previous_run(tmp_path)
    with pytest.raises(SystemExit) as refused:
        run(tmp_path)
    message = str(refused.value.code)
    assert str(folder) in message and "--resume latest" in message and "--overwrite_output_dir" in message
    assert _snapshot(folder) == before  # refused before anything was written
    with pytest.raises(SystemExit, match="contradict"):
        run(tmp_path, "--resume", "latest", "--overwrite_output_dir")
    assert _snapshot(folder) == before

    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", resume=None, overwrite=False)  # an empty folder is fine
    check_output_dir(tmp_path / "absent", resume=None, overwrite=False)
    check_output_dir(folder, resume="latest", overwrite=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputDirNotEmptyError, match="is a file"):
        check_output_dir(tmp_path / "file", resume=None, overwrite=True)
    # a run from before .vistok_run.json existed is recognised by its complete checkpoints: it may be resumed only
    earlier = tmp_path / "earlier" / "checkpoints" / "checkpoint-00000040"
    earlier.mkdir(parents=True)
    (earlier / "training_state.json").write_text(json.dumps({"step": 40}))
    check_output_dir(tmp_path / "earlier", resume="latest", overwrite=False)
    with pytest.raises(OutputDirNotEmptyError, match=r"\.vistok_run\.json"):
        check_output_dir(tmp_path / "earlier", resume=None, overwrite=True)


def test_overwrite_output_dir_replaces_the_previous_run_and_its_checkpoints(tmp_path):
    folder, before = _previous_run(tmp_path)
    assert {"images/reconstructions-00000002.png", "training_history.json", "model.safetensors"} <= set(before)
    result = run(tmp_path, "--overwrite_output_dir", "--train.max_steps", "1", "--output.image_every", "1")
    assert result.step == 1
    assert [step for step, _ in CheckpointManager(folder).checkpoints()] == [1]  # the 2-step one is gone
    assert not (folder / "images" / "reconstructions-00000002.png").exists()
    assert (folder / "notes.txt").read_text() == "kept"  # not a run artefact: left alone
    assert VisTokenizer.from_pretrained(folder).config.metadata["training"]["steps"] == 1
    recorded = json.loads((folder / ".vistok_run.json").read_text())["files"]
    assert {"checkpoints", "images", "model.safetensors", "config.json", "README.md"} <= set(recorded)
    assert "notes.txt" not in recorded


# --------------------------------------------------------------------------------- command-line mistakes
@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--model.quantizer.codebook_sz", "64"],
         r"Unknown option\(s\) \['codebook_sz'\] \(did you mean 'codebook_size'.*\) for quantizer 'vq'; "
         r"valid options: codebook_size, codebook_dim, l2_norm"),
        (["--model.net.hiden_channels", "8"],
         r"did you mean 'hidden_channels'\?\) for net 'simple_cnn'; valid options: hidden_channels"),
        (["--preset", "vqvae-celeba64-vq-d5"],
         r"'vqvae-celeba64-vq-d5' is not a folder, bundled tokenizer, zoo entry, preset or Hub repo id 'org/name'; "
         r"did you mean 'vqvae-celeba64-vq-d4'"),
        (["--model.quantizer.codebook_size", "-3"], r"model: quantizer option 'codebook_size' must be > 0, got -3"),
        (["--dataset", "MISSING"],
         r"'MISSING' does not exist\. Accepted datasets: `samples`.*`celeba64`, `imagenet256`.*Hub dataset id.*"
         r"local image folder"),
    ],
    ids=["quantizer-option", "net-option", "preset", "value", "dataset-folder"],
)
def test_command_line_mistakes_stop_with_a_message_before_anything_starts(tmp_path, argv, expected):
    missing = str(tmp_path / "no_such_images")
    argv = [missing if a == "MISSING" else a for a in argv]
    output = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        train_script.main(["--config", str(TINY), "--output_dir", str(output), *argv])
    message = stopped.value.code
    assert isinstance(message, str) and message.startswith("train.py: "), message  # exit status 1, no traceback
    assert re.search(expected.replace("MISSING", re.escape(missing)), message), message
    assert not output.exists()


def test_the_train_script_prints_the_message_and_no_traceback(tmp_path):
    command = [sys.executable, str(TRAINING / "train.py"), "--config", str(TINY), "--output_dir", str(tmp_path / "out"),
               "--model.quantizer.codebook_sz", "64"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "did you mean 'codebook_size'" in proc.stderr, proc.stderr[-3000:]


def test_activation_checkpointing_uses_the_older_name_before_transformers_5_23():
    class OlderTransformersModel:  # transformers < 5.23: only gradient_checkpointing_enable exists
        def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
            self.kwargs = gradient_checkpointing_kwargs

    model = OlderTransformersModel()
    enable_activation_checkpointing(model)
    assert model.kwargs == {"use_reentrant": False}


# ------------------------------------------------------------------------------- Open-MAGVIT2 recipe (issue 12)
MAGVIT2_RECIPE = TRAINING / "configs" / "imagenet256" / "lfqgan-magvit2.yaml"


def test_open_magvit2_recipe_carries_upstreams_loss_and_optimiser_settings():
    from trainkit.model import build_tokenizer

    from vistok.registry import PRESETS

    recipe = load_recipe(MAGVIT2_RECIPE)
    with torch.device("meta"):
        tok = build_tokenizer(recipe.model)
    preset = PRESETS.get("lfqgan-magvit2-imagenet256-L").config
    assert tok.config.net["type"] == "magvit2" and tok.config.quantizer["codebook_dim"] == 18
    assert {k: tok.config.quantizer[k] for k in preset["quantizer"]} == preset["quantizer"]
    # SEED-Voken configs/Open-MAGVIT2/gpu/imagenet_lfqgan_256_L.yaml: codebook_weight 0.1 (the LFQ entropy loss),
    # commit_weight 0.25, gen_loss_weight 0.1 (fixed: no adaptive weight), lecam_loss_weight 0.05, disc_start 0,
    # codebook_enlarge_ratio 0, hinge discriminator loss, non-saturating generator loss on per-image mean logits,
    # learning_rate 1e-4 with Adam betas (0.5, 0.9), batch 8 x 32 GPUs, use_ema (LitEma decay 0.999)
    quantizer, loss, train = tok.config.quantizer, recipe.loss, recipe.train
    assert (quantizer["entropy_weight"], quantizer["commitment_weight"], quantizer["entropy_temperature"]) == (0.1, 0.25, 0.01)
    assert (loss.reconstruction, loss.perceptual_weight, loss.adversarial_weight, loss.adaptive_weight) == ("l1", 1.0, 0.1, False)
    assert (loss.lecam_weight, loss.lecam_decay, loss.adversarial_start, loss.entropy_boost) == (0.05, 0.999, 0, 0.0)
    assert (loss.discriminator_loss, loss.generator_loss) == ("hinge", "non_saturating_per_image")
    assert loss.discriminator == {"base_channels": 64, "num_layers": 3, "norm": "batch"}
    assert (train.lr, train.betas, train.batch_size, train.ema_decay, train.lr_schedule) == (1e-4, (0.5, 0.9), 256, 0.999, "constant")
    assert train.max_steps == 270 * -(-1_281_167 // 256)  # 270 epochs of 5,005 steps (ImageNet-1k train)


def test_open_magvit2_recipe_trains_a_tiny_magvit2_lfq_tokenizer_with_lecam(tmp_path, vgg_weights):
    result = train_script.main([
        "--config", str(MAGVIT2_RECIPE), "--dataset", "samples", "--data.streaming", "false", "--data.num_workers", "0",
        "--data.num_samples", "8", "--model.image_size", "16",
        "--model.net", "{type: magvit2, base_channels: 8, channel_multiplier: [1, 2], num_res_blocks: 1, "
        "latent_channels: 6, norm_groups: 4}",
        "--model.quantizer.codebook_dim", "6",
        "--loss.perceptual_weights", str(vgg_weights), "--loss.discriminator", "{base_channels: 8, num_layers: 2}",
        "--train.batch_size", "4", "--train.max_steps", "3", "--output_dir", str(tmp_path / "run"),
        "--output.log_every", "1", "--output.image_every", "100", "--output.checkpoint_every", "100",
        "--output.num_images", "2", "--output.tracker", "none", "--output.progress_bar", "false",
    ])
    assert result.step == 3
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    for record in result.history:  # the discriminator and LeCam are on from step 0
        assert {"perceptual_loss", "entropy_loss", "commitment_loss", "generator_adversarial_loss",
                "discriminator_loss", "lecam_loss"} <= set(record)
        assert record["adaptive_weight"] == 1.0
    # the LeCam anchors are part of the discriminator's checkpointed state, moved off their start value of 0
    disc_state = load_file(str(CheckpointManager(result.output_dir).latest() / "model_1.safetensors"))
    assert disc_state["lecam.real"].item() != 0.0 and disc_state["lecam.fake"].item() != 0.0
    tok = VisTokenizer.from_pretrained(result.output_dir)
    assert tok.config.net["type"] == "magvit2" and tok.config.quantizer["bit_order"] == "lsb_first"
    with torch.no_grad():
        assert tok(torch.rand(2, 3, 16, 16) * 2 - 1).indices.max() < 2**6


# ------------------------------------------------------------------------------------- issues 25 and 26
HF_CLI = Path(sys.executable).with_name("hf")


def test_push_to_hub_without_network_keeps_the_model_and_says_how_to_upload_it_later(tmp_path, hub_reachable_but_watched):
    with pytest.raises(SystemExit) as stopped:
        run(tmp_path, "--push_to_hub", "someone/tiny-vq", "--train.max_steps", "1")
    folder = tmp_path / "run"
    message = stopped.value.code
    assert isinstance(message, str) and message.startswith("train.py: ") and "\n" not in message, message
    assert hub_reachable_but_watched, "the upload never tried the network"
    assert f"saved in {folder}" in message and "unreachable" in message, message
    assert VisTokenizer.from_pretrained(folder).config.metadata["training"]["steps"] == 1  # the model is kept

    # The `hf upload` command for later uploads what the push would have: the exported tokenizer, no training state.
    from huggingface_hub.utils import filter_repo_objects

    command = shlex.split(message.split("run `", 1)[1].split("`", 1)[0])
    assert command[:4] == ["hf", "upload", "someone/tiny-vq", str(folder)], command
    excluded = [command[i + 1] for i, arg in enumerate(command) if arg == "--exclude"]
    files = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
    uploaded = set(filter_repo_objects(files, ignore_patterns=excluded))
    assert {"config.json", "model.safetensors", "README.md"} <= uploaded
    assert not {f for f in uploaded if f.startswith(("checkpoints/", "images/", "."))}, uploaded
    assert "training_history.json" not in uploaded and "recipe.yaml" not in uploaded
    # ... and the `hf` command line accepts it (offline, it stops at the network, not at its options)
    proc = subprocess.run([str(HF_CLI), *command[1:]], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1 and "offline" in proc.stderr + proc.stdout, proc.stderr[-2000:]


def test_resume_keeps_every_logged_record_in_the_history(tmp_path):
    constant = ["--train.lr_schedule", "constant", "--train.max_steps"]
    straight = run(tmp_path, *constant, "4", name="straight")
    run(tmp_path, *constant, "2", name="resumed")
    resumed = run(tmp_path, *constant, "4", "--resume", "latest", name="resumed")
    written = json.loads((resumed.output_dir / "training_history.json").read_text())
    assert [r["step"] for r in written] == [1, 2, 3, 4] == [r["step"] for r in resumed.history]
    for expected, actual in zip(straight.history, written, strict=True):
        expected, actual = dict(expected), dict(actual)
        expected.pop("steps_per_second"), actual.pop("steps_per_second")
        assert expected == actual


def test_ctrl_c_prints_what_was_kept_and_the_resume_command_and_exits_130(tmp_path):
    output = tmp_path / "run"
    command = [sys.executable, str(TRAINING / "train.py"), *FAST, "--output_dir", str(output),
               "--train.max_steps", "100000", "--output.checkpoint_every", "1"]
    # its own session, like a terminal's foreground job: Ctrl-C signals the whole process group
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    try:
        # any complete checkpoint: with one per step, older ones are pruned faster than a poll may see them
        checkpoints = CheckpointManager(output)
        deadline = time.monotonic() + 300
        while checkpoints.latest() is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if checkpoints.latest() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"no checkpoint was written: {proc.communicate(timeout=60)[1][-3000:]}")
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    message = stderr.strip().splitlines()[-1]
    latest = CheckpointManager(output).latest()
    assert message.startswith("train.py: interrupted") and str(latest) in message, message

    # the printed command resumes from that checkpoint (here with a nearer end)
    resume = shlex.split(message.split("continue with: ", 1)[1])
    assert "--resume" in resume and "--overwrite_output_dir" not in resume
    step = read_state(latest)["step"]
    proc = subprocess.run([sys.executable if resume[0] == "python" else resume[0], *resume[1:],
                           "--train.max_steps", str(step + 1)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resumed from {latest} at step {step}" in proc.stderr
    history = json.loads((output / "training_history.json").read_text())
    assert [r["step"] for r in history] == list(range(1, step + 2))


def _home_like_folder(folder: Path) -> dict[str, bytes]:
    """A folder of someone's own files whose names a training run also uses."""
    for name in ("images/holiday.png", "logs/app.log", "checkpoints/notes.txt", "README.md", "config.json",
                 "model.safetensors", "recipe.yaml", ".bashrc", "Documents/thesis.tex"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"the user's {name}")
    return _snapshot(folder)


@pytest.mark.parametrize("flag", [["--overwrite_output_dir"], ["--resume", "latest"], []])
def test_a_folder_vistok_did_not_write_is_never_overwritten(tmp_path, flag):
    folder = tmp_path / "run"
    before = _home_like_folder(folder)
    with pytest.raises(SystemExit) as refused:
        run(tmp_path, *flag, "--train.max_steps", "1")
    message = str(refused.value.code)
    assert str(folder) in message and ".vistok_run.json" in message, message
    assert "--overwrite_output_dir to replace" not in message
    assert _snapshot(folder) == before


class _Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('the payload ran')",)


@pytest.mark.parametrize("tamper", ["foreign-checkpoint", "planted-custom-state", "replaced-rng-state"])
def test_resume_refuses_pickles_vistok_did_not_write_without_running_them(tmp_path, tamper):
    checkpoint = CheckpointManager(run(tmp_path, "--train.max_steps", "2", name="source").output_dir).latest()
    marker = tmp_path / "payload-ran"
    if tamper == "foreign-checkpoint":  # another script's accelerate checkpoint (or a hand-made one)
        state = read_state(checkpoint)
        state.pop("format", None)
        (checkpoint / "training_state.json").write_text(json.dumps(state))
        torch.save(_Payload(marker), checkpoint / "custom_checkpoint_0.pkl")
    elif tamper == "planted-custom-state":  # accelerate unpickles custom_checkpoint_*.pkl in full
        torch.save(_Payload(marker), checkpoint / "custom_checkpoint_0.pkl")
    else:
        with open(checkpoint / "random_states_0.pkl", "wb") as handle:
            pickle.dump(_Payload(marker), handle)
    with pytest.raises(SystemExit) as refused:
        run(tmp_path, "--train.max_steps", "3", "--resume", str(checkpoint), name="resumed")
    assert not marker.exists(), "the checkpoint's payload ran"
    message = str(refused.value.code)
    assert message.startswith("train.py: ") and str(checkpoint) in message and "--trust_checkpoint" in message, message
    assert not (tmp_path / "resumed").exists()  # refused before anything was written


def test_trust_checkpoint_resumes_a_checkpoint_of_vistok_before_its_own_format(tmp_path):
    args = ["--train.lr_schedule", "constant", "--train.ema_decay", "0.9"]
    straight = run(tmp_path, *args, "--train.max_steps", "4", name="straight")
    checkpoint = CheckpointManager(run(tmp_path, *args, "--train.max_steps", "2", name="earlier").output_dir).latest()
    # Earlier vistok kept the progress and the EMA as accelerate custom states (pickles), with no format entry.
    state = read_state(checkpoint)
    torch.save(state.pop("progress"), checkpoint / "custom_checkpoint_0.pkl")
    torch.save(load_file(str(checkpoint / "ema.safetensors")), checkpoint / "custom_checkpoint_1.pkl")
    for name in ("ema.safetensors", "training_history.json"):
        (checkpoint / name).unlink()
    del state["format"], state["ema"]
    (checkpoint / "training_state.json").write_text(json.dumps(state))

    with pytest.raises(SystemExit, match="--trust_checkpoint"):
        run(tmp_path, *args, "--train.max_steps", "4", "--resume", str(checkpoint), name="resumed")
    resumed = run(tmp_path, *args, "--train.max_steps", "4", "--resume", str(checkpoint), "--trust_checkpoint",
                  name="resumed")
    assert resumed.step == 4
    expected, actual = weights(straight.output_dir), weights(resumed.output_dir)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    latest = CheckpointManager(resumed.output_dir).latest()  # its own checkpoints are in vistok's format
    assert read_state(latest)["format"] and not list(latest.glob("custom_checkpoint_*"))


def test_an_unknown_or_abbreviated_flag_is_named_with_the_closest_options(tmp_path):
    with pytest.raises(SystemExit, match=r"unknown option --overwrite; did you mean --overwrite-output-dir"):
        run(tmp_path, "--overwrite")
    result = run(tmp_path, "--model", json.dumps({"preset": None, "image_size": 16, "net": {"type": "simple_cnn",
                 "hidden_channels": 16}, "quantizer": {"type": "vq", "codebook_size": 32, "codebook_dim": 4}}),
                 "--train.max_steps", "1", name="whole-section")  # fmt: skip
    assert result.output_dir.is_dir()
