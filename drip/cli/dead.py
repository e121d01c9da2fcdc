"""`drip dead list|show|replay|purge`: the dead letters (the actions themselves: drip.operations.dead)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import msgspec
from tqdm import tqdm

from drip.cli.common import add_command, load_settings, store
from drip.core.messages import iso
from drip.operations import dead as operations
from drip.store.dead import DeadLetters

#: Replays and purges of more letters than this show a progress bar (on a terminal).
BAR_FROM = 200


def _dead() -> DeadLetters:
    return store(load_settings()).dead


def _chosen(dead: DeadLetters, args: argparse.Namespace) -> list:
    """The dead letters an `ID | --queue Q | --all` choice names."""
    return operations.chosen(dead, message_id=args.id, queue=args.queue)  # --all: neither


def cmd_dead_list(args: argparse.Namespace) -> int:
    letters = _dead().list(args.queue)
    if args.json:
        print(msgspec.json.encode([operations.letter_json(d) for d in letters]).decode())
        return 0
    if not letters:
        print("no dead letters")
        return 0
    width = max(len("QUEUE"), *(len(d.queue) for d in letters))
    print(f"{'ID':<36}  {'QUEUE':<{width}}  {'ATTEMPTS':>8}  {'FAILED AT':<24}  ERROR")
    for d in letters:
        print(f"{d.id:<36}  {d.queue:<{width}}  {d.attempts:>8}  {iso(d.failed_at_ms):<24}  {d.error[:80]}")
    return 0


def cmd_dead_show(args: argparse.Namespace) -> int:
    (letter,) = operations.chosen(_dead(), message_id=args.id)
    print(msgspec.json.format(msgspec.json.encode(operations.letter_json(letter)), indent=2).decode())
    return 0


@contextmanager
def _progress_bar(total: int, what: str) -> Iterator[Callable[[int], None]]:
    """A progress callback (count done so far) drawing a bar on stderr for more than BAR_FROM letters; tqdm's
    disable=None leaves it off when stderr is not a terminal, so logs and pipes get no bar characters."""
    with tqdm(total=total, desc=what, unit=" letters", file=sys.stderr, disable=None if total > BAR_FROM else True,
              leave=False) as bar:
        yield lambda done: bar.update(done - bar.n)


def cmd_dead_replay(args: argparse.Namespace) -> int:
    dead = _dead()
    letters = _chosen(dead, args)
    with _progress_bar(len(letters), "replaying") as progress:
        done = operations.replay(dead, letters, to_head=not args.tail, by="cli", progress=progress)
    print(done.text)
    return 0


def cmd_dead_purge(args: argparse.Namespace) -> int:
    dead = _dead()
    letters = _chosen(dead, args)
    with _progress_bar(len(letters), "purging") as progress:
        done = operations.purge(dead, letters, by="cli", progress=progress)
    print(done.text)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "dead", "dead letters: list, show, replay, purge", "drip dead list --queue orders",
                    "A dead letter is a message whose last attempt failed; it waits here until replayed or purged.")
    dead_sub = p.add_subparsers(dest="dead_command", required=True, metavar="TASK")
    d = add_command(dead_sub, "list", "list dead letters", "drip dead list --json")
    d.add_argument("--queue", help="only this queue's")
    d.add_argument("--json", action="store_true", help="print JSON for scripts")
    d.set_defaults(func=cmd_dead_list)
    d = add_command(dead_sub, "show", "show one dead letter, payload included (credentials masked)",
                    "drip dead show 0193a5f2-7c1e-7b3a-9f00-2d1c3b4a5e6f")
    d.add_argument("id", help="the dead letter's message id (see drip dead list)")
    d.set_defaults(func=cmd_dead_show)
    for name, func, what, example in (
            ("replay", cmd_dead_replay, "put dead letters back into their queue", "drip dead replay --queue orders"),
            ("purge", cmd_dead_purge, "delete dead letters for good", "drip dead purge --all")):
        d = add_command(dead_sub, name, what, example,
                        f"Name one letter by id, or --queue Q, or --all; more than {BAR_FROM} show a progress bar.")
        choice = d.add_mutually_exclusive_group(required=True)
        choice.add_argument("id", nargs="?", help="one dead letter's message id")
        choice.add_argument("--queue", help="every dead letter of this queue")
        choice.add_argument("--all", action="store_true", help="every dead letter")
        if name == "replay":
            d.add_argument("--tail", action="store_true", help="at the tail of the queue (default: at its head)")
        d.set_defaults(func=func)
