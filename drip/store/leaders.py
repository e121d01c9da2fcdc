"""Leadership: the one process of a role (supervisor, recorder) that acts, while the others
stand by and take over when its lease lapses. Written once for every role."""

from __future__ import annotations

import secrets
import time

from drip.core import logs
from drip.core.keys import Keys
from drip.store.scripts import Scripts

log = logs.get("drip.leaders")


class Leadership:
    """This process's claim to lead `role`: a lease of `ttl_ms` renewed every `every_s` (a third
    of the TTL at most, so one missed renewal never costs it); a leader that stalls past its TTL
    loses it and cannot extend a successor's."""

    def __init__(self, scripts: Scripts, keys: Keys, role: str, ttl_ms: int, every_s: float | None = None) -> None:
        self.scripts = scripts
        self.keys = keys
        self.role = role
        self.ttl_ms = ttl_ms
        self.every_s = ttl_ms / 3000 if every_s is None else min(every_s, ttl_ms / 3000)
        self.token = secrets.token_hex(8)
        self.leading = False
        self._next_s = 0.0

    def check(self) -> bool:
        """Renew or seek the lease when it is due; whether this process leads now. Logs each change."""
        now = time.monotonic()
        if now >= self._next_s:
            self._next_s = now + self.every_s
            leading = bool(self.scripts.run("elect", [self.keys.leader(self.role)], [self.token, self.ttl_ms]))
            if leading != self.leading:
                self.leading = leading
                log.info("leader_elected" if leading else "leader_lost", role=self.role, token=self.token)
        return self.leading

    def resign(self) -> None:
        """Give the lease up (at shutdown) so a standby takes over at once, not after the TTL."""
        if self.leading:
            self.scripts.run("resign", [self.keys.leader(self.role)], [self.token])
            self.leading = False
            log.info("leader_resigned", role=self.role, token=self.token)
