"""Child processes for the two parents drip runs (`drip worker`'s pool and `drip dev`):
start them so they die with their parent, stop them gracefully, then for sure.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping

_PR_SET_PDEATHSIG = 1
_SIG_IGN = 1  # the C library's SIG_IGN, for signal(2) called before exec


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the parent dies, even by SIGKILL (Linux only); and ignore
    SIGINT until the child installs its own handler. A terminal's Ctrl-C reaches the whole process group: a
    child still importing would die of it with a KeyboardInterrupt traceback, while its parent is about to
    stop it in order with SIGTERM anyway."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.signal(signal.SIGINT, _SIG_IGN)
    if sys.platform.startswith("linux"):
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def python_module(*args: str) -> list[str]:
    """argv running `python -m <args>` with this interpreter."""
    return [sys.executable, "-m", *args]


def spawn(argv: list[str], env: Mapping[str, str] | None = None, **popen: object) -> subprocess.Popen:
    """Start a child process that cannot outlive this one."""
    return subprocess.Popen(argv, env=dict(env or os.environ), preexec_fn=_die_with_parent, **popen)


def stop_all(children: Iterable[subprocess.Popen], grace_s: float) -> None:
    """SIGTERM every live child, wait up to `grace_s`, then SIGKILL what is left."""
    children = [c for c in children if c.poll() is None]
    for child in children:
        _signal(child, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(child, signal.SIGKILL)
            child.wait()


def _signal(child: subprocess.Popen, sig: int) -> None:
    try:
        child.send_signal(sig)
    except ProcessLookupError:
        pass
