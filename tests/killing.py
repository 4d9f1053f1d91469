"""Kill a child process at a chosen point of its work, for real: the child runs a Python snippet in which one
function is replaced by a wrapper that, at its n-th matching call, creates a file and then waits forever; the test
waits for that file and sends SIGKILL. Nothing raises an exception the test expects: the child just dies there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAUSE = textwrap.dedent(
    """
    import functools, importlib, os, sys, time
    from pathlib import Path

    def pause_at(target, call, reached, where=None):
        '''Replace ``module:attr[.attr]`` by a wrapper that, at its ``call``-th call for which ``where(*args)``
        holds, creates the file ``reached`` and never returns.'''
        module_name, _, path = target.partition(":")
        owner = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        original = getattr(owner, name)
        count = [0]

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if where is None or where(*args, **kwargs):
                count[0] += 1
                if count[0] == call:
                    Path(reached).write_text(str(os.getpid()))
                    while True:
                        time.sleep(1)
            return original(*args, **kwargs)

        setattr(owner, name, wrapper)
    """
)


def kill_when_reached(code: str, reached: Path, *, env: dict[str, str] | None = None, timeout: float = 180) -> bool:
    """Run ``PAUSE + code`` in a child Python (cwd: the repository), SIGKILL it as soon as it creates ``reached``.
    Returns True when it was killed there, False when it finished without reaching the point (its output must then
    show success: a failing child raises ``AssertionError`` with its stderr)."""
    child = subprocess.Popen(
        [sys.executable, "-c", PAUSE + textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while not reached.exists():
        if child.poll() is not None:
            _, err = child.communicate()
            assert child.returncode == 0, f"the child failed before the chosen point:\n{err[-3000:]}"
            return False
        if time.monotonic() > deadline:
            child.kill()
            child.communicate()
            raise AssertionError(f"the child neither reached {reached.name} nor finished in {timeout} s")
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL
    return True
