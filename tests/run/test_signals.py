"""Stopping on SIGTERM never deadlocks, even when the signal lands while the stop event's lock is held."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# The child takes the lock Event.set() needs (as Event.wait does around its sleep), signals itself,
# and gives the handler the chance to run while it holds that lock.
CHILD = textwrap.dedent("""
    import os, signal, sys, threading, time
    from drip.run.signals import stop_on_signals

    stop = threading.Event()
    if sys.argv[1] == "plain":
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    else:
        stop_on_signals(stop)
    with stop._cond:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    sys.exit(0 if stop.wait(10) else 3)
""")


def run_child(mode: str, timeout_s: float) -> int | None:
    """The child's exit code, or None if it was still running after `timeout_s`."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode])
    try:
        return child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return None


def test_a_sigterm_while_the_stop_events_lock_is_held_still_stops_the_process():
    assert run_child("drip", 30) == 0


@pytest.mark.slow
def test_the_plain_handler_it_replaces_deadlocks_there():
    """Shows the hazard is real (this child hangs until killed): the test above can fail."""
    assert run_child("plain", 5) is None


def test_a_child_ignores_ctrl_c_until_it_installs_its_handler_and_then_stops_on_it():
    """procs.spawn starts a child with SIGINT ignored (a Ctrl-C while it imports kills nothing); once it calls
    stop_on_signals, SIGINT stops it as before."""
    import os
    import signal

    from drip.run import procs

    child = procs.spawn([sys.executable, "-c", textwrap.dedent("""
        import signal, sys, threading
        from drip.run.signals import stop_on_signals
        print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN, flush=True)
        stop = threading.Event()
        stop_on_signals(stop)
        print("ready", flush=True)
        print("stopped" if stop.wait(30) else "not stopped", flush=True)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "True"
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGINT)
        assert child.stdout.readline().strip() == "stopped"
        assert child.wait(30) == 0
    finally:
        procs.stop_all([child], 5)
