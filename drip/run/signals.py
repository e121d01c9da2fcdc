"""Stop on SIGTERM/SIGINT by setting a threading.Event, without deadlocking.

A Python signal handler runs in the main thread between two bytecodes, which can
be while that thread holds the lock inside the very Event's wait() or set() (a
second SIGTERM landing inside the handler of the first does exactly that). A
handler calling Event.set() then waits forever for a lock its own thread holds:
a recorder was found still running after its supervisor had gone, stuck in its
third nested handler. Here the handler only writes a byte to a pipe (no lock);
a thread of its own reads it and sets the event once the lock is free.
"""

from __future__ import annotations

import os
import signal
import threading


def stop_on_signals(event: threading.Event) -> None:
    """Set `event` when this process gets SIGTERM or SIGINT. Call from the main thread."""
    read_fd, write_fd = os.pipe()

    def relay() -> None:
        os.read(read_fd, 1)
        event.set()

    def handler(signum: int, _frame: object) -> None:
        os.write(write_fd, b"!")

    threading.Thread(target=relay, name="drip-signals", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
