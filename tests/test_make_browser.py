"""``make browser`` / ``make test``: Chromium really gets installed as root, and CI fails (not skips) without it.

``make browser`` is run for real against a PATH of stand-ins (``id``, ``apt-get``, ``sudo``) that record how they
were called, so nothing is installed and no network is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import test_space_browser

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="needs GNU make")


def _stand_in(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _run_make_browser(
    tmp_path: Path, uid: int, apt_status: int = 0
) -> tuple[subprocess.CompletedProcess, list]:
    """``make browser`` with no chromium on PATH; returns make's result and one line per apt-get call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt-calls"
    _stand_in(bin_dir, "id", f"echo {uid}\n")
    # apt-get records the DEBIAN_FRONTEND it sees and its arguments.
    _stand_in(
        bin_dir,
        "apt-get",
        f'echo "DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-unset}} $*" >> {log}\nexit {apt_status}\n',
    )
    _stand_in(bin_dir, "sudo", f'echo "sudo $*" >> {log}\nexec "$@"\n')
    os.symlink(shutil.which("env"), bin_dir / "env")
    result = subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), "browser"],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def test_make_browser_as_root_runs_apt_get_install_noninteractive(tmp_path):
    result, calls = _run_make_browser(tmp_path, uid=0)
    assert result.returncode == 0, result.stderr
    assert "not found" not in result.stderr and "warning" not in result.stderr, result.stderr
    assert calls == [
        "DEBIAN_FRONTEND=unset update -qq",
        "DEBIAN_FRONTEND=noninteractive install -y -qq chromium",
    ], calls


def test_make_browser_as_user_goes_through_sudo(tmp_path):
    result, calls = _run_make_browser(tmp_path, uid=1000)
    assert result.returncode == 0, result.stderr
    assert calls == [
        "sudo apt-get update -qq",
        "DEBIAN_FRONTEND=unset update -qq",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
        "DEBIAN_FRONTEND=noninteractive install -y -qq chromium",
    ], calls


def test_make_browser_warns_when_apt_get_fails(tmp_path):
    result, _ = _run_make_browser(tmp_path, uid=0, apt_status=100)
    assert "warning: could not install chromium" in result.stderr
    assert "VISTOK_REQUIRE_BROWSER" in result.stderr


def _make_env_value(extra_args: list[str], tmp_path: Path) -> str:
    """VISTOK_REQUIRE_BROWSER as the recipes of the Makefile (``make test``'s pytest among them) see it."""
    probe = tmp_path / "probe.mk"
    probe.write_text('print-require-browser:\n\t@echo "[$$VISTOK_REQUIRE_BROWSER]"\n')
    env = {k: v for k, v in os.environ.items() if k != "VISTOK_REQUIRE_BROWSER"}
    result = subprocess.run(
        [
            MAKE,
            "--no-print-directory",
            "-C",
            str(ROOT),
            "-f",
            "Makefile",
            "-f",
            str(probe),
            "print-require-browser",
            *extra_args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_make_exports_require_browser_to_its_recipes(tmp_path):
    assert _make_env_value([], tmp_path) == "[1]"
    assert _make_env_value(["VISTOK_REQUIRE_BROWSER=0"], tmp_path) == "[0]"


def test_make_test_runs_pytest_under_make_browser():
    result = subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), "-n", "-W", "pyproject.toml", "test"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    install = next(i for i, line in enumerate(lines) if "apt-get install" in line)
    pytest_run = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    assert install < pytest_run, result.stdout


@pytest.mark.parametrize(
    ("value", "outcome"),
    [(None, pytest.skip.Exception), ("0", pytest.skip.Exception), ("1", pytest.fail.Exception)],
)
def test_missing_chromium_skips_locally_and_fails_when_required(monkeypatch, tmp_path, value, outcome):
    monkeypatch.setattr(test_space_browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    if value is None:
        monkeypatch.delenv("VISTOK_REQUIRE_BROWSER", raising=False)
    else:
        monkeypatch.setenv("VISTOK_REQUIRE_BROWSER", value)
    with pytest.raises(outcome, match="Chromium is not installed"):
        test_space_browser.chromium_and_playwright()
