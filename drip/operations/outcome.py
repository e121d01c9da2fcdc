"""Done: what one operator action did, said the same way by the CLI (its line) and the console (its JSON)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Done:
    """How many things an action changed (0: nothing needed changing) and the sentence that says so."""

    count: int
    text: str

    def as_json(self) -> dict:
        return {"done": self.count, "message": self.text}


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"
